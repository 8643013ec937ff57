//! Policy test cases: a file of requests (with claims or a real token) and the outcome each
//! must get. `claimgate test` runs them against the same decision code Envoy runs; the
//! Envoy integration tests send the same cases through a real Envoy.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::config::Config;
use crate::decision::{decide, Decision, Environment, Input, ProofEnvironment};
use crate::dpop::{MemoryReplayGuard, NonceKey, ReplayGuard};
use crate::jwks::KeyRing;
use crate::policy::Claims;
use crate::request::{bearer_header, request_headers, RequestView};
use crate::time::UnixSeconds;
use crate::token::VerifiedToken;

/// A file of cases.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// The clock (Unix seconds) the cases run at; the current time when absent.
    #[serde(default)]
    pub now: Option<i64>,
    pub cases: Vec<Case>,
}

/// One request and what it must get.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub request: CaseRequest,
    /// The verified claims the request carries (signature and time checks are skipped:
    /// this tests the policy and the identity headers). Exclusive with `token`.
    #[serde(default)]
    pub claims: Option<Claims>,
    /// The provider whose token carries `claims`; the first provider when absent.
    #[serde(default)]
    pub provider: Option<String>,
    /// A real token, verified with the configuration's keys as Envoy would.
    #[serde(default)]
    pub token: Option<String>,
    /// A DPoP proof (RFC 9449) for the request: sent as the `DPoP` header, with `token`
    /// as `Authorization: DPoP`. Proofs are time-bound: give the file a fixed `now`.
    #[serde(default)]
    pub dpop_proof: Option<String>,
    pub expect: Expectation,
}

/// The request of a case; every part has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaseRequest {
    pub method: String,
    /// Path and query string as sent.
    pub path: String,
    pub host: String,
    /// `:scheme` (default `http`).
    pub scheme: String,
    pub headers: BTreeMap<String, String>,
    pub client_address: Option<String>,
    /// The SHA-256 thumbprint (base64url, as in `cnf.x5t#S256`) of the TLS client
    /// certificate the connection presented (RFC 8705).
    pub client_cert_thumbprint: Option<String>,
}

impl Default for CaseRequest {
    fn default() -> Self {
        CaseRequest {
            method: "GET".into(),
            path: "/".into(),
            host: "localhost".into(),
            scheme: "http".into(),
            headers: BTreeMap::new(),
            client_address: None,
            client_cert_thumbprint: None,
        }
    }
}

/// What the case must get. Only what is given is checked, except the status.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub status: u16,
    /// The deciding rule; `null` for "the default decided".
    #[serde(default, deserialize_with = "present_or_null")]
    pub rule: Option<Option<String>>,
    /// Headers the upstream must see with these values; `null`: must not see the header.
    #[serde(default)]
    pub headers: BTreeMap<String, Option<String>>,
    /// The status the dry-run rules would have given.
    #[serde(default)]
    pub dry_run_status: Option<u16>,
    /// Text the decision's reason must contain.
    #[serde(default)]
    pub reason_contains: Option<String>,
}

/// Tells `"rule": null` (checked: no rule) apart from no `rule` key (not checked).
fn present_or_null<'de, D>(deserializer: D) -> Result<Option<Option<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    Option::<String>::deserialize(deserializer).map(Some)
}

impl CaseFile {
    pub fn from_value(value: Value) -> Result<CaseFile, String> {
        serde_path_to_error::deserialize(value).map_err(|err| {
            let path = err.path().to_string();
            format!("{path}: {}", err.into_inner())
        })
    }
}

impl CaseRequest {
    /// The request as Envoy hands it to the filter: pseudo-headers first.
    pub fn headers(&self) -> Vec<(String, Vec<u8>)> {
        request_headers(
            &self.method,
            &self.path,
            &self.host,
            Some(&self.scheme),
            self.headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
    }
}

/// What a case got, as far as a case can check it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: u16,
    /// The deciding rule; `None` when not known.
    pub rule: Option<Option<String>>,
    /// Headers the upstream saw (lowercase names); `None` when the request was refused.
    pub upstream_headers: Option<Vec<(String, String)>>,
    /// The dry-run status, if any; `None` when not known.
    pub dry_run_status: Option<Option<u16>>,
    /// `None` when not known.
    pub reason: Option<String>,
}

impl Observed {
    /// What a decision leads to: the request headers after the decision's removals and sets.
    pub fn from_decision(decision: &Decision, request: &[(String, Vec<u8>)]) -> Observed {
        let upstream_headers = decision.forwarded_headers(request).map(|headers| {
            headers
                .into_iter()
                .map(|(name, value)| (name.to_owned(), String::from_utf8_lossy(value).into_owned()))
                .collect()
        });
        Observed {
            status: decision.status(),
            rule: Some(decision.rule.clone()),
            upstream_headers,
            dry_run_status: Some(decision.dry_run.as_ref().map(|report| report.status)),
            reason: Some(decision.reason.clone()),
        }
    }
}

impl Expectation {
    /// Every way `observed` differs from this expectation (empty: the case passes).
    pub fn mismatches(&self, observed: &Observed) -> Vec<String> {
        let mut problems = Vec::new();
        if observed.status != self.status {
            problems.push(format!(
                "status {} expected, got {}",
                self.status, observed.status
            ));
        }
        // An expectation is never skipped: one the observer could not see is a problem.
        const UNSEEN: &str = "was not observed";
        match (&self.rule, &observed.rule) {
            (Some(expected), Some(got)) if expected != got => problems.push(format!(
                "rule {} expected, got {}",
                rule_text(expected),
                rule_text(got)
            )),
            (Some(expected), None) => {
                problems.push(format!("rule {} expected, {UNSEEN}", rule_text(expected)))
            }
            _ => {}
        }
        match (self.dry_run_status, observed.dry_run_status) {
            (Some(expected), Some(got)) if got != Some(expected) => problems.push(format!(
                "dry-run status {expected} expected, got {}",
                got.map_or_else(|| "no dry-run report".to_owned(), |s| s.to_string())
            )),
            (Some(expected), None) => {
                problems.push(format!("dry-run status {expected} expected, {UNSEEN}"))
            }
            _ => {}
        }
        match (&self.reason_contains, &observed.reason) {
            (Some(needle), Some(reason)) if !reason.contains(needle.as_str()) => {
                problems.push(format!("reason should contain {needle:?}, got {reason:?}"))
            }
            (Some(needle), None) => {
                problems.push(format!("reason should contain {needle:?}, {UNSEEN}"))
            }
            _ => {}
        }
        if !self.headers.is_empty() {
            match &observed.upstream_headers {
                None => {
                    problems.push("header expectations given, but the request was refused".into())
                }
                Some(headers) => {
                    for (name, expected) in &self.headers {
                        let name = name.to_ascii_lowercase();
                        let got = headers
                            .iter()
                            .find(|(known, _)| *known == name)
                            .map(|(_, value)| value.as_str());
                        if got != expected.as_deref() {
                            problems.push(format!(
                                "header {name}: {} expected, got {}",
                                header_text(expected.as_deref()),
                                header_text(got)
                            ));
                        }
                    }
                }
            }
        }
        problems
    }
}

fn rule_text(rule: &Option<String>) -> String {
    rule.as_ref()
        .map_or_else(|| "(default)".to_owned(), |name| format!("'{name}'"))
}

fn header_text(value: Option<&str>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), |value| format!("{value:?}"))
}

impl Case {
    /// Decides the case with the decision code Envoy runs; DPoP proofs are recorded in
    /// `replay` (a file's cases share one, so a later case can replay a proof).
    pub fn decide(
        &self,
        config: &Config,
        keys: &KeyRing,
        now: UnixSeconds,
        replay: &dyn ReplayGuard,
    ) -> Result<Decision, String> {
        let mut headers = self.request.headers();
        let decision = match (&self.claims, &self.token) {
            (Some(_), Some(_)) => return Err("give \"claims\" or \"token\", not both".into()),
            (Some(_), None) if self.dpop_proof.is_some() => {
                return Err("\"dpop_proof\" goes with \"token\"".into())
            }
            (Some(claims), None) => {
                let provider = match &self.provider {
                    Some(name) => config
                        .provider_id(name)
                        .ok_or_else(|| format!("no provider named '{name}'"))?,
                    None => config
                        .providers
                        .ids()
                        .next()
                        .ok_or("the configuration has no provider")?,
                };
                let alg = config
                    .providers
                    .get(provider)
                    .and_then(|p| p.algorithms.first().copied())
                    .ok_or("the configuration has no provider")?;
                let verified = VerifiedToken::assume_verified_for_tests(
                    provider,
                    alg,
                    claims.clone(),
                    claims.get("exp").and_then(Value::as_i64),
                );
                decide(
                    Input::pre_verified(self.view(&headers), Some(&verified)),
                    Environment::new(config, keys, now),
                )
            }
            (None, token) => {
                match (token, &self.dpop_proof) {
                    (Some(token), Some(proof)) => {
                        headers.push((
                            "authorization".to_owned(),
                            format!("DPoP {token}").into_bytes(),
                        ));
                        headers.push(("dpop".to_owned(), proof.as_bytes().to_vec()));
                    }
                    (Some(token), None) => headers.push(bearer_header(token)),
                    (None, Some(_)) => return Err("\"dpop_proof\" goes with \"token\"".into()),
                    (None, None) => {}
                }
                let nonce_key = config.dpop.use_dpop_nonce.then(NonceKey::random).flatten();
                let proofs = ProofEnvironment {
                    nonce_key: nonce_key.as_ref(),
                    replay,
                };
                decide(
                    Input::new(self.view(&headers)),
                    Environment::new(config, keys, now).with_proofs(proofs),
                )
            }
        };
        Ok(decision)
    }

    fn view<'h>(&'h self, headers: &'h [(String, Vec<u8>)]) -> RequestView<'h> {
        RequestView::new(headers)
            .with_client_address(self.request.client_address.as_deref())
            .with_client_certificate(self.request.client_cert_thumbprint.as_deref())
    }

    /// Runs the case alone: the problems found (empty when it passes).
    pub fn run(&self, config: &Config, keys: &KeyRing, now: UnixSeconds) -> Vec<String> {
        self.run_with(config, keys, now, &MemoryReplayGuard::default())
    }

    /// Runs the case with the proof record of its file.
    pub fn run_with(
        &self,
        config: &Config,
        keys: &KeyRing,
        now: UnixSeconds,
        replay: &dyn ReplayGuard,
    ) -> Vec<String> {
        match self.decide(config, keys, now, replay) {
            Err(err) => vec![err],
            Ok(decision) => {
                let headers = self.request.headers();
                self.expect
                    .mismatches(&Observed::from_decision(&decision, &headers))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> Config {
        Config::from_json(include_bytes!("../filter-config/aethermarket.json")).unwrap()
    }

    fn case(value: Value) -> Case {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_passing_case_reports_nothing_and_a_failing_one_says_why() {
        let config = demo();
        let keys = config.initial_keys();
        let gold = case(json!({
            "name": "gold",
            "request": {"path": "/deals/exclusive"},
            "claims": {"sub": "auth0|1", "https://aethermarket.com/loyalty_tier": "Gold"},
            "expect": {"status": 200, "rule": "exclusive-deals", "headers": {"x-loyalty-tier": "Gold", "x-user-email": null}}
        }));
        assert_eq!(
            gold.run(&config, &keys, UnixSeconds(0)),
            Vec::<String>::new()
        );
        let wrong = case(json!({
            "name": "wrong",
            "request": {"path": "/deals/exclusive"},
            "claims": {"sub": "auth0|1", "https://aethermarket.com/loyalty_tier": "Silver"},
            "expect": {"status": 200, "rule": null}
        }));
        let problems = wrong.run(&config, &keys, UnixSeconds(0));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("status 200 expected, got 403"));
        assert!(problems[1].contains("rule (default) expected, got 'exclusive-deals'"));
    }

    #[test]
    fn claims_and_token_together_are_an_error() {
        let config = demo();
        let both = case(json!({
            "name": "both", "claims": {}, "token": "x", "expect": {"status": 401}
        }));
        assert_eq!(
            both.run(&config, &config.initial_keys(), UnixSeconds(0))
                .len(),
            1
        );
    }

    #[test]
    fn case_files_refuse_unknown_fields_with_their_path() {
        let err = CaseFile::from_value(
            json!({"cases": [{"name": "a", "expect": {"status": 200, "stauts": 1}}]}),
        )
        .unwrap_err();
        assert!(err.starts_with("cases[0].expect"), "{err}");
    }
}
