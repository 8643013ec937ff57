//! Compiling `dpop_proofs`: the algorithms, time window, nonces, `htu` overrides and
//! replay-cache size DPoP proofs are checked with.

use super::raw::{RawDpopProofs, RawNonceSecrets, RawSharedRecord};
use crate::dpop::{DpopSettings, NonceSecretsEnv, OnUnavailable, SharedRecordSettings};
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
    let nonce_secrets = raw
        .nonce_secrets
        .map(|secrets| compile_nonce_secrets(secrets, raw.use_dpop_nonce))
        .transpose()?;
    let shared_record = raw.shared_record.map(compile_shared_record).transpose()?;
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
        nonce_secrets,
        shared_record,
    })
}

/// `shared_record`: an Envoy cluster name, the authority to send, a timeout, the key
/// prefix and what to do when etcd cannot answer.
fn compile_shared_record(raw: RawSharedRecord) -> Result<SharedRecordSettings, ConfigError> {
    const FIELD: &str = "dpop_proofs.shared_record";
    let error = |field: &str, message: &str| ConfigError::new(format!("{FIELD}.{field}"), message);
    if raw.cluster.is_empty()
        || raw.cluster.len() > 256
        || raw.cluster.chars().any(char::is_control)
    {
        return Err(error(
            "cluster",
            "must name the Envoy cluster of etcd's client port",
        ));
    }
    if raw.authority.is_empty() || check_authority(&raw.authority).is_err() {
        return Err(error("authority", "must be host or host:port"));
    }
    if !(10..=5000).contains(&raw.timeout_ms) {
        return Err(error("timeout_ms", "must be between 10 and 5000"));
    }
    let prefix_ok = (1..=128).contains(&raw.key_prefix.len())
        && raw
            .key_prefix
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\');
    if !prefix_ok {
        return Err(error(
            "key_prefix",
            "must be 1 to 128 printable ASCII characters (no quotes, no backslash)",
        ));
    }
    let on_unavailable = match raw.on_unavailable.as_str() {
        "refuse" => OnUnavailable::Refuse,
        "local" => OnUnavailable::Local,
        _ => return Err(error("on_unavailable", "must be refuse or local")),
    };
    Ok(SharedRecordSettings {
        cluster: raw.cluster,
        authority: raw.authority,
        timeout_ms: raw.timeout_ms,
        key_prefix: raw.key_prefix,
        on_unavailable,
    })
}

/// `nonce_secrets`: two distinct environment variable names (the values are read by the
/// module when it loads; `claimgate check` cannot see the VM's environment).
fn compile_nonce_secrets(
    raw: RawNonceSecrets,
    use_dpop_nonce: bool,
) -> Result<NonceSecretsEnv, ConfigError> {
    const FIELD: &str = "dpop_proofs.nonce_secrets";
    if !use_dpop_nonce {
        return Err(ConfigError::new(
            FIELD,
            "nonce secrets are only used with use_dpop_nonce: true",
        ));
    }
    let check = |name: &str, field: &str| {
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(())
        } else {
            Err(ConfigError::new(
                format!("{FIELD}.{field}"),
                "must be an environment variable name (letters, digits and _, not starting \
                 with a digit, at most 128)",
            ))
        }
    };
    check(&raw.current_env, "current_env")?;
    if let Some(previous) = &raw.previous_env {
        check(previous, "previous_env")?;
        if *previous == raw.current_env {
            return Err(ConfigError::new(
                format!("{FIELD}.previous_env"),
                "must name another variable than current_env",
            ));
        }
    }
    Ok(NonceSecretsEnv {
        current_env: raw.current_env,
        previous_env: raw.previous_env,
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
