//! `claimgate mint`: a signed token for demos and tests, optionally bound to a DPoP key
//! or a client certificate; `claimgate mint proof`: a DPoP proof for one request.

use std::path::{Path, PathBuf};

use claimgate::mint::{ProofRequest, SigningKey};
use claimgate::provider::Provider;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::source::load_config;
use crate::{unix_now, CliError};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct MintArgs {
    #[command(subcommand)]
    proof: Option<MintCommand>,
    /// The private JWK that signs (claimgate keygen).
    #[arg(long, value_name = "PRIVATE_JWK", required = true)]
    key: Option<PathBuf>,
    /// Take the issuer and audience from this configuration's provider.
    #[arg(long, value_name = "CONFIG")]
    config: Option<PathBuf>,
    /// The provider of --config (default: the first).
    #[arg(long, value_name = "NAME", requires = "config")]
    provider: Option<String>,
    /// `iss` (default: the provider's issuer).
    #[arg(long, value_name = "ISS")]
    iss: Option<String>,
    /// `aud` (default: the provider's first audience).
    #[arg(long, value_name = "AUD")]
    aud: Option<String>,
    #[arg(long, value_name = "SUB", default_value = "auth0|demo-user")]
    sub: String,
    /// A claim: VALUE is parsed as JSON when it is valid JSON, else taken as a string.
    /// Repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
    /// Lifetime in seconds.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 3600,
        allow_negative_numbers = true
    )]
    ttl: i64,
    /// `iat`, Unix seconds (default: now).
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
    /// Print N distinct tokens (jti load-0, load-1, …), one a line.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    count: u32,
    /// Bind the token to this client key (cnf.jkt, RFC 9449).
    #[arg(long, value_name = "CLIENT_JWK")]
    dpop_key: Option<PathBuf>,
    /// Bind the token to a client certificate (cnf.x5t#S256, RFC 8705).
    #[arg(long, value_name = "X5T_S256")]
    cert_thumbprint: Option<String>,
}

#[derive(Debug, Subcommand)]
enum MintCommand {
    /// A DPoP proof (RFC 9449) with a client key for one request.
    Proof(ProofArgs),
}

#[derive(Debug, Args)]
struct ProofArgs {
    /// The client's private JWK.
    #[arg(long, value_name = "CLIENT_JWK")]
    dpop_key: PathBuf,
    #[arg(long, value_name = "M")]
    method: String,
    /// The request URL without query.
    #[arg(long, value_name = "URL")]
    url: String,
    /// The access token, for the proof's `ath`.
    #[arg(long, value_name = "T")]
    token: Option<String>,
    /// A nonce the server gave (DPoP-Nonce).
    #[arg(long, value_name = "N")]
    nonce: Option<String>,
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    now: Option<i64>,
    /// The proof's id (default: 128 random bits).
    #[arg(long, value_name = "ID")]
    jti: Option<String>,
}

/// Reads a private JWK file.
pub fn read_key(path: &Path) -> Result<SigningKey, CliError> {
    let name = path.display();
    let text = std::fs::read(path)
        .map_err(|err| CliError::Refused(format!("cannot read {name}: {err}")))?;
    let jwk: Value = serde_json::from_slice(&text).map_err(|err| {
        CliError::Refused(format!(
            "{name}:{}:{}: not JSON: {err}",
            err.line(),
            err.column()
        ))
    })?;
    SigningKey::from_jwk(&jwk).map_err(|err| CliError::Refused(format!("{name}: {err}")))
}

pub fn run(args: &MintArgs) -> Result<(), CliError> {
    if let Some(MintCommand::Proof(proof)) = &args.proof {
        return mint_proof(proof);
    }
    let key_path = args
        .key
        .as_ref()
        .ok_or_else(|| CliError::Usage("mint needs --key PRIVATE_JWK".into()))?;
    let key = read_key(key_path)?;
    let provider = mint_provider(args)?;
    let issuer = args
        .iss
        .clone()
        .or_else(|| provider.as_ref().map(|p| p.issuer.clone()))
        .ok_or_else(|| CliError::Usage("mint needs --iss or --config".into()))?;
    let audience = args
        .aud
        .clone()
        .or_else(|| provider.as_ref().and_then(|p| p.audiences.first().cloned()))
        .ok_or_else(|| CliError::Usage("mint needs --aud or --config".into()))?;
    let now = args.now.unwrap_or_else(unix_now);
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("aud".into(), audience.into());
    claims.insert("sub".into(), args.sub.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), now.saturating_add(args.ttl).into());
    for claim in &args.claims {
        let (name, value) = claim
            .split_once('=')
            .ok_or_else(|| CliError::Usage(format!("--claim '{claim}' must be NAME=VALUE")))?;
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
        claims.insert(name.to_owned(), value);
    }
    if let Some(cnf) = confirmation(args)? {
        claims.insert("cnf".into(), cnf);
    }
    let mut out = String::new();
    for index in 0..args.count {
        if args.count > 1 {
            // Distinct tokens (for load tests that must defeat token caches).
            claims.insert("jti".into(), format!("load-{index}").into());
        }
        let token = key
            .sign(&Value::Object(claims.clone()))
            .map_err(|err| CliError::Refused(err.to_string()))?;
        out.push_str(&token);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// The provider `mint --config` takes the issuer and audience from: `--provider`, or the
/// first.
fn mint_provider(args: &MintArgs) -> Result<Option<Provider>, CliError> {
    let Some(path) = &args.config else {
        return Ok(None);
    };
    let config = load_config(path)?;
    let id = match &args.provider {
        Some(name) => Some(config.provider_id(name).ok_or_else(|| {
            CliError::Usage(format!("{}: no provider named '{name}'", path.display()))
        })?),
        None => config.providers.ids().next(),
    };
    Ok(id.and_then(|id| config.providers.get(id).cloned()))
}

/// The `cnf` claim binding the token: the DPoP key's thumbprint (`jkt`) and the client
/// certificate's (`x5t#S256`); `None` when neither is asked for.
fn confirmation(args: &MintArgs) -> Result<Option<Value>, CliError> {
    let mut cnf = Map::new();
    if let Some(path) = &args.dpop_key {
        let jkt = read_key(path)?.thumbprint().ok_or_else(|| {
            CliError::Refused(format!("{}: a DPoP key must be asymmetric", path.display()))
        })?;
        cnf.insert("jkt".into(), jkt.into());
    }
    if let Some(thumbprint) = &args.cert_thumbprint {
        cnf.insert("x5t#S256".into(), thumbprint.clone().into());
    }
    Ok((!cnf.is_empty()).then_some(Value::Object(cnf)))
}

/// `claimgate mint proof`: a DPoP proof for one request.
fn mint_proof(args: &ProofArgs) -> Result<(), CliError> {
    let key = read_key(&args.dpop_key)?;
    let now = args.now.unwrap_or_else(unix_now);
    let jti = match &args.jti {
        Some(jti) => jti.clone(),
        None => random_jti()?,
    };
    let proof = key
        .dpop_proof(&ProofRequest {
            method: &args.method,
            url: &args.url,
            access_token: args.token.as_deref(),
            nonce: args.nonce.as_deref(),
            iat: now,
            jti: &jti,
        })
        .map_err(|err| CliError::Refused(err.to_string()))?;
    println!("{proof}");
    Ok(())
}

/// 128 random bits, base64url: a `jti` no other proof has.
fn random_jti() -> Result<String, CliError> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use rand_core::{OsRng, RngCore};
    let mut bytes = [0_u8; 16];
    OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|err| CliError::Refused(format!("no randomness for a jti: {err}")))?;
    Ok(Base64UrlUnpadded::encode_string(&bytes))
}
