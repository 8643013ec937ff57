//! Shared fixtures of the key source tests.

pub(crate) use super::*;
use crate::jwks::Alg;
use crate::mint::SigningKey;
use crate::time::UnixMillis;
use serde_json::json;

pub(crate) const S: u64 = 1000;
pub(crate) const NOW: UnixMillis = UnixMillis(1_800_000_000_000);

pub(crate) fn source() -> RemoteSource {
    RemoteSource {
        kind: SourceKind::Jwks(Endpoint {
            cluster: "idp".into(),
            authority: "tenant.auth0.com".into(),
            path: "/.well-known/jwks.json".into(),
        }),
        issuer: "https://tenant.auth0.com/".into(),
        timeout_ms: 5 * S,
        cache_duration_ms: 600 * S,
        min_cache_duration_ms: 300 * S,
        max_cache_duration_ms: 86_400 * S,
        max_stale_ms: 86_400 * S,
        unknown_kid_interval_ms: 30 * S,
        max_response_bytes: 256 * 1024,
        outage_status: 503,
        retry_initial_ms: S,
        retry_max_ms: 300 * S,
        shared_key: "claimgate/idp/0".into(),
    }
}

pub(crate) fn jwks_body() -> Vec<u8> {
    let key = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
    json!({"keys": [key.public_jwk()]}).to_string().into_bytes()
}

pub(crate) fn ok(body: &[u8]) -> FetchResponse<'_> {
    FetchResponse {
        status: Some(200),
        cache_control: Some("public, max-age=900"),
        body_size: body.len(),
        body: Some(body),
    }
}
