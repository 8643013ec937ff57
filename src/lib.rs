//! claimgate: edge authorization for Envoy.
//!
//! The core is a pure decision over (compiled config, request view, keys, now) with no
//! proxy-wasm types in it, so Envoy, the CLI, native tests, wasm-bindgen tests and the
//! benches all run exactly the same code. [`filter`] is the thin proxy-wasm adapter.

pub mod jwks;
pub mod mint;
