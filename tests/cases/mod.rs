mod send;
mod smtp_server;
