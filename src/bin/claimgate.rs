//! `claimgate`: check a configuration, evaluate a request against it with exactly the
//! decision code the Envoy filter runs, and mint demo tokens.

#![warn(clippy::too_many_lines)]
// No panics on request or configuration paths (tests may: see clippy.toml).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use claimgate::cases::CaseFile;
use claimgate::config::Config;
use claimgate::dpop::MemoryReplayGuard;
use claimgate::jwks::{Alg, KeyRing};
use claimgate::keysource::{validate_jwks, FetchResponse, HttpUrl, SourceKind};
use claimgate::mint::{ProofRequest, SigningKey};
use claimgate::policy::{Effect, Mode};
use claimgate::provider::{Binding, Provider, ProviderId};
use claimgate::request::{bearer_header, request_headers};
use claimgate::{decide, RequestView};
use serde_json::{json, Map, Value};

const USAGE: &str = "\
usage:
  claimgate check CONFIG [--envoy ENVOY_YAML]
  claimgate eval CONFIG [--token T [--dpop-proof PROOF]] [--method M] [--path P]
                        [--authority HOST] [--scheme https|http] [--header NAME:VALUE]...
                        [--client-address IP] [--client-cert-thumbprint X5T_S256]
                        [--now UNIX] [--jwks FILE_OR_URL [--provider NAME]]
  claimgate test CONFIG CASES
  claimgate mint --key PRIVATE_JWK [--config CONFIG] [--provider NAME] [--iss ISS]
                 [--aud AUD] [--sub SUB] [--claim NAME=VALUE]... [--ttl SECONDS] [--now UNIX]
                 [--count N] [--dpop-key CLIENT_JWK] [--cert-thumbprint X5T_S256]
  claimgate mint proof --dpop-key CLIENT_JWK --method M --url URL [--token T]
                 [--nonce N] [--now UNIX] [--jti ID]
  claimgate keygen --alg ALG [--kid KID]
  claimgate public-jwks --key PRIVATE_JWK
  claimgate --version

  CONFIG and CASES are JSON, or YAML when the file name ends in .yaml or .yml.
  check prints the compiled policy and its warnings. eval prints the decision as JSON:
  the deciding rule, the reason, the condition that failed, the dry-run verdict. test
  runs a file of policy cases (see filter-config/README.md), prints a line per case and
  'N passed, N failed', and exits with 1 when any case fails (2 on errors). eval --jwks gives a
  provider with a remote key source (jwks.remote / jwks.discovery) its keys offline: a
  saved JWKS file, or an http:// URL fetched once (https: save the JWKS first, e.g.
  curl -o jwks.json https://TENANT.auth0.com/.well-known/jwks.json); it is validated
  exactly as the filter validates a fetch; --dpop-proof sends the token as
  'Authorization: DPoP' with the proof, --client-cert-thumbprint is the TLS client
  certificate's SHA-256 thumbprint (base64url). mint signs a token for demos and tests: VALUE
  is parsed as JSON when it is valid JSON, else taken as a string; --dpop-key binds the
  token to that key (cnf.jkt, RFC 9449), --cert-thumbprint to a client certificate
  (cnf.x5t#S256, RFC 8705). mint proof makes a DPoP proof with that key for one request
  (URL without query); give --token for its ath.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (Some(command.as_str()), rest),
        None => (None, &[][..]),
    };
    let result = match command {
        Some("check") => check(rest),
        Some("eval") => eval(rest),
        Some("test") => match test(rest) {
            // Cases ran and some failed: 1, as for a failing test suite (usage and input
            // errors are 2).
            Ok(TestRun::Failed) => return ExitCode::from(1),
            Ok(TestRun::Passed) => Ok(()),
            Err(message) => Err(message),
        },
        Some("mint") => mint(rest),
        Some("keygen") => keygen(rest),
        Some("public-jwks") => public_jwks(rest),
        Some("-V" | "--version" | "version") => {
            println!("claimgate {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("claimgate: {message}");
            ExitCode::from(2)
        }
    }
}

/// Command-line options: one positional list and `--name value` pairs (repeatable).
struct Options {
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Options {
    fn parse(args: &[String], known: &[&str]) -> Result<Options, String> {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                if !known.contains(&name) {
                    return Err(format!("unknown option --{name}\n{USAGE}"));
                }
                let value = iter
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                named.push((name.to_owned(), value.clone()));
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Options { positional, named })
    }

    fn one(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.named
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn number(&self, name: &str) -> Result<Option<i64>, String> {
        self.one(name)
            .map(|text| {
                text.parse::<i64>()
                    .map_err(|_| format!("--{name} must be a whole number"))
            })
            .transpose()
    }
}

fn load_config(path: &str) -> Result<Config, String> {
    let document = read_document(path)?;
    let text = serde_json::to_vec(&document).map_err(|err| err.to_string())?;
    Config::from_json(&text).map_err(|err| format!("{path}: {err}"))
}

/// Reads a JSON file, or a YAML one when its name ends in `.yaml` or `.yml`.
fn read_document(path: &str) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    if path.ends_with(".yaml") || path.ends_with(".yml") {
        serde_yaml_ng::from_slice(&text).map_err(|err| format!("{path}: not YAML: {err}"))
    } else {
        serde_json::from_slice(&text).map_err(|err| format!("{path}: not JSON: {err}"))
    }
}

fn read_json(path: &str) -> Result<Value, String> {
    let text = std::fs::read(path).map_err(|err| format!("cannot read {path}: {err}"))?;
    serde_json::from_slice(&text).map_err(|err| format!("{path}: not JSON: {err}"))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn config_argument(options: &Options, command: &str) -> Result<String, String> {
    match options.positional.as_slice() {
        [config] => Ok(config.clone()),
        _ => Err(format!("{command} takes exactly one CONFIG\n{USAGE}")),
    }
}

fn check(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args, &["envoy"])?;
    let path = config_argument(&options, "check")?;
    let config = load_config(&path)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    if let Some(envoy) = options.one("envoy") {
        for warning in missing_clusters(&config, envoy)? {
            eprintln!("warning: {warning}");
        }
    }
    println!("{path}: OK");
    println!("realm: {}", config.realm);
    let keys = config.initial_keys();
    for (id, provider) in config.providers.iter() {
        println!("{}", describe_provider(&config, &keys, id, provider));
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
        let mode = if rule.mode == Mode::DryRun {
            " [dry run]"
        } else {
            ""
        };
        println!(
            "rule {}: {} -> {effect}{condition}{mode}",
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
    Ok(())
}

/// One line about a provider for `claimgate check`.
/// The remote key clusters `config` names that the Envoy bootstrap at `envoy_path` does
/// not define (its `static_resources.clusters`): a fetch through them fails, and the
/// provider never gets keys.
fn missing_clusters(config: &Config, envoy_path: &str) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(envoy_path).map_err(|err| format!("{envoy_path}: {err}"))?;
    let envoy: Value =
        serde_yaml_ng::from_str(&text).map_err(|err| format!("{envoy_path}: {err}"))?;
    let defined: Vec<&str> = envoy
        .pointer("/static_resources/clusters")
        .and_then(Value::as_array)
        .map(|clusters| {
            clusters
                .iter()
                .filter_map(|cluster| cluster.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut warnings = Vec::new();
    for (id, provider) in config.providers.iter() {
        let Some(source) = &provider.remote else {
            continue;
        };
        let mut clusters: Vec<(&str, &str)> = match &source.kind {
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
        clusters.dedup_by_key(|(_, cluster)| *cluster);
        for (field, cluster) in clusters {
            if !defined.contains(&cluster) {
                warnings.push(format!(
                    "{id}.{field}: cluster '{cluster}' is not defined in {envoy_path} (it defines: {}); \
                     fetches through it fail and provider '{}' gets no keys. Under Istio, the \
                     cluster a ServiceEntry creates is named outbound|PORT||HOST, e.g. \
                     outbound|443||TENANT.auth0.com",
                    if defined.is_empty() { "none".to_owned() } else { defined.join(", ") },
                    provider.name
                ));
            }
        }
    }
    Ok(warnings)
}

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

fn eval(args: &[String]) -> Result<(), String> {
    let options = Options::parse(
        args,
        &[
            "token",
            "method",
            "path",
            "authority",
            "header",
            "client-address",
            "client-cert-thumbprint",
            "dpop-proof",
            "scheme",
            "now",
            "jwks",
            "provider",
        ],
    )?;
    let config = load_config(&config_argument(&options, "eval")?)?;
    let mut keys = config.initial_keys();
    if let Some(location) = options.one("jwks") {
        load_remote_keys(&config, &mut keys, location, options.one("provider"))?;
    } else if options.one("provider").is_some() {
        return Err("--provider goes with --jwks".into());
    }
    let mut extra: Vec<(String, Vec<u8>)> = match (options.one("token"), options.one("dpop-proof"))
    {
        (Some(token), Some(proof)) => vec![
            (
                "authorization".to_owned(),
                format!("DPoP {token}").into_bytes(),
            ),
            ("dpop".to_owned(), proof.as_bytes().to_vec()),
        ],
        (Some(token), None) => vec![bearer_header(token)],
        (None, Some(_)) => return Err("--dpop-proof goes with --token".into()),
        (None, None) => Vec::new(),
    };
    for header in options.all("header") {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("--header '{header}' must be NAME:VALUE"))?;
        extra.push((name.trim().to_owned(), value.trim().as_bytes().to_vec()));
    }
    let headers = request_headers(
        options.one("method").unwrap_or("GET"),
        options.one("path").unwrap_or("/"),
        options.one("authority").unwrap_or("localhost"),
        options.one("scheme"),
        extra
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_slice())),
    );
    let now = options.number("now")?.unwrap_or_else(unix_now);
    let request = RequestView::new(&headers)
        .with_client_address(options.one("client-address"))
        .with_client_certificate(options.one("client-cert-thumbprint"));
    let decision = decide(&config, &keys, &request, now);
    let text = serde_json::to_string_pretty(&decision.to_json()).map_err(|err| err.to_string())?;
    println!("{text}");
    Ok(())
}

/// Gives a provider the keys of a saved or fetched JWKS, validated as a fetch is.
fn load_remote_keys(
    config: &Config,
    keys: &mut KeyRing,
    location: &str,
    provider: Option<&str>,
) -> Result<(), String> {
    let id = match provider {
        Some(name) => config
            .provider_id(name)
            .ok_or_else(|| format!("--provider: no provider named '{name}'"))?,
        None => {
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
                (&[id], _) | (&[], Some(id)) => id,
                _ => return Err("--jwks: name the provider it belongs to with --provider".into()),
            }
        }
    };
    let entry = config
        .providers
        .get(id)
        .ok_or("--provider: no such provider")?;
    let limit = entry
        .remote
        .as_ref()
        .map_or(256 * 1024, |source| source.max_response_bytes);
    let (status, cache_control, body) = if location.starts_with("http://") {
        http_get(location, limit)?
    } else if location.starts_with("https://") {
        return Err(format!(
            "--jwks {location}: the CLI fetches plain http:// only; save the JWKS first \
             (curl -o jwks.json {location}) and give the file"
        ));
    } else {
        let body =
            std::fs::read(location).map_err(|err| format!("cannot read {location}: {err}"))?;
        (200, None, body)
    };
    let response = FetchResponse {
        status: Some(status),
        cache_control: cache_control.as_deref(),
        body_size: body.len(),
        body: Some(&body),
    };
    let valid =
        validate_jwks(&response, limit).map_err(|err| format!("--jwks {location}: {err}"))?;
    for (key_index, problem) in &valid.parsed.skipped {
        eprintln!("claimgate: --jwks {location}: keys[{key_index}] skipped: {problem}");
    }
    keys.replace(id, Arc::new(entry.keys_with_remote(&valid.parsed.keys)));
    Ok(())
}

/// One plain-HTTP GET over std's TcpStream (for loopback and testing; https needs a saved
/// file). Returns the status, Cache-Control and body (at most `limit` + 1 bytes read).
fn http_get(url: &str, limit: usize) -> Result<(u16, Option<String>, Vec<u8>), String> {
    let parsed = HttpUrl::parse(url).map_err(|why| format!("--jwks {url}: {why}"))?;
    let port = parsed.port.unwrap_or(80);
    let host = parsed.host.trim_start_matches('[').trim_end_matches(']');
    let timeout = Duration::from_secs(10);
    let address = (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("--jwks {url}: {err}"))?
        .next()
        .ok_or_else(|| format!("--jwks {url}: host not found"))?;
    let mut stream = TcpStream::connect_timeout(&address, timeout)
        .map_err(|err| format!("--jwks {url}: {err}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|err| err.to_string())?;
    let request = format!(
        "GET {} HTTP/1.1\r\nhost: {}\r\naccept: application/json\r\nuser-agent: claimgate\r\nconnection: close\r\n\r\n",
        parsed.path_and_query,
        parsed.authority()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| format!("--jwks {url}: {err}"))?;
    let mut response = Vec::new();
    stream
        .take(
            u64::try_from(limit)
                .unwrap_or(u64::MAX)
                .saturating_add(64 * 1024),
        )
        .read_to_end(&mut response)
        .map_err(|err| format!("--jwks {url}: {err}"))?;
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(|| format!("--jwks {url}: no HTTP response"))?;
    let head = String::from_utf8_lossy(response.get(..split).unwrap_or_default()).into_owned();
    let mut body = response.get(split + 4..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("--jwks {url}: bad status line"))?;
    let mut cache_control = None;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("cache-control") {
                cache_control = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("content-length") {
                if let Ok(length) = value.parse::<usize>() {
                    body.truncate(length);
                }
            }
        }
    }
    if chunked {
        body = dechunk(&body).ok_or_else(|| format!("--jwks {url}: bad chunked body"))?;
    }
    Ok((status, cache_control, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(data.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = data.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// How a `claimgate test` run ended once its cases ran.
enum TestRun {
    Passed,
    Failed,
}

fn test(args: &[String]) -> Result<TestRun, String> {
    let options = Options::parse(args, &[])?;
    let [config_path, cases_path] = options.positional.as_slice() else {
        return Err(format!("test takes CONFIG and CASES\n{USAGE}"));
    };
    let config = load_config(config_path)?;
    let cases = CaseFile::from_value(read_document(cases_path)?)
        .map_err(|err| format!("{cases_path}: {err}"))?;
    let now = cases.now.unwrap_or_else(unix_now);
    let keys = config.initial_keys();
    // One record of used DPoP proofs for the file: a later case may replay a proof.
    let replay = MemoryReplayGuard::default();
    let (mut passed, mut failed) = (0, 0);
    for case in &cases.cases {
        let problems = case.run_with(&config, &keys, now, &replay);
        if problems.is_empty() {
            passed += 1;
            println!("ok   {}", case.name);
        } else {
            failed += 1;
            println!("FAIL {}: {}", case.name, problems.join("; "));
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        eprintln!(
            "claimgate: {failed} of {} case(s) failed",
            cases.cases.len()
        );
        return Ok(TestRun::Failed);
    }
    Ok(TestRun::Passed)
}

fn mint(args: &[String]) -> Result<(), String> {
    if let Some(("proof", rest)) = args
        .split_first()
        .map(|(first, rest)| (first.as_str(), rest))
    {
        return mint_proof(rest);
    }
    let options = Options::parse(
        args,
        &[
            "key",
            "config",
            "provider",
            "iss",
            "aud",
            "sub",
            "claim",
            "ttl",
            "now",
            "count",
            "dpop-key",
            "cert-thumbprint",
        ],
    )?;
    let key_path = options.one("key").ok_or("mint needs --key PRIVATE_JWK")?;
    let key =
        SigningKey::from_jwk(&read_json(key_path)?).map_err(|err| format!("{key_path}: {err}"))?;
    let provider = mint_provider(&options)?;
    let issuer = options
        .one("iss")
        .map(str::to_owned)
        .or_else(|| provider.as_ref().map(|p| p.issuer.clone()))
        .ok_or("mint needs --iss or --config")?;
    let audience = options
        .one("aud")
        .map(str::to_owned)
        .or_else(|| provider.as_ref().and_then(|p| p.audiences.first().cloned()))
        .ok_or("mint needs --aud or --config")?;
    let now = options.number("now")?.unwrap_or_else(unix_now);
    let ttl = options.number("ttl")?.unwrap_or(3600);
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), audience.into());
    claims.insert(
        "sub".into(),
        options.one("sub").unwrap_or("auth0|demo-user").into(),
    );
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + ttl).into());
    for claim in options.all("claim") {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| format!("--claim '{claim}' must be NAME=VALUE"))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        claims.insert(name.to_owned(), value);
    }
    if let Some(cnf) = confirmation(&options)? {
        claims.insert("cnf".into(), cnf);
    }
    let count = options.number("count")?.unwrap_or(1);
    if count < 1 {
        return Err("--count must be at least 1".into());
    }
    let mut out = String::new();
    for index in 0..count {
        if count > 1 {
            // Distinct tokens (for load tests that must defeat token caches).
            claims.insert("jti".into(), format!("load-{index}").into());
        }
        let token = key
            .sign(&Value::Object(claims.clone()))
            .map_err(|err| err.to_string())?;
        out.push_str(&token);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// The provider `mint --config` takes the issuer and audience from: `--provider`, or the
/// first.
fn mint_provider(options: &Options) -> Result<Option<Provider>, String> {
    Ok(match options.one("config") {
        None => None,
        Some(path) => {
            let config = load_config(path)?;
            let id = match options.one("provider") {
                Some(name) => Some(
                    config
                        .provider_id(name)
                        .ok_or_else(|| format!("{path}: no provider named '{name}'"))?,
                ),
                None => config.providers.ids().next(),
            };
            id.and_then(|id| config.providers.get(id).cloned())
        }
    })
}

/// The `cnf` claim `mint` binds a token with: the DPoP key's thumbprint (`jkt`) and the
/// client certificate's (`x5t#S256`); `None` when neither is asked for.
fn confirmation(options: &Options) -> Result<Option<Value>, String> {
    let mut cnf = Map::new();
    if let Some(path) = options.one("dpop-key") {
        let client =
            SigningKey::from_jwk(&read_json(path)?).map_err(|err| format!("{path}: {err}"))?;
        let jkt = client
            .thumbprint()
            .ok_or_else(|| format!("{path}: a DPoP key must be asymmetric"))?;
        cnf.insert("jkt".into(), jkt.into());
    }
    if let Some(thumbprint) = options.one("cert-thumbprint") {
        cnf.insert("x5t#S256".into(), thumbprint.into());
    }
    if !cnf.is_empty() {
        return Ok(Some(Value::Object(cnf)));
    }
    Ok(None)
}

/// `claimgate mint proof`: a DPoP proof for one request.
fn mint_proof(args: &[String]) -> Result<(), String> {
    let options = Options::parse(
        args,
        &["dpop-key", "method", "url", "token", "nonce", "now", "jti"],
    )?;
    let path = options
        .one("dpop-key")
        .ok_or("mint proof needs --dpop-key CLIENT_JWK")?;
    let key = SigningKey::from_jwk(&read_json(path)?).map_err(|err| format!("{path}: {err}"))?;
    let now = options.number("now")?.unwrap_or_else(unix_now);
    let jti = match options.one("jti") {
        Some(jti) => jti.to_owned(),
        None => random_jti()?,
    };
    let proof = key
        .dpop_proof(&ProofRequest {
            method: options.one("method").ok_or("mint proof needs --method")?,
            url: options.one("url").ok_or("mint proof needs --url")?,
            access_token: options.one("token"),
            nonce: options.one("nonce"),
            iat: now,
            jti: &jti,
        })
        .map_err(|err| err.to_string())?;
    println!("{proof}");
    Ok(())
}

/// 128 random bits, base64url: a `jti` no other proof has.
fn random_jti() -> Result<String, String> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use rand_core::{OsRng, RngCore};
    let mut bytes = [0_u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|err| format!("no randomness for a jti: {err}"))?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}

fn keygen(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args, &["alg", "kid"])?;
    let name = options.one("alg").ok_or("keygen needs --alg")?;
    let alg = Alg::from_name(name).ok_or_else(|| format!("unsupported algorithm '{name}'"))?;
    let key = SigningKey::generate(alg, options.one("kid")).map_err(|err| err.to_string())?;
    let text = serde_json::to_string_pretty(&key.private_jwk()).map_err(|err| err.to_string())?;
    println!("{text}");
    Ok(())
}

fn public_jwks(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args, &["key"])?;
    let key_path = options
        .one("key")
        .ok_or("public-jwks needs --key PRIVATE_JWK")?;
    let key =
        SigningKey::from_jwk(&read_json(key_path)?).map_err(|err| format!("{key_path}: {err}"))?;
    let text = serde_json::to_string_pretty(&json!({"keys": [key.public_jwk()]}))
        .map_err(|err| err.to_string())?;
    println!("{text}");
    Ok(())
}
