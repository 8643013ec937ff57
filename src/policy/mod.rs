//! The policy: named rules that match requests and allow or deny them on conditions over
//! claims and request attributes. Deny overrides allow; a default applies when nothing
//! matched; dry-run rules are evaluated and reported but never change the outcome.
//!
//! `condition` is the condition language (what a compiled condition is), `eval` how
//! it is evaluated against one request, `cidr` and `datetime` the two value parsers it
//! needs, `route` how rules match paths, methods and hosts, `rule` what a rule is and
//! says, `step_up` what a rule demands of the authentication itself (RFC 9470),
//! `verdict` how the matching rules combine into a verdict, `remembered` when a verdict
//! may be reused for the same token on the same route, and `compile` how the
//! configuration becomes all of that.

mod cidr;
mod compile;
mod condition;
mod datetime;
mod facts;
mod remembered;
mod route;
mod rule;
mod step_up;
mod verdict;

use std::sync::Arc;

use serde::Deserialize;

pub use crate::claims::{ClaimPath, Claims};
use crate::provider_id::ProviderId;
pub use cidr::Cidr;
pub(crate) use compile::{compile_policy, RawRule};
pub use condition::{
    ArgumentKind, Comparison, Condition, Operand, Operator, OperatorKind, OperatorSpec,
    RequestAttribute, Test, OPERATORS, OPERATOR_NAMES,
};
pub use datetime::rfc3339_seconds;
pub use facts::{Facts, RequestFacts};
pub use remembered::RouteVerdict;
pub use route::{request_host, HostPattern, PathMatch, PathTemplate, RouteIndex, RouteMatch};
pub use rule::{Effect, Rule, RuleOutcome};
pub(crate) use step_up::RawStepUp;
pub use step_up::{AcrRequirement, StepUp, StepUpChallenge};
pub use verdict::{DryRun, Evaluation, Verdict, VerdictKind};

/// A named, ordered list of values, lowest first (e.g. loyalty tiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierList {
    pub name: String,
    pub values: Vec<String>,
}

impl TierList {
    pub fn rank(&self, value: &str) -> Option<usize> {
        self.values.iter().position(|tier| tier == value)
    }
}

/// What applies when no enforced rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAccess {
    Deny,
    Authenticated,
    Public,
}

/// Whether a rule (or the whole policy) decides, or only reports what it would decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    DryRun,
}

/// The compiled policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub index: RouteIndex,
    /// Every distinct claim path conditions read; conditions refer to them by slot.
    pub claim_paths: Vec<ClaimPath>,
    pub default_access: DefaultAccess,
    pub mode: Mode,
    pub tiers: Vec<Arc<TierList>>,
    /// Whether any condition reads the client address (the adapter fetches it only then).
    pub uses_client_address: bool,
    /// Whether any condition reads the request's scheme (the adapter then asks Envoy
    /// whether the connection is TLS).
    pub uses_scheme: bool,
}

/// The token as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub provider: ProviderId,
    pub claims: &'a Claims,
    /// The provider's clock skew: how far in the future a time claim may lie.
    pub clock_skew_seconds: i64,
}

#[cfg(test)]
mod tests;
