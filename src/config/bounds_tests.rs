//! The documented defaults and bounds of the configuration (filter-config/README.md,
//! README.md › Speed and › Keys), each checked at the edge: the last value accepted and
//! the first refused, naming the field.

use serde_json::{json, Value};

use super::tests::minimal;
use super::{Config, ConfigError};
use crate::cache::CacheLimits;
use crate::dpop::DpopSettings;
use crate::jwks::Alg;
use crate::keysource::{cache_duration_ms, max_age_seconds, RemoteSource};

fn compile(config: &Value) -> Result<Config, ConfigError> {
    Config::from_json(config.to_string().as_bytes())
}

fn accepted(config: &Value) -> Config {
    compile(config).unwrap_or_else(|err| panic!("refused: {err}\n{config}"))
}

/// The path of the error refusing `config`.
fn refused_at(config: &Value) -> String {
    match compile(config) {
        Ok(_) => panic!("accepted: {config}"),
        Err(err) => err.path,
    }
}

/// `minimal` with `field` of its one provider set to `value`.
fn with_provider_field(field: &str, value: Value) -> Value {
    let mut config = minimal(json!({}));
    config["providers"][0][field] = value;
    config
}

/// A provider with remote keys, `extra` merged into `jwks.remote`.
fn remote(extra: Value) -> Value {
    let mut source = json!({"cluster": "idp", "authority": "idp.example", "path": "/jwks.json"});
    for (name, value) in extra.as_object().unwrap() {
        source[name] = value.clone();
    }
    json!({
        "providers": [{
            "name": "idp",
            "issuer": "https://idp.example/",
            "audiences": ["api"],
            "algorithms": ["ES256"],
            "jwks": {"remote": source}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    })
}

fn remote_source(config: &Config) -> RemoteSource {
    config
        .providers
        .iter()
        .next()
        .and_then(|(_, provider)| provider.remote.clone())
        .unwrap()
}

fn dpop(settings: Value) -> Value {
    minimal(json!({"dpop_proofs": settings}))
}

#[test]
fn the_token_cache_defaults_to_4096_tokens_8_mib_and_300_seconds() {
    let config = accepted(&minimal(json!({})));
    assert_eq!(
        config.token_cache,
        CacheLimits {
            max_entries: 4096,
            max_bytes: 8 * 1024 * 1024,
            ttl_seconds: 300,
        }
    );
    // Each default stands alone: setting one field keeps the others.
    let config = accepted(&minimal(json!({"token_cache": {"max_entries": 0}})));
    assert_eq!(config.token_cache.max_entries, 0);
    assert_eq!(config.token_cache.max_bytes, 8 * 1024 * 1024);
    assert_eq!(config.token_cache.ttl_seconds, 300);
}

#[test]
fn remote_key_retries_default_to_one_second_doubling_up_to_300_seconds() {
    let source = remote_source(&accepted(&remote(json!({}))));
    assert_eq!(source.retry_initial_ms, 1000);
    assert_eq!(source.retry_max_ms, 300_000);
}

#[test]
fn clock_skew_is_at_most_600_seconds() {
    let config = accepted(&with_provider_field("clock_skew_seconds", json!(600)));
    assert_eq!(
        config.providers.iter().next().unwrap().1.clock_skew_seconds,
        600
    );
    assert_eq!(
        refused_at(&with_provider_field("clock_skew_seconds", json!(601))),
        "providers[0].clock_skew_seconds"
    );
    assert_eq!(
        refused_at(&with_provider_field("clock_skew_seconds", json!(-1))),
        "providers[0].clock_skew_seconds"
    );
}

#[test]
fn max_token_bytes_is_between_64_and_65536() {
    for bytes in [64, 65536] {
        let config = accepted(&with_provider_field("max_token_bytes", json!(bytes)));
        assert_eq!(
            config.providers.iter().next().unwrap().1.max_token_bytes,
            bytes
        );
    }
    for bytes in [0, 63, 65537] {
        assert_eq!(
            refused_at(&with_provider_field("max_token_bytes", json!(bytes))),
            "providers[0].max_token_bytes",
            "{bytes}"
        );
    }
}

#[test]
fn remote_timeouts_and_response_sizes_are_refused_above_their_upper_bounds() {
    let source = remote_source(&accepted(&remote(
        json!({"timeout_ms": 60_000, "max_response_bytes": 4 * 1024 * 1024}),
    )));
    assert_eq!(source.timeout_ms, 60_000);
    assert_eq!(source.max_response_bytes, 4 * 1024 * 1024);
    let source = remote_source(&accepted(&remote(
        json!({"timeout_ms": 100, "max_response_bytes": 1024}),
    )));
    assert_eq!(source.timeout_ms, 100);
    assert_eq!(source.max_response_bytes, 1024);
    assert_eq!(
        refused_at(&remote(json!({"timeout_ms": 60_001}))),
        "providers[0].jwks.remote.timeout_ms"
    );
    assert_eq!(
        refused_at(&remote(json!({"max_response_bytes": 4 * 1024 * 1024 + 1}))),
        "providers[0].jwks.remote.max_response_bytes"
    );
}

#[test]
fn outage_status_is_503_by_default_or_401_and_nothing_else() {
    assert_eq!(
        remote_source(&accepted(&remote(json!({})))).outage_status,
        503
    );
    assert_eq!(
        remote_source(&accepted(&remote(json!({"outage_status": 401})))).outage_status,
        401
    );
    for status in [200, 403, 500, 502] {
        assert_eq!(
            refused_at(&remote(json!({"outage_status": status}))),
            "providers[0].jwks.remote.outage_status"
        );
    }
}

#[test]
fn no_cache_and_no_store_count_as_max_age_zero_then_the_minimum_applies() {
    for header in [
        "no-cache",
        "no-store",
        "max-age=900, no-cache",
        "No-Store, max-age=900",
    ] {
        assert_eq!(max_age_seconds(header), Some(0), "{header}");
    }
    let source = remote_source(&accepted(&remote(json!({}))));
    assert_eq!(
        cache_duration_ms(&source, max_age_seconds("max-age=900, no-cache")),
        300_000
    );
    assert_eq!(
        cache_duration_ms(&source, max_age_seconds("max-age=900")),
        900_000
    );
}

#[test]
fn dpop_proofs_default_to_the_documented_settings() {
    let config = accepted(&minimal(json!({})));
    assert_eq!(config.dpop, DpopSettings::default());
    assert_eq!(
        config.dpop.algorithms,
        vec![
            Alg::Es256,
            Alg::Es384,
            Alg::Es512,
            Alg::EdDsa,
            Alg::Rs256,
            Alg::Ps256
        ]
    );
    assert_eq!(config.dpop.max_age_seconds, 60);
    assert_eq!(config.dpop.clock_skew_seconds, 5);
    assert!(!config.dpop.use_dpop_nonce);
    assert_eq!(config.dpop.nonce_lifetime_seconds, 300);
    assert_eq!(config.dpop.htu_scheme, None);
    assert_eq!(config.dpop.htu_authority, None);
    assert_eq!(config.dpop.replay_cache_entries, 65_536);
    assert_eq!(config.dpop.max_proof_bytes, 4096);
    // An empty section is the same as none.
    assert_eq!(accepted(&dpop(json!({}))).dpop, DpopSettings::default());
}

#[test]
fn dpop_proof_settings_are_refused_outside_their_documented_ranges() {
    let edges: [(&str, i64, i64); 5] = [
        ("max_age_seconds", 1, 3600),
        ("clock_skew_seconds", 0, 300),
        ("nonce_lifetime_seconds", 10, 86_400),
        ("replay_cache_entries", 256, 1_048_576),
        ("max_proof_bytes", 256, 16_384),
    ];
    for (field, low, high) in edges {
        for value in [low, high] {
            let config = accepted(&dpop(json!({field: value})));
            let compiled = match field {
                "max_age_seconds" => config.dpop.max_age_seconds,
                "clock_skew_seconds" => config.dpop.clock_skew_seconds,
                "nonce_lifetime_seconds" => config.dpop.nonce_lifetime_seconds,
                "replay_cache_entries" => config.dpop.replay_cache_entries as i64,
                _ => config.dpop.max_proof_bytes as i64,
            };
            assert_eq!(compiled, value, "{field}");
        }
        for value in [low - 1, high + 1] {
            if value < 0 {
                continue;
            }
            assert_eq!(
                refused_at(&dpop(json!({field: value}))),
                format!("dpop_proofs.{field}"),
                "{field} = {value}"
            );
        }
        assert_eq!(
            refused_at(&dpop(json!({field: -1}))),
            format!("dpop_proofs.{field}"),
            "{field} = -1"
        );
    }
}

#[test]
fn two_providers_may_share_neither_a_name_nor_an_issuer() {
    let mut config = minimal(json!({}));
    let first = config["providers"][0].clone();
    let mut same_name = first.clone();
    same_name["issuer"] = json!("https://other.example/");
    config["providers"] = json!([first.clone(), same_name]);
    let err = compile(&config).err().unwrap();
    assert_eq!(err.path, "providers[1].name");
    assert!(err.message.contains("duplicate provider name"), "{err}");

    let mut same_issuer = first.clone();
    same_issuer["name"] = json!("other");
    config["providers"] = json!([first.clone(), same_issuer]);
    let err = compile(&config).err().unwrap();
    assert_eq!(err.path, "providers[1].issuer");

    // Different names and issuers are two providers.
    let mut other = first.clone();
    other["name"] = json!("other");
    other["issuer"] = json!("https://other.example/");
    config["providers"] = json!([first, other]);
    assert_eq!(accepted(&config).providers.len(), 2);
}

#[test]
fn host_authorization_and_hop_by_hop_headers_cannot_carry_identity() {
    for header in [
        "host",
        "Host",
        "authorization",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
        ":authority",
    ] {
        let config = minimal(json!({"identity": {"headers": [
            {"header": header, "claim": "sub"}
        ]}}));
        assert_eq!(
            refused_at(&config),
            "identity.headers[0].header",
            "{header} was accepted"
        );
    }
    let config = minimal(json!({"identity": {"headers": [
        {"header": "x-user-id", "claim": "sub"}
    ]}}));
    assert_eq!(accepted(&config).identity.headers.len(), 1);
}
