//! The edges between Spin and the domain crate: the key-value store over
//! `wasi:keyvalue`, the HTTP helpers every component shares, and static files.
//!
//! The Spin glue builds for WebAssembly only, where the components run it
//! and the end-to-end tests exercise it. Natively (unit tests, lints) only
//! the parts that need no host build: spin-sdk generates its bindings at
//! compile time, and natively that took about a quarter of the test
//! build's CPU.

pub mod body;
pub mod error_reply;
pub mod request_head;
pub mod same_bytes;
pub mod static_files;

#[cfg(target_arch = "wasm32")]
pub mod flows;
#[cfg(target_arch = "wasm32")]
pub mod http;
#[cfg(target_arch = "wasm32")]
pub mod incoming;
#[cfg(target_arch = "wasm32")]
pub mod kv;
#[cfg(target_arch = "wasm32")]
pub mod request;
