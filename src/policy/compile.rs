//! Compiles the `rules`, `tiers`, `default_access` and `mode` sections into a [`Policy`]:
//! every operator, operand, tier, regex and capture is checked at load, with the exact
//! field path in the error, and rules another rule makes pointless are reported as
//! warnings.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::condition::{Cidr, Comparison, Condition, Operand, Operator, RequestAttribute, Test};
use super::route::{HostPattern, PathMatch, PathTemplate, RouteIndex, RouteMatch};
use super::{ClaimPath, DefaultAccess, Effect, Mode, Policy, Rule, TierList};
use crate::config::{claim_path, header_name, ConfigError, ConfigWarning};
use crate::token::Provider;

/// A rule as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    effect: Option<RawEffect>,
    #[serde(default)]
    access: Option<RawAccess>,
    #[serde(default)]
    require: Option<Vec<Value>>,
    #[serde(default)]
    when: Option<Value>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    providers: Option<Vec<String>>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawEffect {
    Allow,
    Deny,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RawAccess {
    Public,
    Authenticated,
    Deny,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    hosts: Option<Vec<String>>,
}

const OPERANDS: [&str; 6] = ["claim", "header", "query", "capture", "request", "now"];
const OPERATORS: [&str; 20] = [
    "equals",
    "not_equals",
    "in",
    "one_of",
    "not_in",
    "contains",
    "contains_any",
    "contains_all",
    "prefix",
    "suffix",
    "regex",
    "less_than",
    "less_or_equal",
    "greater_than",
    "greater_or_equal",
    "at_least",
    "at_most",
    "in_cidr",
    "present",
    "absent",
];

/// Compiles the policy sections; `providers` are the compiled providers rules refer to.
pub(crate) fn compile_policy(
    raw_rules: Vec<RawRule>,
    raw_tiers: BTreeMap<String, Vec<String>>,
    default_access: DefaultAccess,
    mode: Mode,
    providers: &[Provider],
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
    let warnings = shadowing_warnings(&rules);
    let uses_client_address = rules.iter().any(|rule| {
        rule.condition.as_ref().is_some_and(|condition| {
            condition
                .tests()
                .iter()
                .any(|test| reads_client_address(test))
        })
    });
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
        },
        warnings,
    ))
}

fn reads_client_address(test: &Test) -> bool {
    let is_address =
        |operand: &Operand| matches!(operand, Operand::Request(RequestAttribute::ClientAddress));
    let right = match &test.operator {
        Operator::Equals(right)
        | Operator::NotEquals(right)
        | Operator::In(right)
        | Operator::NotIn(right)
        | Operator::Contains(right)
        | Operator::ContainsAny(right)
        | Operator::ContainsAll(right)
        | Operator::Prefix(right)
        | Operator::Suffix(right)
        | Operator::Compare(_, right) => Some(right),
        _ => None,
    };
    is_address(&test.operand) || right.is_some_and(is_address)
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

fn compile_route(matcher: RawMatch, path: &str) -> Result<RouteMatch, ConfigError> {
    let path_match = match (
        matcher.path,
        matcher.prefix,
        matcher.template,
        matcher.regex,
    ) {
        (None, None, None, None) => PathMatch::Any,
        (Some(exact), None, None, None) => {
            require_absolute(&exact, &format!("{path}.path"))?;
            PathMatch::Exact(exact)
        }
        (None, Some(prefix), None, None) => {
            require_absolute(&prefix, &format!("{path}.prefix"))?;
            let trimmed = prefix.trim_end_matches('/');
            PathMatch::Prefix(if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            })
        }
        (None, None, Some(template), None) => PathMatch::Template(
            PathTemplate::parse(&template)
                .map_err(|err| ConfigError::new(format!("{path}.template"), err))?,
        ),
        (None, None, None, Some(regex)) => {
            PathMatch::Regex(anchored_regex(&regex, &format!("{path}.regex"))?)
        }
        _ => {
            return Err(ConfigError::new(
                path,
                "give at most one of \"path\", \"prefix\", \"template\" or \"regex\"",
            ))
        }
    };
    let mut methods = Vec::new();
    for (index, method) in matcher.methods.unwrap_or_default().iter().enumerate() {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ConfigError::new(
                format!("{path}.methods[{index}]"),
                format!("'{method}' is not an HTTP method"),
            ));
        }
        methods.push(method.to_ascii_uppercase());
    }
    let mut hosts = Vec::new();
    for (index, host) in matcher.hosts.unwrap_or_default().iter().enumerate() {
        hosts.push(
            HostPattern::parse(host)
                .map_err(|err| ConfigError::new(format!("{path}.hosts[{index}]"), err))?,
        );
    }
    Ok(RouteMatch {
        path: path_match,
        methods,
        hosts,
    })
}

fn require_absolute(path: &str, field: &str) -> Result<(), ConfigError> {
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(ConfigError::new(field, "must start with '/'"))
    }
}

/// Compiles a regex that must match the whole value (linear-time engine).
fn anchored_regex(pattern: &str, path: &str) -> Result<regex_lite::Regex, ConfigError> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|err| ConfigError::new(path, format!("invalid regex: {err}")))
}

fn compile_rule(
    raw: RawRule,
    path: &str,
    policy_mode: Mode,
    providers: &[Provider],
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
    let (effect, needs_token) = match (raw.effect, raw.access) {
        (None | Some(RawEffect::Allow), None) => {
            if raw.require.is_none() && raw.when.is_none() {
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
    };
    let captures: Vec<String> = match &route.path {
        PathMatch::Template(template) => template.capture_names().map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    let mut scope = Scope {
        tiers,
        captures: &captures,
        claim_paths,
    };
    let mut parts = Vec::new();
    if let Some(require) = raw.require {
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
                &mut scope,
            )?);
        }
    }
    if let Some(when) = &raw.when {
        parts.push(compile_condition(
            when,
            &format!("{path}.when"),
            &mut scope,
        )?);
    }
    let condition = match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Condition::All(parts)),
    };
    let mut rule_providers = Vec::new();
    for (index, provider_name) in raw.providers.unwrap_or_default().iter().enumerate() {
        let position = providers
            .iter()
            .position(|provider| provider.name == *provider_name)
            .ok_or_else(|| {
                ConfigError::new(
                    format!("{path}.providers[{index}]"),
                    format!("no provider named '{provider_name}'"),
                )
            })?;
        rule_providers.push(position);
    }
    Ok(Rule {
        name,
        route,
        effect,
        needs_token,
        condition,
        providers: rule_providers,
        mode: raw.mode.unwrap_or(policy_mode),
    })
}

/// What a condition may refer to while it compiles.
struct Scope<'a> {
    tiers: &'a [Arc<TierList>],
    /// The named captures of the rule's path template.
    captures: &'a [String],
    claim_paths: &'a mut Vec<ClaimPath>,
}

impl Scope<'_> {
    /// The slot of `path` in the claim table, adding it when new.
    fn claim_slot(&mut self, path: ClaimPath) -> Operand {
        let slot = match self.claim_paths.iter().position(|known| *known == path) {
            Some(slot) => slot,
            None => {
                self.claim_paths.push(path.clone());
                self.claim_paths.len() - 1
            }
        };
        Operand::Claim { slot, path }
    }
}

fn compile_condition(
    value: &Value,
    path: &str,
    scope: &mut Scope<'_>,
) -> Result<Condition, ConfigError> {
    let Value::Object(object) = value else {
        return Err(ConfigError::new(
            path,
            "a condition is an object such as {\"claim\": \"scope\", \"contains\": \"orders:write\"}, or {\"all\"|\"any\": [...]} or {\"not\": {...}}",
        ));
    };
    for combinator in ["all", "any", "not"] {
        let Some(inner) = object.get(combinator) else {
            continue;
        };
        if object.len() != 1 {
            return Err(ConfigError::new(
                path,
                format!("\"{combinator}\" must be the only key of its condition"),
            ));
        }
        let inner_path = format!("{path}.{combinator}");
        if combinator == "not" {
            return Ok(Condition::Not(Box::new(compile_condition(
                inner,
                &inner_path,
                scope,
            )?)));
        }
        let Value::Array(items) = inner else {
            return Err(ConfigError::new(inner_path, "must be a list of conditions"));
        };
        if items.is_empty() {
            return Err(ConfigError::new(inner_path, "list at least one condition"));
        }
        let mut parts = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            parts.push(compile_condition(
                item,
                &format!("{inner_path}[{index}]"),
                scope,
            )?);
        }
        return Ok(if combinator == "all" {
            Condition::All(parts)
        } else {
            Condition::Any(parts)
        });
    }
    for key in object.keys() {
        if !OPERANDS.contains(&key.as_str()) && !OPERATORS.contains(&key.as_str()) && key != "tiers"
        {
            return Err(ConfigError::new(
                format!("{path}.{key}"),
                format!(
                    "unknown key '{key}': a condition has one operand ({}) and one operator ({})",
                    OPERANDS.join(", "),
                    OPERATORS.join(", ")
                ),
            ));
        }
    }
    let operand_keys: Vec<&str> = OPERANDS
        .iter()
        .copied()
        .filter(|key| object.contains_key(*key))
        .collect();
    let operator_keys: Vec<&str> = OPERATORS
        .iter()
        .copied()
        .filter(|key| object.contains_key(*key))
        .collect();
    let (&[operand_key], &[operator_key]) = (operand_keys.as_slice(), operator_keys.as_slice())
    else {
        let (what, list, found) = if operand_keys.len() != 1 {
            ("operand", OPERANDS.as_slice(), &operand_keys)
        } else {
            ("operator", OPERATORS.as_slice(), &operator_keys)
        };
        return Err(ConfigError::new(
            path,
            format!(
                "give exactly one {what} ({}); found {}",
                list.join(", "),
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(", ")
                }
            ),
        ));
    };
    let operand_value = object.get(operand_key).unwrap_or(&Value::Null);
    let operand = compile_operand(
        operand_key,
        operand_value,
        &format!("{path}.{operand_key}"),
        scope,
    )?;
    let argument = object.get(operator_key).unwrap_or(&Value::Null);
    let argument_path = format!("{path}.{operator_key}");
    if object.contains_key("tiers") && !matches!(operator_key, "at_least" | "at_most") {
        return Err(ConfigError::new(
            format!("{path}.tiers"),
            "only goes with \"at_least\" or \"at_most\"",
        ));
    }
    let operator = compile_operator(
        operator_key,
        argument,
        &argument_path,
        object,
        path,
        &operand,
        scope,
    )?;
    Ok(Condition::Test(Test { operand, operator }))
}

fn compile_operand(
    key: &str,
    value: &Value,
    path: &str,
    scope: &mut Scope<'_>,
) -> Result<Operand, ConfigError> {
    let text = |what: &str| -> Result<String, ConfigError> {
        match value {
            Value::String(text) if !text.is_empty() => Ok(text.clone()),
            _ => Err(ConfigError::new(
                path,
                format!("must be a non-empty {what}"),
            )),
        }
    };
    Ok(match key {
        "claim" => scope.claim_slot(claim_path(value, path)?),
        "header" => Operand::Header(header_name(&text("header name")?, path)?),
        "query" => Operand::Query(text("query parameter name")?),
        "capture" => {
            let name = text("capture name")?;
            let index = scope
                .captures
                .iter()
                .position(|known| *known == name)
                .ok_or_else(|| {
                    let known = if scope.captures.is_empty() {
                        "this rule's match has no template captures".to_owned()
                    } else {
                        format!("its template captures {}", scope.captures.join(", "))
                    };
                    ConfigError::new(path, format!("no capture named '{name}': {known}"))
                })?;
            Operand::Capture { index, name }
        }
        "request" => {
            let name = text("request attribute")?;
            Operand::Request(RequestAttribute::from_name(&name).ok_or_else(|| {
                ConfigError::new(
                    path,
                    format!(
                        "unknown request attribute '{name}'; known: {}",
                        RequestAttribute::NAMES.join(", ")
                    ),
                )
            })?)
        }
        "now" => match value {
            Value::Bool(true) => Operand::Now { offset: 0 },
            Value::Number(number) => Operand::Now {
                offset: number
                    .as_i64()
                    .ok_or_else(|| ConfigError::new(path, "the offset must be whole seconds"))?,
            },
            _ => {
                return Err(ConfigError::new(
                    path,
                    "give true, or an offset in seconds (e.g. -3600 for an hour ago)",
                ))
            }
        },
        _ => return Err(ConfigError::new(path, "unknown operand")),
    })
}

/// The second operand: another operand written as a one-key object (`{"capture":
/// "user_id"}`), `{"value": X}` for a literal object, or a constant.
fn compile_argument(
    value: &Value,
    path: &str,
    scope: &mut Scope<'_>,
) -> Result<Operand, ConfigError> {
    if let Value::Object(object) = value {
        if object.len() == 1 {
            if let Some((key, inner)) = object.iter().next() {
                if OPERANDS.contains(&key.as_str()) {
                    return compile_operand(key, inner, &format!("{path}.{key}"), scope);
                }
                if key == "value" {
                    return Ok(Operand::Constant(inner.clone()));
                }
            }
        }
        return Err(ConfigError::new(
            path,
            format!(
                "an object here must be one operand ({}) or {{\"value\": ...}} for a literal",
                OPERANDS.join(", ")
            ),
        ));
    }
    Ok(Operand::Constant(value.clone()))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Compiles the argument of `key`; a constant argument must pass `check`, which says
/// what is wrong with it.
fn argument_where(
    argument: &Value,
    argument_path: &str,
    scope: &mut Scope<'_>,
    check: impl Fn(&Value) -> Option<String>,
) -> Result<Operand, ConfigError> {
    let right = compile_argument(argument, argument_path, scope)?;
    if let Operand::Constant(constant) = &right {
        if let Some(problem) = check(constant) {
            return Err(ConfigError::new(argument_path, problem));
        }
    }
    Ok(right)
}

fn compile_operator(
    key: &str,
    argument: &Value,
    argument_path: &str,
    object: &Map<String, Value>,
    path: &str,
    operand: &Operand,
    scope: &mut Scope<'_>,
) -> Result<Operator, ConfigError> {
    let mismatch = |message: String| Err(ConfigError::new(argument_path, message));
    let is_now = matches!(operand, Operand::Now { .. });
    let comparable = |constant: &Value| {
        match constant {
        Value::Number(_) => None,
        Value::String(text) if super::rfc3339_seconds(text).is_some() => None,
        other => Some(format!(
            "type mismatch: \"{key}\" compares numbers or times; give a number or an RFC 3339 time such as \"2026-01-01T00:00:00Z\", not {} {other}",
            type_name(other)
        )),
    }
    };
    let list = |constant: &Value| match constant {
        Value::Array(items) if !items.is_empty() => None,
        Value::Array(_) => Some("list at least one value".to_owned()),
        other => Some(format!(
            "type mismatch: \"{key}\" takes a list, not {}",
            type_name(other)
        )),
    };
    // What equals/not_equals accept: numbers for now, scalars for request text, anything
    // for claims.
    let comparand = |constant: &Value| match constant {
        Value::Number(_) => None,
        other if is_now => Some(format!(
            "type mismatch: now is a number, not {}",
            type_name(other)
        )),
        Value::String(_) | Value::Bool(_) => None,
        other if operand.is_request_text() => Some(format!(
            "type mismatch: {operand} is text; compare it with a string, number or boolean, not {}",
            type_name(other)
        )),
        _ => None,
    };
    let text = |constant: &Value| match constant {
        Value::String(_) => None,
        other => Some(format!(
            "type mismatch: \"{key}\" takes a string, not {}",
            type_name(other)
        )),
    };
    let single = |constant: &Value| match constant {
        Value::Array(_) | Value::Object(_) => Some(
            "\"contains\" takes one value; for a list use \"contains_any\" or \"contains_all\""
                .to_owned(),
        ),
        _ => None,
    };
    let is_comparison = matches!(
        key,
        "less_than" | "less_or_equal" | "greater_than" | "greater_or_equal"
    );
    if is_now && !is_comparison && !matches!(key, "equals" | "not_equals") {
        return Err(ConfigError::new(
            format!("{path}.{key}"),
            format!("type mismatch: now is a number; \"{key}\" does not apply to it"),
        ));
    }
    let mut argument_with = |check: &dyn Fn(&Value) -> Option<String>| {
        argument_where(argument, argument_path, scope, check)
    };
    Ok(match key {
        "equals" => Operator::Equals(argument_with(&comparand)?),
        "not_equals" => Operator::NotEquals(argument_with(&comparand)?),
        "in" | "one_of" => Operator::In(argument_with(&list)?),
        "not_in" => Operator::NotIn(argument_with(&list)?),
        "contains" => Operator::Contains(argument_with(&single)?),
        "contains_any" => Operator::ContainsAny(argument_with(&list)?),
        "contains_all" => Operator::ContainsAll(argument_with(&list)?),
        "prefix" | "suffix" => {
            let right = argument_with(&text)?;
            if matches!(right, Operand::Now { .. }) {
                return mismatch(format!(
                    "type mismatch: \"{key}\" compares text, and now is a number"
                ));
            }
            if key == "prefix" {
                Operator::Prefix(right)
            } else {
                Operator::Suffix(right)
            }
        }
        "less_than" => Operator::Compare(Comparison::Less, argument_with(&comparable)?),
        "less_or_equal" => Operator::Compare(Comparison::LessOrEqual, argument_with(&comparable)?),
        "greater_than" => Operator::Compare(Comparison::Greater, argument_with(&comparable)?),
        "greater_or_equal" => {
            Operator::Compare(Comparison::GreaterOrEqual, argument_with(&comparable)?)
        }
        "regex" => {
            let Value::String(pattern) = argument else {
                return mismatch(format!(
                    "\"regex\" takes a pattern string, not {}",
                    type_name(argument)
                ));
            };
            Operator::Regex {
                pattern: pattern.clone(),
                regex: anchored_regex(pattern, argument_path)?,
            }
        }
        "at_least" | "at_most" => {
            let Value::String(value) = argument else {
                return mismatch(format!(
                    "\"{key}\" takes a tier name, not {}",
                    type_name(argument)
                ));
            };
            let tier_name = match object.get("tiers") {
                Some(Value::String(name)) => name,
                Some(_) => {
                    return Err(ConfigError::new(
                        format!("{path}.tiers"),
                        "must be the name of a tier list",
                    ))
                }
                None => {
                    return Err(ConfigError::new(
                        format!("{path}.tiers"),
                        format!("name the tier list \"{key}\" refers to"),
                    ))
                }
            };
            let tiers = scope
                .tiers
                .iter()
                .find(|list| list.name == *tier_name)
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("{path}.tiers"),
                        format!("no tier list named '{tier_name}'"),
                    )
                })?;
            let rank = tiers.rank(value).ok_or_else(|| {
                ConfigError::new(
                    argument_path,
                    format!(
                        "'{value}' is not in tier list '{tier_name}' ({})",
                        tiers.values.join(" < ")
                    ),
                )
            })?;
            let tiers = Arc::clone(tiers);
            let value = value.clone();
            if key == "at_least" {
                Operator::AtLeast { tiers, value, rank }
            } else {
                Operator::AtMost { tiers, value, rank }
            }
        }
        "in_cidr" => {
            let items: Vec<&Value> = match argument {
                Value::Array(items) if !items.is_empty() => items.iter().collect(),
                Value::String(_) => vec![argument],
                _ => {
                    return mismatch(
                        "give a network such as \"10.0.0.0/8\" or a non-empty list of them".into(),
                    )
                }
            };
            let mut networks = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let item_path = if matches!(argument, Value::Array(_)) {
                    format!("{argument_path}[{index}]")
                } else {
                    argument_path.to_owned()
                };
                let Value::String(text) = item else {
                    return Err(ConfigError::new(item_path, "must be a network string"));
                };
                networks.push(Cidr::parse(text).map_err(|err| ConfigError::new(item_path, err))?);
            }
            Operator::InCidr(networks)
        }
        "present" | "absent" => match argument {
            Value::Bool(true) => {
                if key == "present" {
                    Operator::Present
                } else {
                    Operator::Absent
                }
            }
            // `present: false` is how the first rule language wrote "absent".
            Value::Bool(false) if key == "present" => Operator::Absent,
            _ => return mismatch(format!("write \"{key}\": true")),
        },
        _ => return mismatch(format!("unknown operator '{key}'")),
    })
}

/// Rules another rule makes pointless: reported by `claimgate check`, not refused.
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
                path: format!("rules[{index}]"),
                message: format!("rule '{}' ({}) {message}", rule.name, rule.route),
            });
        }
    }
    warnings
}
