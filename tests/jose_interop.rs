//! Keys from `claimgate keygen` and the demo key work in an independent JOSE library
//! (PyJWT on `cryptography`, installed by `scripts/bootstrap.sh --wasm-tests`), and tokens
//! that library signs are accepted by claimgate — in the core here, through Envoy in
//! `tests/envoy/jose_interop.rs`. So the private JWKs are complete (RFC 7518 §6.3.2) and
//! verification is not only agreeing with claimgate's own signing.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

#[path = "support/pyjwt.rs"]
mod pyjwt;
#[path = "support/tokens.rs"]
mod tokens;

use std::process::Command;

use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::{decide, Config, Environment, Input, RequestView, UnixSeconds};
use pyjwt::sign as pyjwt_sign;
use serde_json::{json, Value};
use tokens::now;

const ISSUER: &str = "https://interop.example/";
const AUDIENCE: &str = "https://api.example";

fn keygen(alg: &str) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(["keygen", "--alg", alg, "--kid", &format!("{alg}-1")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn public_jwk(private: &Value) -> Value {
    claimgate::mint::SigningKey::from_jwk(private)
        .unwrap()
        .public_jwk()
}

fn claims() -> Value {
    tokens::claims(ISSUER, AUDIENCE, json!({"sub": "auth0|interop"}))
}

#[test]
fn keygen_keys_sign_in_pyjwt_and_claimgate_accepts_the_tokens() {
    for alg in [
        "RS256", "RS512", "PS256", "ES256", "ES384", "ES512", "EdDSA", "HS256", "HS512",
    ] {
        let private = keygen(alg);
        let token = pyjwt_sign(&private, &claims());
        let config = json!({
            "providers": [{
                "name": "interop", "issuer": ISSUER, "audiences": [AUDIENCE],
                "algorithms": [alg],
                "jwks": {"inline": {"keys": [public_jwk(&private)]}}
            }],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
        });
        let config = Config::from_json(config.to_string().as_bytes()).unwrap();
        let headers = vec![
            (":method".to_owned(), b"GET".to_vec()),
            (":path".to_owned(), b"/x".to_vec()),
            (":authority".to_owned(), b"api.example".to_vec()),
            (
                "authorization".to_owned(),
                format!("Bearer {token}").into_bytes(),
            ),
        ];
        let decision = decide(
            Input::new(RequestView::new(&headers)),
            Environment::new(&config, &config.initial_keys(), UnixSeconds(now())),
        );
        assert_eq!(decision.status(), 200, "{alg}: {}", decision.reason);
        // The same library's signature, one bit off, is refused.
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let mut signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
        signature[0] ^= 0x01;
        let forged = format!("{signed}.{}", Base64UrlUnpadded::encode_string(&signature));
        let headers = [
            &headers[..3],
            &[(
                "authorization".to_owned(),
                format!("Bearer {forged}").into_bytes(),
            )],
        ]
        .concat();
        let decision = decide(
            Input::new(RequestView::new(&headers)),
            Environment::new(&config, &config.initial_keys(), UnixSeconds(now())),
        );
        assert_eq!(decision.status(), 401, "{alg} forged");
        assert!(
            decision.reason.contains("invalid signature"),
            "{alg} forged: {}",
            decision.reason
        );
    }
}
