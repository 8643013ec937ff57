//! Compiling a condition: `all`/`any`/`not`, then one operand and one operator per test,
//! with the operand's references (claim slots, captures, request attributes) resolved.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::operator::{compile_operator, OperatorSite};
use super::OPERANDS;
use crate::fields::{claim_path, header_name, ConfigError};
use crate::policy::OPERATOR_NAMES;
use crate::policy::{
    ArgumentKind, ClaimPath, Condition, Operand, OperatorKind, RequestAttribute, Test, TierList,
};

/// What a condition may refer to while it compiles.
pub(super) struct Scope<'a> {
    pub(super) tiers: &'a [Arc<TierList>],
    /// The named captures of the rule's path template.
    pub(super) captures: &'a [String],
    pub(super) claim_paths: &'a mut Vec<ClaimPath>,
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

pub(super) fn compile_condition(
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
    if let Some(combined) = compile_combinator(object, path, scope) {
        return combined;
    }
    let (operand_key, operator_key) = test_keys(object, path)?;
    let operand_value = object.get(operand_key).unwrap_or(&Value::Null);
    let operand = compile_operand(
        operand_key,
        operand_value,
        &format!("{path}.{operand_key}"),
        scope,
    )?;
    let argument = object.get(operator_key).unwrap_or(&Value::Null);
    let argument_path = format!("{path}.{operator_key}");
    let takes_tiers = OperatorKind::from_name(operator_key)
        .is_some_and(|kind| kind.spec().argument == ArgumentKind::Tier);
    if object.contains_key("tiers") && !takes_tiers {
        return Err(ConfigError::new(
            format!("{path}.tiers"),
            "only goes with \"at_least\" or \"at_most\"",
        ));
    }
    let site = OperatorSite {
        key: operator_key,
        argument,
        argument_path: &argument_path,
        object,
        path,
    };
    let operator = compile_operator(&site, &operand, scope)?;
    Ok(Condition::Test(Test { operand, operator }))
}

/// `all`, `any` or `not`, when the condition is one (`None`: it is a test).
fn compile_combinator(
    object: &Map<String, Value>,
    path: &str,
    scope: &mut Scope<'_>,
) -> Option<Result<Condition, ConfigError>> {
    let (combinator, inner) = ["all", "any", "not"]
        .into_iter()
        .find_map(|combinator| Some((combinator, object.get(combinator)?)))?;
    if object.len() != 1 {
        return Some(Err(ConfigError::new(
            path,
            format!("\"{combinator}\" must be the only key of its condition"),
        )));
    }
    let inner_path = format!("{path}.{combinator}");
    if combinator == "not" {
        return Some(
            compile_condition(inner, &inner_path, scope)
                .map(|inner| Condition::Not(Box::new(inner))),
        );
    }
    let Value::Array(items) = inner else {
        return Some(Err(ConfigError::new(
            inner_path,
            "must be a list of conditions",
        )));
    };
    if items.is_empty() {
        return Some(Err(ConfigError::new(
            inner_path,
            "list at least one condition",
        )));
    }
    let parts: Result<Vec<Condition>, ConfigError> = items
        .iter()
        .enumerate()
        .map(|(index, item)| compile_condition(item, &format!("{inner_path}[{index}]"), scope))
        .collect();
    Some(parts.map(|parts| {
        if combinator == "all" {
            Condition::All(parts)
        } else {
            Condition::Any(parts)
        }
    }))
}

/// The one operand key and the one operator key of a test; no other keys but `tiers`.
fn test_keys<'o>(
    object: &'o Map<String, Value>,
    path: &str,
) -> Result<(&'o str, &'o str), ConfigError> {
    for key in object.keys() {
        if !OPERANDS.contains(&key.as_str())
            && !OPERATOR_NAMES.contains(&key.as_str())
            && key != "tiers"
        {
            return Err(ConfigError::new(
                format!("{path}.{key}"),
                format!(
                    "unknown key '{key}': a condition has one operand ({}) and one operator ({})",
                    OPERANDS.join(", "),
                    OPERATOR_NAMES.join(", ")
                ),
            ));
        }
    }
    let present = |names: &[&'static str]| -> Vec<&'static str> {
        names
            .iter()
            .copied()
            .filter(|key| object.contains_key(*key))
            .collect()
    };
    let operand_keys = present(&OPERANDS);
    let operator_keys = present(&OPERATOR_NAMES);
    if let (&[operand_key], &[operator_key]) = (operand_keys.as_slice(), operator_keys.as_slice()) {
        return Ok((operand_key, operator_key));
    }
    let (what, list, found) = if operand_keys.len() != 1 {
        ("operand", OPERANDS.as_slice(), &operand_keys)
    } else {
        ("operator", OPERATOR_NAMES.as_slice(), &operator_keys)
    };
    Err(ConfigError::new(
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
    ))
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
pub(super) fn compile_argument(
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

pub(super) fn type_name(value: &Value) -> &'static str {
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
pub(super) fn argument_where(
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
