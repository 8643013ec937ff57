//! The AetherMarket demo through a real Envoy with the built Wasm module: every route,
//! its status and challenge, the identity headers upstream receives, and spoofed headers
//! removed. Tokens are signed at test time with the demo key.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use claimgate::mint::SigningKey;
use serde_json::{json, Value};
use support::{Envoy, Response};

const CONFIG: &str = include_str!("../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../filter-config/demo/private-demo-only.jwk.json");
const NS: &str = "https://aethermarket.com/";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn demo_key() -> SigningKey {
    SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap()
}

fn token(extra: Value) -> String {
    let mut claims = json!({
        "iss": "https://aethermarket.auth0.com/",
        "aud": "https://api.aethermarket.com",
        "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
        "iat": now(),
        "exp": now() + 600,
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    demo_key().sign(&claims).unwrap()
}

fn get(
    envoy: &Envoy,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Response {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut headers: Vec<(&str, &str)> = extra.to_vec();
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    envoy.request(method, path, &headers)
}

fn header<'r>(response: &'r Response, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// The headers the echo upstream received.
fn upstream_headers(response: &Response) -> Value {
    let body: Value = serde_json::from_str(&response.body)
        .unwrap_or_else(|err| panic!("echo body is not JSON ({err}): {}", response.body));
    body["headers"].clone()
}

const SPOOFED: [(&str, &str); 5] = [
    ("x-user-id", "auth0|admin"),
    ("x-user-roles", "admin"),
    ("x-auth-provider", "google"),
    ("x-customer-id", "cus_victim"),
    ("x-loyalty-tier", "Platinum"),
];

#[test]
fn every_demo_route_behaves_as_documented_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    let plain = token(json!({}));
    let gold = token(json!({format!("{NS}loyalty_tier"): "Gold"}));
    let silver = token(json!({format!("{NS}loyalty_tier"): "Silver"}));
    let reader = token(json!({"permissions": ["admin:read"]}));
    let writer = token(json!({"permissions": ["admin:read", "admin:write"]}));
    let eu = token(json!({format!("{NS}region"): "EU"}));
    let us = token(json!({format!("{NS}region"): "US"}));
    let orders = token(json!({"scope": "openid orders:write"}));
    let cases: Vec<(&str, &str, Option<&str>, u16)> = vec![
        ("GET", "/public/catalog", None, 200),
        ("GET", "/public/catalog", Some(&plain), 200),
        ("GET", "/products/42", Some(&plain), 200),
        ("GET", "/products/42", None, 401),
        ("GET", "/deals/exclusive", Some(&gold), 200),
        ("GET", "/deals/exclusive", Some(&silver), 403),
        ("GET", "/recommendations", Some(&plain), 200),
        ("GET", "/recommendations", None, 401),
        ("GET", "/admin/users", Some(&reader), 200),
        ("POST", "/admin/users", Some(&reader), 403),
        ("POST", "/admin/users", Some(&writer), 200),
        ("GET", "/eu/offers", Some(&eu), 200),
        ("GET", "/eu/offers", Some(&us), 403),
        ("POST", "/orders", Some(&orders), 200),
        ("POST", "/orders", Some(&plain), 403),
        ("GET", "/somewhere-else", Some(&writer), 403),
    ];
    for (method, path, token, status) in cases {
        let response = get(&envoy, method, path, token, &SPOOFED);
        assert_eq!(
            response.status, status,
            "{method} {path}: {}",
            response.body
        );
        match status {
            200 => {
                let upstream = upstream_headers(&response);
                for (name, spoofed) in SPOOFED {
                    assert_ne!(
                        upstream[name].as_str(),
                        Some(spoofed),
                        "{method} {path}: spoofed {name} reached upstream"
                    );
                }
                if token.is_some() {
                    assert_eq!(
                        upstream["x-user-id"], "auth0|5f7c8ec7c33c6c004bbafe82",
                        "{method} {path}"
                    );
                    assert_eq!(upstream["x-auth-provider"], "database", "{method} {path}");
                } else {
                    assert!(upstream.get("x-user-id").is_none(), "{method} {path}");
                }
            }
            401 => assert_eq!(
                header(&response, "www-authenticate"),
                Some("Bearer realm=\"aethermarket\""),
                "{method} {path}"
            ),
            _ => {
                let challenge = header(&response, "www-authenticate").unwrap_or_default();
                assert!(
                    challenge.contains("error=\"insufficient_scope\""),
                    "{method} {path}: {challenge}"
                );
            }
        }
    }
}

#[test]
fn identity_headers_reach_upstream_normalized() {
    let envoy = Envoy::start(CONFIG);
    let token = token(json!({
        "sub": "google-oauth2|109",
        "email": "ada@example.com",
        "given_name": "Ada",
        "family_name": "Lovelace",
        format!("{NS}customer_id"): "cus_42",
        format!("{NS}loyalty_tier"): "Platinum",
        format!("{NS}roles"): ["member", "beta"],
        format!("{NS}preferred_currency"): "EUR",
    }));
    let response = get(&envoy, "GET", "/deals/exclusive", Some(&token), &SPOOFED);
    assert_eq!(response.status, 200, "{}", response.body);
    let upstream = upstream_headers(&response);
    for (name, value) in [
        ("x-user-id", "google-oauth2|109"),
        ("x-user-email", "ada@example.com"),
        ("x-user-name", "Ada Lovelace"),
        ("x-customer-id", "cus_42"),
        ("x-loyalty-tier", "Platinum"),
        ("x-user-roles", "member,beta"),
        ("x-user-currency", "EUR"),
        ("x-auth-provider", "google"),
    ] {
        assert_eq!(upstream[name], value, "{name}");
    }
    assert_eq!(upstream["authorization"], format!("Bearer {token}"));
}

#[test]
fn invalid_tokens_get_rfc6750_challenges_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    let expired = demo_key()
        .sign(&json!({"iss": "https://aethermarket.auth0.com/", "aud": "https://api.aethermarket.com", "sub": "s", "exp": now() - 3600}))
        .unwrap();
    let wrong_audience = demo_key()
        .sign(&json!({"iss": "https://aethermarket.auth0.com/", "aud": "https://other.example", "sub": "s", "exp": now() + 600}))
        .unwrap();
    let other_key = SigningKey::from_jwk(&{
        let mut jwk =
            SigningKey::generate(claimgate::jwks::Alg::Rs256, Some("aethermarket-demo-2026"))
                .unwrap()
                .private_jwk();
        jwk["alg"] = json!("RS256");
        jwk
    })
    .unwrap();
    let forged = other_key
        .sign(&json!({"iss": "https://aethermarket.auth0.com/", "aud": "https://api.aethermarket.com", "sub": "s", "exp": now() + 600}))
        .unwrap();
    for (token, description) in [
        (expired.as_str(), "token expired"),
        (wrong_audience.as_str(), "token audience not accepted"),
        (forged.as_str(), "invalid signature"),
        ("garbage", "token is not a JWT"),
    ] {
        let response = get(&envoy, "GET", "/public/catalog", Some(token), &[]);
        assert_eq!(response.status, 401, "{description}");
        assert_eq!(
            header(&response, "www-authenticate"),
            Some(format!("Bearer realm=\"aethermarket\", error=\"invalid_token\", error_description=\"{description}\"").as_str())
        );
        let body: Value = serde_json::from_str(&response.body).unwrap();
        assert_eq!(body["error"], "invalid_token");
        assert!(!response.body.contains(token));
    }
}

#[test]
fn path_tricks_and_duplicate_tokens_are_refused_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    // Envoy normalizes the encoded traversal to /admin/users before claimgate sees it, so
    // the public rule cannot be used to reach the admin routes without a token.
    let response = get(&envoy, "GET", "/public/%2e%2e/admin/users", None, &[]);
    assert_eq!(response.status, 401, "{}", response.body);
    let response = get(&envoy, "GET", "/public/%2F..%2Fadmin/users", None, &[]);
    assert_eq!(response.status, 400, "{}", response.body);
    let one = token(json!({}));
    let two = token(json!({"x": 1}));
    let response = envoy.request(
        "GET",
        "/products/1",
        &[
            ("authorization", &format!("Bearer {one}")),
            ("authorization", &format!("Bearer {two}")),
        ],
    );
    assert_eq!(response.status, 401);
}
