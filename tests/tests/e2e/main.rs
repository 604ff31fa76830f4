//! The end-to-end tests, in one binary: it links once, and its tests share
//! one pool of threads (most of their time is spent waiting on a host).
//! Tests that load the machine take [`spinpresso_e2e::one_heavy_at_a_time`].

mod app;
mod bench;
mod first_run;
mod host;
mod lifecycle;
mod limits;
mod metrics;
mod openapi;
mod redis_store;
mod scale_out;
mod security;
mod spin_compat;
mod sse;
