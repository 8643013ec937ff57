//! `claimgate keygen` (a private JWK) and `claimgate public-jwks` (the JWKS that verifies
//! it; an HMAC key's JWKS is its secret, printed only with --include-secrets).

use std::path::PathBuf;

use claimgate::jwks::{Alg, KeyFamily};
use claimgate::mint::SigningKey;
use clap::Args;
use serde_json::json;

use crate::mint::read_key;
use crate::CliError;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The algorithm: RS256, ES256, EdDSA, HS256, …
    #[arg(long, value_name = "ALG")]
    alg: String,
    /// The key id (`kid`).
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublicJwksArgs {
    /// The private JWK (claimgate keygen).
    #[arg(long, value_name = "PRIVATE_JWK")]
    key: PathBuf,
    /// Print an HMAC key's JWKS, which is the shared secret itself (refused without).
    #[arg(long)]
    include_secrets: bool,
}

pub fn keygen(args: &KeygenArgs) -> Result<(), CliError> {
    let alg = Alg::from_name(&args.alg)
        .ok_or_else(|| CliError::Usage(format!("--alg: unsupported algorithm '{}'", args.alg)))?;
    let key = SigningKey::generate(alg, args.kid.as_deref())
        .map_err(|err| CliError::Refused(err.to_string()))?;
    print_json(&key.private_jwk())
}

pub fn public_jwks(args: &PublicJwksArgs) -> Result<(), CliError> {
    let key = read_key(&args.key)?;
    if key.alg().family() == KeyFamily::Hmac && !args.include_secrets {
        return Err(CliError::Refused(format!(
            "{}: an HMAC key ({}) has no public part: its JWKS is the shared secret. Give \
             --include-secrets to print it anyway, and keep the output as secret as the key",
            args.key.display(),
            key.alg().name()
        )));
    }
    print_json(&json!({"keys": [key.public_jwk()]}))
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let text =
        serde_json::to_string_pretty(value).map_err(|err| CliError::Refused(err.to_string()))?;
    println!("{text}");
    Ok(())
}
