//! Compiles the `rules`, `tiers`, `default_access` and `mode` sections into a [`Policy`]:
//! every operator, operand, tier, regex and capture is checked at load, with the exact
//! field path in the error, and rules another rule makes pointless are reported as
//! warnings.
//!
//! [`raw`] is the rules as written, [`route`] compiles `match`, [`condition`] compiles
//! conditions, [`operand`] their operands and the operators' arguments, [`operator`] the
//! operators; this module compiles rules and tiers and reports shadowed rules. Imports run
//! one way: condition → operator → operand (checked by `import_graph_tests`).

mod condition;
mod operand;
mod operator;
mod raw;
mod route;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use super::{
    ClaimPath, Condition, DefaultAccess, Effect, Mode, Operand, Operator, PathMatch, Policy,
    RequestAttribute, RouteIndex, Rule, StepUp, Test, TierList,
};
use crate::fields::{ConfigError, ConfigWarning};
use crate::provider_id::ProviderId;
use condition::compile_condition;
use operand::Scope;
pub(crate) use raw::RawRule;
use raw::{RawAccess, RawEffect};
use route::compile_route;

const OPERANDS: [&str; 6] = ["claim", "header", "query", "capture", "request", "now"];

/// Compiles the policy sections; `providers` are the names of the configured providers,
/// in order (a rule's `providers` refer to them by name).
pub(crate) fn compile_policy(
    raw_rules: Vec<RawRule>,
    raw_tiers: BTreeMap<String, Vec<String>>,
    default_access: DefaultAccess,
    mode: Mode,
    providers: &[&str],
) -> Result<(Policy, Vec<ConfigWarning>), ConfigError> {
    let tiers = compile_tiers(raw_tiers)?;
    let mut claim_paths = Vec::new();
    let mut rules: Vec<Rule> = Vec::with_capacity(raw_rules.len());
    for (index, raw) in raw_rules.into_iter().enumerate() {
        let path = format!("rules[{index}]");
        let rule = compile_rule(raw, &path, mode, providers, &tiers, &mut claim_paths)?;
        if rules.iter().any(|known| known.name == rule.name) {
            return Err(ConfigError::new(
                format!("{path}.name"),
                format!("another rule is already named '{}'", rule.name),
            ));
        }
        rules.push(rule);
    }
    let mut warnings = shadowing_warnings(&rules);
    warnings.extend(strict_type_warnings(&rules));
    warnings.extend(anonymous_deny_warnings(&rules));
    let reads = |attribute: RequestAttribute| {
        rules.iter().any(|rule| {
            rule.condition.as_ref().is_some_and(|condition| {
                condition
                    .tests()
                    .iter()
                    .any(|test| reads_attribute(test, attribute))
            })
        })
    };
    let uses_client_address = reads(RequestAttribute::ClientAddress);
    let uses_scheme = reads(RequestAttribute::Scheme);
    let index = RouteIndex::new(rules.iter().map(|rule| &rule.route.path));
    Ok((
        Policy {
            rules,
            index,
            claim_paths,
            default_access,
            mode,
            tiers,
            uses_client_address,
            uses_scheme,
        },
        warnings,
    ))
}

fn reads_attribute(test: &Test, attribute: RequestAttribute) -> bool {
    let is_it = |operand: &Operand| matches!(operand, Operand::Request(read) if *read == attribute);
    is_it(&test.operand) || test.operator.argument().is_some_and(is_it)
}

fn compile_tiers(raw: BTreeMap<String, Vec<String>>) -> Result<Vec<Arc<TierList>>, ConfigError> {
    let mut tiers = Vec::with_capacity(raw.len());
    for (name, values) in raw {
        let path = format!("tiers.{name}");
        if values.is_empty() {
            return Err(ConfigError::new(
                path,
                "a tier list needs at least one value",
            ));
        }
        for (index, value) in values.iter().enumerate() {
            if values.iter().take(index).any(|earlier| earlier == value) {
                return Err(ConfigError::new(
                    format!("{path}[{index}]"),
                    format!("'{value}' is listed twice"),
                ));
            }
        }
        tiers.push(Arc::new(TierList { name, values }));
    }
    Ok(tiers)
}

fn compile_rule(
    raw: RawRule,
    path: &str,
    policy_mode: Mode,
    providers: &[&str],
    tiers: &[Arc<TierList>],
    claim_paths: &mut Vec<ClaimPath>,
) -> Result<Rule, ConfigError> {
    let name = raw.name.unwrap_or_else(|| path.to_owned());
    if name.is_empty() || name.chars().any(char::is_control) {
        return Err(ConfigError::new(
            format!("{path}.name"),
            "must be non-empty text without control characters",
        ));
    }
    let route = compile_route(raw.matcher, &format!("{path}.match"))?;
    let has_condition = raw.require.is_some() || raw.when.is_some();
    let (effect, needs_token) = rule_effect(raw.effect, raw.access, has_condition, path)?;
    let captures: Vec<String> = match &route.path {
        PathMatch::Template(template) => template.capture_names().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut scope = Scope {
        tiers,
        captures: &captures,
        claim_paths,
    };
    let condition = rule_condition(raw.require, raw.when.as_ref(), effect, path, &mut scope)?;
    let providers = rule_providers(raw.providers.unwrap_or_default(), providers, path)?;
    let step_up = match raw.step_up {
        None => None,
        Some(_) if effect == Effect::Deny || !needs_token => {
            return Err(ConfigError::new(
                format!("{path}.step_up"),
                "goes with allow rules that need a token",
            ))
        }
        Some(raw) => Some(StepUp::compile(raw, tiers).map_err(|(field, message)| {
            let field = match field {
                "" => format!("{path}.step_up"),
                field => format!("{path}.step_up.{field}"),
            };
            ConfigError::new(field, message)
        })?),
    };
    let route_and_token_only = condition.as_ref().is_none_or(|condition| {
        condition
            .tests()
            .iter()
            .all(|test| test.reads_only_route_or_token())
    }) && step_up
        .as_ref()
        .is_none_or(|step_up| step_up.max_age_seconds.is_none());
    Ok(Rule {
        name,
        route,
        effect,
        needs_token,
        condition,
        providers,
        mode: raw.mode.unwrap_or(policy_mode),
        step_up,
        route_and_token_only,
    })
}

/// The rule's effect and whether it needs a token, from `effect` and `access`.
fn rule_effect(
    effect: Option<RawEffect>,
    access: Option<RawAccess>,
    has_condition: bool,
    path: &str,
) -> Result<(Effect, bool), ConfigError> {
    Ok(match (effect, access) {
        (None | Some(RawEffect::Allow), None) => {
            if !has_condition {
                return Err(ConfigError::new(
                    path,
                    "give \"access\" (public, authenticated or deny), \"require\", \"when\" or \"effect\": \"deny\"",
                ));
            }
            (Effect::Allow, true)
        }
        (None | Some(RawEffect::Allow), Some(RawAccess::Public)) => (Effect::Allow, false),
        (None | Some(RawEffect::Allow), Some(RawAccess::Authenticated)) => (Effect::Allow, true),
        (None, Some(RawAccess::Deny)) => (Effect::Deny, false),
        (Some(RawEffect::Deny), None) => (Effect::Deny, false),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                format!("{path}.access"),
                "\"access\" goes with allow rules only; a deny rule takes \"when\"",
            ))
        }
    })
}

/// `require` (allow rules only) and `when`, combined with "and".
fn rule_condition(
    require: Option<Vec<Value>>,
    when: Option<&Value>,
    effect: Effect,
    path: &str,
    scope: &mut Scope<'_>,
) -> Result<Option<Condition>, ConfigError> {
    let mut parts = Vec::new();
    if let Some(require) = require {
        if effect == Effect::Deny {
            return Err(ConfigError::new(
                format!("{path}.require"),
                "\"require\" goes with allow rules; a deny rule takes \"when\"",
            ));
        }
        if require.is_empty() {
            return Err(ConfigError::new(
                format!("{path}.require"),
                "list at least one condition, or use \"access\": \"authenticated\"",
            ));
        }
        for (index, condition) in require.iter().enumerate() {
            parts.push(compile_condition(
                condition,
                &format!("{path}.require[{index}]"),
                scope,
            )?);
        }
    }
    if let Some(when) = when {
        parts.push(compile_condition(when, &format!("{path}.when"), scope)?);
    }
    Ok(match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Condition::All(parts)),
    })
}

/// The providers a rule names, as positions in the configuration's provider list.
fn rule_providers(
    names: Vec<String>,
    providers: &[&str],
    path: &str,
) -> Result<Vec<ProviderId>, ConfigError> {
    let mut positions = Vec::with_capacity(names.len());
    for (index, provider_name) in names.iter().enumerate() {
        let position = providers
            .iter()
            .position(|name| name == provider_name)
            .ok_or_else(|| {
                ConfigError::new(
                    format!("{path}.providers[{index}]"),
                    format!("no provider named '{provider_name}'"),
                )
            })?;
        positions.push(ProviderId::from_index(position));
    }
    Ok(positions)
}

/// Rules another rule makes pointless: reported by `claimgate check`, not refused.
/// Deny rules that compare a claim with a boolean or number: JSON comparison is by type,
/// so a token carrying `"true"` or `1` where the rule says `true` is not denied. Legal,
/// and right when the identity provider's type is known — but worth a word, since a deny
/// rule that silently does not fire fails open.
fn strict_type_warnings(rules: &[Rule]) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let Some(condition) = rule
            .condition
            .as_ref()
            .filter(|_| rule.effect == Effect::Deny)
        else {
            continue;
        };
        for test in condition.tests() {
            let (Operand::Claim { path, .. }, Operator::Equals(Operand::Constant(value))) =
                (&test.operand, &test.operator)
            else {
                continue;
            };
            let others = match value {
                Value::Bool(flag) => vec![format!("\"{flag}\""), u8::from(*flag).to_string()],
                Value::Number(number) => vec![format!("\"{number}\"")],
                _ => continue,
            };
            let (other_spellings, list) = (others.join(" or "), others.join(", "));
            warnings.push(ConfigWarning {
                deployment: false,
                path: format!("rules[{index}].when"),
                message: format!(
                    "deny rule '{}': claim {path} equals {value} matches only that JSON type; a token with {other_spellings} is not denied — if the identity provider may send those, use \"in\": [{value}, {list}]",
                    rule.name
                ),
            });
        }
    }
    warnings
}

/// Deny rules without `providers` whose condition reads claims and can hold for a request
/// without a token (a claim tested with `absent`, or under `not`): such a request gets 403
/// from the rule instead of the 401 and challenge that tell the client to sign in. With
/// `providers`, a deny rule concerns only those providers' tokens.
fn anonymous_deny_warnings(rules: &[Rule]) -> Vec<ConfigWarning> {
    let reads_claims = |test: &Test| {
        matches!(test.operand, Operand::Claim { .. })
            || matches!(test.operator.argument(), Some(Operand::Claim { .. }))
    };
    rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| rule.effect == Effect::Deny && rule.providers.is_empty())
        .filter_map(|(index, rule)| {
            let condition = rule.condition.as_ref()?;
            let reads = condition.tests().into_iter().any(reads_claims);
            (reads && holds_without_claims(condition) != Some(false)).then(|| ConfigWarning {
                deployment: false,
                path: format!("rules[{index}]"),
                message: format!(
                    "deny rule '{}' names no providers and its condition can hold without a \
                     token (its claims are then absent): a request without a token gets 403 \
                     from it instead of 401 with a challenge to sign in; give it \
                     \"providers\" so it concerns only tokens",
                    rule.name
                ),
            })
        })
        .collect()
}

/// What `condition` is for a request without a token: `Some` when its claims decide it,
/// `None` when the request's other parts (headers, path) do.
fn holds_without_claims(condition: &Condition) -> Option<bool> {
    match condition {
        Condition::Test(test) => {
            let claim_operand = matches!(test.operand, Operand::Claim { .. });
            let claim_argument = matches!(test.operator.argument(), Some(Operand::Claim { .. }));
            match (&test.operator, claim_operand, claim_argument) {
                // A missing value fails every operator but `absent`.
                (Operator::Absent, true, _) => Some(true),
                (_, true, _) | (_, _, true) => Some(false),
                _ => None,
            }
        }
        Condition::Not(inner) => holds_without_claims(inner).map(|holds| !holds),
        Condition::All(parts) => {
            let values: Vec<Option<bool>> = parts.iter().map(holds_without_claims).collect();
            if values.contains(&Some(false)) {
                Some(false)
            } else if values.iter().all(|value| *value == Some(true)) {
                Some(true)
            } else {
                None
            }
        }
        Condition::Any(parts) => {
            let values: Vec<Option<bool>> = parts.iter().map(holds_without_claims).collect();
            if values.contains(&Some(true)) {
                Some(true)
            } else if values.iter().all(|value| *value == Some(false)) {
                Some(false)
            } else {
                None
            }
        }
    }
}

fn shadowing_warnings(rules: &[Rule]) -> Vec<ConfigWarning> {
    let mut warnings = Vec::new();
    for (index, rule) in rules.iter().enumerate() {
        let shadow = rules.iter().enumerate().find_map(|(other_index, other)| {
            if other_index == index || !other.is_unconditional() || !other.route.covers(&rule.route) {
                return None;
            }
            // Two rules covering each other: report only the later one.
            if other_index > index && rule.route.covers(&other.route) && rule.is_unconditional() {
                return None;
            }
            let why = match (other.effect, rule.effect) {
                (Effect::Deny, Effect::Allow) => "never allows anything: rule '{}' denies every request it matches",
                (Effect::Deny, Effect::Deny) => "is redundant: rule '{}' already denies every request it matches",
                (Effect::Allow, Effect::Allow) if !other.needs_token => {
                    "never changes a decision: rule '{}' allows every request it matches, even without a token"
                }
                (Effect::Allow, Effect::Allow) if rule.needs_token => {
                    "never changes a decision: rule '{}' allows every request it matches that has a valid token"
                }
                _ => return None,
            };
            Some(why.replace("{}", &other.name))
        });
        if let Some(message) = shadow {
            warnings.push(ConfigWarning {
                deployment: false,
                path: format!("rules[{index}]"),
                message: format!("rule '{}' ({}) {message}", rule.name, rule.route),
            });
        }
    }
    warnings
}
