//! Compiling a condition: `all`/`any`/`not`, then one operand (`operand`) and one
//! operator (`operator`) per test.

use serde_json::{Map, Value};

use super::operand::{compile_operand, Scope};
use super::operator::{compile_operator, OperatorSite};
use super::OPERANDS;
use crate::fields::ConfigError;
use crate::policy::OPERATOR_NAMES;
use crate::policy::{ArgumentKind, Condition, OperatorKind, Test};

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
