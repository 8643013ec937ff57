//! Why a token is refused: one vocabulary shared by parsing, verification and the
//! decision, with the status and the client-safe RFC 6750 description of each case.

use std::fmt;

use crate::key_miss::{KeyMiss, MissKind};

/// Why a token is refused. Every variant means 401 `invalid_token`, except where
/// [`TokenError::status`] says otherwise. Messages never contain token content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    MultipleTokens,
    TooLarge {
        limit: usize,
    },
    Malformed(&'static str),
    UnsupportedAlgorithm,
    AlgorithmNotAllowed,
    CriticalHeader,
    WrongTokenType,
    UnknownIssuer,
    /// The provider does not read tokens from where this one was found.
    WrongLocation,
    /// The provider has no key set yet (remote keys not fetched, or stale beyond their
    /// limit: an outage, not the client's fault), or no key with the token's `kid` (the
    /// adapter may refetch a remote key set and decide again).
    KeysMissing(KeyMiss),
    NoSuitableKey,
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    AudienceMismatch,
    /// The token is valid but its provider is not accepted by the matched rule.
    ProviderNotAccepted,
    /// A DPoP-bound token (`cnf.jkt`) sent as a bearer token: a downgrade, refused.
    BoundTokenAsBearer,
    /// `Authorization: DPoP` with a token that is not DPoP-bound.
    NotDpopBound,
    /// The provider requires DPoP and the token is not DPoP-bound.
    DpopBindingRequired,
    /// The token is bound to a client certificate (`cnf.x5t#S256`); the connection has none.
    CertificateRequired,
    /// The token is bound to another client certificate than the connection's.
    CertificateMismatch,
    /// The provider requires certificate-bound tokens and this one is not.
    CertificateBindingRequired,
    /// The token's `cnf` names a binding the provider does not check (RFC 9449 §7.2,
    /// RFC 8705 §3: a bound token must not be used as a bearer token).
    UncheckedBinding,
    /// The token's `cnf` is not an object of confirmation methods, or a method's value is
    /// not a non-empty string.
    MalformedConfirmation,
}

impl TokenError {
    /// The keys this failure lacked, when that is why the token was refused.
    pub fn key_miss(&self) -> Option<KeyMiss> {
        match self {
            TokenError::KeysMissing(miss) => Some(*miss),
            _ => None,
        }
    }

    /// HTTP status for this failure.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::KeysMissing(KeyMiss {
                kind: MissKind::NoKeys,
                ..
            }) => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error_description`; fixed text, safe to send to the client.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::MultipleTokens => "more than one token in the request",
            TokenError::TooLarge { .. } => "token too large",
            TokenError::Malformed(what) => what,
            TokenError::UnsupportedAlgorithm => "unsupported signing algorithm",
            TokenError::AlgorithmNotAllowed => "signing algorithm not allowed",
            TokenError::CriticalHeader => "token has critical header extensions",
            TokenError::WrongTokenType => "wrong token type",
            TokenError::UnknownIssuer => "unknown token issuer",
            TokenError::WrongLocation => "token not accepted in this location",
            TokenError::KeysMissing(miss) => match miss.kind {
                MissKind::NoKeys => "signing keys are not available yet",
                MissKind::UnknownKid => "unknown signing key",
            },
            TokenError::NoSuitableKey => "no key fits the token's algorithm",
            TokenError::BadSignature => "invalid signature",
            TokenError::MissingExpiry => "token has no expiry",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::LifetimeTooLong => "token lifetime too long",
            TokenError::AudienceMismatch => "token audience not accepted",
            TokenError::ProviderNotAccepted => "token issuer not accepted for this route",
            TokenError::BoundTokenAsBearer => "DPoP-bound token presented as a bearer token",
            TokenError::NotDpopBound => "token is not DPoP-bound",
            TokenError::DpopBindingRequired => "a DPoP-bound token is required",
            TokenError::CertificateRequired => "token is bound to a client certificate; present it",
            TokenError::CertificateMismatch => "token is bound to another client certificate",
            TokenError::CertificateBindingRequired => "a certificate-bound token is required",
            TokenError::UncheckedBinding => {
                "token is bound to a key or certificate this resource does not check"
            }
            TokenError::MalformedConfirmation => "token cnf claim is malformed",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLarge { limit } => write!(f, "token too large (limit {limit} bytes)"),
            other => f.write_str(other.description()),
        }
    }
}

impl std::error::Error for TokenError {}
