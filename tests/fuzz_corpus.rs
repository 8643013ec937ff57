//! The fuzz harnesses (`tests/fuzz/src/lib.rs`) under plain `cargo test`: every committed seed
//! of every target is replayed through its harness, the `verify` seeds are shown to reach
//! both acceptance and refusal, and the harness's independent signature check is shown to
//! tell a right key from a wrong one (so its "never accept an unsigned token" assertion
//! can fail).
//!
//! `cargo test --test fuzz_corpus -- --ignored write_fuzz_seed_corpora` rewrites the
//! generated seeds (`tests/fuzz/corpus/<target>/seed-*`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

#[path = "fuzz/src/lib.rs"]
#[allow(dead_code, reason = "the corpus test uses only some of the harness")]
mod harness;

use std::fs;
use std::path::{Path, PathBuf};

use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::{json, Map, Value};

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 6] = [
    ("token_parse", harness::token_parse),
    ("verify", |data| {
        harness::verify(data);
    }),
    ("path_route", harness::path_route),
    ("config", harness::config),
    ("policy", harness::policy),
    ("keysource", harness::keysource),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|err| panic!("tests/fuzz/corpus/{target}: {err}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("seed-"))
        })
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn every_committed_seed_passes_its_fuzz_harness() {
    let mut total_bytes = 0;
    for (target, harness) in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 3, "{target}: only {} seeds", seeds.len());
        for (name, data) in &seeds {
            total_bytes += data.len();
            let outcome = std::panic::catch_unwind(|| harness(data));
            assert!(outcome.is_ok(), "{target}/{name} broke a fuzz property");
        }
    }
    assert!(
        total_bytes < 1 << 20,
        "seed corpora are {total_bytes} bytes"
    );
}

#[test]
fn verify_seeds_reach_acceptance_for_every_key_family_and_refusals() {
    let mut accepted = Vec::new();
    let mut refused = 0;
    for (name, data) in seeds("verify") {
        match harness::verify(&data) {
            Some(token) => accepted.push(token.alg()),
            None => {
                assert!(!name.contains("-valid-"), "{name} should verify");
                refused += 1;
            }
        }
    }
    for alg in [
        Alg::Rs256,
        Alg::Ps256,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Hs256,
    ] {
        assert!(accepted.contains(&alg), "no accepted {alg} seed");
    }
    assert!(refused >= 3, "only {refused} refused seeds");
}

#[test]
fn the_independent_signature_check_tells_the_signing_key_from_another() {
    for alg in [
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs512,
    ] {
        let key = SigningKey::generate(alg, Some("k")).unwrap();
        let other = SigningKey::generate(alg, Some("k")).unwrap();
        let token = key.sign(&claims()).unwrap();
        let jwks = |key: &SigningKey| json!({ "keys": [key.public_jwk()] });
        assert!(harness::independently_signed(&token, &jwks(&key)), "{alg}");
        assert!(
            !harness::independently_signed(&token, &jwks(&other)),
            "{alg}"
        );
        // A kid that does not match, or a key that names another alg, is not a signer.
        let mut renamed = key.public_jwk();
        renamed["kid"] = json!("other");
        assert!(!harness::independently_signed(
            &token,
            &json!({ "keys": [renamed] })
        ));
        let mut tampered = token.clone().into_bytes();
        let at = tampered.len() - 3;
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(
            !harness::independently_signed(&tampered, &jwks(&key)),
            "{alg}"
        );
    }
    let demo = demo_key();
    let token = demo.sign(&claims()).unwrap();
    let public = json!({ "keys": [demo.public_jwk()] });
    assert!(harness::independently_signed(&token, &public));
    // The RSA public key used as an HMAC secret (alg confusion) is not a signer.
    let n = demo.public_jwk()["n"].as_str().unwrap().to_owned();
    let confused = json!({ "keys": [{ "kty": "oct", "k": n }] });
    let mut header = Map::new();
    header.insert("alg".into(), "HS256".into());
    let forged = forge_hs256(&claims(), n.as_bytes(), header);
    assert!(!harness::independently_signed(&forged, &confused));
}

fn claims() -> Value {
    json!({
        "iss": harness::VERIFY_ISSUER,
        "aud": harness::VERIFY_AUDIENCE,
        "sub": "fuzz|seed",
        "iat": harness::NOW - 60,
        "exp": harness::NOW + 3600,
    })
}

fn demo_key() -> SigningKey {
    let text = include_str!("../filter-config/demo/private-demo-only.jwk.json");
    SigningKey::from_jwk(&serde_json::from_str(text).unwrap()).unwrap()
}

/// An HS256 token over `claims` with `secret` (the bytes given, not base64url-decoded),
/// made by the harness's reference HMAC.
fn forge_hs256(claims: &Value, secret: &[u8], header: Map<String, Value>) -> String {
    let mut token = Base64UrlUnpadded::encode_string(Value::Object(header).to_string().as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(
        claims.to_string().as_bytes(),
    ));
    let mac = harness::hmac_reference("HS256", secret, token.as_bytes());
    token.push('.');
    token.push_str(&Base64UrlUnpadded::encode_string(&mac));
    token
}

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn nul_joined(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut data = first.to_vec();
    data.push(0);
    data.extend_from_slice(second);
    data
}

/// Rewrites the generated seed corpora. Keys are new on every run (except the demo key),
/// so run it only when the formats change, and commit the result.
#[test]
#[ignore = "writes tests/fuzz/corpus; run by hand"]
fn write_fuzz_seed_corpora() {
    // verify: JWKS NUL token.
    let mut keys: Vec<(&str, SigningKey)> = vec![("rs256", demo_key())];
    for (name, alg) in [
        ("ps256", Alg::Ps256),
        ("es256", Alg::Es256),
        ("es384", Alg::Es384),
        ("eddsa", Alg::EdDsa),
        ("hs256", Alg::Hs256),
        ("hs512", Alg::Hs512),
    ] {
        keys.push((name, SigningKey::generate(alg, Some(name)).unwrap()));
    }
    for (name, key) in &keys {
        let token = key.sign(&claims()).unwrap();
        let jwks = json!({ "keys": [key.public_jwk()] }).to_string();
        write(
            "verify",
            &format!("{name}-valid-token"),
            &nul_joined(jwks.as_bytes(), token.as_bytes()),
        );
    }
    let (_, es256) = &keys[2];
    let (_, eddsa) = &keys[4];
    let two_keys = json!({ "keys": [es256.public_jwk(), eddsa.public_jwk()] }).to_string();
    let token = eddsa.sign(&claims()).unwrap();
    write(
        "verify",
        "two-keys-valid-token",
        &nul_joined(two_keys.as_bytes(), token.as_bytes()),
    );
    let expired = {
        let mut claims = claims();
        claims["exp"] = json!(harness::NOW - 10_000);
        es256.sign(&claims).unwrap()
    };
    write(
        "verify",
        "es256-expired",
        &nul_joined(two_keys.as_bytes(), expired.as_bytes()),
    );
    let demo = demo_key();
    let n = demo.public_jwk()["n"].as_str().unwrap().to_owned();
    let mut header = Map::new();
    header.insert("alg".into(), "HS256".into());
    header.insert("kid".into(), "aethermarket-demo-2026".into());
    let confusion = forge_hs256(&claims(), n.as_bytes(), header);
    let public = json!({ "keys": [demo.public_jwk()] }).to_string();
    write(
        "verify",
        "alg-confusion-hs256-with-rsa-key",
        &nul_joined(public.as_bytes(), confusion.as_bytes()),
    );
    let none = format!(
        "{}.{}.",
        Base64UrlUnpadded::encode_string(br#"{"alg":"none"}"#),
        Base64UrlUnpadded::encode_string(claims().to_string().as_bytes())
    );
    write(
        "verify",
        "alg-none",
        &nul_joined(public.as_bytes(), none.as_bytes()),
    );

    // token_parse: requests.
    let token = demo.sign(&claims()).unwrap();
    for (name, request) in [
        (
            "bearer",
            format!("GET\n/\nlocalhost\nauthorization: Bearer {token}\n"),
        ),
        (
            "query",
            format!("GET\n/p?a=1&access_token={token}\nlocalhost\n"),
        ),
        (
            "cookie",
            format!("GET\n/\nlocalhost\ncookie: a=1; at=\"{token}\"\nx-token: {token}\n"),
        ),
        (
            "two-tokens",
            format!("GET\n/?access_token=x.y.z\nlocalhost\nauthorization: bearer {token}\n"),
        ),
    ] {
        write("token_parse", name, request.as_bytes());
    }
    write("token_parse", "bare-token", token.as_bytes());

    // path_route: method byte, host byte, path.
    for (index, path) in [
        "/public/catalog",
        "/users/auth0%7C42/orders",
        "/admin//users?x=/..",
        "/public/%2e%2e/admin/users",
        "/public/%2e%2e;/admin/users",
        "/deals/exclusive",
        "/streaming/a/b/c",
    ]
    .iter()
    .enumerate()
    {
        let mut data = vec![index as u8, (index / 2) as u8];
        data.extend_from_slice(path.as_bytes());
        write("path_route", &format!("path-{index}"), &data);
    }

    // config: the shipped configurations and a small one of each key source.
    write(
        "config",
        "aethermarket.json",
        include_bytes!("../filter-config/aethermarket.json"),
    );
    write(
        "config",
        "remote-auth0.json",
        include_bytes!("../filter-config/remote-auth0.json"),
    );
    let small = json!({
        "realm": "r",
        "providers": [{
            "name": "p", "issuer": "https://i/", "audiences": ["a"], "algorithms": ["ES256", "HS256"],
            "jwks": {"inline": {"keys": [es256.public_jwk()]}},
            "from": [{"query": "access_token"}, {"cookie": "at"}]
        }],
        "rules": [
            {"name": "t", "match": {"template": "/u/{id}/**", "hosts": ["*.example.com"]},
             "when": {"any": [{"claim": "sub", "equals": {"capture": "id"}},
                              {"claim": "roles", "contains": "admin"}]}},
            {"name": "re", "match": {"regex": "/r/[0-9]+"}, "access": "public"}
        ],
        "default_access": "authenticated"
    });
    write("config", "small.json", small.to_string().as_bytes());

    // policy: claims NUL request.
    let gold = json!({
        "sub": "auth0|42",
        "https://aethermarket.com/loyalty_tier": "Gold",
        "https://aethermarket.com/region": "EU",
        "permissions": ["admin:read"],
        "scope": "orders:write",
        "subscription_tier": "premium",
        "subscription_expires_at": harness::NOW + 100,
        "email": "a@example.com"
    })
    .to_string();
    let blocked = json!({"sub": "auth0|1", "https://aethermarket.com/blocked": true}).to_string();
    for (name, claims, request) in [
        (
            "gold-deals",
            gold.as_str(),
            "GET\n/deals/exclusive\napi\nx-user-id: spoofed\n",
        ),
        (
            "own-orders",
            gold.as_str(),
            "GET\n/users/auth0%7C42/orders\napi\nx-loyalty-tier: Platinum\n",
        ),
        (
            "regional",
            gold.as_str(),
            "GET\n/offers/regional/x\napi\nx-geo-region: EU\n",
        ),
        ("blocked", blocked.as_str(), "GET\n/products\napi\n"),
        (
            "no-token-public",
            "null",
            "GET\n/public/catalog\napi\nx-auth-provider: google\n",
        ),
        (
            "no-token-admin",
            "null",
            "POST\n/admin/users\napi\nx_user_id: auth0|ceo\n",
        ),
    ] {
        write(
            "policy",
            name,
            &nul_joined(claims.as_bytes(), request.as_bytes()),
        );
    }

    // keysource: cache-control line, body.
    let jwks = json!({ "keys": [demo.public_jwk(), es256.public_jwk()] }).to_string();
    write(
        "keysource",
        "jwks",
        format!("max-age=600\n{jwks}").as_bytes(),
    );
    let mixed = json!({ "keys": [keys[5].1.public_jwk(), eddsa.public_jwk(), {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}] }).to_string();
    write(
        "keysource",
        "jwks-with-secret",
        format!("no-cache\n{mixed}").as_bytes(),
    );
    let discovery = json!({
        "issuer": harness::DISCOVERY_ISSUER,
        "jwks_uri": "https://idp.fuzz.example/.well-known/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"]
    })
    .to_string();
    write(
        "keysource",
        "discovery",
        format!("max-age=\"60\"\n{discovery}").as_bytes(),
    );
    let cross = json!({
        "issuer": harness::DISCOVERY_ISSUER,
        "jwks_uri": "https://cdn.example:8443/keys?x=1"
    })
    .to_string();
    write(
        "keysource",
        "discovery-cross-origin",
        format!("\n{cross}").as_bytes(),
    );
}
