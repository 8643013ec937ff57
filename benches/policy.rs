//! Criterion benchmarks of the policy alone (no signature work): a 200-rule policy over
//! realistic claims, a request that matches a rule and one that matches none, the
//! identity header mapping, and the whole decision for an already verified token.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "benchmark setup")]
#![allow(clippy::too_many_lines, reason = "benchmark setup")]

use claimgate::config::Config;
use claimgate::policy::{request_host, RequestFacts, TokenFacts, VerdictKind};
use claimgate::token::VerifiedToken;
use claimgate::{decide, Environment, Input, RequestView, UnixSeconds};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::hint::black_box;

const AETHERMARKET: &str = include_str!("../filter-config/aethermarket.json");
const NOW: i64 = 1_800_000_000;
const NS: &str = "https://aethermarket.com/";

/// The AetherMarket providers and identity mapping with 200 rules: 40 services with a
/// read, a write, an ownership, a region and a deny rule each.
fn two_hundred_rules() -> Config {
    let mut config: Value = serde_json::from_str(AETHERMARKET).unwrap();
    let mut rules = Vec::new();
    for service in 0..40 {
        let base = format!("/api/v1/svc{service}");
        rules.push(json!({"name": format!("svc{service}-read"), "match": {"prefix": base, "methods": ["GET", "HEAD"]},
            "when": {"claim": "scope", "contains": format!("svc{service}:read")}}));
        rules.push(json!({"name": format!("svc{service}-write"), "match": {"prefix": base, "methods": ["POST", "PUT", "DELETE"]},
            "when": {"all": [{"claim": "scope", "contains": format!("svc{service}:write")},
                             {"claim": format!("{NS}loyalty_tier"), "at_least": "Silver", "tiers": "loyalty"}]}}));
        rules.push(json!({"name": format!("svc{service}-owner"), "match": {"template": format!("{base}/users/{{user_id}}/items")},
            "when": {"all": [{"claim": "sub", "equals": {"capture": "user_id"}},
                             {"claim": "subscription_expires_at", "greater_than": {"now": true}}]}}));
        rules.push(json!({"name": format!("svc{service}-regional"), "match": {"prefix": format!("{base}/regional")},
            "when": {"claim": format!("{NS}region"), "equals": {"header": "x-geo-region"}}}));
        rules.push(json!({"name": format!("svc{service}-internal"), "match": {"prefix": format!("{base}/internal")}, "effect": "deny"}));
    }
    config["rules"] = Value::from(rules);
    Config::from_json(config.to_string().as_bytes()).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": "https://aethermarket.auth0.com/",
        "aud": ["https://api.aethermarket.com"],
        "sub": "google-oauth2|109876543210",
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "scope": "openid profile email svc3:read svc37:read svc37:write",
        "permissions": ["orders:write", "products:read"],
        "subscription_expires_at": NOW + 86_400,
        "https://aethermarket.com/loyalty_tier": "Gold",
        "https://aethermarket.com/region": "EU",
        "https://aethermarket.com/roles": ["member", "beta"],
        "https://aethermarket.com/customer_id": "cus_8842",
        "https://aethermarket.com/preferred_currency": "EUR",
        "email": "ada@example.com",
        "name": "Ada Lovelace"
    })
}

fn headers(method: &str, path: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.aethermarket.com".to_vec()),
        ("x-geo-region".into(), b"EU".to_vec()),
        ("user-agent".into(), b"bench".to_vec()),
    ]
}

fn bench_policy(c: &mut Criterion) {
    let config = two_hundred_rules();
    assert_eq!(config.policy.rules.len(), 200);
    let claims = claims();
    let claims = claims.as_object().unwrap();
    let mut group = c.benchmark_group("policy_200_rules");
    for (name, method, path, expected) in [
        (
            "matched_route",
            "GET",
            "/api/v1/svc37/users/google-oauth2|109876543210/items",
            VerdictKind::Allow,
        ),
        (
            "matched_route_refused",
            "DELETE",
            "/api/v1/svc12/orders/7",
            VerdictKind::Forbidden,
        ),
        ("no_route", "GET", "/nowhere/at/all", VerdictKind::Forbidden),
    ] {
        let headers = headers(method, path);
        let view = RequestView::new(&headers);
        let host = request_host(view.authority());
        let facts = RequestFacts {
            request: view,
            method,
            path,
            host: &host,
            client_address: None,
            now: UnixSeconds(NOW),
        };
        let token = TokenFacts {
            provider: config.providers.ids().next().unwrap(),
            claims,
            clock_skew_seconds: 60,
        };
        assert_eq!(
            config.policy.evaluate(facts, Some(token)).verdict.kind,
            expected,
            "{name}"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                config
                    .policy
                    .evaluate(black_box(facts), Some(black_box(token)))
            })
        });
    }
    group.finish();

    let (provider, entry) = config.providers.iter().next().unwrap();
    let verified = VerifiedToken::assume_verified_for_tests(
        provider,
        entry.algorithms[0],
        claims.clone(),
        Some(NOW + 3600),
    );
    c.bench_function("identity_headers/aethermarket", |b| {
        b.iter(|| config.identity.headers_to_set(black_box(verified.claims())))
    });
    let headers = headers(
        "GET",
        "/api/v1/svc37/users/google-oauth2|109876543210/items",
    );
    let view = RequestView::new(&headers);
    let keys = config.initial_keys();
    assert_eq!(
        decide(
            Input::pre_verified(view, Some(&verified)),
            Environment::new(&config, &keys, UnixSeconds(NOW))
        )
        .status(),
        200
    );
    c.bench_function("decide_pre_verified/200_rules", |b| {
        b.iter(|| {
            decide(
                Input::pre_verified(view, Some(&verified)),
                Environment::new(black_box(&config), &keys, UnixSeconds(NOW)),
            )
        })
    });
}

criterion_group!(benches, bench_policy);
criterion_main!(benches);
