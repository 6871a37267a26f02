mod bad_input;
mod letters;
mod send;
mod smtp_server;
