//! Every supported algorithm through a real Envoy: tokens signed at test time verify,
//! forged ones are refused, and an HS256 token "signed" with an RSA public key fails.

use crate::support::tokens::claims as standard_claims;
use crate::support::{envoy_checks, uncached_keys_config, Envoy};
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::{json, Value};

const ISSUER: &str = "https://login.example.com/";
const AUDIENCE: &str = "https://api.example.com";

fn claims(sub: &str) -> Value {
    standard_claims(ISSUER, AUDIENCE, json!({"sub": sub}))
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
            &[
                ("authorization", &bearer),
                ("x-user-id", "spoofed"),
                ("x-user-id", "spoofed-twice"),
                ("x-user-role", "admin"),
            ],
        );
        assert_eq!(response.status, 200, "{alg}: {}", response.body);
        let echo: Value = serde_json::from_str(&response.body).unwrap();
        // Every client value of a mapped header is gone, not only the first.
        assert_eq!(echo["headers"]["x-user-id"], format!("user-{alg}"), "{alg}");
        assert!(echo["headers"].get("x-user-role").is_none(), "{alg}");

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

/// The token with one bit of its signature flipped.
fn with_flipped_signature_bit(token: &str) -> String {
    crate::support::with_signature_bits_flipped(token, 5, 0x04)
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn envoy_crypto_checks_rs_and_es_signatures_and_still_refuses_tampering() {
    let algs = [
        Alg::Rs256,
        Alg::Rs512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::Ps256,
    ];
    let keys: Vec<SigningKey> = algs
        .into_iter()
        .map(|alg| SigningKey::generate(alg, Some(alg.name())).unwrap())
        .collect();
    let config = |host_crypto: &str| uncached_keys_config(ISSUER, AUDIENCE, &keys, host_crypto);
    for host_crypto in ["auto", "off"] {
        let envoy = Envoy::start(&config(host_crypto));
        // Under `auto` the counter must exist (a renamed or missing stat fails here
        // instead of reading as 0); under `off` it is absent or 0.
        let checks = |envoy: &Envoy| match host_crypto {
            "auto" => envoy_checks(envoy).expect("claimgate.signatures.checked_by_envoy"),
            _ => envoy_checks(envoy).unwrap_or(0),
        };
        let self_test_calls = checks(&envoy);
        let mut offered = 0;
        for key in &keys {
            let alg = key.alg();
            let token = key.sign(&claims(&format!("user-{alg}"))).unwrap();
            let (header, rest) = token.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let other_payload = key.sign(&claims("intruder")).unwrap();
            let payload_swapped = format!(
                "{header}.{}.{signature}",
                other_payload.split('.').nth(1).unwrap()
            );
            for (case, token, status) in [
                ("valid", token.clone(), 200),
                (
                    "signature bit flipped",
                    with_flipped_signature_bit(&token),
                    401,
                ),
                ("payload swapped", payload_swapped, 401),
            ] {
                let bearer = format!("Bearer {token}");
                let response = envoy.request("GET", "/resource", &[("authorization", &bearer)]);
                assert_eq!(response.status, status, "{host_crypto} {alg} {case}");
            }
            if alg != Alg::Ps256 {
                offered += 3;
            }
        }
        let request_calls = checks(&envoy) - self_test_calls;
        match host_crypto {
            // Every RS*/ES* check went to Envoy; PS256 never does.
            "auto" => {
                // Eight signatures per VM that runs the self-test (the main thread's and
                // each worker's), no more.
                assert!(
                    self_test_calls >= 8 && self_test_calls % 8 == 0,
                    "self-test calls {self_test_calls}"
                );
                assert_eq!(request_calls, offered, "{}", envoy.log());
                assert!(envoy.log().contains(
                    "RS256, RS384, RS512, ES256, ES384, ES512 signatures checked by Envoy's crypto library"
                ));
            }
            _ => {
                assert_eq!(self_test_calls + request_calls, 0);
                assert!(
                    !envoy.log().contains("checked by Envoy's crypto library"),
                    "{}",
                    envoy.log()
                );
            }
        }
    }
}
