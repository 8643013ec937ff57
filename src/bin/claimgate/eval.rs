//! `claimgate eval`: one request decided with the decision code the Envoy filter runs,
//! printed as JSON; `--jwks` gives a provider with a remote key source its keys: a saved
//! file, a JWKS URL, or the issuer's OpenID discovery document (its `jwks_uri` followed).

use std::path::PathBuf;
use std::sync::Arc;

use claimgate::config::Config;
use claimgate::dpop::{MemoryReplayGuard, NonceKey};
use claimgate::jwks::KeyRing;
use claimgate::keysource::{validate_discovery, validate_jwks, FetchResponse, SourceKind};
use claimgate::provider::ProviderId;
use claimgate::request::{bearer_header, request_headers};
use claimgate::{decide, Environment, Input, ProofEnvironment, RequestView, UnixSeconds};
use clap::Args;
use serde_json::Value;

use crate::fetch::{self, Fetched};
use crate::source::load_config;
use crate::{unix_now, CliError};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The configuration (JSON or YAML).
    #[arg(value_name = "CONFIG")]
    config: PathBuf,
    /// A token, sent as `Authorization: Bearer T` (with --dpop-proof: `DPoP T`).
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// A DPoP proof for the request (claimgate mint proof), sent as the `DPoP` header.
    #[arg(long, value_name = "PROOF", requires = "token")]
    dpop_proof: Option<String>,
    #[arg(long, value_name = "M", default_value = "GET")]
    method: String,
    /// Path and query string as sent.
    #[arg(long, value_name = "P", default_value = "/")]
    path: String,
    #[arg(long, value_name = "HOST", default_value = "localhost")]
    authority: String,
    /// The connection's scheme, as Envoy reports it.
    #[arg(long, value_parser = ["https", "http"])]
    scheme: Option<String>,
    /// A request header. Repeatable.
    #[arg(long = "header", value_name = "NAME:VALUE")]
    headers: Vec<String>,
    /// The client's address (for `request: client_address` conditions).
    #[arg(long, value_name = "IP")]
    client_address: Option<String>,
    /// The TLS client certificate's SHA-256 thumbprint, base64url (RFC 8705 binding).
    #[arg(long, value_name = "X5T_S256")]
    client_cert_thumbprint: Option<String>,
    /// The clock, Unix seconds (default: now).
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
    /// Keys for a provider with a remote key source (jwks.remote / jwks.discovery): a saved
    /// JWKS file, a JWKS URL, or the issuer's discovery document URL
    /// (https://ISSUER/.well-known/openid-configuration), fetched once and validated
    /// exactly as the filter validates a fetch. http:// is for loopback tests.
    #[arg(long, value_name = "FILE_OR_URL")]
    jwks: Option<String>,
    /// The provider --jwks belongs to (default: the only one with a remote key source).
    #[arg(long, value_name = "NAME", requires = "jwks")]
    provider: Option<String>,
}

pub fn run(args: &EvalArgs) -> Result<(), CliError> {
    let config = load_config(&args.config)?;
    let mut keys = config.initial_keys();
    if let Some(location) = &args.jwks {
        load_remote_keys(&config, &mut keys, location, args.provider.as_deref())?;
    }
    let mut extra: Vec<(String, Vec<u8>)> = match (&args.token, &args.dpop_proof) {
        (Some(token), Some(proof)) => vec![
            (
                "authorization".to_owned(),
                format!("DPoP {token}").into_bytes(),
            ),
            ("dpop".to_owned(), proof.as_bytes().to_vec()),
        ],
        (Some(token), None) => vec![bearer_header(token)],
        (None, _) => Vec::new(),
    };
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| CliError::Usage(format!("--header '{header}' must be NAME:VALUE")))?;
        extra.push((name.trim().to_owned(), value.trim().as_bytes().to_vec()));
    }
    let headers = request_headers(
        &args.method,
        &args.path,
        &args.authority,
        args.scheme.as_deref(),
        extra
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice())),
    );
    let now = UnixSeconds(args.now.unwrap_or_else(unix_now));
    let request = RequestView::new(&headers)
        .with_client_address(args.client_address.as_deref())
        .with_client_certificate(args.client_cert_thumbprint.as_deref());
    // One request: a proof record of its own, and a nonce key when nonces are on (a
    // proof can then only be answered with a fresh nonce).
    let replay = MemoryReplayGuard::default();
    let nonce_key = config.dpop.use_dpop_nonce.then(NonceKey::random).flatten();
    let environment = Environment::new(&config, &keys, now).with_proofs(ProofEnvironment {
        nonce_key: nonce_key.as_ref(),
        replay: &replay,
    });
    let decision = decide(Input::new(request), environment);
    let text = serde_json::to_string_pretty(&decision.to_json())
        .map_err(|err| CliError::Refused(err.to_string()))?;
    println!("{text}");
    Ok(())
}

/// The provider `--jwks` is for: `--provider`, else the only one with a remote source,
/// else the only one.
fn jwks_provider(config: &Config, provider: Option<&str>) -> Result<ProviderId, CliError> {
    if let Some(name) = provider {
        return config
            .provider_id(name)
            .ok_or_else(|| CliError::Usage(format!("--provider: no provider named '{name}'")));
    }
    let remote: Vec<ProviderId> = config
        .providers
        .remote_sources()
        .map(|(id, _)| id)
        .collect();
    let only = config
        .providers
        .ids()
        .next()
        .filter(|_| config.providers.len() == 1);
    match (remote.as_slice(), only) {
        (&[id], _) | (&[], Some(id)) => Ok(id),
        _ => Err(CliError::Usage(
            "--jwks: name the provider it belongs to with --provider".into(),
        )),
    }
}

/// Gives a provider the keys of a saved or fetched JWKS, validated as a fetch is.
fn load_remote_keys(
    config: &Config,
    keys: &mut KeyRing,
    location: &str,
    provider: Option<&str>,
) -> Result<(), CliError> {
    let id = jwks_provider(config, provider)?;
    let entry = config
        .providers
        .get(id)
        .ok_or_else(|| CliError::Usage("--provider: no such provider".into()))?;
    let limit = entry
        .remote
        .as_ref()
        .map_or(256 * 1024, |source| source.max_response_bytes);
    let refused =
        |err: &dyn std::fmt::Display| CliError::Refused(format!("--jwks {location}: {err}"));
    let mut fetched = if location.starts_with("http://") || location.starts_with("https://") {
        fetch::get(location, limit)?
    } else {
        let body = std::fs::read(location)
            .map_err(|err| CliError::Refused(format!("cannot read {location}: {err}")))?;
        Fetched {
            status: 200,
            cache_control: None,
            body,
        }
    };
    if is_discovery_document(&fetched.body) {
        let allow_cross_origin = entry.remote.as_ref().is_some_and(|source| {
            matches!(
                source.kind,
                SourceKind::Discovery {
                    allow_cross_origin: true,
                    ..
                }
            )
        });
        validate_discovery(
            &response(&fetched),
            limit,
            &entry.issuer,
            allow_cross_origin,
        )
        .map_err(|err| refused(&err))?;
        let jwks_uri = serde_json::from_slice::<Value>(&fetched.body)
            .ok()
            .and_then(|document| document.get("jwks_uri")?.as_str().map(str::to_owned))
            .ok_or_else(|| refused(&"no jwks_uri"))?;
        eprintln!("claimgate: --jwks {location}: discovery names jwks_uri {jwks_uri}");
        fetched = fetch::get(&jwks_uri, limit)?;
    }
    let valid = validate_jwks(&response(&fetched), limit).map_err(|err| refused(&err))?;
    for (key_index, problem) in &valid.parsed.skipped {
        eprintln!("claimgate: --jwks {location}: keys[{key_index}] skipped: {problem}");
    }
    keys.replace(id, Arc::new(entry.keys_with_remote(&valid.parsed.keys)));
    Ok(())
}

fn response(fetched: &Fetched) -> FetchResponse<'_> {
    FetchResponse {
        status: Some(fetched.status),
        cache_control: fetched.cache_control.as_deref(),
        body_size: fetched.body.len(),
        body: Some(&fetched.body),
    }
}

/// An OpenID discovery document (a `jwks_uri`, no `keys`) rather than a JWKS.
fn is_discovery_document(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .is_ok_and(|document| document.get("jwks_uri").is_some() && document.get("keys").is_none())
}
