//! RFC clauses proven through a real Envoy with tokens and DPoP proofs made by an
//! independent JOSE stack (PyJWT on `cryptography`: `tests/support/jose_tool.py`),
//! never by claimgate's own signing. Each test is named after the clause it proves; the
//! matrix in `tests/CONFORMANCE.md` points here. Every assertion is unconditional.

use std::process::Command;

use crate::support;
use crate::support::pyjwt_keys::{thumbprint, Keys};
use crate::support::{http, now, Envoy, EnvoyOptions, Response};
use serde_json::{json, Value};

const ISSUER: &str = "https://conformance.example/";
const AUDIENCE: &str = "https://api.example";
const ALGS: &str = "ES256 ES384 ES512 EdDSA RS256 PS256";

/// The standard claims for this API, with `extra` merged in.
fn claims(extra: Value) -> Value {
    let mut claims = support::tokens::claims(ISSUER, AUDIENCE, json!({"sub": "auth0|alice"}));
    support::merge(&mut claims, extra);
    claims
}

/// What these tests ask of the keys: tokens with this API's claims.
trait Tokens {
    fn token(&self, extra: Value) -> String;
    fn bound_token(&self) -> String;
}

impl Tokens for Keys {
    fn token(&self, extra: Value) -> String {
        self.sign(&claims(extra))
    }

    /// A token bound to the client key (`cnf.jkt`).
    fn bound_token(&self) -> String {
        self.token(json!({"cnf": {"jkt": self.client_jkt()}}))
    }
}

/// One provider with the issuer key inline, `provider` fields merged in, and `extra`
/// top-level fields.
fn config(keys: &Keys, provider: Value, extra: Value) -> String {
    let mut entry = json!({"name": "idp", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["ES256"], "jwks": {"inline": {"keys": [keys.issuer["jwk"]]}}});
    support::merge(&mut entry, provider);
    let mut config = json!({
        "realm": "api",
        "providers": [entry],
        "rules": [
            {"name": "closed", "match": {"prefix": "/bob"}, "effect": "deny"},
            {"name": "everyone", "match": {"prefix": "/"}, "access": "authenticated"}
        ]
    });
    support::merge(&mut config, extra);
    config.to_string()
}

fn bearer_request(envoy: &Envoy, path: &str, token: &str) -> Response {
    envoy.request(
        "GET",
        path,
        &[("authorization", &format!("Bearer {token}"))],
    )
}

fn dpop_request(envoy: &Envoy, path: &str, host: &str, token: &str, proof: &str) -> Response {
    let authorization = format!("DPoP {token}");
    http(
        envoy.port,
        "GET",
        path,
        &[
            ("host", host),
            ("authorization", &authorization),
            ("dpop", proof),
        ],
    )
    .unwrap()
}

fn challenge(response: &Response) -> String {
    response
        .header("www-authenticate")
        .unwrap_or_default()
        .to_owned()
}

fn dpop_challenge(error: &str, description: &str) -> String {
    format!("DPoP realm=\"api\", error=\"{error}\", error_description=\"{description}\", algs=\"{ALGS}\"")
}

/// RFC 9449 §4.3 check 9: `htu` must match the request's URI. A proof naming something
/// that is not an absolute http(s) URI never matches, whatever the request; a request
/// whose URI cannot be formed matches no proof; a Host with an impossible port is refused
/// before anything (400).
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_4_3_htu_that_is_no_uri_or_a_request_uri_that_cannot_be_formed_never_matches() {
    let keys = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({"dpop": "required"}), json!({})));
    let token = keys.bound_token();
    let wrong_uri = dpop_challenge(
        "invalid_dpop_proof",
        "DPoP proof htu does not match the request URI",
    );
    let htus = [
        "x",
        "/orders",
        "ftp://api.example/orders",
        "http://user@api.example/orders",
        "",
    ];
    let proofs = keys.proofs(
        htus.iter()
            .enumerate()
            .map(|(index, htu)| keys.proof_request(&token, "GET", htu, &format!("no-uri-{index}")))
            .collect(),
    );
    for (htu, proof) in htus.iter().zip(&proofs) {
        let response = dpop_request(&envoy, "/orders", "api.example", &token, proof);
        assert_eq!(response.status, 401, "htu {htu:?}");
        assert_eq!(challenge(&response), wrong_uri, "htu {htu:?}");
    }
    // Hosts whose port is empty or outside 1-65535: refused as malformed (400), before
    // any proof is looked at.
    for host in [
        "127.0.0.1:",
        "127.0.0.1:99999",
        "127.0.0.1:65536",
        "127.0.0.1:0",
    ] {
        let proof = keys.proof(&token, "GET", "x", &format!("host-{host}"));
        let response = dpop_request(&envoy, "/orders", host, &token, &proof);
        assert_eq!(response.status, 400, "host {host:?}: {response:?}");
    }
    // A proof for the right URI passes (so the refusals above are about the URI).
    let good = keys.proof(&token, "GET", "http://api.example/orders", "good");
    assert_eq!(
        dpop_request(&envoy, "/orders", "api.example", &token, &good).status,
        200
    );
}

/// RFC 9449 §4.3 check 9 recommends RFC 3986 §6.2.2 and §6.2.3 normalization: case,
/// percent-encoding case, encoded unreserved characters, dot segments, an empty port.
/// Proofs spelled any of those ways for the request's URI pass; an ambiguous one does not.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_4_3_htu_is_compared_after_rfc3986_syntax_and_scheme_normalization() {
    let keys = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({"dpop": "required"}), json!({})));
    let token = keys.bound_token();
    let spellings = [
        "http://api.example/caf%C3%A9/orders",
        "HTTP://API.EXAMPLE/caf%C3%A9/orders",
        "http://api.example:/caf%C3%A9/orders",
        "http://api.example:80/caf%C3%A9/orders",
        "http://api.example/caf%c3%a9/orders",
        "http://api.example/caf%c3%a9/%6Frders",
        "http://api.example/x/../caf%C3%A9/./orders",
        "http://api.example/caf%C3%A9/orders?page=1#top",
    ];
    let proofs = keys.proofs(
        spellings
            .iter()
            .enumerate()
            .map(|(index, htu)| keys.proof_request(&token, "GET", htu, &format!("spelled-{index}")))
            .collect(),
    );
    for (htu, proof) in spellings.iter().zip(&proofs) {
        let response = dpop_request(
            &envoy,
            "/caf%C3%A9/orders?page=2",
            "api.example",
            &token,
            proof,
        );
        assert_eq!(response.status, 200, "htu {htu}: {}", challenge(&response));
    }
    for (index, htu) in [
        "http://api.example/caf%C3%A9%2Forders",
        "http://api.example/..;x/caf%C3%A9/orders",
        "http://api.example:8080/caf%C3%A9/orders",
        "https://api.example/caf%C3%A9/orders",
    ]
    .iter()
    .enumerate()
    {
        let proof = keys.proof(&token, "GET", htu, &format!("ambiguous-{index}"));
        let response = dpop_request(&envoy, "/caf%C3%A9/orders", "api.example", &token, &proof);
        assert_eq!(response.status, 401, "htu {htu}");
    }
}

/// RFC 9449 §7.2 ("a DPoP-bound access token ... MUST NOT be accepted as a bearer token")
/// and RFC 8705 §3 (a certificate-bound token is used only with its certificate): a
/// token whose `cnf` names a binding the provider does not check is refused, not taken
/// as a bearer token.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_7_2_and_rfc8705_3_a_bound_token_is_never_used_unbound() {
    let keys = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({}), json!({})));
    let unchecked = "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"token is bound to a key or certificate this resource does not check\"";
    for cnf in [
        json!({"jkt": keys.client_jkt()}),
        json!({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        json!({"jwk": keys.client["jwk"]}),
    ] {
        let token = keys.token(json!({"cnf": cnf}));
        let response = bearer_request(&envoy, "/orders", &token);
        assert_eq!(response.status, 401, "{cnf}");
        assert_eq!(challenge(&response), unchecked, "{cnf}");
    }
    // A malformed cnf is no way to pass as unbound either.
    for cnf in [json!({"jkt": 1}), json!("jkt"), json!({})] {
        let token = keys.token(json!({"cnf": cnf}));
        let response = bearer_request(&envoy, "/orders", &token);
        assert_eq!(response.status, 401, "{cnf}");
        assert!(
            challenge(&response).contains("token cnf claim is malformed"),
            "{cnf}"
        );
    }
    // An unbound token from the same issuer passes.
    let plain = keys.token(json!({}));
    let response = bearer_request(&envoy, "/orders", &plain);
    assert_eq!(response.status, 200);
}

/// RFC 9449 §7.1: a proof whose key is not the token's `cnf.jkt` is an invalid key
/// binding, answered `invalid_token` as the RFC's example does — and found before the
/// signature is checked.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_7_1_a_proof_by_another_key_is_an_invalid_token_binding() {
    let keys = Keys::new();
    let thief = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({"dpop": "required"}), json!({})));
    let token = keys.bound_token();
    let stolen = thief.proof(&token, "GET", "http://api.example/orders", "stolen");
    let response = dpop_request(&envoy, "/orders", "api.example", &token, &stolen);
    assert_eq!(response.status, 401);
    assert_eq!(
        challenge(&response),
        dpop_challenge(
            "invalid_token",
            "DPoP proof key does not match the token binding"
        )
    );
}

/// RFC 9449 §4.3 (the proof's key) and RFC 8725 §3 (validate all cryptographic
/// operations, bound the work): an RSA proof key of 9,600 bits with a 64-bit exponent is
/// refused before any signature work.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_4_3_oversized_rsa_proof_keys_are_refused() {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let keys = Keys::new();
    let mut modulus = vec![0xc5_u8; 1200];
    if let Some(last) = modulus.last_mut() {
        *last |= 1;
    }
    let jwk = json!({"kty": "RSA", "n": Base64UrlUnpadded::encode_string(&modulus),
        "e": Base64UrlUnpadded::encode_string(&[0xff; 8])});
    let jkt = thumbprint(&jwk);
    let envoy = Envoy::start(&config(
        &keys,
        json!({"dpop": "required"}),
        json!({"dpop_proofs": {"max_proof_bytes": 16384}}),
    ));
    let token = keys.token(json!({"cnf": {"jkt": jkt}}));
    let header = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk});
    let claims = json!({"jti": "big", "htm": "GET", "htu": "http://api.example/orders",
        "iat": now(), "ath": sha256_b64(&token)});
    let proof = format!(
        "{}.{}.{}",
        Base64UrlUnpadded::encode_string(header.to_string().as_bytes()),
        Base64UrlUnpadded::encode_string(claims.to_string().as_bytes()),
        "A".repeat(1600)
    );
    let response = dpop_request(&envoy, "/orders", "api.example", &token, &proof);
    assert_eq!(response.status, 401);
    assert_eq!(
        challenge(&response),
        dpop_challenge(
            "invalid_dpop_proof",
            "DPoP proof RSA key is larger than 4096 bits or its exponent than 32 bits"
        )
    );
}

fn sha256_b64(text: &str) -> String {
    claimgate::dpop::sha256_base64url(text.as_bytes())
}

/// RFC 9449 §11.1 (the once-only record) and the issue's fairness rule: proofs of
/// requests the policy refuses are not recorded, so one customer flooding a 403 route
/// with fresh proofs cannot fill the record and deny DPoP to everyone else.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_11_1_proofs_of_refused_requests_never_fill_the_once_only_record() {
    let keys = Keys::new();
    let other = Keys::new();
    let envoy = Envoy::start(&config(
        &keys,
        json!({"dpop": "required"}),
        json!({"dpop_proofs": {"replay_cache_entries": 256}}),
    ));
    let token = keys.bound_token();
    let flood: Vec<Value> = (0..600)
        .map(|index| {
            keys.proof_request(
                &token,
                "GET",
                "http://api.example/bob",
                &format!("flood-{index}"),
            )
        })
        .collect();
    for proof in keys.proofs(flood) {
        let response = dpop_request(&envoy, "/bob", "api.example", &token, &proof);
        assert_eq!(response.status, 403);
    }
    // Another customer's fresh proofs still pass, and are still used once.
    let other_token = keys.token(json!({"cnf": {"jkt": other.client_jkt()}, "sub": "auth0|carol"}));
    let fresh = other.proof(&other_token, "GET", "http://api.example/orders", "fresh");
    assert_eq!(
        dpop_request(&envoy, "/orders", "api.example", &other_token, &fresh).status,
        200
    );
    let replayed = dpop_request(&envoy, "/orders", "api.example", &other_token, &fresh);
    assert_eq!(replayed.status, 401);
    assert_eq!(
        challenge(&replayed),
        dpop_challenge("invalid_dpop_proof", "DPoP proof has been used before")
    );
}

/// RFC 9470 §4 (`max_age`): an `auth_time` in the future (beyond the clock skew) is no
/// recent authentication; the step-up challenge is sent.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9470_4_a_future_auth_time_does_not_satisfy_max_age() {
    let keys = Keys::new();
    let rules = json!({"rules": [{"name": "payment", "match": {"prefix": "/pay"},
        "access": "authenticated", "step_up": {"max_age_seconds": 600}}]});
    let envoy = Envoy::start(&config(&keys, json!({}), rules));
    let recent = keys.token(json!({"auth_time": now() - 30}));
    let response = bearer_request(&envoy, "/pay", &recent);
    assert_eq!(response.status, 200);
    for auth_time in [
        json!(now() + 86_400),
        json!(now() + 10 * 365 * 86_400),
        json!(1e300),
    ] {
        let token = keys.token(json!({"auth_time": auth_time}));
        let response = bearer_request(&envoy, "/pay", &token);
        assert_eq!(response.status, 401, "auth_time {auth_time}");
        assert_eq!(
            challenge(&response),
            "Bearer realm=\"api\", error=\"insufficient_user_authentication\", error_description=\"a stronger or more recent authentication is required\", max_age=\"600\"",
            "auth_time {auth_time}"
        );
    }
}

/// RFC 9449 §4.3 check 9 with the scheme from the connection: over h2c a client writes
/// `:scheme` itself; claimgate takes the scheme from the connection (plain TCP here:
/// `http`), so a proof for `https` — or any made-up scheme — never matches, and a
/// `request: scheme` condition reads the connection too.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_4_3_the_htu_scheme_is_the_connections_not_the_clients() {
    let keys = Keys::new();
    let rules = json!({"rules": [
        {"name": "tls-only", "match": {"prefix": "/secure"}, "access": "public",
         "when": {"request": "scheme", "equals": "https"}},
        {"name": "everyone", "match": {"prefix": "/"}, "access": "authenticated"}
    ]});
    let envoy = Envoy::start_with(
        &config(&keys, json!({"dpop": "required"}), rules),
        EnvoyOptions::default(),
    )
    .unwrap();
    let token = keys.bound_token();
    let authority = "api.example";
    let h2c = |path: &str, scheme: &str, proof: &str| -> String {
        let output = Command::new("nghttp")
            .args([
                "-v",
                "-H",
                &format!(":scheme: {scheme}"),
                "-H",
                &format!(":authority: {authority}"),
                "-H",
                &format!("authorization: DPoP {token}"),
                "-H",
                &format!("dpop: {proof}"),
                &format!("http://127.0.0.1:{}{path}", envoy.port),
            ])
            .output()
            .expect("nghttp (Debian nghttp2-client, installed by scripts/bootstrap.sh --load)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let status = |transcript: &str| -> u16 {
        transcript
            .lines()
            .find_map(|line| {
                line.trim()
                    .split_once(":status: ")
                    .map(|(_, code)| code.trim().to_owned())
            })
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no :status in {transcript}"))
    };
    for scheme in ["https", "foo", "javascript", "ftp"] {
        let proof = keys.proof(
            &token,
            "GET",
            &format!("{scheme}://{authority}/orders"),
            &format!("s-{scheme}"),
        );
        assert_eq!(
            status(&h2c("/orders", scheme, &proof)),
            401,
            ":scheme {scheme}"
        );
    }
    let plain = keys.proof(
        &token,
        "GET",
        &format!("http://{authority}/orders"),
        "s-http",
    );
    assert_eq!(status(&h2c("/orders", "https", &plain)), 200);
    // `request: scheme` reads the connection: a client's `:scheme: https` over plain TCP
    // does not open the TLS-only route.
    let proof = keys.proof(
        &token,
        "GET",
        &format!("http://{authority}/secure"),
        "s-secure",
    );
    assert_eq!(
        status(&h2c("/secure", "https", &proof)),
        200,
        "the everyone rule, with a token"
    );
    let anonymous = Command::new("nghttp")
        .args([
            "-v",
            "-H",
            ":scheme: https",
            &format!("http://127.0.0.1:{}/secure", envoy.port),
        ])
        .output()
        .unwrap();
    assert_eq!(status(&String::from_utf8_lossy(&anonymous.stdout)), 401);
}

/// RFC 9449 §4.3, every check, with proofs made by PyJWT through Envoy: what fails a
/// check is refused with `invalid_dpop_proof` and the check named; a replay of an
/// accepted proof too (§11.1).
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc9449_4_3_every_proof_check_holds_for_independently_made_proofs() {
    let keys = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({"dpop": "required"}), json!({})));
    let token = keys.bound_token();
    let htu = "http://api.example/orders";
    let proof = |claims: Value, header: Value| {
        json!({"op": "proof", "pem": keys.client["pem"], "token": token, "claims": claims,
            "header": header})
    };
    let base = |jti: &str| json!({"jti": jti, "htm": "GET", "htu": htu, "iat": now()});
    let with = |jti: &str, member: &str, value: Value| {
        let mut claims = base(jti);
        claims[member] = value;
        claims
    };
    let without = |jti: &str, member: &str| {
        let mut claims = base(jti);
        claims.as_object_mut().unwrap().remove(member);
        claims
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "typ JWT (check 4)",
            proof(base("c1"), json!({"typ": "JWT"})),
            "typ must be dpop+jwt",
        ),
        (
            "no jti (check 3)",
            proof(without("c2", "jti"), json!({})),
            "has no jti",
        ),
        (
            "no htm (check 3)",
            proof(without("c3", "htm"), json!({})),
            "htm does not match",
        ),
        (
            "no iat (check 3)",
            proof(without("c4", "iat"), json!({})),
            "iat is missing",
        ),
        (
            "htm POST (check 8)",
            proof(with("c5", "htm", json!("POST")), json!({})),
            "htm does not match",
        ),
        (
            "htm get (check 8)",
            proof(with("c6", "htm", json!("get")), json!({})),
            "htm does not match",
        ),
        (
            "other path (check 9)",
            proof(
                with("c7", "htu", json!("http://api.example/admin")),
                json!({}),
            ),
            "htu does not match",
        ),
        (
            "other host (check 9)",
            proof(
                with("c8", "htu", json!("http://evil.example/orders")),
                json!({}),
            ),
            "htu does not match",
        ),
        (
            "stale iat (check 11)",
            proof(with("c9", "iat", json!(now() - 120)), json!({})),
            "too old",
        ),
        (
            "future iat (check 11)",
            proof(with("c10", "iat", json!(now() + 120)), json!({})),
            "issued in the future",
        ),
        (
            "iat as text (check 11)",
            proof(with("c11", "iat", json!(now().to_string())), json!({})),
            "iat is missing or not a number",
        ),
        (
            "ath of another token (check 12)",
            proof(with("c12", "ath", json!("AAAA")), json!({})),
            "ath does not match",
        ),
        (
            "crit header (check 5)",
            proof(base("c13"), json!({"crit": ["x"], "x": 1})),
            "critical header",
        ),
    ];
    let requests: Vec<Value> = cases
        .iter()
        .map(|(_, request, _)| request.clone())
        .collect();
    let proofs = keys.proofs(requests);
    for ((case, _, description), proof) in cases.iter().zip(&proofs) {
        let response = dpop_request(&envoy, "/orders", "api.example", &token, proof);
        assert_eq!(response.status, 401, "{case}");
        let challenge = challenge(&response);
        assert!(
            challenge.starts_with("DPoP realm=\"api\", error=\"invalid_dpop_proof\"")
                && challenge.contains(description),
            "{case}: {challenge}"
        );
    }
    // No ath at all (check 12): a proof made without the token.
    let no_ath = keys.proofs(vec![json!({"op": "proof", "pem": keys.client["pem"],
        "token": null, "claims": base("c14")})]);
    let response = dpop_request(&envoy, "/orders", "api.example", &token, &no_ath[0]);
    assert!(
        challenge(&response).contains("has no ath"),
        "{}",
        challenge(&response)
    );
    // The proof done right passes once, then is a replay (§11.1).
    let good = keys.proof(&token, "GET", htu, "good");
    assert_eq!(
        dpop_request(&envoy, "/orders", "api.example", &token, &good).status,
        200
    );
    let again = dpop_request(&envoy, "/orders", "api.example", &token, &good);
    assert_eq!(
        challenge(&again),
        dpop_challenge("invalid_dpop_proof", "DPoP proof has been used before")
    );
}

/// RFC 8725 §3.10 (do not trust `jku`/`x5u`/`jwk` in the header) and §3.1: a token
/// signed by a key its own header points to is refused, and nothing is fetched from the
/// `jku` URL.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc8725_3_10_a_jku_header_is_never_followed() {
    let keys = Keys::new();
    let attacker = Keys::new();
    let idp = support::idp::Idp::start();
    let jwks = json!({"keys": [attacker.issuer["jwk"]]}).to_string();
    idp.set("/jwks.json", support::idp::Reply::json(jwks));
    let envoy = Envoy::start(&config(&keys, json!({}), json!({})));
    let jku = format!("http://127.0.0.1:{}/jwks.json", idp.port);
    for header in [json!({"jku": jku}), json!({"jwk": attacker.issuer["jwk"]})] {
        let forged = attacker.sign_with_header(&claims(json!({})), &header);
        let response = bearer_request(&envoy, "/orders", &forged);
        assert_eq!(response.status, 401, "{header}");
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(idp.hits("/jwks.json"), 0);
}

/// RFC 8725 §3.12 (mutually exclusive validation rules): a DPoP proof is no access token.
/// RFC 7519 §4.1.5: a token not yet valid (`nbf` beyond the skew) is refused.
#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn rfc8725_3_12_a_proof_is_no_access_token_and_rfc7519_4_1_5_nbf_is_enforced() {
    let keys = Keys::new();
    let envoy = Envoy::start(&config(&keys, json!({"dpop": "optional"}), json!({})));
    let token = keys.bound_token();
    let proof = keys.proof(&token, "GET", "http://api.example/orders", "as-token");
    for scheme in ["Bearer", "DPoP"] {
        let response = http(
            envoy.port,
            "GET",
            "/orders",
            &[
                ("host", "api.example"),
                ("authorization", &format!("{scheme} {proof}")),
                ("dpop", &proof),
            ],
        )
        .unwrap();
        assert_eq!(response.status, 401, "{scheme}");
        assert!(
            challenge(&response).contains("error=\"invalid_token\""),
            "{}",
            challenge(&response)
        );
    }
    let later = keys.token(json!({"nbf": now() + 3600}));
    let response = bearer_request(&envoy, "/orders", &later);
    assert_eq!(response.status, 401);
    assert!(
        challenge(&response).contains("token not yet valid"),
        "{}",
        challenge(&response)
    );
}
