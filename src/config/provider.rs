//! Compiling one entry of `providers`: issuer, audiences, the algorithm allow-list,
//! token locations and limits, and the provider's inline keys (checked to be safe and to
//! cover every allowed algorithm when there is no remote source).

use std::sync::Arc;

use serde_json::Value;

use super::raw::{RawJwks, RawLocation, RawProvider};
use super::remote::compile_remote;
use crate::fields::{header_name, ConfigError};
use crate::jwks::{Alg, JwkProblem, JwksError, KeyFamily, KeySet, SymmetricKeys};
use crate::keysource::RemoteSource;
use crate::provider::{Binding, Provider};
use crate::token::TokenLocation;

pub(super) fn compile_provider(
    raw: RawProvider,
    path: &str,
    locations: &mut Vec<TokenLocation>,
) -> Result<Provider, ConfigError> {
    check_names(&raw, path)?;
    let algorithms = compile_algorithms(&raw.algorithms, path)?;
    let (inline, source) = compile_keys(raw.jwks, &raw.name, &raw.issuer, &algorithms, path)?;
    let token_type = check_limits(
        raw.max_token_bytes,
        raw.clock_skew_seconds,
        raw.max_lifetime_seconds,
        raw.token_type,
        path,
    )?;
    if !raw.require_exp && raw.max_lifetime_seconds.is_none() {
        return Err(ConfigError::new(
            format!("{path}.require_exp"),
            "false without max_lifetime_seconds would accept a token without exp forever; \
             set max_lifetime_seconds (such a token then lives that long from its iat)",
        ));
    }
    let mut provider_locations = compile_locations(raw.from, path, locations)?;
    if raw.dpop != Binding::Off {
        // A DPoP-bound token comes as `Authorization: DPoP <token>` (RFC 9449 §7.1).
        let dpop = TokenLocation::dpop();
        let position = match locations.iter().position(|known| *known == dpop) {
            Some(position) => position,
            None => {
                locations.push(dpop);
                locations.len() - 1
            }
        };
        if !provider_locations.contains(&position) {
            provider_locations.push(position);
        }
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
        inline_keys: inline.map(Arc::new),
        remote: source,
        dpop: raw.dpop,
        mtls_binding: raw.mtls_binding,
        insecure_accept_unchecked_binding: raw.insecure_accept_unchecked_binding,
    };
    Ok(provider)
}

/// Name, issuer and audiences: present and non-empty.
fn check_names(raw: &RawProvider, path: &str) -> Result<(), ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if raw.name.is_empty() {
        return Err(ConfigError::new(field("name"), "must not be empty"));
    }
    if raw.issuer.is_empty() {
        return Err(ConfigError::new(field("issuer"), "must not be empty"));
    }
    if raw.audiences.is_empty() || raw.audiences.iter().any(|aud| aud.trim().is_empty()) {
        return Err(ConfigError::new(
            field("audiences"),
            "list at least one non-empty audience; tokens must be meant for this API",
        ));
    }
    Ok(())
}

/// The algorithm allow-list, each name exact and known, duplicates dropped.
fn compile_algorithms(names: &[String], path: &str) -> Result<Vec<Alg>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.algorithms"),
            "list at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
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
    Ok(algorithms)
}

/// `jwks`: inline keys, a remote source, or both. Inline-only providers must be able to
/// verify every algorithm they allow (remote keys are only known at run time).
fn compile_keys(
    jwks: RawJwks,
    name: &str,
    issuer: &str,
    algorithms: &[Alg],
    path: &str,
) -> Result<(Option<KeySet>, Option<RemoteSource>), ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    let RawJwks {
        inline,
        remote,
        discovery,
    } = jwks;
    let source = match (remote, discovery) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                field("jwks"),
                "give at most one of \"remote\" and \"discovery\"",
            ))
        }
        (Some(remote), None) => Some(compile_remote(remote, false, name, issuer, path)?),
        (None, Some(discovery)) => Some(compile_remote(discovery, true, name, issuer, path)?),
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
    check_keys_serve_algorithms(inline.as_ref(), source.is_some(), algorithms, path)?;
    Ok((inline, source))
}

/// Every allowed algorithm must be able to verify something, and every shared secret
/// must be usable: inline-only providers need a key for each algorithm; HMAC needs a
/// secret in `jwks.inline` even beside a remote source (fetched key sets never supply
/// secrets); and a secret no allowed algorithm uses does not belong in the configuration.
fn check_keys_serve_algorithms(
    inline: Option<&KeySet>,
    remote: bool,
    algorithms: &[Alg],
    path: &str,
) -> Result<(), ConfigError> {
    let keys = inline.map_or(&[][..], KeySet::keys);
    for alg in algorithms {
        let served = keys.iter().any(|key| key.fits(*alg));
        let needs_inline = !remote || alg.family() == KeyFamily::Hmac;
        if !served && needs_inline {
            let why = if remote {
                " (fetched key sets never supply HMAC secrets)"
            } else {
                ""
            };
            return Err(ConfigError::new(
                format!("{path}.algorithms"),
                format!("no key in jwks.inline can verify {alg}{why}"),
            ));
        }
    }
    if let Some(unused) = keys
        .iter()
        .find(|key| key.family() == KeyFamily::Hmac && !algorithms.iter().any(|alg| key.fits(*alg)))
    {
        return Err(ConfigError::new(
            format!("{path}.jwks.inline"),
            format!(
                "the HMAC secret{} serves none of the allowed algorithms; remove it",
                unused
                    .kid()
                    .map(|kid| format!(" '{kid}'"))
                    .unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Size, skew and lifetime limits within their ranges; returns the required `typ`.
fn check_limits(
    max_token_bytes: usize,
    clock_skew_seconds: u32,
    max_lifetime_seconds: Option<u32>,
    token_type: Option<String>,
    path: &str,
) -> Result<Option<String>, ConfigError> {
    let field = |name: &str| format!("{path}.{name}");
    if !(64..=65536).contains(&max_token_bytes) {
        return Err(ConfigError::new(
            field("max_token_bytes"),
            "must be between 64 and 65536",
        ));
    }
    if clock_skew_seconds > 600 {
        return Err(ConfigError::new(
            field("clock_skew_seconds"),
            "must be at most 600",
        ));
    }
    if max_lifetime_seconds == Some(0) {
        return Err(ConfigError::new(
            field("max_lifetime_seconds"),
            "must be positive",
        ));
    }
    match token_type {
        Some(typ) if typ.is_empty() => {
            Err(ConfigError::new(field("token_type"), "must not be empty"))
        }
        other => Ok(other),
    }
}

/// `from` (default: `Authorization: Bearer`), each location added once to the config's
/// shared list; returns the provider's indices into it.
fn compile_locations(
    from: Option<Vec<RawLocation>>,
    path: &str,
    locations: &mut Vec<TokenLocation>,
) -> Result<Vec<usize>, ConfigError> {
    let raw_locations = from.unwrap_or_else(|| {
        vec![RawLocation {
            header: Some("authorization".into()),
            prefix: Some("Bearer ".into()),
            query: None,
            cookie: None,
        }]
    });
    if raw_locations.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.from"),
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
    Ok(provider_locations)
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
