//! The shipped access log through a real Envoy: every claimgate line carries the filter's
//! explanation (`%FILTER_STATE(wasm.claimgate.decision:PLAIN)%`, never `-`) and, for the
//! filter's own answers, `%RESPONSE_CODE_DETAILS%` naming the cause
//! (`claimgate.unauthenticated.<reason>`, `claimgate.forbidden.<rule>`, …). Tokens are
//! signed by PyJWT with the demo key.

use crate::support::{merge, now, pyjwt, tokens, Envoy, DEMO_AUDIENCE, DEMO_ISSUER, DEMO_KEY};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");

fn claims(extra: Value) -> Value {
    let mut claims = tokens::claims(DEMO_ISSUER, DEMO_AUDIENCE, json!({"sub": "auth0|logged"}));
    merge(&mut claims, extra);
    claims
}

/// Path, token, status, response code details, deciding rule.
type Expected<'t> = (
    &'static str,
    Option<&'t String>,
    u16,
    &'static str,
    Option<&'static str>,
);

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn every_access_log_line_explains_the_decision_and_names_the_cause() {
    let envoy = Envoy::start(CONFIG);
    let key: Value = serde_json::from_str(DEMO_KEY).unwrap();
    let tokens = pyjwt::sign_all(
        &key,
        &[
            claims(json!({})),
            claims(json!({"iat": now() - 7200, "exp": now() - 3600})),
            claims(json!({"aud": "https://other.example"})),
        ],
    );
    let (good, expired, audience) = (&tokens[0], &tokens[1], &tokens[2]);
    let requests: [Expected; 7] = [
        (
            "/products/1",
            Some(good),
            200,
            "via_upstream",
            Some("products"),
        ),
        (
            "/products/1",
            None,
            401,
            "claimgate.unauthenticated.missing",
            Some("products"),
        ),
        (
            "/products/1",
            Some(expired),
            401,
            "claimgate.unauthenticated.expired",
            None,
        ),
        (
            "/products/1",
            Some(audience),
            401,
            "claimgate.unauthenticated.audience",
            None,
        ),
        (
            "/deals/exclusive",
            Some(good),
            403,
            "claimgate.forbidden.exclusive-deals",
            Some("exclusive-deals"),
        ),
        // No rule matches: default_access refuses.
        ("/nowhere", Some(good), 403, "claimgate.forbidden", None),
        (
            "/public/catalog",
            None,
            200,
            "via_upstream",
            Some("public-catalog"),
        ),
    ];
    for (path, token, status, _, _) in &requests {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .iter()
            .map(|bearer| ("authorization", bearer.as_str()))
            .collect();
        let response = envoy.request("GET", path, &headers);
        assert_eq!(response.status, *status, "{path}: {}", response.body);
    }
    let lines = envoy.access_log(requests.len());
    for (line, (path, _, status, details, rule)) in lines.iter().zip(&requests) {
        assert_eq!(line.path, *path);
        assert_eq!(line.status, *status, "{line:?}");
        assert_eq!(line.details, *details, "{line:?}");
        let explanation = line.explained();
        assert_eq!(explanation["status"], json!(status), "{line:?}");
        assert_eq!(explanation["rule"].as_str(), *rule, "{line:?}");
        assert!(explanation["reason"].is_string(), "{line:?}");
    }
}
