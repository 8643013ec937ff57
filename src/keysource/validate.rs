//! Accepting what a fetch returned: status and size checks, then a JWKS with at least one
//! usable public key, or a discovery document naming the configured issuer and a
//! `jwks_uri` on its origin. A response that fails never replaces anything.

use std::fmt;

use serde_json::Value;

use super::HttpUrl;
use crate::jwks::{JwksError, KeySet, ParsedKeySet, SymmetricKeys};

/// A fetch response as the adapter saw it. `status` is `None` when the call failed
/// without any response (reset, no headers).
#[derive(Debug, Clone, Copy)]
pub struct FetchResponse<'a> {
    pub status: Option<u16>,
    pub cache_control: Option<&'a str>,
    /// The body size the host announced (checked before the body is read).
    pub body_size: usize,
    /// The body, when it was read (never when `body_size` is over the limit).
    pub body: Option<&'a [u8]>,
}

/// Why a fetch result was not used. Messages are for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The request could not be sent (unknown cluster, bad header).
    Dispatch(String),
    /// The call ended without a response: connection reset, no headers.
    NoResponse,
    /// A status other than 200 (a timeout or refused connection shows up here as the
    /// 504 or 503 Envoy answers itself).
    Status(u16),
    TooLarge {
        size: usize,
        limit: usize,
    },
    EmptyBody,
    Jwks(JwksError),
    Discovery(DiscoveryError),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Dispatch(why) => write!(f, "request not sent: {why}"),
            FetchError::NoResponse => f.write_str("no response (connection reset or failed)"),
            FetchError::Status(504) => f.write_str("HTTP 504 (timeout or upstream timeout)"),
            FetchError::Status(status) => write!(f, "HTTP {status}"),
            FetchError::TooLarge { size, limit } => {
                write!(f, "response of {size} bytes is over the {limit}-byte limit")
            }
            FetchError::EmptyBody => f.write_str("empty response body"),
            FetchError::Jwks(err) => err.fmt(f),
            FetchError::Discovery(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for FetchError {}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    NotJson(String),
    IssuerMismatch { expected: String, found: String },
    MissingJwksUri,
    BadJwksUri(String),
    CrossOrigin { jwks_uri: String, issuer: String },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiscoveryError::NotJson(err) => write!(f, "discovery document is not a JSON object: {err}"),
            DiscoveryError::IssuerMismatch { expected, found } => write!(
                f,
                "discovery document names issuer {found:?}, not the configured {expected:?}"
            ),
            DiscoveryError::MissingJwksUri => {
                f.write_str("discovery document has no \"jwks_uri\" string")
            }
            DiscoveryError::BadJwksUri(why) => write!(f, "discovery jwks_uri refused: {why}"),
            DiscoveryError::CrossOrigin { jwks_uri, issuer } => write!(
                f,
                "jwks_uri {jwks_uri:?} is not on the issuer's origin ({issuer:?}); set allow_cross_origin_jwks_uri to accept it"
            ),
        }
    }
}

impl std::error::Error for DiscoveryError {}

/// A JWKS that passed validation: the keys claimgate can use (those it cannot are
/// listed, for one log line each) and the `max-age` the server sent.
#[derive(Debug, Clone)]
pub struct ValidJwks {
    pub parsed: ParsedKeySet,
    pub max_age_seconds: Option<u64>,
}

/// Checks a response's status and size and returns its body.
fn checked_body<'a>(response: &FetchResponse<'a>, limit: usize) -> Result<&'a [u8], FetchError> {
    match response.status {
        None => return Err(FetchError::NoResponse),
        Some(200) => {}
        Some(status) => return Err(FetchError::Status(status)),
    }
    let size = response.body.map_or(response.body_size, |body| {
        body.len().max(response.body_size)
    });
    if size > limit {
        return Err(FetchError::TooLarge { size, limit });
    }
    match response.body {
        Some(body) if !body.is_empty() => Ok(body),
        _ => Err(FetchError::EmptyBody),
    }
}

/// Validates a JWKS response before it may replace anything: HTTP 200 only, within the
/// size limit, valid JSON, at least one usable signing key. Symmetric keys are never
/// taken from a remote JWKS.
pub fn validate_jwks(response: &FetchResponse<'_>, limit: usize) -> Result<ValidJwks, FetchError> {
    let body = checked_body(response, limit)?;
    let parsed = KeySet::parse_jwks(body, SymmetricKeys::Refused).map_err(FetchError::Jwks)?;
    Ok(ValidJwks {
        parsed,
        max_age_seconds: response.cache_control.and_then(max_age_seconds),
    })
}

/// Where discovery says the JWKS is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksLocation {
    pub authority: String,
    pub path: String,
}

/// Validates a discovery document: its `issuer` must equal the configured issuer exactly,
/// and its `jwks_uri` must be an http(s) URL on the issuer's origin unless cross-origin
/// URIs are allowed.
pub fn validate_discovery(
    response: &FetchResponse<'_>,
    limit: usize,
    issuer: &str,
    allow_cross_origin: bool,
) -> Result<JwksLocation, FetchError> {
    let body = checked_body(response, limit)?;
    let document: Value = serde_json::from_slice(body)
        .map_err(|err| FetchError::Discovery(DiscoveryError::NotJson(err.to_string())))?;
    let document = document
        .as_object()
        .ok_or_else(|| FetchError::Discovery(DiscoveryError::NotJson("not an object".into())))?;
    let found = document.get("issuer").and_then(Value::as_str).unwrap_or("");
    if found != issuer {
        return Err(FetchError::Discovery(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: found.to_owned(),
        }));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or(FetchError::Discovery(DiscoveryError::MissingJwksUri))?;
    let url = HttpUrl::parse(jwks_uri)
        .map_err(|why| FetchError::Discovery(DiscoveryError::BadJwksUri(why.to_owned())))?;
    let same_origin = HttpUrl::parse(issuer).is_ok_and(|issuer| issuer.origin() == url.origin());
    if !same_origin && !allow_cross_origin {
        return Err(FetchError::Discovery(DiscoveryError::CrossOrigin {
            jwks_uri: jwks_uri.to_owned(),
            issuer: issuer.to_owned(),
        }));
    }
    Ok(JwksLocation {
        authority: url.authority(),
        path: url.path_and_query,
    })
}

/// The `max-age` of a `Cache-Control` value, in seconds. `no-cache` and `no-store` count
/// as 0 (the configured minimum then applies).
pub fn max_age_seconds(cache_control: &str) -> Option<u64> {
    let mut max_age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age = value.trim().trim_matches('"').parse::<u64>().ok();
        }
    }
    max_age
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::Alg;
    use crate::keysource::test_support::*;
    use crate::mint::SigningKey;
    use serde_json::json;

    #[test]
    fn a_good_jwks_is_accepted_with_its_max_age() {
        let body = jwks_body();
        let valid = validate_jwks(&ok(&body), 256 * 1024).unwrap();
        assert_eq!(valid.parsed.keys.len(), 1);
        assert_eq!(valid.max_age_seconds, Some(900));
    }

    #[test]
    fn bad_responses_are_refused() {
        let body = jwks_body();
        let limit = 256 * 1024;
        let no_response = FetchResponse {
            status: None,
            cache_control: None,
            body_size: 0,
            body: None,
        };
        assert_eq!(
            validate_jwks(&no_response, limit).unwrap_err(),
            FetchError::NoResponse
        );
        for status in [500, 503, 504, 301, 204] {
            let response = FetchResponse {
                status: Some(status),
                ..ok(&body)
            };
            assert_eq!(
                validate_jwks(&response, limit).unwrap_err(),
                FetchError::Status(status)
            );
        }
        let announced_big = FetchResponse {
            body_size: limit + 1,
            body: None,
            ..ok(&body)
        };
        assert!(matches!(
            validate_jwks(&announced_big, limit),
            Err(FetchError::TooLarge { .. })
        ));
        assert!(matches!(
            validate_jwks(&ok(&body), 10),
            Err(FetchError::TooLarge { .. })
        ));
        assert_eq!(
            validate_jwks(&ok(b""), limit).unwrap_err(),
            FetchError::EmptyBody
        );
        assert!(matches!(
            validate_jwks(&ok(b"<html>oops</html>"), limit),
            Err(FetchError::Jwks(JwksError::NotJson(_)))
        ));
        assert!(matches!(
            validate_jwks(&ok(br#"{"keys": []}"#), limit),
            Err(FetchError::Jwks(JwksError::NoUsableKey(_)))
        ));
    }

    #[test]
    fn unusable_keys_are_skipped_and_symmetric_keys_never_come_from_remote() {
        let good = SigningKey::generate(Alg::EdDsa, Some("ed")).unwrap();
        let body = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
            {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
            good.public_jwk()
        ]})
        .to_string();
        let valid = validate_jwks(&ok(body.as_bytes()), 1 << 20).unwrap();
        assert_eq!(valid.parsed.keys.len(), 1);
        assert_eq!(valid.parsed.skipped.len(), 2);
        let only_secret =
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}"#;
        assert!(validate_jwks(&ok(only_secret), 1 << 20).is_err());
    }

    #[test]
    fn discovery_checks_the_issuer_and_the_jwks_uri_origin() {
        let issuer = "https://tenant.auth0.com/";
        let document = |iss: &str, uri: &str| {
            json!({"issuer": iss, "jwks_uri": uri, "authorization_endpoint": "x"}).to_string()
        };
        let good = document(issuer, "https://tenant.auth0.com/.well-known/jwks.json");
        assert_eq!(
            validate_discovery(&ok(good.as_bytes()), 1 << 16, issuer, false).unwrap(),
            JwksLocation {
                authority: "tenant.auth0.com".into(),
                path: "/.well-known/jwks.json".into()
            }
        );
        let other = document("https://evil.example/", "https://tenant.auth0.com/jwks");
        assert!(matches!(
            validate_discovery(&ok(other.as_bytes()), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::IssuerMismatch { .. }))
        ));
        let cross = document(issuer, "https://keys.example:8443/t/jwks?x=1");
        assert!(matches!(
            validate_discovery(&ok(cross.as_bytes()), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::CrossOrigin { .. }))
        ));
        assert_eq!(
            validate_discovery(&ok(cross.as_bytes()), 1 << 16, issuer, true).unwrap(),
            JwksLocation {
                authority: "keys.example:8443".into(),
                path: "/t/jwks?x=1".into()
            }
        );
        for bad in [
            "ftp://tenant.auth0.com/x",
            "https://u:p@tenant.auth0.com/x",
            "jwks.json",
        ] {
            let doc = document(issuer, bad);
            assert!(
                matches!(
                    validate_discovery(&ok(doc.as_bytes()), 1 << 16, issuer, true),
                    Err(FetchError::Discovery(DiscoveryError::BadJwksUri(_)))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            validate_discovery(&ok(b"[1]"), 1 << 16, issuer, false),
            Err(FetchError::Discovery(DiscoveryError::NotJson(_)))
        ));
    }
}
