//! The decision core compiled for `wasm32-unknown-unknown` and run in Node through
//! wasm-bindgen-test: the same code Envoy runs, on a Wasm engine.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::cases::CaseFile;
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use claimgate::{decide, Config, Decision, Environment, Input, Outcome, RequestView, UnixSeconds};
use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

const AETHERMARKET: &str = include_str!("../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../filter-config/demo/private-demo-only.jwk.json");
const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "https://aethermarket.auth0.com/";
const AUDIENCE: &str = "https://api.aethermarket.com";

/// The demo RSA key, relabelled for another RSA algorithm (RSA keys generate slowly in Wasm).
fn rsa_key(alg: Alg) -> SigningKey {
    let mut jwk: Value = serde_json::from_str(DEMO_KEY).unwrap();
    jwk["alg"] = json!(alg.name());
    jwk["kid"] = json!(alg.name());
    SigningKey::from_jwk(&jwk).unwrap()
}

fn key_for(alg: Alg) -> SigningKey {
    match alg {
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => rsa_key(alg),
        other => SigningKey::generate(other, Some(other.name())).unwrap(),
    }
}

fn claims(extra: Value) -> Value {
    let mut claims =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "apple|001", "exp": NOW + 600, "iat": NOW});
    let Value::Object(extra) = extra else {
        panic!("extra claims must be a JSON object: {extra}");
    };
    claims.as_object_mut().unwrap().extend(extra);
    claims
}

fn request(path: &str, token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"shop".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
        ("x-user-id".into(), b"spoofed".to_vec()),
    ]
}

fn run(config: &Config, path: &str, token: &str) -> Decision {
    decide(
        Input::new(RequestView::new(&request(path, token))),
        Environment::new(config, &config.initial_keys(), UnixSeconds(NOW)),
    )
}

fn all_algorithms_config(keys: &[SigningKey]) -> Config {
    let jwks: Vec<Value> = keys.iter().map(SigningKey::public_jwk).collect();
    let config = json!({
        "providers": [{
            "name": "idp",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": Alg::ALL.map(Alg::name),
            "jwks": {"inline": {"keys": jwks}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "identity": {"headers": [{"header": "x-user-id", "claim": "sub"}]}
    });
    Config::from_json(config.to_string().as_bytes()).unwrap()
}

#[wasm_bindgen_test]
fn every_algorithm_verifies_in_wasm() {
    let keys: Vec<SigningKey> = Alg::ALL.into_iter().map(key_for).collect();
    let config = all_algorithms_config(&keys);
    for key in &keys {
        let token = key.sign(&claims(json!({}))).unwrap();
        let decision = run(&config, "/anything", &token);
        assert_eq!(decision.status(), 200, "{}: {}", key.alg(), decision.reason);
    }
}

#[wasm_bindgen_test]
fn forged_tokens_fail_in_wasm() {
    let keys: Vec<SigningKey> = Alg::ALL.into_iter().map(key_for).collect();
    let config = all_algorithms_config(&keys);
    for key in &keys {
        let good = key.sign(&claims(json!({}))).unwrap();
        // Same kid and algorithm, different key material; RSA keys generate slowly in
        // Wasm, so an RSA "impostor" signature is the good one with one bit flipped.
        let forged = match key.alg() {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                let (signed, signature) = good.rsplit_once('.').unwrap();
                let mut signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
                signature[7] ^= 0x10;
                format!("{signed}.{}", Base64UrlUnpadded::encode_string(&signature))
            }
            alg => SigningKey::generate(alg, Some(alg.name()))
                .unwrap()
                .sign(&claims(json!({})))
                .unwrap(),
        };
        assert_eq!(run(&config, "/x", &forged).status(), 401, "{}", key.alg());
        // A valid token with its payload swapped keeps the old signature.
        let other = key.sign(&claims(json!({"sub": "auth0|admin"}))).unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let other_parts: Vec<&str> = other.split('.').collect();
        let swapped = format!("{}.{}.{}", parts[0], other_parts[1], parts[2]);
        assert_eq!(
            run(&config, "/x", &swapped).status(),
            401,
            "{} swapped",
            key.alg()
        );
    }
    // HS256 "signed" with the RSA public key as the HMAC secret.
    let rsa = rsa_key(Alg::Rs256);
    let n = rsa.public_jwk()["n"].as_str().unwrap().to_owned();
    let confused =
        SigningKey::from_jwk(&json!({"kty": "oct", "k": n, "alg": "HS256", "kid": "RS256"}))
            .unwrap();
    let token = confused.sign(&claims(json!({}))).unwrap();
    assert_eq!(run(&config, "/x", &token).status(), 401);
}

#[wasm_bindgen_test]
fn aethermarket_policy_and_header_mapping_in_wasm() {
    let config = Config::from_json(AETHERMARKET.as_bytes()).unwrap();
    let demo = SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap();
    let gold = demo
        .sign(&claims(json!({
            "https://aethermarket.com/loyalty_tier": "Gold",
            "https://aethermarket.com/roles": ["member", "vip"],
            "name": "Grace Hopper"
        })))
        .unwrap();
    let decision = run(&config, "/deals/exclusive", &gold);
    let Outcome::Allow(allowed) = &decision.outcome else {
        panic!("expected allow: {}", decision.reason);
    };
    let set_headers = allowed.set_headers();
    let get = |name: &str| {
        set_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("x-user-id"), Some("apple|001"));
    assert_eq!(get("x-auth-provider"), Some("apple"));
    assert_eq!(get("x-loyalty-tier"), Some("Gold"));
    assert_eq!(get("x-user-roles"), Some("member,vip"));
    assert_eq!(get("x-user-name"), Some("Grace Hopper"));
    assert!(decision.remove_headers.iter().any(|h| h == "x-user-id"));

    let bronze = demo
        .sign(&claims(
            json!({"https://aethermarket.com/loyalty_tier": "Bronze"}),
        ))
        .unwrap();
    assert_eq!(run(&config, "/deals/exclusive", &bronze).status(), 403);
}

#[wasm_bindgen_test]
fn every_shipped_policy_case_passes_in_wasm() {
    let config = Config::from_json(AETHERMARKET.as_bytes()).unwrap();
    let cases = CaseFile::from_value(
        serde_yaml_ng::from_str(include_str!("../filter-config/aethermarket.cases.yaml")).unwrap(),
    )
    .unwrap();
    let keys = config.initial_keys();
    let now = cases.now.unwrap();
    assert!(cases.cases.len() > 20, "{} cases", cases.cases.len());
    for case in &cases.cases {
        assert_eq!(
            case.run(&config, &keys, UnixSeconds(now)),
            Vec::<String>::new(),
            "{}",
            case.name
        );
    }
}
