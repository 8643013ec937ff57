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
    /// 429: the DPoP proof's key holds its share of the once-only record.
    ProofKeyQuota,
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

/// A rule or provider name as one segment of a dotted name (stat names, response code
/// details): characters Envoy's stat names and tag regexes keep (no dots, no spaces),
/// others `_`.
pub fn name_segment(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Cause {
    /// Envoy's `%RESPONSE_CODE_DETAILS%` for a local reply with this cause: `claimgate.`
    /// and the cause in the stats' vocabulary, no spaces (Envoy's rule for details):
    /// `claimgate.unauthenticated.<reason>`, `claimgate.forbidden.<rule>` (or
    /// `claimgate.forbidden` when no rule matched and `default_access` refused),
    /// `claimgate.bad_request`, `claimgate.no_keys`,
    /// `claimgate.dpop_replay_unavailable`, `claimgate.dpop_key_quota`,
    /// `claimgate.resource_metadata`. (`claimgate.internal_error` is the filter's own
    /// 500; allowed requests have Envoy's details, such as `via_upstream`.)
    pub fn response_details(self, rule: Option<&str>) -> String {
        match self {
            Cause::Allowed => "claimgate.allowed".to_owned(),
            Cause::CorsPreflight => "claimgate.cors_preflight".to_owned(),
            Cause::ResourceMetadata => "claimgate.resource_metadata".to_owned(),
            Cause::Denied => match rule {
                Some(rule) => format!("claimgate.forbidden.{}", name_segment(rule)),
                None => "claimgate.forbidden".to_owned(),
            },
            Cause::Unauthenticated(reason) => {
                format!("claimgate.unauthenticated.{}", reason.name())
            }
            Cause::BadRequest => "claimgate.bad_request".to_owned(),
            Cause::NoKeys => "claimgate.no_keys".to_owned(),
            Cause::ProofsUnavailable => "claimgate.dpop_replay_unavailable".to_owned(),
            Cause::ProofKeyQuota => "claimgate.dpop_key_quota".to_owned(),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_details_are_dotted_names_without_spaces() {
        assert_eq!(
            Cause::Unauthenticated(AuthFailure::Expired).response_details(None),
            "claimgate.unauthenticated.expired"
        );
        assert_eq!(
            Cause::Denied.response_details(Some("admin read.v2")),
            "claimgate.forbidden.admin_read_v2"
        );
        assert_eq!(Cause::Denied.response_details(None), "claimgate.forbidden");
        assert_eq!(
            Cause::ProofKeyQuota.response_details(None),
            "claimgate.dpop_key_quota"
        );
        for reason in AuthFailure::ALL {
            let details = Cause::Unauthenticated(reason).response_details(None);
            assert!(!details.contains(char::is_whitespace), "{details}");
        }
    }
}
