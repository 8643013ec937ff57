//! `claimgate test`: a file of policy cases run with the decision code Envoy runs. A case
//! that fails names what differed, and the rule that decided with its reason.

use std::path::PathBuf;

use claimgate::cases::{CaseFile, Observed};
use claimgate::dpop::MemoryReplayGuard;
use claimgate::UnixSeconds;
use clap::Args;

use crate::source::{load_config, Source};
use crate::{unix_now, CliError};

pub const CASES_HELP: &str = "\
The case format (YAML or JSON) is in filter-config/POLICY.md, \"Policy tests\"; the shipped
filter-config/aethermarket.cases.yaml is an example. In short:

  now: 1798761600             # optional fixed clock (Unix seconds)
  cases:
    - name: gold sees deals
      request: {method: GET, path: /deals/exclusive, host: api.example.com, headers: {}}
      claims: {sub: auth0|1}  # or token: eyJ... (verified with the configuration's keys)
      expect: {status: 200, rule: exclusive-deals, headers: {x-user-id: auth0|1}}

Exit codes: 0 every case passed; 1 a case failed; 2 usage; 3 the configuration or the case
file was refused (the message names the file, line and column).";

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The configuration (JSON or YAML).
    #[arg(value_name = "CONFIG")]
    config: PathBuf,
    /// The policy cases (YAML or JSON).
    #[arg(value_name = "CASES")]
    cases: PathBuf,
}

pub fn run(args: &TestArgs) -> Result<(), CliError> {
    let config = load_config(&args.config)?;
    let source = Source::read(&args.cases)?;
    let document = source.document()?;
    let cases = CaseFile::from_value(document).map_err(|err| {
        let path = err.split_once(':').map_or("", |(path, _)| path);
        CliError::Refused(format!("{}: {err}", source.at(0, path)))
    })?;
    let now = UnixSeconds(cases.now.unwrap_or_else(unix_now));
    let keys = config.initial_keys();
    // One record of used DPoP proofs for the file: a later case may replay a proof.
    let replay = MemoryReplayGuard::default();
    let (mut passed, mut failed) = (0, 0);
    for case in &cases.cases {
        let problems = match case.decide(&config, &keys, now, &replay) {
            Err(err) => vec![err],
            Ok(decision) => {
                let observed = Observed::from_decision(&decision, &case.request.headers());
                let mut problems = case.expect.mismatches(&observed);
                if !problems.is_empty() {
                    let rule = decision.rule.as_ref().map_or_else(
                        || "no rule matched (the default decided)".to_owned(),
                        |rule| format!("rule '{rule}' decided"),
                    );
                    problems.push(format!("{rule}: {}", decision.reason));
                }
                problems
            }
        };
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
        return Err(CliError::CasesFailed(format!(
            "{failed} of {} case(s) failed",
            cases.cases.len()
        )));
    }
    Ok(())
}
