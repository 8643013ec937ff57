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

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::jwks::{JwksError, KeySet, ParsedKeySet, SymmetricKeys};

/// Where a provider's remote keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A JWKS document at a fixed path, fetched through an Envoy cluster.
    Jwks(Endpoint),
    /// The issuer's OpenID discovery document, whose `jwks_uri` is then fetched.
    Discovery {
        document: Endpoint,
        /// The cluster the `jwks_uri` is fetched through.
        jwks_cluster: String,
        /// Accept a `jwks_uri` whose origin is not the issuer's.
        allow_cross_origin: bool,
    },
}

/// One HTTP resource behind an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub cluster: String,
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// A provider's remote key source, compiled from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    pub kind: SourceKind,
    /// The provider's exact issuer (a discovery document must name it).
    pub issuer: String,
    pub timeout_ms: u64,
    /// Cache duration when the response has no usable `max-age`.
    pub cache_duration_ms: u64,
    pub min_cache_duration_ms: u64,
    pub max_cache_duration_ms: u64,
    /// How long after its cache duration a key set may still be used while refreshes fail.
    pub max_stale_ms: u64,
    /// At most one unknown-`kid` refetch per this interval (per provider, per Envoy).
    pub unknown_kid_interval_ms: u64,
    pub max_response_bytes: usize,
    /// Status for requests when no keys are available: 503 (default) or 401.
    pub outage_status: u16,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// The Envoy shared-data key prefix of this source (provider name plus a hash of the
    /// source, so two configurations in one Envoy never share a record by accident).
    pub shared_key: String,
}

impl RemoteSource {
    /// How long one fetch cycle may take: the timeout per request (two requests with
    /// discovery), plus a margin. Bounds the lease and how long requests wait.
    pub fn cycle_ms(&self) -> u64 {
        let requests = match self.kind {
            SourceKind::Jwks(_) => 1,
            SourceKind::Discovery { .. } => 2,
        };
        self.timeout_ms
            .saturating_mul(requests)
            .saturating_add(1000)
    }

    /// Shared-data key of the small control record.
    pub fn control_key(&self) -> String {
        format!("{}/control", self.shared_key)
    }

    /// Shared-data key of the validated JWKS text.
    pub fn keys_key(&self) -> String {
        format!("{}/jwks", self.shared_key)
    }

    /// What to fetch first: the JWKS itself, or the discovery document.
    pub fn first_request(&self, control: &Control) -> FetchRequest {
        match &self.kind {
            SourceKind::Jwks(endpoint) => FetchRequest::jwks(endpoint.clone()),
            SourceKind::Discovery {
                document,
                jwks_cluster,
                ..
            } => match (&control.jwks_authority, &control.jwks_path) {
                (Some(authority), Some(path)) => FetchRequest::jwks(Endpoint {
                    cluster: jwks_cluster.clone(),
                    authority: authority.clone(),
                    path: path.clone(),
                }),
                _ => FetchRequest {
                    step: FetchStep::Discovery,
                    endpoint: document.clone(),
                },
            },
        }
    }

    /// A short description for logs: `cluster/authority/path`.
    pub fn describe(&self) -> String {
        match &self.kind {
            SourceKind::Jwks(endpoint) => format!("JWKS {endpoint}"),
            SourceKind::Discovery { document, .. } => format!("discovery {document}"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} via cluster {}",
            self.authority, self.path, self.cluster
        )
    }
}

/// Which document a fetch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStep {
    Discovery,
    Jwks,
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub step: FetchStep,
    pub endpoint: Endpoint,
}

impl FetchRequest {
    fn jwks(endpoint: Endpoint) -> FetchRequest {
        FetchRequest {
            step: FetchStep::Jwks,
            endpoint,
        }
    }
}

// ---------------------------------------------------------------------------------------
// The shared control record.

/// The per-provider record every worker VM of one Envoy shares (proxy-wasm shared data,
/// updated with compare-and-swap). Small on purpose: workers read it on every tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// Version of the key set in the keys record; 0 while there is none.
    pub version: u64,
    /// Hash of the current JWKS text (an identical refresh keeps the version).
    pub keys_hash: u64,
    pub fetched_at: u64,
    /// When the next routine refresh is due.
    pub refresh_at: u64,
    /// When the cache duration of the current keys runs out (they are stale after).
    pub expires_at: u64,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// No new attempt before this (backoff after a failure).
    pub next_attempt_at: u64,
    /// The worker fetching right now, and until when its lease holds.
    pub lease_holder: u64,
    pub lease_until: u64,
    /// Completed attempts, successful or not: waiting requests are decided again when
    /// this moves.
    pub attempts: u64,
    /// When the last unknown-`kid` refetch started (0: never).
    pub kid_refetch_at: u64,
    /// The `jwks_uri` found by discovery, split for the fetch.
    pub jwks_authority: Option<String>,
    pub jwks_path: Option<String>,
    /// The last failure, for logs.
    pub last_error: Option<String>,
}

/// Why a fetch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    Initial,
    Refresh,
    Retry,
    UnknownKid,
}

impl fmt::Display for FetchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchReason::Initial => "initial fetch",
            FetchReason::Refresh => "refresh",
            FetchReason::Retry => "retry",
            FetchReason::UnknownKid => "unknown kid",
        })
    }
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a record; an unreadable one counts as empty (and is overwritten).
    pub fn decode(bytes: &[u8]) -> Control {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    pub fn fetch_in_flight(&self, now: u64) -> bool {
        self.lease_until > now
    }

    pub fn kid_refetch_allowed(&self, source: &RemoteSource, now: u64) -> bool {
        self.kid_refetch_at == 0
            || now
                >= self
                    .kid_refetch_at
                    .saturating_add(source.unknown_kid_interval_ms)
    }

    /// Whether the current keys may still be used: present, and not stale for longer
    /// than the configured maximum.
    pub fn keys_usable(&self, source: &RemoteSource, now: u64) -> bool {
        self.version > 0 && now < self.stale_until(source)
    }

    pub fn stale_until(&self, source: &RemoteSource) -> u64 {
        self.expires_at.saturating_add(source.max_stale_ms)
    }

    /// Whether a fetch should start now, and why. `kid_wanted`: a request is waiting on
    /// an unknown `kid`.
    pub fn due(&self, source: &RemoteSource, now: u64, kid_wanted: bool) -> Option<FetchReason> {
        if self.fetch_in_flight(now) {
            return None;
        }
        if kid_wanted && self.kid_refetch_allowed(source, now) {
            return Some(FetchReason::UnknownKid);
        }
        if now < self.next_attempt_at {
            return None;
        }
        match (self.version, self.failures) {
            (0, 0) => Some(FetchReason::Initial),
            (_, failures) if failures > 0 => Some(FetchReason::Retry),
            _ if now >= self.refresh_at => Some(FetchReason::Refresh),
            _ => None,
        }
    }

    /// The record with the lease taken by `holder`.
    pub fn acquired(
        &self,
        source: &RemoteSource,
        holder: u64,
        now: u64,
        reason: FetchReason,
    ) -> Control {
        let mut next = self.clone();
        next.lease_holder = holder;
        next.lease_until = now.saturating_add(source.cycle_ms());
        if reason == FetchReason::UnknownKid {
            next.kid_refetch_at = now;
        }
        next
    }

    /// The record after a fetch that produced a valid key set. `keys_hash` is the hash
    /// of the new JWKS text; the version moves only when the keys changed.
    pub fn succeeded(
        &self,
        source: &RemoteSource,
        now: u64,
        max_age_seconds: Option<u64>,
        keys_hash: u64,
    ) -> Control {
        let duration = cache_duration_ms(source, max_age_seconds);
        let mut next = self.clone();
        if self.version == 0 || self.keys_hash != keys_hash {
            next.version = self.version.saturating_add(1);
        }
        next.keys_hash = keys_hash;
        next.fetched_at = now;
        next.expires_at = now.saturating_add(duration);
        next.refresh_at = now.saturating_add(refresh_after_ms(duration));
        next.failures = 0;
        next.next_attempt_at = 0;
        next.lease_holder = 0;
        next.lease_until = 0;
        next.attempts = self.attempts.saturating_add(1);
        next.last_error = None;
        next
    }

    /// The record after a failed fetch: keys untouched, retry scheduled with backoff and
    /// jitter (`jitter` is any random number). Discovery is redone on the next attempt.
    pub fn failed(&self, source: &RemoteSource, now: u64, jitter: u64, error: &str) -> Control {
        let mut next = self.clone();
        next.failures = self.failures.saturating_add(1);
        next.next_attempt_at = now.saturating_add(backoff_ms(
            next.failures,
            source.retry_initial_ms,
            source.retry_max_ms,
            jitter,
        ));
        next.lease_holder = 0;
        next.lease_until = 0;
        next.attempts = self.attempts.saturating_add(1);
        next.jwks_authority = None;
        next.jwks_path = None;
        next.last_error = Some(error.to_owned());
        next
    }

    /// The record with the `jwks_uri` found by discovery.
    pub fn discovered(&self, location: &JwksLocation) -> Control {
        let mut next = self.clone();
        next.jwks_authority = Some(location.authority.clone());
        next.jwks_path = Some(location.path.clone());
        next
    }
}

/// How long a fetched key set is good for: the response's `max-age` (or the configured
/// duration without one), within the configured bounds.
pub fn cache_duration_ms(source: &RemoteSource, max_age_seconds: Option<u64>) -> u64 {
    let wanted = max_age_seconds.map_or(source.cache_duration_ms, |seconds| {
        seconds.saturating_mul(1000)
    });
    wanted.clamp(
        source.min_cache_duration_ms,
        source
            .max_cache_duration_ms
            .max(source.min_cache_duration_ms),
    )
}

/// Refresh before the cache duration runs out: at 90 % of it, and at least 30 s early
/// for durations of 5 minutes and more.
pub fn refresh_after_ms(duration: u64) -> u64 {
    let early = if duration >= 300_000 {
        (duration / 10).max(30_000)
    } else {
        duration / 10
    };
    duration.saturating_sub(early).max(1)
}

/// Exponential backoff with "equal jitter": half the delay is fixed, half random, so
/// retries from many Envoys spread out but never come sooner than half the schedule.
pub fn backoff_ms(failures: u32, initial_ms: u64, max_ms: u64, jitter: u64) -> u64 {
    let exponent = failures.saturating_sub(1).min(32);
    let delay = initial_ms
        .saturating_mul(1u64 << exponent)
        .min(max_ms)
        .max(1);
    let half = delay / 2;
    half + jitter % (delay - half + 1)
}

// ---------------------------------------------------------------------------------------
// Requests waiting for keys.

/// What a request lacked: no key set at all, or no key with its `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Miss {
    NoKeys,
    UnknownKid,
}

/// Whether a request that lacks keys should wait for a fetch (until the given time), or
/// be decided now with the keys there are.
pub fn wait_until(control: &Control, source: &RemoteSource, now: u64, miss: Miss) -> Option<u64> {
    let wait = match miss {
        _ if control.fetch_in_flight(now) => true,
        Miss::NoKeys => control.next_attempt_at <= now.saturating_add(source.timeout_ms),
        Miss::UnknownKid => control.kid_refetch_allowed(source, now),
    };
    wait.then(|| now.saturating_add(source.cycle_ms()))
}

/// Whether a request paused at `attempts_seen` (the control record's attempt count when
/// it paused) keeps waiting. It stops at its deadline, when an attempt has completed
/// since it paused, or when no fetch is running or about to run for it.
pub fn keep_waiting(
    control: &Control,
    source: &RemoteSource,
    now: u64,
    miss: Miss,
    attempts_seen: u64,
    until: u64,
) -> bool {
    if now >= until || control.attempts != attempts_seen {
        return false;
    }
    if control.fetch_in_flight(now) {
        return true;
    }
    match miss {
        Miss::NoKeys => control.next_attempt_at <= now.saturating_add(source.timeout_ms),
        Miss::UnknownKid => control.kid_refetch_allowed(source, now),
    }
}

// ---------------------------------------------------------------------------------------
// Validating what came back.

/// A fetch response as the adapter saw it. `status` is `None` when the call failed
/// without any response (reset, no headers).
#[derive(Debug, Clone, Copy)]
pub struct FetchResponse<'a> {
    pub status: Option<u16>,
    pub cache_control: Option<&'a str>,
    /// The body size the host announced (checked before the body is read).
    pub body_size: usize,
    /// The body, when it was read (never when `body_size` is over the limit).
    pub body: Option<&'a [u8]>,
}

/// Why a fetch result was not used. Messages are for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The request could not be sent (unknown cluster, bad header).
    Dispatch(String),
    /// The call ended without a response: connection reset, no headers.
    NoResponse,
    /// A status other than 200 (a timeout or refused connection shows up here as the
    /// 504 or 503 Envoy answers itself).
    Status(u16),
    TooLarge {
        size: usize,
        limit: usize,
    },
    EmptyBody,
    Jwks(JwksError),
    Discovery(DiscoveryError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Dispatch(why) => write!(f, "request not sent: {why}"),
            FetchError::NoResponse => f.write_str("no response (connection reset or failed)"),
            FetchError::Status(504) => f.write_str("HTTP 504 (timeout or upstream timeout)"),
            FetchError::Status(status) => write!(f, "HTTP {status}"),
            FetchError::TooLarge { size, limit } => {
                write!(f, "response of {size} bytes is over the {limit}-byte limit")
            }
            FetchError::EmptyBody => f.write_str("empty response body"),
            FetchError::Jwks(err) => err.fmt(f),
            FetchError::Discovery(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for FetchError {}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    NotJson(String),
    IssuerMismatch { expected: String, found: String },
    MissingJwksUri,
    BadJwksUri(String),
    CrossOrigin { jwks_uri: String, issuer: String },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::NotJson(err) => write!(f, "discovery document is not a JSON object: {err}"),
            DiscoveryError::IssuerMismatch { expected, found } => write!(
                f,
                "discovery document names issuer {found:?}, not the configured {expected:?}"
            ),
            DiscoveryError::MissingJwksUri => {
                f.write_str("discovery document has no \"jwks_uri\" string")
            }
            DiscoveryError::BadJwksUri(why) => write!(f, "discovery jwks_uri refused: {why}"),
            DiscoveryError::CrossOrigin { jwks_uri, issuer } => write!(
                f,
                "jwks_uri {jwks_uri:?} is not on the issuer's origin ({issuer:?}); set allow_cross_origin_jwks_uri to accept it"
            ),
        }
    }
}

/// A JWKS that passed validation: the keys claimgate can use (those it cannot are
/// listed, for one log line each) and the `max-age` the server sent.
#[derive(Debug, Clone)]
pub struct ValidJwks {
    pub parsed: ParsedKeySet,
    pub max_age_seconds: Option<u64>,
}

/// Checks a response's status and size and returns its body.
fn checked_body<'a>(response: &FetchResponse<'a>, limit: usize) -> Result<&'a [u8], FetchError> {
    match response.status {
        None => return Err(FetchError::NoResponse),
        Some(200) => {}
        Some(status) => return Err(FetchError::Status(status)),
    }
    let size = response.body.map_or(response.body_size, |body| {
        body.len().max(response.body_size)
    });
    if size > limit {
        return Err(FetchError::TooLarge { size, limit });
    }
    match response.body {
        Some(body) if !body.is_empty() => Ok(body),
        _ => Err(FetchError::EmptyBody),
    }
}

/// Validates a JWKS response before it may replace anything: HTTP 200 only, within the
/// size limit, valid JSON, at least one usable signing key. Symmetric keys are never
/// taken from a remote JWKS.
pub fn validate_jwks(response: &FetchResponse<'_>, limit: usize) -> Result<ValidJwks, FetchError> {
    let body = checked_body(response, limit)?;
    let parsed = KeySet::parse_jwks(body, SymmetricKeys::Refused).map_err(FetchError::Jwks)?;
    Ok(ValidJwks {
        parsed,
        max_age_seconds: response.cache_control.and_then(max_age_seconds),
    })
}

/// Where discovery says the JWKS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksLocation {
    pub authority: String,
    pub path: String,
}

/// Validates a discovery document: its `issuer` must equal the configured issuer exactly,
/// and its `jwks_uri` must be an http(s) URL on the issuer's origin unless cross-origin
/// URIs are allowed.
pub fn validate_discovery(
    response: &FetchResponse<'_>,
    limit: usize,
    issuer: &str,
    allow_cross_origin: bool,
) -> Result<JwksLocation, FetchError> {
    let body = checked_body(response, limit)?;
    let document: Value = serde_json::from_slice(body)
        .map_err(|err| FetchError::Discovery(DiscoveryError::NotJson(err.to_string())))?;
    let document = document
        .as_object()
        .ok_or_else(|| FetchError::Discovery(DiscoveryError::NotJson("not an object".into())))?;
    let found = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    if found != issuer {
        return Err(FetchError::Discovery(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        }));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(FetchError::Discovery(DiscoveryError::MissingJwksUri))?;
    let url = HttpUrl::parse(jwks_uri)
        .map_err(|why| FetchError::Discovery(DiscoveryError::BadJwksUri(why.to_owned())))?;
    let same_origin = HttpUrl::parse(issuer).is_ok_and(|issuer| issuer.origin() == url.origin());
    if !same_origin && !allow_cross_origin {
        return Err(FetchError::Discovery(DiscoveryError::CrossOrigin {
            jwks_uri: jwks_uri.to_owned(),
            issuer: issuer.to_owned(),
        }));
    }
    Ok(JwksLocation {
        authority: url.authority(),
        path: url.path_and_query,
    })
}

/// The `max-age` of a `Cache-Control` value, in seconds. `no-cache` and `no-store` count
/// as 0 (the configured minimum then applies).
pub fn max_age_seconds(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

/// The shared keys record: `VERSION\n` then the validated JWKS text, exactly as fetched.
pub fn encode_keys(version: u64, jwks: &[u8]) -> Vec<u8> {
    let mut record = format!("{version}\n").into_bytes();
    record.extend_from_slice(jwks);
    record
}

pub fn decode_keys(record: &[u8]) -> Option<(u64, &[u8])> {
    let newline = record.iter().position(|byte| *byte == b'\n')?;
    let version = std::str::from_utf8(record.get(..newline)?)
        .ok()?
        .parse()
        .ok()?;
    Some((version, record.get(newline + 1..)?))
}

/// A 64-bit FNV-1a hash (key set identity, shared-data key suffixes).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// An `http` or `https` URL, split for an Envoy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, &'static str> {
        let (scheme, rest) = text.split_once("://").ok_or("not an absolute URL")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err("scheme must be https or http");
        }
        if text.contains('#') {
            return Err("a fragment is not allowed");
        }
        if text.chars().any(|c| c.is_control() || c == ' ') {
            return Err("control characters or spaces");
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(index) => (
                rest.get(..index).unwrap_or(""),
                rest.get(index..).unwrap_or(""),
            ),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed");
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inner, after) = bracketed.split_once(']').ok_or("bad host")?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port.parse::<u16>().map_err(|_| "bad port")?),
                None if after.is_empty() => None,
                None => return Err("bad host"),
            };
            (authority.get(..inner.len() + 2).unwrap_or(""), port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| "bad port")?)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host");
        }
        let path_and_query = if path.starts_with('?') {
            format!("/{path}")
        } else if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
        Ok(HttpUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
        })
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" {
            443
        } else {
            80
        }
    }

    /// Scheme, host and effective port.
    pub fn origin(&self) -> (String, String, u16) {
        (
            self.scheme.clone(),
            self.host.clone(),
            self.port.unwrap_or(self.default_port()),
        )
    }

    /// `host` or `host:port` (the port only when not the scheme's default).
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) if port != self.default_port() => format!("{}:{port}", self.host),
            _ => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::Alg;
    use crate::mint::SigningKey;
    use serde_json::json;

    const S: u64 = 1000;
    const NOW: u64 = 1_800_000_000_000;

    fn source() -> RemoteSource {
        RemoteSource {
            kind: SourceKind::Jwks(Endpoint {
                cluster: "idp".into(),
                authority: "tenant.auth0.com".into(),
                path: "/.well-known/jwks.json".into(),
            }),
            issuer: "https://tenant.auth0.com/".into(),
            timeout_ms: 5 * S,
            cache_duration_ms: 600 * S,
            min_cache_duration_ms: 300 * S,
            max_cache_duration_ms: 86_400 * S,
            max_stale_ms: 86_400 * S,
            unknown_kid_interval_ms: 30 * S,
            max_response_bytes: 256 * 1024,
            outage_status: 503,
            retry_initial_ms: S,
            retry_max_ms: 300 * S,
            shared_key: "claimgate/idp/0".into(),
        }
    }

    fn jwks_body() -> Vec<u8> {
        let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
        json!({"keys": [key.public_jwk()]}).to_string().into_bytes()
    }

    fn ok(body: &[u8]) -> FetchResponse<'_> {
        FetchResponse {
            status: Some(200),
            cache_control: Some("public, max-age=900"),
            body_size: body.len(),
            body: Some(body),
        }
    }

    #[test]
    fn the_first_fetch_is_due_at_once_and_nothing_while_one_is_in_flight() {
        let source = source();
        let control = Control::default();
        assert_eq!(control.due(&source, NOW, false), Some(FetchReason::Initial));
        let taken = control.acquired(&source, 7, NOW, FetchReason::Initial);
        assert_eq!(taken.lease_until, NOW + 6 * S);
        assert_eq!(taken.due(&source, NOW + S, true), None);
        // A lease that was never released (the holder died) expires.
        assert_eq!(
            taken.due(&source, NOW + 6 * S, false),
            Some(FetchReason::Initial)
        );
    }

    #[test]
    fn refresh_comes_before_the_cache_duration_runs_out() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert_eq!(control.version, 1);
        assert_eq!(control.expires_at, NOW + 600 * S);
        assert_eq!(control.refresh_at, NOW + 540 * S);
        assert_eq!(control.due(&source, NOW + 539 * S, false), None);
        assert_eq!(
            control.due(&source, NOW + 540 * S, false),
            Some(FetchReason::Refresh)
        );
        assert_eq!(refresh_after_ms(2 * S), 1800);
        assert_eq!(refresh_after_ms(0), 1);
    }

    #[test]
    fn max_age_is_honoured_within_the_bounds() {
        let source = source();
        assert_eq!(cache_duration_ms(&source, None), 600 * S);
        assert_eq!(cache_duration_ms(&source, Some(900)), 900 * S);
        assert_eq!(cache_duration_ms(&source, Some(15)), 300 * S);
        assert_eq!(cache_duration_ms(&source, Some(10_000_000)), 86_400 * S);
        assert_eq!(
            max_age_seconds("public, max-age=15, stale-if-error=86400"),
            Some(15)
        );
        assert_eq!(max_age_seconds("MAX-AGE = 60"), Some(60));
        assert_eq!(max_age_seconds("max-age=\"30\""), Some(30));
        assert_eq!(max_age_seconds("no-store"), Some(0));
        assert_eq!(max_age_seconds("max-age=-1"), None);
        assert_eq!(max_age_seconds("public"), None);
    }

    #[test]
    fn an_identical_key_set_keeps_its_version() {
        let source = source();
        let first = Control::default().succeeded(&source, NOW, None, 42);
        let same = first.succeeded(&source, NOW + 600 * S, None, 42);
        assert_eq!(same.version, 1);
        assert_eq!(same.attempts, 2);
        let changed = same.succeeded(&source, NOW + 1200 * S, None, 43);
        assert_eq!(changed.version, 2);
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_keep_the_keys() {
        let source = source();
        let good = Control::default().succeeded(&source, NOW, None, 1);
        let failed = good.failed(&source, NOW + 540 * S, 0, "HTTP 500");
        assert_eq!(failed.version, 1);
        assert_eq!(failed.failures, 1);
        assert_eq!(failed.next_attempt_at, NOW + 540 * S + 500);
        assert_eq!(failed.due(&source, NOW + 540 * S + 499, false), None);
        assert_eq!(
            failed.due(&source, NOW + 540 * S + 500, false),
            Some(FetchReason::Retry)
        );
        for failures in 1..40 {
            for jitter in [0, 1, 999, u64::MAX] {
                let delay = backoff_ms(failures, S, 300 * S, jitter);
                let full = (S << (failures - 1).min(32)).min(300 * S);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "{failures} {jitter} {delay}"
                );
            }
        }
        assert_eq!(backoff_ms(0, 0, 0, 5), 1);
    }

    #[test]
    fn stale_keys_are_used_up_to_the_maximum_staleness() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert!(control.keys_usable(&source, NOW + 600 * S + 86_399 * S));
        assert!(!control.keys_usable(&source, NOW + 600 * S + 86_400 * S));
        assert!(!Control::default().keys_usable(&source, NOW));
    }

    #[test]
    fn unknown_kid_refetches_are_rate_limited() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert_eq!(
            control.due(&source, NOW + S, true),
            Some(FetchReason::UnknownKid)
        );
        let taken = control.acquired(&source, 1, NOW + S, FetchReason::UnknownKid);
        let done = taken.succeeded(&source, NOW + 2 * S, None, 1);
        assert_eq!(done.kid_refetch_at, NOW + S);
        assert_eq!(done.due(&source, NOW + 30 * S, true), None);
        assert_eq!(
            done.due(&source, NOW + 31 * S, true),
            Some(FetchReason::UnknownKid)
        );
        // During backoff an unknown kid still may fetch, within the rate limit.
        let failing = done.failed(&source, NOW + 40 * S, 0, "HTTP 500");
        assert_eq!(
            failing.due(&source, NOW + 40 * S, true),
            Some(FetchReason::UnknownKid)
        );
    }

    #[test]
    fn requests_wait_only_when_a_fetch_is_running_or_coming() {
        let source = source();
        let empty = Control::default();
        assert_eq!(
            wait_until(&empty, &source, NOW, Miss::NoKeys),
            Some(NOW + 6 * S)
        );
        let backing_off = empty
            .failed(&source, NOW, 0, "x")
            .failed(&source, NOW, 0, "x");
        // Second failure: next attempt 1 s away (within the timeout), so wait.
        assert!(wait_until(&backing_off, &source, NOW, Miss::NoKeys).is_some());
        let mut far = backing_off.clone();
        far.next_attempt_at = NOW + 60 * S;
        assert_eq!(wait_until(&far, &source, NOW, Miss::NoKeys), None);

        let good = Control::default().succeeded(&source, NOW, None, 1);
        assert!(wait_until(&good, &source, NOW, Miss::UnknownKid).is_some());
        let limited = good
            .acquired(&source, 1, NOW, FetchReason::UnknownKid)
            .succeeded(&source, NOW + S, None, 1);
        assert_eq!(
            wait_until(&limited, &source, NOW + 2 * S, Miss::UnknownKid),
            None
        );
        let in_flight = limited.acquired(&source, 2, NOW + 2 * S, FetchReason::Refresh);
        assert!(wait_until(&in_flight, &source, NOW + 2 * S, Miss::UnknownKid).is_some());
    }

    #[test]
    fn waiting_stops_at_the_deadline_or_when_an_attempt_completes() {
        let source = source();
        let control = Control::default().acquired(&source, 1, NOW, FetchReason::Initial);
        let until = NOW + 6 * S;
        assert!(keep_waiting(
            &control,
            &source,
            NOW + S,
            Miss::NoKeys,
            0,
            until
        ));
        assert!(!keep_waiting(
            &control,
            &source,
            until,
            Miss::NoKeys,
            0,
            until
        ));
        let done = control.failed(&source, NOW + S, 0, "HTTP 503");
        assert!(!keep_waiting(
            &done,
            &source,
            NOW + S,
            Miss::NoKeys,
            0,
            until
        ));
        // Nothing running and the rate limit spent: decide now.
        let spent = Control::default()
            .succeeded(&source, NOW, None, 1)
            .acquired(&source, 1, NOW, FetchReason::UnknownKid)
            .succeeded(&source, NOW, None, 1);
        assert!(!keep_waiting(
            &spent,
            &source,
            NOW + S,
            Miss::UnknownKid,
            2,
            until
        ));
    }

    #[test]
    fn a_good_jwks_is_accepted_with_its_max_age() {
        let body = jwks_body();
        let valid = validate_jwks(&ok(&body), 256 * 1024).unwrap();
        assert_eq!(valid.parsed.keys.len(), 1);
        assert_eq!(valid.max_age_seconds, Some(900));
    }

    #[test]
    fn bad_responses_are_refused() {
        let body = jwks_body();
        let limit = 256 * 1024;
        let no_response = FetchResponse {
            status: None,
            cache_control: None,
            body_size: 0,
            body: None,
        };
        assert_eq!(
            validate_jwks(&no_response, limit).unwrap_err(),
            FetchError::NoResponse
        );
        for status in [500, 503, 504, 301, 204] {
            let response = FetchResponse {
                status: Some(status),
                ..ok(&body)
            };
            assert_eq!(
                validate_jwks(&response, limit).unwrap_err(),
                FetchError::Status(status)
            );
        }
        let announced_big = FetchResponse {
            body_size: limit + 1,
            body: None,
            ..ok(&body)
        };
        assert!(matches!(
            validate_jwks(&announced_big, limit),
            Err(FetchError::TooLarge { .. })
        ));
        assert!(matches!(
            validate_jwks(&ok(&body), 10),
            Err(FetchError::TooLarge { .. })
        ));
        assert_eq!(
            validate_jwks(&ok(b""), limit).unwrap_err(),
            FetchError::EmptyBody
        );
        assert!(matches!(
            validate_jwks(&ok(b"<html>oops</html>"), limit),
            Err(FetchError::Jwks(JwksError::NotJson(_)))
        ));
        assert!(matches!(
            validate_jwks(&ok(br#"{"keys": []}"#), limit),
            Err(FetchError::Jwks(JwksError::NoUsableKey(_)))
        ));
    }

    #[test]
    fn unusable_keys_are_skipped_and_symmetric_keys_never_come_from_remote() {
        let good = SigningKey::generate(Alg::EdDsa, Some("ed")).unwrap();
        let body = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
            good.public_jwk()
        ]})
        .to_string();
        let valid = validate_jwks(&ok(body.as_bytes()), 1 << 20).unwrap();
        assert_eq!(valid.parsed.keys.len(), 1);
        assert_eq!(valid.parsed.skipped.len(), 2);
        let only_secret =
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#;
        assert!(validate_jwks(&ok(only_secret), 1 << 20).is_err());
    }

    #[test]
    fn discovery_checks_the_issuer_and_the_jwks_uri_origin() {
        let issuer = "https://tenant.auth0.com/";
        let document = |iss: &str, uri: &str| {
            json!({"issuer": iss, "jwks_uri": uri, "authorization_endpoint": "x"}).to_string()
        };
        let good = document(issuer, "https://tenant.auth0.com/.well-known/jwks.json");
        assert_eq!(
            validate_discovery(&ok(good.as_bytes()), 1 << 16, issuer, false).unwrap(),
            JwksLocation {
                authority: "tenant.auth0.com".into(),
                path: "/.well-known/jwks.json".into()
            }
        );
        let other = document("https://evil.example/", "https://tenant.auth0.com/jwks");
        assert!(matches!(
            validate_discovery(&ok(other.as_bytes()), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::IssuerMismatch { .. }))
        ));
        let cross = document(issuer, "https://keys.example:8443/t/jwks?x=1");
        assert!(matches!(
            validate_discovery(&ok(cross.as_bytes()), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::CrossOrigin { .. }))
        ));
        assert_eq!(
            validate_discovery(&ok(cross.as_bytes()), 1 << 16, issuer, true).unwrap(),
            JwksLocation {
                authority: "keys.example:8443".into(),
                path: "/t/jwks?x=1".into()
            }
        );
        for bad in [
            "ftp://tenant.auth0.com/x",
            "https://u:p@tenant.auth0.com/x",
            "jwks.json",
        ] {
            let doc = document(issuer, bad);
            assert!(
                matches!(
                    validate_discovery(&ok(doc.as_bytes()), 1 << 16, issuer, true),
                    Err(FetchError::Discovery(DiscoveryError::BadJwksUri(_)))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            validate_discovery(&ok(b"[1]"), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::NotJson(_)))
        ));
    }

    #[test]
    fn urls_split_into_origin_authority_and_path() {
        let url = HttpUrl::parse("HTTPS://Tenant.Auth0.com:443/a/b?c=d").unwrap();
        assert_eq!(url.authority(), "tenant.auth0.com");
        assert_eq!(url.path_and_query, "/a/b?c=d");
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080").unwrap().authority(),
            "127.0.0.1:8080"
        );
        assert_eq!(HttpUrl::parse("https://h?x").unwrap().path_and_query, "/?x");
        assert!(HttpUrl::parse("https://h:99999/").is_err());
        assert!(HttpUrl::parse("https:///x").is_err());
        assert!(HttpUrl::parse("https://h/x#f").is_err());
    }

    #[test]
    fn keys_records_carry_their_version_and_the_jwks_untouched() {
        let jwks = jwks_body();
        let record = encode_keys(7, &jwks);
        assert_eq!(decode_keys(&record), Some((7, jwks.as_slice())));
        assert_eq!(decode_keys(b"no newline"), None);
        assert_eq!(decode_keys(b"x\n{}"), None);
        assert_eq!(decode_keys(b"3\n"), Some((3, &b""[..])));
    }

    #[test]
    fn control_records_round_trip_and_garbage_reads_as_empty() {
        let source = source();
        let control = Control::default()
            .succeeded(&source, NOW, Some(900), 99)
            .discovered(&JwksLocation {
                authority: "a".into(),
                path: "/p".into(),
            });
        assert_eq!(Control::decode(&control.encode()), control);
        assert_eq!(Control::decode(b"\xff garbage"), Control::default());
    }

    #[test]
    fn discovery_sources_fetch_the_document_until_a_jwks_uri_is_known() {
        let mut source = source();
        source.kind = SourceKind::Discovery {
            document: Endpoint {
                cluster: "idp".into(),
                authority: "tenant.auth0.com".into(),
                path: "/.well-known/openid-configuration".into(),
            },
            jwks_cluster: "keys".into(),
            allow_cross_origin: false,
        };
        assert_eq!(source.cycle_ms(), 11 * S);
        let control = Control::default();
        assert_eq!(source.first_request(&control).step, FetchStep::Discovery);
        let found = control.discovered(&JwksLocation {
            authority: "tenant.auth0.com".into(),
            path: "/jwks".into(),
        });
        let request = source.first_request(&found);
        assert_eq!(request.step, FetchStep::Jwks);
        assert_eq!(request.endpoint.cluster, "keys");
        let failed = found.failed(&source, NOW, 0, "HTTP 500");
        assert_eq!(source.first_request(&failed).step, FetchStep::Discovery);
    }
}
