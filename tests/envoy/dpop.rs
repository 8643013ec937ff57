//! DPoP (RFC 9449) through a real Envoy with two workers: tokens bound to a key made at
//! test time, proofs made at test time for each request, and every way a proof can be
//! wrong — replayed (also on the other worker), tampered, for another method or URL,
//! stale, by another key, without `ath` — and the downgrades (a bound token as a bearer
//! token, an unbound one where DPoP is required). Nonces, challenges and the token cache.

use crate::support;
use crate::support::{now, Envoy, EnvoyOptions, Response};
use claimgate::jwks::Alg;
use claimgate::mint::{ProofRequest, SigningKey};
use serde_json::{json, Value};

const MIXED: &str = "https://mixed.example/";
const STRICT: &str = "https://strict.example/";
const AUDIENCE: &str = "https://api.example";
const ALGS: &str = "ES256 ES384 ES512 EdDSA RS256 PS256";

struct Setup {
    issuer: SigningKey,
    client: SigningKey,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            issuer: SigningKey::generate(Alg::Rs256, Some("idp")).unwrap(),
            client: SigningKey::generate(Alg::Es256, None).unwrap(),
        }
    }

    /// `mixed` takes bearer tokens and DPoP-bound ones; `strict` DPoP-bound ones only.
    fn config(&self, extra: Value) -> String {
        let provider = |name: &str, issuer: &str, dpop: &str| {
            json!({
                "name": name, "issuer": issuer, "audiences": [AUDIENCE], "algorithms": ["RS256"],
                "jwks": {"inline": {"keys": [self.issuer.public_jwk()]}}, "dpop": dpop
            })
        };
        let mut config = json!({
            "realm": "api",
            "providers": [provider("mixed", MIXED, "optional"), provider("strict", STRICT, "required")],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
            "identity": {"headers": [{"header": "x-user-id", "claim": "sub"}]}
        });
        support::merge(&mut config, extra);
        config.to_string()
    }

    fn token(&self, issuer: &str, bound_to: Option<&SigningKey>) -> String {
        let mut claims = support::tokens::claims(issuer, AUDIENCE, json!({"sub": "auth0|alice"}));
        if let Some(key) = bound_to {
            claims["cnf"] = json!({"jkt": key.thumbprint().unwrap()});
        }
        self.issuer.sign(&claims).unwrap()
    }
}

fn url(envoy: &Envoy, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", envoy.port)
}

/// A proof by `key` for `method` and `url`, with these changes.
fn proof(
    key: &SigningKey,
    method: &str,
    url: &str,
    token: Option<&str>,
    iat: i64,
    jti: &str,
) -> String {
    key.dpop_proof(&ProofRequest {
        method,
        url,
        access_token: token,
        nonce: None,
        iat,
        jti,
    })
    .unwrap()
}

/// A proof for `url` whose header `edit` changes (signed by `key` all the same).
fn forged_header(
    key: &SigningKey,
    token: &str,
    url: &str,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> String {
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), "dpop+jwt".into());
    header.insert("jwk".into(), key.public_jwk());
    edit(&mut header);
    let claims = json!({"jti": unique("forged"), "htm": "GET", "htu": url, "iat": now(),
        "ath": claimgate::dpop::sha256_base64url(token.as_bytes())});
    key.sign_with_header(header, &claims).unwrap()
}

fn send(
    envoy: &Envoy,
    method: &str,
    path: &str,
    authorization: &str,
    proof: Option<&str>,
) -> Response {
    let mut headers = vec![("authorization", authorization)];
    if let Some(proof) = proof {
        headers.push(("dpop", proof));
    }
    envoy.request(method, path, &headers)
}

/// The value of counter `name`: it must exist (a missing stat is a failure, not 0).
fn counter(envoy: &Envoy, name: &str) -> u64 {
    let stats = envoy.admin(&format!("/stats?filter={name}")).body;
    // Envoy may show Wasm stats under a prefix of its own (`wasmcustom.`).
    stats
        .lines()
        .filter_map(|line| line.split_once(": "))
        .find(|(stat, _)| *stat == name || stat.ends_with(&format!(".{name}")))
        .and_then(|(_, count)| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter {name} in {stats}"))
}

fn challenge(response: &Response) -> &str {
    response.header("www-authenticate").unwrap_or_default()
}

fn unique(name: &str) -> String {
    format!("{name}-{}", rand_suffix())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn dpop_bound_tokens_pass_only_with_a_fresh_proof_for_this_request_by_their_key() {
    let setup = Setup::new();
    let options = EnvoyOptions {
        concurrency: 2,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&setup.config(json!({})), options).unwrap();
    let token = setup.token(MIXED, Some(&setup.client));
    let dpop = format!("DPoP {token}");
    let here = url(&envoy, "/orders");
    let good = |jti: &str| proof(&setup.client, "GET", &here, Some(&token), now(), jti);

    // The valid proof passes, and the upstream sees the verified identity.
    let first = good("first");
    let response = send(&envoy, "GET", "/orders?page=2", &dpop, Some(&first));
    assert_eq!(response.status, 200, "{}", response.body);
    let echo: Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(echo["headers"]["x-user-id"], "auth0|alice");

    // Replayed: on a new connection each time (either worker).
    for _ in 0..6 {
        let response = send(&envoy, "GET", "/orders", &dpop, Some(&first));
        assert_eq!(response.status, 401);
        assert_eq!(
            challenge(&response),
            format!("DPoP realm=\"api\", error=\"invalid_dpop_proof\", error_description=\"DPoP proof has been used before\", algs=\"{ALGS}\"")
        );
    }
    // Fresh proofs on many connections: each passes once, then is a replay on any worker.
    for round in 0..8 {
        let fresh = good(&unique(&format!("round-{round}")));
        assert_eq!(
            send(&envoy, "GET", "/orders", &dpop, Some(&fresh)).status,
            200
        );
        assert_eq!(
            send(&envoy, "GET", "/orders", &dpop, Some(&fresh)).status,
            401
        );
    }

    let thief = SigningKey::generate(Alg::Es256, None).unwrap();
    let tampered = {
        let valid = good("tampered");
        let other = good("tampered-other");
        let (header, rest) = valid.split_once('.').unwrap();
        let signature = rest.rsplit_once('.').unwrap().1;
        format!("{header}.{}.{signature}", other.split('.').nth(1).unwrap())
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("tampered", tampered, "invalid DPoP proof signature"),
        (
            "wrong method",
            proof(&setup.client, "POST", &here, Some(&token), now(), "m"),
            "htm does not match",
        ),
        (
            "wrong URL",
            proof(
                &setup.client,
                "GET",
                &url(&envoy, "/admin"),
                Some(&token),
                now(),
                "u",
            ),
            "htu does not match",
        ),
        (
            "wrong host",
            proof(
                &setup.client,
                "GET",
                "http://api.example/orders",
                Some(&token),
                now(),
                "h",
            ),
            "htu does not match",
        ),
        (
            "stale",
            proof(&setup.client, "GET", &here, Some(&token), now() - 120, "s"),
            "too old",
        ),
        (
            "from the future",
            proof(&setup.client, "GET", &here, Some(&token), now() + 120, "f"),
            "in the future",
        ),
        (
            "wrong key",
            proof(&thief, "GET", &here, Some(&token), now(), "k"),
            "does not match the token binding",
        ),
        (
            "missing ath",
            proof(&setup.client, "GET", &here, None, now(), "a"),
            "has no ath",
        ),
        (
            "ath of another token",
            proof(&setup.client, "GET", &here, Some("x.y.z"), now(), "b"),
            "ath does not match",
        ),
        ("not a JWT", "garbage".to_owned(), "not a JWT"),
        (
            "private key in the jwk header",
            forged_header(&setup.client, &token, &here, |header| {
                header.insert("jwk".into(), setup.client.private_jwk());
            }),
            "must be a public key",
        ),
        (
            "typ JWT",
            forged_header(&setup.client, &token, &here, |header| {
                header.insert("typ".into(), "JWT".into());
            }),
            "typ must be dpop+jwt",
        ),
        (
            "HS256",
            forged_header(&setup.client, &token, &here, |header| {
                header.insert("alg".into(), "HS256".into());
            }),
            "algorithm not allowed",
        ),
    ];
    for (case, proof, description) in &cases {
        let response = send(&envoy, "GET", "/orders", &dpop, Some(proof));
        assert_eq!(response.status, 401, "{case}");
        // RFC 9449 §7.1: a proof by another key than the token's is an invalid key
        // binding (`invalid_token`); every other flaw is an invalid proof.
        let error = if *description == "does not match the token binding" {
            "invalid_token"
        } else {
            "invalid_dpop_proof"
        };
        assert!(
            challenge(&response).starts_with(&format!("DPoP realm=\"api\", error=\"{error}\"")),
            "{case}: {}",
            challenge(&response)
        );
        assert!(
            challenge(&response).contains(description),
            "{case}: {}",
            challenge(&response)
        );
        assert!(
            !response.body.contains(proof.as_str()),
            "{case}: the proof is echoed"
        );
    }
    // No proof at all; two proofs.
    let missing = send(&envoy, "GET", "/orders", &dpop, None);
    assert_eq!(missing.status, 401);
    assert_eq!(
        challenge(&missing),
        format!("DPoP realm=\"api\", error=\"invalid_dpop_proof\", error_description=\"a DPoP proof is required\", algs=\"{ALGS}\"")
    );
    let twice = envoy.request(
        "GET",
        "/orders",
        &[
            ("authorization", &dpop),
            ("dpop", &good("x1")),
            ("dpop", &good("x2")),
        ],
    );
    assert_eq!(twice.status, 401);
    assert_eq!(
        challenge(&twice),
        format!("DPoP realm=\"api\", error=\"invalid_dpop_proof\", error_description=\"more than one DPoP proof\", algs=\"{ALGS}\"")
    );

    // Downgrades: the bound token as a bearer token (even with a valid proof), and an
    // unbound token where the provider requires DPoP.
    let as_bearer = send(
        &envoy,
        "GET",
        "/orders",
        &format!("Bearer {token}"),
        Some(&good("b1")),
    );
    assert_eq!(as_bearer.status, 401);
    assert_eq!(
        challenge(&as_bearer),
        format!("Bearer realm=\"api\", error=\"invalid_token\", error_description=\"DPoP-bound token presented as a bearer token\", DPoP realm=\"api\", algs=\"{ALGS}\"")
    );
    let unbound_strict = setup.token(STRICT, None);
    for authorization in [
        format!("Bearer {unbound_strict}"),
        format!("DPoP {unbound_strict}"),
    ] {
        let response = send(&envoy, "GET", "/orders", &authorization, None);
        assert_eq!(response.status, 401, "{authorization}");
        let description = if authorization.starts_with("DPoP") {
            "token is not DPoP-bound"
        } else {
            "a DPoP-bound token is required"
        };
        assert!(
            challenge(&response).contains(&format!(
                "error=\"invalid_token\", error_description=\"{description}\""
            )),
            "{authorization}: {}",
            challenge(&response)
        );
    }
    // An unbound token of the mixed provider still passes as a bearer token (bearer
    // behaviour unchanged), but not as DPoP.
    let unbound = setup.token(MIXED, None);
    assert_eq!(
        send(&envoy, "GET", "/orders", &format!("Bearer {unbound}"), None).status,
        200
    );
    let as_dpop = send(
        &envoy,
        "GET",
        "/orders",
        &format!("DPoP {unbound}"),
        Some(&good("d")),
    );
    assert!(
        challenge(&as_dpop).contains("token is not DPoP-bound"),
        "{}",
        challenge(&as_dpop)
    );
    // The strict provider's bound token with its proof.
    let strict = setup.token(STRICT, Some(&setup.client));
    let strict_proof = proof(&setup.client, "GET", &here, Some(&strict), now(), "strict");
    assert_eq!(
        send(
            &envoy,
            "GET",
            "/orders",
            &format!("DPoP {strict}"),
            Some(&strict_proof)
        )
        .status,
        200
    );
    // No token: both schemes are offered.
    let none = envoy.request("GET", "/orders", &[]);
    assert_eq!(
        challenge(&none),
        format!("Bearer realm=\"api\", DPoP realm=\"api\", algs=\"{ALGS}\"")
    );

    for stat in [
        "claimgate.requests.unauthenticated.dpop_proof",
        "claimgate.requests.unauthenticated.binding",
    ] {
        assert!(counter(&envoy, stat) > 0, "{stat}");
    }
    assert!(!envoy.log().contains(&first), "a proof was logged");
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn with_nonces_a_client_retries_with_the_nonce_envoy_gave_it() {
    let setup = Setup::new();
    let envoy = Envoy::start(&setup.config(json!({"dpop_proofs": {"use_dpop_nonce": true}})));
    let token = setup.token(STRICT, Some(&setup.client));
    let dpop = format!("DPoP {token}");
    let here = url(&envoy, "/orders");
    let first = send(
        &envoy,
        "GET",
        "/orders",
        &dpop,
        Some(&proof(
            &setup.client,
            "GET",
            &here,
            Some(&token),
            now(),
            "n0",
        )),
    );
    assert_eq!(first.status, 401);
    assert!(
        challenge(&first).contains("error=\"use_dpop_nonce\""),
        "{}",
        challenge(&first)
    );
    let nonce = first
        .header("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_owned();
    let with_nonce = setup
        .client
        .dpop_proof(&ProofRequest {
            method: "GET",
            url: &here,
            access_token: Some(&token),
            nonce: Some(&nonce),
            iat: now(),
            jti: "n1",
        })
        .unwrap();
    assert_eq!(
        send(&envoy, "GET", "/orders", &dpop, Some(&with_nonce)).status,
        200
    );
    let forged = setup
        .client
        .dpop_proof(&ProofRequest {
            method: "GET",
            url: &here,
            access_token: Some(&token),
            nonce: Some("AAAAAGdvb2QAAAAAAAAAAAAAAAAAAAAA"),
            iat: now(),
            jti: "n2",
        })
        .unwrap();
    assert_eq!(
        send(&envoy, "GET", "/orders", &dpop, Some(&forged)).status,
        401
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_cached_token_still_needs_a_valid_proof_on_every_request() {
    let setup = Setup::new();
    let envoy = Envoy::start(&setup.config(json!({})));
    let token = setup.token(STRICT, Some(&setup.client));
    let dpop = format!("DPoP {token}");
    let here = url(&envoy, "/orders");
    for round in 0..3 {
        let fresh = proof(
            &setup.client,
            "GET",
            &here,
            Some(&token),
            now(),
            &format!("c{round}"),
        );
        assert_eq!(
            send(&envoy, "GET", "/orders", &dpop, Some(&fresh)).status,
            200
        );
        let stale = proof(
            &setup.client,
            "GET",
            &here,
            Some(&token),
            now() - 300,
            &format!("s{round}"),
        );
        assert_eq!(
            send(&envoy, "GET", "/orders", &dpop, Some(&stale)).status,
            401
        );
    }
    // The first request verified the token; the following ones found it in the cache.
    assert!(counter(&envoy, "claimgate.token_cache.hits") >= 2);
}
