//! Compiling `jwks.remote` and `jwks.discovery` into a [`RemoteSource`]: the Envoy
//! cluster, authority and path of each request, and the cache, staleness, retry and
//! outage settings, each checked against its documented range.

use super::raw::RawRemote;
use crate::fields::ConfigError;
use crate::keysource::{Endpoint, HttpUrl, RemoteSource, SourceKind};

/// Field paths of one `jwks.remote` or `jwks.discovery` section.
struct Section<'a> {
    /// `providers[N].jwks.remote` or `providers[N].jwks.discovery`.
    path: String,
    /// `providers[N]`.
    provider_path: &'a str,
}

impl Section<'_> {
    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    fn cluster_name(&self, name: &str, at: &str) -> Result<String, ConfigError> {
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ConfigError::new(
                self.field(at),
                "must be the name of an Envoy cluster (non-empty, no spaces)",
            ));
        }
        Ok(name.to_owned())
    }

    fn authority(&self, text: &str, at: &str) -> Result<String, ConfigError> {
        let valid = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b));
        if !valid {
            return Err(ConfigError::new(
                self.field(at),
                "must be a host or host:port (the :authority of the request)",
            ));
        }
        Ok(text.to_ascii_lowercase())
    }

    fn request_path(&self, text: &str, at: &str) -> Result<String, ConfigError> {
        if !text.starts_with('/')
            || text.contains('#')
            || text.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(ConfigError::new(
                self.field(at),
                "must start with '/' and have no spaces, control characters or fragment",
            ));
        }
        Ok(text.to_owned())
    }

    fn in_range(&self, value: u64, at: &str, low: u64, high: u64) -> Result<u64, ConfigError> {
        if value < low || value > high {
            return Err(ConfigError::new(
                self.field(at),
                format!("must be between {low} and {high}"),
            ));
        }
        Ok(value)
    }
}

/// Compiles `jwks.remote` (`discovery` false) or `jwks.discovery` of the provider at
/// `provider_path`.
pub(super) fn compile_remote(
    raw: RawRemote,
    discovery: bool,
    provider: &str,
    issuer: &str,
    provider_path: &str,
) -> Result<RemoteSource, ConfigError> {
    let section = Section {
        path: format!(
            "{provider_path}.jwks.{}",
            if discovery { "discovery" } else { "remote" }
        ),
        provider_path,
    };
    let cluster = section.cluster_name(&raw.cluster, "cluster")?;
    let kind = if discovery {
        discovery_kind(&raw, cluster, issuer, &section)?
    } else {
        jwks_kind(&raw, cluster, &section)?
    };
    let mut source = compile_timing(&raw, kind, issuer, &section)?;
    source.shared_key = RemoteSource::shared_key_for(provider, &source.kind, issuer);
    Ok(source)
}

/// `jwks.discovery`: the document defaults to the issuer's well-known path on its host.
fn discovery_kind(
    raw: &RawRemote,
    cluster: String,
    issuer: &str,
    section: &Section<'_>,
) -> Result<SourceKind, ConfigError> {
    let issuer_url = HttpUrl::parse(issuer).map_err(|why| {
        ConfigError::new(
            format!("{}.issuer", section.provider_path),
            format!("discovery needs the issuer to be an http(s) URL: {why}"),
        )
    })?;
    let authority = match &raw.authority {
        Some(text) => section.authority(text, "authority")?,
        None => issuer_url.authority(),
    };
    let document_path = match &raw.path {
        Some(text) => section.request_path(text, "path")?,
        None => format!(
            "{}/.well-known/openid-configuration",
            issuer_url.path_and_query.trim_end_matches('/')
        ),
    };
    let jwks_cluster = match &raw.jwks_cluster {
        Some(name) => section.cluster_name(name, "jwks_cluster")?,
        None => cluster.clone(),
    };
    Ok(SourceKind::Discovery {
        document: Endpoint {
            cluster,
            authority,
            path: document_path,
        },
        jwks_cluster,
        allow_cross_origin: raw.allow_cross_origin_jwks_uri.unwrap_or(false),
    })
}

/// `jwks.remote`: authority and path are required; the discovery-only fields are refused.
fn jwks_kind(
    raw: &RawRemote,
    cluster: String,
    section: &Section<'_>,
) -> Result<SourceKind, ConfigError> {
    for (name, given) in [
        ("jwks_cluster", raw.jwks_cluster.is_some()),
        (
            "allow_cross_origin_jwks_uri",
            raw.allow_cross_origin_jwks_uri.is_some(),
        ),
    ] {
        if given {
            return Err(ConfigError::new(
                section.field(name),
                "only goes with \"discovery\"",
            ));
        }
    }
    let authority = raw
        .authority
        .as_deref()
        .ok_or_else(|| {
            ConfigError::new(
                section.field("authority"),
                "required: the :authority (host) of the JWKS request, e.g. TENANT.auth0.com",
            )
        })
        .and_then(|text| section.authority(text, "authority"))?;
    let jwks_path = raw
        .path
        .as_deref()
        .ok_or_else(|| {
            ConfigError::new(
                section.field("path"),
                "required: the path of the JWKS, e.g. /.well-known/jwks.json",
            )
        })
        .and_then(|text| section.request_path(text, "path"))?;
    Ok(SourceKind::Jwks(Endpoint {
        cluster,
        authority,
        path: jwks_path,
    }))
}

/// The timeout, cache, staleness, size, outage and retry settings, each in its range.
fn compile_timing(
    raw: &RawRemote,
    kind: SourceKind,
    issuer: &str,
    section: &Section<'_>,
) -> Result<RemoteSource, ConfigError> {
    let timeout_ms = section.in_range(raw.timeout_ms, "timeout_ms", 100, 60_000)?;
    let (min, max, cache) = cache_durations(raw, section)?;
    let max_stale = section.in_range(raw.max_stale_seconds, "max_stale_seconds", 0, 30 * 86_400)?;
    let kid_interval = section.in_range(
        raw.unknown_kid_refetch_interval_seconds,
        "unknown_kid_refetch_interval_seconds",
        1,
        86_400,
    )?;
    let max_bytes = section.in_range(
        u64::try_from(raw.max_response_bytes).unwrap_or(u64::MAX),
        "max_response_bytes",
        1024,
        4 * 1024 * 1024,
    )?;
    if raw.outage_status != 503 && raw.outage_status != 401 {
        return Err(ConfigError::new(
            section.field("outage_status"),
            "must be 503 (default: an outage is the gateway's problem) or 401",
        ));
    }
    let retry_initial_ms =
        section.in_range(raw.retry_initial_ms, "retry_initial_ms", 100, 600_000)?;
    let retry_max_seconds =
        section.in_range(raw.retry_max_seconds, "retry_max_seconds", 1, 86_400)?;
    if retry_max_seconds.saturating_mul(1000) < retry_initial_ms {
        return Err(ConfigError::new(
            section.field("retry_max_seconds"),
            "must not be below retry_initial_ms",
        ));
    }
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
        shared_key: String::new(),
    })
}

/// Minimum, maximum and default cache duration in seconds, the default within the bounds.
fn cache_durations(raw: &RawRemote, section: &Section<'_>) -> Result<(u64, u64, u64), ConfigError> {
    let min = section.in_range(
        raw.min_cache_duration_seconds,
        "min_cache_duration_seconds",
        1,
        7 * 86_400,
    )?;
    let max = section.in_range(
        raw.max_cache_duration_seconds,
        "max_cache_duration_seconds",
        1,
        7 * 86_400,
    )?;
    if min > max {
        return Err(ConfigError::new(
            section.field("min_cache_duration_seconds"),
            "must not be above max_cache_duration_seconds",
        ));
    }
    let cache = section
        .in_range(raw.cache_duration_seconds, "cache_duration_seconds", min, max)
        .map_err(|_| {
            ConfigError::new(
                section.field("cache_duration_seconds"),
                format!("must be between min_cache_duration_seconds ({min}) and max_cache_duration_seconds ({max})"),
            )
        })?;
    Ok((min, max, cache))
}
