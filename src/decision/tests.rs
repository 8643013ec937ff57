use super::*;
use crate::mint::SigningKey;
use crate::time::UnixSeconds;
use serde_json::{json, Map};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../../filter-config/demo/private-demo-only.jwk.json");
const NOW: i64 = 1_800_000_000;
const NS: &str = "https://aethermarket.com/";

fn config() -> Config {
    Config::from_json(CONFIG.as_bytes()).unwrap()
}

fn demo_key() -> SigningKey {
    SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap()
}

fn token(extra: Value) -> String {
    let mut claims = json!({
        "iss": "https://aethermarket.auth0.com/",
        "aud": ["https://api.aethermarket.com", "https://aethermarket.auth0.com/userinfo"],
        "sub": "auth0|user-1",
        "iat": NOW - 5,
        "exp": NOW + 3600,
    });
    crate::test_support::merge(&mut claims, extra);
    demo_key().sign(&claims).unwrap()
}

fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Vec<(String, Vec<u8>)> {
    let mut headers = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (":authority".to_string(), b"shop.example".to_vec()),
    ];
    if let Some(token) = token {
        headers.push((
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ));
    }
    headers.extend(
        extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
    );
    headers
}

fn run(config: &Config, headers: &[(String, Vec<u8>)]) -> Decision {
    decide(
        Input::new(RequestView::new(headers)),
        Environment::new(config, &config.initial_keys(), UnixSeconds(NOW)),
    )
}

fn header<'d>(denial: &'d Denial, name: &str) -> &'d str {
    denial
        .headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
        .unwrap()
}

fn denial(decision: &Decision) -> &Denial {
    match &decision.outcome {
        Outcome::Deny(denial) => denial,
        Outcome::Allow(_) | Outcome::Reply(_) => {
            panic!("expected a denial: {}", decision.reason)
        }
    }
}

fn set_headers(decision: &Decision) -> &[(String, String)] {
    match &decision.outcome {
        Outcome::Allow(allowed) => allowed.set_headers(),
        Outcome::Deny(_) | Outcome::Reply(_) => {
            panic!("expected an allow: {}", decision.reason)
        }
    }
}

#[test]
fn every_demo_route_decides_as_documented() {
    let config = config();
    let plain = token(json!({}));
    let gold = token(json!({format!("{NS}loyalty_tier"): "Gold"}));
    let silver = token(json!({format!("{NS}loyalty_tier"): "Silver"}));
    let reader = token(json!({"permissions": ["admin:read"]}));
    let writer = token(json!({"permissions": ["admin:read", "admin:write"]}));
    let eu = token(json!({format!("{NS}region"): "EU"}));
    let us = token(json!({format!("{NS}region"): "US"}));
    let orders = token(json!({"scope": "openid profile orders:write"}));
    let cases: &[(&str, &str, Option<&str>, u16)] = &[
        ("GET", "/public/catalog", None, 200),
        ("GET", "/public/catalog", Some(&plain), 200),
        ("POST", "/public/catalog", None, 403),
        ("GET", "/products/42", None, 401),
        ("GET", "/products/42", Some(&plain), 200),
        ("GET", "/deals/exclusive", Some(&gold), 200),
        ("GET", "/deals/exclusive", Some(&silver), 403),
        ("GET", "/deals/exclusive", Some(&plain), 403),
        ("GET", "/recommendations", Some(&plain), 200),
        ("GET", "/recommendations", None, 401),
        ("GET", "/admin/users", Some(&reader), 200),
        ("DELETE", "/admin/users/1", Some(&reader), 403),
        ("DELETE", "/admin/users/1", Some(&writer), 200),
        ("GET", "/admin/users", Some(&plain), 403),
        ("GET", "/eu/offers", Some(&eu), 200),
        ("GET", "/eu/offers", Some(&us), 403),
        ("POST", "/orders", Some(&orders), 200),
        ("POST", "/orders", Some(&plain), 403),
        ("GET", "/orders", Some(&orders), 403),
        ("GET", "/unknown", Some(&writer), 403),
        ("GET", "/administrator", Some(&writer), 403),
    ];
    for (method, path, token, status) in cases {
        let decision = run(&config, &request(method, path, *token, &[]));
        assert_eq!(
            decision.status(),
            *status,
            "{method} {path}: {}",
            decision.reason
        );
    }
}

#[test]
fn identity_headers_are_derived_from_claims() {
    let config = config();
    let token = token(json!({
        "sub": "google-oauth2|1098",
        "email": "ada@example.com",
        "given_name": "Ada",
        "family_name": "Lovelace",
        format!("{NS}customer_id"): "cus_42",
        format!("{NS}loyalty_tier"): "Platinum",
        format!("{NS}roles"): ["member", "beta-tester"],
        format!("{NS}preferred_currency"): "EUR",
    }));
    let decision = run(&config, &request("GET", "/products/1", Some(&token), &[]));
    let set = set_headers(&decision);
    let expected = [
        ("x-user-id", "google-oauth2|1098"),
        ("x-user-email", "ada@example.com"),
        ("x-user-name", "Ada Lovelace"),
        ("x-customer-id", "cus_42"),
        ("x-loyalty-tier", "Platinum"),
        ("x-user-roles", "member,beta-tester"),
        ("x-user-currency", "EUR"),
        ("x-auth-provider", "google"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(set, expected.as_slice());
    assert_eq!(decision.subject.as_deref(), Some("google-oauth2|1098"));
    assert_eq!(decision.provider.as_deref(), Some("auth0"));
}

#[test]
fn spoofed_identity_headers_are_removed_on_every_route() {
    let config = config();
    let spoof = [
        ("x-user-id", "admin"),
        ("X-Auth-Anything", "1"),
        ("x-loyalty-tier", "Platinum"),
        ("x-customer-id", "c"),
    ];
    for decision in [
        run(&config, &request("GET", "/public/x", None, &spoof)),
        run(
            &config,
            &request("GET", "/products/1", Some(&token(json!({}))), &spoof),
        ),
        run(&config, &request("GET", "/products/1", None, &spoof)),
    ] {
        for name in [
            "x-user-id",
            "x-auth-anything",
            "x-loyalty-tier",
            "x-customer-id",
        ] {
            assert!(
                decision.remove_headers.iter().any(|h| h == name),
                "{name} in {:?}",
                decision.remove_headers
            );
        }
    }
    // A public request without a token gets no identity at all.
    let public = run(&config, &request("GET", "/public/x", None, &spoof));
    assert!(set_headers(&public).is_empty());
    assert!(!public
        .forwarded_headers(&request("GET", "/public/x", None, &spoof))
        .unwrap()
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("x-auth-anything")));
}

#[test]
fn every_client_value_of_a_mapped_header_is_removed_before_the_real_one_is_added() {
    let config = config();
    let twice = [("x-user-id", "admin"), ("x-user-id", "root")];
    let headers = request("GET", "/products/1", Some(&token(json!({}))), &twice);
    let decision = run(&config, &headers);
    let edits = decision.header_edits(&headers).unwrap();
    assert_eq!(
        edits
            .remove
            .iter()
            .filter(|name| **name == "x-user-id")
            .count(),
        1
    );
    assert!(edits.add.iter().any(|(name, _)| name == "x-user-id"));
    let forwarded = decision.forwarded_headers(&headers).unwrap();
    let user_ids: Vec<&[u8]> = forwarded
        .iter()
        .filter(|(name, _)| *name == "x-user-id")
        .map(|(_, value)| *value)
        .collect();
    assert_eq!(user_ids.len(), 1);
    assert_ne!(user_ids[0], b"admin");
    assert_ne!(user_ids[0], b"root");
    // Nothing to remove when the client sent no identity header.
    let clean = request("GET", "/products/1", Some(&token(json!({}))), &[]);
    assert!(run(&config, &clean)
        .header_edits(&clean)
        .unwrap()
        .remove
        .is_empty());
}

#[test]
fn missing_token_gets_a_bare_challenge() {
    let config = config();
    let decision = run(&config, &request("GET", "/products/1", None, &[]));
    let denial = denial(&decision);
    assert_eq!(denial.status, 401);
    assert_eq!(
        header(denial, "www-authenticate"),
        "Bearer realm=\"aethermarket\""
    );
    let body: Value = serde_json::from_str(&denial.body).unwrap();
    assert_eq!(body["error"], "unauthorized");
}

#[test]
fn invalid_tokens_get_invalid_token_and_never_echo_the_token() {
    let config = config();
    let expired = demo_key()
        .sign(&json!({"iss": "https://aethermarket.auth0.com/", "aud": "https://api.aethermarket.com", "sub": "s", "exp": NOW - 3600}))
        .unwrap();
    let mut tampered = token(json!({})).into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (token, description) in [
        (expired.as_str(), "token expired"),
        (tampered.as_str(), "invalid signature"),
        ("not-a-jwt", "token is not a JWT"),
    ] {
        // Even a public route refuses a token that is present but invalid.
        for path in ["/products/1", "/public/x"] {
            let decision = run(&config, &request("GET", path, Some(token), &[]));
            let denial = denial(&decision);
            assert_eq!(denial.status, 401);
            assert_eq!(
                header(denial, "www-authenticate"),
                format!("Bearer realm=\"aethermarket\", error=\"invalid_token\", error_description=\"{description}\"")
            );
            assert!(!denial.body.contains(token));
            assert!(!denial.headers.iter().any(|(_, v)| v.contains(token)));
        }
    }
}

#[test]
fn a_weak_or_old_sign_in_gets_401_insufficient_user_authentication_rfc_9470() {
    let config = config();
    let mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    let password = token(json!({"acr": "urn:aethermarket:acr:password", "auth_time": NOW - 60}));
    let decision = run(
        &config,
        &request("PUT", "/account/payment", Some(&password), &[]),
    );
    let refused = denial(&decision);
    assert_eq!(refused.status, 401);
    assert_eq!(
        header(refused, "www-authenticate"),
        format!("Bearer realm=\"aethermarket\", error=\"insufficient_user_authentication\", error_description=\"a stronger or more recent authentication is required\", acr_values=\"{mfa}\", max_age=\"600\"")
    );
    assert_eq!(
        decision.cause(),
        Cause::Unauthenticated(AuthFailure::StepUp)
    );
    assert_eq!(decision.rule.as_deref(), Some("payment-method"));
    let stale = token(json!({"acr": mfa, "auth_time": NOW - 601}));
    let decision = run(
        &config,
        &request("PUT", "/account/payment", Some(&stale), &[]),
    );
    assert_eq!(decision.status(), 401);
    assert!(decision.reason.contains("auth_time"), "{}", decision.reason);
    let fresh = token(json!({"acr": mfa, "auth_time": NOW - 30}));
    assert_eq!(
        run(
            &config,
            &request("PUT", "/account/payment", Some(&fresh), &[])
        )
        .status(),
        200
    );
    // Reading needs no step-up; a rule whose condition fails is still 403, not a
    // step-up a stronger sign-in could not fix.
    assert_eq!(
        run(
            &config,
            &request("GET", "/account/payment", Some(&password), &[])
        )
        .status(),
        200
    );
}

#[test]
fn policy_denials_are_403_insufficient_scope() {
    let config = config();
    let decision = run(
        &config,
        &request("GET", "/deals/exclusive", Some(&token(json!({}))), &[]),
    );
    let denial = denial(&decision);
    assert_eq!(denial.status, 403);
    assert!(header(denial, "www-authenticate").contains("error=\"insufficient_scope\""));
    assert_eq!(decision.rule.as_deref(), Some("exclusive-deals"));
    assert!(
        decision.reason.contains("loyalty_tier"),
        "{}",
        decision.reason
    );
    let explanation: Value = serde_json::from_str(&decision.explanation()).unwrap();
    assert_eq!(explanation["status"], 403);
    assert_eq!(explanation["rule"], "exclusive-deals");
    assert_eq!(explanation["reason"], decision.reason.as_str());
    assert_eq!(
        explanation["failed_condition"].as_str(),
        decision.failed_condition.as_deref()
    );
    assert!(explanation.get("dry_run").is_none());
}

#[test]
fn ambiguous_paths_are_refused_before_rules() {
    let config = config();
    let decision = run(
        &config,
        &request("GET", "/public/../admin/users", None, &[]),
    );
    assert_eq!(decision.status(), 400);
    assert!(header(denial(&decision), "www-authenticate").contains("invalid_request"));
    let merged = run(
        &config,
        &request("GET", "//admin//users", Some(&token(json!({}))), &[]),
    );
    assert_eq!(merged.rule.as_deref(), Some("admin-read"));
}

#[test]
fn two_different_tokens_are_refused() {
    let config = config();
    let mut headers = request("GET", "/products/1", Some(&token(json!({}))), &[]);
    headers.push((
        "authorization".into(),
        format!("Bearer {}", token(json!({"a": 1}))).into_bytes(),
    ));
    let decision = run(&config, &headers);
    assert_eq!(decision.status(), 401);
    assert!(header(denial(&decision), "www-authenticate").contains("more than one token"));
}

fn variant(edit: impl FnOnce(&mut Value)) -> Config {
    let mut value: Value = serde_json::from_str(CONFIG).unwrap();
    edit(&mut value);
    Config::from_json(value.to_string().as_bytes()).unwrap()
}

#[test]
fn cors_preflights_pass_without_a_token_only_when_configured() {
    let preflight = [
        ("origin", "https://shop.example"),
        ("access-control-request-method", "POST"),
        ("x-user-id", "spoof"),
    ];
    let headers = request("OPTIONS", "/products/1", None, &preflight);
    assert!(!run(&config(), &headers).is_allowed(), "off by default");
    let bypass = variant(|c| c["bypass_cors_preflight"] = json!(true));
    let decision = run(&bypass, &headers);
    assert_eq!(decision.cause(), Cause::CorsPreflight);
    assert!(
        set_headers(&decision).is_empty(),
        "no identity for a preflight"
    );
    assert!(decision.remove_headers.contains(&"x-user-id".to_owned()));
    // Not a preflight: an OPTIONS without the CORS request headers, or another method.
    let plain_options = request(
        "OPTIONS",
        "/products/1",
        None,
        &[("origin", "https://shop.example")],
    );
    assert!(!run(&bypass, &plain_options).is_allowed());
    let post = request("POST", "/products/1", None, &preflight);
    assert!(!run(&bypass, &post).is_allowed());
    // Ambiguous paths are refused before anything else.
    let tricky = request("OPTIONS", "/public/..;/admin", None, &preflight);
    assert_eq!(run(&bypass, &tricky).status(), 400);
}

#[test]
fn default_access_is_configurable() {
    let token = token(json!({}));
    let authenticated = variant(|c| c["default_access"] = json!("authenticated"));
    assert_eq!(
        run(&authenticated, &request("GET", "/other", Some(&token), &[])).status(),
        200
    );
    assert_eq!(
        run(&authenticated, &request("GET", "/other", None, &[])).status(),
        401
    );
    let public = variant(|c| c["default_access"] = json!("public"));
    assert_eq!(
        run(&public, &request("GET", "/other", None, &[])).status(),
        200
    );
}

#[test]
fn unforwarded_tokens_are_removed_from_header_query_and_cookie() {
    let config = variant(|c| {
        c["providers"][0]["forward_token"] = json!(false);
        c["providers"][0]["from"] = json!([
            {"header": "authorization", "prefix": "Bearer "},
            {"query": "access_token"},
            {"cookie": "at"}
        ]);
    });
    let token = token(json!({}));
    let header_request = run(&config, &request("GET", "/products/1", Some(&token), &[]));
    assert!(header_request
        .remove_headers
        .contains(&"authorization".to_string()));
    let query_request = run(
        &config,
        &request(
            "GET",
            &format!("/products/1?a=1&access_token={token}&b=2"),
            None,
            &[],
        ),
    );
    assert!(set_headers(&query_request).contains(&(":path".into(), "/products/1?a=1&b=2".into())));
    let cookie_request = run(
        &config,
        &request(
            "GET",
            "/products/1",
            None,
            &[("cookie", &format!("theme=dark; at={token}"))],
        ),
    );
    assert!(cookie_request
        .remove_headers
        .contains(&"cookie".to_string()));
    assert!(set_headers(&cookie_request).contains(&("cookie".into(), "theme=dark".into())));
}

#[test]
fn cached_tokens_decide_like_fresh_ones_until_they_expire() {
    let config = config();
    let keys = config.initial_keys();
    let mut cache = TokenCache::new(config.token_cache);
    let gold = token(json!({format!("{NS}loyalty_tier"): "Gold"}));
    let headers = request(
        "GET",
        "/deals/exclusive",
        Some(&gold),
        &[("x-user-id", "spoof")],
    );
    let cached = |cache: &mut TokenCache, headers: &[(String, Vec<u8>)], now: i64| {
        decide(
            Input::new(RequestView::new(headers)),
            Environment::new(&config, &keys, UnixSeconds(now)).with_cache(cache),
        )
    };
    let fresh = decide(
        Input::new(RequestView::new(&headers)),
        Environment::new(&config, &keys, UnixSeconds(NOW)),
    );
    let miss = cached(&mut cache, &headers, NOW);
    assert_eq!(cache.len(), 1);
    let hit = cached(&mut cache, &headers, NOW + 1);
    for decision in [&miss, &hit] {
        assert_eq!(decision.outcome, fresh.outcome);
        assert_eq!(decision.remove_headers, fresh.remove_headers);
    }
    // A hit shares the identity headers worked out for the token, never copies them.
    fn set_headers(decision: &Decision) -> &[(String, String)] {
        match &decision.outcome {
            Outcome::Allow(allowed) => allowed.set_headers(),
            other => panic!("not allowed: {other:?}"),
        }
    }
    let again = cached(&mut cache, &headers, NOW + 2);
    assert!(!set_headers(&hit).is_empty());
    assert_eq!(set_headers(&hit).as_ptr(), set_headers(&again).as_ptr());
    assert_ne!(set_headers(&hit).as_ptr(), set_headers(&fresh).as_ptr());
    // The same cached token on a route its claims do not satisfy is still refused.
    let other = request("GET", "/eu/offers", Some(&gold), &[]);
    assert_eq!(cached(&mut cache, &other, NOW).status(), 403);
    // Past exp + skew the cached entry is not used and the token is refused.
    let late = NOW + 3600 + 60;
    assert_eq!(cached(&mut cache, &headers, late).status(), 401);
    // Invalid tokens are never cached.
    let bad = request("GET", "/products/1", Some("not-a-jwt"), &[]);
    cached(&mut cache, &bad, NOW);
    assert_eq!(cache.len(), 1);
}

#[test]
fn rules_can_restrict_providers() {
    let partner_key = SigningKey::generate(crate::jwks::Alg::Es256, Some("p1")).unwrap();
    let config = variant(|c| {
        let providers = c["providers"].as_array_mut().unwrap();
        providers.push(json!({
            "name": "partner",
            "issuer": "https://partner.example/",
            "audiences": ["https://api.aethermarket.com"],
            "algorithms": ["ES256"],
            "jwks": {"inline": {"keys": [partner_key.public_jwk()]}}
        }));
        let products = c["rules"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|rule| rule["name"] == "products")
            .unwrap();
        products["providers"] = json!(["auth0"]);
    });
    let mut claims = Map::new();
    claims.insert("iss".into(), json!("https://partner.example/"));
    claims.insert("aud".into(), json!("https://api.aethermarket.com"));
    claims.insert("sub".into(), json!("partner|1"));
    claims.insert("exp".into(), json!(NOW + 60));
    let partner_token = partner_key.sign(&Value::Object(claims)).unwrap();
    let products = run(
        &config,
        &request("GET", "/products/1", Some(&partner_token), &[]),
    );
    assert_eq!(products.status(), 401);
    let recommendations = run(
        &config,
        &request("GET", "/recommendations", Some(&partner_token), &[]),
    );
    assert_eq!(recommendations.status(), 200);
    assert_eq!(recommendations.provider.as_deref(), Some("partner"));
}

#[test]
fn the_resource_metadata_document_is_a_local_reply_not_a_denial() {
    let config = variant(|c| {
        c["resource_metadata"] = json!({"resource": "https://api.aethermarket.com"});
    });
    let decision = run(
        &config,
        &request("GET", "/.well-known/oauth-protected-resource", None, &[]),
    );
    let Outcome::Reply(reply) = &decision.outcome else {
        panic!("expected a local reply: {:?}", decision.outcome);
    };
    assert_eq!(reply.status, 200);
    assert_eq!(decision.status(), 200);
    assert!(!decision.is_allowed());
    assert_eq!(decision.cause(), Cause::ResourceMetadata);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["resource"], "https://api.aethermarket.com");
    assert!(decision.header_edits(&[]).is_none());
}

/// A token, method, path, headers to add or replace, and the time of one request.
type Sent<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, i64);

/// Requests of two tokens on routes where the route, a header, the clock or a capture
/// decides, with repeats.
fn repeated_requests<'a>(gold: &'a str, silver: &'a str) -> Vec<Sent<'a>> {
    vec![
        (gold, "GET", "/deals/exclusive", vec![], NOW),
        (gold, "GET", "/deals/exclusive", vec![], NOW + 1),
        (gold, "POST", "/deals/exclusive", vec![], NOW),
        (gold, "GET", "/deals/exclusive/", vec![], NOW),
        (gold, "GET", "/deals/./exclusive", vec![], NOW),
        (
            gold,
            "GET",
            "/deals/exclusive?x=1",
            vec![(":authority", "other.example")],
            NOW,
        ),
        (gold, "GET", "/eu/offers", vec![], NOW),
        (gold, "GET", "/deals/exclusive", vec![], NOW),
        // The method is part of the route.
        (gold, "GET", "/admin/users", vec![], NOW),
        (gold, "DELETE", "/admin/users", vec![], NOW),
        (gold, "GET", "/public/catalog", vec![], NOW),
        (gold, "POST", "/public/catalog", vec![], NOW),
        // A header decides: never reused.
        (
            gold,
            "GET",
            "/offers/regional",
            vec![("x-geo-region", "EU")],
            NOW,
        ),
        (
            gold,
            "GET",
            "/offers/regional",
            vec![("x-geo-region", "US")],
            NOW,
        ),
        (gold, "GET", "/offers/regional", vec![], NOW),
        // The clock decides: never reused.
        (gold, "GET", "/streaming/live", vec![], NOW),
        (gold, "GET", "/streaming/live", vec![], NOW + 200),
        (gold, "PUT", "/account/payment", vec![], NOW),
        (gold, "PUT", "/account/payment", vec![], NOW + 200),
        // A capture decides: the path is part of the route.
        (gold, "GET", "/users/auth0|u1/orders", vec![], NOW),
        (gold, "GET", "/users/auth0|u2/orders", vec![], NOW),
        (gold, "GET", "/recommendations", vec![], NOW),
        (gold, "GET", "/recommendations", vec![], NOW),
        (silver, "GET", "/deals/exclusive", vec![], NOW),
        (silver, "GET", "/deals/exclusive", vec![], NOW),
        (
            silver,
            "GET",
            "/recommendations",
            vec![("x-user-id", "spoof")],
            NOW,
        ),
    ]
}

/// Issue 22: with a token cache, every decision equals the one made without it — the
/// first request of a token, and the repeats that reuse its remembered evaluation —
/// whatever the route, the headers and the clock say, in order and interleaved.
#[test]
fn cached_tokens_with_remembered_evaluations_decide_exactly_like_fresh_ones() {
    let config = config();
    let keys = config.initial_keys();
    let mut cache = TokenCache::new(config.token_cache);
    let mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    let gold = token(
        json!({format!("{NS}loyalty_tier"): "Gold", format!("{NS}region"): "EU",
        "subscription_tier": "plus", "subscription_expires_at": NOW + 100,
        "acr": mfa, "auth_time": NOW - 500, "sub": "auth0|u1", "permissions": ["admin:read"]}),
    );
    let silver = token(json!({format!("{NS}loyalty_tier"): "Silver"}));
    let requests = repeated_requests(&gold, &silver);
    for round in 0..2 {
        for (token, method, path, extra, now) in &requests {
            let mut headers = request(method, path, Some(token), &[]);
            for (name, value) in extra {
                headers.retain(|(present, _)| present != name);
                headers.push(((*name).to_owned(), value.as_bytes().to_vec()));
            }
            let fresh = decide(
                Input::new(RequestView::new(&headers)),
                Environment::new(&config, &keys, UnixSeconds(*now)),
            );
            let mut cached = decide(
                Input::new(RequestView::new(&headers)),
                Environment::new(&config, &keys, UnixSeconds(*now)).with_cache(&mut cache),
            );
            // The one difference a cache makes: a hit checks no signature.
            cached.signatures_checked_in_module = fresh.signatures_checked_in_module;
            assert_eq!(
                format!("{cached:?}"),
                format!("{fresh:?}"),
                "round {round}: {method} {path} {extra:?} at {now}"
            );
        }
    }
    assert_eq!(cache.len(), 2);
}

/// Issue 22: a cached token remembers the policy's evaluation of the last route it was
/// used on where only the route and its claims decide, and not where a header decides;
/// a request on another route is evaluated afresh.
#[test]
fn a_cached_token_remembers_its_evaluation_of_a_route_decided_by_claims_alone() {
    let config = config();
    let keys = config.initial_keys();
    let mut cache = TokenCache::new(config.token_cache);
    let gold = token(json!({format!("{NS}loyalty_tier"): "Gold", format!("{NS}region"): "EU"}));
    let send = |cache: &mut TokenCache, method: &str, path: &str, extra: &[(&str, &str)]| {
        let headers = request(method, path, Some(&gold), extra);
        decide(
            Input::new(RequestView::new(&headers)),
            Environment::new(&config, &keys, UnixSeconds(NOW)).with_cache(cache),
        )
        .status()
    };
    assert_eq!(send(&mut cache, "GET", "/deals/exclusive", &[]), 200);
    let regional = [("x-geo-region", "EU")];
    assert_eq!(send(&mut cache, "GET", "/offers/regional", &regional), 200);
    let remembered_on = |cache: &TokenCache, host: &str, method: &str, path: &str| {
        let verified = cache.get(&gold, UnixSeconds(NOW)).unwrap();
        let headers = request(method, path, None, &[]);
        let facts = RequestFacts {
            request: RequestView::new(&headers),
            method,
            path,
            host,
            client_address: None,
            now: UnixSeconds(NOW),
        };
        verified.remembered_evaluation(&facts)
    };
    let remembered = |cache: &TokenCache, method: &str, path: &str| {
        remembered_on(cache, "shop.example", method, path)
    };
    let evaluation = remembered(&cache, "GET", "/deals/exclusive").unwrap();
    assert_eq!(evaluation.verdict.kind, VerdictKind::Allow);
    assert_eq!(evaluation.verdict.rule.as_deref(), Some("exclusive-deals"));
    assert!(remembered(&cache, "GET", "/offers/regional").is_none());
    assert!(remembered(&cache, "HEAD", "/deals/exclusive").is_none());
    assert!(remembered(&cache, "GET", "/deals/exclusive2").is_none());
    assert!(remembered_on(&cache, "admin.example", "GET", "/deals/exclusive").is_none());
    assert_eq!(send(&mut cache, "GET", "/eu/offers", &[]), 200);
    assert!(remembered(&cache, "GET", "/deals/exclusive").is_none());
    assert!(remembered(&cache, "GET", "/eu/offers").is_some());
}
