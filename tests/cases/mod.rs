mod letters;
mod send;
mod smtp_server;
