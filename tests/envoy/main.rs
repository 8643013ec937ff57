//! The Envoy integration tests: a real Envoy (`.venv/bin/envoy`, from
//! `scripts/bootstrap.sh`) running the built module (`target/wasm32-wasip1/release/
//! claimgate.wasm`, and the test-only builds under `target/fault-injection/`), one module
//! per area, one test binary sharing `tests/support`.
//!
//! Every test here is `#[ignore]`d with the reason, so a plain `cargo test` (no Envoy, no
//! built module) runs everything else and lists each of these as ignored. `scripts/test.sh`
//! builds the modules and runs them all with `cargo test --test envoy -- --include-ignored`;
//! there a missing Envoy or module fails the test, it is never skipped. One area by
//! hand, after the builds of scripts/test.sh: `cargo test --test envoy -- --include-ignored demo::`.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

#[path = "../support/mod.rs"]
mod support;

mod access_log;
mod algorithms;
mod claims;
mod config;
mod conformance;
mod demo;
mod dpop;
mod dpop_fairness;
mod failure;
mod fleet;
mod fleet_etcd;
mod global_ratelimit;
mod jose_interop;
mod leaks;
mod live_policy;
mod mcp;
mod metrics;
mod mtls;
mod ratelimit;
mod remote_jwks;
mod remote_module;
mod soak;
mod startup_log;
mod websocket_grpc;
mod wycheproof;
