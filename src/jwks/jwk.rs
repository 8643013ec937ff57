//! Parsing one JWK into a [`VerificationKey`], or saying why it cannot be used: not a
//! signing key, unsupported, symmetric where only public keys are allowed, too weak, or
//! malformed.

use std::fmt;
use std::sync::Arc;

use jwt_compact::jwk::JsonWebKey;
use serde_json::Value;

use super::key::KeyMaterial;
use super::{ecdsa, host, Alg, KeyFamily, RsaVerifier, SymmetricKeys, VerificationKey, P384, P521};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// Smallest HMAC secret accepted at all, in bytes: RFC 7518 §3.2 wants at least the hash
/// size, and HS256's is the smallest. A secret serves HS384 and HS512 only from 48 and 64
/// bytes ([`Alg::min_hmac_bytes`]): with `alg` set, a shorter one is refused; without,
/// it is used only for the algorithms its length allows ([`VerificationKey::fits`]).
pub const MIN_HMAC_BYTES: usize = 32;

/// Why one JWK of a set was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkProblem {
    /// Not a signing key (`use` other than `sig`, or `key_ops` without `verify`): ignored by design.
    NotForSignatures(String),
    /// A key type, curve or algorithm claimgate does not verify with.
    Unsupported(String),
    /// A symmetric key where only public keys are allowed (remote JWKS).
    SymmetricNotAllowed,
    /// A key below the minimum strength.
    TooWeak(String),
    /// A key that cannot be decoded.
    Malformed(String),
}

impl JwkProblem {
    /// Problems that mean the key is broken or unsafe, as opposed to "not meant for us".
    pub fn is_defect(&self) -> bool {
        !matches!(self, JwkProblem::NotForSignatures(_))
    }
}

impl fmt::Display for JwkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwkProblem::NotForSignatures(why) => write!(f, "not a signature key ({why})"),
            JwkProblem::Unsupported(what) => write!(f, "unsupported key: {what}"),
            JwkProblem::SymmetricNotAllowed => {
                f.write_str("symmetric (oct) keys are only accepted inline in the configuration")
            }
            JwkProblem::TooWeak(why) => write!(f, "key too weak: {why}"),
            JwkProblem::Malformed(why) => write!(f, "malformed key: {why}"),
        }
    }
}

impl std::error::Error for JwkProblem {}

/// Parses one JWK into a verification key, or says why it cannot be used.
pub fn parse_jwk(entry: &Value, symmetric: SymmetricKeys) -> Result<VerificationKey, JwkProblem> {
    let object = entry
        .as_object()
        .ok_or_else(|| JwkProblem::Malformed("a JWK must be a JSON object".into()))?;
    let text_field = |name: &str| -> Result<Option<&str>, JwkProblem> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(JwkProblem::Malformed(format!(
                "\"{name}\" must be a string"
            ))),
        }
    };
    if let Some(key_use) = text_field("use")? {
        if key_use != "sig" {
            return Err(JwkProblem::NotForSignatures(format!("use \"{key_use}\"")));
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or_else(|| JwkProblem::Malformed("\"key_ops\" must be an array".into()))?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(JwkProblem::NotForSignatures(
                "key_ops without \"verify\"".into(),
            ));
        }
    }
    let kid = text_field("kid")?.map(str::to_owned);
    let alg = match text_field("alg")? {
        None => None,
        Some(name) => Some(
            Alg::from_name(name)
                .ok_or_else(|| JwkProblem::Unsupported(format!("alg \"{name}\"")))?,
        ),
    };
    let kty = text_field("kty")?.ok_or_else(|| JwkProblem::Malformed("missing \"kty\"".into()))?;
    if kty == "oct" && symmetric == SymmetricKeys::Refused {
        return Err(JwkProblem::SymmetricNotAllowed);
    }
    let jwk: JsonWebKey<'_> = serde_json::from_value(entry.clone())
        .map_err(|err| JwkProblem::Malformed(err.to_string()))?;
    let material = key_material(&jwk, kty)?;
    let host_key = host_key(&jwk, material.family()).map(Arc::from);
    if let Some(alg) = alg {
        if alg.family() != material.family() {
            return Err(JwkProblem::Malformed(format!(
                "alg {alg} does not fit a {kty} key"
            )));
        }
        if let (Some(min), Some(len)) = (alg.min_hmac_bytes(), material.hmac_len()) {
            if len < min {
                return Err(JwkProblem::TooWeak(format!(
                    "HMAC secret of {len} bytes; at least {min} required for {alg}"
                )));
            }
        }
    }
    Ok(VerificationKey {
        kid,
        alg,
        material,
        host_key,
    })
}

/// The DER form the host's crypto library takes, for the families it may check. RSA keys
/// BoringSSL refuses to use (an exponent over 33 bits, a modulus over 16384 bits) get
/// none, so their tokens are checked in the module as on any other host.
fn host_key(jwk: &JsonWebKey<'_>, family: KeyFamily) -> Option<Vec<u8>> {
    match jwk {
        JsonWebKey::Rsa {
            modulus,
            public_exponent,
            ..
        } => (significant_bits(public_exponent) <= 33 && significant_bits(modulus) <= 16384)
            .then(|| host::rsa_public_key_der(modulus, public_exponent)),
        JsonWebKey::EllipticCurve { x, y, .. } => host::ec_public_key_der(family, x, y),
        _ => None,
    }
}

fn key_material(jwk: &JsonWebKey<'_>, kty: &str) -> Result<KeyMaterial, JwkProblem> {
    match jwk {
        JsonWebKey::Rsa {
            modulus,
            public_exponent,
            ..
        } => {
            let bits = significant_bits(modulus);
            if bits < MIN_RSA_BITS {
                return Err(JwkProblem::TooWeak(format!(
                    "RSA modulus of {bits} bits; at least {MIN_RSA_BITS} required"
                )));
            }
            let fast = RsaVerifier::new(modulus, public_exponent).ok_or_else(|| {
                JwkProblem::Malformed(
                    "RSA modulus must be odd and the exponent odd, above 1 and at most 64 bits"
                        .into(),
                )
            })?;
            Ok(KeyMaterial::Rsa(Box::new(fast)))
        }
        JsonWebKey::EllipticCurve { curve, x, y, .. } => match curve.as_ref() {
            "P-256" => p256::ecdsa::VerifyingKey::try_from(jwk)
                .map(KeyMaterial::P256)
                .map_err(|err| JwkProblem::Malformed(err.to_string())),
            "P-384" => ecdsa::verifying_key_from_coordinates::<P384>(x, y).map(KeyMaterial::P384),
            "P-521" => ecdsa::verifying_key_from_coordinates::<P521>(x, y)
                .map(|key| KeyMaterial::P521(Box::new(key))),
            other => Err(JwkProblem::Unsupported(format!("EC curve \"{other}\""))),
        },
        JsonWebKey::KeyPair { curve, x, .. } => match curve.as_ref() {
            "Ed25519" => <[u8; 32]>::try_from(x.as_ref())
                .ok()
                .and_then(|bytes| ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok())
                .map(|key| KeyMaterial::Ed25519(Box::new(key)))
                .ok_or_else(|| {
                    JwkProblem::Malformed(
                        "\"x\" must be an encoded Ed25519 point of 32 bytes".into(),
                    )
                }),
            other => Err(JwkProblem::Unsupported(format!("OKP curve \"{other}\""))),
        },
        JsonWebKey::Symmetric { secret } => {
            let secret: &[u8] = secret.as_ref();
            if secret.len() < MIN_HMAC_BYTES {
                return Err(JwkProblem::TooWeak(format!(
                    "HMAC secret of {} bytes; at least {MIN_HMAC_BYTES} required",
                    secret.len()
                )));
            }
            Ok(KeyMaterial::Hmac(secret.to_vec()))
        }
        _ => Err(JwkProblem::Unsupported(format!("kty \"{kty}\""))),
    }
}

/// Bit length of a big-endian unsigned integer, ignoring leading zero bytes.
pub fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|byte| **byte == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{JwksError, KeySet};
    use serde_json::json;

    #[test]
    fn rsa_keys_the_host_would_refuse_are_kept_for_the_module() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let modulus = Base64UrlUnpadded::encode_string(&[0xff; 256]);
        let key = |e: &[u8]| {
            let jwk = json!({"kty": "RSA", "n": modulus, "e": Base64UrlUnpadded::encode_string(e)});
            parse_jwk(&jwk, SymmetricKeys::Refused).unwrap()
        };
        assert!(key(&[1, 0, 1]).host_key().is_some());
        assert!(key(&[1, 0, 0, 0, 1]).host_key().is_some());
        assert!(key(&[3, 0, 0, 0, 1]).host_key().is_none());
    }

    #[test]
    fn significant_bits_ignores_leading_zeros() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[0, 0x7f, 0xff]), 15);
    }

    #[test]
    fn short_hmac_secrets_are_too_weak() {
        let jwks = json!({"keys": [{"kty": "oct", "k": "c2hvcnQ"}]});
        let err = KeySet::from_jwks_value(&jwks, SymmetricKeys::Allowed).unwrap_err();
        assert!(
            matches!(err, JwksError::NoUsableKey(ref p) if matches!(p[0].1, JwkProblem::TooWeak(_)))
        );
    }

    #[test]
    fn unknown_key_types_and_curves_are_unsupported() {
        for jwk in [
            json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "none"}),
        ] {
            let problem = parse_jwk(&jwk, SymmetricKeys::Allowed).unwrap_err();
            assert!(problem.is_defect(), "{jwk}: {problem}");
        }
    }

    #[test]
    fn non_object_jwk_is_malformed() {
        let problem = parse_jwk(&json!("RSA"), SymmetricKeys::Allowed).unwrap_err();
        assert!(matches!(problem, JwkProblem::Malformed(_)));
    }

    #[test]
    fn hmac_secrets_must_be_as_long_as_the_hash_rfc_7518_3_2() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let jwk = |len: usize, alg: Option<&str>| {
            let mut jwk =
                json!({"kty": "oct", "k": Base64UrlUnpadded::encode_string(&vec![7_u8; len])});
            if let Some(alg) = alg {
                jwk["alg"] = json!(alg);
            }
            parse_jwk(&jwk, SymmetricKeys::Allowed)
        };
        for (alg, bytes) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
            let short = jwk(bytes - 1, Some(alg)).unwrap_err();
            assert!(matches!(short, JwkProblem::TooWeak(_)), "{alg}: {short}");
            assert!(jwk(bytes, Some(alg)).is_ok(), "{alg}");
        }
        assert!(matches!(jwk(31, None).unwrap_err(), JwkProblem::TooWeak(_)));
        // Without "alg", a secret serves only the algorithms its length allows.
        for (bytes, fits) in [
            (32, [true, false, false]),
            (48, [true, true, false]),
            (64, [true, true, true]),
        ] {
            let key = jwk(bytes, None).unwrap();
            let got = [Alg::Hs256, Alg::Hs384, Alg::Hs512].map(|alg| key.fits(alg));
            assert_eq!(got, fits, "{bytes} bytes");
        }
    }

    #[test]
    fn rfc8725_3_4_elliptic_curve_points_off_the_curve_are_refused() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        for (crv, size) in [("P-256", 32), ("P-384", 48), ("P-521", 66)] {
            // x = 1, y = 1 lies on none of the curves; all-zero is the point at infinity's
            // stand-in, never a valid public key.
            for (x, y) in [(1_u8, 1_u8), (0, 0)] {
                let mut x_bytes = vec![0_u8; size];
                let mut y_bytes = vec![0_u8; size];
                if let (Some(last_x), Some(last_y)) = (x_bytes.last_mut(), y_bytes.last_mut()) {
                    *last_x = x;
                    *last_y = y;
                }
                let jwk = json!({"kty": "EC", "crv": crv,
                    "x": Base64UrlUnpadded::encode_string(&x_bytes),
                    "y": Base64UrlUnpadded::encode_string(&y_bytes)});
                assert!(
                    matches!(
                        parse_jwk(&jwk, SymmetricKeys::Refused),
                        Err(JwkProblem::Malformed(_))
                    ),
                    "{crv} ({x}, {y})"
                );
            }
        }
    }
}
