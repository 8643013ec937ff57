//! ES512 (ECDSA on P-521 with SHA-512, RFC 7518 §3.4) for jwt-compact, which ships no
//! ES512 of its own: verification by RustCrypto's `p521`.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p521::ecdsa::signature::{RandomizedSigner, Verifier};
use p521::ecdsa::{Signature, SigningKey, VerifyingKey};
use rand_core::OsRng;

use super::JwkProblem;

/// Byte length of one P-521 field element (a coordinate or a signature half): 521 bits
/// rounded up to whole bytes.
pub(super) const FIELD_BYTES: usize = 66;

/// The `ES512` JWS algorithm over the `p521` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Es512;

/// An ES512 signature in the JWS form: `r || s`, 66 bytes each.
#[derive(Debug, Clone)]
pub struct Es512Signature(Signature);

impl AlgorithmSignature for Es512Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(2 * FIELD_BYTES);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Signature::try_from(slice)
            .map(Es512Signature)
            .map_err(|err| anyhow::anyhow!(err))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl Algorithm for Es512 {
    type SigningKey = SigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Es512Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES512")
    }

    /// Signing hashes with SHA-512 inside `p521` (for `claimgate mint` and the tests).
    fn sign(&self, signing_key: &SigningKey, message: &[u8]) -> Es512Signature {
        Es512Signature(signing_key.sign_with_rng(&mut OsRng, message))
    }

    fn verify_signature(
        &self,
        signature: &Es512Signature,
        verifying_key: &VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

/// Builds a P-521 public key from JWK `x` and `y`; the point must be on the curve.
pub(super) fn verifying_key_from_coordinates(
    x: &[u8],
    y: &[u8],
) -> Result<VerifyingKey, JwkProblem> {
    if x.len() != FIELD_BYTES || y.len() != FIELD_BYTES {
        return Err(JwkProblem::Malformed(format!(
            "P-521 coordinates must be {FIELD_BYTES} bytes each"
        )));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * FIELD_BYTES);
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| JwkProblem::Malformed("P-521 point is not on the curve".into()))
}

/// Builds a P-521 signing key from the JWK private scalar `d` (for `claimgate mint`).
pub fn signing_key_from_scalar(d: &[u8]) -> Result<SigningKey, JwkProblem> {
    SigningKey::from_slice(d)
        .map_err(|_| JwkProblem::Malformed("P-521 private scalar is invalid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn es512_signs_and_verifies_and_refuses_a_tampered_message() {
        let key = SigningKey::random(&mut OsRng);
        let public = VerifyingKey::from(&key);
        let signature = Es512.sign(&key, b"header.payload");
        assert_eq!(signature.as_bytes().len(), 132);
        assert!(Es512.verify_signature(&signature, &public, b"header.payload"));
        assert!(!Es512.verify_signature(&signature, &public, b"header.payloae"));
    }

    #[test]
    fn p521_coordinates_must_be_66_bytes_and_on_the_curve() {
        let point = VerifyingKey::from(&SigningKey::random(&mut OsRng)).to_encoded_point(false);
        let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
        assert!(verifying_key_from_coordinates(&x, &y).is_ok());
        assert!(verifying_key_from_coordinates(&x[1..], &y).is_err());
        let mut off_curve = y.clone();
        off_curve[65] ^= 1;
        assert!(verifying_key_from_coordinates(&x, &off_curve).is_err());
    }
}
