//! Claims of README.md and filter-config/*.md that only a real Envoy can prove (rows of
//! tests/CLAIMS.md): what every refusal looks like on the wire, that every
//! `unauthenticated.<reason>` counter and the other documented counters move, IdP
//! outages (503 + `Retry-After: 5`, or 401 with `outage_status: 401`), what Envoy logs
//! (start-up line per worker VM, configuration warnings, one line per fetch outcome),
//! DPoP headers and nonces on the wire, the once-only record when full, a VM failure,
//! `merge_slashes`, and the Wasm runtimes the wheel's Envoy refuses. DPoP keys, tokens and
//! proofs are made by PyJWT (`support::pyjwt_keys`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::idp::reserve_port;
use crate::support::loopback_cluster as idp_cluster;
use crate::support::pyjwt_keys::Keys;
use crate::support::{demo_key, demo_token, fault_module, now, Envoy, EnvoyOptions, Response};
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::{json, Map, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const NS: &str = "https://aethermarket.com/";

fn aethermarket() -> Value {
    serde_json::from_str(CONFIG).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Every `claimgate.` stat on `/stats`, by name (without `wasmcustom.`).
fn stats(envoy: &Envoy) -> BTreeMap<String, i64> {
    envoy
        .admin("/stats?filter=claimgate")
        .body
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(": ")?;
            let name = name.strip_prefix("wasmcustom.").unwrap_or(name);
            Some((name.to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Checks each `(stat, value)`; one message listing every mismatch.
fn assert_stats(envoy: &Envoy, expected: &[(&str, i64)]) {
    let stats = stats(envoy);
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(name, value)| stats.get(*name) != Some(value))
        .map(|(name, value)| format!("{name}: {:?} instead of {value}", stats.get(*name)))
        .collect();
    assert!(wrong.is_empty(), "{}\nall: {stats:#?}", wrong.join("\n"));
}

/// A request provoking one reason: path, headers, the reason, the description expected in
/// the challenge.
type Provoked = (
    &'static str,
    Vec<(&'static str, String)>,
    &'static str,
    &'static str,
);

fn body_json(response: &Response) -> Value {
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{response:?}"
    );
    serde_json::from_str(&response.body).unwrap_or_else(|err| panic!("{err}: {response:?}"))
}

/// README › What a client sees: bodies are JSON `{"error", "error_description"}`,
/// `Cache-Control: no-store`, the token never echoed; a 403 carries `insufficient_scope`
/// in its challenge and never the rule or condition that refused it.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn every_refusal_is_json_with_a_description_marked_no_store_and_names_no_rule() {
    let envoy = Envoy::start(CONFIG);
    let expired = demo_token(json!({"iat": now() - 7200, "exp": now() - 3600}));
    let silver = demo_token(json!({format!("{NS}loyalty_tier"): "Silver"}));
    let cases: Vec<(&str, &str, Option<&str>, u16, &str)> = vec![
        ("GET", "/products/1", None, 401, "unauthorized"),
        ("GET", "/products/1", Some(&expired), 401, "invalid_token"),
        (
            "GET",
            "/deals/exclusive",
            Some(&silver),
            403,
            "insufficient_scope",
        ),
        (
            "GET",
            "/public/%2e%2e;/admin/users",
            None,
            400,
            "invalid_request",
        ),
    ];
    for (method, path, token, status, error) in cases {
        let authorization = token.map(bearer);
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|value| ("authorization", value.as_str()))
            .collect();
        let response = envoy.request(method, path, &headers);
        assert_eq!(response.status, status, "{path}: {}", response.body);
        assert_eq!(
            response.header("cache-control"),
            Some("no-store"),
            "{path}: {response:?}"
        );
        let body = body_json(&response);
        assert_eq!(body["error"], error, "{path}: {body}");
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{path}: {body}"
        );
        if let Some(token) = token {
            assert!(!response.body.contains(token), "{path}: token echoed");
            for (_, value) in &response.headers {
                assert!(!value.contains(token), "{path}: token echoed");
            }
        }
        if status == 403 {
            assert_eq!(
                response.header("www-authenticate"),
                Some(
                    r#"Bearer realm="aethermarket", error="insufficient_scope", error_description="the token does not grant access to this resource""#
                ),
                "{response:?}"
            );
            let wire = format!("{:?}{}", response.headers, response.body);
            for secret in [
                "exclusive-deals",
                "loyalty_tier",
                "Gold",
                "at_least",
                "rule",
            ] {
                assert!(!wire.contains(secret), "a 403 names {secret}: {wire}");
            }
        }
    }
    let expired_response = envoy.request(
        "GET",
        "/products/1",
        &[("authorization", &bearer(&expired))],
    );
    assert_eq!(
        body_json(&expired_response)["error_description"],
        "token expired"
    );
}

/// A configuration where each documented `unauthenticated.<reason>` but the DPoP ones can
/// be provoked: the demo provider with a lifetime and size limit, and a second provider
/// (same demo key) that reads its own header and wants `typ: at+jwt`; a rule only the
/// second provider's tokens may pass; a token cache of two entries.
fn reasons_config() -> Value {
    let mut config = aethermarket();
    let auth0 = config["providers"][0].clone();
    config["providers"][0]["max_lifetime_seconds"] = json!(86_400);
    config["providers"][0]["max_token_bytes"] = json!(4096);
    let mut strict = auth0;
    strict["name"] = json!("strict");
    strict["issuer"] = json!("https://strict.example/");
    strict["token_type"] = json!("at+jwt");
    strict["max_token_bytes"] = json!(4096);
    strict["from"] = json!([{"header": "x-strict-token"}]);
    config["providers"].as_array_mut().unwrap().push(strict);
    config["rules"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "strict-only", "match": {"prefix": "/strict"}, "access": "authenticated", "providers": ["strict"]}));
    config["token_cache"] = json!({"max_entries": 2});
    config
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn every_unauthenticated_reason_and_the_cache_and_provider_counters_move() {
    let envoy = Envoy::start(&reasons_config().to_string());
    let send = |path: &str, method: &str, headers: &[(&str, &str)], status: u16| {
        let response = envoy.request(method, path, headers);
        assert_eq!(
            response.status, status,
            "{path} {headers:?}: {}",
            response.body
        );
        response
    };
    // Four distinct valid tokens into a cache of two: two evictions, two entries.
    for index in 0..4 {
        let token = demo_token(json!({"sub": format!("auth0|cache-{index}")}));
        send(
            "/products/1",
            "GET",
            &[("authorization", &bearer(&token))],
            200,
        );
    }
    assert_stats(
        &envoy,
        &[
            ("claimgate.token_cache.evictions", 2),
            ("claimgate.token_cache.entries", 2),
            ("claimgate.token_cache.misses", 4),
        ],
    );

    let claims = |extra: Value| {
        let mut claims = json!({"iss": "https://aethermarket.auth0.com/",
            "aud": "https://api.aethermarket.com", "sub": "auth0|reasons",
            "iat": now(), "exp": now() + 600});
        for (name, value) in extra.as_object().unwrap() {
            claims[name] = value.clone();
        }
        claims
    };
    let sign = |extra: Value| demo_key().sign(&claims(extra)).unwrap();
    let strict_claims = json!({"iss": "https://strict.example/"});
    let mut at_jwt = Map::new();
    at_jwt.insert("typ".into(), json!("at+jwt"));
    let strict_typed = demo_key()
        .sign_with_header(at_jwt.clone(), &claims(strict_claims.clone()))
        .unwrap();
    let mut unknown_kid = Map::new();
    unknown_kid.insert("kid".into(), json!("no-such-key"));
    let hs256 = SigningKey::generate(Alg::Hs256, None)
        .unwrap()
        .sign(&claims(json!({})))
        .unwrap();
    let one = sign(json!({"sub": "auth0|one"}));
    let two = sign(json!({"sub": "auth0|two"}));
    let reasons: Vec<Provoked> = vec![
        (
            "/products/1",
            vec![("authorization", "Bearer not-a-jwt".into())],
            "malformed",
            "",
        ),
        (
            "/products/1",
            vec![("authorization", bearer(&sign(json!({"nbf": now() + 3600}))))],
            "not_yet_valid",
            "token not yet valid",
        ),
        (
            "/products/1",
            vec![(
                "authorization",
                bearer(&sign(json!({"exp": now() + 2 * 86_400}))),
            )],
            "lifetime",
            "token lifetime too long",
        ),
        (
            "/products/1",
            vec![(
                "authorization",
                bearer(&sign(json!({"iss": "https://unknown.example/"}))),
            )],
            "issuer",
            "unknown token issuer",
        ),
        (
            "/products/1",
            vec![("authorization", bearer(&hs256))],
            "algorithm",
            "signing algorithm not allowed",
        ),
        (
            "/products/1",
            vec![(
                "authorization",
                bearer(
                    &demo_key()
                        .sign_with_header(unknown_kid, &claims(json!({})))
                        .unwrap(),
                ),
            )],
            "key_not_found",
            "",
        ),
        (
            "/strict/x",
            vec![("x-strict-token", sign(strict_claims.clone()))],
            "type",
            "wrong token type",
        ),
        (
            "/products/1",
            vec![(
                "authorization",
                bearer(&sign(json!({"padding": "x".repeat(4096)}))),
            )],
            "too_large",
            "token too large",
        ),
        (
            "/products/1",
            vec![
                ("authorization", bearer(&one)),
                ("authorization", bearer(&two)),
            ],
            "two_tokens",
            "",
        ),
        (
            "/strict/x",
            vec![("authorization", bearer(&strict_typed))],
            "location",
            "token not accepted in this location",
        ),
        (
            "/strict/x",
            vec![("authorization", bearer(&sign(json!({}))))],
            "provider",
            "",
        ),
        (
            "/account/payment",
            vec![("authorization", bearer(&sign(json!({}))))],
            "step_up",
            "",
        ),
    ];
    for (path, headers, reason, description) in &reasons {
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_str()))
            .collect();
        let method = if *reason == "step_up" { "PUT" } else { "GET" };
        let response = send(path, method, &headers, 401);
        let challenge = response.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(description), "{reason}: {challenge}");
        let counter = format!("claimgate.requests.unauthenticated.{reason}");
        assert_stats(&envoy, &[(counter.as_str(), 1)]);
    }
    // The strict provider's own token in its own header passes.
    send(
        "/strict/x",
        "GET",
        &[("x-strict-token", strict_typed.as_str())],
        200,
    );
    // Refusals of verified tokens count for their provider: `provider` and `step_up`
    // (auth0); the others never verified, so they count for no provider.
    assert_stats(
        &envoy,
        &[
            ("claimgate.by_provider.auth0.unauthenticated", 2),
            ("claimgate.by_provider.strict.unauthenticated", 0),
            ("claimgate.by_provider.strict.allowed", 1),
            ("claimgate.requests.unauthenticated.missing", 0),
            ("claimgate.requests.unauthenticated.dpop_proof", 0),
        ],
    );
}

/// Warnings about a failed fetch of `provider` from `endpoint`
/// (`claimgate: provider P: REASON from ENDPOINT via cluster C failed: …`).
fn failed_fetch_lines(envoy: &Envoy, provider: &str, endpoint: &str) -> usize {
    let prefix = format!("claimgate: provider {provider}: ");
    let from = format!(" from {endpoint} via cluster idp failed: ");
    envoy
        .log()
        .lines()
        .filter(|line| line.contains("[warning]") && line.contains(&prefix) && line.contains(&from))
        .count()
}

/// README › What a client sees and › Keys: with an IdP that never answers, `outage_status`
/// 503 answers 503 `temporarily_unavailable` with `Retry-After: 5` (counted as
/// `requests.no_keys`), `outage_status: 401` answers 401 `invalid_token`; failed fetches
/// are counted by source (`jwks_failed`, `discovery_failed`) and each is logged once, by
/// the VM that made it, never per request or per worker.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn without_keys_requests_get_503_with_retry_after_5_or_401_and_each_failed_fetch_is_logged_once() {
    let dead = reserve_port();
    let source = |extra: Value| {
        let mut source = json!({"timeout_ms": 500, "min_cache_duration_seconds": 1,
            "retry_initial_ms": 300, "retry_max_seconds": 1});
        for (name, value) in extra.as_object().unwrap() {
            source[name] = value.clone();
        }
        source
    };
    let config = json!({
        "realm": "outage",
        "providers": [
            {"name": "down", "issuer": "https://down.example/", "audiences": ["api"],
             "algorithms": ["ES256"],
             "jwks": {"remote": source(json!({"cluster": "idp", "authority": "down.example", "path": "/jwks.json"}))}},
            {"name": "quiet", "issuer": "https://quiet.example/", "audiences": ["api"],
             "algorithms": ["ES256"],
             "jwks": {"discovery": source(json!({"cluster": "idp", "outage_status": 401}))}}
        ],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    });
    let envoy = Envoy::start_with_clusters(
        &config.to_string(),
        EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
        &idp_cluster("idp", dead),
    )
    .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let token = |issuer: &str| {
        key.sign(
            &json!({"iss": issuer, "aud": "api", "sub": "s", "iat": now(), "exp": now() + 600}),
        )
        .unwrap()
    };
    let (down, quiet) = (
        token("https://down.example/"),
        token("https://quiet.example/"),
    );
    for _ in 0..3 {
        let response = envoy.request("GET", "/x", &[("authorization", &bearer(&down))]);
        assert_eq!(response.status, 503, "{}", response.body);
        assert_eq!(response.header("retry-after"), Some("5"), "{response:?}");
        assert_eq!(
            response.header("www-authenticate"),
            Some(
                r#"Bearer realm="outage", error="temporarily_unavailable", error_description="signing keys are not available yet""#
            )
        );
        assert_eq!(body_json(&response)["error"], "temporarily_unavailable");
        let response = envoy.request("GET", "/x", &[("authorization", &bearer(&quiet))]);
        assert_eq!(response.status, 401, "{}", response.body);
        assert_eq!(response.header("retry-after"), None);
        assert_eq!(
            response.header("www-authenticate"),
            Some(
                r#"Bearer realm="outage", error="invalid_token", error_description="signing keys are not available yet""#
            )
        );
    }
    let stats = stats(&envoy);
    // Both answers are "no keys": the 503s and the 401s of `outage_status: 401`.
    assert_eq!(
        stats.get("claimgate.requests.no_keys"),
        Some(&6),
        "{stats:#?}"
    );
    assert_eq!(
        stats.get("claimgate.requests.unauthenticated.key_not_found"),
        Some(&0)
    );
    let jwks_failed = stats["claimgate.keys.down.jwks_failed"];
    let discovery_failed = stats["claimgate.keys.quiet.discovery_failed"];
    assert!(jwks_failed >= 1 && discovery_failed >= 1, "{stats:#?}");
    assert_eq!(stats.get("claimgate.keys.quiet.jwks_failed"), Some(&0));
    assert_eq!(stats.get("claimgate.keys.down.stale"), Some(&1));
    // Let a few more retries happen, then compare the log with the counters read at the
    // same moment: one warning per failed fetch.
    std::thread::sleep(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = self::stats(&envoy);
        let (down_lines, quiet_lines) = (
            failed_fetch_lines(&envoy, "down", "down.example/jwks.json"),
            failed_fetch_lines(
                &envoy,
                "quiet",
                "quiet.example/.well-known/openid-configuration",
            ),
        );
        let after = self::stats(&envoy);
        let counted = (
            after["claimgate.keys.down.jwks_failed"],
            after["claimgate.keys.quiet.discovery_failed"],
        );
        let stable = counted
            == (
                before["claimgate.keys.down.jwks_failed"],
                before["claimgate.keys.quiet.discovery_failed"],
            );
        if stable && (down_lines as i64, quiet_lines as i64) == counted {
            assert!(counted.0 >= 2, "retried: {counted:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "log lines {down_lines}/{quiet_lines} for {counted:?} failed fetches:\n{}",
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// TROUBLESHOOTING › healthy: the start-up line once per VM Envoy starts for the plugin
/// (each worker's, and two on the main thread); a configuration warning (a rule made pointless
/// by another) is logged as `claimgate: configuration warning: …`, once per VM.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn each_vm_logs_the_start_up_line_and_the_configuration_warnings_once() {
    let mut config = aethermarket();
    config["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "close-admin", "match": {"prefix": "/admin"}, "effect": "deny"}));
    let envoy = Envoy::start_with(
        &config.to_string(),
        EnvoyOptions {
            concurrency: 2,
            ..EnvoyOptions::default()
        },
    )
    .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    // Every worker has served a request.
    for _ in 0..8 {
        assert_eq!(envoy.request("GET", "/products/1", &[]).status, 401);
    }
    let version = env!("CARGO_PKG_VERSION");
    let loaded = format!(
        "claimgate: configuration loaded: 1 provider(s) (0 with remote keys), 16 rule(s) (claimgate {version})"
    );
    let log = envoy.log();
    // Lines by Envoy thread id (`[time][thread][level][component]`).
    let by_thread = |needle: &str| -> BTreeMap<String, usize> {
        let mut threads = BTreeMap::new();
        for line in log.lines().filter(|line| line.contains(needle)) {
            let thread = line.split(['[', ']']).nth(3).unwrap_or_default().to_owned();
            *threads.entry(thread).or_insert(0) += 1;
        }
        threads
    };
    let main_thread = log
        .lines()
        .find(|line| line.contains("][main]"))
        .and_then(|line| line.split(['[', ']']).nth(3))
        .unwrap()
        .to_owned();
    let warning = "claimgate: configuration warning: rules[5]: rule 'admin-read'";
    for needle in [loaded.as_str(), warning] {
        let threads = by_thread(needle);
        // Once per worker (--concurrency 2), twice on the main thread: N + 2 lines.
        assert_eq!(threads.len(), 3, "{needle}: {threads:?}\n{log}");
        for (thread, lines) in &threads {
            let expected = if *thread == main_thread { 2 } else { 1 };
            assert_eq!(*lines, expected, "{needle}: thread {thread}: {threads:?}");
        }
    }
    assert!(
        log.lines()
            .filter(|line| line.contains(warning))
            .all(|line| line.contains("[warning]")),
        "{log}"
    );
}

/// filter-config › DPoP: the `DPoP` header reaches the upstream as the client sent it;
/// nonces come only on the `use_dpop_nonce` 401 (counted `unauthenticated.dpop_nonce`),
/// never on a successful response; a `jti` of 256 bytes is accepted and one of 257
/// refused.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn dpop_proofs_reach_the_upstream_unchanged_and_nonces_come_only_on_the_401() {
    let issuer = Keys::new();
    let client = &issuer;
    let config = json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": "https://idp.example/", "audiences": ["https://api.example"],
            "algorithms": ["ES256"], "jwks": {"inline": {"keys": [issuer.issuer["jwk"]]}},
            "dpop": "required"
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "dpop_proofs": {"use_dpop_nonce": true}
    });
    let envoy = Envoy::start(&config.to_string());
    let token = issuer.sign(
        &json!({"iss": "https://idp.example/", "aud": "https://api.example",
        "sub": "dpop-user", "iat": now(), "exp": now() + 600, "cnf": {"jkt": client.client_jkt()}}),
    );
    let url = format!("http://127.0.0.1:{}/orders", envoy.port);
    let authorization = format!("DPoP {token}");
    let send = |proof: &str| {
        envoy.request(
            "GET",
            "/orders",
            &[("authorization", &authorization), ("dpop", proof)],
        )
    };
    let first = send(&client.proof(&token, "GET", &url, "no-nonce"));
    assert_eq!(first.status, 401, "{}", first.body);
    assert!(first
        .header("www-authenticate")
        .is_some_and(|challenge| challenge.contains(r#"error="use_dpop_nonce""#)));
    let nonce = first
        .header("dpop-nonce")
        .expect("a nonce on the 401")
        .to_owned();
    let with_nonce = |jti: &str| {
        let mut request = client.proof_request(&token, "GET", &url, jti);
        request["claims"]["nonce"] = json!(nonce);
        client.proofs(vec![request]).remove(0)
    };
    let proof = with_nonce("with-nonce");
    let passed = send(&proof);
    assert_eq!(passed.status, 200, "{}", passed.body);
    assert_eq!(passed.header("dpop-nonce"), None, "{:?}", passed.headers);
    let echo: Value = serde_json::from_str(&passed.body).unwrap();
    assert_eq!(echo["headers"]["dpop"], proof.as_str(), "{echo}");
    assert_eq!(echo["headers"]["authorization"], authorization.as_str());

    let longest = send(&with_nonce(&"j".repeat(256)));
    assert_eq!(longest.status, 200, "{}", longest.body);
    let too_long = send(&with_nonce(&"j".repeat(257)));
    assert_eq!(too_long.status, 401, "{}", too_long.body);
    assert!(too_long
        .header("www-authenticate")
        .is_some_and(|challenge| challenge.contains("invalid_dpop_proof")));
    assert_eq!(too_long.header("dpop-nonce"), None);
    assert_stats(
        &envoy,
        &[
            ("claimgate.requests.unauthenticated.dpop_nonce", 1),
            ("claimgate.requests.unauthenticated.dpop_proof", 1),
            ("claimgate.requests.allowed", 2),
        ],
    );
}

/// filter-config › DPoP › once only: a record full of live proofs refuses the next one
/// with 503 `temporarily_unavailable` + `Retry-After` rather than forget one, counted as
/// `requests.dpop_replay_unavailable`. The record is 256 entries (one shard); each key may
/// hold 32 of them, so eight keys fill it and a ninth is refused.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_full_proof_record_answers_503_with_retry_after_and_counts_it() {
    let issuer = Keys::new();
    let config = json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": "https://idp.example/", "audiences": ["https://api.example"],
            "algorithms": ["ES256"], "jwks": {"inline": {"keys": [issuer.issuer["jwk"]]}},
            "dpop": "required"
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "dpop_proofs": {"replay_cache_entries": 256}
    });
    let envoy = Envoy::start(&config.to_string());
    let url = format!("http://127.0.0.1:{}/orders", envoy.port);
    let client = |name: &str| {
        let keys = Keys::new();
        let token = issuer.sign(
            &json!({"iss": "https://idp.example/", "aud": "https://api.example",
            "sub": name, "iat": now(), "exp": now() + 600, "cnf": {"jkt": keys.client_jkt()}}),
        );
        (keys, token)
    };
    let send = |token: &str, proof: &str| {
        envoy.request(
            "GET",
            "/orders",
            &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
        )
    };
    for index in 0..8 {
        let (keys, token) = client(&format!("client-{index}"));
        let proofs = keys.proofs(
            (0..32)
                .map(|n| keys.proof_request(&token, "GET", &url, &format!("c{index}-{n}")))
                .collect(),
        );
        for proof in &proofs {
            assert_eq!(send(&token, proof).status, 200);
        }
    }
    let (keys, token) = client("ninth");
    let refused = send(&token, &keys.proof(&token, "GET", &url, "ninth-1"));
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused
        .header("retry-after")
        .and_then(|value| value.parse::<u64>().ok())
        .is_some_and(|seconds| (1..=61).contains(&seconds)));
    assert_eq!(body_json(&refused)["error"], "temporarily_unavailable");
    assert_stats(
        &envoy,
        &[
            ("claimgate.requests.dpop_replay_unavailable", 1),
            ("claimgate.requests.allowed", 256),
        ],
    );
}

/// TROUBLESHOOTING › healthy and README › Security: a VM that fails is replaced
/// (`wasm.claimgate.vm_reload…` moves), its request gets exactly 503, and the log has a
/// `critical` line saying why.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_failed_vm_answers_503_logs_critically_and_counts_the_reload() {
    let envoy = Envoy::start_with(
        CONFIG,
        EnvoyOptions {
            module: Some(fault_module()),
            ..EnvoyOptions::default()
        },
    )
    .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let token = bearer(&demo_token(json!({"sub": "auth0|reload"})));
    assert_eq!(
        envoy
            .request("GET", "/products/1", &[("authorization", &token)])
            .status,
        200
    );
    let reloads = |envoy: &Envoy| -> i64 {
        stats(envoy)
            .iter()
            .filter(|(name, _)| name.starts_with("wasm.claimgate.vm_reload"))
            .map(|(_, value)| *value)
            .sum()
    };
    assert_eq!(reloads(&envoy), 0);
    let trapped = envoy.request(
        "GET",
        "/products/1",
        &[("authorization", &token), ("x-claimgate-fault", "trap")],
    );
    assert_eq!(trapped.status, 503, "{}", trapped.body);
    let critical: Vec<String> = envoy
        .log()
        .lines()
        .filter(|line| line.contains("the VM panicked and stops"))
        .map(str::to_owned)
        .collect();
    assert!(
        !critical.is_empty() && critical.iter().all(|line| line.contains("[critical]")),
        "{critical:?}\n{}",
        envoy.log()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while envoy
        .request("GET", "/products/1", &[("authorization", &token)])
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "no new VM:\n{}", envoy.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(reloads(&envoy) >= 1, "{:#?}", stats(&envoy));
}

/// README › Security: under the shipped template (`merge_slashes: true`) the upstream
/// gets the path claimgate decided on, with merged slashes.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn merged_slashes_reach_the_upstream_as_claimgate_decided_them() {
    let envoy = Envoy::start(CONFIG);
    let token = bearer(&demo_token(json!({})));
    let response = envoy.request("GET", "//products///1", &[("authorization", &token)]);
    assert_eq!(response.status, 200, "{}", response.body);
    let echo: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(echo["path"], "/products/1");
    // A deny that matches once merged is not evaded with doubled slashes.
    let silver = bearer(&demo_token(json!({format!("{NS}loyalty_tier"): "Silver"})));
    let response = envoy.request("GET", "//deals//exclusive", &[("authorization", &silver)]);
    assert_eq!(response.status, 403, "{}", response.body);
}

/// README › Speed: the wheel's Envoy is built with V8 only; with `wasmtime` or `wamr` it
/// refuses the plugin.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn the_wheels_envoy_refuses_the_wasmtime_and_wamr_runtimes() {
    for runtime in ["wasmtime", "wamr"] {
        let log = match Envoy::start_with(
            CONFIG,
            EnvoyOptions {
                runtime,
                ..EnvoyOptions::default()
            },
        ) {
            Ok(_) => panic!("Envoy started with {runtime}"),
            Err(log) => log,
        };
        assert!(
            log.contains("Envoy was compiled without support for it"),
            "{runtime}:\n{log}"
        );
    }
}
