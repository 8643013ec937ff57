//! The demo's per-tier rate limit (Envoy's local_ratelimit after claimgate, keyed on the
//! verified `x-loyalty-tier`) cannot be escaped by a token whose tier is not on the tier
//! list: missing, unknown, differently cased, an array, a number — each is limited like
//! the lowest tier, and the value reaching the limiter (and the upstream) is the list's
//! own spelling. Tokens are signed by PyJWT with the demo key.

use crate::support::{pyjwt, tokens, Envoy, DEMO_AUDIENCE, DEMO_ISSUER, DEMO_KEY};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const TIER: &str = "https://aethermarket.com/loyalty_tier";

fn claims(tier: Option<Value>) -> Value {
    let mut claims = tokens::claims(
        DEMO_ISSUER,
        DEMO_AUDIENCE,
        json!({"sub": "auth0|ratelimit"}),
    );
    if let Some(tier) = tier {
        claims[TIER] = tier;
    }
    claims
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_token_without_a_known_tier_is_limited_like_the_lowest_tier() {
    let envoy = Envoy::start(CONFIG);
    let key: Value = serde_json::from_str(DEMO_KEY).unwrap();
    // Every way a tier can miss the list; Bronze (the lowest) gets 3 a minute, so of
    // these eight tokens' requests three pass and the rest are limited.
    let escapes = [
        None,
        Some(json!("Diamond")),
        Some(json!("bronze")),
        Some(json!("PLATINUM")),
        Some(json!(["Gold"])),
        Some(json!(["Platinum", "Gold"])),
        Some(json!(7)),
        Some(json!("")),
    ];
    let mut all: Vec<Value> = escapes.iter().cloned().map(claims).collect();
    all.push(claims(Some(json!("Gold"))));
    let tokens = pyjwt::sign_all(&key, &all);
    let (gold, escaping) = tokens.split_last().unwrap();
    let mut statuses = Vec::new();
    for (token, tier) in escaping.iter().zip(&escapes) {
        let response = envoy.request(
            "GET",
            "/recommendations/for-you",
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-loyalty-tier", "Platinum"),
            ],
        );
        if response.status == 200 {
            let echo: Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(
                echo["headers"]["x-loyalty-tier"], "Bronze",
                "tier {tier:?}: the limiter and the upstream see the list's spelling"
            );
        }
        statuses.push(response.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429]);
    // A known tier keeps its own bucket, spelled as the list spells it.
    let response = envoy.request(
        "GET",
        "/recommendations/for-you",
        &[("authorization", &format!("Bearer {gold}"))],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let echo: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(echo["headers"]["x-loyalty-tier"], "Gold");
    let stats = envoy.admin("/stats?filter=tier_rate_limit").body;
    assert!(
        stats.contains("tier_rate_limit.http_local_rate_limit.rate_limited: 5"),
        "{stats}"
    );
}
