//! The `claimgate` command line: policy tests, YAML input, warnings and explanations.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{json, Value};

const CONFIG: &str = "filter-config/aethermarket.json";
const CASES: &str = "filter-config/aethermarket.cases.yaml";

fn repo(relative: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(relative)
        .display()
        .to_string()
}

fn claimgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn temp_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("claimgate-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn the_shipped_cases_pass_with_a_summary_line() {
    let output = claimgate(&["test", &repo(CONFIG), &repo(CASES)]);
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    let last = text.lines().last().unwrap();
    assert!(last.ends_with(" passed, 0 failed"), "{last}");
    assert!(
        text.lines()
            .filter(|line| line.starts_with("ok   "))
            .count()
            > 20
    );
}

#[test]
fn a_failing_case_is_reported_and_the_exit_code_is_non_zero() {
    let cases = temp_file(
        "failing.cases.yaml",
        "now: 1798761600\ncases:\n  - name: silver sees deals\n    request: {path: /deals/exclusive}\n    claims: {sub: auth0|s, https://aethermarket.com/loyalty_tier: Silver}\n    expect: {status: 200}\n  - name: no token\n    request: {path: /products/1}\n    expect: {status: 401}\n",
    );
    let output = claimgate(&["test", &repo(CONFIG), &cases]);
    let text = stdout(&output);
    assert!(!output.status.success());
    assert!(
        text.contains("FAIL silver sees deals: status 200 expected, got 403"),
        "{text}"
    );
    assert!(text.contains("ok   no token"), "{text}");
    assert!(
        text.lines().last().unwrap() == "1 passed, 1 failed",
        "{text}"
    );
}

#[test]
fn yaml_configurations_are_accepted() {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    let yaml = temp_file(
        "aethermarket.yaml",
        &serde_yaml_ng::to_string(&config).unwrap(),
    );
    let output = claimgate(&["check", &yaml]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = claimgate(&["test", &yaml, &repo(CASES)]);
    assert!(output.status.success(), "{}", stdout(&output));
}

#[test]
fn check_warns_about_shadowed_rules_and_refuses_bad_ones() {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    let rules = config["rules"].as_array_mut().unwrap();
    rules.push(json!({"name": "close-admin", "match": {"prefix": "/admin"}, "effect": "deny"}));
    let path = temp_file("shadowed.json", &config.to_string());
    let output = claimgate(&["check", &path]);
    assert!(output.status.success());
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(
        warnings.contains("warning: rules[5]: rule 'admin-read'")
            && warnings.contains("rule 'close-admin' denies every request it matches"),
        "{warnings}"
    );
    config["rules"][0]["when"] = json!({"claim": "x", "matches": "y"});
    let path = temp_file("bad.json", &config.to_string());
    let output = claimgate(&["check", &path]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("rules[0].when.matches: unknown key 'matches'"),
        "{error}"
    );
}

#[test]
fn eval_explains_the_rule_and_the_failed_condition() {
    let output = claimgate(&[
        "eval",
        &repo(CONFIG),
        "--path",
        "/admin/users",
        "--method",
        "DELETE",
    ]);
    assert!(output.status.success());
    let decision: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["status"], 401);
    assert_eq!(decision["rule"], "admin-write");
    assert_eq!(decision["reason"], "rule 'admin-write' requires a token");
}

#[test]
fn check_warns_about_remote_key_clusters_the_envoy_config_lacks() {
    let shipped = claimgate(&[
        "check",
        &repo("filter-config/remote-auth0.json"),
        "--envoy",
        &repo("envoy/auth0-remote-jwks.envoy.yaml"),
    ]);
    assert!(shipped.status.success());
    // The only warning is the shared-gateway one (the example's rules name no hosts).
    let shipped_stderr = String::from_utf8_lossy(&shipped.stderr);
    assert_eq!(
        shipped_stderr.matches("warning:").count(),
        1,
        "{shipped_stderr}"
    );
    assert!(
        shipped_stderr.contains("warning: default_access: default_access is deny"),
        "{shipped_stderr}"
    );
    let envoy = temp_file(
        "envoy.yaml",
        "static_resources:\n  clusters:\n  - name: echo_upstream\n  - name: outbound|443||other.example\n",
    );
    let missing = claimgate(&[
        "check",
        &repo("filter-config/remote-auth0.json"),
        "--envoy",
        &envoy,
    ]);
    assert!(missing.status.success(), "a warning, not a refusal");
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(stderr.matches("warning:").count(), 2, "{stderr}");
    assert!(
        stderr.contains("providers[0].jwks.discovery.cluster: cluster 'auth0' is not defined"),
        "{stderr}"
    );
    assert!(stderr.contains("outbound|PORT||HOST"), "{stderr}");
}

/// The DPoP flow from the command line: a client key, a token bound to it (`mint
/// --dpop-key`), a proof for one request (`mint proof`), and `eval --dpop-proof` deciding
/// it with the filter's code — passing, and refused for another method; the shipped
/// sender-constrained cases (proofs and certificate thumbprints) pass.
#[test]
fn mint_binds_tokens_and_makes_proofs_that_eval_and_test_check() {
    let config = repo("filter-config/sender-constrained.json");
    let client = repo("filter-config/demo/dpop-client-demo-only.jwk.json");
    let key = repo("filter-config/demo/private-demo-only.jwk.json");
    let token = stdout(&claimgate(&[
        "mint",
        "--key",
        &key,
        "--config",
        &config,
        "--dpop-key",
        &client,
    ]))
    .trim()
    .to_owned();
    let proof_for = |method: &str| {
        stdout(&claimgate(&[
            "mint",
            "proof",
            "--dpop-key",
            &client,
            "--method",
            method,
            "--url",
            "https://api.aethermarket.com/orders",
            "--token",
            &token,
        ]))
        .trim()
        .to_owned()
    };
    let eval = |proof: &str| -> Value {
        let output = claimgate(&[
            "eval",
            &config,
            "--token",
            &token,
            "--dpop-proof",
            proof,
            "--scheme",
            "https",
            "--authority",
            "api.aethermarket.com",
            "--path",
            "/orders?page=1",
        ]);
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    assert_eq!(eval(&proof_for("GET"))["status"], 200);
    let refused = eval(&proof_for("POST"));
    assert_eq!(refused["status"], 401);
    assert!(
        refused["reason"].as_str().unwrap().contains("htm"),
        "{refused}"
    );
    let output = claimgate(&[
        "test",
        &config,
        &repo("filter-config/sender-constrained.cases.yaml"),
    ]);
    assert!(output.status.success(), "{}", stdout(&output));
}

/// A fresh ES256 key (`keygen`), its JWKS (`public-jwks`) and a configuration that trusts
/// only that JWKS, with `extra` top-level fields merged in; returns (private key file,
/// configuration file).
fn own_key_config(name: &str, provider: Value, extra: Value) -> (String, String) {
    let private = claimgate(&["keygen", "--alg", "ES256", "--kid", name]);
    assert!(private.status.success());
    let key = temp_file(&format!("{name}.jwk.json"), &stdout(&private));
    let jwks = claimgate(&["public-jwks", "--key", &key]);
    assert!(jwks.status.success());
    let jwks: Value = serde_json::from_slice(&jwks.stdout).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert!(keys[0].get("d").is_none(), "a public JWKS: {jwks}");
    assert_eq!(keys[0]["kid"], name);
    let mut provider_json = json!({
        "name": "idp",
        "issuer": "https://idp.test/",
        "audiences": ["api"],
        "algorithms": ["ES256"],
        "jwks": {"inline": jwks}
    });
    for (field, value) in provider.as_object().unwrap() {
        provider_json[field] = value.clone();
    }
    let mut config = json!({
        "providers": [provider_json],
        "identity": {"headers": [
            {"header": "x-user-id", "claim": "sub"},
            {"header": "x-level", "claim": "level"},
            {"header": "x-team", "claim": "team"}
        ]},
        "rules": [
            {"name": "office", "match": {"prefix": "/office"}, "when": {"all": [
                {"request": "client_address", "in_cidr": "10.0.0.0/8"},
                {"header": "x-badge", "equals": "blue"}
            ]}},
            {"name": "levels", "match": {"prefix": "/levels"}, "when": {"claim": "level", "greater_than": 2}},
            {"name": "audit", "match": {"prefix": "/audit"}, "effect": "deny", "mode": "dry_run"},
            {"name": "audited", "match": {"prefix": "/audit"}, "access": "authenticated"},
            {"name": "anything", "match": {"prefix": "/anything"}, "access": "authenticated"}
        ]
    });
    for (field, value) in extra.as_object().unwrap() {
        config[field] = value.clone();
    }
    let config = temp_file(&format!("{name}.config.json"), &config.to_string());
    (key, config)
}

fn eval_json(args: &[&str]) -> Value {
    let output = claimgate(args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

const MINT_NOW: &str = "1800000000";

#[test]
fn public_jwks_verifies_the_tokens_its_private_key_mints_and_mint_sets_sub_claims_and_ttl() {
    let (key, config) = own_key_config("cli-mint", json!({}), json!({}));
    let output = claimgate(&[
        "mint",
        "--key",
        &key,
        "--config",
        &config,
        "--sub",
        "auth0|carol",
        "--claim",
        "level=3",
        "--claim",
        "team=red",
        "--claim",
        "tags=[\"a\",\"b\"]",
        "--ttl",
        "120",
        "--now",
        MINT_NOW,
    ]);
    assert!(output.status.success());
    let token = stdout(&output).trim().to_owned();
    let at = |now: i64, path: &str| {
        eval_json(&[
            "eval",
            &config,
            "--token",
            &token,
            "--path",
            path,
            "--now",
            &now.to_string(),
        ])
    };
    let minted: i64 = MINT_NOW.parse().unwrap();
    let allowed = at(minted + 10, "/levels");
    assert_eq!(allowed["status"], 200, "{allowed}");
    assert_eq!(allowed["rule"], "levels");
    assert_eq!(allowed["subject"], "auth0|carol");
    // --claim values are JSON when they parse (3 is a number: `greater_than` holds), text
    // otherwise (red).
    assert_eq!(
        allowed["set_headers"],
        json!([
            ["x-user-id", "auth0|carol"],
            ["x-level", "3"],
            ["x-team", "red"]
        ])
    );
    // --ttl 120: `exp` is 120 s after `--now`; with the default 60 s skew the token is
    // refused from 180 s on.
    assert_eq!(at(minted + 179, "/levels")["status"], 200);
    let expired = at(minted + 180, "/levels");
    assert_eq!(expired["status"], 401, "{expired}");
    assert!(
        expired["reason"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    // The token is signed by exactly that key: another key's JWKS refuses it.
    let (_, other_config) = own_key_config("cli-mint-other", json!({}), json!({}));
    let other = eval_json(&[
        "eval",
        &other_config,
        "--token",
        &token,
        "--path",
        "/levels",
        "--now",
        &(minted + 10).to_string(),
    ]);
    assert_eq!(other["status"], 401, "{other}");
}

#[test]
fn eval_takes_headers_and_the_client_address_and_prints_every_field_of_the_decision() {
    let (key, config) = own_key_config("cli-eval", json!({}), json!({}));
    let token = stdout(&claimgate(&[
        "mint",
        "--key",
        &key,
        "--config",
        &config,
        "--sub",
        "auth0|dan",
    ]))
    .trim()
    .to_owned();
    let office = |address: &str, badge: &str| {
        eval_json(&[
            "eval",
            &config,
            "--token",
            &token,
            "--path",
            "/office/door",
            "--header",
            &format!("x-badge: {badge}"),
            "--header",
            "x-user-id: spoofed",
            "--client-address",
            address,
        ])
    };
    let allowed = office("10.1.2.3", "blue");
    assert_eq!(allowed["status"], 200, "{allowed}");
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["rule"], "office");
    assert_eq!(allowed["provider"], "idp");
    assert!(
        allowed["remove_headers"]
            .as_array()
            .unwrap()
            .contains(&json!("x-user-id")),
        "{allowed}"
    );
    assert_eq!(allowed["set_headers"], json!([["x-user-id", "auth0|dan"]]));
    // A dry-run rule's verdict is printed beside the outcome that stands.
    let audited = eval_json(&["eval", &config, "--token", &token, "--path", "/audit/x"]);
    assert_eq!(audited["status"], 200, "{audited}");
    assert_eq!(audited["dry_run"]["rule"], "audit", "{audited}");
    assert_eq!(audited["dry_run"]["status"], 403, "{audited}");

    // Another address, or another header value: 403, with the failed condition and the
    // exact response the client would get.
    for (address, badge, failed) in [
        ("192.0.2.1", "blue", "client_address"),
        ("10.1.2.3", "red", "x-badge"),
    ] {
        let refused = office(address, badge);
        assert_eq!(refused["status"], 403, "{refused}");
        assert_eq!(refused["rule"], "office");
        assert!(
            refused["failed_condition"]
                .as_str()
                .is_some_and(|condition| condition.contains(failed)),
            "{refused}"
        );
        assert!(
            refused["response_headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|pair| pair[0] == "www-authenticate"
                    && pair[1].as_str().unwrap().contains("insufficient_scope")),
            "{refused}"
        );
        let body: Value = serde_json::from_str(refused["response_body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "insufficient_scope");
        assert!(refused.get("set_headers").is_none(), "{refused}");
    }
}

#[test]
fn mint_cert_thumbprint_binds_a_token_that_eval_passes_only_with_that_client_certificate() {
    let (key, config) = own_key_config("cli-mtls", json!({"mtls_binding": "required"}), json!({}));
    let thumbprint = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
    let token = stdout(&claimgate(&[
        "mint",
        "--key",
        &key,
        "--config",
        &config,
        "--cert-thumbprint",
        thumbprint,
    ]))
    .trim()
    .to_owned();
    let eval = |presented: Option<&str>| {
        let mut args = vec!["eval", &config, "--token", &token, "--path", "/anything"];
        if let Some(presented) = presented {
            args.extend(["--client-cert-thumbprint", presented]);
        }
        eval_json(&args)
    };
    assert_eq!(eval(Some(thumbprint))["status"], 200);
    for presented in [None, Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")] {
        let refused = eval(presented);
        assert_eq!(refused["status"], 401, "{refused}");
        assert!(
            refused["response_headers"]
                .to_string()
                .contains("invalid_token"),
            "{refused}"
        );
    }
    // Under `required`, a token minted without the flag is refused even with a certificate.
    let unbound = stdout(&claimgate(&["mint", "--key", &key, "--config", &config]))
        .trim()
        .to_owned();
    let refused = eval_json(&[
        "eval",
        &config,
        "--token",
        &unbound,
        "--path",
        "/anything",
        "--client-cert-thumbprint",
        thumbprint,
    ]);
    assert_eq!(refused["status"], 401, "{refused}");
}

#[test]
fn mint_proof_nonce_puts_the_nonce_in_the_proof() {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let client = repo("filter-config/demo/dpop-client-demo-only.jwk.json");
    let payload = |extra: &[&str]| -> Value {
        let mut args = vec![
            "mint",
            "proof",
            "--dpop-key",
            &client,
            "--method",
            "POST",
            "--url",
            "https://api.test/orders",
        ];
        args.extend(extra);
        let output = claimgate(&args);
        assert!(output.status.success());
        let proof = stdout(&output).trim().to_owned();
        let part = proof.split('.').nth(1).unwrap();
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(part).unwrap()).unwrap()
    };
    let with = payload(&["--nonce", "n-123.abc"]);
    assert_eq!(with["nonce"], "n-123.abc", "{with}");
    assert_eq!(with["htm"], "POST");
    assert_eq!(with["htu"], "https://api.test/orders");
    let without = payload(&[]);
    assert!(without.get("nonce").is_none(), "{without}");
}

#[test]
fn check_prints_the_compiled_policy_rule_by_rule() {
    let output = claimgate(&["check", &repo(CONFIG)]);
    assert!(output.status.success());
    let text = stdout(&output);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    let rules = config["rules"].as_array().unwrap();
    let printed: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("rule "))
        .collect();
    assert_eq!(printed.len(), rules.len(), "{text}");
    for (line, rule) in printed.iter().zip(rules) {
        let name = rule["name"].as_str().unwrap();
        assert!(line.starts_with(&format!("rule {name}: ")), "{line}");
    }
    for line in [
        "policy: mode Enforce, unmatched requests: Deny",
        "rule exclusive-deals: path /deals/exclusive -> allow (token) when claim https://aethermarket.com/loyalty_tier is at least Gold on tiers 'loyalty'",
        "rule public-catalog: GET|HEAD prefix /public -> allow (public)",
        "rule recommendations-need-silver: prefix /recommendations -> deny when not (claim https://aethermarket.com/loyalty_tier is at least Silver on tiers 'loyalty') [dry run]",
    ] {
        // Each rule line goes on with the rule's providers and step-up.
        assert!(
            text.lines().any(|seen| seen == line || seen.starts_with(&format!("{line}; "))),
            "{line} not in:\n{text}"
        );
    }
}

#[test]
fn a_failing_policy_test_exits_with_exactly_1_and_a_usage_error_with_2() {
    let cases = temp_file(
        "exit-code.cases.yaml",
        "now: 1798761600\ncases:\n  - name: no token passes\n    request: {path: /products/1}\n    expect: {status: 200}\n",
    );
    let failed = claimgate(&["test", &repo(CONFIG), &cases]);
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    let passed = claimgate(&["test", &repo(CONFIG), &repo(CASES)]);
    assert_eq!(passed.status.code(), Some(0));
    let usage = claimgate(&["test", &repo(CONFIG)]);
    assert_eq!(usage.status.code(), Some(2));
    let unreadable = claimgate(&["test", &repo(CONFIG), "/nonexistent/cases.yaml"]);
    // An input that cannot be read is refused input (3), not a usage error.
    assert_eq!(unreadable.status.code(), Some(3));
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn each_command_has_its_help_and_options_take_an_equals_sign() {
    for command in [
        "check",
        "eval",
        "test",
        "json",
        "mint",
        "keygen",
        "public-jwks",
    ] {
        let output = claimgate(&[command, "--help"]);
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        assert!(
            stdout(&output).contains(&format!("Usage: claimgate {command}")),
            "{command}: {}",
            stdout(&output)
        );
    }
    assert!(stdout(&claimgate(&["check", "--help"])).contains("2  usage"));
    assert!(stdout(&claimgate(&["test", "--help"])).contains("filter-config/POLICY.md"));
    let output = claimgate(&[
        "eval",
        &repo(CONFIG),
        "--path=/admin/users",
        "--method=DELETE",
    ]);
    let decision: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["rule"], "admin-write");
}

#[test]
fn exit_codes_tell_usage_refused_input_and_failed_cases_apart() {
    assert_eq!(claimgate(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(
        claimgate(&["eval", &repo(CONFIG), "--bogus", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(claimgate(&["check"]).status.code(), Some(2));
    let missing = claimgate(&["check", "/nonexistent/claimgate.json"]);
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    let bad = temp_file("bad-exit.json", r#"{"realm": "x", "providers": []}"#);
    assert_eq!(claimgate(&["check", &bad]).status.code(), Some(3));
    let cases = temp_file(
        "failing-exit.cases.yaml",
        "cases:\n  - name: wrong\n    request: {path: /products/1}\n    expect: {status: 200}\n",
    );
    let output = claimgate(&["test", &repo(CONFIG), &cases]);
    assert_eq!(output.status.code(), Some(1));
    // The failing case names the rule that decided and its reason.
    assert!(
        stdout(&output).contains(
            "FAIL wrong: status 200 expected, got 401; rule 'products' decided: rule 'products' requires a token"
        ),
        "{}",
        stdout(&output)
    );
}

/// Errors point at the line and column of the user's own file, JSON or YAML.
#[test]
fn errors_name_the_line_and_column_of_the_original_file() {
    let json = temp_file(
        "located.json",
        "{\n  \"providers\": [{\"name\": \"a\", \"issuer\": \"https://a/\", \"audiences\": [\"x\"],\n    \"algorithms\": [\"RS256\"]}],\n  \"rules\": [\n    {\"name\": \"r\", \"when\": {\"claim\": \"x\", \"matches\": \"y\"}}\n  ]\n}\n",
    );
    let error = stderr(&claimgate(&["check", &json]));
    assert!(
        error.contains("located.json:2:17: providers[0]: missing field `jwks`"),
        "{error}"
    );
    assert!(
        error.contains("jwks.inline") && error.contains("jwks.discovery"),
        "{error}"
    );
    assert!(
        !error.contains("at line 1"),
        "no position of a re-serialized copy: {error}"
    );

    let yaml = temp_file(
        "located.yaml",
        "providers:\n  - name: a\n    issuer: https://a/\n    audiences: [x]\n    algorithms: [HS256]\n    jwks: {inline: {keys: [{kty: oct, k: c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0zMg}]}}\nrules:\n  - name: r\n    when: {claim: x, matches: y}\n",
    );
    let error = stderr(&claimgate(&["check", &yaml]));
    assert!(
        error.contains("located.yaml:9:31: rules[0].when.matches: unknown key 'matches'"),
        "{error}"
    );
    let broken = temp_file("broken.yaml", "rules:\n  - name: [\n");
    let error = stderr(&claimgate(&["check", &broken]));
    assert!(error.contains("broken.yaml:3:"), "{error}");
    let cases = temp_file(
        "located.cases.yaml",
        "cases:\n  - name: a\n    expect: {status: 200, stauts: 1}\n",
    );
    let error = stderr(&claimgate(&["test", &repo(CONFIG), &cases]));
    assert!(
        error.contains("located.cases.yaml:3:35: cases[0].expect.stauts: unknown field"),
        "{error}"
    );
}

#[test]
fn json_prints_what_envoy_takes_from_a_yaml_configuration() {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    let yaml = temp_file("as-json.yaml", &serde_yaml_ng::to_string(&config).unwrap());
    let output = claimgate(&["json", &yaml]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1);
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), config);
}

/// `check` reads what users deploy: the shipped Envoy bootstrap, Istio WasmPlugin and
/// Envoy Gateway EnvoyExtensionPolicy, naming where each configuration was found, and
/// cross-checks the key clusters against the clusters those files define.
#[test]
fn check_reads_bootstraps_and_kubernetes_manifests() {
    let bootstrap = claimgate(&["check", &repo("envoy/auth0-remote-jwks.envoy.yaml")]);
    assert!(bootstrap.status.success(), "{}", stderr(&bootstrap));
    assert!(
        stdout(&bootstrap)
            .contains("auth0-remote-jwks.envoy.yaml:49:26 (Envoy Wasm plugin 'claimgate'): OK"),
        "{}",
        stdout(&bootstrap)
    );
    assert!(
        !stderr(&bootstrap).contains("not defined"),
        "{}",
        stderr(&bootstrap)
    );

    let istio = claimgate(&[
        "check",
        &repo("envoy/deploy/istio/wasmplugin.yaml"),
        "--envoy",
        &repo("envoy/deploy/istio/auth0-jwks.yaml"),
    ]);
    assert!(istio.status.success(), "{}", stderr(&istio));
    assert!(
        stdout(&istio).contains("(WasmPlugin aethermarket/claimgate): OK"),
        "{}",
        stdout(&istio)
    );
    assert!(
        !stderr(&istio).contains("not defined"),
        "{}",
        stderr(&istio)
    );

    let gateway = repo("envoy/deploy/envoy-gateway/claimgate.yaml");
    let eg = claimgate(&[
        "check",
        &gateway,
        "--envoy",
        &repo("envoy/deploy/envoy-gateway/idp-cluster.yaml"),
    ]);
    assert!(eg.status.success(), "{}", stderr(&eg));
    assert!(
        stdout(&eg).contains("(EnvoyExtensionPolicy aethermarket/claimgate, wasm 'claimgate'): OK"),
        "{}",
        stdout(&eg)
    );
    assert!(!stderr(&eg).contains("not defined"), "{}", stderr(&eg));
    // Without the file that defines its cluster, the cross-check warns.
    let envoy = temp_file(
        "other-clusters.yaml",
        "static_resources:\n  clusters:\n  - name: echo\n",
    );
    let lacking = claimgate(&["check", &gateway, "--envoy", &envoy]);
    assert!(
        stderr(&lacking)
            .contains("providers[0].jwks.remote.cluster: cluster 'claimgate-idp' is not defined"),
        "{}",
        stderr(&lacking)
    );
    // A bad embedded configuration is refused with its place in the manifest.
    let text = std::fs::read_to_string(&gateway)
        .unwrap()
        .replace("effect: deny", "effect: refuse");
    let broken = temp_file("broken-eep.yaml", &text);
    let output = claimgate(&["check", &broken]);
    assert_eq!(output.status.code(), Some(3));
    assert!(
        stderr(&output).contains("spec.wasm[0].config.rules[0].effect")
            || stderr(&output).contains("rules[0].effect"),
        "{}",
        stderr(&output)
    );
    // The summary shows each rule's providers and step_up.
    let summary = stdout(&claimgate(&["check", &repo(CONFIG)]));
    assert!(
        summary.contains("rule recommendations-need-silver")
            && summary.contains("providers: auth0"),
        "{summary}"
    );
    assert!(summary.contains("step_up: acr"), "{summary}");
}

#[test]
fn check_warns_about_deny_rules_without_providers_and_bare_issuers() {
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    config["providers"][0]["issuer"] = json!("aethermarket.us.auth0.com");
    for rule in config["rules"].as_array_mut().unwrap() {
        if rule["name"] == "recommendations-need-silver" {
            rule.as_object_mut().unwrap().remove("providers");
        }
    }
    let path = temp_file(
        "warned.json",
        &serde_json::to_string_pretty(&config).unwrap(),
    );
    let output = claimgate(&["check", &path]);
    assert!(output.status.success());
    let warnings = stderr(&output);
    assert!(
        warnings.contains(
            "warning: providers[0].issuer: issuer 'aethermarket.us.auth0.com' has no scheme"
        ),
        "{warnings}"
    );
    assert!(
        warnings.contains("deny rule 'recommendations-need-silver' names no providers"),
        "{warnings}"
    );
    assert!(
        warnings.contains("warned.json:"),
        "warnings say where: {warnings}"
    );
}

#[test]
fn public_jwks_refuses_an_hmac_secret_unless_asked() {
    let key = stdout(&claimgate(&["keygen", "--alg", "HS256", "--kid", "h1"]));
    let path = temp_file("hmac.jwk.json", &key);
    let refused = claimgate(&["public-jwks", "--key", &path]);
    assert_eq!(refused.status.code(), Some(3));
    assert!(refused.stdout.is_empty());
    assert!(
        stderr(&refused).contains("--include-secrets"),
        "{}",
        stderr(&refused)
    );
    let given = claimgate(&["public-jwks", "--key", &path, "--include-secrets"]);
    assert!(given.status.success());
    let jwks: Value = serde_json::from_slice(&given.stdout).unwrap();
    assert_eq!(jwks["keys"][0]["kty"], "oct");
    let public = claimgate(&[
        "public-jwks",
        "--key",
        &repo("filter-config/demo/private-demo-only.jwk.json"),
    ]);
    assert!(public.status.success(), "{}", stderr(&public));
}

/// envoy/render.py takes a YAML configuration too (turned into JSON by `claimgate json`).
#[test]
fn render_py_takes_a_yaml_configuration() {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(repo(CONFIG)).unwrap()).unwrap();
    let yaml = temp_file("render.yaml", &serde_yaml_ng::to_string(&config).unwrap());
    let output = Command::new("python3")
        .arg(repo("envoy/render.py"))
        .args([&yaml, "--wasm", "/nonexistent/claimgate.wasm"])
        .env("CLAIMGATE", env!("CARGO_BIN_EXE_claimgate"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let bootstrap: Value = serde_yaml_ng::from_slice(&output.stdout).unwrap();
    let text = stdout(&output);
    assert!(text.contains("recommendations-need-silver"), "{text}");
    assert!(bootstrap.get("static_resources").is_some());
}

/// The README's demo commands (the `$CG mint …` assignments of "Try the demo") run as
/// written with this build of the CLI.
#[test]
fn the_readme_demo_mint_commands_run_as_written() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme.find("## Try the demo").unwrap();
    let block = &readme[start..];
    let block = &block[block.find("```sh\n").unwrap() + 6..];
    let block = &block[..block.find("```").unwrap()];
    let mut script = String::from("set -euo pipefail\n");
    let mut pending = String::new();
    let mut assigned = Vec::new();
    for line in block.lines() {
        let line = line.trim_end();
        if !pending.is_empty() || (line.contains("=$($CG ") && !line.starts_with('#')) {
            pending.push_str(line);
            pending.push('\n');
            if !line.ends_with('\\') {
                assigned.push(pending.split('=').next().unwrap().to_owned());
                script.push_str(&pending);
                pending.clear();
            }
        } else if line.starts_with("KEY=")
            || line.starts_with("CONFIG=")
            || line.starts_with("MFA=")
        {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(assigned.len() >= 5, "{assigned:?}");
    assert!(
        !assigned.iter().any(|name| name == "PWD"),
        "PWD= breaks the shell's working directory"
    );
    for name in &assigned {
        script.push_str(&format!("test -n \"${name}\"\n"));
    }
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CG", env!("CARGO_BIN_EXE_claimgate"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{script}\n{}", stderr(&output));
}

/// `eval` names each identity header it would not write, and why.
#[test]
fn eval_lists_the_identity_headers_it_skips_and_why() {
    let key = repo("filter-config/demo/private-demo-only.jwk.json");
    let minted = claimgate(&[
        "mint",
        "--key",
        &key,
        "--config",
        &repo(CONFIG),
        "--claim",
        "name=\"a\\u0001b\"",
    ]);
    assert!(minted.status.success(), "{}", stderr(&minted));
    let token = stdout(&minted).trim().to_owned();
    let output = claimgate(&[
        "eval",
        &repo(CONFIG),
        "--token",
        &token,
        "--path",
        "/products/1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let decision: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(decision["status"], 200);
    assert_eq!(
        decision["skipped_headers"],
        json!([{"header": "x-user-name", "reason": "value contains control characters"}])
    );
}
