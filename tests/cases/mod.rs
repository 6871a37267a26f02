mod accounting;
mod limits;
mod send;
mod smtp_server;
mod soak;
mod tls_trust;
