//! The policy: named rules that match requests and allow or deny them on conditions over
//! claims and request attributes. Deny overrides allow; a default applies when nothing
//! matched; dry-run rules are evaluated and reported but never change the outcome.

mod compile;
mod condition;
mod route;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

pub(crate) use compile::{compile_policy, RawRule};
pub use condition::{
    json_equal, rfc3339_seconds, Cidr, Comparison, Condition, Facts, Operand, Operator,
    RequestAttribute, RequestFacts, Test,
};
pub use route::{request_host, HostPattern, PathMatch, PathTemplate, RouteIndex, RouteMatch};

/// Verified token claims (the JSON payload object).
pub type Claims = Map<String, Value>;

/// A claim name or a nested path. Names are exact strings, so URL-namespaced claims
/// (`https://aethermarket.com/loyalty_tier`) need no escaping; nested objects are a list
/// of segments; a segment that is a number indexes into an array, and `*` takes every
/// element of an array (the result is the list of what the rest of the path finds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath {
    segments: Vec<String>,
}

impl ClaimPath {
    /// A path of one or more segments; empty paths are refused by the config compiler.
    pub fn new(segments: Vec<String>) -> ClaimPath {
        ClaimPath { segments }
    }

    pub fn single(name: &str) -> ClaimPath {
        ClaimPath {
            segments: vec![name.to_owned()],
        }
    }

    /// Looks the claim up; `None` when any segment is missing.
    pub fn resolve<'c>(&self, claims: &'c Claims) -> Option<Cow<'c, Value>> {
        let (first, rest) = self.segments.split_first()?;
        resolve_in(claims.get(first)?, rest)
    }
}

fn resolve_in<'c>(value: &'c Value, segments: &[String]) -> Option<Cow<'c, Value>> {
    let Some((segment, rest)) = segments.split_first() else {
        return Some(Cow::Borrowed(value));
    };
    match value {
        Value::Array(items) if segment == "*" => {
            let mut found = Vec::new();
            for item in items {
                match resolve_in(item, rest) {
                    Some(Cow::Owned(Value::Array(inner))) if !rest.is_empty() => {
                        found.extend(inner)
                    }
                    Some(value) => found.push(value.into_owned()),
                    None => {}
                }
            }
            Some(Cow::Owned(Value::Array(found)))
        }
        Value::Object(object) => resolve_in(object.get(segment)?, rest),
        Value::Array(items) => resolve_in(items.get(segment.parse::<usize>().ok()?)?, rest),
        _ => None,
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.segments.as_slice() {
            [single] => f.write_str(single),
            segments => write!(f, "{}", Value::from(segments.to_vec())),
        }
    }
}

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

/// What a rule does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// Whether a rule (or the whole policy) decides, or only reports what it would decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    DryRun,
}

/// A named rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub route: RouteMatch,
    pub effect: Effect,
    /// Allow rules: whether a verified token is needed (`false` for public rules).
    pub needs_token: bool,
    /// `None`: the rule applies to every request its route matches.
    pub condition: Option<Condition>,
    /// Indices of the providers whose tokens the rule concerns; empty means any.
    pub providers: Vec<usize>,
    /// The rule's own mode, or the policy's when the rule gives none.
    pub mode: Mode,
}

impl Rule {
    pub fn accepts_provider(&self, provider: usize) -> bool {
        self.providers.is_empty() || self.providers.contains(&provider)
    }

    /// Unconditional: decides every request its route matches the same way.
    fn is_unconditional(&self) -> bool {
        self.condition.is_none() && self.providers.is_empty() && self.mode == Mode::Enforce
    }

    fn outcome(
        &self,
        facts: &Facts<'_>,
        provider: Option<usize>,
        captures: &[&str],
    ) -> RuleOutcome {
        let holds = |condition: &Option<Condition>| {
            condition
                .as_ref()
                .is_none_or(|condition| condition.holds(facts, captures))
        };
        match self.effect {
            Effect::Deny => {
                let concerned = self.providers.is_empty()
                    || provider.is_some_and(|provider| self.accepts_provider(provider));
                if concerned && holds(&self.condition) {
                    RuleOutcome::Denies
                } else {
                    RuleOutcome::DoesNotApply
                }
            }
            Effect::Allow => match provider {
                None if self.needs_token => RuleOutcome::NeedsToken,
                Some(provider) if self.needs_token && !self.accepts_provider(provider) => {
                    RuleOutcome::WrongProvider
                }
                _ if holds(&self.condition) => RuleOutcome::Allows,
                _ => RuleOutcome::ConditionFails,
            },
        }
    }
}

/// What one matching rule says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    Allows,
    /// A deny rule whose condition holds.
    Denies,
    /// A deny rule whose condition does not hold.
    DoesNotApply,
    NeedsToken,
    WrongProvider,
    ConditionFails,
}

/// The kind of a policy verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    Allow,
    /// 401: a token is required.
    NeedsToken,
    /// 401: the token's provider is not accepted here.
    WrongProvider,
    /// 403.
    Forbidden,
}

impl VerdictKind {
    pub fn status(self) -> u16 {
        match self {
            VerdictKind::Allow => 200,
            VerdictKind::NeedsToken | VerdictKind::WrongProvider => 401,
            VerdictKind::Forbidden => 403,
        }
    }
}

/// What the policy decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kind: VerdictKind,
    /// The deciding rule; `None` when the default decided.
    pub rule: Option<String>,
    pub reason: String,
    /// For a refusal by a rule whose condition failed: the part that failed.
    pub failed_condition: Option<String>,
}

/// What the policy would have decided had its dry-run rules been enforced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DryRun {
    /// The dry-run rules that matched the request.
    pub rules: Vec<String>,
    pub verdict: Verdict,
}

/// A policy decision: the verdict that counts, and the dry-run report if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub dry_run: Option<DryRun>,
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
}

/// The token as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub struct TokenFacts<'a> {
    pub provider: usize,
    pub claims: &'a Claims,
}

impl Policy {
    /// Decides `request` given the verified token, if any.
    pub fn evaluate(&self, request: RequestFacts<'_>, token: Option<TokenFacts<'_>>) -> Evaluation {
        let facts = Facts::new(request, token.map(|token| token.claims), &self.claim_paths);
        let provider = token.map(|token| token.provider);
        let mut candidates = Vec::new();
        self.index.candidates(request.path, &mut candidates);
        let mut matched: Vec<Matched<'_, '_>> = Vec::new();
        for rule in candidates.iter().filter_map(|index| self.rules.get(*index)) {
            if let Some(captures) = rule
                .route
                .captures(request.method, request.host, request.path)
            {
                let outcome = rule.outcome(&facts, provider, &captures);
                matched.push(Matched {
                    rule,
                    captures,
                    outcome,
                });
            }
        }
        let has_dry_run =
            self.mode == Mode::DryRun || matched.iter().any(|m| m.rule.mode == Mode::DryRun);
        let enforced_default = match self.mode {
            Mode::Enforce => Some(self.default_access),
            Mode::DryRun => None,
        };
        let verdict = combine(
            matched.iter().filter(|m| m.rule.mode == Mode::Enforce),
            enforced_default,
            provider.is_some(),
            &facts,
        );
        let dry_run = has_dry_run.then(|| DryRun {
            rules: matched
                .iter()
                .filter(|m| m.rule.mode == Mode::DryRun)
                .map(|m| m.rule.name.clone())
                .collect(),
            verdict: combine(
                matched.iter(),
                Some(self.default_access),
                provider.is_some(),
                &facts,
            ),
        });
        Evaluation { verdict, dry_run }
    }
}

/// A rule whose route matched, with its captures and what it says.
struct Matched<'r, 'p> {
    rule: &'r Rule,
    captures: Vec<&'p str>,
    outcome: RuleOutcome,
}

/// Deny overrides allow; then the first allowing rule; then the most telling refusal of a
/// matching allow rule; then the default (`None`: nothing enforced, allow).
fn combine<'m, 'r: 'm, 'p: 'm>(
    matched: impl Iterator<Item = &'m Matched<'r, 'p>> + Clone,
    default: Option<DefaultAccess>,
    has_token: bool,
    facts: &Facts<'_>,
) -> Verdict {
    let first = |outcome: RuleOutcome| matched.clone().find(|m| m.outcome == outcome);
    let verdict = |kind: VerdictKind, rule: &Rule, reason: String| Verdict {
        kind,
        rule: Some(rule.name.clone()),
        reason,
        failed_condition: None,
    };
    if let Some(m) = first(RuleOutcome::Denies) {
        let reason = match &m.rule.condition {
            Some(condition) => format!("rule '{}' denies this request: {condition}", m.rule.name),
            None => format!("rule '{}' denies this request", m.rule.name),
        };
        return verdict(VerdictKind::Forbidden, m.rule, reason);
    }
    if let Some(m) = first(RuleOutcome::Allows) {
        let reason = if has_token || !m.rule.needs_token {
            format!("allowed by rule '{}'", m.rule.name)
        } else {
            format!("rule '{}' is public", m.rule.name)
        };
        return verdict(VerdictKind::Allow, m.rule, reason);
    }
    if let Some(m) = first(RuleOutcome::NeedsToken) {
        return verdict(
            VerdictKind::NeedsToken,
            m.rule,
            format!("rule '{}' requires a token", m.rule.name),
        );
    }
    if let Some(m) = first(RuleOutcome::WrongProvider) {
        return verdict(
            VerdictKind::WrongProvider,
            m.rule,
            format!(
                "rule '{}' does not accept tokens from this provider",
                m.rule.name
            ),
        );
    }
    if let Some(m) = first(RuleOutcome::ConditionFails) {
        let failed = m
            .rule
            .condition
            .as_ref()
            .map(|condition| condition.explain_failure(facts, &m.captures))
            .unwrap_or_default();
        return Verdict {
            kind: VerdictKind::Forbidden,
            rule: Some(m.rule.name.clone()),
            reason: format!("rule '{}' needs: {failed}", m.rule.name),
            failed_condition: Some(failed),
        };
    }
    let (kind, reason) = match default {
        None => (VerdictKind::Allow, "no enforced rule decides (dry run)"),
        Some(DefaultAccess::Deny) => (VerdictKind::Forbidden, "no rule matches this request"),
        Some(DefaultAccess::Authenticated) if !has_token => (
            VerdictKind::NeedsToken,
            "no rule matches and the default access requires a token",
        ),
        Some(DefaultAccess::Authenticated | DefaultAccess::Public) => {
            (VerdictKind::Allow, "allowed by the default access")
        }
    };
    Verdict {
        kind,
        rule: None,
        reason: reason.to_owned(),
        failed_condition: None,
    }
}

#[cfg(test)]
mod tests;
