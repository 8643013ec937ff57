//! DPoP (RFC 9449): proof-of-possession for access tokens. A client binds its token to a
//! key pair (the token's `cnf.jkt` is the key's RFC 7638 thumbprint) and sends, with every
//! request, a proof — a JWS signed by that key naming the request's method and URI, the
//! time, a unique `jti` and the token's hash. A stolen token is useless without the key.
//!
//! `settings` is the configuration, `thumbprint` RFC 7638, `htu` the URIs proofs name, `proof` the checks of one
//! proof (a [`VerifiedProof`] only comes out of them), `nonce` server nonces, `replay`
//! the once-only rule for proofs across every worker.

pub mod etcd;
mod htu;
mod nonce;
mod proof;
mod replay;
mod settings;
mod thumbprint;

pub use htu::{TargetUri, UriError};
pub use nonce::{NonceKey, SecretError, SecretRole};
pub use proof::{verify_proof, ProofContext, ProofError, VerifiedProof};
pub use replay::{MemoryReplayGuard, ProofId, ReplayError, ReplayGuard, ReplayShards};
pub use settings::{DpopSettings, NonceSecretsEnv, OnUnavailable, SharedRecordSettings};
pub use thumbprint::{certificate_thumbprint_from_hex, jwk_thumbprint, sha256_base64url};
