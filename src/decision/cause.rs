//! Why a request got its answer, in a fixed, small vocabulary: what metrics count (as
//! Envoy stat names and Prometheus labels) and what an operator reads on a dashboard.
//! Bounded by construction — never a path, subject or token.

use crate::key_miss::MissKind;
use crate::token::TokenError;

/// The kind of answer a request got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Forwarded upstream.
    Allowed,
    /// A CORS preflight forwarded without a token (`bypass_cors_preflight`).
    CorsPreflight,
    /// The protected-resource metadata document, answered by the filter (RFC 9728).
    ResourceMetadata,
    /// 403: a valid token (or none needed) that the policy refused.
    Denied,
    /// 401, and why.
    Unauthenticated(AuthFailure),
    /// 400: an ambiguous path or host.
    BadRequest,
    /// The provider had no usable keys (503, or 401 with `outage_status: 401`).
    NoKeys,
    /// 503: the once-only record of DPoP proofs was full or could not be used.
    ProofsUnavailable,
}

/// Why a request was unauthenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Expired,
    NotYetValid,
    Lifetime,
    Signature,
    Issuer,
    Audience,
    Algorithm,
    KeyNotFound,
    Type,
    TooLarge,
    TwoTokens,
    Location,
    Provider,
    /// The token's authentication is too weak or too old for the rule (RFC 9470).
    StepUp,
    /// The DPoP proof is missing or does not hold (RFC 9449).
    DpopProof,
    /// The DPoP proof lacks a fresh server nonce: the client retries with the one sent.
    DpopNonce,
    /// The token is bound to a key or certificate, and the request does not show it (or
    /// an unbound token where the provider requires binding).
    Binding,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 19] = [
        AuthFailure::Missing,
        AuthFailure::Malformed,
        AuthFailure::Expired,
        AuthFailure::NotYetValid,
        AuthFailure::Lifetime,
        AuthFailure::Signature,
        AuthFailure::Issuer,
        AuthFailure::Audience,
        AuthFailure::Algorithm,
        AuthFailure::KeyNotFound,
        AuthFailure::Type,
        AuthFailure::TooLarge,
        AuthFailure::TwoTokens,
        AuthFailure::Location,
        AuthFailure::Provider,
        AuthFailure::StepUp,
        AuthFailure::DpopProof,
        AuthFailure::DpopNonce,
        AuthFailure::Binding,
    ];

    /// The reason as a stat name segment and Prometheus label value.
    pub fn name(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::Lifetime => "lifetime",
            AuthFailure::Signature => "signature",
            AuthFailure::Issuer => "issuer",
            AuthFailure::Audience => "audience",
            AuthFailure::Algorithm => "algorithm",
            AuthFailure::KeyNotFound => "key_not_found",
            AuthFailure::Type => "type",
            AuthFailure::TooLarge => "too_large",
            AuthFailure::TwoTokens => "two_tokens",
            AuthFailure::Location => "location",
            AuthFailure::Provider => "provider",
            AuthFailure::StepUp => "step_up",
            AuthFailure::DpopProof => "dpop_proof",
            AuthFailure::DpopNonce => "dpop_nonce",
            AuthFailure::Binding => "binding",
        }
    }
}

impl Cause {
    /// The cause of refusing a token for `err`.
    pub(super) fn of_token_error(err: &TokenError) -> Cause {
        let failure = match err {
            TokenError::KeysMissing(miss) if miss.kind == MissKind::NoKeys => return Cause::NoKeys,
            TokenError::KeysMissing(_) | TokenError::NoSuitableKey => AuthFailure::KeyNotFound,
            TokenError::MultipleTokens => AuthFailure::TwoTokens,
            TokenError::TooLarge { .. } => AuthFailure::TooLarge,
            TokenError::Malformed(_) | TokenError::CriticalHeader => AuthFailure::Malformed,
            TokenError::UnsupportedAlgorithm | TokenError::AlgorithmNotAllowed => {
                AuthFailure::Algorithm
            }
            TokenError::WrongTokenType => AuthFailure::Type,
            TokenError::UnknownIssuer => AuthFailure::Issuer,
            TokenError::WrongLocation => AuthFailure::Location,
            TokenError::BadSignature => AuthFailure::Signature,
            TokenError::Expired => AuthFailure::Expired,
            TokenError::NotYetValid | TokenError::IssuedInFuture => AuthFailure::NotYetValid,
            TokenError::MissingExpiry | TokenError::LifetimeTooLong => AuthFailure::Lifetime,
            TokenError::AudienceMismatch => AuthFailure::Audience,
            TokenError::ProviderNotAccepted => AuthFailure::Provider,
            TokenError::BoundTokenAsBearer
            | TokenError::NotDpopBound
            | TokenError::DpopBindingRequired
            | TokenError::CertificateRequired
            | TokenError::CertificateMismatch
            | TokenError::CertificateBindingRequired
            | TokenError::UncheckedBinding
            | TokenError::MalformedConfirmation => AuthFailure::Binding,
        };
        Cause::Unauthenticated(failure)
    }
}
