//! What [`decide`](super::decide) takes: the [`Input`] (the request, and where its token
//! comes from) and the [`Environment`] it is decided in (configuration, keys, clock, token
//! cache, DPoP proof record). The decision makes nothing of its own: no key, no record, no
//! global count.

use crate::cache::TokenCache;
use crate::config::Config;
use crate::dpop::{NonceKey, ReplayGuard};
use crate::jwks::{KeyRing, SignatureChecks};
use crate::request::RequestView;
use crate::time::UnixSeconds;
use crate::token::VerifiedToken;

/// The request to decide.
#[derive(Clone, Copy)]
pub struct Input<'i> {
    pub request: RequestView<'i>,
    pub token: TokenInput<'i>,
}

/// Where the decision gets the request's token from.
#[derive(Clone, Copy)]
pub enum TokenInput<'i> {
    /// Found in the request and verified against the environment's keys (Envoy, the CLI).
    FromRequest,
    /// A token already verified, or none, instead of the request's own: for policy tests
    /// that give claims rather than a signed token, and for benches of the policy alone.
    PreVerified(Option<&'i VerifiedToken>),
}

impl<'i> Input<'i> {
    /// The request, with its token found and verified by the decision.
    pub fn new(request: RequestView<'i>) -> Input<'i> {
        Input {
            request,
            token: TokenInput::FromRequest,
        }
    }

    /// The request as if its token (if any) were `verified`.
    pub fn pre_verified(
        request: RequestView<'i>,
        verified: Option<&'i VerifiedToken>,
    ) -> Input<'i> {
        Input {
            request,
            token: TokenInput::PreVerified(verified),
        }
    }
}

/// Everything a decision reads besides the request.
pub struct Environment<'e> {
    pub config: &'e Config,
    pub keys: &'e KeyRing,
    /// The host clock.
    pub now: UnixSeconds,
    /// Verified tokens to reuse and to add new ones to; the caller empties it whenever
    /// `keys` changes. `None`: every token is verified.
    pub cache: Option<&'e mut TokenCache>,
    /// DPoP server nonces and the once-only record of used proofs. `None`: a request
    /// whose proof must be recorded, or needs a nonce, is refused as unavailable (503);
    /// the decision never makes a record or a key of its own.
    pub proofs: Option<ProofEnvironment<'e>>,
}

impl<'e> Environment<'e> {
    /// Decisions under `config` with `keys` at `now`, without a token cache or a proof
    /// record.
    pub fn new(config: &'e Config, keys: &'e KeyRing, now: UnixSeconds) -> Environment<'e> {
        Environment {
            config,
            keys,
            now,
            cache: None,
            proofs: None,
        }
    }

    /// Reusing (and filling) `cache`.
    #[must_use]
    pub fn with_cache(self, cache: &'e mut TokenCache) -> Environment<'e> {
        Environment {
            cache: Some(cache),
            ..self
        }
    }

    /// Checking DPoP proofs against `proofs`.
    #[must_use]
    pub fn with_proofs(self, proofs: ProofEnvironment<'e>) -> Environment<'e> {
        Environment {
            proofs: Some(proofs),
            ..self
        }
    }
}

/// What checking DPoP proofs needs besides the request: the key server nonces are made
/// with (when `use_dpop_nonce` is on) and the once-only record of used proofs. The Envoy
/// filter keeps both in shared data, so every worker agrees; the CLI and the tests make
/// their own.
pub struct ProofEnvironment<'a> {
    pub nonce_key: Option<&'a NonceKey>,
    pub replay: &'a dyn ReplayGuard,
}

/// What every step of one decision reads, once the request is known to be unambiguous.
pub(super) struct Step<'s> {
    pub(super) config: &'s Config,
    pub(super) keys: &'s KeyRing,
    pub(super) checks: &'s SignatureChecks<'s>,
    pub(super) proofs: Option<&'s ProofEnvironment<'s>>,
    pub(super) request: &'s RequestView<'s>,
    /// The canonical path.
    pub(super) path: &'s str,
    pub(super) now: UnixSeconds,
    /// Verified tokens outlive the request (a token cache keeps them): their policy
    /// evaluations are worth remembering.
    pub(super) tokens_cached: bool,
}
