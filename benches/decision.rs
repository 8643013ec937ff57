//! Criterion benchmarks of the decision core on the host: one full decision per
//! algorithm (parse, verify, claims, policy, headers) on the AetherMarket policy shape.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "benchmark setup")]
#![allow(clippy::too_many_lines, reason = "benchmark setup")]

use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use claimgate::{decide, Config, Environment, Input, RequestView, TokenCache, UnixSeconds};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use std::hint::black_box;

const AETHERMARKET: &str = include_str!("../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../filter-config/demo/private-demo-only.jwk.json");
const NOW: i64 = 1_800_000_000;

fn claims() -> Value {
    json!({
        "iss": "https://aethermarket.auth0.com/",
        "aud": ["https://api.aethermarket.com", "https://aethermarket.auth0.com/userinfo"],
        "sub": "google-oauth2|109876543210",
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "scope": "openid profile email orders:write",
        "permissions": ["orders:write", "products:read"],
        "https://aethermarket.com/loyalty_tier": "Gold",
        "https://aethermarket.com/roles": ["member", "beta"],
        "https://aethermarket.com/customer_id": "cus_8842",
        "https://aethermarket.com/preferred_currency": "EUR",
        "email": "ada@example.com"
    })
}

fn request(token: &str) -> Vec<(String, Vec<u8>)> {
    vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/deals/exclusive".to_vec()),
        (":authority".into(), b"shop.aethermarket.com".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
        ("user-agent".into(), b"bench".to_vec()),
    ]
}

fn config_for(key: &SigningKey) -> Config {
    let mut config: Value = serde_json::from_str(AETHERMARKET).unwrap();
    config["providers"][0]["algorithms"] = json!([key.alg().name()]);
    config["providers"][0]["jwks"]["inline"] = json!({"keys": [key.public_jwk()]});
    Config::from_json(config.to_string().as_bytes()).unwrap()
}

fn bench_decisions(c: &mut Criterion) {
    let demo = SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap();
    let mut group = c.benchmark_group("decide");
    for alg in [
        Alg::Rs256,
        Alg::Ps256,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
        Alg::Hs256,
    ] {
        let key = match alg {
            Alg::Rs256 => demo.clone(),
            other => {
                let mut jwk = demo.private_jwk();
                if other == Alg::Ps256 {
                    jwk["alg"] = json!("PS256");
                    SigningKey::from_jwk(&jwk).unwrap()
                } else {
                    SigningKey::generate(other, Some("bench")).unwrap()
                }
            }
        };
        let config = config_for(&key);
        let keys = config.initial_keys();
        let headers = request(&key.sign(&claims()).unwrap());
        assert_eq!(
            decide(
                Input::new(RequestView::new(&headers)),
                Environment::new(&config, &keys, UnixSeconds(NOW))
            )
            .status(),
            200
        );
        group.bench_function(alg.name(), |b| {
            b.iter(|| {
                decide(
                    Input::new(RequestView::new(black_box(&headers))),
                    Environment::new(black_box(&config), &keys, UnixSeconds(NOW)),
                )
            })
        });
    }
    group.finish();

    // A repeated token: the per-VM cache skips signature verification and claim parsing.
    let config = config_for(&demo);
    let keys = config.initial_keys();
    let headers = request(&demo.sign(&claims()).unwrap());
    let mut cache = TokenCache::new(config.token_cache);
    let warm = decide(
        Input::new(RequestView::new(&headers)),
        Environment::new(&config, &keys, UnixSeconds(NOW)).with_cache(&mut cache),
    );
    assert_eq!(warm.status(), 200);
    c.bench_function("decide_cached_hit/RS256", |b| {
        b.iter(|| {
            decide(
                Input::new(RequestView::new(black_box(&headers))),
                Environment::new(black_box(&config), &keys, UnixSeconds(NOW))
                    .with_cache(&mut cache),
            )
        })
    });
}

criterion_group!(benches, bench_decisions);
criterion_main!(benches);
