//! Tokens and DPoP proofs made by an independent JOSE library — PyJWT on `cryptography`,
//! in the project's `.venv` (`scripts/bootstrap.sh --wasm-tests`) — so what the filter
//! accepts is not only what claimgate's own signing produces. The Python side is one
//! script, `tests/support/jose_tool.py`; this is its Rust face.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs `jose_tool.py` with one request (JSON on stdin); its answer.
pub fn tool(request: &Value) -> Value {
    let mut child = Command::new(repo(".venv/bin/python"))
        .arg(repo("tests/support/jose_tool.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the .venv from scripts/bootstrap.sh --wasm-tests (PyJWT)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "jose_tool.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Each of `claims` signed by PyJWT with the private JWK `key` (its `alg` and `kid`).
pub fn sign_all(key: &Value, claims: &[Value]) -> Vec<String> {
    let answer = tool(&json!({"op": "sign_all", "jwk": key, "claims": claims}));
    serde_json::from_value(answer["tokens"].clone()).unwrap()
}

/// `claims` signed by PyJWT with the private JWK `key`.
pub fn sign(key: &Value, claims: &Value) -> String {
    sign_all(key, std::slice::from_ref(claims)).remove(0)
}
