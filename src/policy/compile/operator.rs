//! Compiling an operator and its argument, with the type checks each operator makes on a
//! constant argument (lists, text, numbers or times, tier names, networks). Which check
//! applies comes from the operator's row of [`OPERATORS`](crate::policy::OPERATORS).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::operand::{argument_where, type_name, Scope};
use super::route::anchored_regex;
use crate::fields::ConfigError;
use crate::policy::{
    rfc3339_seconds, ArgumentKind, Cidr, Comparison, Operand, Operator, OperatorKind,
};

/// An operator as written in its condition, with the field paths errors name.
pub(super) struct OperatorSite<'a> {
    /// The operator's key, e.g. `contains`.
    pub(super) key: &'a str,
    pub(super) argument: &'a Value,
    /// `{path}.{key}`.
    pub(super) argument_path: &'a str,
    /// The whole condition object (`tiers` sits beside `at_least`).
    pub(super) object: &'a Map<String, Value>,
    /// The condition's path.
    pub(super) path: &'a str,
}

impl OperatorSite<'_> {
    fn mismatch<T>(&self, message: String) -> Result<T, ConfigError> {
        Err(ConfigError::new(self.argument_path, message))
    }
}

pub(super) fn compile_operator(
    site: &OperatorSite<'_>,
    operand: &Operand,
    scope: &mut Scope<'_>,
) -> Result<Operator, ConfigError> {
    let key = site.key;
    let Some(kind) = OperatorKind::from_name(key) else {
        return site.mismatch(format!("unknown operator '{key}'"));
    };
    let argument_kind = kind.spec().argument;
    let is_now = matches!(operand, Operand::Now { .. });
    if is_now
        && !matches!(
            argument_kind,
            ArgumentKind::Comparand | ArgumentKind::Quantity
        )
    {
        return Err(ConfigError::new(
            format!("{}.{key}", site.path),
            format!("type mismatch: now is a number; \"{key}\" does not apply to it"),
        ));
    }
    match argument_kind {
        ArgumentKind::Pattern => compile_regex(site),
        ArgumentKind::Tier => compile_tier(site, kind, scope),
        ArgumentKind::Networks => compile_networks(site),
        ArgumentKind::Flag => compile_flag(site, kind),
        ArgumentKind::Comparand
        | ArgumentKind::List
        | ArgumentKind::Single
        | ArgumentKind::Text
        | ArgumentKind::Quantity => {
            let right = argument_where(site.argument, site.argument_path, scope, |constant| {
                constant_problem(argument_kind, key, operand, constant)
            })?;
            with_operand(site, kind, right)
        }
    }
}

/// What is wrong with a constant argument of an operator taking `kind`, if anything.
fn constant_problem(
    kind: ArgumentKind,
    key: &str,
    operand: &Operand,
    constant: &Value,
) -> Option<String> {
    match (kind, constant) {
        // What equals/not_equals accept: numbers for now, scalars for request text,
        // anything for claims.
        (ArgumentKind::Comparand, Value::Number(_)) => None,
        (ArgumentKind::Comparand, other) if matches!(operand, Operand::Now { .. }) => Some(
            format!("type mismatch: now is a number, not {}", type_name(other)),
        ),
        (ArgumentKind::Comparand, Value::String(_) | Value::Bool(_)) => None,
        (ArgumentKind::Comparand, other) if operand.is_request_text() => Some(format!(
            "type mismatch: {operand} is text; compare it with a string, number or boolean, not {}",
            type_name(other)
        )),
        (ArgumentKind::List, Value::Array(items)) if !items.is_empty() => None,
        (ArgumentKind::List, Value::Array(_)) => Some("list at least one value".to_owned()),
        (ArgumentKind::List, other) => Some(format!(
            "type mismatch: \"{key}\" takes a list, not {}",
            type_name(other)
        )),
        (ArgumentKind::Single, Value::Array(_) | Value::Object(_)) => Some(
            "\"contains\" takes one value; for a list use \"contains_any\" or \"contains_all\""
                .to_owned(),
        ),
        (ArgumentKind::Text, Value::String(_)) => None,
        (ArgumentKind::Text, other) => Some(format!(
            "type mismatch: \"{key}\" takes a string, not {}",
            type_name(other)
        )),
        (ArgumentKind::Quantity, Value::Number(_)) => None,
        (ArgumentKind::Quantity, Value::String(text)) if rfc3339_seconds(text).is_some() => None,
        (ArgumentKind::Quantity, other) => Some(format!(
            "type mismatch: \"{key}\" compares numbers or times; give a number or an RFC 3339 time such as \"2026-01-01T00:00:00Z\", not {} {other}",
            type_name(other)
        )),
        _ => None,
    }
}

/// The operators whose argument is a second operand.
fn with_operand(
    site: &OperatorSite<'_>,
    kind: OperatorKind,
    right: Operand,
) -> Result<Operator, ConfigError> {
    Ok(match kind {
        OperatorKind::Equals => Operator::Equals(right),
        OperatorKind::NotEquals => Operator::NotEquals(right),
        OperatorKind::In | OperatorKind::OneOf => Operator::In(right),
        OperatorKind::NotIn => Operator::NotIn(right),
        OperatorKind::Contains => Operator::Contains(right),
        OperatorKind::ContainsAny => Operator::ContainsAny(right),
        OperatorKind::ContainsAll => Operator::ContainsAll(right),
        OperatorKind::Prefix | OperatorKind::Suffix if matches!(right, Operand::Now { .. }) => {
            return site.mismatch(format!(
                "type mismatch: \"{}\" compares text, and now is a number",
                site.key
            ));
        }
        OperatorKind::Prefix => Operator::Prefix(right),
        OperatorKind::Suffix => Operator::Suffix(right),
        OperatorKind::LessThan => Operator::Compare(Comparison::Less, right),
        OperatorKind::LessOrEqual => Operator::Compare(Comparison::LessOrEqual, right),
        OperatorKind::GreaterThan => Operator::Compare(Comparison::Greater, right),
        OperatorKind::GreaterOrEqual => Operator::Compare(Comparison::GreaterOrEqual, right),
        OperatorKind::Regex
        | OperatorKind::AtLeast
        | OperatorKind::AtMost
        | OperatorKind::InCidr
        | OperatorKind::Present
        | OperatorKind::Absent => {
            return site.mismatch(format!("unknown operator '{}'", site.key));
        }
    })
}

fn compile_regex(site: &OperatorSite<'_>) -> Result<Operator, ConfigError> {
    let Value::String(pattern) = site.argument else {
        return site.mismatch(format!(
            "\"regex\" takes a pattern string, not {}",
            type_name(site.argument)
        ));
    };
    Ok(Operator::Regex {
        pattern: pattern.clone(),
        regex: anchored_regex(pattern, site.argument_path)?,
    })
}

fn compile_tier(
    site: &OperatorSite<'_>,
    kind: OperatorKind,
    scope: &Scope<'_>,
) -> Result<Operator, ConfigError> {
    let (key, path) = (site.key, site.path);
    let Value::String(value) = site.argument else {
        return site.mismatch(format!(
            "\"{key}\" takes a tier name, not {}",
            type_name(site.argument)
        ));
    };
    let tier_name = match site.object.get("tiers") {
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
            site.argument_path,
            format!(
                "'{value}' is not in tier list '{tier_name}' ({})",
                tiers.values.join(" < ")
            ),
        )
    })?;
    let tiers = Arc::clone(tiers);
    let value = value.clone();
    Ok(if kind == OperatorKind::AtLeast {
        Operator::AtLeast { tiers, value, rank }
    } else {
        Operator::AtMost { tiers, value, rank }
    })
}

fn compile_networks(site: &OperatorSite<'_>) -> Result<Operator, ConfigError> {
    let argument = site.argument;
    let items: Vec<&Value> = match argument {
        Value::Array(items) if !items.is_empty() => items.iter().collect(),
        Value::String(_) => vec![argument],
        _ => {
            return site.mismatch(
                "give a network such as \"10.0.0.0/8\" or a non-empty list of them".into(),
            )
        }
    };
    let mut networks = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let item_path = if matches!(argument, Value::Array(_)) {
            format!("{}[{index}]", site.argument_path)
        } else {
            site.argument_path.to_owned()
        };
        let Value::String(text) = item else {
            return Err(ConfigError::new(item_path, "must be a network string"));
        };
        networks.push(Cidr::parse(text).map_err(|err| ConfigError::new(item_path, err))?);
    }
    Ok(Operator::InCidr(networks))
}

fn compile_flag(site: &OperatorSite<'_>, kind: OperatorKind) -> Result<Operator, ConfigError> {
    match (site.argument, kind) {
        (Value::Bool(true), OperatorKind::Present) => Ok(Operator::Present),
        (Value::Bool(true), _) => Ok(Operator::Absent),
        // `present: false` is how the first rule language wrote "absent".
        (Value::Bool(false), OperatorKind::Present) => Ok(Operator::Absent),
        _ => site.mismatch(format!("write \"{}\": true", site.key)),
    }
}
