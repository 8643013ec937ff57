//! The configuration document as written: the serde structs, with their defaults and
//! `deny_unknown_fields`, so an unknown or misspelt field is refused with its path.
//! Nothing here validates values; [`super::compile`] and its helpers do.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::HostCryptoMode;
use crate::cache::CacheLimits;
use crate::dpop::DpopSettings;
use crate::policy::{DefaultAccess, Mode, RawRule};
use crate::provider::Binding;

// ---------------------------------------------------------------------------------------
// The document as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    #[serde(default = "default_realm")]
    pub(super) realm: String,
    pub(super) providers: Vec<RawProvider>,
    #[serde(default)]
    pub(super) tiers: BTreeMap<String, Vec<String>>,
    pub(super) rules: Vec<RawRule>,
    #[serde(default = "default_access")]
    pub(super) default_access: DefaultAccess,
    #[serde(default)]
    pub(super) mode: Mode,
    #[serde(default)]
    pub(super) identity: RawIdentity,
    #[serde(default)]
    pub(super) token_cache: RawTokenCache,
    #[serde(default)]
    pub(super) host_crypto: HostCryptoMode,
    #[serde(default = "default_true")]
    pub(super) decision_filter_state: bool,
    #[serde(default)]
    pub(super) bypass_cors_preflight: bool,
    #[serde(default)]
    pub(super) dpop_proofs: RawDpopProofs,
    #[serde(default)]
    pub(super) resource_metadata: Option<RawResourceMetadata>,
}

/// `dpop_proofs`: how DPoP proofs (RFC 9449) are checked, for every provider with `dpop`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDpopProofs {
    pub(super) algorithms: Vec<String>,
    pub(super) max_age_seconds: u32,
    pub(super) clock_skew_seconds: u32,
    pub(super) use_dpop_nonce: bool,
    pub(super) nonce_lifetime_seconds: u32,
    pub(super) htu_scheme: Option<String>,
    pub(super) htu_authority: Option<String>,
    pub(super) replay_cache_entries: usize,
    pub(super) max_proof_bytes: usize,
    pub(super) nonce_secrets: Option<RawNonceSecrets>,
    pub(super) shared_record: Option<RawSharedRecord>,
}

/// `dpop_proofs.shared_record`: the fleet-wide once-only record in etcd.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSharedRecord {
    pub(super) cluster: String,
    pub(super) authority: String,
    #[serde(default = "default_shared_record_timeout")]
    pub(super) timeout_ms: u64,
    #[serde(default = "default_shared_record_prefix")]
    pub(super) key_prefix: String,
    #[serde(default = "default_on_unavailable")]
    pub(super) on_unavailable: String,
}

fn default_shared_record_timeout() -> u64 {
    250
}

fn default_shared_record_prefix() -> String {
    "claimgate/dpop/".to_owned()
}

fn default_on_unavailable() -> String {
    "refuse".to_owned()
}

/// `dpop_proofs.nonce_secrets`: the VM environment variables holding the nonce secrets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNonceSecrets {
    pub(super) current_env: String,
    #[serde(default)]
    pub(super) previous_env: Option<String>,
}

impl Default for RawDpopProofs {
    /// The defaults are [`DpopSettings::default`]'s, written as the document would.
    fn default() -> Self {
        let settings = DpopSettings::default();
        let seconds = |value: i64| u32::try_from(value).unwrap_or(u32::MAX);
        RawDpopProofs {
            algorithms: settings
                .algorithms
                .iter()
                .map(|alg| alg.name().to_owned())
                .collect(),
            max_age_seconds: seconds(settings.max_age_seconds),
            clock_skew_seconds: seconds(settings.clock_skew_seconds),
            use_dpop_nonce: settings.use_dpop_nonce,
            nonce_lifetime_seconds: seconds(settings.nonce_lifetime_seconds),
            htu_scheme: settings.htu_scheme.map(|scheme| scheme.name().to_owned()),
            htu_authority: settings.htu_authority,
            replay_cache_entries: settings.replay_cache_entries,
            max_proof_bytes: settings.max_proof_bytes,
            nonce_secrets: None,
            shared_record: None,
        }
    }
}

/// `resource_metadata`: the OAuth protected-resource metadata (RFC 9728) the filter serves.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawResourceMetadata {
    pub(super) resource: String,
    #[serde(default)]
    pub(super) authorization_servers: Option<Vec<String>>,
    #[serde(default)]
    pub(super) scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) resource_name: Option<String>,
    #[serde(default)]
    pub(super) resource_documentation: Option<String>,
    #[serde(default = "default_metadata_max_age")]
    pub(super) cache_max_age_seconds: u32,
}

fn default_metadata_max_age() -> u32 {
    3600
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawTokenCache {
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
    pub(super) ttl_seconds: u32,
}

impl Default for RawTokenCache {
    fn default() -> Self {
        let limits = CacheLimits::default();
        RawTokenCache {
            max_entries: limits.max_entries,
            max_bytes: limits.max_bytes,
            ttl_seconds: u32::try_from(limits.ttl_seconds).unwrap_or(u32::MAX),
        }
    }
}

fn default_realm() -> String {
    "claimgate".into()
}

fn default_access() -> DefaultAccess {
    DefaultAccess::Deny
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: String,
    pub(super) issuer: String,
    pub(super) audiences: Vec<String>,
    pub(super) algorithms: Vec<String>,
    pub(super) jwks: RawJwks,
    #[serde(default)]
    pub(super) from: Option<Vec<RawLocation>>,
    #[serde(default = "yes")]
    pub(super) require_exp: bool,
    #[serde(default = "default_skew")]
    pub(super) clock_skew_seconds: u32,
    #[serde(default)]
    pub(super) max_lifetime_seconds: Option<u32>,
    #[serde(default)]
    pub(super) token_type: Option<String>,
    #[serde(default = "default_max_token_bytes")]
    pub(super) max_token_bytes: usize,
    #[serde(default = "yes")]
    pub(super) forward_token: bool,
    #[serde(default)]
    pub(super) dpop: Binding,
    #[serde(default)]
    pub(super) mtls_binding: Binding,
    #[serde(default)]
    pub(super) insecure_accept_unchecked_binding: bool,
}

fn yes() -> bool {
    true
}

fn default_skew() -> u32 {
    60
}

fn default_max_token_bytes() -> usize {
    8192
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawJwks {
    #[serde(default)]
    pub(super) inline: Option<Value>,
    #[serde(default)]
    pub(super) remote: Option<RawRemote>,
    #[serde(default)]
    pub(super) discovery: Option<RawRemote>,
}

/// `jwks.remote` and `jwks.discovery` (one shape; the fields only one of them takes are
/// checked when compiling).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemote {
    pub(super) cluster: String,
    #[serde(default)]
    pub(super) path: Option<String>,
    #[serde(default)]
    pub(super) authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub(super) timeout_ms: u64,
    #[serde(default = "default_cache_duration")]
    pub(super) cache_duration_seconds: u64,
    #[serde(default = "default_min_cache_duration")]
    pub(super) min_cache_duration_seconds: u64,
    #[serde(default = "default_max_cache_duration")]
    pub(super) max_cache_duration_seconds: u64,
    #[serde(default = "default_max_stale")]
    pub(super) max_stale_seconds: u64,
    #[serde(default = "default_unknown_kid_interval")]
    pub(super) unknown_kid_refetch_interval_seconds: u64,
    #[serde(default = "default_max_response_bytes")]
    pub(super) max_response_bytes: usize,
    #[serde(default = "default_outage_status")]
    pub(super) outage_status: u16,
    #[serde(default = "default_retry_initial_ms")]
    pub(super) retry_initial_ms: u64,
    #[serde(default = "default_retry_max_seconds")]
    pub(super) retry_max_seconds: u64,
    #[serde(default)]
    pub(super) jwks_cluster: Option<String>,
    #[serde(default)]
    pub(super) allow_cross_origin_jwks_uri: Option<bool>,
}

fn default_timeout_ms() -> u64 {
    5000
}

fn default_cache_duration() -> u64 {
    600
}

fn default_min_cache_duration() -> u64 {
    300
}

fn default_max_cache_duration() -> u64 {
    86_400
}

fn default_max_stale() -> u64 {
    86_400
}

fn default_unknown_kid_interval() -> u64 {
    30
}

fn default_max_response_bytes() -> usize {
    256 * 1024
}

fn default_outage_status() -> u16 {
    503
}

fn default_retry_initial_ms() -> u64 {
    1000
}

fn default_retry_max_seconds() -> u64 {
    300
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLocation {
    #[serde(default)]
    pub(super) header: Option<String>,
    #[serde(default)]
    pub(super) prefix: Option<String>,
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) cookie: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    #[serde(default)]
    pub(super) headers: Vec<RawHeader>,
    #[serde(default)]
    pub(super) strip_headers: Vec<String>,
    #[serde(default)]
    pub(super) strip_prefixes: Vec<String>,
}

/// Not `deny_unknown_fields`: every member other than `header` and `separator` is the
/// source's, and [`RawSource`] refuses unknown ones by name.
#[derive(Deserialize)]
pub(super) struct RawHeader {
    pub(super) header: String,
    /// The value's source (`claim`, `first_of`, …), read into a [`RawSource`] when the
    /// header is compiled: serde's `flatten` loses the path of an error inside it, and
    /// errors must name the exact field.
    #[serde(flatten)]
    pub(super) source: serde_json::Map<String, Value>,
    #[serde(default = "default_separator")]
    pub(super) separator: String,
}

fn default_separator() -> String {
    ",".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    #[serde(default)]
    pub(super) claim: Option<Value>,
    #[serde(default)]
    pub(super) first_of: Option<Vec<RawSource>>,
    #[serde(default)]
    pub(super) join: Option<Vec<RawSource>>,
    #[serde(default)]
    pub(super) with: Option<String>,
    #[serde(default)]
    pub(super) sub_prefix: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(super) default: Option<String>,
    /// With `claim`: the claim's value only if it is on this tier list, else `default`
    /// (or the list's lowest tier).
    #[serde(default)]
    pub(super) tiers: Option<String>,
    #[serde(default)]
    pub(super) value: Option<String>,
}

fn default_true() -> bool {
    true
}
