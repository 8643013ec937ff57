//! One DPoP key cannot exhaust the shared once-only record of proofs (issue 19, defect 3),
//! through a real Envoy with two workers sharing it. The record is configured small (256
//! entries: one shard, of which one key may hold 32). A client floods it with fresh,
//! valid proofs by one key: 32 pass, every further one is answered 429 with Retry-After
//! (not recorded, so never accepted twice), while another client's fresh proofs keep
//! passing. Keys, tokens and proofs are made by PyJWT/cryptography, not by claimgate.

use crate::support::pyjwt_keys::Keys;
use crate::support::tokens::claims;
use crate::support::{Envoy, EnvoyOptions, Response};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "https://api.example";

/// A client: its keys (the issuer key is the same for all: `issuer`'s) and its token,
/// bound to its own key.
struct Client {
    keys: Keys,
    token: String,
}

impl Client {
    fn new(issuer: &Keys, name: &str) -> Client {
        let keys = Keys::new();
        let token = issuer.sign(&claims(
            ISSUER,
            AUDIENCE,
            json!({"sub": name, "cnf": {"jkt": keys.client_jkt()}}),
        ));
        Client { keys, token }
    }

    /// `count` fresh DPoP proofs (RFC 9449 §4.2) for GET `url`.
    fn proofs(&self, url: &str, count: usize, batch: &str) -> Vec<String> {
        self.keys.proofs(
            (0..count)
                .map(|index| {
                    self.keys
                        .proof_request(&self.token, "GET", url, &format!("{batch}-{index}"))
                })
                .collect(),
        )
    }
}

fn send(envoy: &Envoy, client: &Client, proof: &str) -> Response {
    let token = &client.token;
    envoy.request(
        "GET",
        "/orders",
        &[("authorization", &format!("DPoP {token}")), ("dpop", proof)],
    )
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_flood_of_fresh_proofs_by_one_key_leaves_other_keys_passing() {
    let issuer = Keys::new();
    let config = json!({
        "realm": "api",
        "providers": [{
            "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
            "jwks": {"inline": {"keys": [issuer.issuer["jwk"]]}}, "dpop": "required"
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
    let (flood, other) = (
        &Client::new(&issuer, "flood"),
        &Client::new(&issuer, "other"),
    );
    // More fresh proofs than the whole record holds: before per-key shares, the record
    // filled and every other client got 503.
    let flooding = flood.proofs(&url, 260, "flood");
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
    for proof in other.proofs(&url, 20, "other") {
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
