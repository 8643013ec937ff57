//! The policy's verdict: the rules a request matched, combined into one. Deny overrides
//! allow, then the first allowing rule, then the most telling refusal, then the default;
//! dry-run rules are combined a second time for the report only.

use super::{
    DefaultAccess, Facts, Mode, Policy, RequestFacts, Rule, RuleOutcome, StepUpChallenge,
    TokenFacts,
};

/// The kind of a policy verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerdictKind {
    Allow,
    /// 401: a token is required.
    NeedsToken,
    /// 401: the token's provider is not accepted here.
    WrongProvider,
    /// 401 `insufficient_user_authentication` (RFC 9470): the user must sign in again,
    /// more strongly or more recently.
    InsufficientAuthentication,
    /// 403.
    Forbidden,
}

impl VerdictKind {
    pub fn status(self) -> u16 {
        match self {
            VerdictKind::Allow => 200,
            VerdictKind::NeedsToken
            | VerdictKind::WrongProvider
            | VerdictKind::InsufficientAuthentication => 401,
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
    /// For [`VerdictKind::InsufficientAuthentication`]: what would satisfy the rule.
    pub step_up: Option<StepUpChallenge>,
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
    /// Every rule that matched reads only the route and the token
    /// ([`Rule::route_and_token_only`]): the same token on the same route gets the same
    /// evaluation.
    pub route_and_token_only: bool,
}

impl Policy {
    /// Decides `request` given the verified token, if any.
    pub fn evaluate(&self, request: RequestFacts<'_>, token: Option<TokenFacts<'_>>) -> Evaluation {
        let facts = Facts::new(request, token, &self.claim_paths);
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
        let route_and_token_only = matched.iter().all(|m| m.rule.route_and_token_only);
        Evaluation {
            verdict,
            dry_run,
            route_and_token_only,
        }
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
        step_up: None,
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
    if let Some(verdict) = failed_condition(matched, facts) {
        return verdict;
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
        step_up: None,
    }
}

/// The refusal of an allow rule whose token passed but whose requirements did not: a
/// step-up first (a new sign-in would make that rule allow), then a failed condition.
fn failed_condition<'m, 'r: 'm, 'p: 'm>(
    matched: impl Iterator<Item = &'m Matched<'r, 'p>> + Clone,
    facts: &Facts<'_>,
) -> Option<Verdict> {
    if let Some((m, step_up)) = matched.clone().find_map(|m| {
        (m.outcome == RuleOutcome::NeedsStepUp)
            .then_some(m)
            .zip(m.rule.step_up.as_ref())
    }) {
        let failed = step_up.first_failure(facts).unwrap_or_default();
        return Some(Verdict {
            kind: VerdictKind::InsufficientAuthentication,
            rule: Some(m.rule.name.clone()),
            reason: format!("rule '{}' needs a step-up: {failed}", m.rule.name),
            failed_condition: Some(failed),
            step_up: Some(step_up.challenge()),
        });
    }
    if let Some(m) = matched
        .clone()
        .find(|m| m.outcome == RuleOutcome::ConditionFails)
    {
        let failed = m
            .rule
            .condition
            .as_ref()
            .map(|condition| condition.explain_failure(facts, &m.captures))
            .unwrap_or_default();
        return Some(Verdict {
            kind: VerdictKind::Forbidden,
            rule: Some(m.rule.name.clone()),
            reason: format!("rule '{}' needs: {failed}", m.rule.name),
            failed_condition: Some(failed),
            step_up: None,
        });
    }
    None
}
