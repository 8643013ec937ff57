//! Signature checks by the host's own crypto library.
//!
//! Envoy offers its BoringSSL to Wasm modules as the `verify_signature` foreign function
//! (protobuf arguments: hash name, DER `SubjectPublicKeyInfo`, signature, signed text;
//! `EVP_DigestVerify` with the key's default padding). An RS256 check done there is several
//! times cheaper than the same arithmetic compiled to Wasm (`benches/results/`), which is what
//! decides the every-token-new case. Only RSASSA-PKCS1-v1_5 (RS*) and ECDSA (ES256, ES384, ES512)
//! map onto that call; PS*, EdDSA and HMAC always stay in the module.
//!
//! The host is trusted only after a self-test per key family, run when the plugin starts: a
//! known-good signature must be accepted *and* the same signature with one bit flipped must
//! be refused. A family that fails is checked in the module. At request time only a
//! well-formed "valid" answer accepts; a malformed answer or a failed call falls back to the
//! in-module check, so the host can make a check faster but never make a bad token pass.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

use super::{parse_jwk, Alg, KeyFamily, SymmetricKeys};

/// Envoy's `verify_signature` foreign function, seen from the core: protobuf-encoded
/// `VerifySignatureArguments` in, `VerifySignatureResult` out. `None` when the host has no
/// such function or refused the call.
pub trait ForeignVerifier {
    fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>>;
}

/// The host's signature checks, with the key families that passed the self-test.
pub struct HostCrypto {
    host: Box<dyn ForeignVerifier>,
    rsa: bool,
    p256: bool,
    p384: bool,
    p521: bool,
}

impl fmt::Debug for HostCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostCrypto")
            .field("algorithms", &self.algorithms())
            .finish()
    }
}

/// Known-good tokens and their public keys, one per family the host may check.
const SELF_TEST_VECTORS: &str = include_str!("host_self_test.json");

impl HostCrypto {
    /// Runs the self-test against `host` and keeps the families it passed.
    pub fn probe(host: Box<dyn ForeignVerifier>) -> HostCrypto {
        let mut crypto = HostCrypto {
            host,
            rsa: false,
            p256: false,
            p384: false,
            p521: false,
        };
        crypto.rsa = crypto.passes_self_test(Alg::Rs256);
        crypto.p256 = crypto.passes_self_test(Alg::Es256);
        crypto.p384 = crypto.passes_self_test(Alg::Es384);
        crypto.p521 = crypto.passes_self_test(Alg::Es512);
        crypto
    }

    /// The algorithms the host checks (empty: everything stays in the module).
    pub fn algorithms(&self) -> Vec<Alg> {
        Alg::ALL
            .into_iter()
            .filter(|alg| self.offers(*alg))
            .collect()
    }

    /// The host's answer for one signature: `None` when it does not check `alg` or gave no
    /// usable answer (the caller checks in the module then).
    pub(super) fn check(
        &self,
        alg: Alg,
        public_key_der: &[u8],
        signed_data: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        if !self.offers(alg) {
            return None;
        }
        self.ask(alg, public_key_der, signed_data, signature)
    }

    /// Whether `alg` maps onto the host's check and its family passed the self-test.
    fn offers(&self, alg: Alg) -> bool {
        hash_name(alg).is_some()
            && match alg.family() {
                KeyFamily::Rsa => self.rsa,
                KeyFamily::P256 => self.p256,
                KeyFamily::P384 => self.p384,
                KeyFamily::P521 => self.p521,
                KeyFamily::Ed25519 | KeyFamily::Hmac => false,
            }
    }

    /// Calls the host for one signature, whatever the self-test said.
    fn ask(
        &self,
        alg: Alg,
        public_key_der: &[u8],
        signed_data: &[u8],
        signature: &[u8],
    ) -> Option<bool> {
        let hash = hash_name(alg)?;
        let der_signature;
        let signature = match alg.family() {
            KeyFamily::P256 | KeyFamily::P384 | KeyFamily::P521 => {
                let Some(der) = ecdsa_signature_der(alg, signature) else {
                    return Some(false);
                };
                der_signature = der;
                der_signature.as_slice()
            }
            _ => signature,
        };
        let arguments = encode_arguments(hash, public_key_der, signature, signed_data);
        decode_result(&self.host.verify_signature(&arguments)?)
    }

    /// Whether the host accepts the known-good token of `alg` and refuses it with one
    /// signature bit flipped.
    fn passes_self_test(&self, alg: Alg) -> bool {
        let Some((der, signed_data, signature)) = self_test_vector(alg) else {
            return false;
        };
        let mut tampered = signature.clone();
        if let Some(byte) = tampered.get_mut(7) {
            *byte ^= 0x10;
        }
        self.ask(alg, &der, signed_data.as_bytes(), &signature) == Some(true)
            && self.ask(alg, &der, signed_data.as_bytes(), &tampered) == Some(false)
    }
}

/// The hash name Envoy's `verify_signature` takes for `alg`; `None` for algorithms that
/// do not map onto it (PS* need a padding it cannot select; EdDSA takes no hash; HMAC is
/// symmetric).
fn hash_name(alg: Alg) -> Option<&'static str> {
    match alg {
        Alg::Rs256 | Alg::Es256 => Some("sha256"),
        Alg::Rs384 | Alg::Es384 => Some("sha384"),
        Alg::Rs512 | Alg::Es512 => Some("sha512"),
        _ => None,
    }
}

/// The self-test key (as DER) and token (signed part and signature) for `alg`.
fn self_test_vector(alg: Alg) -> Option<(Vec<u8>, String, Vec<u8>)> {
    let vectors: Value = serde_json::from_str(SELF_TEST_VECTORS).ok()?;
    let vector = vectors.get(alg.name())?;
    let key = parse_jwk(vector.get("jwk")?, SymmetricKeys::Refused).ok()?;
    let token = vector.get("token")?.as_str()?;
    let (signed_data, signature) = token.rsplit_once('.')?;
    let signature = Base64UrlUnpadded::decode_vec(signature).ok()?;
    Some((key.host_key()?.to_vec(), signed_data.to_owned(), signature))
}

/// `VerifySignatureArguments { hash_function = 1; public_key = 2; signature = 3; text = 4 }`.
fn encode_arguments(hash: &str, public_key_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(hash.len() + public_key_der.len() + signature.len() + text.len() + 16);
    for (field, bytes) in [
        (1_u8, hash.as_bytes()),
        (2, public_key_der),
        (3, signature),
        (4, text),
    ] {
        out.push((field << 3) | 2);
        push_varint(&mut out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }
    out
}

fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `VerifySignatureResult { bool result = 1; string error = 2; }`: `Some(true)` only for a
/// well-formed message whose `result` is true; `None` for anything malformed.
fn decode_result(mut bytes: &[u8]) -> Option<bool> {
    let mut result = false;
    while !bytes.is_empty() {
        let key = read_varint(&mut bytes)?;
        match (key >> 3, key & 7) {
            (1, 0) => {
                result = match read_varint(&mut bytes)? {
                    0 => false,
                    1 => true,
                    _ => return None,
                }
            }
            (_, 0) => {
                read_varint(&mut bytes)?;
            }
            (_, 2) => {
                let len = usize::try_from(read_varint(&mut bytes)?).ok()?;
                bytes = bytes.get(len..)?;
            }
            _ => return None,
        }
    }
    Some(result)
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// DER `SubjectPublicKeyInfo` of an RSA key (RFC 3279 §2.3.1).
pub(super) fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Vec<u8> {
    const RSA_ENCRYPTION: &[u8] = &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut integers = der_integer(modulus);
    integers.extend(der_integer(exponent));
    let mut key = vec![0x00];
    key.extend(der(0x30, &integers));
    spki(RSA_ENCRYPTION, &key)
}

/// DER `SubjectPublicKeyInfo` of a P-256, P-384 or P-521 key (RFC 5480), from its coordinates.
pub(super) fn ec_public_key_der(family: KeyFamily, x: &[u8], y: &[u8]) -> Option<Vec<u8>> {
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let (curve, size): (&[u8], usize) = match family {
        KeyFamily::P256 => (
            &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            32,
        ),
        KeyFamily::P384 => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48),
        KeyFamily::P521 => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66),
        _ => return None,
    };
    if x.len() != size || y.len() != size {
        return None;
    }
    let mut algorithm = EC_PUBLIC_KEY.to_vec();
    algorithm.extend_from_slice(curve);
    let mut point = vec![0x00, 0x04];
    point.extend_from_slice(x);
    point.extend_from_slice(y);
    Some(spki(&algorithm, &point))
}

fn spki(algorithm: &[u8], bit_string: &[u8]) -> Vec<u8> {
    let mut body = der(0x30, algorithm);
    body.extend(der(0x03, bit_string));
    der(0x30, &body)
}

/// JWS ECDSA signatures are `r || s` (RFC 7518 §3.4); BoringSSL wants DER `ECDSA-Sig-Value`.
fn ecdsa_signature_der(alg: Alg, raw: &[u8]) -> Option<Vec<u8>> {
    let size = match alg {
        Alg::Es256 => 32,
        Alg::Es384 => 48,
        Alg::Es512 => 66,
        _ => return None,
    };
    if raw.len() != 2 * size {
        return None;
    }
    let (r, s) = raw.split_at(size);
    let mut integers = der_integer(r);
    integers.extend(der_integer(s));
    Some(der(0x30, &integers))
}

/// A DER INTEGER from big-endian unsigned bytes: minimal, with a zero byte when the top
/// bit is set.
fn der_integer(unsigned: &[u8]) -> Vec<u8> {
    let start = unsigned
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(unsigned.len());
    let digits = unsigned.get(start..).unwrap_or(&[]);
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits.first().is_none_or(|first| first & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    der(0x02, &content)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 4);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        out.push(0x82);
        out.extend_from_slice(&(len.min(0xffff) as u16).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::SignatureChecks;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Decodes the arguments and checks them with the module's own verifiers, so the
    /// encoding is tested end to end on the host (Envoy's BoringSSL is tested in tests/).
    struct ModuleAsHost {
        calls: Rc<Cell<usize>>,
    }

    fn decode_arguments(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut fields = Vec::new();
        while !bytes.is_empty() {
            let key = read_varint(&mut bytes).unwrap();
            assert_eq!(key & 7, 2);
            let len = read_varint(&mut bytes).unwrap() as usize;
            fields.push(bytes[..len].to_vec());
            bytes = &bytes[len..];
        }
        fields
    }

    /// Reads a DER TLV, returning (tag, content, rest).
    fn tlv(bytes: &[u8]) -> (u8, &[u8], &[u8]) {
        let (len, header) = match bytes[1] {
            0x81 => (bytes[2] as usize, 3),
            0x82 => (u16::from_be_bytes([bytes[2], bytes[3]]) as usize, 4),
            short => (short as usize, 2),
        };
        (
            bytes[0],
            &bytes[header..header + len],
            &bytes[header + len..],
        )
    }

    fn unsigned(integer: &[u8]) -> Vec<u8> {
        let (tag, content, _) = tlv(integer);
        assert_eq!(tag, 0x02);
        let trimmed: Vec<u8> = content.iter().copied().skip_while(|b| *b == 0).collect();
        trimmed
    }

    impl ForeignVerifier for ModuleAsHost {
        fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>> {
            self.calls.set(self.calls.get() + 1);
            let fields = decode_arguments(arguments);
            let hash = std::str::from_utf8(&fields[0]).unwrap();
            let (tag, spki, _) = tlv(&fields[1]);
            assert_eq!(tag, 0x30);
            let (_, algorithm, rest) = tlv(spki);
            let (_, bits, _) = tlv(rest);
            let is_rsa = algorithm.starts_with(&[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7]);
            let alg;
            let jwk;
            let mut signature = fields[2].clone();
            if is_rsa {
                let (_, integers, _) = tlv(&bits[1..]);
                let (_, _, e_rest) = tlv(integers);
                let n = unsigned(integers);
                let e = unsigned(e_rest);
                alg = match hash {
                    "sha256" => "RS256",
                    "sha384" => "RS384",
                    _ => "RS512",
                };
                jwk = serde_json::json!({"kty": "RSA", "n": Base64UrlUnpadded::encode_string(&n),
                    "e": Base64UrlUnpadded::encode_string(&e)});
            } else {
                let size = (bits.len() - 2) / 2;
                let (crv, name) = match size {
                    32 => ("P-256", "ES256"),
                    48 => ("P-384", "ES384"),
                    _ => ("P-521", "ES512"),
                };
                alg = name;
                jwk = serde_json::json!({"kty": "EC", "crv": crv,
                    "x": Base64UrlUnpadded::encode_string(&bits[2..2 + size]),
                    "y": Base64UrlUnpadded::encode_string(&bits[2 + size..])});
                let (_, integers, _) = tlv(&signature);
                let (_, _, s_rest) = tlv(integers);
                let pad = |v: Vec<u8>| {
                    let mut out = vec![0; size - v.len()];
                    out.extend(v);
                    out
                };
                let mut raw = pad(unsigned(integers));
                raw.extend(pad(unsigned(s_rest)));
                signature = raw;
            }
            let key = parse_jwk(&jwk, SymmetricKeys::Refused).unwrap();
            let valid = key.verify(
                Alg::from_name(alg).unwrap(),
                &fields[3],
                &signature,
                &SignatureChecks::default(),
            );
            // What Envoy sends: `result` only when true, an error text when false.
            Some(if valid {
                vec![0x08, 0x01]
            } else {
                let mut out = vec![0x12, 5];
                out.extend_from_slice(b"nope!");
                out
            })
        }
    }

    struct FixedAnswer(Option<Vec<u8>>);

    impl ForeignVerifier for FixedAnswer {
        fn verify_signature(&self, _arguments: &[u8]) -> Option<Vec<u8>> {
            self.0.clone()
        }
    }

    #[test]
    fn a_correct_host_passes_the_self_test_for_rsa_and_every_curve() {
        let calls = Rc::new(Cell::new(0));
        let crypto = HostCrypto::probe(Box::new(ModuleAsHost {
            calls: Rc::clone(&calls),
        }));
        assert_eq!(
            crypto.algorithms(),
            vec![
                Alg::Rs256,
                Alg::Rs384,
                Alg::Rs512,
                Alg::Es256,
                Alg::Es384,
                Alg::Es512
            ]
        );
        assert_eq!(calls.get(), 8);
    }

    #[test]
    fn a_host_that_accepts_everything_or_answers_nonsense_is_never_used() {
        for answer in [
            Some(vec![0x08, 0x01]),
            Some(vec![0x08]),
            Some(vec![0xff; 3]),
            Some(Vec::new()),
            None,
        ] {
            let crypto = HostCrypto::probe(Box::new(FixedAnswer(answer.clone())));
            assert!(crypto.algorithms().is_empty(), "{answer:?}");
            assert_eq!(crypto.check(Alg::Rs256, b"k", b"d", b"s"), None);
        }
    }

    #[test]
    fn only_a_well_formed_true_accepts() {
        assert_eq!(decode_result(&[0x08, 0x01]), Some(true));
        assert_eq!(decode_result(&[0x12, 0x01, b'x', 0x08, 0x01]), Some(true));
        assert_eq!(decode_result(&[0x08, 0x00]), Some(false));
        assert_eq!(decode_result(&[]), Some(false));
        assert_eq!(decode_result(&[0x12, 0x02, b'n', b'o']), Some(false));
        assert_eq!(decode_result(&[0x08]), None);
        assert_eq!(decode_result(&[0x12, 0x09, b'x']), None);
        assert_eq!(decode_result(&[0x0d, 1, 0, 0, 0]), None);
        assert_eq!(decode_result(&[0x08, 0x02]), None);
        assert_eq!(decode_result(&[0x08, 0x81, 0x00]), Some(true));
    }

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_integer(&[0, 0, 0x7f]), vec![0x02, 1, 0x7f]);
        assert_eq!(der_integer(&[0x80]), vec![0x02, 2, 0, 0x80]);
        assert_eq!(der_integer(&[0, 0]), vec![0x02, 1, 0]);
        assert_eq!(der_integer(&[1, 0, 1]), vec![0x02, 3, 1, 0, 1]);
        let long = der(0x04, &[7; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(&der(0x04, &[7; 200])[..3], &[0x04, 0x81, 200]);
    }

    #[test]
    fn ecdsa_signatures_of_the_wrong_length_are_refused_without_asking_the_host() {
        let calls = Rc::new(Cell::new(0));
        let crypto = HostCrypto::probe(Box::new(ModuleAsHost {
            calls: Rc::clone(&calls),
        }));
        let before = calls.get();
        assert_eq!(crypto.check(Alg::Es256, b"k", b"d", &[1; 63]), Some(false));
        assert_eq!(crypto.check(Alg::Es384, b"k", b"d", &[1; 64]), Some(false));
        assert_eq!(crypto.check(Alg::Es512, b"k", b"d", &[1; 128]), Some(false));
        assert_eq!(calls.get(), before);
        assert_eq!(crypto.check(Alg::Ps256, b"k", b"d", &[1; 256]), None);
        assert_eq!(crypto.check(Alg::EdDsa, b"k", b"d", &[1; 64]), None);
    }
}
