//! The stats an on-call engineer reads: a known mix of requests through Envoy, then every
//! claimgate counter checked exactly on `/stats`, and the Prometheus labels the shipped
//! `stats_tags` make of provider, rule and reason on `/stats/prometheus`.

use std::collections::BTreeMap;

use crate::support::{demo_token, merge, now, Envoy};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const NS: &str = "https://aethermarket.com/";

/// A demo token for the subject `auth0|metrics`, with `extra` claims.
fn token(extra: Value) -> String {
    let mut claims = json!({"sub": "auth0|metrics"});
    merge(&mut claims, extra);
    demo_token(claims)
}

/// Every `claimgate.` counter and gauge on `/stats`, by name.
fn claimgate_stats(envoy: &Envoy) -> BTreeMap<String, i64> {
    envoy
        .admin("/stats?filter=^wasmcustom\\.claimgate\\.")
        .body
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            let name = name.strip_prefix("wasmcustom.")?;
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_known_mix_of_requests_moves_every_counter_exactly() {
    let envoy = Envoy::start(CONFIG);
    let valid = token(json!({}));
    let swap = if valid.ends_with('A') { 'Q' } else { 'A' };
    let forged = format!("{}{swap}", &valid[..valid.len() - 1]);
    let requests: Vec<(&str, Option<String>, u16)> = vec![
        ("/products/1", Some(valid.clone()), 200),
        ("/products/1", None, 401),
        (
            "/products/1",
            Some(token(json!({"iat": now() - 7200, "exp": now() - 3600}))),
            401,
        ),
        ("/products/1", Some(forged), 401),
        (
            "/products/1",
            Some(token(json!({"aud": "https://elsewhere.example"}))),
            401,
        ),
        (
            "/deals/exclusive",
            Some(token(json!({format!("{NS}loyalty_tier"): "Silver"}))),
            403,
        ),
        (
            "/deals/exclusive",
            Some(token(json!({format!("{NS}loyalty_tier"): "Gold"}))),
            200,
        ),
        ("/public/%2e%2e;/admin/users", None, 400),
        (
            "/recommendations",
            Some(token(json!({format!("{NS}loyalty_tier"): "Bronze"}))),
            200,
        ),
        ("/products/2", Some(valid.clone()), 200),
    ];
    for (path, token, status) in &requests {
        let bearer = token.as_ref().map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|b| ("authorization", b.as_str()))
            .collect();
        let response = envoy.request("GET", path, &headers);
        assert_eq!(response.status, *status, "{path}: {}", response.body);
    }
    let again = envoy.request(
        "GET",
        "/products/1",
        &[
            ("authorization", &format!("Bearer {valid}")),
            ("cookie", "x=1"),
        ],
    );
    assert_eq!(again.status, 200);
    let stats = claimgate_stats(&envoy);
    let expected: BTreeMap<&str, i64> = [
        ("claimgate.requests.allowed", 5),
        ("claimgate.requests.denied", 1),
        ("claimgate.requests.bad_request", 1),
        ("claimgate.requests.no_keys", 0),
        ("claimgate.requests.unauthenticated.missing", 1),
        ("claimgate.requests.unauthenticated.expired", 1),
        ("claimgate.requests.unauthenticated.signature", 1),
        ("claimgate.requests.unauthenticated.audience", 1),
        ("claimgate.requests.unauthenticated.two_tokens", 0),
        ("claimgate.by_provider.auth0.allowed", 5),
        ("claimgate.by_provider.auth0.denied", 1),
        ("claimgate.by_provider.auth0.unauthenticated", 0),
        ("claimgate.rule.products.allowed", 3),
        ("claimgate.rule.products.denied", 1),
        ("claimgate.rule.exclusive-deals.allowed", 1),
        ("claimgate.rule.exclusive-deals.denied", 1),
        ("claimgate.rule.recommendations.allowed", 1),
        ("claimgate.dry_run.would_deny", 1),
        ("claimgate.dry_run.would_allow", 0),
        (
            "claimgate.dry_run.rule.recommendations-need-silver.would_deny",
            1,
        ),
        // Looked up: every request whose token reached verification; the same valid
        // token twice more is served from the cache.
        ("claimgate.token_cache.hits", 2),
        ("claimgate.token_cache.misses", 7),
        ("claimgate.token_cache.evictions", 0),
        ("claimgate.token_cache.entries", 4),
    ]
    .into_iter()
    .collect();
    let mut wrong = Vec::new();
    for (name, value) in &expected {
        match stats.get(*name) {
            Some(actual) if actual == value => {}
            actual => wrong.push(format!("{name}: {actual:?} instead of {value}")),
        }
    }
    assert!(wrong.is_empty(), "{}\nall: {stats:#?}", wrong.join("\n"));
    // Every RS256 check went to Envoy's crypto (six at start for the self-test).
    assert_eq!(
        stats.get("claimgate.signatures.checked_in_module"),
        Some(&0)
    );
    assert!(stats
        .get("claimgate.signatures.checked_by_envoy")
        .is_some_and(|checked| *checked >= 6 + 5));
    // Cardinality comes from the configuration only: nothing named after request data.
    for name in stats.keys() {
        assert!(!name.contains("metrics") && !name.contains("%2e"), "{name}");
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn signatures_checked_in_the_module_are_counted() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["host_crypto"] = json!("off");
    let envoy = Envoy::start(&config.to_string());
    let (one, two) = (
        token(json!({"sub": "auth0|one"})),
        token(json!({"sub": "auth0|two"})),
    );
    for token in [&one, &two, &one] {
        let response = envoy.request(
            "GET",
            "/products/1",
            &[("authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(response.status, 200);
    }
    let stats = claimgate_stats(&envoy);
    assert_eq!(
        stats.get("claimgate.signatures.checked_in_module"),
        Some(&2),
        "{stats:#?}"
    );
    assert_eq!(stats.get("claimgate.token_cache.hits"), Some(&1));
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn prometheus_sees_provider_rule_and_reason_as_labels() {
    let envoy = Envoy::start(CONFIG);
    let silver = token(json!({format!("{NS}loyalty_tier"): "Silver"}));
    assert_eq!(
        envoy
            .request(
                "GET",
                "/deals/exclusive",
                &[("authorization", &format!("Bearer {silver}"))]
            )
            .status,
        403
    );
    assert_eq!(envoy.request("GET", "/products/1", &[]).status, 401);
    let prometheus = envoy.admin("/stats/prometheus").body;
    for line in [
        r#"claimgate_rule_denied{claimgate_rule="exclusive-deals"} 1"#,
        r#"claimgate_requests_unauthenticated{claimgate_reason="missing"} 1"#,
        r#"claimgate_by_provider_denied{claimgate_provider="auth0"} 1"#,
        r#"claimgate_dry_run_rule_would_deny{claimgate_rule="recommendations-need-silver"} 0"#,
    ] {
        assert!(
            prometheus.lines().any(|seen| seen.ends_with(line)),
            "{line} not in:\n{}",
            prometheus
                .lines()
                .filter(|seen| seen.contains("claimgate"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
