//! ES384 (ECDSA on P-384 with SHA-384) and ES512 (ECDSA on P-521 with SHA-512), RFC 7518
//! §3.4, for jwt-compact, which ships neither: one JWS algorithm, [`Ecdsa`], over
//! RustCrypto's `p384` and `p521`. Verification is what the module does; signing (for
//! `claimgate mint` and the tests) is randomized for both curves, as `p521` only offers
//! that.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::{RandomizedSigner, Verifier};
use rand_core::OsRng;

use super::JwkProblem;

/// A curve [`Ecdsa`] signs and verifies on.
pub trait EcdsaCurve: 'static {
    type SigningKey: RandomizedSigner<Self::Signature>;
    type VerifyingKey: Verifier<Self::Signature>;
    type Signature: Clone + fmt::Debug + for<'a> TryFrom<&'a [u8], Error = p384::ecdsa::Error>;
    /// The JWS algorithm name.
    const ALG: &'static str;
    /// The JWK `crv`.
    const CURVE: &'static str;
    /// Byte length of one field element (a coordinate or a signature half).
    const FIELD_BYTES: usize;
    /// The signature as `r || s`.
    fn signature_bytes(signature: &Self::Signature) -> Vec<u8>;
    /// The public key from an uncompressed SEC1 point; `None` off the curve.
    fn verifying_key(sec1: &[u8]) -> Option<Self::VerifyingKey>;
    /// The private key from its scalar; `None` when it is not a valid one.
    fn signing_key(scalar: &[u8]) -> Option<Self::SigningKey>;
}

/// A marker type for one curve, and its [`EcdsaCurve`] over the RustCrypto crate
/// `$krate` (whose key types have the same inherent constructors).
macro_rules! ecdsa_curve {
    ($(#[$doc:meta])* $curve:ident, $krate:ident, $alg:literal, $crv:literal, $bytes:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $curve;

        impl EcdsaCurve for $curve {
            type SigningKey = $krate::ecdsa::SigningKey;
            type VerifyingKey = $krate::ecdsa::VerifyingKey;
            type Signature = $krate::ecdsa::Signature;
            const ALG: &'static str = $alg;
            const CURVE: &'static str = $crv;
            const FIELD_BYTES: usize = $bytes;

            fn signature_bytes(signature: &Self::Signature) -> Vec<u8> {
                signature.to_bytes().to_vec()
            }

            fn verifying_key(sec1: &[u8]) -> Option<Self::VerifyingKey> {
                Self::VerifyingKey::from_sec1_bytes(sec1).ok()
            }

            fn signing_key(scalar: &[u8]) -> Option<Self::SigningKey> {
                Self::SigningKey::from_slice(scalar).ok()
            }
        }
    };
}

ecdsa_curve!(
    /// P-384 with SHA-384: ES384.
    P384, p384, "ES384", "P-384", 48
);
ecdsa_curve!(
    /// P-521 with SHA-512: ES512 (66-byte field elements: 521 bits rounded up).
    P521, p521, "ES512", "P-521", 66
);

/// An ECDSA JWS algorithm on curve `C`.
pub struct Ecdsa<C>(PhantomData<C>);

/// The `ES384` JWS algorithm.
pub type Es384 = Ecdsa<P384>;
/// The `ES512` JWS algorithm.
pub type Es512 = Ecdsa<P521>;

impl<C> Ecdsa<C> {
    pub const fn new() -> Ecdsa<C> {
        Ecdsa(PhantomData)
    }
}

impl<C> Default for Ecdsa<C> {
    fn default() -> Ecdsa<C> {
        Ecdsa::new()
    }
}

impl<C> Clone for Ecdsa<C> {
    fn clone(&self) -> Ecdsa<C> {
        *self
    }
}

impl<C> Copy for Ecdsa<C> {}

impl<C: EcdsaCurve> fmt::Debug for Ecdsa<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(C::ALG)
    }
}

/// A signature in the JWS form: `r || s`, one field element each.
pub struct EcdsaSignature<C: EcdsaCurve>(C::Signature);

impl<C: EcdsaCurve> Clone for EcdsaSignature<C> {
    fn clone(&self) -> EcdsaSignature<C> {
        EcdsaSignature(self.0.clone())
    }
}

impl<C: EcdsaCurve> fmt::Debug for EcdsaSignature<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EcdsaSignature").field(&self.0).finish()
    }
}

impl<C: EcdsaCurve> AlgorithmSignature for EcdsaSignature<C> {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(2 * C::FIELD_BYTES);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        C::Signature::try_from(slice)
            .map(EcdsaSignature)
            .map_err(|err| anyhow::anyhow!(err))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(C::signature_bytes(&self.0))
    }
}

impl<C: EcdsaCurve> Algorithm for Ecdsa<C> {
    type SigningKey = C::SigningKey;
    type VerifyingKey = C::VerifyingKey;
    type Signature = EcdsaSignature<C>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(C::ALG)
    }

    /// Hashes `message` with the curve's hash and signs with a random nonce (for
    /// `claimgate mint` and the tests).
    fn sign(&self, signing_key: &C::SigningKey, message: &[u8]) -> EcdsaSignature<C> {
        EcdsaSignature(signing_key.sign_with_rng(&mut OsRng, message))
    }

    fn verify_signature(
        &self,
        signature: &EcdsaSignature<C>,
        verifying_key: &C::VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

/// Builds a public key on `C` from JWK `x` and `y`; the point must be on the curve.
pub(super) fn verifying_key_from_coordinates<C: EcdsaCurve>(
    x: &[u8],
    y: &[u8],
) -> Result<C::VerifyingKey, JwkProblem> {
    let field_bytes = C::FIELD_BYTES;
    if x.len() != field_bytes || y.len() != field_bytes {
        return Err(JwkProblem::Malformed(format!(
            "{} coordinates must be {field_bytes} bytes each",
            C::CURVE
        )));
    }
    let mut sec1 = Vec::with_capacity(1 + 2 * field_bytes);
    sec1.push(0x04);
    sec1.extend_from_slice(x);
    sec1.extend_from_slice(y);
    C::verifying_key(&sec1)
        .ok_or_else(|| JwkProblem::Malformed(format!("{} point is not on the curve", C::CURVE)))
}

/// Builds a signing key on `C` from the JWK private scalar `d` (for `claimgate mint`).
pub fn signing_key_from_scalar<C: EcdsaCurve>(d: &[u8]) -> Result<C::SigningKey, JwkProblem> {
    C::signing_key(d)
        .ok_or_else(|| JwkProblem::Malformed(format!("{} private scalar is invalid", C::CURVE)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs_and_verifies_and_refuses_a_tampered_message<C: EcdsaCurve>(
        key: &C::SigningKey,
        public: &C::VerifyingKey,
    ) {
        let algorithm = Ecdsa::<C>::new();
        let signature = algorithm.sign(key, b"header.payload");
        assert_eq!(signature.as_bytes().len(), 2 * C::FIELD_BYTES);
        assert!(algorithm.verify_signature(&signature, public, b"header.payload"));
        assert!(!algorithm.verify_signature(&signature, public, b"header.payloae"));
    }

    #[test]
    fn es384_and_es512_sign_and_verify_and_refuse_a_tampered_message() {
        let key = p384::ecdsa::SigningKey::random(&mut OsRng);
        signs_and_verifies_and_refuses_a_tampered_message::<P384>(&key, key.verifying_key());
        let key = p521::ecdsa::SigningKey::random(&mut OsRng);
        let public = p521::ecdsa::VerifyingKey::from(&key);
        assert_eq!(P521::FIELD_BYTES * 2, 132);
        signs_and_verifies_and_refuses_a_tampered_message::<P521>(&key, &public);
    }

    #[test]
    fn p521_coordinates_must_be_66_bytes_and_on_the_curve() {
        let point = p521::ecdsa::VerifyingKey::from(&p521::ecdsa::SigningKey::random(&mut OsRng))
            .to_encoded_point(false);
        let (x, y) = (point.x().unwrap().to_vec(), point.y().unwrap().to_vec());
        assert!(verifying_key_from_coordinates::<P521>(&x, &y).is_ok());
        assert!(verifying_key_from_coordinates::<P521>(&x[1..], &y).is_err());
        let mut off_curve = y.clone();
        off_curve[65] ^= 1;
        assert!(verifying_key_from_coordinates::<P521>(&x, &off_curve).is_err());
    }
}
