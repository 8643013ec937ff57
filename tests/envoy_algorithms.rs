//! Every supported algorithm through a real Envoy: tokens signed at test time verify,
//! forged ones are refused, and an HS256 token "signed" with an RSA public key fails.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::{json, Value};
use support::Envoy;

const ISSUER: &str = "https://login.example.com/";
const AUDIENCE: &str = "https://api.example.com";

fn claims(sub: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600})
}

#[test]
fn every_algorithm_verifies_and_forgeries_fail_through_envoy() {
    let keys: Vec<SigningKey> = Alg::ALL
        .into_iter()
        .map(|alg| SigningKey::generate(alg, Some(alg.name())).unwrap())
        .collect();
    let config = json!({
        "realm": "algorithms",
        "providers": [{
            "name": "idp",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": Alg::ALL.map(Alg::name),
            "jwks": {"inline": {"keys": keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>()}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "identity": {"headers": [{"header": "x-user-id", "claim": "sub"}], "strip_prefixes": ["x-user-"]}
    });
    let envoy = Envoy::start(&config.to_string());
    for key in &keys {
        let alg = key.alg();
        let token = key.sign(&claims(&format!("user-{alg}"))).unwrap();
        let bearer = format!("Bearer {token}");
        let response = envoy.request(
            "GET",
            "/resource",
            &[("authorization", &bearer), ("x-user-id", "spoofed")],
        );
        assert_eq!(response.status, 200, "{alg}: {}", response.body);
        let echo: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(echo["headers"]["x-user-id"], format!("user-{alg}"), "{alg}");

        let impostor = SigningKey::generate(alg, Some(alg.name())).unwrap();
        let forged = format!("Bearer {}", impostor.sign(&claims("intruder")).unwrap());
        let response = envoy.request("GET", "/resource", &[("authorization", &forged)]);
        assert_eq!(response.status, 401, "{alg} forged");
        let challenge = response
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{alg}: {challenge}"
        );
    }
    let rsa = keys.iter().find(|key| key.alg() == Alg::Rs256).unwrap();
    let n = rsa.public_jwk()["n"].as_str().unwrap().to_owned();
    let confused =
        SigningKey::from_jwk(&json!({"kty": "oct", "k": n, "alg": "HS256", "kid": "RS256"}))
            .unwrap();
    let bearer = format!("Bearer {}", confused.sign(&claims("intruder")).unwrap());
    assert_eq!(
        envoy
            .request("GET", "/resource", &[("authorization", &bearer)])
            .status,
        401
    );
    let mut none_header = serde_json::Map::new();
    none_header.insert("alg".into(), json!("none"));
    let unsigned = rsa
        .sign_with_header(none_header, &claims("intruder"))
        .unwrap();
    let unsigned = format!("Bearer {}.", unsigned.rsplit_once('.').unwrap().0);
    assert_eq!(
        envoy
            .request("GET", "/resource", &[("authorization", &unsigned)])
            .status,
        401
    );
}
