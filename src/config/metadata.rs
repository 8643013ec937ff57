//! Compiling `resource_metadata` (RFC 9728): the protected-resource metadata document the
//! filter serves at `/.well-known/oauth-protected-resource` followed by the resource's
//! path (RFC 9728 §3.1), built once from the configuration, and the URL 401 challenges
//! point to.

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
    /// The request paths answered with the document: the well-known path followed by the
    /// resource's path (just the well-known path for a resource without one).
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
    let (paths, url) = served_at(&raw.resource)?;
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
    // RFC 9728 §3.2: members with zero elements are omitted.
    match raw.scopes_supported {
        Some(scopes) if scopes.is_empty() => {
            return Err(ConfigError::new(
                field("scopes_supported"),
                "list at least one scope, or leave it out",
            ))
        }
        Some(scopes) => {
            document.insert("scopes_supported".into(), json!(scopes));
        }
        None => {}
    }
    // RFC 9728 §2 defines `[]` for this member ("no bearer methods are supported"), the
    // one array it keeps when empty.
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
    // RFC 9728 §2: `dpop_signing_alg_values_supported` lists the proof algorithms the
    // resource accepts, and `dpop_bound_access_tokens_required` says whether it *always*
    // requires DPoP-bound tokens (every provider `required`); both omitted without DPoP.
    if bindings(|p| p.dpop).any(|mode| mode != Binding::Off) {
        let algs: Vec<&str> = dpop.algorithms.iter().map(|alg| alg.name()).collect();
        document.insert("dpop_signing_alg_values_supported".into(), json!(algs));
        document.insert(
            "dpop_bound_access_tokens_required".into(),
            json!(bindings(|p| p.dpop).all(|mode| mode == Binding::Required)),
        );
    }
    // RFC 9728 §2: `tls_client_certificate_bound_access_tokens` says the resource
    // *supports* RFC 8705 certificate-bound tokens — true when any provider checks the
    // binding (optional or required), omitted (false) otherwise. (RFC 8705 §3.3–3.4 are
    // the authorization server's and the client's fields of the same name.)
    if bindings(|p| p.mtls_binding).any(|mode| mode != Binding::Off) {
        document.insert(
            "tls_client_certificate_bound_access_tokens".into(),
            json!(true),
        );
    }
    Ok(ResourceMetadata {
        paths,
        url,
        body: Value::Object(document).to_string(),
        cache_max_age_seconds: raw.cache_max_age_seconds,
    })
}

/// The request paths the document of `resource` is served at, and its URL (checked: an
/// https URL without query or fragment, nothing that would break a quoted challenge).
fn served_at(resource: &str) -> Result<(Vec<String>, String), ConfigError> {
    let field = |name: &str| format!("resource_metadata.{name}");
    let resource =
        HttpUrl::parse(resource).map_err(|why| ConfigError::new(field("resource"), why))?;
    if resource.path_and_query.contains('?') || resource.scheme != "https" {
        return Err(ConfigError::new(
            field("resource"),
            "must be an https URL without query or fragment (RFC 9728 §1.2)",
        ));
    }
    // RFC 9728 §3.1: the well-known path goes between the host and the resource's path.
    // The bare form belongs to the resource `https://host/` and is served only when that
    // is the resource: a client checking `resource` (§3.3) would reject this document there.
    let resource_path = resource.path_and_query.trim_end_matches('/');
    let paths = vec![format!("{WELL_KNOWN}{resource_path}")];
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
    Ok((paths, url))
}

/// RFC 6750 methods the providers accept bearer tokens by (RFC 9728 §2
/// `bearer_methods_supported`): `header` for `Authorization: Bearer` (RFC 6750 §2.1),
/// `query` for the `access_token` parameter (§2.3). Other headers, other parameters and
/// cookies are no RFC 6750 method, and a provider that requires DPoP takes no bearer
/// token at all (`Authorization: DPoP` is RFC 9449's scheme): none of those are listed,
/// and the list is empty (`[]`, "no bearer methods", as RFC 9728 §2 defines it) when
/// nothing is left.
fn bearer_methods(providers: &Providers, locations: &[TokenLocation]) -> Vec<&'static str> {
    let mut methods = Vec::new();
    for (_, provider) in providers.iter() {
        if provider.dpop == Binding::Required {
            continue;
        }
        for location in provider
            .locations
            .iter()
            .filter_map(|index| locations.get(*index))
        {
            let method = match location {
                TokenLocation::Header { name, prefix }
                    if name == "authorization" && prefix.eq_ignore_ascii_case("bearer ") =>
                {
                    "header"
                }
                TokenLocation::Query { name } if name == "access_token" => "query",
                _ => continue,
            };
            if !methods.contains(&method) {
                methods.push(method);
            }
        }
    }
    methods
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use serde_json::{json, Value};

    /// The metadata document of a configuration with these providers' extra fields.
    fn document(providers: &[Value]) -> Value {
        let providers: Vec<Value> = providers
            .iter()
            .enumerate()
            .map(|(index, extra)| {
                let mut provider = json!({
                    "name": format!("p{index}"), "issuer": format!("https://idp{index}.example/"),
                    "audiences": ["https://api.example"], "algorithms": ["HS256"],
                    "jwks": {"inline": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "alg": "HS256"}]}}
                });
                crate::test_support::merge(&mut provider, extra.clone());
                provider
            })
            .collect();
        let config = json!({
            "realm": "api",
            "providers": providers,
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
            "resource_metadata": {"resource": "https://api.example"}
        });
        let config = Config::from_json(config.to_string().as_bytes()).unwrap();
        serde_json::from_str(&config.resource_metadata.unwrap().body).unwrap()
    }

    #[test]
    fn rfc9728_s2_tls_client_certificate_bound_access_tokens_means_supported() {
        // One provider checks the binding, another does not: the resource supports
        // certificate-bound tokens (true), though not every token must be one.
        let mixed = document(&[json!({"mtls_binding": "optional"}), json!({})]);
        assert_eq!(mixed["tls_client_certificate_bound_access_tokens"], true);
        let optional = document(&[json!({"mtls_binding": "optional"})]);
        assert_eq!(optional["tls_client_certificate_bound_access_tokens"], true);
        let required = document(&[json!({"mtls_binding": "required"}), json!({})]);
        assert_eq!(required["tls_client_certificate_bound_access_tokens"], true);
        // No provider checks it: omitted, which RFC 9728 §2 reads as false.
        let none = document(&[json!({})]);
        assert!(none
            .get("tls_client_certificate_bound_access_tokens")
            .is_none());
    }

    #[test]
    fn rfc9728_s2_dpop_fields_list_proof_algorithms_and_require_only_when_always_required() {
        let optional = document(&[json!({"dpop": "optional"}), json!({"dpop": "required"})]);
        assert_eq!(
            optional["dpop_signing_alg_values_supported"],
            json!(["ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"])
        );
        assert_eq!(optional["dpop_bound_access_tokens_required"], false);
        let mixed = document(&[json!({"dpop": "required"}), json!({})]);
        assert_eq!(mixed["dpop_bound_access_tokens_required"], false);
        let always = document(&[json!({"dpop": "required"}), json!({"dpop": "required"})]);
        assert_eq!(always["dpop_bound_access_tokens_required"], true);
        let none = document(&[json!({})]);
        assert!(none.get("dpop_signing_alg_values_supported").is_none());
        assert!(none.get("dpop_bound_access_tokens_required").is_none());
    }

    #[test]
    fn rfc9728_s2_bearer_methods_are_only_rfc6750_methods_of_providers_taking_bearer_tokens() {
        let methods = |providers: &[Value]| document(providers)["bearer_methods_supported"].clone();
        assert_eq!(methods(&[json!({})]), json!(["header"]));
        // RFC 6750 §2.1 is the Authorization header with the Bearer scheme, §2.3 the
        // access_token parameter: other headers, parameters and cookies are no method.
        assert_eq!(
            methods(&[json!({"from": [
                {"header": "authorization", "prefix": "Bearer "},
                {"query": "access_token"},
                {"header": "x-api-token"},
                {"query": "token"},
                {"cookie": "at"}
            ]})]),
            json!(["header", "query"])
        );
        assert_eq!(
            methods(&[json!({"from": [{"header": "x-api-token"}]})]),
            json!([])
        );
        // Only DPoP-bound tokens are taken: no bearer method at all (RFC 9728 §2: `[]`).
        assert_eq!(methods(&[json!({"dpop": "required"})]), json!([]));
        assert_eq!(
            methods(&[json!({"dpop": "required"}), json!({"dpop": "optional"})]),
            json!(["header"])
        );
    }

    fn metadata(extra: Value) -> Result<crate::config::ResourceMetadata, String> {
        let mut resource_metadata = json!({"resource": "https://api.example/v1"});
        resource_metadata
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let config = json!({
            "realm": "api",
            "providers": [{"name": "p", "issuer": "https://idp.example/",
                "audiences": ["https://api.example/v1"], "algorithms": ["HS256"],
                "jwks": {"inline": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "alg": "HS256"}]}}}],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
            "resource_metadata": resource_metadata
        });
        Config::from_json(config.to_string().as_bytes())
            .map(|config| config.resource_metadata.unwrap())
            .map_err(|err| err.to_string())
    }

    #[test]
    fn rfc9728_s3_1_the_document_is_served_where_the_resource_path_puts_it_only() {
        let with_path = metadata(json!({})).unwrap();
        assert_eq!(
            with_path.paths,
            vec!["/.well-known/oauth-protected-resource/v1".to_owned()]
        );
        assert!(with_path.serves("GET", "/.well-known/oauth-protected-resource/v1"));
        assert!(with_path.serves("HEAD", "/.well-known/oauth-protected-resource/v1"));
        // The bare URL belongs to the resource https://api.example/ (§3.3 would reject
        // this document there).
        assert!(!with_path.serves("GET", "/.well-known/oauth-protected-resource"));
        assert!(!with_path.serves("POST", "/.well-known/oauth-protected-resource/v1"));
        let bare = metadata(json!({"resource": "https://api.example/"})).unwrap();
        assert_eq!(
            bare.paths,
            vec!["/.well-known/oauth-protected-resource".to_owned()]
        );
        assert_eq!(
            bare.url,
            "https://api.example/.well-known/oauth-protected-resource"
        );
    }

    #[test]
    fn rfc9728_s1_2_and_s3_2_bad_resources_and_empty_scopes_are_refused_at_load() {
        for (extra, error) in [
            (
                json!({"resource": "http://api.example/v1"}),
                "resource_metadata.resource",
            ),
            (
                json!({"resource": "https://api.example/v1?x=1"}),
                "resource_metadata.resource",
            ),
            (
                json!({"resource": "https://api.example/v1#f"}),
                "resource_metadata.resource",
            ),
            (
                json!({"resource": "api.example"}),
                "resource_metadata.resource",
            ),
            (json!({"resource": ""}), "resource_metadata.resource"),
            (json!({"resource": 7}), "resource_metadata.resource"),
            (
                json!({"scopes_supported": []}),
                "resource_metadata.scopes_supported",
            ),
            (
                json!({"authorization_servers": []}),
                "resource_metadata.authorization_servers",
            ),
        ] {
            let refused = metadata(extra.clone()).unwrap_err();
            assert!(refused.starts_with(error), "{extra}: {refused}");
        }
    }
}
