//! Spinpresso's business rules. Host-agnostic: no Spin, no I/O.
//!
//! The store, the clock and randomness arrive as parameters, so every rule
//! here is a plain unit test away. Each module owns the keys it writes; the
//! full key layout is documented in `kv-schema/README.md`.

pub mod atomic;
pub mod auth;
pub mod error;
pub mod events;
pub mod json_bytes;
pub mod kv;
pub mod lifecycle;
pub mod menu;
pub mod metrics;
pub mod open_set;
pub mod order;
pub mod parts;
pub mod qr;
pub mod robot;
pub mod shop;
pub mod sign_in_limits;
pub mod streams;
pub mod text;
pub mod time;

pub use error::DomainError;
