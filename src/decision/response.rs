//! The response a refused request gets: status, RFC 6750 `WWW-Authenticate` challenge
//! (error code and a description safe to show the client) and a small JSON body.

use serde_json::json;

use super::{AuthFailure, Cause, Denial};
use crate::config::{Config, ResourceMetadata};
use crate::key_miss::{KeyMiss, MissKind};
use crate::policy::StepUpChallenge;
use crate::token::TokenError;

/// The kinds of refusal, each with its status and RFC 6750 error code.
pub(super) enum Refusal {
    BadRequest(String),
    NoToken,
    BadToken(TokenError),
    Forbidden(&'static str),
    /// RFC 9470: the user must authenticate again, more strongly or more recently.
    StepUp(StepUpChallenge),
}

pub(super) fn denial(config: &Config, refusal: &Refusal) -> Denial {
    let (status, error, description): (u16, Option<&str>, &str) = match refusal {
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
    };
    let mut challenge = format!("Bearer realm=\"{}\"", config.realm);
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
    if let Some(metadata) = &config.resource_metadata {
        // RFC 9728 §5.1: where a client finds how to get a token for this resource.
        challenge.push_str(&format!(", resource_metadata=\"{}\"", metadata.url));
    }
    let mut headers = vec![
        ("www-authenticate".to_owned(), challenge),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cache-control".to_owned(), "no-store".to_owned()),
    ];
    if status == 503 {
        headers.push(("retry-after".to_owned(), "5".to_owned()));
    }
    let cause = match refusal {
        Refusal::BadRequest(_) => Cause::BadRequest,
        Refusal::NoToken => Cause::Unauthenticated(AuthFailure::Missing),
        Refusal::BadToken(err) => Cause::of_token_error(err),
        Refusal::Forbidden(_) => Cause::Denied,
        Refusal::StepUp(_) => Cause::Unauthenticated(AuthFailure::StepUp),
    };
    let body = json!({
        "error": error.unwrap_or("unauthorized"),
        "error_description": description,
    })
    .to_string();
    Denial {
        status,
        headers,
        body,
        cause,
    }
}

/// The protected-resource metadata document (RFC 9728 §3.2): 200, JSON, cacheable.
pub(super) fn metadata_answer(metadata: &ResourceMetadata) -> Denial {
    Denial {
        status: 200,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            (
                "cache-control".to_owned(),
                format!("public, max-age={}", metadata.cache_max_age_seconds),
            ),
        ],
        body: metadata.body.clone(),
        cause: Cause::ResourceMetadata,
    }
}
