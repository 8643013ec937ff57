//! Compiling an operator and its argument, with the type checks each operator makes on a
//! constant argument (lists, text, numbers or times, tier names, networks).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::condition::{argument_where, type_name, Scope};
use super::route::anchored_regex;
use crate::fields::ConfigError;
use crate::policy::{rfc3339_seconds, Cidr, Comparison, Operand, Operator};

pub(super) fn compile_operator(
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
        Value::String(text) if rfc3339_seconds(text).is_some() => None,
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
