//! The proxy-wasm adapter: loads the configuration in the root context and, per request,
//! hands the headers to [`crate::decision::decide`] (with its token cache and DPoP proof
//! record) and applies what it returns. No policy lives here.
//!
//! Everything but the entry points is plain Rust over the [`host::Host`] trait, so it
//! runs natively against the scripted host in `mock` (unit tests in `tests`), and in
//! Envoy over [`proxy_host`]:
//!
//! - `entry` — the SDK's context traits, delegating to `root` and `http` (module only);
//! - `proxy_host` — [`host::Host`] over the raw proxy-wasm ABI, no panics (module only);
//! - `host` — the seam: every host call the filter makes, each answering a `Result`;
//! - `wire` — the ABI's byte formats for header maps and property paths;
//! - `root` — configuration load, ticks, fetch responses;
//! - `http` — one request: read, decide, pause for keys or apply;
//! - `plugin` — what a VM's contexts share: configuration, keys, token cache, each in a
//!   private field (every `RefCell` borrowed with `try_borrow*`, never panicking);
//! - `remote` — remote key sets: shared control records, leases, fetches, publishing;
//! - `remote_state` — this VM's view of each remote key source;
//! - `key_wait` — pausing a request until keys arrive, and deciding it again;
//! - `waiters` — the list of those paused requests;
//! - `peer` — what the decision reads of the connection besides the headers;
//! - `record_check` — the fleet-wide DPoP record's calls to etcd and their answers;
//! - `shared_record` — that record's per-VM state and counters;
//! - `proofs` — the per-Envoy DPoP once-only record and nonce key in shared data;
//! - `shared_data` — the one compare-and-swap read-modify-write of shared data;
//! - `apply` — header edits, local responses, the decision's filter state;
//! - `filter_state` — that filter state's JSON, remembered from the last request;
//! - `host_crypto` — Envoy's `verify_signature` for new RS*/ES* tokens;
//! - `stats` — Envoy counters;
//! - `phase_timing` — time per phase of a request, in a measurement build only;
//! - `logger` — the `log` facade to Envoy's log, at Envoy's level.
//!
//! Imports run one way, top to bottom: `entry` → `root` → `http` → `key_wait` →
//! `record_check` → `remote` → `plugin` → the state (`remote_state`, `waiters`,
//! `shared_record`, `proofs`) → `apply` and the host-level files → `host`. The test
//! `import_graph_tests` fails naming the circle when a `use super::…` closes one.

mod apply;
mod filter_state;
mod host;
mod host_crypto;
mod http;
mod key_wait;
mod logger;
mod peer;
mod phase_timing;
mod plugin;
mod proofs;
mod record_check;
mod remote;
mod remote_state;
mod root;
mod shared_data;
mod shared_record;
mod stats;
mod waiters;
mod wire;

#[cfg(target_os = "wasi")]
mod entry;
#[cfg(target_os = "wasi")]
mod proxy_host;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
