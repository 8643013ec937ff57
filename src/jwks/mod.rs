//! Verification keys: JWKS parsing, the algorithms claimgate accepts, and signature checks.
//!
//! The algorithm used to check a signature is decided by the key (its type, curve and `alg`)
//! together with the provider's allow-list; the token header only selects among candidates.
//! That is what makes "HS256 signed with the RSA public key" impossible here.
//!
//! `alg` is the algorithms and key families, `key` one parsed key and its signature
//! check, `jwk` parsing one JWK (with the strength rules), `set` a key set and its
//! errors, `ring` the key set of every provider; `es384`, `es512`, `rsa_verify` and `host`
//! are the verifiers that are not jwt-compact's.

mod alg;
mod ecdsa;
mod host;
mod jwk;
mod key;
mod ring;
mod rsa_verify;
mod set;

pub use alg::{Alg, KeyFamily};
pub use ecdsa::{
    signing_key_from_scalar, Ecdsa, EcdsaCurve, EcdsaSignature, Es384, Es512, P384, P521,
};
pub use host::{ForeignVerifier, HostCrypto};
pub use jwk::{parse_jwk, significant_bits, JwkProblem, MIN_RSA_BITS};
pub use key::{SignatureChecks, VerificationKey};
pub use ring::KeyRing;
pub use rsa_verify::{RsaHash, RsaVerifier};
pub use set::{JwksError, KeySet, ParsedKeySet, SymmetricKeys};
