//! An issuer key and a client (DPoP) key made by the independent JOSE library
//! (`pyjwt.rs`), and what the DPoP tests ask of them: tokens, thumbprints and proofs.

use serde_json::{json, Value};

use super::pyjwt::tool;
use super::tokens::now;

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
            "claims": {"jti": jti, "htm": htm, "htu": htu, "iat": now()}})
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
