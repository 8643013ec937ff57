//! The JSON configuration, and its compilation into the form requests are decided with.
//!
//! Compilation happens once, at load. Every error names the exact field
//! (`rules[2].require[0].claim: …`) so Envoy refuses the configuration with a message a
//! person can act on, and nothing is half-applied.
//!
//! `raw` is the document as written; `provider`, `remote` and `identity` compile
//! their sections; this module compiles the whole and holds the result, [`Config`].

#[cfg(test)]
mod attack_tests;
#[cfg(test)]
mod bounds_tests;
mod dpop;
mod identity;
mod metadata;
mod provider;
mod raw;
mod remote;
#[cfg(test)]
mod schema_tests;

use serde::Deserialize;

use crate::cache::CacheLimits;
pub use crate::dpop::DpopSettings;
pub use crate::fields::{claim_path, ConfigError, ConfigWarning};
use crate::identity::IdentityMapping;
use crate::jwks::KeyRing;
use crate::policy::{compile_policy, Policy};
pub use crate::policy::{DefaultAccess, Mode};
use crate::provider::{Binding, Provider, ProviderId, Providers};
use crate::token::TokenLocation;
use dpop::compile_dpop;
use identity::compile_identity;
use metadata::compile_metadata;
pub use metadata::ResourceMetadata;
use provider::compile_provider;
use raw::{RawConfig, RawProvider, RawTokenCache};

/// Whether Envoy's own crypto library checks the RS* and ES* signatures it can (after a
/// self-test when the plugin starts), or the module checks every signature itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostCryptoMode {
    /// Use the host's `verify_signature` for the families that pass the self-test.
    #[default]
    Auto,
    /// Check every signature in the module.
    Off,
}

// ---------------------------------------------------------------------------------------
// The compiled form.

/// A compiled configuration: everything a request decision needs, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub realm: String,
    /// One entry per provider: verification settings, inline keys, remote key source.
    pub providers: Providers,
    /// Every distinct token location of every provider; providers refer to these by index.
    pub locations: Vec<TokenLocation>,
    /// The rules, tiers, default and mode, compiled and indexed.
    pub policy: Policy,
    /// Legal but suspicious parts of the configuration (see [`ConfigWarning`]).
    pub warnings: Vec<ConfigWarning>,
    pub identity: IdentityMapping,
    /// Bounds of the per-VM verified-token cache.
    pub token_cache: CacheLimits,
    pub host_crypto: HostCryptoMode,
    /// Whether the filter writes its explanation to Envoy filter state
    /// `wasm.claimgate.decision` on every request (for access logs).
    pub decision_filter_state: bool,
    /// Let CORS preflights (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
    /// through without a token, as Envoy's `jwt_authn` `bypass_cors_preflight` does.
    pub bypass_cors_preflight: bool,
    /// How DPoP proofs are checked (used by providers with `dpop`).
    pub dpop: DpopSettings,
    /// The protected-resource metadata the filter serves, when configured (RFC 9728).
    pub resource_metadata: Option<ResourceMetadata>,
    /// Whether any provider binds tokens to the TLS client certificate (the adapter reads
    /// the certificate's digest only then).
    pub uses_client_certificate: bool,
    /// Whether a decision reads the request's scheme — a `request: scheme` condition, or
    /// DPoP's `htu` without a configured `htu_scheme` — so the adapter asks Envoy whether
    /// the connection is TLS (never trusting a client's `:scheme`).
    pub uses_connection_scheme: bool,
    /// The index in `locations` of `Authorization: DPoP`, when a provider takes DPoP.
    pub dpop_location: Option<usize>,
}

impl Config {
    /// Parses and compiles a JSON configuration.
    pub fn from_json(text: &[u8]) -> Result<Config, ConfigError> {
        let deserializer = &mut serde_json::Deserializer::from_slice(text);
        let raw: RawConfig = serde_path_to_error::deserialize(deserializer).map_err(|err| {
            let path = match err.path().to_string() {
                unknown if unknown.chars().all(|c| c == '?' || c == '.') => ".".to_owned(),
                path => path,
            };
            ConfigError::new(path, with_hint(err.into_inner().to_string()))
        })?;
        compile(raw)
    }

    /// The key ring this configuration starts with: each provider's inline keys.
    pub fn initial_keys(&self) -> KeyRing {
        KeyRing::new(
            self.providers
                .iter()
                .map(|(_, provider)| provider.inline_keys.clone())
                .collect(),
        )
    }

    /// The status a request gets while `provider` has no keys: 503 unless its remote
    /// source says 401.
    pub fn outage_status(&self, provider: ProviderId) -> u16 {
        self.providers
            .get(provider)
            .map_or(503, Provider::outage_status)
    }

    /// The provider named `name`.
    pub fn provider_id(&self, name: &str) -> Option<ProviderId> {
        self.providers.id_of(name)
    }
}

/// A serde message, with the forms a required section can take when it is missing.
fn with_hint(message: String) -> String {
    if message.starts_with("missing field `jwks`") {
        return format!(
            "{message}: give the provider's keys as one of jwks.inline (keys in the \
             configuration), jwks.remote (a JWKS fetched through an Envoy cluster) or \
             jwks.discovery (the issuer's OpenID discovery document, then its jwks_uri)"
        );
    }
    message
}

/// Providers whose issuer has no scheme: issuers are URLs (`https://TENANT.auth0.com/`) and
/// a token's `iss` must equal the issuer exactly, so tokens are likely refused. Legal (a few
/// providers issue bare host names), hence a warning.
fn issuer_warnings(providers: &Providers) -> Vec<ConfigWarning> {
    providers
        .iter()
        .enumerate()
        .filter(|(_, (_, provider))| !provider.issuer.contains("://"))
        .map(|(index, (_, provider))| ConfigWarning {
            deployment: false,
            path: format!("providers[{index}].issuer"),
            message: format!(
                "issuer '{}' has no scheme: a token's iss must equal the issuer exactly, and \
                 identity providers issue URLs (https://{}…) — tokens from this provider will \
                 likely be refused as from an unknown issuer",
                provider.issuer, provider.issuer
            ),
        })
        .collect()
}

fn compile(raw: RawConfig) -> Result<Config, ConfigError> {
    check_realm(&raw.realm)?;
    let (providers, locations) = compile_providers(raw.providers)?;
    let provider_names: Vec<&str> = providers
        .iter()
        .map(|(_, provider)| provider.name.as_str())
        .collect();
    let identity = compile_identity(raw.identity, &raw.tiers)?;
    let (policy, mut warnings) = compile_policy(
        raw.rules,
        raw.tiers,
        raw.default_access,
        raw.mode,
        &provider_names,
    )?;
    let dpop = compile_dpop(raw.dpop_proofs)?;
    let resource_metadata = raw
        .resource_metadata
        .map(|metadata| compile_metadata(metadata, &providers, &locations, &dpop))
        .transpose()?;
    warnings.extend(
        providers
            .iter()
            .enumerate()
            .filter(|(_, (_, provider))| provider.insecure_accept_unchecked_binding)
            .map(|(index, _)| ConfigWarning {
                deployment: false,
                path: format!("providers[{index}].insecure_accept_unchecked_binding"),
                message: "tokens bound to a key or certificate this provider does not check \
                          (cnf) are accepted as bearer tokens: a stolen bound token works \
                          here (RFC 9449 §7.2, RFC 8705 §3)"
                    .to_owned(),
            }),
    );
    warnings.extend(issuer_warnings(&providers));
    warnings.extend(shared_gateway_warning(&policy));
    warnings.extend(nonce_replicas_warning(&dpop));
    let uses_client_certificate = providers
        .iter()
        .any(|(_, provider)| provider.mtls_binding != Binding::Off);
    let uses_connection_scheme = policy.uses_scheme
        || (dpop.htu_scheme.is_none()
            && providers
                .iter()
                .any(|(_, provider)| provider.dpop != Binding::Off));
    let dpop_location = locations
        .iter()
        .position(|location| *location == TokenLocation::dpop());
    Ok(Config {
        realm: raw.realm,
        providers,
        locations,
        policy,
        warnings,
        identity,
        token_cache: compile_token_cache(&raw.token_cache)?,
        host_crypto: raw.host_crypto,
        decision_filter_state: raw.decision_filter_state,
        bypass_cors_preflight: raw.bypass_cors_preflight,
        dpop,
        resource_metadata,
        uses_client_certificate,
        uses_connection_scheme,
        dpop_location,
    })
}

/// With `default_access: deny`, a rule without `hosts` decides that path on every host the
/// filter sees. Right for an Envoy in front of one API; on a gateway shared with other
/// applications (ACME HTTP-01 challenges included), their requests are refused. The filter
/// cannot tell which it is, so this is a deployment warning.
fn shared_gateway_warning(policy: &Policy) -> Option<ConfigWarning> {
    if policy.default_access != DefaultAccess::Deny {
        return None;
    }
    let unscoped: Vec<&str> = policy
        .rules
        .iter()
        .filter(|rule| rule.route.hosts.is_empty())
        .map(|rule| rule.name.as_str())
        .collect();
    if unscoped.is_empty() {
        return None;
    }
    Some(ConfigWarning {
        deployment: true,
        path: "default_access".to_owned(),
        message: format!(
            "default_access is deny and {} rule(s) name no hosts ({}): the policy decides every \
             host the filter runs for, so on a gateway shared with other applications their \
             requests (ACME HTTP-01 challenges included) are refused. Attach the filter to this \
             API's gateway or route only (Istio WasmPlugin targetRefs, Envoy Gateway \
             EnvoyExtensionPolicy targetRefs) and give the rules this API's hosts \
             (envoy/deploy/README.md, \"A shared gateway\")",
            unscoped.len(),
            unscoped.join(", ")
        ),
    })
}

/// With `use_dpop_nonce` and no `nonce_secrets`, each Envoy makes nonces with a random
/// key of its own, which other replicas refuse: a deployment warning, since one Envoy or
/// sticky sessions make it right.
fn nonce_replicas_warning(dpop: &DpopSettings) -> Option<ConfigWarning> {
    (dpop.use_dpop_nonce && dpop.nonce_secrets.is_none()).then(|| ConfigWarning {
        deployment: true,
        path: "dpop_proofs.nonce_secrets".to_owned(),
        message: "use_dpop_nonce is on without nonce_secrets: each Envoy makes nonces with a \
                  random key of its own, so a nonce from one replica is refused by another \
                  (a new use_dpop_nonce challenge). Run a single replica or sticky sessions, \
                  or give every replica the same secret through nonce_secrets \
                  (filter-config/REPLICAS.md)"
            .to_owned(),
    })
}

fn check_realm(realm: &str) -> Result<(), ConfigError> {
    if realm.is_empty() || realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "realm",
            "must be non-empty text without quotes, backslashes or control characters",
        ));
    }
    Ok(())
}

/// Compiles `providers`: each entry, with names and issuers unique.
fn compile_providers(
    raw: Vec<RawProvider>,
) -> Result<(Providers, Vec<TokenLocation>), ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::new(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut locations: Vec<TokenLocation> = Vec::new();
    let mut providers = Vec::with_capacity(raw.len());
    for (index, raw_provider) in raw.into_iter().enumerate() {
        let path = format!("providers[{index}]");
        if providers
            .iter()
            .any(|p: &Provider| p.name == raw_provider.name)
        {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate provider name '{}'", raw_provider.name),
            ));
        }
        if providers
            .iter()
            .any(|p: &Provider| p.issuer == raw_provider.issuer)
        {
            return Err(ConfigError::new(
                format!("{path}.issuer"),
                "two providers with the same issuer",
            ));
        }
        providers.push(compile_provider(raw_provider, &path, &mut locations)?);
    }
    Ok((Providers::new(providers), locations))
}

fn compile_token_cache(cache: &RawTokenCache) -> Result<CacheLimits, ConfigError> {
    if cache.max_entries > 1_000_000 {
        return Err(ConfigError::new(
            "token_cache.max_entries",
            "must be at most 1000000",
        ));
    }
    if cache.max_bytes > 1 << 30 {
        return Err(ConfigError::new(
            "token_cache.max_bytes",
            "must be at most 1 GiB",
        ));
    }
    if cache.ttl_seconds == 0 {
        return Err(ConfigError::new(
            "token_cache.ttl_seconds",
            "must be positive; set max_entries to 0 to turn the cache off",
        ));
    }
    Ok(CacheLimits {
        max_entries: cache.max_entries,
        max_bytes: cache.max_bytes,
        ttl_seconds: i64::from(cache.ttl_seconds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::Alg;
    use crate::mint::SigningKey;
    use serde_json::json;
    use serde_json::Value;

    pub(crate) fn minimal(extra: Value) -> Value {
        let key = SigningKey::generate(Alg::Hs256, Some("h")).unwrap();
        let mut config = json!({
            "providers": [{
                "name": "idp",
                "issuer": "https://idp.example/",
                "audiences": ["api"],
                "algorithms": ["HS256"],
                "jwks": {"inline": {"keys": [key.public_jwk()]}}
            }],
            "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}]
        });
        crate::test_support::merge(&mut config, extra);
        config
    }

    fn error_of(config: Value) -> ConfigError {
        Config::from_json(config.to_string().as_bytes()).unwrap_err()
    }

    #[test]
    fn a_minimal_config_compiles_with_safe_defaults() {
        let config = Config::from_json(minimal(json!({})).to_string().as_bytes()).unwrap();
        let provider = config.providers.iter().next().unwrap().1;
        assert!(provider.require_exp);
        assert_eq!(provider.clock_skew_seconds, 60);
        assert_eq!(provider.max_token_bytes, 8192);
        assert_eq!(config.locations, vec![TokenLocation::bearer()]);
        assert_eq!(config.policy.default_access, DefaultAccess::Deny);
        assert_eq!(config.realm, "claimgate");
        assert_eq!(config.host_crypto, HostCryptoMode::Auto);
    }

    #[test]
    fn nonces_without_secrets_warn_that_replicas_need_them_and_secret_names_are_checked() {
        let warnings = deployment_warnings(json!({"dpop_proofs": {"use_dpop_nonce": true}}));
        let warning = warnings
            .iter()
            .find(|warning| warning.path == "dpop_proofs.nonce_secrets")
            .expect("a replicas warning");
        assert!(
            warning
                .message
                .contains("single replica or sticky sessions"),
            "{warning}"
        );
        let with = |secrets: Value, nonce: bool| {
            let config = minimal(
                json!({"dpop_proofs": {"use_dpop_nonce": nonce, "nonce_secrets": secrets}}),
            );
            Config::from_json(config.to_string().as_bytes())
        };
        let config = with(json!({"current_env": "A", "previous_env": "B"}), true).unwrap();
        assert!(!config
            .warnings
            .iter()
            .any(|warning| warning.path == "dpop_proofs.nonce_secrets"));
        assert_eq!(
            config.dpop.nonce_secrets,
            Some(crate::dpop::NonceSecretsEnv {
                current_env: "A".to_owned(),
                previous_env: Some("B".to_owned()),
            })
        );
        for (secrets, nonce, field) in [
            (
                json!({"current_env": "A"}),
                false,
                "dpop_proofs.nonce_secrets",
            ),
            (
                json!({"current_env": ""}),
                true,
                "dpop_proofs.nonce_secrets.current_env",
            ),
            (
                json!({"current_env": "1A"}),
                true,
                "dpop_proofs.nonce_secrets.current_env",
            ),
            (
                json!({"current_env": "A-B"}),
                true,
                "dpop_proofs.nonce_secrets.current_env",
            ),
            (
                json!({"current_env": "A", "previous_env": "A"}),
                true,
                "dpop_proofs.nonce_secrets.previous_env",
            ),
            (
                json!({"current_env": "A", "previous_env": "B C"}),
                true,
                "dpop_proofs.nonce_secrets.previous_env",
            ),
        ] {
            let error = with(secrets.clone(), nonce).unwrap_err();
            assert_eq!(error.path, field, "{secrets}: {error}");
        }
        assert!(with(json!({"previous_env": "B"}), true).is_err());
    }

    #[test]
    fn shared_record_fields_are_checked_at_load_naming_the_field() {
        let with = |record: Value| {
            let config = minimal(json!({"dpop_proofs": {"shared_record": record}}));
            Config::from_json(config.to_string().as_bytes())
        };
        let config = with(json!({"cluster": "etcd", "authority": "etcd:2379"})).unwrap();
        let record = config.dpop.shared_record.unwrap();
        assert_eq!(
            (
                record.timeout_ms,
                record.key_prefix.as_str(),
                record.on_unavailable
            ),
            (250, "claimgate/dpop/", crate::dpop::OnUnavailable::Refuse)
        );
        let base = json!({"cluster": "etcd", "authority": "etcd"});
        for (change, field) in [
            (json!({"cluster": ""}), "cluster"),
            (json!({"authority": ""}), "authority"),
            (json!({"authority": "a b"}), "authority"),
            (json!({"timeout_ms": 5}), "timeout_ms"),
            (json!({"timeout_ms": 5001}), "timeout_ms"),
            (json!({"key_prefix": ""}), "key_prefix"),
            (json!({"key_prefix": "a b"}), "key_prefix"),
            (json!({"key_prefix": "a\"b"}), "key_prefix"),
            (json!({"on_unavailable": "allow"}), "on_unavailable"),
        ] {
            let mut record = base.clone();
            crate::test_support::merge(&mut record, change.clone());
            let error = with(record).unwrap_err();
            assert_eq!(
                error.path,
                format!("dpop_proofs.shared_record.{field}"),
                "{change}: {error}"
            );
        }
        let local = with(json!({"cluster": "e", "authority": "e", "on_unavailable": "local"}));
        assert_eq!(
            local.unwrap().dpop.shared_record.unwrap().on_unavailable,
            crate::dpop::OnUnavailable::Local
        );
    }

    fn deployment_warnings(extra: Value) -> Vec<ConfigWarning> {
        Config::from_json(minimal(extra).to_string().as_bytes())
            .unwrap()
            .warnings
            .into_iter()
            .filter(|warning| warning.deployment)
            .collect()
    }

    #[test]
    fn deny_by_default_with_rules_for_any_host_warns_about_shared_gateways() {
        let warnings = deployment_warnings(json!({"rules": [
            {"name": "api", "match": {"prefix": "/", "hosts": ["api.example.com"]}, "access": "authenticated"},
            {"name": "health", "match": {"path": "/healthz"}, "access": "public"},
            {"name": "docs", "match": {"prefix": "/docs"}, "access": "public"}
        ]}));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].path, "default_access");
        assert!(
            warnings[0]
                .message
                .contains("2 rule(s) name no hosts (health, docs)")
                && warnings[0]
                    .message
                    .contains("shared with other applications"),
            "{}",
            warnings[0]
        );
        // The default is deny: saying so explicitly changes nothing.
        assert_eq!(
            deployment_warnings(json!({"default_access": "deny"})).len(),
            1
        );
    }

    #[test]
    fn rules_scoped_to_hosts_or_a_permissive_default_do_not_warn() {
        assert!(deployment_warnings(json!({"rules": [
            {"match": {"prefix": "/", "hosts": ["api.example.com", "*.example.com"]}, "access": "authenticated"}
        ]}))
        .is_empty());
        assert!(deployment_warnings(json!({"default_access": "authenticated"})).is_empty());
        assert!(deployment_warnings(json!({"default_access": "public"})).is_empty());
    }

    #[test]
    fn host_crypto_is_auto_or_off() {
        let config = Config::from_json(
            minimal(json!({"host_crypto": "off"}))
                .to_string()
                .as_bytes(),
        );
        assert_eq!(config.unwrap().host_crypto, HostCryptoMode::Off);
        let err = error_of(minimal(json!({"host_crypto": "always"})));
        assert_eq!(err.path, "host_crypto");
        assert!(err.message.contains("auto"), "{err}");
    }

    #[test]
    fn a_tier_identity_header_names_a_known_list_and_a_default_on_it() {
        let header = |source: Value| {
            let mut header = json!({"header": "x-tier", "claim": "tier"});
            crate::test_support::merge(&mut header, source);
            minimal(json!({
                "tiers": {"loyalty": ["Bronze", "Gold"]},
                "identity": {"headers": [header]}
            }))
        };
        assert!(
            Config::from_json(header(json!({"tiers": "loyalty"})).to_string().as_bytes()).is_ok()
        );
        let with_default = header(json!({"tiers": "loyalty", "default": "Gold"}));
        assert!(Config::from_json(with_default.to_string().as_bytes()).is_ok());
        let err = error_of(header(json!({"tiers": "status"})));
        assert_eq!(err.path, "identity.headers[0].tiers");
        assert!(err.message.contains("'status' is not a tier list"), "{err}");
        let err = error_of(header(json!({"tiers": "loyalty", "default": "Diamond"})));
        assert_eq!(err.path, "identity.headers[0].default");
        assert!(err.message.contains("Bronze < Gold"), "{err}");
        let err = error_of(header(json!({"tiers": "loyalty", "default": "gold"})));
        assert_eq!(err.path, "identity.headers[0].default");
        let err = error_of(header(json!({"default": "Gold"})));
        assert_eq!(err.path, "identity.headers[0].default");
        let err = error_of(minimal(json!({
            "tiers": {"loyalty": ["Bronze"]},
            "identity": {"headers": [{"header": "x-tier", "value": "v", "tiers": "loyalty"}]}
        })));
        assert_eq!(err.path, "identity.headers[0].tiers");
    }

    #[test]
    fn errors_name_the_exact_field() {
        let err = error_of(minimal(json!({
            "tiers": {"loyalty": ["Bronze", "Gold"]},
            "rules": [
                {"match": {"prefix": "/"}, "access": "public"},
                {"match": {"prefix": "/x"}, "require": [{"claim": "t", "at_least": "Silver", "tiers": "loyalty"}]}
            ]
        })));
        assert_eq!(err.path, "rules[1].require[0].at_least");
        let err = error_of(minimal(json!({
            "rules": [{"match": {"prefix": "/"}, "require": [{"claim": 5, "equals": 1}]}]
        })));
        assert_eq!(err.path, "rules[0].require[0].claim");
        let err = error_of(minimal(
            json!({"rules": [{"match": {"prefx": "/"}, "access": "public"}]}),
        ));
        assert_eq!(err.path, "rules[0].match.prefx");
        assert!(err.message.contains("unknown field"), "{err}");
        let err = error_of(minimal(
            json!({"rules": [{"match": {"regex": "("}, "access": "public"}]}),
        ));
        assert_eq!(err.path, "rules[0].match.regex");
        let err = error_of(minimal(json!({"rules": [{"match": {}, "access": "open"}]})));
        assert_eq!(err.path, "rules[0].access");
        let err = error_of(minimal(
            json!({"identity": {"headers": [{"header": "x-a", "claim": "a", "sub_prefix": {}}]}}),
        ));
        assert_eq!(err.path, "identity.headers[0]");
        let err = error_of(minimal(
            json!({"identity": {"headers": [{"header": "bad header", "claim": "a"}]}}),
        ));
        assert_eq!(err.path, "identity.headers[0].header");
    }

    #[test]
    fn provider_errors_name_the_field() {
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["HS256", "none"]);
        assert_eq!(error_of(config).path, "providers[0].algorithms[1]");
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["RS256"]);
        assert_eq!(error_of(config).path, "providers[0].algorithms");
        let mut config = minimal(json!({}));
        config["providers"][0]["audiences"] = json!([]);
        assert_eq!(error_of(config).path, "providers[0].audiences");
        let mut config = minimal(json!({}));
        config["providers"][0]["from"] = json!([{"query": "t", "cookie": "c"}]);
        assert_eq!(error_of(config).path, "providers[0].from[0]");
    }

    #[test]
    fn configurations_that_cannot_work_are_refused_naming_the_field() {
        let remote = json!({"remote": {"cluster": "idp", "path": "/jwks", "authority": "idp"}});
        // Remote keys only, HMAC only: fetched key sets never carry secrets.
        let mut config = minimal(json!({}));
        config["providers"][0]["jwks"] = remote.clone();
        let err = error_of(config);
        assert_eq!(err.path, "providers[0].algorithms");
        assert!(err.message.contains("never supply HMAC secrets"), "{err}");
        // The same beside asymmetric algorithms.
        let mut config = minimal(json!({}));
        config["providers"][0]["jwks"] = remote.clone();
        config["providers"][0]["algorithms"] = json!(["RS256", "HS256"]);
        assert_eq!(error_of(config).path, "providers[0].algorithms");
        // RS256 from the remote set, HS256 from an inline secret: fine.
        let mut config = minimal(json!({}));
        config["providers"][0]["jwks"]["remote"] = remote["remote"].clone();
        config["providers"][0]["algorithms"] = json!(["RS256", "HS256"]);
        assert!(Config::from_json(config.to_string().as_bytes()).is_ok());
        // A secret in a provider that allows no HMAC algorithm.
        let rsa = SigningKey::generate(Alg::Rs256, Some("r")).unwrap();
        let hmac = SigningKey::generate(Alg::Hs256, Some("forgotten")).unwrap();
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["RS256"]);
        config["providers"][0]["jwks"]["inline"] =
            json!({"keys": [rsa.public_jwk(), hmac.public_jwk()]});
        let err = error_of(config);
        assert_eq!(err.path, "providers[0].jwks.inline");
        assert!(err.message.contains("'forgotten'"), "{err}");
        // Tokens without exp accepted forever.
        let mut config = minimal(json!({}));
        config["providers"][0]["require_exp"] = json!(false);
        assert_eq!(error_of(config).path, "providers[0].require_exp");
        let mut config = minimal(json!({}));
        config["providers"][0]["require_exp"] = json!(false);
        config["providers"][0]["max_lifetime_seconds"] = json!(3600);
        assert!(Config::from_json(config.to_string().as_bytes()).is_ok());
        // A blank audience.
        let mut config = minimal(json!({}));
        config["providers"][0]["audiences"] = json!(["api", "  "]);
        assert_eq!(error_of(config).path, "providers[0].audiences");
    }

    #[test]
    fn weak_rsa_keys_are_refused_at_load() {
        let mut config = minimal(json!({}));
        // A 1024-bit modulus (value irrelevant, only its size is checked first).
        let n = base64ct::Base64UrlUnpadded::encode_string(&[0xc5; 128]);
        config["providers"][0]["algorithms"] = json!(["RS256"]);
        config["providers"][0]["jwks"]["inline"] =
            json!({"keys": [{"kty": "RSA", "n": n, "e": "AQAB"}]});
        let err = error_of(config);
        assert_eq!(err.path, "providers[0].jwks.inline.keys[0]");
        assert!(err.message.contains("1024 bits"), "{err}");
    }

    #[test]
    fn a_secret_shorter_than_the_hash_cannot_serve_the_algorithm() {
        let secret = base64ct::Base64UrlUnpadded::encode_string(&[7; 32]);
        let mut config = minimal(json!({}));
        config["providers"][0]["algorithms"] = json!(["HS512"]);
        config["providers"][0]["jwks"]["inline"] = json!({"keys": [{"kty": "oct", "k": secret}]});
        let err = error_of(config.clone());
        assert_eq!(err.path, "providers[0].algorithms");
        assert_eq!(err.message, "no key in jwks.inline can verify HS512");
        config["providers"][0]["jwks"]["inline"]["keys"][0]["alg"] = json!("HS512");
        let err = error_of(config);
        assert_eq!(err.path, "providers[0].jwks.inline.keys[0]");
        assert!(
            err.message.contains("at least 64 required for HS512"),
            "{err}"
        );
    }

    #[test]
    fn not_json_is_an_error_at_the_root() {
        let err = Config::from_json(b"{").unwrap_err();
        assert_eq!(err.path, ".");
    }

    use base64ct::Encoding;
}

#[cfg(test)]
mod warning_tests {
    use super::Config;
    use serde_json::json;

    fn config(issuer: &str, jwks: Option<serde_json::Value>) -> Result<Config, super::ConfigError> {
        let mut provider = json!({"name": "idp", "issuer": issuer, "audiences": ["api"],
            "algorithms": ["HS256"]});
        if let Some(jwks) = jwks {
            provider["jwks"] = jwks;
        }
        let document = json!({"providers": [provider],
            "rules": [{"name": "all", "match": {"prefix": "/"}, "access": "authenticated"}],
            "default_access": "authenticated"});
        Config::from_json(document.to_string().as_bytes())
    }

    fn inline() -> Option<serde_json::Value> {
        Some(
            json!({"inline": {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0zMg"}]}}),
        )
    }

    #[test]
    fn an_issuer_without_a_scheme_is_warned_about() {
        let bare = config("tenant.auth0.com", inline()).unwrap();
        let paths: Vec<&str> = bare.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(paths, ["providers[0].issuer"], "{:?}", bare.warnings);
        assert!(bare.warnings[0]
            .message
            .contains("https://tenant.auth0.com"));
        let url = config("https://tenant.auth0.com/", inline()).unwrap();
        assert!(url.warnings.is_empty(), "{:?}", url.warnings);
    }

    #[test]
    fn a_missing_jwks_names_the_forms_it_can_take() {
        let err = config("https://tenant.auth0.com/", None).unwrap_err();
        assert_eq!(err.path, "providers[0]");
        for form in ["jwks.inline", "jwks.remote", "jwks.discovery"] {
            assert!(err.message.contains(form), "{}", err.message);
        }
    }
}
