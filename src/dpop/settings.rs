//! How DPoP proofs are checked: one set of settings for every provider with `dpop`.

use crate::jwks::Alg;
use crate::request::Scheme;

/// The compiled `dpop_proofs` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopSettings {
    /// Algorithms a proof may be signed with (asymmetric only).
    pub algorithms: Vec<Alg>,
    /// A proof's `iat` may be at most this many seconds in the past...
    pub max_age_seconds: i64,
    /// ...and at most this many in the future (client clocks drift).
    pub clock_skew_seconds: i64,
    /// Whether every proof must carry a fresh server nonce (`DPoP-Nonce`).
    pub use_dpop_nonce: bool,
    /// How long a nonce the filter issued stays acceptable.
    pub nonce_lifetime_seconds: i64,
    /// The scheme `htu` must name, when the connection Envoy sees is not what the client
    /// used (TLS ended by another proxy in front of Envoy). Without it, the connection's
    /// scheme (TLS or not), never the client's `:scheme`.
    pub htu_scheme: Option<Scheme>,
    /// The authority `htu` must name, when the request's `:authority` is not what the
    /// client used.
    pub htu_authority: Option<String>,
    /// Proofs remembered at once per Envoy, across all workers (see `replay`).
    pub replay_cache_entries: usize,
    /// Longer `DPoP` headers are refused before any parsing.
    pub max_proof_bytes: usize,
    /// Where the operator's nonce secrets are (the same on every replica); `None`: a
    /// random key per Envoy.
    pub nonce_secrets: Option<NonceSecretsEnv>,
    /// The fleet-wide once-only record in etcd, besides the per-Envoy one.
    pub shared_record: Option<SharedRecordSettings>,
}

/// `dpop_proofs.shared_record`: etcd's HTTP/JSON gateway as an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedRecordSettings {
    pub cluster: String,
    pub authority: String,
    pub timeout_ms: u64,
    pub key_prefix: String,
    pub on_unavailable: OnUnavailable,
}

/// What a proof gets when etcd cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// 503 with `Retry-After` (fail closed).
    Refuse,
    /// The per-Envoy record decides alone (counted, logged as a warning): a proof may
    /// then be used once per replica.
    Local,
}

/// The names of the VM environment variables holding the nonce secrets (base64url).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonceSecretsEnv {
    /// Nonces are made with this one and accepted with it.
    pub current_env: String,
    /// Nonces made with this one are still accepted (the secret before a rotation).
    pub previous_env: Option<String>,
}

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings {
            algorithms: vec![
                Alg::Es256,
                Alg::Es384,
                Alg::Es512,
                Alg::EdDsa,
                Alg::Rs256,
                Alg::Ps256,
            ],
            max_age_seconds: 60,
            clock_skew_seconds: 5,
            use_dpop_nonce: false,
            nonce_lifetime_seconds: 300,
            htu_scheme: None,
            htu_authority: None,
            replay_cache_entries: 65_536,
            max_proof_bytes: 4096,
            nonce_secrets: None,
            shared_record: None,
        }
    }
}

impl DpopSettings {
    /// The `algs` parameter of a DPoP challenge (RFC 9449 §7.1): the accepted algorithms,
    /// space-separated.
    pub fn algs(&self) -> String {
        self.algorithms
            .iter()
            .map(|alg| alg.name())
            .collect::<Vec<_>>()
            .join(" ")
    }
}
