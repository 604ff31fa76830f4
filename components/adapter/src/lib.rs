//! The edges between Spin and the domain crate: the key-value store over
//! `wasi:keyvalue`, the HTTP helpers every component shares, and static files.

pub mod flows;
pub mod http;
pub mod incoming;
pub mod kv;
pub mod request;
pub mod static_files;
