//! Integration tests: the real server in-process on 127.0.0.1:0 with a temporary data dir,
//! driven over HTTP. One module per feature.

mod helpers;

mod accounts;
mod bad_input;
mod me;
mod openapi;
mod sessions;
mod storage;
