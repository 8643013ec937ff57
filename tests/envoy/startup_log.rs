//! A clean start of the shipped demo bootstrap logs nothing at warning level or above:
//! no `Skipping duplicate tag` from two stats-tag extractors of one name, no deprecation
//! of the local rate limit's route-level descriptors, no missing connection limit — and
//! claimgate's own note about shared gateways (the demo's rules name no hosts) is at info.

use crate::support;
use crate::support::{demo_token, Envoy};
use serde_json::json;

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const TIER: &str = "https://aethermarket.com/loyalty_tier";

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn the_demo_starts_and_serves_without_a_warning() {
    let envoy = Envoy::start(CONFIG);
    // Requests that create every kind of tagged claimgate stat (per provider, per rule,
    // per dry-run rule, per unauthenticated reason) and go through the rate limit.
    let gold = demo_token(json!({ TIER: "Gold" }));
    let bronze = demo_token(json!({ TIER: "Bronze" }));
    let expired = demo_token(json!({"exp": support::now() - 600}));
    let cases = [
        ("/deals/exclusive", Some(&gold), 200),
        ("/deals/exclusive", Some(&bronze), 403),
        ("/recommendations", Some(&bronze), 200),
        ("/products/42", None, 401),
        ("/products/42", Some(&expired), 401),
    ];
    for (path, token, status) in cases {
        let authorization = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        assert_eq!(
            envoy.request("GET", path, &headers).status,
            status,
            "{path}"
        );
    }
    let stats = envoy.admin("/stats?filter=claimgate").body;
    assert!(
        stats.contains("wasmcustom.claimgate.by_provider.")
            && stats.contains("wasmcustom.claimgate.dry_run.rule."),
        "{stats}"
    );
    let log = envoy.log();
    let loud: Vec<&str> = log
        .lines()
        .filter(|line| {
            ["][warning][", "][error][", "][critical]["]
                .iter()
                .any(|level| line.contains(level))
        })
        .collect();
    assert!(
        loud.is_empty(),
        "warnings at start-up:\n{}",
        loud.join("\n")
    );
    assert!(
        log.lines().any(|line| line.contains("][info][")
            && line
                .contains("claimgate: configuration note: default_access: default_access is deny")),
        "{log}"
    );
}
