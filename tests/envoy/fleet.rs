//! Many replicas behind one load balancer (issue 21): claimgate Envoys started by the test
//! behind a plain front Envoy balancing round-robin, as a cloud load balancer or a
//! Kubernetes Service would.
//!
//! Nonces: with the same `nonce_secrets` in every replica's VM environment, a nonce one
//! replica issued is accepted by the others; a rotation (the old secret as previous) keeps
//! old nonces valid; a rotated-out secret's nonces are refused. Without secrets, the
//! documented behaviour: another replica refuses the nonce with a fresh `use_dpop_nonce`.

use crate::support::front::Front;
use crate::support::tokens::claims;
use crate::support::{now, Envoy, EnvoyOptions, Response};
use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::jwks::Alg;
use claimgate::mint::{ProofRequest, SigningKey};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.example/";
const AUDIENCE: &str = "https://api.example";
/// The name clients use for the API; the proofs' `htu` names it.
const HOST: &str = "api.example";
const URL: &str = "http://api.example/orders";

struct Fleet {
    issuer: SigningKey,
    client: SigningKey,
    token: String,
}

impl Fleet {
    fn new() -> Fleet {
        let issuer = SigningKey::generate(Alg::Es256, Some("idp")).unwrap();
        let client = SigningKey::generate(Alg::Es256, None).unwrap();
        let token = issuer
            .sign(&claims(
                ISSUER,
                AUDIENCE,
                json!({"sub": "alice", "cnf": {"jkt": client.thumbprint().unwrap()}}),
            ))
            .unwrap();
        Fleet {
            issuer,
            client,
            token,
        }
    }

    fn config(&self, dpop_proofs: Value) -> String {
        json!({
            "providers": [{
                "name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["ES256"],
                "jwks": {"inline": {"keys": [self.issuer.public_jwk()]}}, "dpop": "required"
            }],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
            "dpop_proofs": dpop_proofs
        })
        .to_string()
    }

    /// A replica whose VM environment is `environment`.
    fn replica(&self, dpop_proofs: Value, environment: &[(&str, &str)]) -> Envoy {
        let options = EnvoyOptions {
            environment: environment
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..EnvoyOptions::default()
        };
        Envoy::start_with(&self.config(dpop_proofs), options)
            .unwrap_or_else(|log| panic!("the replica did not start:\n{log}"))
    }

    fn proof(&self, jti: &str, nonce: Option<&str>) -> String {
        self.client
            .dpop_proof(&ProofRequest {
                method: "GET",
                url: URL,
                access_token: Some(&self.token),
                nonce,
                iat: now(),
                jti,
            })
            .unwrap()
    }

    fn headers<'a>(&'a self, authorization: &'a str, proof: &'a str) -> [(&'a str, &'a str); 3] {
        [
            ("host", HOST),
            ("authorization", authorization),
            ("dpop", proof),
        ]
    }

    fn send(&self, envoy: &Envoy, jti: &str, nonce: Option<&str>) -> Response {
        let authorization = format!("DPoP {}", self.token);
        let proof = self.proof(jti, nonce);
        envoy.request("GET", "/orders", &self.headers(&authorization, &proof))
    }

    fn send_front(&self, front: &Front, jti: &str, nonce: Option<&str>) -> Response {
        let authorization = format!("DPoP {}", self.token);
        let proof = self.proof(jti, nonce);
        front.request("GET", "/orders", &self.headers(&authorization, &proof))
    }
}

fn secret(byte: u8) -> String {
    Base64UrlUnpadded::encode_string(&[byte; 32])
}

/// The nonce of a `use_dpop_nonce` challenge (asserted to be one).
fn challenged(response: &Response) -> String {
    assert_eq!(response.status, 401, "{response:?}");
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    response
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned()
}

fn with_secrets(previous: bool) -> Value {
    let mut secrets = json!({"current_env": "CLAIMGATE_NONCE_SECRET"});
    if previous {
        secrets["previous_env"] = json!("CLAIMGATE_NONCE_SECRET_PREVIOUS");
    }
    json!({"use_dpop_nonce": true, "nonce_secrets": secrets})
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn with_a_shared_secret_every_replica_accepts_the_nonces_of_the_others() {
    let fleet = Fleet::new();
    let old = secret(1);
    let env = [("CLAIMGATE_NONCE_SECRET", old.as_str())];
    let replicas: Vec<Envoy> = (0..3)
        .map(|_| fleet.replica(with_secrets(false), &env))
        .collect();
    // Directly: a nonce from each replica is accepted by each other one.
    for (from, issuer) in replicas.iter().enumerate() {
        let nonce = challenged(&fleet.send(issuer, &format!("d{from}"), None));
        for (to, other) in replicas.iter().enumerate() {
            let response = fleet.send(other, &format!("d{from}-{to}"), Some(&nonce));
            assert_eq!(response.status, 200, "{from} -> {to}: {response:?}");
        }
    }
    // Through the round-robin front: one challenge, then every request (each on the next
    // replica) passes with that nonce.
    let ports: Vec<u16> = replicas.iter().map(|replica| replica.port).collect();
    let front = Front::start(&ports);
    let nonce = challenged(&fleet.send_front(&front, "f0", None));
    for round in 1..=9 {
        let response = fleet.send_front(&front, &format!("f{round}"), Some(&nonce));
        assert_eq!(response.status, 200, "round {round}: {response:?}");
    }

    // Rotation, replica by replica (a rolling restart): the new secret current, the old
    // one previous. The old nonce is accepted by the rotated replica; its new nonces are
    // refused by a replica that has not rotated yet (made with the new secret).
    let new = secret(2);
    let rotated_env = [
        ("CLAIMGATE_NONCE_SECRET", new.as_str()),
        ("CLAIMGATE_NONCE_SECRET_PREVIOUS", old.as_str()),
    ];
    let rotated = fleet.replica(with_secrets(true), &rotated_env);
    assert_eq!(fleet.send(&rotated, "r0", Some(&nonce)).status, 200);
    let minted = challenged(&fleet.send(&rotated, "r1", None));
    let refreshed = challenged(&fleet.send(&replicas[0], "r2", Some(&minted)));
    assert_ne!(refreshed, minted);
    // The next rotation drops the first secret: its nonces are refused (a fresh challenge),
    // the second secret's accepted.
    let newer = secret(3);
    let again = fleet.replica(
        with_secrets(true),
        &[
            ("CLAIMGATE_NONCE_SECRET", newer.as_str()),
            ("CLAIMGATE_NONCE_SECRET_PREVIOUS", new.as_str()),
        ],
    );
    let fresh = challenged(&fleet.send(&again, "r3", Some(&nonce)));
    assert_ne!(fresh, nonce);
    assert_eq!(fleet.send(&again, "r4", Some(&minted)).status, 200);
    // The secrets are never logged.
    for envoy in replicas.iter().chain([&rotated, &again]) {
        let log = envoy.log();
        for value in [&old, &new, &newer] {
            assert!(!log.contains(value.as_str()), "a secret in the log");
        }
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn without_a_shared_secret_another_replica_refuses_the_nonce_with_a_fresh_challenge() {
    let fleet = Fleet::new();
    let replicas: Vec<Envoy> = (0..2)
        .map(|_| fleet.replica(json!({"use_dpop_nonce": true}), &[]))
        .collect();
    let nonce = challenged(&fleet.send(&replicas[0], "a0", None));
    assert_eq!(fleet.send(&replicas[0], "a1", Some(&nonce)).status, 200);
    let fresh = challenged(&fleet.send(&replicas[1], "b0", Some(&nonce)));
    assert_ne!(fresh, nonce);
    // Behind a strict round-robin front with two replicas, a client that always retries
    // with the last nonce it got never gets through: each retry lands on the other one.
    let front = Front::start(&[replicas[0].port, replicas[1].port]);
    let mut nonce = challenged(&fleet.send_front(&front, "c0", None));
    for round in 1..=6 {
        nonce = challenged(&fleet.send_front(&front, &format!("c{round}"), Some(&nonce)));
    }
    // The replicas' logs say why (`claimgate check` says the same).
    assert!(
        replicas[0]
            .log()
            .contains("single replica or sticky sessions"),
        "no replicas note in the log"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_replica_without_its_secret_or_with_a_short_one_refuses_to_load() {
    let fleet = Fleet::new();
    let short = Base64UrlUnpadded::encode_string(&[9_u8; 16]);
    for (environment, needle) in [
        (
            vec![],
            "dpop_proofs.nonce_secrets.current_env: environment variable CLAIMGATE_NONCE_SECRET is not set",
        ),
        (
            vec![("CLAIMGATE_NONCE_SECRET", short.as_str())],
            "dpop_proofs.nonce_secrets.current_env: environment variable CLAIMGATE_NONCE_SECRET decodes to 16 bytes",
        ),
    ] {
        let options = EnvoyOptions {
            environment: environment
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            ..EnvoyOptions::default()
        };
        let log = match Envoy::start_with(&fleet.config(with_secrets(false)), options) {
            Ok(envoy) => panic!("started without a usable secret:\n{}", envoy.log()),
            Err(log) => log,
        };
        assert!(log.contains(needle), "{needle} not in:\n{log}");
        assert!(!log.contains(&short), "the secret in the log");
    }
}
