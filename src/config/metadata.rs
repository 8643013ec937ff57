//! Compiling `resource_metadata` (RFC 9728): the protected-resource metadata document the
//! filter serves at `/.well-known/oauth-protected-resource` (and the form with the
//! resource's path after it), built once from the configuration, and the URL 401
//! challenges point to.

use serde_json::{json, Map, Value};

use super::raw::RawResourceMetadata;
use crate::dpop::DpopSettings;
use crate::fields::ConfigError;
use crate::keysource::HttpUrl;
use crate::provider::{Binding, Providers};
use crate::token::TokenLocation;

/// The well-known path of protected-resource metadata (RFC 9728 §3).
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// The metadata document and where it is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMetadata {
    /// The request paths answered with the document: the well-known path, and the
    /// well-known path followed by the resource's path when it has one.
    pub paths: Vec<String>,
    /// The metadata URL `WWW-Authenticate` challenges carry (`resource_metadata`).
    pub url: String,
    /// The JSON document, serialized once.
    pub body: String,
    /// `Cache-Control: max-age` of the answer.
    pub cache_max_age_seconds: u32,
}

impl ResourceMetadata {
    /// Whether `method` and the canonical `path` ask for the document.
    pub fn serves(&self, method: &str, path: &str) -> bool {
        matches!(method, "GET" | "HEAD") && self.paths.iter().any(|known| known == path)
    }
}

pub(super) fn compile_metadata(
    raw: RawResourceMetadata,
    providers: &Providers,
    locations: &[TokenLocation],
    dpop: &DpopSettings,
) -> Result<ResourceMetadata, ConfigError> {
    let field = |name: &str| format!("resource_metadata.{name}");
    let resource =
        HttpUrl::parse(&raw.resource).map_err(|why| ConfigError::new(field("resource"), why))?;
    if resource.path_and_query.contains('?') || resource.scheme != "https" {
        return Err(ConfigError::new(
            field("resource"),
            "must be an https URL without query or fragment (RFC 9728 §1.2)",
        ));
    }
    let resource_path = resource.path_and_query.trim_end_matches('/');
    let mut paths = vec![WELL_KNOWN.to_owned()];
    if !resource_path.is_empty() {
        paths.push(format!("{WELL_KNOWN}{resource_path}"));
    }
    let url = format!(
        "{}://{}{}",
        resource.scheme,
        resource.authority(),
        paths.last().map_or(WELL_KNOWN, String::as_str)
    );
    if url.contains(['"', '\\']) {
        return Err(ConfigError::new(
            field("resource"),
            "must not contain quotes or backslashes",
        ));
    }
    let servers = match raw.authorization_servers {
        Some(servers) if servers.is_empty() => {
            return Err(ConfigError::new(
                field("authorization_servers"),
                "list at least one issuer, or leave it out to list the providers' issuers",
            ))
        }
        Some(servers) => servers,
        None => providers
            .iter()
            .map(|(_, provider)| provider.issuer.clone())
            .collect(),
    };
    let mut document = Map::new();
    document.insert("resource".into(), json!(raw.resource));
    document.insert("authorization_servers".into(), json!(servers));
    if let Some(scopes) = raw.scopes_supported {
        document.insert("scopes_supported".into(), json!(scopes));
    }
    document.insert(
        "bearer_methods_supported".into(),
        json!(bearer_methods(providers, locations)),
    );
    if let Some(name) = raw.resource_name {
        document.insert("resource_name".into(), json!(name));
    }
    if let Some(documentation) = raw.resource_documentation {
        document.insert("resource_documentation".into(), json!(documentation));
    }
    let bindings = |of: fn(&crate::provider::Provider) -> Binding| {
        providers.iter().map(move |(_, provider)| of(provider))
    };
    if bindings(|p| p.dpop).any(|mode| mode != Binding::Off) {
        let algs: Vec<&str> = dpop.algorithms.iter().map(|alg| alg.name()).collect();
        document.insert("dpop_signing_alg_values_supported".into(), json!(algs));
        document.insert(
            "dpop_bound_access_tokens_required".into(),
            json!(bindings(|p| p.dpop).all(|mode| mode == Binding::Required)),
        );
    }
    if bindings(|p| p.mtls_binding).any(|mode| mode != Binding::Off) {
        document.insert(
            "tls_client_certificate_bound_access_tokens".into(),
            json!(bindings(|p| p.mtls_binding).all(|mode| mode == Binding::Required)),
        );
    }
    Ok(ResourceMetadata {
        paths,
        url,
        body: Value::Object(document).to_string(),
        cache_max_age_seconds: raw.cache_max_age_seconds,
    })
}

/// RFC 6750 methods the providers accept tokens by: `header` for any header location,
/// `query` for a query parameter (cookies are not an RFC 6750 method).
fn bearer_methods(providers: &Providers, locations: &[TokenLocation]) -> Vec<&'static str> {
    let mut methods = Vec::new();
    for (_, provider) in providers.iter() {
        for location in provider
            .locations
            .iter()
            .filter_map(|index| locations.get(*index))
        {
            let method = match location {
                TokenLocation::Header { .. } => "header",
                TokenLocation::Query { .. } => "query",
                TokenLocation::Cookie { .. } => continue,
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    methods
}
