//! One usable verification key: its material parsed once at load, and the signature
//! check, which refuses any algorithm the key does not fit before looking at the bytes.

use std::cell::Cell;
use std::fmt;
use std::sync::Arc;

use jwt_compact::alg::{Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key};
use jwt_compact::{Algorithm as JwsAlgorithm, AlgorithmSignature};

use super::{Alg, Es384, Es512, HostCrypto, KeyFamily, RsaVerifier};

/// Public (or, for HMAC, shared) key material, parsed once when the key set is loaded.
#[derive(Clone)]
pub(super) enum KeyMaterial {
    /// RS* and PS* both through [`RsaVerifier`] (several times faster in Wasm than the
    /// `rsa` crate, which only signs here).
    Rsa(Box<RsaVerifier>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(Box<p521::ecdsa::VerifyingKey>),
    /// `ed25519-dalek`, whose 32-bit field arithmetic suits Wasm better than
    /// `ed25519-compact`'s 51-bit limbs (128-bit products, which Wasm lacks): 340 vs 607 µs
    /// per verification in Node's V8; through Envoy, 315 vs 393 µs of Envoy CPU per new
    /// EdDSA token (same-run medians, `scripts/load.sh`).
    Ed25519(Box<ed25519_dalek::VerifyingKey>),
    Hmac(Vec<u8>),
}

impl KeyMaterial {
    /// The length of an HMAC secret; `None` for public keys.
    pub(super) fn hmac_len(&self) -> Option<usize> {
        match self {
            KeyMaterial::Hmac(secret) => Some(secret.len()),
            _ => None,
        }
    }

    pub(super) fn family(&self) -> KeyFamily {
        match self {
            KeyMaterial::Rsa(..) => KeyFamily::Rsa,
            KeyMaterial::P256(_) => KeyFamily::P256,
            KeyMaterial::P384(_) => KeyFamily::P384,
            KeyMaterial::P521(_) => KeyFamily::P521,
            KeyMaterial::Ed25519(_) => KeyFamily::Ed25519,
            KeyMaterial::Hmac(_) => KeyFamily::Hmac,
        }
    }
}

/// One usable verification key from a JWKS.
#[derive(Clone)]
pub struct VerificationKey {
    pub(super) kid: Option<String>,
    pub(super) alg: Option<Alg>,
    pub(super) material: KeyMaterial,
    /// DER `SubjectPublicKeyInfo`, for keys the host may check ([`HostCrypto`]).
    pub(super) host_key: Option<Arc<[u8]>>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.material.family())
            .finish()
    }
}

impl VerificationKey {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    pub fn family(&self) -> KeyFamily {
        self.material.family()
    }

    /// Whether this key may check a signature made with `alg`: same family, the key's
    /// own `alg`, when it names one, is exactly `alg`, and an HMAC secret is at least as
    /// long as `alg`'s hash (RFC 7518 §3.2: a 32-byte secret serves HS256 only).
    pub fn fits(&self, alg: Alg) -> bool {
        self.material.family() == alg.family()
            && self.alg.is_none_or(|own| own == alg)
            && match (self.material.hmac_len(), alg.min_hmac_bytes()) {
                (Some(len), Some(min)) => len >= min,
                _ => true,
            }
    }

    /// The key as DER `SubjectPublicKeyInfo` (RSA and EC keys).
    pub fn host_key(&self) -> Option<&[u8]> {
        self.host_key.as_deref()
    }

    /// Checks `signature` over `signed_data` with `alg`, by the host when `checks` offers
    /// the check and the host answers, else in the module (counted in `checks`). A key
    /// that does not fit `alg` never verifies anything.
    pub fn verify(
        &self,
        alg: Alg,
        signed_data: &[u8],
        signature: &[u8],
        checks: &SignatureChecks<'_>,
    ) -> bool {
        if !self.fits(alg) {
            return false;
        }
        if let (Some(host), Some(der)) = (checks.host, self.host_key.as_deref()) {
            if let Some(answer) = host.check(alg, der, signed_data, signature) {
                return answer;
            }
        }
        checks
            .in_module
            .set(checks.in_module.get().saturating_add(1));
        match (&self.material, alg) {
            (KeyMaterial::Rsa(rsa), _) => match alg.rsa_scheme() {
                Some((hash, false)) => rsa.verify(hash, signed_data, signature),
                Some((hash, true)) => rsa.verify_pss(hash, signed_data, signature),
                None => false,
            },
            (KeyMaterial::P256(key), Alg::Es256) => {
                verify_with(&Es256, key, signed_data, signature)
            }
            (KeyMaterial::P384(key), Alg::Es384) => {
                verify_with(&Es384::new(), key, signed_data, signature)
            }
            (KeyMaterial::P521(key), Alg::Es512) => {
                verify_with(&Es512::new(), key, signed_data, signature)
            }
            (KeyMaterial::Ed25519(key), Alg::EdDsa) => verify_ed25519(key, signed_data, signature),
            (KeyMaterial::Hmac(secret), Alg::Hs256) => {
                verify_with(&Hs256, &Hs256Key::new(secret), signed_data, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs384) => {
                verify_with(&Hs384, &Hs384Key::new(secret), signed_data, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs512) => {
                verify_with(&Hs512, &Hs512Key::new(secret), signed_data, signature)
            }
            _ => false,
        }
    }
}

/// Where the signatures of one decision (or one check) are verified: by the host's
/// crypto when there is one and it answers, else in the module. The module's own checks
/// are counted here, so the caller gets the count back as data (the adapter adds it to
/// the Envoy counter `claimgate.signatures.checked_in_module`).
#[derive(Debug, Default)]
pub struct SignatureChecks<'h> {
    host: Option<&'h HostCrypto>,
    in_module: Cell<u32>,
}

impl<'h> SignatureChecks<'h> {
    /// Checks through `host` when it offers them (`None`: all in the module).
    pub fn new(host: Option<&'h HostCrypto>) -> SignatureChecks<'h> {
        SignatureChecks {
            host,
            in_module: Cell::new(0),
        }
    }

    /// How many signatures the module checked itself so far.
    pub fn in_module(&self) -> u32 {
        self.in_module.get()
    }
}

/// RFC 8032 verification with the strict checks: canonical `S`, and neither the key nor
/// `R` of small order (so one signature cannot be valid for several messages or keys).
fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, signed_data: &[u8], signature: &[u8]) -> bool {
    ed25519_dalek::Signature::from_slice(signature)
        .is_ok_and(|signature| key.verify_strict(signed_data, &signature).is_ok())
}

/// Runs one jwt-compact algorithm, checking the signature length first (some
/// `try_from_slice` implementations assume it).
fn verify_with<A: JwsAlgorithm>(
    algorithm: &A,
    key: &A::VerifyingKey,
    signed_data: &[u8],
    signature: &[u8],
) -> bool {
    if let Some(expected) = A::Signature::LENGTH {
        if signature.len() != expected.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => algorithm.verify_signature(&signature, key, signed_data),
        Err(_) => false,
    }
}
