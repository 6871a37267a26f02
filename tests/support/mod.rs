//! Helpers shared by the integration tests; not every test uses every helper.
#![allow(dead_code)]

pub mod attachment_files;
pub mod campaign;
pub mod mail;
pub mod pki;
pub mod process;
pub mod relay;
pub mod run;
pub mod signing;
pub mod smtp_server;
