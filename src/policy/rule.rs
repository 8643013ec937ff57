//! A compiled rule and what it says about one request, before rules are combined.

use super::{Condition, Facts, Mode, RouteMatch, StepUp};
use crate::provider_id::ProviderId;

/// What a rule does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
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
    pub providers: Vec<ProviderId>,
    /// The rule's own mode, or the policy's when the rule gives none.
    pub mode: Mode,
    /// What an allow rule demands of the authentication behind the token (RFC 9470).
    pub step_up: Option<StepUp>,
    /// What the rule says of a request depends on nothing but the route (method, host,
    /// canonical path, and so the captures) and the token: no condition reads a header,
    /// a query parameter, the scheme, the client address or the clock, and no step-up
    /// has a `max_age` (which reads the clock). Evaluations where every matching rule is
    /// so may be remembered for the token ([`super::RouteVerdict`]).
    pub route_and_token_only: bool,
}

impl Rule {
    pub fn accepts_provider(&self, provider: ProviderId) -> bool {
        self.providers.is_empty() || self.providers.contains(&provider)
    }

    /// Unconditional: decides every request its route matches the same way.
    pub(super) fn is_unconditional(&self) -> bool {
        self.condition.is_none()
            && self.providers.is_empty()
            && self.mode == Mode::Enforce
            && self.step_up.is_none()
    }

    pub(super) fn outcome(
        &self,
        facts: &Facts<'_>,
        provider: Option<ProviderId>,
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
                _ if !holds(&self.condition) => RuleOutcome::ConditionFails,
                // Who the user is passes; how they signed in may not: a step-up can fix
                // that, so it is asked for only once the rest of the rule holds.
                _ if self
                    .step_up
                    .as_ref()
                    .is_some_and(|step_up| !step_up.holds(facts)) =>
                {
                    RuleOutcome::NeedsStepUp
                }
                _ => RuleOutcome::Allows,
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
    /// The token's `acr` or `auth_time` falls short of the rule's `step_up`.
    NeedsStepUp,
    ConditionFails,
}
