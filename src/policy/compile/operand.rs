//! Compiling an operand — the claim, header, query parameter, capture, request attribute
//! or clock a test reads — and an operator's argument, against what the condition may
//! refer to. Apart from `condition` so that the operators can compile their arguments
//! without importing the condition compiler that imports them (a one-way graph, issue 23).

use std::sync::Arc;

use serde_json::Value;

use super::OPERANDS;
use crate::fields::{claim_path, header_name, ConfigError};
use crate::policy::{ClaimPath, Operand, RequestAttribute, TierList};

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

pub(super) fn compile_operand(
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
