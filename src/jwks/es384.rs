//! ES384 (ECDSA on P-384 with SHA-384) for jwt-compact, which ships no ES384 of its own.

use std::borrow::Cow;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::{DigestSigner, DigestVerifier};
use p384::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha384};

use super::JwkProblem;

/// Byte length of one P-384 field element (a coordinate or a signature half).
const FIELD_BYTES: usize = 48;

/// The `ES384` JWS algorithm over the `p384` crate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Es384;

/// An ES384 signature in the JWS form: `r || s`, 48 bytes each.
#[derive(Debug, Clone)]
pub struct Es384Signature(Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(2 * FIELD_BYTES);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Signature::try_from(slice)
            .map(Es384Signature)
            .map_err(|err| anyhow::anyhow!(err))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

impl Algorithm for Es384 {
    type SigningKey = SigningKey;
    type VerifyingKey = VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &SigningKey, message: &[u8]) -> Es384Signature {
        Es384Signature(signing_key.sign_digest(Sha384::new_with_prefix(message)))
    }

    fn verify_signature(
        &self,
        signature: &Es384Signature,
        verifying_key: &VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key
            .verify_digest(Sha384::new_with_prefix(message), &signature.0)
            .is_ok()
    }
}

/// Builds a P-384 public key from JWK `x` and `y`; the point must be on the curve.
pub(super) fn verifying_key_from_coordinates(
    x: &[u8],
    y: &[u8],
) -> Result<VerifyingKey, JwkProblem> {
    if x.len() != FIELD_BYTES || y.len() != FIELD_BYTES {
        return Err(JwkProblem::Malformed(format!(
            "P-384 coordinates must be {FIELD_BYTES} bytes each"
        )));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * FIELD_BYTES);
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    VerifyingKey::from_sec1_bytes(&sec1)
        .map_err(|_| JwkProblem::Malformed("P-384 point is not on the curve".into()))
}

/// Builds a P-384 signing key from the JWK private scalar `d` (for `claimgate mint`).
pub fn signing_key_from_scalar(d: &[u8]) -> Result<SigningKey, JwkProblem> {
    SigningKey::from_slice(d)
        .map_err(|_| JwkProblem::Malformed("P-384 private scalar is invalid".into()))
}
