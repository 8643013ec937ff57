//! What a provider's remote keys come from: the compiled `jwks.remote` or
//! `jwks.discovery` settings, and which request a fetch cycle starts with.

use std::fmt;

use super::{fnv1a, Control};

/// Where a provider's remote keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// A JWKS document at a fixed path, fetched through an Envoy cluster.
    Jwks(Endpoint),
    /// The issuer's OpenID discovery document, whose `jwks_uri` is then fetched.
    Discovery {
        document: Endpoint,
        /// The cluster the `jwks_uri` is fetched through.
        jwks_cluster: String,
        /// Accept a `jwks_uri` whose origin is not the issuer's.
        allow_cross_origin: bool,
    },
}

/// One HTTP resource behind an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub cluster: String,
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// A provider's remote key source, compiled from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSource {
    pub kind: SourceKind,
    /// The provider's exact issuer (a discovery document must name it).
    pub issuer: String,
    pub timeout_ms: u64,
    /// Cache duration when the response has no usable `max-age`.
    pub cache_duration_ms: u64,
    pub min_cache_duration_ms: u64,
    pub max_cache_duration_ms: u64,
    /// How long after its cache duration a key set may still be used while refreshes fail.
    pub max_stale_ms: u64,
    /// At most one unknown-`kid` refetch per this interval (per provider, per Envoy).
    pub unknown_kid_interval_ms: u64,
    pub max_response_bytes: usize,
    /// Status for requests when no keys are available: 503 (default) or 401.
    pub outage_status: u16,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// The Envoy shared-data key prefix of this source (provider name plus a hash of the
    /// source, so two configurations in one Envoy never share a record by accident).
    pub shared_key: String,
}

impl RemoteSource {
    /// How long one fetch cycle may take: the timeout per request (two requests with
    /// discovery), plus a margin. Bounds the lease and how long requests wait.
    pub fn cycle_ms(&self) -> u64 {
        let requests = match self.kind {
            SourceKind::Jwks(_) => 1,
            SourceKind::Discovery { .. } => 2,
        };
        self.timeout_ms
            .saturating_mul(requests)
            .saturating_add(1000)
    }

    /// The shared-data key prefix of a provider's source: the provider name plus a hash of
    /// the source's [canonical text](SourceKind::canonical) and issuer, so two
    /// configurations in one Envoy never share a record by accident.
    pub fn shared_key_for(provider: &str, kind: &SourceKind, issuer: &str) -> String {
        let mut canonical = kind.canonical();
        push_field(&mut canonical, "issuer", issuer);
        format!("claimgate/{provider}/{:016x}", fnv1a(canonical.as_bytes()))
    }

    /// Shared-data key of the small control record.
    pub fn control_key(&self) -> String {
        format!("{}/control", self.shared_key)
    }

    /// Shared-data key of the validated JWKS text.
    pub fn keys_key(&self) -> String {
        format!("{}/jwks", self.shared_key)
    }

    /// What to fetch first: the JWKS itself, or the discovery document.
    pub fn first_request(&self, control: &Control) -> FetchRequest {
        match &self.kind {
            SourceKind::Jwks(endpoint) => FetchRequest::jwks(endpoint.clone()),
            SourceKind::Discovery {
                document,
                jwks_cluster,
                ..
            } => match (&control.jwks_authority, &control.jwks_path) {
                (Some(authority), Some(path)) => FetchRequest::jwks(Endpoint {
                    cluster: jwks_cluster.clone(),
                    authority: authority.clone(),
                    path: path.clone(),
                }),
                _ => FetchRequest {
                    step: FetchStep::Discovery,
                    endpoint: document.clone(),
                },
            },
        }
    }
}

impl SourceKind {
    /// The source written out field by field (`name=LEN:value;`, lengths in bytes), so
    /// two different sources never have the same text. Shared-data keys hash this; it
    /// does not depend on `Debug` output.
    pub fn canonical(&self) -> String {
        let mut text = String::new();
        match self {
            SourceKind::Jwks(endpoint) => {
                push_field(&mut text, "kind", "jwks");
                endpoint.push_canonical(&mut text, "jwks");
            }
            SourceKind::Discovery {
                document,
                jwks_cluster,
                allow_cross_origin,
            } => {
                push_field(&mut text, "kind", "discovery");
                document.push_canonical(&mut text, "document");
                push_field(&mut text, "jwks_cluster", jwks_cluster);
                let cross_origin = if *allow_cross_origin { "yes" } else { "no" };
                push_field(&mut text, "allow_cross_origin", cross_origin);
            }
        }
        text
    }
}

impl Endpoint {
    fn push_canonical(&self, text: &mut String, prefix: &str) {
        push_field(text, &format!("{prefix}.cluster"), &self.cluster);
        push_field(text, &format!("{prefix}.authority"), &self.authority);
        push_field(text, &format!("{prefix}.path"), &self.path);
    }
}

/// Appends `name=LEN:value;`.
fn push_field(text: &mut String, name: &str, value: &str) {
    text.push_str(&format!("{name}={}:{value};", value.len()));
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} via cluster {}",
            self.authority, self.path, self.cluster
        )
    }
}

/// Which document a fetch asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStep {
    Discovery,
    Jwks,
}

/// One request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub step: FetchStep,
    pub endpoint: Endpoint,
}

impl FetchRequest {
    fn jwks(endpoint: Endpoint) -> FetchRequest {
        FetchRequest {
            step: FetchStep::Jwks,
            endpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::test_support::*;
    #[test]
    fn discovery_sources_fetch_the_document_until_a_jwks_uri_is_known() {
        let mut source = source();
        source.kind = SourceKind::Discovery {
            document: Endpoint {
                cluster: "idp".into(),
                authority: "tenant.auth0.com".into(),
                path: "/.well-known/openid-configuration".into(),
            },
            jwks_cluster: "keys".into(),
            allow_cross_origin: false,
        };
        assert_eq!(source.cycle_ms(), 11 * S);
        let control = Control::default();
        assert_eq!(source.first_request(&control).step, FetchStep::Discovery);
        let found = control.discovered(&JwksLocation {
            authority: "tenant.auth0.com".into(),
            path: "/jwks".into(),
        });
        let request = source.first_request(&found);
        assert_eq!(request.step, FetchStep::Jwks);
        assert_eq!(request.endpoint.cluster, "keys");
        let failed = found.failed(&source, NOW, 0);
        assert_eq!(source.first_request(&failed).step, FetchStep::Discovery);
    }

    #[test]
    fn shared_keys_come_from_the_canonical_text_of_the_source() {
        let source = source();
        assert_eq!(
            source.kind.canonical(),
            "kind=4:jwks;jwks.cluster=3:idp;jwks.authority=16:tenant.auth0.com;jwks.path=22:/.well-known/jwks.json;"
        );
        let key = RemoteSource::shared_key_for("idp", &source.kind, &source.issuer);
        assert!(key.starts_with("claimgate/idp/"), "{key}");
        let mut moved = source.kind.clone();
        let SourceKind::Jwks(endpoint) = &mut moved else {
            panic!("the test source is a JWKS source: {moved:?}");
        };
        endpoint.path = "/jwks".into();
        assert_ne!(
            RemoteSource::shared_key_for("idp", &moved, &source.issuer),
            key
        );
        assert_ne!(
            RemoteSource::shared_key_for("idp", &source.kind, "https://other/"),
            key
        );
    }
}
