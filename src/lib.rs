//! claimgate: edge authorization for Envoy.
//!
//! The core is a pure decision over (compiled config, request view, keys, now) with no
//! proxy-wasm types in it, so Envoy, the CLI, native tests, wasm-bindgen tests and the
//! benches all run exactly the same code: [`decision::decide`]. `filter` is the thin
//! proxy-wasm adapter: compiled for the Wasm module Envoy loads, and natively for its
//! unit tests against a scripted host.
//!
//! # Layering
//!
//! Modules only import modules listed below them here (a lower layer never imports a
//! higher one, so there are no import cycles):
//!
//! 1. `filter` (the proxy-wasm adapter), `cases` (`claimgate test`), `mint` (signing and
//!    DPoP proofs, for the CLI and tests; imports only `jwks` and `dpop`)
//! 2. [`decision`]: the pipeline; imports everything below
//! 3. [`config`]: compiles the document; imports `cache`, `dpop`, `fields`, `identity`,
//!    `jwks`, `keysource`, `policy`, `provider`, `request`, `token`
//! 4. [`cache`]: verified tokens; imports `token`; [`dpop`]: DPoP proofs (RFC 9449) and
//!    token-binding thumbprints; imports `jwks`, `keysource`, `request`, `token`
//! 5. [`token`]: finding and verifying tokens; imports `claims`, `identity`, `jwks`,
//!    `key_miss`, `provider`, `request`
//! 6. [`provider`]: one entry per provider (verification, inline keys, remote source);
//!    imports `jwks`, `keysource`, `provider_id`
//! 7. [`keysource`]: the remote key lifecycle; imports `jwks`, `key_miss`
//! 8. [`policy`]: rules and conditions; imports `claims`, `fields`, `provider_id`,
//!    `request` (rules refer to providers by name, so it imports neither `token` nor
//!    `config`); [`identity`]: headers from claims; imports `claims`, `request`
//! 9. [`jwks`]: keys and signature checks; imports `provider_id`
//! 10. [`fields`]: configuration errors and field validators; imports `claims`;
//!     [`key_miss`]: "keys are missing"; imports `provider_id`
//! 11. [`claims`], [`request`], [`provider_id`], [`time`]: import nothing of the crate
//!
//! [`time`] (`UnixSeconds`, `UnixMillis`) is imported by every layer that reads the
//! clock; the lists above leave it out.
//!
//! A quick check: `grep -rn 'crate::' src/<module>` lists what a module
//! imports.

// The lint set (no panics on request or configuration paths, no unsafe code outside
// the ABI file, reasons on every allow) is Cargo.toml's [lints] table.

pub mod cache;
#[cfg(not(target_os = "wasi"))]
pub mod cases;
pub mod claims;
pub mod config;
pub mod decision;
pub mod dpop;
pub mod fields;
pub mod identity;
pub mod jwks;
pub mod key_miss;
pub mod keysource;
/// Signing: native only (the CLI, tests, benches, wasm-bindgen tests), never in the
/// module Envoy loads.
#[cfg(not(target_os = "wasi"))]
pub mod mint;
pub mod policy;
pub mod provider;
pub mod provider_id;
pub mod request;
pub mod time;
pub mod token;

#[cfg(any(target_os = "wasi", test))]
mod filter;
#[cfg(test)]
mod import_graph_tests;
#[cfg(test)]
mod test_support;

pub use cache::TokenCache;
pub use config::{Config, ConfigError};
pub use decision::{decide, Decision, Environment, Input, Outcome, ProofEnvironment};
pub use request::RequestView;
pub use time::{UnixMillis, UnixSeconds};
