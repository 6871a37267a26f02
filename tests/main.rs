//! envoi's integration tests: one binary; shared helpers in `support`, the tests in `cases`.
mod cases;
mod support;
