mod report;
mod resume;
mod secrets;
mod send;
mod send_faults;
mod send_options;
mod smtp_server;
