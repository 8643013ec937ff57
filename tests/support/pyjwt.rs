//! Tokens and DPoP proofs made by an independent JOSE library — PyJWT on `cryptography`,
//! in the project's `.venv` (`scripts/bootstrap.sh --wasm-tests`) — so what the filter
//! accepts is not only what claimgate's own signing produces.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Runs `script` with the `.venv` Python, `input` (JSON) on stdin; its stdout as JSON.
pub fn run(script: &str, input: &Value) -> Value {
    use std::io::Write;
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the .venv from scripts/bootstrap.sh --wasm-tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "PyJWT script failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Each of `claims` signed by PyJWT with the private JWK `key` (its `alg` and `kid`).
pub fn sign_all(key: &Value, claims: &[Value]) -> Vec<String> {
    const SCRIPT: &str = r#"
import json, sys
import jwt
from jwt.algorithms import get_default_algorithms
job = json.load(sys.stdin)
key = dict(job["key"])
key.pop("_comment", None)
alg = key["alg"]
signing_key = get_default_algorithms()[alg].from_jwk(json.dumps(key))
print(json.dumps([jwt.encode(claims, signing_key, algorithm=alg, headers={"kid": key.get("kid")})
                  for claims in job["claims"]]))
"#;
    let signed = run(SCRIPT, &serde_json::json!({"key": key, "claims": claims}));
    serde_json::from_value(signed).unwrap()
}
