//! One DPoP key cannot exhaust the shared once-only record of proofs (issue 19, defect 3),
//! through a real Envoy with two workers sharing it. The record is configured small (256
//! entries: one shard, of which one key may hold 32). A client floods it with fresh,
//! valid proofs by one key: 32 pass, every further one is answered 429 with Retry-After
//! (not recorded, so never accepted twice), while another client's fresh proofs keep
//! passing. Keys, tokens and proofs are made by PyJWT/cryptography, not by claimgate.
#![cfg(not(target_arch = "wasm32"))]

mod support;

use serde_json::{json, Value};
use support::{pyjwt, Envoy, EnvoyOptions, Response};

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "https://api.example";

/// An ES256 issuer and two ES256 client keys, each client with a token bound to its key
/// (`cnf.jkt`, the RFC 7638 thumbprint computed here).
const KEYS: &str = r#"
import base64, hashlib, json, sys, time
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
job = json.load(sys.stdin)
def b64(data): return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
def jwk(key):
    public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    return {k: public[k] for k in ("kty", "crv", "x", "y")}
def thumbprint(public):
    members = json.dumps({k: public[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True)
    return b64(hashlib.sha256(members.encode()).digest())
issuer = ec.generate_private_key(ec.SECP256R1())
out = {"issuer": dict(jwk(issuer), alg="ES256", kid="idp"), "clients": []}
now = int(time.time())
for name in ("flood", "other"):
    client = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": job["iss"], "aud": job["aud"], "sub": name, "iat": now, "exp": now + 600,
              "cnf": {"jkt": thumbprint(jwk(client))}}
    token = jwt.encode(claims, issuer, algorithm="ES256", headers={"kid": "idp"})
    out["clients"].append({"private": json.loads(ECAlgorithm.to_jwk(client)), "token": token})
print(json.dumps(out))
"#;

/// `count` fresh DPoP proofs (RFC 9449 §4.2) by the client key for GET `url` and `token`.
const PROOFS: &str = r#"
import base64, hashlib, json, sys, time, uuid
import jwt
from jwt.algorithms import ECAlgorithm
job = json.load(sys.stdin)
key = ECAlgorithm.from_jwk(json.dumps(job["private"]))
public = json.loads(ECAlgorithm.to_jwk(key.public_key()))
ath = base64.urlsafe_b64encode(hashlib.sha256(job["token"].encode()).digest()).rstrip(b"=").decode()
proofs = [jwt.encode({"jti": str(uuid.uuid4()), "htm": "GET", "htu": job["url"], "iat": int(time.time()),
                      "ath": ath}, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": public})
          for _ in range(job["count"])]
print(json.dumps(proofs))
"#;

fn proofs(client: &Value, url: &str, count: usize) -> Vec<String> {
    let job =
        json!({"private": client["private"], "token": client["token"], "url": url, "count": count});
    serde_json::from_value(pyjwt::run(PROOFS, &job)).unwrap()
}

fn send(envoy: &Envoy, client: &Value, proof: &str) -> Response {
    let token = client["token"].as_str().unwrap();
    envoy.request(
        "GET",
        "/orders",
        &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
    )
}

#[test]
fn a_flood_of_fresh_proofs_by_one_key_leaves_other_keys_passing() {
    let keys = pyjwt::run(KEYS, &json!({"iss": ISSUER, "aud": AUDIENCE}));
    let config = json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"inline": {"keys": [keys["issuer"]]}}, "dpop": "required"
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "dpop_proofs": {"replay_cache_entries": 256}
    });
    let options = EnvoyOptions {
        concurrency: 2,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&config.to_string(), options).unwrap();
    let url = format!("http://127.0.0.1:{}/orders", envoy.port);
    let (flood, other) = (&keys["clients"][0], &keys["clients"][1]);
    // More fresh proofs than the whole record holds: before per-key shares, the record
    // filled and every other client got 503.
    let flooding = proofs(flood, &url, 260);
    let mut statuses = Vec::new();
    let mut refused = None;
    for proof in &flooding {
        let response = send(&envoy, flood, proof);
        statuses.push(response.status);
        if response.status == 429 && refused.is_none() {
            refused = Some(response);
        }
    }
    let passed = statuses.iter().filter(|status| **status == 200).count();
    assert_eq!(
        passed, 32,
        "one key holds an eighth of the shard: {statuses:?}"
    );
    assert!(
        statuses[..32].iter().all(|status| *status == 200),
        "{statuses:?}"
    );
    assert!(
        statuses[32..].iter().all(|status| *status == 429),
        "{statuses:?}"
    );
    // The flooding key's answer: 429, when to retry (its first entry expires within
    // max_age_seconds + 1), no challenge (its token and proof are fine).
    let refused = refused.unwrap();
    let retry_after: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry_after), "{retry_after}");
    assert_eq!(refused.header("www-authenticate"), None);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    let body: Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // Another key's fresh proofs pass, on both workers, while the flood is in the record.
    for proof in proofs(other, &url, 20) {
        let response = send(&envoy, other, &proof);
        assert_eq!(response.status, 200, "{}", response.body);
    }
    // Never accepted twice: an accepted proof again is a replay (401), a refused one is
    // still refused.
    let replayed = send(&envoy, flood, &flooding[0]);
    assert_eq!(replayed.status, 401);
    assert!(replayed
        .header("www-authenticate")
        .unwrap_or_default()
        .contains("DPoP proof has been used before"));
    assert_eq!(send(&envoy, flood, &flooding[100]).status, 429);
    let stats = envoy.admin("/stats?filter=claimgate.requests").body;
    assert!(
        stats.contains("claimgate.requests.dpop_key_quota: 229"),
        "{stats}"
    );
    assert!(
        stats.contains("claimgate.requests.dpop_replay_unavailable: 0"),
        "{stats}"
    );
}
