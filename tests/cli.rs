//! The `claimgate` command line: policy tests, YAML input, warnings and explanations.
#![cfg(not(target_arch = "wasm32"))]

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
