//! `claimgate check`: validate a configuration, or every one a bootstrap or manifests
//! embed, print its compiled policy and its warnings, and cross-check the Envoy clusters
//! its remote key sources name; `claimgate json`: the configuration as Envoy takes it.

use std::path::PathBuf;

use claimgate::config::Config;
use claimgate::jwks::KeyRing;
use claimgate::keysource::SourceKind;
use claimgate::policy::{Effect, Mode};
use claimgate::provider::{Binding, Provider, ProviderId};
use clap::Args;

use crate::deployed::{self, Form};
use crate::source::{compile, load_document, Place, Source};
use crate::CliError;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A claimgate configuration (JSON or YAML), an Envoy bootstrap or ECDS file, or
    /// Kubernetes manifests (an Istio WasmPlugin, an Envoy Gateway EnvoyExtensionPolicy;
    /// several YAML documents allowed): every claimgate configuration inside is checked.
    #[arg(value_name = "CONFIG")]
    config: PathBuf,
    /// Files that define the Envoy clusters (a bootstrap, an Istio ServiceEntry, an Envoy
    /// Gateway EnvoyPatchPolicy): a cluster a remote key source names that none of them
    /// (nor CONFIG) defines is a warning. Repeatable.
    #[arg(long, value_name = "ENVOY_YAML")]
    envoy: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct JsonArgs {
    /// The configuration (JSON or YAML).
    #[arg(value_name = "CONFIG")]
    config: PathBuf,
}

/// `claimgate json`: checks the configuration, then prints it as one line of JSON.
pub fn json(args: &JsonArgs) -> Result<(), CliError> {
    let (value, _) = load_document(&args.config)?;
    let text = serde_json::to_string(&value).map_err(|err| CliError::Refused(err.to_string()))?;
    println!("{text}");
    Ok(())
}

/// The clusters Envoy will have, as far as the files given tell.
struct Clusters {
    names: Vec<String>,
    /// Where they were read from, for the warning.
    from: Vec<String>,
}

pub fn run(args: &CheckArgs) -> Result<(), CliError> {
    let source = Source::read(&args.config)?;
    let documents = source.documents()?;
    let mut clusters = Clusters {
        names: Vec::new(),
        from: Vec::new(),
    };
    for path in &args.envoy {
        let envoy = Source::read(path)?;
        for (_, document) in envoy.documents()? {
            clusters.names.extend(deployed::clusters(&document));
        }
        clusters.from.push(envoy.name);
    }
    if let [(_, document)] = documents.as_slice() {
        if deployed::is_configuration(document) {
            let place = Place {
                source: &source,
                document: 0,
                prefix: String::new(),
            };
            let config = compile(document, &place)?;
            let cross_check = (!clusters.from.is_empty()).then_some(&clusters);
            report(&config, &place, &source.name, cross_check);
            return Ok(());
        }
    }
    // Manifests or a bootstrap: the clusters they define count too.
    let mut defines_clusters = !clusters.from.is_empty();
    for (_, document) in &documents {
        let names = deployed::clusters(document);
        defines_clusters |= !names.is_empty() || deployed::is_bootstrap(document);
        clusters.names.extend(names);
    }
    clusters.from.insert(0, source.name.clone());
    let cross_check = defines_clusters.then_some(&clusters);
    let mut checked = 0;
    for (index, document) in &documents {
        for found in deployed::configurations(document) {
            let at = source.at(*index, &found.path);
            let title = format!("{at} ({})", found.label);
            match &found.form {
                Form::Object(value) => {
                    let place = Place {
                        source: &source,
                        document: *index,
                        prefix: found.path.clone(),
                    };
                    let config = compile(value, &place)?;
                    report(&config, &place, &title, cross_check);
                }
                Form::Text(text) => {
                    let inner = Source::inline(format!("{title}, in its text"), text.clone());
                    let value = inner.document()?;
                    let place = Place {
                        source: &inner,
                        document: 0,
                        prefix: String::new(),
                    };
                    let config = compile(&value, &place)?;
                    report(&config, &place, &title, cross_check);
                }
            }
            checked += 1;
        }
    }
    if checked == 0 {
        return Err(CliError::Refused(format!(
            "{}: no claimgate configuration found: looked for a configuration (an object \
             with providers and rules), an Envoy Wasm plugin's configuration.value, an \
             Istio WasmPlugin's spec.pluginConfig and an Envoy Gateway \
             EnvoyExtensionPolicy's spec.wasm[].config",
            source.name
        )));
    }
    Ok(())
}

/// Prints the warnings (stderr) and the summary (stdout) of one configuration.
fn report(config: &Config, place: &Place<'_>, title: &str, clusters: Option<&Clusters>) {
    for warning in &config.warnings {
        eprintln!("warning: {}", place.warning(warning));
    }
    if let Some(clusters) = clusters {
        for (path, message) in missing_clusters(config, clusters) {
            eprintln!("warning: {path}: {message} ({})", place.at(&path));
        }
    }
    println!("{title}: OK");
    println!("realm: {}", config.realm);
    let keys = config.initial_keys();
    for (id, provider) in config.providers.iter() {
        println!("{}", describe_provider(config, &keys, id, provider));
    }
    println!(
        "policy: mode {:?}, unmatched requests: {:?}",
        config.policy.mode, config.policy.default_access
    );
    for rule in &config.policy.rules {
        let effect = match (rule.effect, rule.needs_token) {
            (Effect::Deny, _) => "deny",
            (Effect::Allow, false) => "allow (public)",
            (Effect::Allow, true) => "allow (token)",
        };
        let condition = rule
            .condition
            .as_ref()
            .map_or_else(String::new, |condition| format!(" when {condition}"));
        let providers = if rule.providers.is_empty() {
            "any".to_owned()
        } else {
            rule.providers
                .iter()
                .filter_map(|id| config.providers.get(*id))
                .map(|provider| provider.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let step_up = rule.step_up.as_ref().map_or_else(
            || "none".to_owned(),
            |step_up| {
                let text = step_up.to_string();
                text.strip_prefix("step-up: ")
                    .map_or(text.clone(), str::to_owned)
            },
        );
        let mode = if rule.mode == Mode::DryRun {
            " [dry run]"
        } else {
            ""
        };
        println!(
            "rule {}: {} -> {effect}{condition}{mode}; providers: {providers}; step_up: {step_up}",
            rule.name, rule.route
        );
    }
    println!(
        "identity headers: {}; stripped: {} and prefixes {}",
        config
            .identity
            .headers
            .iter()
            .map(|mapping| mapping.header.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        config.identity.strip_headers.join(", "),
        config.identity.strip_prefixes.join(", ")
    );
}

/// The remote key clusters `config` names that none of the files defines: a fetch through
/// them fails, and the provider never gets keys. (field path, message)
fn missing_clusters(config: &Config, clusters: &Clusters) -> Vec<(String, String)> {
    let mut warnings = Vec::new();
    for (id, provider) in config.providers.iter() {
        let Some(source) = &provider.remote else {
            continue;
        };
        let mut named: Vec<(&str, &str)> = match &source.kind {
            SourceKind::Jwks(endpoint) => vec![("jwks.remote.cluster", &endpoint.cluster)],
            SourceKind::Discovery {
                document,
                jwks_cluster,
                ..
            } => vec![
                ("jwks.discovery.cluster", &document.cluster),
                ("jwks.discovery.jwks_cluster", jwks_cluster),
            ],
        };
        named.dedup_by_key(|(_, cluster)| *cluster);
        for (field, cluster) in named {
            if !clusters.names.iter().any(|known| known == cluster) {
                warnings.push((
                    format!("{id}.{field}"),
                    format!(
                        "cluster '{cluster}' is not defined in {} (defined: {}); fetches through \
                         it fail and provider '{}' gets no keys. Under Istio, the cluster a \
                         ServiceEntry creates is named outbound|PORT||HOST, e.g. \
                         outbound|443||TENANT.auth0.com",
                        clusters.from.join(", "),
                        if clusters.names.is_empty() {
                            "none".to_owned()
                        } else {
                            clusters.names.join(", ")
                        },
                        provider.name
                    ),
                ));
            }
        }
    }
    warnings
}

/// One line about a provider.
fn describe_provider(
    config: &Config,
    keys: &KeyRing,
    id: ProviderId,
    provider: &Provider,
) -> String {
    let key_count = keys.get(id).map_or(0, |set| set.len());
    let algorithms: Vec<&str> = provider.algorithms.iter().map(|alg| alg.name()).collect();
    let locations: Vec<String> = provider
        .locations
        .iter()
        .filter_map(|index| config.locations.get(*index))
        .map(ToString::to_string)
        .collect();
    let remote = match &provider.remote {
        None => String::new(),
        Some(source) => {
            let what = match &source.kind {
                SourceKind::Jwks(endpoint) => format!("remote JWKS {endpoint}"),
                SourceKind::Discovery { document, .. } => format!("discovery {document}"),
            };
            format!(
                ", keys from {what} (timeout {} ms, cache {} s within {}..{} s, stale up to {} s, outage status {})",
                source.timeout_ms,
                source.cache_duration_ms / 1000,
                source.min_cache_duration_ms / 1000,
                source.max_cache_duration_ms / 1000,
                source.max_stale_ms / 1000,
                source.outage_status
            )
        }
    };
    let mut binding = String::new();
    if provider.dpop != Binding::Off {
        binding.push_str(&format!(
            ", DPoP {:?} (proofs: {})",
            provider.dpop,
            config.dpop.algs()
        ));
    }
    if provider.mtls_binding != Binding::Off {
        binding.push_str(&format!(
            ", certificate binding {:?}",
            provider.mtls_binding
        ));
    }
    format!(
        "provider {}: issuer {}, audiences {}, algorithms {}, {} inline key(s){remote}, token from {}{binding}",
        provider.name,
        provider.issuer,
        provider.audiences.join(", "),
        algorithms.join(", "),
        key_count,
        locations.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_a_bootstrap_lacks_are_named_with_their_field() {
        let config =
            Config::from_json(include_bytes!("../../../filter-config/remote-auth0.json")).unwrap();
        let clusters = Clusters {
            names: vec!["echo".into()],
            from: vec!["envoy.yaml".into()],
        };
        let missing = missing_clusters(&config, &clusters);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, "providers[0].jwks.discovery.cluster");
    }
}
