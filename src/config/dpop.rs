//! Compiling `dpop_proofs`: the algorithms, time window, nonces, `htu` overrides and
//! replay-cache size DPoP proofs are checked with.

use super::raw::RawDpopProofs;
use crate::dpop::DpopSettings;
use crate::fields::ConfigError;
use crate::jwks::{Alg, KeyFamily};
use crate::request::{check_authority, Scheme};

pub(super) fn compile_dpop(raw: RawDpopProofs) -> Result<DpopSettings, ConfigError> {
    let field = |name: &str| format!("dpop_proofs.{name}");
    let algorithms = compile_algorithms(&raw.algorithms)?;
    let within = |value: u32, name: &str, min: u32, max: u32| {
        if (min..=max).contains(&value) {
            Ok(i64::from(value))
        } else {
            Err(ConfigError::new(
                field(name),
                format!("must be between {min} and {max}"),
            ))
        }
    };
    let max_age_seconds = within(raw.max_age_seconds, "max_age_seconds", 1, 3600)?;
    let clock_skew_seconds = within(raw.clock_skew_seconds, "clock_skew_seconds", 0, 300)?;
    let nonce_lifetime_seconds = within(
        raw.nonce_lifetime_seconds,
        "nonce_lifetime_seconds",
        10,
        86_400,
    )?;
    let htu_scheme = raw
        .htu_scheme
        .as_deref()
        .map(|scheme| {
            Scheme::parse(scheme)
                .ok_or_else(|| ConfigError::new(field("htu_scheme"), "must be https or http"))
        })
        .transpose()?;
    if let Some(authority) = &raw.htu_authority {
        if authority.is_empty() || check_authority(authority).is_err() {
            return Err(ConfigError::new(
                field("htu_authority"),
                "must be host or host:port",
            ));
        }
    }
    if !(256..=1_048_576).contains(&raw.replay_cache_entries) {
        return Err(ConfigError::new(
            field("replay_cache_entries"),
            "must be between 256 and 1048576",
        ));
    }
    if !(256..=16_384).contains(&raw.max_proof_bytes) {
        return Err(ConfigError::new(
            field("max_proof_bytes"),
            "must be between 256 and 16384",
        ));
    }
    Ok(DpopSettings {
        algorithms,
        max_age_seconds,
        clock_skew_seconds,
        use_dpop_nonce: raw.use_dpop_nonce,
        nonce_lifetime_seconds,
        htu_scheme,
        htu_authority: raw
            .htu_authority
            .map(|authority| authority.to_ascii_lowercase()),
        replay_cache_entries: raw.replay_cache_entries,
        max_proof_bytes: raw.max_proof_bytes,
    })
}

/// The proof algorithm allow-list: known asymmetric algorithms, duplicates dropped.
fn compile_algorithms(names: &[String]) -> Result<Vec<Alg>, ConfigError> {
    if names.is_empty() {
        return Err(ConfigError::new(
            "dpop_proofs.algorithms",
            "list at least one algorithm",
        ));
    }
    let mut algorithms = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        let alg = Alg::from_name(name)
            .filter(|alg| alg.family() != KeyFamily::Hmac)
            .ok_or_else(|| {
                ConfigError::new(
                    format!("dpop_proofs.algorithms[{index}]"),
                    format!(
                        "'{name}' is not an asymmetric JWS algorithm claimgate verifies; a proof is signed with the client's private key ({})",
                        Alg::ALL
                            .into_iter()
                            .filter(|alg| alg.family() != KeyFamily::Hmac)
                            .map(Alg::name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    Ok(algorithms)
}
