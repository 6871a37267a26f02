mod send;
mod smtp_server;
mod tls_trust;
