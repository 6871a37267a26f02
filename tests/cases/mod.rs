mod accounting;
mod crash_campaign;
mod limits;
mod properties;
mod send;
mod smtp_server;
mod soak;
mod tls_trust;
