//! Operator, combination, compile-error and lint tests for the policy language.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;
use crate::fields::{ConfigError, ConfigWarning};
use crate::request::RequestView;
use crate::time::UnixSeconds;

const NOW: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z

fn tiers() -> BTreeMap<String, Vec<String>> {
    BTreeMap::from([(
        "loyalty".to_owned(),
        ["Bronze", "Silver", "Gold", "Platinum"]
            .map(String::from)
            .to_vec(),
    )])
}

fn compile(rules: Value) -> Result<(Policy, Vec<ConfigWarning>), ConfigError> {
    let raw: Vec<RawRule> =
        serde_json::from_value(rules).map_err(|err| ConfigError::new("rules", err.to_string()))?;
    compile_policy(raw, tiers(), DefaultAccess::Deny, Mode::Enforce, &[])
}

fn policy(rules: Value) -> Policy {
    compile(rules).unwrap().0
}

fn compile_error(rules: Value) -> ConfigError {
    compile(rules).unwrap_err()
}

/// The verdict for `path` with `headers` and `claims` (`Value::Null`: no token).
fn evaluate(
    policy: &Policy,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    claims: &Value,
) -> Evaluation {
    let mut all: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), method.as_bytes().to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
        (":authority".into(), b"api.example.com:443".to_vec()),
        (":scheme".into(), b"https".to_vec()),
    ];
    all.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    let view = RequestView::new(&all).with_client_address(Some("203.0.113.9:51000"));
    let path_only = path.split('?').next().unwrap();
    let facts = RequestFacts {
        request: view,
        method,
        path: path_only,
        host: "api.example.com",
        client_address: view.client_address(),
        now: UnixSeconds(NOW),
    };
    let claims = claims.as_object();
    policy.evaluate(
        facts,
        claims.map(|claims| TokenFacts {
            provider: crate::provider_id::ProviderId::from_index(0),
            claims,
            clock_skew_seconds: 60,
        }),
    )
}

/// Whether a one-rule policy whose rule is `when` allows a GET of `/users/u1/items`.
fn holds(when: Value, claims: Value) -> bool {
    holds_with(when, claims, &[])
}

fn holds_with(when: Value, claims: Value, headers: &[(&str, &str)]) -> bool {
    let policy =
        policy(json!([{"name": "r", "match": {"template": "/users/{user}/items"}, "when": when}]));
    let evaluation = evaluate(
        &policy,
        "GET",
        "/users/u1/items?view=full&tag=a",
        headers,
        &claims,
    );
    evaluation.verdict.kind == VerdictKind::Allow
}

#[test]
fn equals_compares_json_by_value_and_request_text_loosely() {
    assert!(holds(json!({"claim": "n", "equals": 1}), json!({"n": 1.0})));
    assert!(!holds(
        json!({"claim": "n", "equals": 1}),
        json!({"n": "1"})
    ));
    assert!(holds(
        json!({"claim": "o", "equals": {"value": {"a": 1}}}),
        json!({"o": {"a": 1}})
    ));
    assert!(holds_with(
        json!({"header": "x-n", "equals": 42}),
        json!({}),
        &[("x-n", "42")]
    ));
    // Request text equals a number only in the number's own JSON spelling.
    for other in ["42.0", "042", "+42", "4.2e1", " 42"] {
        assert!(
            !holds_with(
                json!({"header": "x-n", "equals": 42}),
                json!({}),
                &[("x-n", other)]
            ),
            "{other}"
        );
    }
    assert!(!holds_with(
        json!({"header": "x-n", "equals": 42}),
        json!({}),
        &[("x-n", "42x")]
    ));
    assert!(holds_with(
        json!({"header": "x-flag", "equals": true}),
        json!({}),
        &[("x-flag", "true")]
    ));
    assert!(!holds(json!({"claim": "missing", "equals": 1}), json!({})));
    assert!(holds(
        json!({"claim": "name", "equals": "Zoë 😀"}),
        json!({"name": "Zoë 😀"})
    ));
    assert!(!holds(
        json!({"claim": "name", "equals": "Zoë"}),
        json!({"name": "Zoe\u{308}"})
    ));
}

#[test]
fn a_numeric_claim_equals_path_text_only_in_its_exact_spelling() {
    let rule = json!([{"name": "own", "match": {"template": "/customers/{id}"},
        "when": {"claim": "customer", "equals": {"capture": "id"}}}]);
    let policy = policy(rule);
    let allowed = |path: &str, claim: Value| {
        let verdict = evaluate(&policy, "GET", path, &[], &json!({"customer": claim}));
        verdict.verdict.kind == VerdictKind::Allow
    };
    assert!(allowed("/customers/42", json!(42)));
    for path in [
        "/customers/042",
        "/customers/4.2e1",
        "/customers/42.0",
        "/customers/+42",
    ] {
        assert!(!allowed(path, json!(42)), "{path}");
    }
    // Above 2^53 a double cannot tell these apart; the text comparison can.
    assert!(allowed(
        "/customers/9007199254740993",
        json!(9_007_199_254_740_993_u64)
    ));
    assert!(!allowed(
        "/customers/9007199254740992",
        json!(9_007_199_254_740_993_u64)
    ));
    assert!(!allowed(
        "/customers/9007199254740993",
        json!(9_007_199_254_740_992_u64)
    ));
}

#[test]
fn deny_rules_on_a_typed_claim_value_are_warned_about() {
    let (_, warnings) = compile(json!([
        {"name": "blocked", "effect": "deny", "when": {"claim": "blocked", "equals": true}},
        {"name": "tier-zero", "effect": "deny", "when": {"claim": "tier", "equals": 0}},
        {"name": "listed", "effect": "deny", "when": {"claim": "blocked", "in": [true, "true", 1]}},
        {"name": "allowing", "when": {"claim": "vip", "equals": true}}
    ]))
    .unwrap();
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["rules[0].when", "rules[1].when"]);
    assert!(
        warnings[0].message.contains(r#""in": [true, "true", 1]"#),
        "{}",
        warnings[0]
    );
    assert!(warnings[1].message.contains(r#""0""#), "{}", warnings[1]);
}

#[test]
fn deny_rules_that_fire_without_a_token_and_name_no_providers_are_warned_about() {
    let rules = json!([
        // Fires for a request without a token: 403 where 401 would tell it to sign in.
        {"name": "needs-silver", "effect": "deny",
         "when": {"not": {"claim": "tier", "at_least": "Silver", "tiers": "loyalty"}}},
        {"name": "no-country", "effect": "deny", "when": {"any": [
            {"claim": "country", "absent": true}, {"claim": "country", "not_in": ["DE"]}]}},
        {"name": "geo", "effect": "deny", "when": {"all": [
            {"header": "x-geo", "equals": "XX"}, {"not": {"claim": "vip", "equals": true}}]}},
        // Do not fire without a token, or read no claims, or concern tokens only.
        {"name": "blocked", "effect": "deny", "when": {"claim": "blocked", "in": [true, "true", 1]}},
        {"name": "bad-client", "effect": "deny", "when": {"header": "x-client", "equals": "bot"}},
        {"name": "closed", "match": {"prefix": "/closed"}, "effect": "deny"},
        {"name": "scoped", "effect": "deny", "providers": ["auth0"],
         "when": {"not": {"claim": "tier", "equals": "Gold"}}}
    ]);
    let raw: Vec<RawRule> = serde_json::from_value(rules).unwrap();
    let (_, mut warnings) =
        compile_policy(raw, tiers(), DefaultAccess::Deny, Mode::Enforce, &["auth0"]).unwrap();
    warnings.retain(|warning| warning.message.contains("names no providers"));
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["rules[0]", "rules[1]", "rules[2]"], "{warnings:?}");
    assert!(
        warnings[0]
            .message
            .contains("deny rule 'needs-silver' names no providers")
            && warnings[0].message.contains("403")
            && warnings[0].message.contains("401"),
        "{}",
        warnings[0]
    );
}

#[test]
fn not_equals_and_not_in_need_the_value_to_exist() {
    assert!(holds(
        json!({"claim": "r", "not_equals": "US"}),
        json!({"r": "EU"})
    ));
    assert!(!holds(json!({"claim": "r", "not_equals": "US"}), json!({})));
    assert!(holds(
        json!({"claim": "r", "not_in": ["US", "CN"]}),
        json!({"r": "EU"})
    ));
    assert!(!holds(
        json!({"claim": "r", "not_in": ["US", "CN"]}),
        json!({"r": "US"})
    ));
    assert!(!holds(json!({"claim": "r", "not_in": ["US"]}), json!({})));
    assert!(holds(
        json!({"not": {"claim": "r", "equals": "US"}}),
        json!({})
    ));
}

#[test]
fn in_and_one_of_test_membership() {
    assert!(holds(
        json!({"claim": "r", "in": ["EU", "UK"]}),
        json!({"r": "UK"})
    ));
    assert!(holds(
        json!({"claim": "r", "one_of": ["EU", "UK"]}),
        json!({"r": "EU"})
    ));
    assert!(!holds(
        json!({"claim": "r", "in": ["EU", "UK"]}),
        json!({"r": ["EU"]})
    ));
    assert!(holds(
        json!({"request": "method", "in": ["GET", "HEAD"]}),
        json!({})
    ));
}

#[test]
fn contains_reads_arrays_and_space_delimited_scopes() {
    let needs = json!({"claim": "scope", "contains": "orders:write"});
    assert!(holds(
        needs.clone(),
        json!({"scope": "openid orders:write profile"})
    ));
    assert!(!holds(
        needs.clone(),
        json!({"scope": "openid orders:writer"})
    ));
    assert!(holds(needs.clone(), json!({"scope": ["orders:write"]})));
    assert!(!holds(needs.clone(), json!({"scope": []})));
    assert!(!holds(needs.clone(), json!({"scope": 5})));
    assert!(!holds(needs, json!({})));
}

#[test]
fn contains_any_and_all_take_lists() {
    let any = json!({"claim": "permissions", "contains_any": ["a", "b"]});
    let all = json!({"claim": "permissions", "contains_all": ["a", "b"]});
    assert!(holds(any.clone(), json!({"permissions": ["x", "b"]})));
    assert!(!holds(any.clone(), json!({"permissions": []})));
    assert!(!holds(all.clone(), json!({"permissions": ["a"]})));
    assert!(holds(all.clone(), json!({"permissions": ["b", "c", "a"]})));
    assert!(holds(all, json!({"permissions": "a b"})));
    assert!(!holds(any, json!({"permissions": {"a": true}})));
}

#[test]
fn prefix_suffix_and_regex_match_text() {
    assert!(holds(
        json!({"claim": "sub", "prefix": "auth0|"}),
        json!({"sub": "auth0|1"})
    ));
    assert!(!holds(
        json!({"claim": "sub", "prefix": "auth0|"}),
        json!({"sub": 7})
    ));
    assert!(holds(
        json!({"claim": "email", "suffix": "@aethermarket.com"}),
        json!({"email": "a@aethermarket.com"})
    ));
    let regex = json!({"claim": "email", "regex": "[a-z.]+@aethermarket\\.com"});
    assert!(holds(
        regex.clone(),
        json!({"email": "ann.lee@aethermarket.com"})
    ));
    // Anchored: a match inside the value is not enough.
    assert!(!holds(
        regex.clone(),
        json!({"email": "x@aethermarket.com.evil.net"})
    ));
    let long = format!("{}@aethermarket.com", "a".repeat(100_000));
    assert!(holds(regex.clone(), json!({"email": long})));
    assert!(!holds(regex, json!({"email": ["a@aethermarket.com"]})));
}

#[test]
fn numeric_and_time_comparisons() {
    assert!(holds(
        json!({"claim": "age", "greater_or_equal": 18}),
        json!({"age": 18})
    ));
    assert!(!holds(
        json!({"claim": "age", "greater_than": 18}),
        json!({"age": 18})
    ));
    assert!(holds(
        json!({"claim": "age", "less_than": 18.5}),
        json!({"age": 18})
    ));
    assert!(!holds(
        json!({"claim": "age", "less_or_equal": 17}),
        json!({"age": "17"})
    ));
    let active = json!({"claim": "subscription_expires_at", "greater_than": {"now": true}});
    assert!(holds(
        active.clone(),
        json!({"subscription_expires_at": NOW + 1})
    ));
    assert!(!holds(
        active.clone(),
        json!({"subscription_expires_at": NOW})
    ));
    assert!(holds(
        active.clone(),
        json!({"subscription_expires_at": "2027-01-01T00:00:01Z"})
    ));
    assert!(holds(
        active.clone(),
        json!({"subscription_expires_at": "2027-01-01T01:00:00+00:30"})
    ));
    assert!(!holds(
        active.clone(),
        json!({"subscription_expires_at": "2026-12-31T23:59:59Z"})
    ));
    assert!(!holds(
        active.clone(),
        json!({"subscription_expires_at": "soon"})
    ));
    assert!(!holds(active, json!({"subscription_expires_at": null})));
    let recent = json!({"claim": "auth_time", "greater_than": {"now": -3600}});
    assert!(holds(recent.clone(), json!({"auth_time": NOW - 60})));
    assert!(!holds(recent, json!({"auth_time": NOW - 7200})));
    assert!(!holds(
        json!({"header": "x-api-version", "greater_or_equal": 2}),
        json!({})
    ));
    assert!(holds_with(
        json!({"header": "x-api-version", "greater_or_equal": 2}),
        json!({}),
        &[("x-api-version", "3")]
    ));
}

#[test]
fn tiers_order_at_least_and_at_most() {
    let gold = json!({"claim": "t", "at_least": "Gold", "tiers": "loyalty"});
    assert!(holds(gold.clone(), json!({"t": "Gold"})));
    assert!(holds(gold.clone(), json!({"t": "Platinum"})));
    assert!(!holds(gold.clone(), json!({"t": "Silver"})));
    assert!(!holds(gold.clone(), json!({"t": "gold"})));
    assert!(!holds(gold, json!({"t": ["Gold"]})));
    let at_most = json!({"claim": "t", "at_most": "Silver", "tiers": "loyalty"});
    assert!(holds(at_most.clone(), json!({"t": "Bronze"})));
    assert!(!holds(at_most, json!({"t": "Gold"})));
}

#[test]
fn present_and_absent() {
    assert!(holds(
        json!({"claim": "email", "present": true}),
        json!({"email": null})
    ));
    assert!(holds(json!({"claim": "email", "absent": true}), json!({})));
    assert!(holds(
        json!({"claim": "email", "present": false}),
        json!({})
    ));
    assert!(!holds(
        json!({"claim": "email", "absent": true}),
        json!({"email": ""})
    ));
}

#[test]
fn claim_paths_reach_nested_objects_and_array_elements() {
    let claims = json!({
        "https://aethermarket.com/orgs": [{"id": "acme", "role": "admin"}, {"id": "globex", "role": "viewer"}],
        "address": {"country": "DE"}
    });
    assert!(holds(
        json!({"claim": ["address", "country"], "equals": "DE"}),
        claims.clone()
    ));
    assert!(holds(
        json!({"claim": ["https://aethermarket.com/orgs", 1, "id"], "equals": "globex"}),
        claims.clone()
    ));
    assert!(holds(
        json!({"claim": ["https://aethermarket.com/orgs", "*", "role"], "contains": "admin"}),
        claims.clone()
    ));
    assert!(!holds(
        json!({"claim": ["https://aethermarket.com/orgs", "*", "role"], "contains": "owner"}),
        claims.clone()
    ));
    assert!(!holds(
        json!({"claim": ["https://aethermarket.com/orgs", 5, "id"], "present": true}),
        claims
    ));
}

#[test]
fn request_operands_read_method_path_host_headers_query_and_address() {
    assert!(holds(
        json!({"request": "host", "equals": "api.example.com"}),
        json!({})
    ));
    assert!(holds(
        json!({"request": "path", "prefix": "/users/"}),
        json!({})
    ));
    assert!(holds(
        json!({"request": "scheme", "equals": "https"}),
        json!({})
    ));
    assert!(holds(json!({"query": "view", "equals": "full"}), json!({})));
    assert!(holds(
        json!({"request": "client_address", "in_cidr": ["203.0.113.0/24"]}),
        json!({})
    ));
    assert!(!holds(
        json!({"request": "client_address", "in_cidr": "10.0.0.0/8"}),
        json!({})
    ));
    assert!(holds(json!({"capture": "user", "equals": "u1"}), json!({})));
    let policy = policy(
        json!([{"name": "r", "match": {"template": "/users/{user}/items"}, "when": {"claim": "sub", "equals": {"capture": "user"}}}]),
    );
    let decoded = evaluate(
        &policy,
        "GET",
        "/users/auth0%7C1/items",
        &[],
        &json!({"sub": "auth0|1"}),
    );
    assert_eq!(decoded.verdict.kind, VerdictKind::Allow);
    let plus = evaluate(
        &policy,
        "GET",
        "/users/a+b/items",
        &[],
        &json!({"sub": "a b"}),
    );
    assert_eq!(plus.verdict.kind, VerdictKind::Forbidden);
    // A repeated header is ambiguous and counts as missing.
    let region = json!({"header": "x-geo-region", "equals": "EU"});
    assert!(holds_with(
        region.clone(),
        json!({}),
        &[("x-geo-region", "EU")]
    ));
    assert!(!holds_with(
        region,
        json!({}),
        &[("x-geo-region", "EU"), ("x-geo-region", "EU")]
    ));
}

#[test]
fn claims_compare_with_request_attributes() {
    let owner = json!({"claim": "sub", "equals": {"capture": "user"}});
    assert!(holds(owner.clone(), json!({"sub": "u1"})));
    assert!(!holds(owner.clone(), json!({"sub": "u2"})));
    assert!(!holds(owner, json!({})));
    let region = json!({"claim": "region", "equals": {"header": "x-geo-region"}});
    assert!(holds_with(
        region.clone(),
        json!({"region": "EU"}),
        &[("x-geo-region", "EU")]
    ));
    assert!(!holds_with(
        region.clone(),
        json!({"region": "EU"}),
        &[("x-geo-region", "US")]
    ));
    assert!(!holds_with(region, json!({"region": "EU"}), &[]));
    let allowed = json!({"claim": "regions", "contains": {"header": "x-geo-region"}});
    assert!(holds_with(
        allowed,
        json!({"regions": ["EU", "UK"]}),
        &[("x-geo-region", "UK")]
    ));
}

#[test]
fn all_any_and_not_combine() {
    let rule = json!({"any": [
        {"claim": "role", "equals": "admin"},
        {"all": [{"claim": "role", "equals": "support"}, {"not": {"claim": "region", "equals": "CN"}}]}
    ]});
    assert!(holds(rule.clone(), json!({"role": "admin"})));
    assert!(holds(
        rule.clone(),
        json!({"role": "support", "region": "EU"})
    ));
    assert!(!holds(
        rule.clone(),
        json!({"role": "support", "region": "CN"})
    ));
    assert!(!holds(rule, json!({})));
}

#[test]
fn deny_overrides_allow_and_the_default_applies_when_nothing_matches() {
    let policy = policy(json!([
        {"name": "open", "match": {"prefix": "/"}, "access": "public"},
        {"name": "blocked", "effect": "deny", "when": {"claim": "blocked", "equals": true}},
        {"name": "admin", "match": {"prefix": "/admin"}, "when": {"claim": "role", "equals": "admin"}}
    ]));
    let verdict = |path: &str, claims: Value| evaluate(&policy, "GET", path, &[], &claims).verdict;
    assert_eq!(
        verdict("/x", json!({"blocked": true})).rule.as_deref(),
        Some("blocked")
    );
    assert_eq!(
        verdict("/x", json!({"blocked": true})).kind,
        VerdictKind::Forbidden
    );
    assert_eq!(verdict("/x", Value::Null).kind, VerdictKind::Allow);
    // Any allowing rule is enough: the public rule covers /admin too.
    assert_eq!(verdict("/admin", Value::Null).rule.as_deref(), Some("open"));
    let strict = self::policy(json!([
        {"name": "admin", "match": {"prefix": "/admin"}, "when": {"claim": "role", "equals": "admin"}}
    ]));
    let evaluate_strict =
        |claims: Value| evaluate(&strict, "GET", "/admin/x", &[], &claims).verdict;
    assert_eq!(evaluate_strict(Value::Null).kind, VerdictKind::NeedsToken);
    let refused = evaluate_strict(json!({"role": "user"}));
    assert_eq!(refused.kind, VerdictKind::Forbidden);
    assert_eq!(
        refused.failed_condition.as_deref(),
        Some("claim role equals \"admin\"")
    );
    let nothing = evaluate(&strict, "GET", "/other", &[], &json!({}));
    assert_eq!(nothing.verdict.kind, VerdictKind::Forbidden);
    assert_eq!(nothing.verdict.rule, None);
}

#[test]
fn the_first_failed_part_of_all_is_explained() {
    let policy = policy(json!([{"name": "r", "when": {"all": [
        {"claim": "a", "equals": 1}, {"claim": "b", "equals": 2}
    ]}}]));
    let verdict = evaluate(&policy, "GET", "/", &[], &json!({"a": 1, "b": 3})).verdict;
    assert_eq!(
        verdict.failed_condition.as_deref(),
        Some("claim b equals 2")
    );
}

#[test]
fn dry_run_rules_report_but_never_decide() {
    let policy = policy(json!([
        {"name": "open", "access": "authenticated"},
        {"name": "would-block", "effect": "deny", "mode": "dry_run", "when": {"claim": "tier", "equals": "free"}}
    ]));
    let free = evaluate(&policy, "GET", "/", &[], &json!({"tier": "free"}));
    assert_eq!(free.verdict.kind, VerdictKind::Allow);
    let report = free.dry_run.unwrap();
    assert_eq!(report.rules, ["would-block"]);
    assert_eq!(report.verdict.kind, VerdictKind::Forbidden);
    let paid = evaluate(&policy, "GET", "/", &[], &json!({"tier": "paid"}));
    assert_eq!(paid.dry_run.unwrap().verdict.kind, VerdictKind::Allow);
}

#[test]
fn a_dry_run_policy_allows_and_reports_what_it_would_do() {
    let raw: Vec<RawRule> = serde_json::from_value(json!([
        {"name": "admin", "match": {"prefix": "/admin"}, "when": {"claim": "role", "equals": "admin"}},
        {"name": "enforced", "match": {"prefix": "/secret"}, "effect": "deny", "mode": "enforce"}
    ]))
    .unwrap();
    let (policy, _) = compile_policy(raw, tiers(), DefaultAccess::Deny, Mode::DryRun, &[]).unwrap();
    let admin = evaluate(&policy, "GET", "/admin", &[], &json!({"role": "user"}));
    assert_eq!(admin.verdict.kind, VerdictKind::Allow);
    assert_eq!(admin.dry_run.unwrap().verdict.kind, VerdictKind::Forbidden);
    let unmatched = evaluate(&policy, "GET", "/other", &[], &Value::Null);
    assert_eq!(unmatched.verdict.kind, VerdictKind::Allow);
    assert_eq!(unmatched.dry_run.unwrap().verdict.rule, None);
    let secret = evaluate(&policy, "GET", "/secret", &[], &Value::Null);
    assert_eq!(secret.verdict.kind, VerdictKind::Forbidden);
}

#[test]
fn rules_match_hosts() {
    let policy = policy(json!([
        {"name": "shop", "match": {"hosts": ["*.example.com"]}, "access": "public"}
    ]));
    assert_eq!(
        evaluate(&policy, "GET", "/", &[], &Value::Null)
            .verdict
            .kind,
        VerdictKind::Allow
    );
    let other = self::policy(json!([
        {"name": "shop", "match": {"hosts": ["shop.example.org"]}, "access": "public"}
    ]));
    assert_eq!(
        evaluate(&other, "GET", "/", &[], &Value::Null).verdict.kind,
        VerdictKind::Forbidden
    );
}

#[test]
fn each_claim_path_gets_one_slot_however_many_rules_read_it() {
    let policy = policy(json!([
        {"name": "a", "when": {"claim": "tier", "equals": "x"}},
        {"name": "b", "when": {"claim": "tier", "in": ["y"]}},
        {"name": "c", "when": {"claim": ["org", "id"], "present": true}}
    ]));
    assert_eq!(policy.claim_paths.len(), 2);
}

#[test]
#[allow(clippy::too_many_lines, reason = "one table of cases")]
fn compile_errors_name_the_field() {
    let cases = [
        (
            json!([{"when": {"claim": "a", "greater": 1}}]),
            "rules[0].when.greater",
        ),
        (
            json!([{"when": {"claim": "a", "greater_than": "soon"}}]),
            "rules[0].when.greater_than",
        ),
        (
            json!([{"when": {"claim": "a", "at_least": "Gold", "tiers": "vip"}}]),
            "rules[0].when.tiers",
        ),
        (
            json!([{"when": {"claim": "a", "at_least": "Diamond", "tiers": "loyalty"}}]),
            "rules[0].when.at_least",
        ),
        (
            json!([{"when": {"claim": "a", "regex": "("}}]),
            "rules[0].when.regex",
        ),
        (
            json!([{"when": {"all": [{"claim": "a", "equals": 1}, {"claim": "a"}]}}]),
            "rules[0].when.all[1]",
        ),
        (json!([{"when": {"any": []}}]), "rules[0].when.any"),
        (
            json!([{"when": {"claim": "sub", "equals": {"capture": "id"}}}]),
            "rules[0].when.equals.capture",
        ),
        (
            json!([{"match": {"template": "/u/{user}"}, "when": {"capture": "usr", "equals": "x"}}]),
            "rules[0].when.capture",
        ),
        (
            json!([{"when": {"request": "cookie", "equals": "x"}}]),
            "rules[0].when.request",
        ),
        (
            json!([{"when": {"header": "x-a", "equals": [1]}}]),
            "rules[0].when.equals",
        ),
        (
            json!([{"when": {"claim": "a", "in": []}}]),
            "rules[0].when.in",
        ),
        (
            json!([{"when": {"claim": "a", "contains": ["x"]}}]),
            "rules[0].when.contains",
        ),
        (
            json!([{"when": {"claim": "a", "in_cidr": ["10.0.0.0/33"]}}]),
            "rules[0].when.in_cidr[0]",
        ),
        (
            json!([{"when": {"now": true, "prefix": "1"}}]),
            "rules[0].when.prefix",
        ),
        (
            json!([{"when": {"claim": "a", "equals": 1, "tiers": "loyalty"}}]),
            "rules[0].when.tiers",
        ),
        (
            json!([{"name": "x", "access": "public"}, {"name": "x", "access": "public"}]),
            "rules[1].name",
        ),
        (
            json!([{"effect": "deny", "access": "public"}]),
            "rules[0].access",
        ),
        (
            json!([{"match": {"hosts": ["bad host"]}, "access": "public"}]),
            "rules[0].match.hosts[0]",
        ),
    ];
    for (rules, path) in cases {
        let err = compile_error(rules.clone());
        assert_eq!(err.path, path, "{rules}: {err}");
    }
    let err = compile_error(json!([{"when": {"claim": "a", "greater_than": "soon"}}]));
    assert!(err.message.contains("type mismatch"), "{err}");
}

#[test]
fn shadowed_rules_are_warned_about() {
    let (_, warnings) = compile(json!([
        {"name": "closed", "match": {"prefix": "/internal"}, "effect": "deny"},
        {"name": "metrics", "match": {"path": "/internal/metrics"}, "access": "authenticated"},
        {"name": "open", "match": {"prefix": "/public"}, "access": "public"},
        {"name": "docs", "match": {"prefix": "/public/docs"}, "when": {"claim": "a", "present": true}},
        {"name": "fine", "match": {"prefix": "/orders"}, "when": {"claim": "a", "present": true}}
    ]))
    .unwrap();
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["rules[1]", "rules[3]"], "{warnings:?}");
    assert!(warnings[0]
        .message
        .contains("rule 'closed' denies every request"));
}

#[test]
fn the_route_index_finds_the_same_rules_as_a_scan() {
    let mut rules = Vec::new();
    for index in 0..200 {
        rules.push(json!({"name": format!("r{index}"), "match": {"prefix": format!("/api/v1/service{}/", index % 40)}, "access": "authenticated"}));
    }
    rules.push(
        json!({"name": "t", "match": {"template": "/api/v1/{svc}/items"}, "access": "public"}),
    );
    let policy = policy(Value::from(rules));
    for path in [
        "/api/v1/service7/x",
        "/api/v1/service39",
        "/api/v1/service7/items",
        "/nope",
    ] {
        let mut indexed = Vec::new();
        policy.index.candidates(path, &mut indexed);
        let indexed: Vec<usize> = indexed
            .into_iter()
            .filter(|i| policy.rules[*i].route.matches("GET", "h", path))
            .collect();
        let scanned: Vec<usize> = (0..policy.rules.len())
            .filter(|i| policy.rules[*i].route.matches("GET", "h", path))
            .collect();
        assert_eq!(indexed, scanned, "{path}");
    }
}

#[test]
fn rule_paths_are_compared_in_the_canonical_spelling_of_request_paths() {
    let policy = policy(json!([
        {"name": "carol", "effect": "deny", "match": {"prefix": "/users/auth0|carol"}},
        {"name": "escaped", "match": {"path": "/a%7cb"}, "access": "public"},
        {"name": "orders", "match": {"template": "/shop/caf%c3%a9/{id}"}, "access": "public"},
        {"name": "rest", "match": {"prefix": "/"}, "access": "public"}
    ]));
    let canonical = |path: &str| crate::request::canonical_path(path).unwrap().into_owned();
    for (path, rule) in [
        ("/users/auth0%7Ccarol/orders", "carol"),
        ("/users/auth0%7ccarol", "carol"),
        ("/users/auth0|carol", "carol"),
        ("/a|b", "escaped"),
        ("/a%7Cb", "escaped"),
        ("/shop/café/1", "orders"),
        ("/shop/caf%C3%A9/1", "orders"),
    ] {
        let verdict = evaluate(&policy, "GET", &canonical(path), &[], &json!({"sub": "x"}));
        assert_eq!(verdict.verdict.rule.as_deref(), Some(rule), "{path}");
    }
}

#[test]
fn rule_paths_that_can_never_match_refuse_the_configuration() {
    for (rules, field, says) in [
        (
            json!([{"match": {"path": "/search?q=1"}}]),
            "rules[0].match.path",
            "query",
        ),
        (
            json!([{"match": {"prefix": "/a#frag"}}]),
            "rules[0].match.prefix",
            "query",
        ),
        (
            json!([{"match": {"prefix": "/a/../b"}}]),
            "rules[0].match.prefix",
            "dot segment",
        ),
        (
            json!([{"match": {"path": "/a/%2Fb"}}]),
            "rules[0].match.path",
            "encoded slash",
        ),
        (
            json!([{"match": {"template": "/a/{id}?x"}}]),
            "rules[0].match.template",
            "query",
        ),
        (
            json!([{"match": {"template": "/a/..;/{id}"}}]),
            "rules[0].match.template",
            "dot segment",
        ),
    ] {
        let error = compile_error(rules);
        assert_eq!(error.path, field);
        assert!(error.message.contains(says), "{}", error.message);
        assert!(error.message.contains("never match"), "{}", error.message);
    }
}

#[test]
fn step_up_is_asked_only_once_the_rest_of_the_rule_holds_and_only_of_allow_rules() {
    let rules = json!([{
        "name": "admin-payments",
        "match": {"prefix": "/payments"},
        "when": {"claim": "role", "equals": "admin"},
        "step_up": {"acr_in": ["mfa"], "max_age_seconds": 300}
    }]);
    let policy = policy(rules);
    let verdict = |claims: Value| evaluate(&policy, "GET", "/payments", &[], &claims).verdict;
    let weak_admin = verdict(json!({"role": "admin", "acr": "pwd", "auth_time": NOW}));
    assert_eq!(weak_admin.kind, VerdictKind::InsufficientAuthentication);
    assert_eq!(
        weak_admin.step_up,
        Some(StepUpChallenge {
            acr_values: Some("mfa".into()),
            max_age: Some(300)
        })
    );
    // A stronger sign-in would not make a customer an admin: 403, no step-up.
    let weak_customer = verdict(json!({"role": "customer", "acr": "pwd", "auth_time": NOW}));
    assert_eq!(weak_customer.kind, VerdictKind::Forbidden);
    assert_eq!(weak_customer.step_up, None);
    let strong_admin = verdict(json!({"role": "admin", "acr": "mfa", "auth_time": NOW - 300}));
    assert_eq!(strong_admin.kind, VerdictKind::Allow);
    for (rule, field) in [
        (
            json!({"match": {"prefix": "/"}, "effect": "deny", "step_up": {"max_age_seconds": 1}}),
            "rules[0].step_up",
        ),
        (
            json!({"match": {"prefix": "/"}, "access": "public", "step_up": {"max_age_seconds": 1}}),
            "rules[0].step_up",
        ),
        (
            json!({"match": {"prefix": "/"}, "access": "authenticated", "step_up": {"acr_at_least": "Gold", "tiers": "nope"}}),
            "rules[0].step_up.tiers",
        ),
    ] {
        assert_eq!(compile_error(json!([rule])).path, field, "{rule}");
    }
}

/// Issue 22: an evaluation may be remembered for a token and route only when every rule
/// that matched reads nothing but the route and the token. Each kind of operand, on
/// either side of a test, and a step-up's `max_age` (the clock) is checked.
#[test]
fn only_evaluations_of_route_and_claims_may_be_remembered() {
    let rule = |when: Value| json!([{"name": "r", "match": {"template": "/t/{id}"}, "when": when}]);
    let cases = [
        (json!({"claim": "sub", "equals": "a"}), true),
        (json!({"claim": "sub", "equals": {"capture": "id"}}), true),
        (json!({"request": "method", "equals": "GET"}), true),
        (json!({"request": "path", "prefix": "/t"}), true),
        (
            json!({"request": "host", "equals": "api.example.com"}),
            true,
        ),
        (json!({"header": "x-a", "equals": "1"}), false),
        (json!({"claim": "sub", "equals": {"header": "x-a"}}), false),
        (json!({"query": "q", "equals": "1"}), false),
        (json!({"request": "scheme", "equals": "https"}), false),
        (
            json!({"request": "client_address", "in_cidr": ["10.0.0.0/8"]}),
            false,
        ),
        (
            json!({"claim": "exp", "greater_than": {"now": true}}),
            false,
        ),
        (
            json!({"all": [{"claim": "sub", "equals": "a"}, {"not": {"header": "x-a", "present": true}}]}),
            false,
        ),
    ];
    let claims = json!({"sub": "a", "exp": NOW + 60});
    for (when, expected) in cases {
        let policy = policy(rule(when.clone()));
        let evaluation = evaluate(&policy, "GET", "/t/a", &[], &claims);
        assert_eq!(evaluation.route_and_token_only, expected, "{when}");
    }
    let step_up = |step_up: Value| {
        policy(
            json!([{"name": "r", "match": {"prefix": "/"}, "access": "authenticated",
            "step_up": step_up}]),
        )
    };
    let acr = step_up(json!({"acr_in": ["mfa"]}));
    assert!(evaluate(&acr, "GET", "/x", &[], &claims).route_and_token_only);
    let max_age = step_up(json!({"max_age_seconds": 60}));
    assert!(!evaluate(&max_age, "GET", "/x", &[], &claims).route_and_token_only);
    // A rule whose route does not match reads nothing of this request.
    let elsewhere = policy(json!([
        {"name": "a", "match": {"prefix": "/a"}, "access": "authenticated"},
        {"name": "b", "match": {"prefix": "/b"}, "when": {"header": "x-a", "equals": "1"}}
    ]));
    assert!(evaluate(&elsewhere, "GET", "/a", &[], &claims).route_and_token_only);
    assert!(!evaluate(&elsewhere, "GET", "/b", &[], &claims).route_and_token_only);
}
