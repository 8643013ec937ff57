//! Wycheproof-style signature mutations through Envoy's own crypto (the host path:
//! `verify_signature`, BoringSSL). Wycheproof's messages are arbitrary bytes and a JWS
//! signs `header.payload`, so its vectors cannot be replayed as tokens; instead tokens are
//! signed at test time and their signatures mutated the way Wycheproof's edge cases are
//! (bit flips in r, s or the RSA value; r or s zero or equal to the group order; an RSA
//! value of 0, 1, n - 1, n or s + n; wrong lengths; DER in place of IEEE P1363). Every
//! mutation is refused with 401, the checks went to Envoy (its counter moved once per
//! offered check), and the module alone (`host_crypto: off`) answers the same.
//!
//! One mutation is not a forgery: ECDSA's (r, n - s) is the same signature's "high-s"
//! twin, valid by the ECDSA definition and in RFC 7518, so it is accepted by both paths
//! (tokens with ES* signatures therefore have two spellings; nothing in claimgate keys a
//! decision on the signature text except the token cache, which then holds both).

use crate::support::tokens::claims as standard_claims;
use crate::support::{envoy_checks, uncached_keys_config, Envoy};
use base64ct::{Base64UrlUnpadded, Encoding};
use claimgate::jwks::Alg;
use claimgate::mint::SigningKey;
use serde_json::{json, Value};

const ISSUER: &str = "https://login.example.com/";
const AUDIENCE: &str = "https://api.example.com";

const P256_ORDER: &str = "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551";
const P384_ORDER: &str = "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect()
}

/// `a - b` for big-endian numbers of the same length, `a >= b`.
fn sub(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = 0_i16;
    for index in (0..out.len()).rev() {
        let mut value = i16::from(out[index]) - i16::from(b[index]) - borrow;
        borrow = i16::from(value < 0);
        if value < 0 {
            value += 256;
        }
        out[index] = value as u8;
    }
    assert_eq!(borrow, 0);
    out
}

/// `a + b` for big-endian numbers of the same length; `None` on overflow.
fn add(a: &[u8], b: &[u8]) -> Option<Vec<u8>> {
    let mut out = a.to_vec();
    let mut carry = 0_u16;
    for index in (0..out.len()).rev() {
        let value = u16::from(out[index]) + u16::from(b[index]) + carry;
        out[index] = value as u8;
        carry = value >> 8;
    }
    (carry == 0).then_some(out)
}

fn claims() -> Value {
    standard_claims(ISSUER, AUDIENCE, json!({"sub": "mutations"}))
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[bit / 8] ^= 0x80 >> (bit % 8);
    out
}

/// DER `ECDSA-Sig-Value` of `r || s` (what X.509 uses; a JWS must not).
fn der(r: &[u8], s: &[u8]) -> Vec<u8> {
    let integer = |value: &[u8]| {
        let start = value
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(value.len() - 1);
        let mut content = value[start..].to_vec();
        if content[0] & 0x80 != 0 {
            content.insert(0, 0);
        }
        let mut out = vec![0x02, content.len() as u8];
        out.extend(content);
        out
    };
    let mut body = integer(r);
    body.extend(integer(s));
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// Mutations of one signature: (case, signature, expected status, offered to the host).
fn mutations(alg: Alg, key: &SigningKey, signature: &[u8]) -> Vec<(String, Vec<u8>, u16, bool)> {
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    let size = signature.len();
    match alg {
        Alg::Es256 | Alg::Es384 => {
            let half = size / 2;
            let order = hex(if alg == Alg::Es256 {
                P256_ORDER
            } else {
                P384_ORDER
            });
            let (r, s) = signature.split_at(half);
            let zero = vec![0; half];
            let join = |r: &[u8], s: &[u8]| [r, s].concat();
            cases.extend([
                (
                    "bit flipped in r".to_owned(),
                    flip(signature, 8 * half - 1),
                    401,
                ),
                (
                    "bit flipped in s".to_owned(),
                    flip(signature, 8 * half + 3),
                    401,
                ),
                ("r = 0".to_owned(), join(&zero, s), 401),
                ("s = 0".to_owned(), join(r, &zero), 401),
                ("r = s = 0".to_owned(), vec![0; size], 401),
                ("r = n".to_owned(), join(&order, s), 401),
                ("s = n".to_owned(), join(r, &order), 401),
                (
                    "r = n - 1".to_owned(),
                    join(&sub(&order, &[&zero[1..], &[1]].concat()), s),
                    401,
                ),
                ("r and s swapped".to_owned(), join(s, r), 401),
                ("truncated".to_owned(), signature[..size - 1].to_vec(), 401),
                (
                    "a zero byte appended".to_owned(),
                    [signature, &[0]].concat(),
                    401,
                ),
                ("DER instead of P1363".to_owned(), der(r, s), 401),
                (
                    "high-s twin (r, n - s)".to_owned(),
                    join(r, &sub(&order, s)),
                    200,
                ),
            ]);
            if let Some(r_plus_n) = add(r, &order) {
                cases.push(("r + n".to_owned(), join(&r_plus_n, s), 401));
            }
        }
        _ => {
            let n = Base64UrlUnpadded::decode_vec(key.public_jwk()["n"].as_str().unwrap()).unwrap();
            let n = [vec![0; size.saturating_sub(n.len())], n].concat();
            assert_eq!(n.len(), size);
            let one = [vec![0; size - 1], vec![1]].concat();
            cases.extend([
                ("first bit flipped".to_owned(), flip(signature, 0), 401),
                (
                    "middle bit flipped".to_owned(),
                    flip(signature, 4 * size + 1),
                    401,
                ),
                (
                    "last bit flipped".to_owned(),
                    flip(signature, 8 * size - 1),
                    401,
                ),
                ("s = 0".to_owned(), vec![0; size], 401),
                ("s = 1".to_owned(), one.clone(), 401),
                ("s = n - 1".to_owned(), sub(&n, &one), 401),
                ("s = n".to_owned(), n.clone(), 401),
                ("all 0xff".to_owned(), vec![0xff; size], 401),
                ("truncated".to_owned(), signature[1..].to_vec(), 401),
                (
                    "a leading zero added".to_owned(),
                    [&[0], signature].concat(),
                    401,
                ),
            ]);
            if let Some(plus_n) = add(signature, &n) {
                cases.push(("s + n".to_owned(), plus_n, 401));
            }
        }
    }
    cases
        .into_iter()
        .map(|(case, sig, status)| {
            // The module hands ECDSA signatures of the wrong length to nobody; RSA ones
            // always go to the host when it checks RSA.
            let offered = match alg {
                Alg::Es256 | Alg::Es384 => sig.len() == size,
                _ => true,
            };
            (case, sig, status, offered)
        })
        .collect()
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn wycheproof_style_signature_mutations_are_refused_by_envoys_crypto_and_the_module_alike() {
    let algs = [Alg::Rs256, Alg::Rs512, Alg::Es256, Alg::Es384];
    let keys: Vec<SigningKey> = algs
        .into_iter()
        .map(|alg| SigningKey::generate(alg, Some(alg.name())).unwrap())
        .collect();
    let mut requests = Vec::new();
    for key in &keys {
        let token = key.sign(&claims()).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
        requests.push((key.alg(), "valid".to_owned(), token.clone(), 200, true));
        for (case, mutated, status, offered) in mutations(key.alg(), key, &signature) {
            let token = format!("{signed}.{}", Base64UrlUnpadded::encode_string(&mutated));
            requests.push((key.alg(), case, token, status, offered));
        }
    }
    let config = |host_crypto: &str| uncached_keys_config(ISSUER, AUDIENCE, &keys, host_crypto);
    let mut statuses = Vec::new();
    for host_crypto in ["auto", "off"] {
        let envoy = Envoy::start(&config(host_crypto));
        // Under `auto` the counter must exist (a renamed or missing stat fails here
        // instead of reading as 0); under `off` it is absent or 0.
        let checks = |envoy: &Envoy| match host_crypto {
            "auto" => envoy_checks(envoy).expect("claimgate.signatures.checked_by_envoy"),
            _ => envoy_checks(envoy).unwrap_or(0),
        };
        let before = checks(&envoy);
        let mut offered_checks = 0;
        let mut seen = Vec::new();
        for (alg, case, token, status, offered) in &requests {
            let bearer = format!("Bearer {token}");
            let response = envoy.request("GET", "/resource", &[("authorization", &bearer)]);
            assert_eq!(
                response.status, *status,
                "{host_crypto} {alg} {case}: {}",
                response.body
            );
            seen.push(response.status);
            offered_checks += u64::from(*offered);
        }
        let checked = checks(&envoy) - before;
        if host_crypto == "auto" {
            assert_eq!(checked, offered_checks, "{}", envoy.log());
        } else {
            assert_eq!(before + checked, 0);
        }
        println!(
            "host_crypto {host_crypto}: {} requests, {checked} signature checks by Envoy",
            requests.len()
        );
        statuses.push(seen);
    }
    assert_eq!(
        statuses[0], statuses[1],
        "Envoy's crypto and the module disagree"
    );
}
