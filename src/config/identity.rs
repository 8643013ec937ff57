//! Compiling the `identity` section: which headers carry identity upstream, where each
//! value comes from, and which client headers are always stripped.

use std::collections::BTreeMap;

use serde_json::Value;

use super::raw::{RawIdentity, RawSource};
use crate::fields::{claim_path, exactly_one, header_name, only_with, ConfigError};
use crate::identity::{HeaderMapping, IdentityMapping, ValueSource};

/// Headers claimgate must never write: they frame or route the request, or are
/// hop-by-hop (RFC 9110 §7.6.1, RFC 2616 §13.5.1).
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Tier lists by name, lowest first (the configuration's `tiers`).
type TierLists = BTreeMap<String, Vec<String>>;

pub(super) fn compile_identity(
    raw: RawIdentity,
    tiers: &TierLists,
) -> Result<IdentityMapping, ConfigError> {
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
        let source = read_source(raw_header.source, &path)?;
        let source = compile_source(source, &path, tiers)?;
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

/// A header's source fields as a [`RawSource`], an error naming the exact field.
fn read_source(
    fields: serde_json::Map<String, Value>,
    path: &str,
) -> Result<RawSource, ConfigError> {
    serde_path_to_error::deserialize(Value::Object(fields)).map_err(|err| {
        let inner = err.path().to_string();
        let at = if inner.chars().all(|c| c == '?' || c == '.') {
            path.to_owned()
        } else {
            format!("{path}.{inner}")
        };
        ConfigError::new(at, err.into_inner().to_string())
    })
}

fn compile_source(
    raw: RawSource,
    path: &str,
    tiers: &TierLists,
) -> Result<ValueSource, ConfigError> {
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
        ("tiers", raw.tiers.is_some()),
        ("claim", raw.claim.is_some()),
    )?;
    if raw.default.is_some() && raw.sub_prefix.is_none() && raw.tiers.is_none() {
        return Err(ConfigError::new(
            format!("{path}.default"),
            "only goes with \"sub_prefix\" or \"tiers\"",
        ));
    }
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
            .map(|(index, source)| {
                compile_source(source, &format!("{path}.{field}[{index}]"), tiers)
            })
            .collect()
    };
    if let (Some(claim), Some(name)) = (&raw.claim, &raw.tiers) {
        compile_tier(claim, name, raw.default, path, tiers)
    } else if let Some(claim) = raw.claim {
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

/// A `claim` with `tiers`: the list named, and the default (on the list; the lowest tier
/// when not given).
fn compile_tier(
    claim: &serde_json::Value,
    name: &str,
    default: Option<String>,
    path: &str,
    tiers: &TierLists,
) -> Result<ValueSource, ConfigError> {
    let claim = claim_path(claim, &format!("{path}.claim"))?;
    let list = tiers.get(name).ok_or_else(|| {
        ConfigError::new(
            format!("{path}.tiers"),
            format!("'{name}' is not a tier list"),
        )
    })?;
    let default = match default {
        Some(default) if list.contains(&default) => default,
        Some(default) => {
            return Err(ConfigError::new(
                format!("{path}.default"),
                format!(
                    "'{default}' is not in tier list '{name}' ({})",
                    list.join(" < ")
                ),
            ))
        }
        None => list.first().cloned().ok_or_else(|| {
            ConfigError::new(format!("{path}.tiers"), format!("'{name}' is empty"))
        })?,
    };
    Ok(ValueSource::Tier {
        claim,
        list: list.clone(),
        default,
    })
}
