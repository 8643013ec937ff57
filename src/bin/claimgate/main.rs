//! `claimgate`: check a configuration, evaluate a request against it with exactly the
//! decision code the Envoy filter runs, run policy cases, and mint demo tokens and keys.
//!
//! This file holds the command line (clap) and the exit codes; each command is in its own
//! file, and `source` reads configurations (JSON or YAML, with positions in the user's file).

mod check;
mod deployed;
mod eval;
mod fetch;
mod keys;
mod mint;
mod source;
mod spans;
mod test;

use std::fmt;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  policy cases failed (claimgate test)
  2  usage: unknown command or option, a missing or malformed argument
  3  an input was refused: a file that cannot be read, is not JSON or YAML, or holds an
     invalid configuration, case file or key (the message names the file, line and column)
  4  a key fetch failed (eval --jwks URL: connection, TLS or timeout)

CONFIG is JSON, or YAML when the file name ends in .yaml or .yml (other names: JSON when the
text starts with '{'). The policy case format: claimgate test --help.";

/// Edge JWT verification and ABAC policy for Envoy: the command line.
#[derive(Debug, Parser)]
#[command(
    name = "claimgate",
    version,
    about,
    after_help = EXIT_CODES,
    args_override_self = true,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration — or the ones an Envoy bootstrap, an Istio WasmPlugin or an
    /// Envoy Gateway EnvoyExtensionPolicy embeds — and print the compiled policy and warnings.
    #[command(after_help = EXIT_CODES)]
    Check(check::CheckArgs),
    /// Decide one request with the filter's own decision code and print the decision as JSON.
    #[command(after_help = EXIT_CODES)]
    Eval(eval::EvalArgs),
    /// Run a file of policy cases: a line per case, then 'N passed, N failed'.
    #[command(after_help = test::CASES_HELP)]
    Test(test::TestArgs),
    /// Print a configuration as the compact JSON Envoy's plugin configuration takes (its
    /// `configuration.value`), after checking it.
    #[command(after_help = EXIT_CODES)]
    Json(check::JsonArgs),
    /// Sign a token for demos and tests (or `mint proof`: a DPoP proof).
    #[command(after_help = EXIT_CODES)]
    Mint(mint::MintArgs),
    /// Generate a private JWK, for tests and demos.
    #[command(after_help = EXIT_CODES)]
    Keygen(keys::KeygenArgs),
    /// Print the JWKS that verifies a private JWK's tokens.
    #[command(after_help = EXIT_CODES)]
    PublicJwks(keys::PublicJwksArgs),
}

/// Why a command failed; each kind has its own exit code (see [`EXIT_CODES`]).
#[derive(Debug)]
pub enum CliError {
    /// Policy cases failed: exit 1.
    CasesFailed(String),
    /// A bad combination of arguments clap cannot see: exit 2.
    Usage(String),
    /// A file could not be read or was refused: exit 3.
    Refused(String),
    /// A network fetch failed: exit 4.
    Unavailable(String),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::CasesFailed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Refused(_) => 3,
            CliError::Unavailable(_) => 4,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::CasesFailed(message)
            | CliError::Usage(message)
            | CliError::Refused(message)
            | CliError::Unavailable(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

/// The current time, Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
}

fn main() -> ExitCode {
    // clap prints help and version with exit 0, and usage errors with exit 2.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => check::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Json(args) => check::json(&args),
        Command::Mint(args) => mint::run(&args),
        Command::Keygen(args) => keys::keygen(&args),
        Command::PublicJwks(args) => keys::public_jwks(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("claimgate: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
