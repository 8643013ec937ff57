//! `claimgate eval --jwks`: a token checked offline against a tenant's saved JWKS, or one
//! fetched once from an http:// URL, validated as the filter validates a fetch.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

// This binary serves only JSON and status replies; the Envoy tests use the rest of the
// scripted server (hits, delays, hang-ups, fixed ports).
#[path = "support/idp.rs"]
#[allow(
    dead_code,
    reason = "the Envoy tests use the rest of the scripted server"
)]
mod idp;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use idp::{Idp, Reply};
use serde_json::{json, Value};

const ISSUER: &str = "https://tenant.example.auth0.com/";
const AUDIENCE: &str = "https://api.example.com";
const NOW: i64 = 1_800_000_000;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("claimgate-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_config(dir: &Path) -> PathBuf {
    let config = json!({
        "providers": [{
            "name": "auth0",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["RS256", "ES256"],
            "jwks": {"remote": {"cluster": "auth0_jwks", "path": "/.well-known/jwks.json", "authority": "tenant.example.auth0.com"}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    });
    let path = dir.join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

fn eval(config: &Path, token: &str, extra: &[&str]) -> (Option<Value>, String) {
    let output = eval_output(config, token, extra);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (serde_json::from_slice(&output.stdout).ok(), stderr)
}

fn eval_output(config: &Path, token: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .arg("eval")
        .arg(config)
        .args([
            "--token",
            token,
            "--path",
            "/orders",
            "--now",
            &NOW.to_string(),
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn token(key: &SigningKey) -> String {
    key.sign(&json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|7", "exp": NOW + 60}))
        .unwrap()
}

#[test]
fn eval_checks_a_token_against_a_saved_jwks_file() {
    let dir = scratch("file");
    let config = write_config(&dir);
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({"keys": [key.public_jwk()]}).to_string()).unwrap();

    let (decision, stderr) = eval(&config, &token(&key), &["--jwks", jwks.to_str().unwrap()]);
    let decision = decision.unwrap_or_else(|| panic!("{stderr}"));
    assert_eq!(decision["status"], 200, "{decision}");

    // Without the JWKS the provider has no keys: the outage answer.
    let (decision, _) = eval(&config, &token(&key), &[]);
    assert_eq!(decision.unwrap()["status"], 503);

    // A token from another key with the same kid fails against the saved set.
    let other = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let (decision, _) = eval(&config, &token(&other), &["--jwks", jwks.to_str().unwrap()]);
    assert_eq!(decision.unwrap()["status"], 401);

    // A file that is not a usable JWKS is refused with the reason.
    std::fs::write(&jwks, b"{\"keys\": []}").unwrap();
    let (decision, stderr) = eval(&config, &token(&key), &["--jwks", jwks.to_str().unwrap()]);
    assert!(decision.is_none());
    assert!(stderr.contains("no usable signing key"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn eval_fetches_a_jwks_from_an_http_url_and_tries_https_with_tls() {
    let dir = scratch("url");
    let config = write_config(&dir);
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let idp = Idp::start();
    idp.set(
        "/.well-known/jwks.json",
        Reply::json(json!({"keys": [key.public_jwk()]}).to_string()),
    );
    let url = format!("http://127.0.0.1:{}/.well-known/jwks.json", idp.port);
    let (decision, stderr) = eval(
        &config,
        &token(&key),
        &["--jwks", &url, "--provider", "auth0"],
    );
    assert_eq!(
        decision.unwrap_or_else(|| panic!("{stderr}"))["status"],
        200
    );
    assert_eq!(idp.hits("/.well-known/jwks.json"), 1);

    idp.set("/.well-known/jwks.json", Reply::status(500, "oops"));
    let (decision, stderr) = eval(&config, &token(&key), &["--jwks", &url]);
    assert!(decision.is_none());
    assert!(stderr.contains("HTTP 500"), "{stderr}");

    // https:// is fetched now (ureq with rustls): a server that closes the connection
    // instead of answering the TLS handshake is a fetch failure (exit 4), not a decision.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let https = format!("https://127.0.0.1:{port}/.well-known/jwks.json");
    let output = eval_output(&config, &token(&key), &["--jwks", &https]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains(&format!("--jwks {https}")), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `--jwks` pointed at an issuer's OpenID discovery document follows its `jwks_uri`, with
/// the document validated as the filter validates it (its issuer must be the provider's).
#[test]
fn eval_follows_a_discovery_document_to_its_jwks() {
    let dir = scratch("discovery");
    let idp = Idp::start();
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    let jwks_uri = format!("http://127.0.0.1:{}/keys", idp.port);
    idp.set(
        "/keys",
        Reply::json(json!({"keys": [key.public_jwk()]}).to_string()),
    );
    idp.set(
        "/.well-known/openid-configuration",
        Reply::json(json!({"issuer": ISSUER, "jwks_uri": jwks_uri}).to_string()),
    );
    let config = json!({
        "providers": [{
            "name": "auth0", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"discovery": {"cluster": "auth0", "allow_cross_origin_jwks_uri": true}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
    });
    let path = dir.join("discovery.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/.well-known/openid-configuration",
        idp.port
    );
    let (decision, stderr) = eval(&path, &token(&key), &["--jwks", &url]);
    assert_eq!(
        decision.unwrap_or_else(|| panic!("{stderr}"))["status"],
        200
    );
    assert_eq!(idp.hits("/keys"), 1);

    // A document naming another issuer is refused (exit 3), as the filter refuses it.
    idp.set(
        "/.well-known/openid-configuration",
        Reply::json(json!({"issuer": "https://other.example/", "jwks_uri": jwks_uri}).to_string()),
    );
    let output = eval_output(&path, &token(&key), &["--jwks", &url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("other.example"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
