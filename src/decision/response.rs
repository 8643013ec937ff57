//! The response a refused request gets: status, `WWW-Authenticate` challenges — RFC 6750
//! `Bearer`, RFC 9449 `DPoP` (with `algs`), RFC 9470 step-up parameters, RFC 9728
//! `resource_metadata` — with an error code and a description safe to show the client,
//! and a small JSON body. Also the protected-resource metadata answer.

use serde_json::json;

use super::{AuthFailure, Cause, Denial, LocalReply};
use crate::config::{Config, ResourceMetadata};
use crate::dpop::ProofError;
use crate::key_miss::{KeyMiss, MissKind};
use crate::policy::StepUpChallenge;
use crate::provider::Binding;
use crate::token::TokenError;

/// The kinds of refusal, each with its status and error code.
pub(super) enum Refusal {
    BadRequest(String),
    NoToken,
    BadToken(TokenError),
    Forbidden(&'static str),
    /// RFC 9470: the user must authenticate again, more strongly or more recently.
    StepUp(StepUpChallenge),
    /// RFC 9449: the DPoP proof is missing or does not hold.
    BadProof(ProofError),
    /// RFC 9449 §8: the proof needs this fresh server nonce.
    NonceRequired(String),
    /// The once-only record of DPoP proofs is full or unreadable: 503, never a pass.
    ProofsUnavailable,
    /// The proof's key holds its share of the once-only record (see `dpop::replay`): 429,
    /// retry after this many seconds. The proof is not recorded, so never accepted twice.
    ProofKeyQuota(i64),
}

impl Refusal {
    pub(super) fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::BadToken(err) => err.status(),
            Refusal::Forbidden(_) => 403,
            Refusal::ProofsUnavailable => 503,
            Refusal::ProofKeyQuota(_) => 429,
            Refusal::NoToken
            | Refusal::StepUp(_)
            | Refusal::BadProof(_)
            | Refusal::NonceRequired(_) => 401,
        }
    }

    fn cause(&self) -> Cause {
        match self {
            Refusal::BadRequest(_) => Cause::BadRequest,
            Refusal::NoToken => Cause::Unauthenticated(AuthFailure::Missing),
            Refusal::BadToken(err) => Cause::of_token_error(err),
            Refusal::Forbidden(_) => Cause::Denied,
            Refusal::StepUp(_) => Cause::Unauthenticated(AuthFailure::StepUp),
            Refusal::BadProof(_) => Cause::Unauthenticated(AuthFailure::DpopProof),
            Refusal::NonceRequired(_) => Cause::Unauthenticated(AuthFailure::DpopNonce),
            Refusal::ProofsUnavailable => Cause::ProofsUnavailable,
            Refusal::ProofKeyQuota(_) => Cause::ProofKeyQuota,
        }
    }
}

/// Authentication schemes a challenge can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    DPoP,
}

/// The status, error code and client-safe description of a refusal.
fn error_of<'r>(config: &Config, refusal: &'r Refusal) -> (u16, Option<&'static str>, &'r str) {
    match refusal {
        Refusal::BadRequest(description) => (400, Some("invalid_request"), description.as_str()),
        Refusal::NoToken => (401, None, "an access token is required"),
        Refusal::BadToken(
            err @ TokenError::KeysMissing(KeyMiss {
                provider,
                kind: MissKind::NoKeys,
            }),
        ) if config.outage_status(*provider) == 401 => {
            (401, Some("invalid_token"), err.description())
        }
        Refusal::BadToken(err) if err.status() == 503 => {
            (503, Some("temporarily_unavailable"), err.description())
        }
        Refusal::BadToken(err) => (401, Some("invalid_token"), err.description()),
        Refusal::Forbidden(description) => (403, Some("insufficient_scope"), description),
        Refusal::StepUp(_) => (
            401,
            Some("insufficient_user_authentication"),
            "a stronger or more recent authentication is required",
        ),
        Refusal::BadProof(err) => (401, Some(err.error_code()), err.description()),
        Refusal::NonceRequired(_) => (
            401,
            Some(ProofError::NonceRequired.error_code()),
            ProofError::NonceRequired.description(),
        ),
        Refusal::ProofsUnavailable => (
            503,
            Some("temporarily_unavailable"),
            "DPoP proofs cannot be checked right now",
        ),
        Refusal::ProofKeyQuota(_) => (
            429,
            Some("too_many_requests"),
            "too many fresh DPoP proofs by this key; retry after the time in Retry-After",
        ),
    }
}

/// The answer to a refused request. `dpop_presented`: the token came as
/// `Authorization: DPoP`, so the challenge uses that scheme.
pub(super) fn denial(config: &Config, refusal: &Refusal, dpop_presented: bool) -> Denial {
    let (status, error, description) = error_of(config, refusal);
    if let Refusal::ProofKeyQuota(retry_after) = refusal {
        // Not an authentication failure (the token and proof are fine): no challenge
        // (RFC 6750 §3 is for refused credentials), a time to retry (RFC 6585 §4).
        return Denial {
            status,
            headers: vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("cache-control".to_owned(), "no-store".to_owned()),
                ("retry-after".to_owned(), retry_after.max(&1).to_string()),
            ],
            body: json!({"error": error, "error_description": description}).to_string(),
            cause: refusal.cause(),
        };
    }
    let dpop_offered = config
        .providers
        .iter()
        .any(|(_, provider)| provider.dpop != Binding::Off);
    let dpop_only = config
        .providers
        .iter()
        .all(|(_, provider)| provider.dpop == Binding::Required);
    let proof_refused = matches!(refusal, Refusal::BadProof(_) | Refusal::NonceRequired(_));
    let scheme = if proof_refused || dpop_presented || dpop_only {
        Scheme::DPoP
    } else {
        Scheme::Bearer
    };
    let mut challenge = format!("{scheme:?} realm=\"{}\"", config.realm);
    if let Some(error) = error {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ));
    }
    if let Refusal::StepUp(step_up) = refusal {
        // Values checked at load: no quotes or backslashes in acr values.
        if let Some(acr_values) = &step_up.acr_values {
            challenge.push_str(&format!(", acr_values=\"{acr_values}\""));
        }
        if let Some(max_age) = step_up.max_age {
            challenge.push_str(&format!(", max_age=\"{max_age}\""));
        }
    }
    if scheme == Scheme::DPoP {
        challenge.push_str(&format!(", algs=\"{}\"", config.dpop.algs()));
    }
    if let Some(metadata) = &config.resource_metadata {
        // RFC 9728 §5.1: where a client finds how to get a token for this resource.
        challenge.push_str(&format!(", resource_metadata=\"{}\"", metadata.url));
    }
    if scheme == Scheme::Bearer && dpop_offered && status == 401 {
        // Bearer tokens pass, and so do DPoP-bound ones: offer both (RFC 9449 §7.1).
        challenge.push_str(&format!(
            ", DPoP realm=\"{}\", algs=\"{}\"",
            config.realm,
            config.dpop.algs()
        ));
    }
    let mut headers = vec![
        ("www-authenticate".to_owned(), challenge),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cache-control".to_owned(), "no-store".to_owned()),
    ];
    if let Refusal::NonceRequired(nonce) = refusal {
        headers.push(("dpop-nonce".to_owned(), nonce.clone()));
    }
    if status == 503 {
        headers.push(("retry-after".to_owned(), "5".to_owned()));
    }
    let body = json!({
        "error": error.unwrap_or("unauthorized"),
        "error_description": description,
    })
    .to_string();
    Denial {
        status,
        headers,
        body,
        cause: refusal.cause(),
    }
}

/// The protected-resource metadata document (RFC 9728 §3.2): 200, JSON, cacheable.
pub(super) fn metadata_answer(metadata: &ResourceMetadata) -> LocalReply {
    LocalReply {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "cache-control".to_owned(),
                format!("public, max-age={}", metadata.cache_max_age_seconds),
            ),
        ],
        body: metadata.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_miss::KeyMiss;
    use crate::policy::StepUpChallenge;
    use crate::provider_id::ProviderId;
    use crate::request::{InvalidHost, PathError};

    /// Every `TokenError`; the match below stops compiling when a variant is added
    /// without being listed here.
    fn every_token_error() -> Vec<TokenError> {
        let miss = |kind| KeyMiss {
            provider: ProviderId::from_index(0),
            kind,
        };
        let all = vec![
            TokenError::MultipleTokens,
            TokenError::TooLarge { limit: 8192 },
            TokenError::Malformed("token is not a JWT"),
            TokenError::UnsupportedAlgorithm,
            TokenError::AlgorithmNotAllowed,
            TokenError::CriticalHeader,
            TokenError::WrongTokenType,
            TokenError::UnknownIssuer,
            TokenError::WrongLocation,
            TokenError::KeysMissing(miss(MissKind::NoKeys)),
            TokenError::KeysMissing(miss(MissKind::UnknownKid)),
            TokenError::NoSuitableKey,
            TokenError::BadSignature,
            TokenError::MissingExpiry,
            TokenError::Expired,
            TokenError::NotYetValid,
            TokenError::IssuedInFuture,
            TokenError::LifetimeTooLong,
            TokenError::AudienceMismatch,
            TokenError::ProviderNotAccepted,
            TokenError::BoundTokenAsBearer,
            TokenError::NotDpopBound,
            TokenError::DpopBindingRequired,
            TokenError::CertificateRequired,
            TokenError::CertificateMismatch,
            TokenError::CertificateBindingRequired,
            TokenError::UncheckedBinding,
            TokenError::MalformedConfirmation,
        ];
        for err in &all {
            match err {
                TokenError::MultipleTokens
                | TokenError::TooLarge { .. }
                | TokenError::Malformed(_)
                | TokenError::UnsupportedAlgorithm
                | TokenError::AlgorithmNotAllowed
                | TokenError::CriticalHeader
                | TokenError::WrongTokenType
                | TokenError::UnknownIssuer
                | TokenError::WrongLocation
                | TokenError::KeysMissing(_)
                | TokenError::NoSuitableKey
                | TokenError::BadSignature
                | TokenError::MissingExpiry
                | TokenError::Expired
                | TokenError::NotYetValid
                | TokenError::IssuedInFuture
                | TokenError::LifetimeTooLong
                | TokenError::AudienceMismatch
                | TokenError::ProviderNotAccepted
                | TokenError::BoundTokenAsBearer
                | TokenError::NotDpopBound
                | TokenError::DpopBindingRequired
                | TokenError::CertificateRequired
                | TokenError::CertificateMismatch
                | TokenError::CertificateBindingRequired
                | TokenError::UncheckedBinding
                | TokenError::MalformedConfirmation => {}
            }
        }
        all
    }

    /// Every `ProofError`, with the same guard.
    fn every_proof_error() -> Vec<ProofError> {
        let all = vec![
            ProofError::Missing,
            ProofError::Multiple,
            ProofError::TooLarge,
            ProofError::Malformed("DPoP proof is not a JWT"),
            ProofError::WrongType,
            ProofError::AlgorithmNotAllowed,
            ProofError::BadKey("DPoP proof jwk must be a public key"),
            ProofError::BadSignature,
            ProofError::WrongMethod,
            ProofError::WrongUri,
            ProofError::Stale,
            ProofError::IssuedInFuture,
            ProofError::MissingJti,
            ProofError::MissingAth,
            ProofError::WrongAth,
            ProofError::NonceRequired,
            ProofError::KeyMismatch,
            ProofError::Replayed,
        ];
        for err in &all {
            match err {
                ProofError::Missing
                | ProofError::Multiple
                | ProofError::TooLarge
                | ProofError::Malformed(_)
                | ProofError::WrongType
                | ProofError::AlgorithmNotAllowed
                | ProofError::BadKey(_)
                | ProofError::BadSignature
                | ProofError::WrongMethod
                | ProofError::WrongUri
                | ProofError::Stale
                | ProofError::IssuedInFuture
                | ProofError::MissingJti
                | ProofError::MissingAth
                | ProofError::WrongAth
                | ProofError::NonceRequired
                | ProofError::KeyMismatch
                | ProofError::Replayed => {}
            }
        }
        all
    }

    /// RFC 6750 §3: `error` and `error_description` values use only
    /// `%x20-21 / %x23-5B / %x5D-7E`.
    fn rfc6750_text(text: &str) -> bool {
        text.bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    }

    #[test]
    fn rfc6750_3_every_error_and_description_uses_only_the_allowed_characters() {
        let config =
            Config::from_json(include_str!("../../filter-config/aethermarket.json").as_bytes())
                .unwrap();
        let mut refusals: Vec<Refusal> = every_token_error()
            .into_iter()
            .map(Refusal::BadToken)
            .chain(every_proof_error().into_iter().map(Refusal::BadProof))
            .collect();
        refusals.extend([
            Refusal::BadRequest(InvalidHost.to_string()),
            Refusal::BadRequest(PathError::Empty.to_string()),
            Refusal::BadRequest(PathError::NotOriginForm.to_string()),
            Refusal::BadRequest(PathError::Ambiguous("a dot segment").to_string()),
            Refusal::NoToken,
            Refusal::Forbidden("the token does not grant access to this resource"),
            Refusal::StepUp(StepUpChallenge {
                acr_values: Some("mfa".into()),
                max_age: Some(600),
            }),
            Refusal::NonceRequired("nonce".into()),
            Refusal::ProofsUnavailable,
            Refusal::ProofKeyQuota(3),
        ]);
        for refusal in &refusals {
            let (_, error, description) = error_of(&config, refusal);
            assert!(error.is_none_or(rfc6750_text), "{error:?}");
            assert!(rfc6750_text(description), "{description:?}");
            assert!(!description.is_empty(), "{error:?}");
        }
    }

    #[test]
    fn rfc9728_5_1_and_rfc9470_every_challenge_points_to_the_metadata_in_the_tokens_scheme() {
        let config = Config::from_json(
            serde_json::json!({
                "realm": "api",
                "providers": [{"name": "p", "issuer": "https://idp.example/",
                    "audiences": ["https://api.example/v1"], "algorithms": ["HS256"],
                    "jwks": {"inline": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "alg": "HS256"}]}},
                    "dpop": "optional"}],
                "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
                "resource_metadata": {"resource": "https://api.example/v1"}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let metadata =
            "resource_metadata=\"https://api.example/.well-known/oauth-protected-resource/v1\"";
        let step_up = || {
            Refusal::StepUp(StepUpChallenge {
                acr_values: Some("mfa".into()),
                max_age: None,
            })
        };
        let challenge = |refusal: &Refusal, dpop_presented: bool| {
            denial(&config, refusal, dpop_presented)
                .headers
                .into_iter()
                .find(|(name, _)| name == "www-authenticate")
                .map(|(_, value)| value)
                .unwrap()
        };
        for (refusal, dpop_presented) in [
            (Refusal::NoToken, false),
            (Refusal::BadToken(TokenError::Expired), false),
            (Refusal::BadToken(TokenError::Expired), true),
            (
                Refusal::Forbidden("access to this resource is not allowed"),
                false,
            ),
            (
                Refusal::Forbidden("access to this resource is not allowed"),
                true,
            ),
            (step_up(), false),
            (step_up(), true),
            (Refusal::BadProof(ProofError::Replayed), true),
            (Refusal::NonceRequired("n".into()), true),
        ] {
            let challenge = challenge(&refusal, dpop_presented);
            assert!(challenge.contains(metadata), "{challenge}");
            // RFC 9449 §7.1 / RFC 9470 §3: a token that came as DPoP is challenged in the
            // DPoP scheme, a step-up included.
            assert_eq!(
                challenge.starts_with("DPoP realm=\"api\""),
                dpop_presented,
                "{challenge}"
            );
        }
        assert_eq!(
            challenge(&step_up(), true),
            format!("DPoP realm=\"api\", error=\"insufficient_user_authentication\", error_description=\"a stronger or more recent authentication is required\", acr_values=\"mfa\", algs=\"ES256 ES384 ES512 EdDSA RS256 PS256\", {metadata}")
        );
    }
}
