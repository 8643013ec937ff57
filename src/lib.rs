//! claimgate: edge authorization for Envoy.
//!
//! The core is a pure decision over (compiled config, request view, keys, now) with no
//! proxy-wasm types in it, so Envoy, the CLI, native tests, wasm-bindgen tests and the
//! benches all run exactly the same code: [`decision::decide`]. `filter` is the thin
//! proxy-wasm adapter, compiled only for the Wasm module Envoy loads.

pub mod cache;
#[cfg(not(target_os = "wasi"))]
pub mod cases;
pub mod claims;
pub mod config;
pub mod decision;
pub mod fields;
pub mod identity;
pub mod jwks;
pub mod keysource;
pub mod mint;
pub mod policy;
pub mod request;
pub mod token;

#[cfg(target_os = "wasi")]
mod filter;

pub use cache::{CacheLimits, TokenCache};
pub use config::{Config, ConfigError};
pub use decision::{decide, decide_pre_verified, decide_with_cache, Decision, Denial, Outcome};
pub use jwks::KeyRing;
pub use request::RequestView;
