mod bad_input;
mod check;
mod init;
mod letters;
mod preview;
mod send;
mod smtp_server;
