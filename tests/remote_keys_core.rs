//! Remote key sources in the core, without Envoy: the configuration compiles them (and
//! refuses bad ones naming the field), and the decision reports a key miss the adapter
//! can wait on, with the configured outage status.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use std::sync::Arc;

use claimgate::decision::KeyMiss;
use claimgate::jwks::{Alg, KeySet, SymmetricKeys};
use claimgate::keysource::SourceKind;
use claimgate::mint::SigningKey;
use claimgate::{
    decide, Config, ConfigError, Environment, Input, Outcome, RequestView, UnixSeconds,
};
use serde_json::{json, Value};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://tenant.example.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";

fn config_with(jwks: Value) -> Value {
    json!({
        "providers": [{
            "name": "auth0",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["RS256", "ES256"],
            "jwks": jwks
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    })
}

fn compile(config: &Value) -> Result<Config, ConfigError> {
    Config::from_json(config.to_string().as_bytes())
}

fn error(config: Value) -> ConfigError {
    match compile(&config) {
        Ok(_) => panic!("accepted: {config}"),
        Err(err) => err,
    }
}

fn remote() -> Value {
    json!({"remote": {"cluster": "auth0_jwks", "path": "/.well-known/jwks.json", "authority": "tenant.example.auth0.com"}})
}

fn request(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/orders".to_vec()),
        (":authority".into(), b"api.example.com".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ]
}

fn token(key: &SigningKey) -> String {
    key.sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|1", "exp": NOW + 600}))
        .unwrap()
}

#[test]
fn a_remote_source_compiles_with_documented_defaults() {
    let config = compile(&config_with(remote())).unwrap();
    let (_, provider) = config.providers.iter().next().unwrap();
    let source = provider.remote.as_ref().unwrap();
    assert!(provider.inline_keys.is_none());
    assert_eq!(source.timeout_ms, 5000);
    assert_eq!(source.cache_duration_ms, 600_000);
    assert_eq!(source.min_cache_duration_ms, 300_000);
    assert_eq!(source.max_cache_duration_ms, 86_400_000);
    assert_eq!(source.max_stale_ms, 86_400_000);
    assert_eq!(source.unknown_kid_interval_ms, 30_000);
    assert_eq!(source.max_response_bytes, 262_144);
    assert_eq!(source.outage_status, 503);
    assert!(source.shared_key.starts_with("claimgate/auth0/"));
    match &source.kind {
        SourceKind::Jwks(endpoint) => {
            assert_eq!(endpoint.cluster, "auth0_jwks");
            assert_eq!(endpoint.authority, "tenant.example.auth0.com");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn discovery_defaults_to_the_issuer_host_and_well_known_path() {
    let config = compile(&config_with(json!({"discovery": {"cluster": "auth0"}}))).unwrap();
    let (_, provider) = config.providers.iter().next().unwrap();
    match &provider.remote.as_ref().unwrap().kind {
        SourceKind::Discovery {
            document,
            jwks_cluster,
            allow_cross_origin,
        } => {
            assert_eq!(document.authority, "tenant.example.auth0.com");
            assert_eq!(document.path, "/.well-known/openid-configuration");
            assert_eq!(jwks_cluster, "auth0");
            assert!(!allow_cross_origin);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_remote_sources_are_refused_naming_the_field() {
    let cases = [
        (json!({}), "providers[0].jwks"),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h"}, "discovery": {"cluster": "c"}}),
            "providers[0].jwks",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j"}}),
            "providers[0].jwks.remote.authority",
        ),
        (
            json!({"remote": {"cluster": "c", "authority": "h"}}),
            "providers[0].jwks.remote.path",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "j", "authority": "h"}}),
            "providers[0].jwks.remote.path",
        ),
        (
            json!({"remote": {"cluster": "", "path": "/j", "authority": "h"}}),
            "providers[0].jwks.remote.cluster",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "timeout_ms": 10}}),
            "providers[0].jwks.remote.timeout_ms",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "outage_status": 500}}),
            "providers[0].jwks.remote.outage_status",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "cache_duration_seconds": 10}}),
            "providers[0].jwks.remote.cache_duration_seconds",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "min_cache_duration_seconds": 900, "max_cache_duration_seconds": 600}}),
            "providers[0].jwks.remote.min_cache_duration_seconds",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "allow_cross_origin_jwks_uri": true}}),
            "providers[0].jwks.remote.allow_cross_origin_jwks_uri",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "max_response_bytes": 10}}),
            "providers[0].jwks.remote.max_response_bytes",
        ),
        (
            json!({"remote": {"cluster": "c", "path": "/j", "authority": "h", "refresh": 1}}),
            "providers[0].jwks.remote.refresh",
        ),
    ];
    for (jwks, path) in cases {
        let err = error(config_with(jwks.clone()));
        assert_eq!(err.path, path, "{jwks}: {err}");
    }
    let mut config = config_with(json!({"discovery": {"cluster": "c"}}));
    config["providers"][0]["issuer"] = json!("tenant-without-url");
    assert_eq!(error(config).path, "providers[0].issuer");
}

#[test]
fn without_keys_the_decision_is_503_and_names_the_provider_to_wait_for() {
    let config = compile(&config_with(remote())).unwrap();
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let decision = decide(
        Input::new(RequestView::new(&request(&token(&key)))),
        Environment::new(&config, &config.initial_keys(), UnixSeconds(NOW)),
    );
    assert_eq!(decision.status(), 503);
    assert_eq!(
        decision.key_miss,
        Some(KeyMiss::no_keys(config.provider_id("auth0").unwrap()))
    );
    let claimgate::Outcome::Deny(denial) = &decision.outcome else {
        panic!("allowed without keys");
    };
    assert!(denial.headers.iter().any(|(name, _)| name == "retry-after"));

    let mut as_401 = config_with(remote());
    as_401["providers"][0]["jwks"]["remote"]["outage_status"] = json!(401);
    let config = compile(&as_401).unwrap();
    let decision = decide(
        Input::new(RequestView::new(&request(&token(&key)))),
        Environment::new(&config, &config.initial_keys(), UnixSeconds(NOW)),
    );
    assert_eq!(decision.status(), 401);
    assert_eq!(
        decision.key_miss,
        Some(KeyMiss::no_keys(config.provider_id("auth0").unwrap()))
    );
}

#[test]
fn an_unknown_kid_is_401_and_reported_as_a_key_miss() {
    let config = compile(&config_with(remote())).unwrap();
    let known = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let unknown = SigningKey::generate(Alg::Es256, Some("k2")).unwrap();
    let mut keys = config.initial_keys();
    let set = KeySet::from_jwks_value(
        &json!({"keys": [known.public_jwk()]}),
        SymmetricKeys::Refused,
    )
    .unwrap()
    .keys;
    keys.replace(config.provider_id("auth0").unwrap(), Arc::new(set));
    let allowed = decide(
        Input::new(RequestView::new(&request(&token(&known)))),
        Environment::new(&config, &keys, UnixSeconds(NOW)),
    );
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.key_miss, None);
    let refused = decide(
        Input::new(RequestView::new(&request(&token(&unknown)))),
        Environment::new(&config, &keys, UnixSeconds(NOW)),
    );
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.key_miss,
        Some(KeyMiss::unknown_kid(config.provider_id("auth0").unwrap()))
    );
    let Outcome::Deny(denial) = &refused.outcome else {
        panic!("allowed: {}", refused.reason);
    };
    let challenge = denial
        .headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .map(|(_, value)| value.as_str());
    assert_eq!(
        challenge,
        Some("Bearer realm=\"claimgate\", error=\"invalid_token\", error_description=\"unknown signing key\"")
    );
}

#[test]
fn inline_keys_beside_a_remote_source_verify_before_any_fetch() {
    let pinned = SigningKey::generate(Alg::Es256, Some("pinned")).unwrap();
    let mut jwks = remote();
    jwks["inline"] = json!({"keys": [pinned.public_jwk()]});
    let config = compile(&config_with(jwks)).unwrap();
    let decision = decide(
        Input::new(RequestView::new(&request(&token(&pinned)))),
        Environment::new(&config, &config.initial_keys(), UnixSeconds(NOW)),
    );
    assert_eq!(decision.status(), 200);
}
