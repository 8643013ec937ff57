//! Remote key sets: the whole key lifecycle as plain Rust, with no proxy-wasm types.
//!
//! The proxy-wasm adapter (`filter`) only moves bytes: it dispatches the fetches this
//! module schedules, hands the responses to the validators here, and stores the
//! [`Control`] record this module computes in Envoy's shared data. Everything that can be
//! decided without the host lives here and is unit-tested here: when to fetch (initial,
//! refresh before expiry, retry with exponential backoff and jitter, the unknown-`kid`
//! rate limit), how long a key set is good for (`Cache-Control: max-age` clamped to the
//! configured bounds), how long it may be used stale, whether a waiting request keeps
//! waiting, and whether a fetch response or discovery document is acceptable.
//!
//! Times are Unix milliseconds (`u64`) throughout.
//!
//! One concern per module: `source` (what to fetch, from the configuration),
//! `control` (the shared record and its transitions), `schedule` (cache duration,
//! refresh time, backoff), `waiting` (whether a request waits for a fetch),
//! `validate` (accepting a JWKS or discovery response), `record` (the shared keys
//! record and the hash) and `url` (http(s) URLs).

mod control;
mod record;
mod schedule;
mod source;
#[cfg(test)]
mod test_support;
mod url;
mod validate;
mod waiting;

pub use control::{Control, FetchReason};
pub use record::{decode_keys, encode_keys, fnv1a};
pub use schedule::{backoff_ms, cache_duration_ms, refresh_after_ms};
pub use source::{Endpoint, FetchRequest, FetchStep, RemoteSource, SourceKind};
pub use url::HttpUrl;
pub use validate::{
    max_age_seconds, validate_discovery, validate_jwks, DiscoveryError, FetchError, FetchResponse,
    JwksLocation, ValidJwks,
};
pub use waiting::{keep_waiting, wait_until};
