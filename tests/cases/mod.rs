mod smtp_server;
