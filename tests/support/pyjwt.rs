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

/// The RFC 7638 thumbprint of `jwk`, as the independent side computes it.
pub fn thumbprint(jwk: &Value) -> String {
    tool(&json!({"op": "thumbprint", "jwk": jwk}))["jkt"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An ES256 issuer key (`kid` `conformance-issuer`) and an ES256 client (DPoP) key, made
/// by the independent side.
pub struct Keys {
    /// `jwk` (public, with `kid`, `alg`, `use`) and `pem` (private).
    pub issuer: Value,
    /// `jwk` (public), `pem` (private) and `jkt` (its RFC 7638 thumbprint).
    pub client: Value,
}

impl Keys {
    pub fn new() -> Keys {
        let keys = tool(&json!({"op": "keys"}));
        Keys {
            issuer: keys["issuer"].clone(),
            client: keys["client"].clone(),
        }
    }

    pub fn client_jkt(&self) -> &str {
        self.client["jkt"].as_str().unwrap()
    }

    /// `claims` signed with the issuer key.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(claims, &json!({}))
    }

    /// `claims` signed with the issuer key, `header` members added to the JWS header.
    pub fn sign_with_header(&self, claims: &Value, header: &Value) -> String {
        let request = json!({"op": "token", "pem": self.issuer["pem"],
            "kid": self.issuer["jwk"]["kid"], "claims": claims, "header": header});
        tool(&request)["token"].as_str().unwrap().to_owned()
    }

    /// A request for a proof by the client key for `htm` `htu` and `token` (its `ath`),
    /// issued now.
    pub fn proof_request(&self, token: &str, htm: &str, htu: &str, jti: &str) -> Value {
        json!({"op": "proof", "pem": self.client["pem"], "token": token,
            "claims": {"jti": jti, "htm": htm, "htu": htu, "iat": super::now()}})
    }

    /// Several proofs in one run of the tool.
    pub fn proofs(&self, requests: Vec<Value>) -> Vec<String> {
        let answers = tool(&json!({"op": "batch", "requests": requests}));
        answers["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|answer| answer["proof"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn proof(&self, token: &str, htm: &str, htu: &str, jti: &str) -> String {
        self.proofs(vec![self.proof_request(token, htm, htu, jti)])
            .remove(0)
    }
}
