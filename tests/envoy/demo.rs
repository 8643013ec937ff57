//! The AetherMarket demo through a real Envoy with the built Wasm module: every shipped
//! policy case, the identity headers upstream receives, spoofed headers removed, dry-run
//! counters. Tokens are signed at test time with the demo key.

use crate::support::demo_token as token;
use crate::support::{demo_key, now, Envoy, EnvoyOptions, Response};
use claimgate::cases::{CaseFile, Observed};
use claimgate::mint::SigningKey;
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const NS: &str = "https://aethermarket.com/";

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
    response.header(name)
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
    ("x-loyalty-tier", "Diamond"),
];

const CASES: &str = include_str!("../../filter-config/aethermarket.cases.yaml");

/// Every shipped policy case, through Envoy: the same file `claimgate test` runs, each
/// case's claims signed into a real token. Status, upstream headers, the deciding rule
/// and the dry-run verdict (from the access log) must all be as the case says, and no
/// spoofed identity header may reach the upstream.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn every_shipped_policy_case_holds_through_envoy() {
    // The cases give x-geo-region as the edge's GeoIP filter would set it; here the test
    // edge sets it from x-test-trusted-geo, since the shipped edge drops a client's own.
    let options = EnvoyOptions {
        trusted_geo: true,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(CONFIG, options).unwrap();
    let cases = CaseFile::from_value(serde_yaml_ng::from_str(CASES).unwrap()).unwrap();
    // The cases run at the file's clock; Envoy runs at the real one. A sign-in time is
    // moved by the difference, so "5 minutes ago" stays 5 minutes ago.
    let shift = now() - cases.now.unwrap_or_else(now);
    let mut responses = Vec::new();
    for case in &cases.cases {
        let token = case.claims.as_ref().map(|claims| {
            let mut claims = claims.clone();
            if let Some(auth_time) = claims.get("auth_time").and_then(Value::as_i64) {
                claims.insert("auth_time".into(), json!(auth_time + shift));
            }
            token(Value::Object(claims))
        });
        let mut headers: Vec<(&str, &str)> = case
            .request
            .headers
            .iter()
            .map(|(name, value)| match name.as_str() {
                "x-geo-region" => ("x-test-trusted-geo", value.as_str()),
                name => (name, value.as_str()),
            })
            .collect();
        headers.extend(SPOOFED);
        let response = get(
            &envoy,
            &case.request.method,
            &case.request.path,
            token.as_deref(),
            &headers,
        );
        responses.push(response);
    }
    let lines = envoy.access_log(cases.cases.len());
    let mut failures = Vec::new();
    for ((case, response), line) in cases.cases.iter().zip(&responses).zip(&lines) {
        let upstream = (response.status == 200).then(|| {
            upstream_headers(response)
                .as_object()
                .unwrap()
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        value.as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        });
        if let Some(upstream) = &upstream {
            for (name, spoofed) in SPOOFED {
                if upstream
                    .iter()
                    .any(|(known, value)| known == name && value == spoofed)
                {
                    failures.push(format!("{}: spoofed {name} reached upstream", case.name));
                }
            }
        }
        // Every request the filter decided has its explanation in the log (never `-`),
        // agreeing with what the client got, and claimgate's own answers name their
        // cause. Only a request Envoy refused before the filter (a path it cannot
        // normalize: 400) has none, and then Envoy's own details.
        let observed = match &line.explanation {
            Some(explanation) => {
                if line.status != response.status || explanation["status"] != json!(response.status)
                {
                    failures.push(format!(
                        "{}: access log says {} / {}, client got {}",
                        case.name, line.status, explanation["status"], response.status
                    ));
                }
                let details_ok = if response.status == 200 {
                    line.details == "via_upstream"
                } else {
                    line.details.starts_with("claimgate.")
                };
                if !details_ok {
                    failures.push(format!(
                        "{}: response code details {:?} for {}",
                        case.name, line.details, response.status
                    ));
                }
                if !explanation["reason"].is_string() {
                    failures.push(format!("{}: no reason in {explanation}", case.name));
                }
                Observed {
                    status: response.status,
                    rule: Some(explanation["rule"].as_str().map(str::to_owned)),
                    upstream_headers: upstream,
                    dry_run_status: Some(
                        explanation["dry_run"]["status"].as_u64().map(|s| s as u16),
                    ),
                    reason: explanation["reason"].as_str().map(str::to_owned),
                }
            }
            None => {
                // Envoy refused it before the filter ran: only the status can be compared.
                if response.status != 400 || case.expect.status != 400 {
                    failures.push(format!(
                        "{}: no explanation for a {} ({})",
                        case.name, response.status, line.details
                    ));
                }
                continue;
            }
        };
        for problem in case.expect.mismatches(&observed) {
            failures.push(format!("{}: {problem} ({})", case.name, response.body));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn dry_run_verdicts_are_counted_in_envoy_stats() {
    let envoy = Envoy::start(CONFIG);
    let bronze = token(json!({format!("{NS}loyalty_tier"): "Bronze"}));
    let gold = token(json!({format!("{NS}loyalty_tier"): "Gold"}));
    for token in [&bronze, &bronze, &gold] {
        let response = get(&envoy, "GET", "/recommendations/for-you", Some(token), &[]);
        assert_eq!(
            response.status, 200,
            "a dry-run rule must not refuse: {}",
            response.body
        );
    }
    let stats = envoy.admin("/stats?filter=claimgate").body;
    assert!(stats.contains("claimgate.dry_run.would_deny: 2"), "{stats}");
    assert!(
        stats.contains("claimgate.dry_run.rule.recommendations-need-silver.would_deny: 2"),
        "{stats}"
    );
    let log = envoy.log();
    assert!(
        log.contains(
            "dry run: would answer 403 instead of 200 (rule \"recommendations-need-silver\")"
        ),
        "{log}"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn dot_segments_hidden_behind_path_parameters_are_refused_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    let member = token(json!({format!("{NS}loyalty_tier"): "Bronze"}));
    // Servlet containers (and Envoy's normalize_path further in) drop ";..." from a segment
    // and then resolve it: each of these reaches /admin/users or /deals/exclusive there.
    // Envoy's own normalize_path passes the encoded forms through unresolved: claimgate
    // must refuse them.
    for path in [
        "/public/%2e%2e;/admin/users",
        "/public/%2E%2e;jsessionid=1/admin/users",
        "/public/.%2e%3b/admin/users",
        "/products/%2e%2e;/deals/exclusive",
    ] {
        for token in [None, Some(member.as_str())] {
            let response = get(&envoy, "GET", path, token, &[]);
            assert_eq!(response.status, 400, "{path}: {}", response.body);
            assert!(header(&response, "www-authenticate")
                .is_some_and(|value| value.contains("invalid_request")));
        }
    }
    // A plain "..;" Envoy resolves itself: claimgate then decides the resolved path, which
    // is what the upstream gets — never the public route.
    let response = get(&envoy, "GET", "/public/..;/admin/users", None, &[]);
    assert_eq!(response.status, 401, "{}", response.body);
    let response = get(&envoy, "GET", "/public/..;/admin/users", Some(&member), &[]);
    assert_eq!(response.status, 403, "{}", response.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn identity_headers_spelled_with_underscores_never_reach_the_upstream() {
    let token = token(json!({"sub": "auth0|alice"}));
    let spoofed = [("x_user_id", "auth0|ceo"), ("x_loyalty_tier", "Platinum")];
    // The shipped template drops them at the edge; with that switched off, claimgate
    // removes them itself.
    for allow_underscore_headers in [false, true] {
        let options = EnvoyOptions {
            allow_underscore_headers,
            ..EnvoyOptions::default()
        };
        let envoy = Envoy::start_with(CONFIG, options).unwrap();
        for path in ["/products/1", "/public/catalog"] {
            let response = get(&envoy, "GET", path, Some(&token), &spoofed);
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            let upstream = upstream_headers(&response);
            for (name, _) in spoofed {
                assert!(
                    upstream.get(name).is_none(),
                    "{path} (underscores allowed: {allow_underscore_headers}): {name} reached the upstream: {upstream}"
                );
            }
            assert_eq!(upstream["x-user-id"], "auth0|alice");
        }
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_client_cannot_choose_the_region_a_rule_trusts() {
    let envoy = Envoy::start(CONFIG);
    let eu = token(json!({format!("{NS}region"): "EU"}));
    // The shipped edge drops a client's x-geo-region: no detected region, no offers.
    let response = get(
        &envoy,
        "GET",
        "/offers/regional/spring",
        Some(&eu),
        &[("x-geo-region", "EU")],
    );
    assert_eq!(response.status, 403, "{}", response.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn repeated_or_oddly_spelled_credentials_are_refused_clearly_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    let one = token(json!({}));
    let bearer = format!("Bearer {one}");
    // Envoy joins the two headers with a comma before claimgate sees them.
    let twice = envoy.request(
        "GET",
        "/products/1",
        &[("authorization", &bearer), ("authorization", &bearer)],
    );
    assert_eq!(twice.status, 401);
    assert!(
        header(&twice, "www-authenticate").is_some_and(|v| v.contains("more than one token")),
        "{:?}",
        twice.headers
    );
    // A tab after the scheme is still a bearer token: verified, not passed along as an
    // unknown credential on a public route.
    let swap = if one.ends_with('A') { 'Q' } else { 'A' };
    let forged = format!("{}{swap}", &one[..one.len() - 1]);
    let tab = envoy.request(
        "GET",
        "/public/x",
        &[("authorization", &format!("Bearer\t{forged}"))],
    );
    assert_eq!(tab.status, 401, "{}", tab.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn host_scoped_rules_cannot_be_evaded_with_odd_host_spellings() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["rules"].as_array_mut().unwrap().insert(
        0,
        json!({"name": "no-internal", "effect": "deny", "match": {"hosts": ["internal.example.com"]}}),
    );
    let envoy = Envoy::start(&config.to_string());
    for host in [
        "x@internal.example.com",
        "internal.example.com%2e",
        "internal.example.com:80x",
    ] {
        let response = get(&envoy, "GET", "/public/x", None, &[("host", host)]);
        assert!(
            response.status == 400,
            "{host}: {} {}",
            response.status,
            response.body
        );
    }
    for host in ["internal.example.com.", "INTERNAL.example.com:443"] {
        let response = get(&envoy, "GET", "/public/x", None, &[("host", host)]);
        assert_eq!(response.status, 403, "{host}: {}", response.body);
    }
    let response = get(
        &envoy,
        "GET",
        "/public/x",
        None,
        &[("host", "shop.example.com")],
    );
    assert_eq!(response.status, 200, "{}", response.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn later_filters_rate_limit_by_the_verified_tier() {
    let envoy = Envoy::start(CONFIG);
    let tier = |tier: &str| token(json!({format!("{NS}loyalty_tier"): tier}));
    let statuses = |token: &str, count: usize, spoof: &str| -> Vec<u16> {
        (0..count)
            .map(|_| {
                get(
                    &envoy,
                    "GET",
                    "/recommendations/for-you",
                    Some(token),
                    &[("x-loyalty-tier", spoof)],
                )
                .status
            })
            .collect()
    };
    // The shipped demo limits: Bronze 3, Silver 6, Gold and Platinum 60 per minute. A
    // client's own x-loyalty-tier never picks the bucket.
    assert_eq!(
        statuses(&tier("Bronze"), 5, "Platinum"),
        [200, 200, 200, 429, 429]
    );
    assert_eq!(
        statuses(&tier("Silver"), 7, "Gold"),
        [200, 200, 200, 200, 200, 200, 429]
    );
    assert!(statuses(&tier("Gold"), 12, "Bronze")
        .iter()
        .all(|status| *status == 200));
    // Other routes are not limited by tier.
    for _ in 0..5 {
        assert_eq!(
            get(&envoy, "GET", "/products/1", Some(&tier("Bronze")), &[]).status,
            200
        );
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn cors_preflights_pass_claimgate_only_when_configured() {
    let preflight = [
        ("origin", "https://shop.aethermarket.example"),
        ("access-control-request-method", "POST"),
    ];
    // Off by default: a preflight without a token is refused like any request.
    let envoy = Envoy::start(CONFIG);
    assert_eq!(
        get(&envoy, "OPTIONS", "/products/1", None, &preflight).status,
        401
    );
    // On: forwarded (here to the upstream, which answers CORS itself) and counted.
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["bypass_cors_preflight"] = json!(true);
    let envoy = Envoy::start(&config.to_string());
    let response = get(&envoy, "OPTIONS", "/products/1", None, &preflight);
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(upstream_headers(&response).get("x-user-id").is_none());
    let stats = envoy.admin("/stats?filter=claimgate.requests").body;
    assert!(
        stats.contains("claimgate.requests.cors_preflight: 1"),
        "{stats}"
    );
    // Still no way past with a non-preflight OPTIONS.
    let plain = get(
        &envoy,
        "OPTIONS",
        "/products/1",
        None,
        &[("origin", "https://x.example")],
    );
    assert_eq!(plain.status, 401);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn envoys_cors_filter_before_claimgate_answers_preflights_and_labels_refusals() {
    let origin = "https://shop.aethermarket.example";
    let options = EnvoyOptions {
        cors_origin: Some(origin),
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(CONFIG, options).unwrap();
    let preflight = get(
        &envoy,
        "OPTIONS",
        "/products/1",
        None,
        &[("origin", origin), ("access-control-request-method", "GET")],
    );
    assert_eq!(preflight.status, 200, "{}", preflight.body);
    assert_eq!(
        header(&preflight, "access-control-allow-origin"),
        Some(origin)
    );
    // claimgate's 401 carries the CORS headers, so the browser can read it.
    let refused = get(&envoy, "GET", "/products/1", None, &[("origin", origin)]);
    assert_eq!(refused.status, 401);
    assert_eq!(
        header(&refused, "access-control-allow-origin"),
        Some(origin)
    );
    let stats = envoy.admin("/stats?filter=claimgate.requests").body;
    assert!(
        stats.contains("claimgate.requests.cors_preflight: 0"),
        "{stats}"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn deny_rules_match_the_paths_envoy_re_encodes() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["rules"].as_array_mut().unwrap().insert(
        0,
        json!({"name": "carol-frozen", "effect": "deny", "match": {"prefix": "/users/auth0|carol"}}),
    );
    let envoy = Envoy::start(&config.to_string());
    let carol = token(json!({"sub": "auth0|carol"}));
    for path in [
        "/users/auth0|carol/orders",
        "/users/auth0%7Ccarol/orders",
        "/users/auth0%7ccarol/orders",
    ] {
        let response = get(&envoy, "GET", path, Some(&carol), &[]);
        assert_eq!(response.status, 403, "{path}: {}", response.body);
    }
    let alice = token(json!({"sub": "auth0|alice"}));
    let response = get(
        &envoy,
        "GET",
        "/users/auth0%7Calice/orders",
        Some(&alice),
        &[],
    );
    assert_eq!(response.status, 200, "{}", response.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn client_address_conditions_use_the_peer_address_envoy_reports() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    let rules = config["rules"].as_array_mut().unwrap();
    rules.push(
        json!({"name": "loopback-status", "match": {"path": "/status"}, "access": "public",
        "when": {"request": "client_address", "in_cidr": ["127.0.0.0/8", "::1/128"]}}),
    );
    rules.push(
        json!({"name": "office-reports", "match": {"path": "/reports"}, "access": "public",
        "when": {"request": "client_address", "in_cidr": "10.20.0.0/16"}}),
    );
    let envoy = Envoy::start(&config.to_string());
    let status = get(
        &envoy,
        "GET",
        "/status",
        None,
        &[("x-forwarded-for", "10.20.1.1")],
    );
    assert_eq!(status.status, 200, "{}", status.body);
    // A client cannot claim another address with a header: the peer address decides.
    let reports = get(
        &envoy,
        "GET",
        "/reports",
        None,
        &[("x-forwarded-for", "10.20.1.1")],
    );
    assert_eq!(reports.status, 403, "{}", reports.body);
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn the_shipped_access_log_never_writes_a_token() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["providers"][0]["from"] = json!([
        {"header": "authorization", "prefix": "Bearer "},
        {"query": "access_token"}
    ]);
    let envoy = Envoy::start(&config.to_string());
    let good = token(json!({}));
    let expired = token(json!({"iat": now() - 7200, "exp": now() - 3600}));
    let mut forged = good.clone().into_bytes();
    let last = forged.len() - 2;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let requests = [
        (format!("/products/1?page=2&access_token={good}"), 200),
        (format!("/products/1?access_token={expired}"), 401),
        (format!("/products/1?access_token={forged}&x=1"), 401),
        (format!("/deals/exclusive?access_token={good}"), 403),
    ];
    for (path, status) in &requests {
        assert_eq!(envoy.request("GET", path, &[]).status, *status, "{path}");
    }
    let lines = envoy.access_log(requests.len());
    for (line, (path, status)) in lines.iter().zip(&requests) {
        assert_eq!(line.status, *status);
        assert_eq!(
            Some(line.path.as_str()),
            path.split('?').next(),
            "no query (and no token) in the log"
        );
        assert_eq!(line.explained()["status"], json!(status), "{line:?}");
    }
    let log = envoy.log();
    for secret in [&good, &expired, &forged] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !log.contains(signature),
            "a token is in Envoy's log:\n{log}"
        );
    }
    assert!(
        log.contains("claimgate-access GET /products/1 200"),
        "{log}"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn unforwarded_tokens_are_removed_from_header_query_and_cookie_through_envoy() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["providers"][0]["forward_token"] = json!(false);
    config["providers"][0]["from"] = json!([
        {"header": "authorization", "prefix": "Bearer "},
        {"query": "access_token"},
        {"cookie": "at"}
    ]);
    let envoy = Envoy::start(&config.to_string());
    let token = token(json!({}));
    let by_query = envoy.request(
        "GET",
        &format!("/products/1?page=2&access_token={token}&sort=asc"),
        &[("cookie", "theme=dark")],
    );
    assert_eq!(by_query.status, 200, "{}", by_query.body);
    let echoed: Value = serde_json::from_str(&by_query.body).unwrap();
    assert_eq!(echoed["path"], "/products/1?page=2&sort=asc");
    assert_eq!(echoed["headers"]["cookie"], "theme=dark");
    assert_eq!(
        echoed["headers"]["x-user-id"],
        "auth0|5f7c8ec7c33c6c004bbafe82"
    );
    let by_cookie = envoy.request(
        "GET",
        "/products/1",
        &[
            ("cookie", &format!("theme=dark; at={token}")),
            ("cookie", "lang=de"),
        ],
    );
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.body);
    let upstream = upstream_headers(&by_cookie);
    let cookie = upstream["cookie"].as_str().unwrap_or_default();
    assert!(!cookie.contains(&token), "{cookie}");
    assert!(
        cookie.contains("theme=dark") && cookie.contains("lang=de"),
        "{cookie}"
    );
    let by_header = get(&envoy, "GET", "/products/1", Some(&token), &[]);
    assert_eq!(by_header.status, 200);
    assert!(upstream_headers(&by_header).get("authorization").is_none());
}

/// Step-up (RFC 9470) through Envoy: changing the payment method after a password-only
/// sign-in, or an MFA sign-in older than 10 minutes, gets 401
/// `insufficient_user_authentication` naming the `acr` to ask for and the `max_age`; an
/// MFA sign-in from 5 minutes ago passes.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn changing_the_payment_method_needs_a_recent_mfa_sign_in_through_envoy() {
    let envoy = Envoy::start(CONFIG);
    let mfa = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
    for (acr, ago, status) in [
        ("urn:aethermarket:acr:password", 60, 401),
        (mfa, 1200, 401),
        (mfa, 300, 200),
    ] {
        let token = token(json!({"acr": acr, "auth_time": now() - ago}));
        let response = get(&envoy, "PUT", "/account/payment", Some(&token), &[]);
        assert_eq!(
            response.status, status,
            "{acr} {ago}s ago: {}",
            response.body
        );
        if status == 401 {
            assert_eq!(
                response.header("www-authenticate"),
                Some(format!("Bearer realm=\"aethermarket\", error=\"insufficient_user_authentication\", error_description=\"a stronger or more recent authentication is required\", acr_values=\"{mfa}\", max_age=\"600\"").as_str())
            );
            let body: Value = serde_json::from_str(&response.body).unwrap();
            assert_eq!(body["error"], "insufficient_user_authentication");
        }
    }
    let stats = envoy.admin("/stats?filter=unauthenticated.step_up").body;
    assert!(
        stats.contains("claimgate.requests.unauthenticated.step_up: 2"),
        "{stats}"
    );
}
