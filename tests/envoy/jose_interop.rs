//! A token PyJWT signs with the demo key is accepted through Envoy (the same
//! interoperability in the core alone: `tests/jose_interop.rs`).

use serde_json::{json, Value};

use crate::support::pyjwt::sign as pyjwt_sign;
use crate::support::repo_file as repo;
use crate::support::{now, Envoy};

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn the_demo_key_signs_in_pyjwt_and_envoy_accepts_the_token() {
    let demo: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("filter-config/demo/private-demo-only.jwk.json")).unwrap(),
    )
    .unwrap();
    let token = pyjwt_sign(
        &demo,
        &json!({
            "iss": "https://aethermarket.auth0.com/",
            "aud": "https://api.aethermarket.com",
            "sub": "auth0|pyjwt",
            "iat": now(),
            "exp": now() + 600,
            "https://aethermarket.com/loyalty_tier": "Gold"
        }),
    );
    let envoy =
        Envoy::start(&std::fs::read_to_string(repo("filter-config/aethermarket.json")).unwrap());
    let response = envoy.request(
        "GET",
        "/deals/exclusive",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(response.status, 200, "{}", response.body);
}
