//! The JSON configuration, and its compilation into the form requests are decided with.
//!
//! Compilation happens once, at load. Every error names the exact field
//! (`rules[2].require[0].claim: …`) so Envoy refuses the configuration with a message a
//! person can act on, and nothing is half-applied.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::cache::CacheLimits;
use crate::identity::{HeaderMapping, IdentityMapping, ValueSource};
use crate::jwks::{Alg, JwkProblem, JwksError, KeyRing, KeySet, SymmetricKeys};
use crate::keysource::{fnv1a, Endpoint, HttpUrl, RemoteSource, SourceKind};
use crate::policy::{compile_policy, ClaimPath, Policy, RawRule};
pub use crate::policy::{DefaultAccess, Mode};
use crate::token::{Provider, TokenLocation};

/// A configuration error at an exact field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path such as `rules[2].require[0].claim`; `.` for the document itself.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Something legal but probably not meant, such as a rule another rule makes pointless;
/// `claimgate check` prints these and the filter logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

// ---------------------------------------------------------------------------------------
// The document as written.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_realm")]
    realm: String,
    providers: Vec<RawProvider>,
    #[serde(default)]
    tiers: BTreeMap<String, Vec<String>>,
    rules: Vec<RawRule>,
    #[serde(default = "default_access")]
    default_access: DefaultAccess,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    identity: RawIdentity,
    #[serde(default)]
    token_cache: RawTokenCache,
    #[serde(default)]
    host_crypto: HostCryptoMode,
    #[serde(default = "default_true")]
    decision_filter_state: bool,
}

fn default_true() -> bool {
    true
}

/// Whether Envoy's own crypto library checks the RS* and ES* signatures it can (after a
/// self-test when the plugin starts), or the module checks every signature itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostCryptoMode {
    /// Use the host's `verify_signature` for the families that pass the self-test.
    #[default]
    Auto,
    /// Check every signature in the module.
    Off,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTokenCache {
    max_entries: usize,
    max_bytes: usize,
    ttl_seconds: u32,
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
struct RawProvider {
    name: String,
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<String>,
    jwks: RawJwks,
    #[serde(default)]
    from: Option<Vec<RawLocation>>,
    #[serde(default = "yes")]
    require_exp: bool,
    #[serde(default = "default_skew")]
    clock_skew_seconds: u32,
    #[serde(default)]
    max_lifetime_seconds: Option<u32>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default = "default_max_token_bytes")]
    max_token_bytes: usize,
    #[serde(default = "yes")]
    forward_token: bool,
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
struct RawJwks {
    #[serde(default)]
    inline: Option<Value>,
    #[serde(default)]
    remote: Option<RawRemote>,
    #[serde(default)]
    discovery: Option<RawRemote>,
}

/// `jwks.remote` and `jwks.discovery` (one shape; the fields only one of them takes are
/// checked when compiling).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    cluster: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
    #[serde(default = "default_cache_duration")]
    cache_duration_seconds: u64,
    #[serde(default = "default_min_cache_duration")]
    min_cache_duration_seconds: u64,
    #[serde(default = "default_max_cache_duration")]
    max_cache_duration_seconds: u64,
    #[serde(default = "default_max_stale")]
    max_stale_seconds: u64,
    #[serde(default = "default_unknown_kid_interval")]
    unknown_kid_refetch_interval_seconds: u64,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: usize,
    #[serde(default = "default_outage_status")]
    outage_status: u16,
    #[serde(default = "default_retry_initial_ms")]
    retry_initial_ms: u64,
    #[serde(default = "default_retry_max_seconds")]
    retry_max_seconds: u64,
    #[serde(default)]
    jwks_cluster: Option<String>,
    #[serde(default)]
    allow_cross_origin_jwks_uri: Option<bool>,
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
struct RawLocation {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    cookie: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    headers: Vec<RawHeader>,
    #[serde(default)]
    strip_headers: Vec<String>,
    #[serde(default)]
    strip_prefixes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    header: String,
    #[serde(flatten)]
    source: RawSource,
    #[serde(default = "default_separator")]
    separator: String,
}

fn default_separator() -> String {
    ",".into()
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSource {
    #[serde(default)]
    claim: Option<Value>,
    #[serde(default)]
    first_of: Option<Vec<RawSource>>,
    #[serde(default)]
    join: Option<Vec<RawSource>>,
    #[serde(default)]
    with: Option<String>,
    #[serde(default)]
    sub_prefix: Option<BTreeMap<String, String>>,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

// ---------------------------------------------------------------------------------------
// The compiled form.

/// A compiled configuration: everything a request decision needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub realm: String,
    pub providers: Vec<Provider>,
    /// Every distinct token location of every provider; providers refer to these by index.
    pub locations: Vec<TokenLocation>,
    /// The inline key set of each provider, by provider index.
    pub inline_keys: Vec<Option<Arc<KeySet>>>,
    /// The remote key source of each provider (`jwks.remote` or `jwks.discovery`), by
    /// provider index.
    pub key_sources: Vec<Option<RemoteSource>>,
    /// The rules, tiers, default and mode, compiled and indexed.
    pub policy: Policy,
    /// Legal but suspicious parts of the configuration (see [`ConfigWarning`]).
    pub warnings: Vec<ConfigWarning>,
    pub identity: IdentityMapping,
    /// Bounds of the per-VM verified-token cache.
    pub token_cache: CacheLimits,
    pub host_crypto: HostCryptoMode,
    /// Whether the filter writes its explanation to Envoy filter state
    /// `wasm.claimgate.decision` on every request (for access logs).
    pub decision_filter_state: bool,
}

impl Config {
    /// Parses and compiles a JSON configuration.
    pub fn from_json(text: &[u8]) -> Result<Config, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(text);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = match err.path().to_string() {
                unknown if unknown.chars().all(|c| c == '?' || c == '.') => ".".to_owned(),
                path => path,
            };
            ConfigError::new(path, err.into_inner().to_string())
        })?;
        compile(raw)
    }

    /// The key ring this configuration starts with: each provider's inline keys.
    pub fn initial_keys(&self) -> KeyRing {
        KeyRing::new(self.inline_keys.clone())
    }

    /// The status a request gets while provider `index` has no keys: 503 unless its
    /// remote source says 401.
    pub fn outage_status(&self, index: usize) -> u16 {
        self.key_sources
            .get(index)
            .and_then(Option::as_ref)
            .map_or(503, |source| source.outage_status)
    }

    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers
            .iter()
            .position(|provider| provider.name == name)
    }
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    if raw.realm.is_empty()
        || raw.realm.contains(['"', '\\'])
        || raw.realm.chars().any(char::is_control)
    {
        return Err(ConfigError::new(
            "realm",
            "must be non-empty text without quotes, backslashes or control characters",
        ));
    }
    if raw.providers.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut locations: Vec<TokenLocation> = Vec::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    let mut inline_keys = Vec::with_capacity(raw.providers.len());
    let mut key_sources = Vec::with_capacity(raw.providers.len());
    for (index, raw_provider) in raw.providers.into_iter().enumerate() {
        let path = format!("providers[{index}]");
        if providers
            .iter()
            .any(|p: &Provider| p.name == raw_provider.name)
        {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate provider name '{}'", raw_provider.name),
            ));
        }
        if providers
            .iter()
            .any(|p: &Provider| p.issuer == raw_provider.issuer)
        {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                "two providers with the same issuer",
            ));
        }
        let (provider, keys, source) = compile_provider(raw_provider, &path, &mut locations)?;
        providers.push(provider);
        inline_keys.push(keys);
        key_sources.push(source);
    }
    let (policy, warnings) = compile_policy(
        raw.rules,
        raw.tiers,
        raw.default_access,
        raw.mode,
        &providers,
    )?;
    let identity = compile_identity(raw.identity)?;
    let cache = raw.token_cache;
    if cache.max_entries > 1_000_000 {
        return Err(ConfigError::new(
            "token_cache.max_entries",
            "must be at most 1000000",
        ));
    }
    if cache.max_bytes > 1 << 30 {
        return Err(ConfigError::new(
            "token_cache.max_bytes",
            "must be at most 1 GiB",
        ));
    }
    if cache.ttl_seconds == 0 {
        return Err(ConfigError::new(
            "token_cache.ttl_seconds",
            "must be positive; set max_entries to 0 to turn the cache off",
        ));
    }
    Ok(Config {
        realm: raw.realm,
        providers,
        locations,
        inline_keys,
        key_sources,
        policy,
        warnings,
        identity,
        token_cache: CacheLimits {
            max_entries: cache.max_entries,
            max_bytes: cache.max_bytes,
            ttl_seconds: i64::from(cache.ttl_seconds),
        },
        host_crypto: raw.host_crypto,
        decision_filter_state: raw.decision_filter_state,
    })
}

type CompiledProvider = (Provider, Option<Arc<KeySet>>, Option<RemoteSource>);

fn compile_provider(
    raw: RawProvider,
    path: &str,
    locations: &mut Vec<TokenLocation>,
) -> Result<CompiledProvider, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.name.is_empty() {
        return Err(ConfigError::new(field("name"), "must not be empty"));
    }
    if raw.issuer.is_empty() {
        return Err(ConfigError::new(field("issuer"), "must not be empty"));
    }
    if raw.audiences.is_empty() || raw.audiences.iter().any(String::is_empty) {
        return Err(ConfigError::new(
            field("audiences"),
            "list at least one non-empty audience; tokens must be meant for this API",
        ));
    }
    if raw.algorithms.is_empty() {
        return Err(ConfigError::new(
            field("algorithms"),
            "list at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(raw.algorithms.len());
    for (index, name) in raw.algorithms.iter().enumerate() {
        let alg = Alg::from_name(name).ok_or_else(|| {
            ConfigError::new(
                format!("{path}.algorithms[{index}]"),
                format!(
                    "unsupported algorithm '{name}'; supported: {}",
                    Alg::ALL.map(Alg::name).join(", ")
                ),
            )
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    let RawJwks {
        inline,
        remote,
        discovery,
    } = raw.jwks;
    let source = match (remote, discovery) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                field("jwks"),
                "give at most one of \"remote\" and \"discovery\"",
            ))
        }
        (Some(remote), None) => Some(compile_remote(remote, false, &raw.name, &raw.issuer, path)?),
        (None, Some(discovery)) => Some(compile_remote(
            discovery,
            true,
            &raw.name,
            &raw.issuer,
            path,
        )?),
        (None, None) => None,
    };
    let inline = match (inline, &source) {
        (Some(inline), _) => Some(compile_inline(&inline, &field("jwks.inline"))?),
        (None, Some(_)) => None,
        (None, None) => return Err(ConfigError::new(
            field("jwks"),
            "give \"inline\" keys, a \"remote\" JWKS or \"discovery\" (inline goes with either)",
        )),
    };
    // Remote keys are only known at run time; inline-only providers must be able to
    // verify every algorithm they allow.
    if let (Some(keys), None) = (&inline, &source) {
        if let Some(alg) = algorithms
            .iter()
            .find(|alg| !keys.keys().iter().any(|key| key.fits(**alg)))
        {
            return Err(ConfigError::new(
                field("algorithms"),
                format!("no key in jwks.inline can verify {alg}"),
            ));
        }
    }
    if raw.max_token_bytes < 64 || raw.max_token_bytes > 65536 {
        return Err(ConfigError::new(
            field("max_token_bytes"),
            "must be between 64 and 65536",
        ));
    }
    if raw.clock_skew_seconds > 600 {
        return Err(ConfigError::new(
            field("clock_skew_seconds"),
            "must be at most 600",
        ));
    }
    if raw.max_lifetime_seconds == Some(0) {
        return Err(ConfigError::new(
            field("max_lifetime_seconds"),
            "must be positive",
        ));
    }
    let token_type = match raw.token_type {
        Some(typ) if typ.is_empty() => {
            return Err(ConfigError::new(field("token_type"), "must not be empty"));
        }
        other => other,
    };
    let raw_locations = raw.from.unwrap_or_else(|| {
        vec![RawLocation {
            header: Some("authorization".into()),
            prefix: Some("Bearer ".into()),
            query: None,
            cookie: None,
        }]
    });
    if raw_locations.is_empty() {
        return Err(ConfigError::new(
            field("from"),
            "list at least one token location",
        ));
    }
    let mut provider_locations = Vec::with_capacity(raw_locations.len());
    for (index, raw_location) in raw_locations.into_iter().enumerate() {
        let location = compile_location(raw_location, &format!("{path}.from[{index}]"))?;
        let position = match locations.iter().position(|known| *known == location) {
            Some(position) => position,
            None => {
                locations.push(location);
                locations.len() - 1
            }
        };
        provider_locations.push(position);
    }
    let provider = Provider {
        name: raw.name,
        issuer: raw.issuer,
        audiences: raw.audiences,
        algorithms,
        locations: provider_locations,
        require_exp: raw.require_exp,
        clock_skew_seconds: i64::from(raw.clock_skew_seconds),
        max_lifetime_seconds: raw.max_lifetime_seconds.map(i64::from),
        token_type,
        max_token_bytes: raw.max_token_bytes,
        forward_token: raw.forward_token,
    };
    Ok((provider, inline.map(Arc::new), source))
}

/// Compiles an inline JWKS; keys that are broken or unsafe refuse the configuration.
fn compile_inline(inline: &Value, path: &str) -> Result<KeySet, ConfigError> {
    let defect = |problems: &[(usize, JwkProblem)]| {
        problems
            .iter()
            .find(|(_, problem)| problem.is_defect())
            .map(|(index, problem)| {
                ConfigError::new(format!("{path}.keys[{index}]"), problem.to_string())
            })
    };
    let parsed = match KeySet::from_jwks_value(inline, SymmetricKeys::Allowed) {
        Ok(parsed) => parsed,
        Err(JwksError::NoUsableKey(problems)) => {
            return Err(defect(&problems).unwrap_or_else(|| {
                ConfigError::new(path, JwksError::NoUsableKey(problems).to_string())
            }))
        }
        Err(err) => return Err(ConfigError::new(path, err.to_string())),
    };
    if let Some(err) = defect(&parsed.skipped) {
        return Err(err);
    }
    Ok(parsed.keys)
}

/// Compiles `jwks.remote` (`discovery` false) or `jwks.discovery` of the provider at
/// `provider_path`.
fn compile_remote(
    raw: RawRemote,
    discovery: bool,
    provider: &str,
    issuer: &str,
    provider_path: &str,
) -> Result<RemoteSource, ConfigError> {
    let path = format!(
        "{provider_path}.jwks.{}",
        if discovery { "discovery" } else { "remote" }
    );
    let field = |name: &str| format!("{path}.{name}");
    let cluster_name = |name: &str, at: &str| -> Result<String, ConfigError> {
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::new(
                field(at),
                "must be the name of an Envoy cluster (non-empty, no spaces)",
            ));
        }
        Ok(name.to_owned())
    };
    let cluster = cluster_name(&raw.cluster, "cluster")?;
    let authority_text = |text: &str, at: &str| -> Result<String, ConfigError> {
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
        if !valid {
            return Err(ConfigError::new(
                field(at),
                "must be a host or host:port (the :authority of the request)",
            ));
        }
        Ok(text.to_ascii_lowercase())
    };
    let path_text = |text: &str, at: &str| -> Result<String, ConfigError> {
        if !text.starts_with('/')
            || text.contains('#')
            || text.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(ConfigError::new(
                field(at),
                "must start with '/' and have no spaces, control characters or fragment",
            ));
        }
        Ok(text.to_owned())
    };
    let kind = if discovery {
        let issuer_url = HttpUrl::parse(issuer).map_err(|why| {
            ConfigError::new(
                format!("{provider_path}.issuer"),
                format!("discovery needs the issuer to be an http(s) URL: {why}"),
            )
        })?;
        let authority = match &raw.authority {
            Some(text) => authority_text(text, "authority")?,
            None => issuer_url.authority(),
        };
        let document_path = match &raw.path {
            Some(text) => path_text(text, "path")?,
            None => format!(
                "{}/.well-known/openid-configuration",
                issuer_url.path_and_query.trim_end_matches('/')
            ),
        };
        let jwks_cluster = match &raw.jwks_cluster {
            Some(name) => cluster_name(name, "jwks_cluster")?,
            None => cluster.clone(),
        };
        SourceKind::Discovery {
            document: Endpoint {
                cluster,
                authority,
                path: document_path,
            },
            jwks_cluster,
            allow_cross_origin: raw.allow_cross_origin_jwks_uri.unwrap_or(false),
        }
    } else {
        for (name, given) in [
            ("jwks_cluster", raw.jwks_cluster.is_some()),
            (
                "allow_cross_origin_jwks_uri",
                raw.allow_cross_origin_jwks_uri.is_some(),
            ),
        ] {
            if given {
                return Err(ConfigError::new(
                    field(name),
                    "only goes with \"discovery\"",
                ));
            }
        }
        let authority = raw
            .authority
            .as_deref()
            .ok_or_else(|| {
                ConfigError::new(
                    field("authority"),
                    "required: the :authority (host) of the JWKS request, e.g. TENANT.auth0.com",
                )
            })
            .and_then(|text| authority_text(text, "authority"))?;
        let jwks_path = raw
            .path
            .as_deref()
            .ok_or_else(|| {
                ConfigError::new(
                    field("path"),
                    "required: the path of the JWKS, e.g. /.well-known/jwks.json",
                )
            })
            .and_then(|text| path_text(text, "path"))?;
        SourceKind::Jwks(Endpoint {
            cluster,
            authority,
            path: jwks_path,
        })
    };
    let in_range = |value: u64, at: &str, low: u64, high: u64| -> Result<u64, ConfigError> {
        if value < low || value > high {
            return Err(ConfigError::new(
                field(at),
                format!("must be between {low} and {high}"),
            ));
        }
        Ok(value)
    };
    let timeout_ms = in_range(raw.timeout_ms, "timeout_ms", 100, 60_000)?;
    let min = in_range(
        raw.min_cache_duration_seconds,
        "min_cache_duration_seconds",
        1,
        7 * 86_400,
    )?;
    let max = in_range(
        raw.max_cache_duration_seconds,
        "max_cache_duration_seconds",
        1,
        7 * 86_400,
    )?;
    if min > max {
        return Err(ConfigError::new(
            field("min_cache_duration_seconds"),
            "must not be above max_cache_duration_seconds",
        ));
    }
    let cache = in_range(raw.cache_duration_seconds, "cache_duration_seconds", min, max).map_err(|_| {
        ConfigError::new(
            field("cache_duration_seconds"),
            format!("must be between min_cache_duration_seconds ({min}) and max_cache_duration_seconds ({max})"),
        )
    })?;
    let max_stale = in_range(raw.max_stale_seconds, "max_stale_seconds", 0, 30 * 86_400)?;
    let kid_interval = in_range(
        raw.unknown_kid_refetch_interval_seconds,
        "unknown_kid_refetch_interval_seconds",
        1,
        86_400,
    )?;
    let max_bytes = in_range(
        u64::try_from(raw.max_response_bytes).unwrap_or(u64::MAX),
        "max_response_bytes",
        1024,
        4 * 1024 * 1024,
    )?;
    if raw.outage_status != 503 && raw.outage_status != 401 {
        return Err(ConfigError::new(
            field("outage_status"),
            "must be 503 (default: an outage is the gateway's problem) or 401",
        ));
    }
    let retry_initial_ms = in_range(raw.retry_initial_ms, "retry_initial_ms", 100, 600_000)?;
    let retry_max_seconds = in_range(raw.retry_max_seconds, "retry_max_seconds", 1, 86_400)?;
    if retry_max_seconds.saturating_mul(1000) < retry_initial_ms {
        return Err(ConfigError::new(
            field("retry_max_seconds"),
            "must not be below retry_initial_ms",
        ));
    }
    let identity = format!("{kind:?}|{issuer}");
    Ok(RemoteSource {
        kind,
        issuer: issuer.to_owned(),
        timeout_ms,
        cache_duration_ms: cache * 1000,
        min_cache_duration_ms: min * 1000,
        max_cache_duration_ms: max * 1000,
        max_stale_ms: max_stale * 1000,
        unknown_kid_interval_ms: kid_interval * 1000,
        max_response_bytes: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        outage_status: raw.outage_status,
        retry_initial_ms,
        retry_max_ms: retry_max_seconds * 1000,
        shared_key: format!("claimgate/{provider}/{:016x}", fnv1a(identity.as_bytes())),
    })
}

fn compile_location(raw: RawLocation, path: &str) -> Result<TokenLocation, ConfigError> {
    match (raw.header, raw.query, raw.cookie) {
        (Some(header), None, None) => {
            let header = header_name(&header, &format!("{path}.header"))?;
            let prefix = raw.prefix.unwrap_or_default();
            if prefix.chars().any(char::is_control) {
                return Err(ConfigError::new(format!("{path}.prefix"), "must not contain control characters"));
            }
            Ok(TokenLocation::Header { name: header, prefix })
        }
        (None, Some(query), None) if raw.prefix.is_none() && !query.is_empty() => {
            Ok(TokenLocation::Query { name: query })
        }
        (None, None, Some(cookie)) if raw.prefix.is_none() && !cookie.is_empty() => {
            Ok(TokenLocation::Cookie { name: cookie })
        }
        _ => Err(ConfigError::new(
            path,
            "give exactly one of \"header\" (with an optional \"prefix\"), \"query\" or \"cookie\", non-empty",
        )),
    }
}

/// Validates a header name and returns it lower-cased.
pub(crate) fn header_name(name: &str, path: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::new(
            path,
            format!("'{name}' is not a valid HTTP header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Compiles a claim name: a string, or a non-empty array of segments for a nested path
/// (strings for object keys, whole numbers for array positions, `"*"` for every element).
pub fn claim_path(value: &Value, path: &str) -> Result<ClaimPath, ConfigError> {
    match value {
        Value::String(name) if !name.is_empty() => Ok(ClaimPath::single(name)),
        Value::Array(segments) if !segments.is_empty() => {
            let mut names = Vec::with_capacity(segments.len());
            for (index, segment) in segments.iter().enumerate() {
                match segment {
                    Value::String(name) if !name.is_empty() => names.push(name.clone()),
                    Value::Number(number) if number.is_u64() && index > 0 => {
                        names.push(number.to_string())
                    }
                    _ => {
                        return Err(ConfigError::new(
                            format!("{path}[{index}]"),
                            "a claim path segment must be a non-empty string, or a whole number after the first",
                        ))
                    }
                }
            }
            Ok(ClaimPath::new(names))
        }
        _ => Err(ConfigError::new(
            path,
            "must be a claim name or a non-empty list of path segments",
        )),
    }
}

/// Errs unless exactly one of the named fields is given.
fn exactly_one(path: &str, fields: &[(&str, bool)]) -> Result<(), ConfigError> {
    if fields.iter().filter(|(_, given)| *given).count() == 1 {
        return Ok(());
    }
    let names: Vec<String> = fields
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    Err(ConfigError::new(
        path,
        format!("give exactly one of {}", names.join(", ")),
    ))
}

/// Errs when `field` is given without the field it belongs to.
fn only_with(path: &str, field: (&str, bool), partner: (&str, bool)) -> Result<(), ConfigError> {
    if field.1 && !partner.1 {
        return Err(ConfigError::new(
            format!("{path}.{}", field.0),
            format!("only goes with \"{}\"", partner.0),
        ));
    }
    Ok(())
}

/// Headers claimgate must never write: they frame or route the request.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "keep-alive",
    "proxy-connection",
];

fn compile_identity(raw: RawIdentity) -> Result<IdentityMapping, ConfigError> {
    let mut headers: Vec<HeaderMapping> = Vec::with_capacity(raw.headers.len());
    for (index, raw_header) in raw.headers.into_iter().enumerate() {
        let path = format!("identity.headers[{index}]");
        let header = header_name(&raw_header.header, &format!("{path}.header"))?;
        if RESERVED_HEADERS.contains(&header.as_str()) || header == "authorization" {
            return Err(ConfigError::new(
                format!("{path}.header"),
                format!("'{header}' cannot carry identity"),
            ));
        }
        if headers.iter().any(|known| known.header == header) {
            return Err(ConfigError::new(
                format!("{path}.header"),
                format!("'{header}' is mapped twice"),
            ));
        }
        let source = compile_source(raw_header.source, &path)?;
        headers.push(HeaderMapping {
            header,
            source,
            separator: raw_header.separator,
        });
    }
    let mut strip_headers = Vec::with_capacity(raw.strip_headers.len());
    for (index, name) in raw.strip_headers.iter().enumerate() {
        strip_headers.push(header_name(
            name,
            &format!("identity.strip_headers[{index}]"),
        )?);
    }
    let mut strip_prefixes = Vec::with_capacity(raw.strip_prefixes.len());
    for (index, prefix) in raw.strip_prefixes.iter().enumerate() {
        let path = format!("identity.strip_prefixes[{index}]");
        let prefix = header_name(prefix, &path)?;
        if prefix.len() < 2 {
            return Err(ConfigError::new(
                path,
                "a prefix this short would strip unrelated headers",
            ));
        }
        strip_prefixes.push(prefix);
    }
    Ok(IdentityMapping {
        headers,
        strip_headers,
        strip_prefixes,
    })
}

fn compile_source(raw: RawSource, path: &str) -> Result<ValueSource, ConfigError> {
    exactly_one(
        path,
        &[
            ("claim", raw.claim.is_some()),
            ("first_of", raw.first_of.is_some()),
            ("join", raw.join.is_some()),
            ("sub_prefix", raw.sub_prefix.is_some()),
            ("value", raw.value.is_some()),
        ],
    )?;
    only_with(
        path,
        ("with", raw.with.is_some()),
        ("join", raw.join.is_some()),
    )?;
    only_with(
        path,
        ("default", raw.default.is_some()),
        ("sub_prefix", raw.sub_prefix.is_some()),
    )?;
    let nested = |sources: Vec<RawSource>, field: &str| -> Result<Vec<ValueSource>, ConfigError> {
        if sources.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.{field}"),
                "list at least one source",
            ));
        }
        sources
            .into_iter()
            .enumerate()
            .map(|(index, source)| compile_source(source, &format!("{path}.{field}[{index}]")))
            .collect()
    };
    if let Some(claim) = raw.claim {
        Ok(ValueSource::Claim(claim_path(
            &claim,
            &format!("{path}.claim"),
        )?))
    } else if let Some(sources) = raw.first_of {
        Ok(ValueSource::FirstOf(nested(sources, "first_of")?))
    } else if let Some(parts) = raw.join {
        Ok(ValueSource::Join {
            parts: nested(parts, "join")?,
            separator: raw.with.unwrap_or_else(|| " ".into()),
        })
    } else if let Some(map) = raw.sub_prefix {
        Ok(ValueSource::SubPrefix {
            map: map.into_iter().collect(),
            default: raw.default,
        })
    } else {
        Ok(ValueSource::Literal(raw.value.unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::SigningKey;
    use serde_json::json;

    pub(crate) fn minimal(extra: Value) -> Value {
        let key = SigningKey::generate(Alg::Hs256, Some("h")).unwrap();
        let mut config = json!({
            "providers": [{
                "name": "idp",
                "issuer": "https://idp.example/",
                "audiences": ["api"],
                "algorithms": ["HS256"],
                "jwks": {"inline": {"keys": [key.public_jwk()]}}
            }],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
        });
        if let (Some(config), Value::Object(extra)) = (config.as_object_mut(), extra) {
            config.extend(extra);
        }
        config
    }

    fn error_of(config: Value) -> ConfigError {
        Config::from_json(config.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn a_minimal_config_compiles_with_safe_defaults() {
        let config = Config::from_json(minimal(json!({})).to_string().as_bytes()).unwrap();
        let provider = &config.providers[0];
        assert!(provider.require_exp);
        assert_eq!(provider.clock_skew_seconds, 60);
        assert_eq!(provider.max_token_bytes, 8192);
        assert_eq!(config.locations, vec![TokenLocation::bearer()]);
        assert_eq!(config.policy.default_access, DefaultAccess::Deny);
        assert_eq!(config.realm, "claimgate");
        assert_eq!(config.host_crypto, HostCryptoMode::Auto);
    }

    #[test]
    fn host_crypto_is_auto_or_off() {
        let config = Config::from_json(
            minimal(json!({"host_crypto": "off"}))
                .to_string()
                .as_bytes(),
        );
        assert_eq!(config.unwrap().host_crypto, HostCryptoMode::Off);
        let err = error_of(minimal(json!({"host_crypto": "always"})));
        assert_eq!(err.path, "host_crypto");
        assert!(err.message.contains("auto"), "{err}");
    }

    #[test]
    fn errors_name_the_exact_field() {
        let err = error_of(minimal(json!({
            "tiers": {"loyalty": ["Bronze", "Gold"]},
            "rules": [
                {"match": {"prefix": "/"}, "access": "public"},
                {"match": {"prefix": "/x"}, "require": [{"claim": "t", "at_least": "Silver", "tiers": "loyalty"}]}
            ]
        })));
        assert_eq!(err.path, "rules[1].require[0].at_least");
        let err = error_of(minimal(json!({
            "rules": [{"match": {"prefix": "/"}, "require": [{"claim": 5, "equals": 1}]}]
        })));
        assert_eq!(err.path, "rules[0].require[0].claim");
        let err = error_of(minimal(
            json!({"rules": [{"match": {"prefx": "/"}, "access": "public"}]}),
        ));
        assert_eq!(err.path, "rules[0].match.prefx");
        assert!(err.message.contains("unknown field"), "{err}");
        let err = error_of(minimal(
            json!({"rules": [{"match": {"regex": "("}, "access": "public"}]}),
        ));
        assert_eq!(err.path, "rules[0].match.regex");
        let err = error_of(minimal(json!({"rules": [{"match": {}, "access": "open"}]})));
        assert_eq!(err.path, "rules[0].access");
        let err = error_of(minimal(
            json!({"identity": {"headers": [{"header": "x-a", "claim": "a", "sub_prefix": {}}]}}),
        ));
        assert_eq!(err.path, "identity.headers[0]");
        let err = error_of(minimal(
            json!({"identity": {"headers": [{"header": "bad header", "claim": "a"}]}}),
        ));
        assert_eq!(err.path, "identity.headers[0].header");
    }

    #[test]
    fn provider_errors_name_the_field() {
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["HS256", "none"]);
        assert_eq!(error_of(config).path, "providers[0].algorithms[1]");
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["RS256"]);
        assert_eq!(error_of(config).path, "providers[0].algorithms");
        let mut config = minimal(json!({}));
        config["providers"][0]["audiences"] = json!([]);
        assert_eq!(error_of(config).path, "providers[0].audiences");
        let mut config = minimal(json!({}));
        config["providers"][0]["from"] = json!([{"query": "t", "cookie": "c"}]);
        assert_eq!(error_of(config).path, "providers[0].from[0]");
    }

    #[test]
    fn weak_rsa_keys_are_refused_at_load() {
        let mut config = minimal(json!({}));
        // A 1024-bit modulus (value irrelevant, only its size is checked first).
        let n = base64ct::Base64UrlUnpadded::encode_string(&[0xc5; 128]);
        config["providers"][0]["algorithms"] = json!(["RS256"]);
        config["providers"][0]["jwks"]["inline"] =
            json!({"keys": [{"kty": "RSA", "n": n, "e": "AQAB"}]});
        let err = error_of(config);
        assert_eq!(err.path, "providers[0].jwks.inline.keys[0]");
        assert!(err.message.contains("1024 bits"), "{err}");
    }

    #[test]
    fn not_json_is_an_error_at_the_root() {
        let err = Config::from_json(b"{").unwrap_err();
        assert_eq!(err.path, ".");
    }

    use base64ct::Encoding;
}
