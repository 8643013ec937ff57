//! Configuration errors and warnings, and the validators every part of the configuration
//! shares (header names, claim paths, "exactly one of these fields"). At the bottom of the
//! import graph so the config and policy compilers can both use them without importing
//! each other.

use std::fmt;

use serde_json::Value;

use crate::claims::ClaimPath;

/// A configuration error at an exact field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Field path such as `rules[2].require[0].claim`; `.` for the document itself.
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Something legal but probably not meant, such as a rule another rule makes pointless;
/// `claimgate check` prints these and the filter logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub path: String,
    pub message: String,
    /// About where the configuration is deployed, which the filter cannot see (a gateway
    /// shared with other applications): `claimgate check` prints it as a warning, the
    /// filter logs it at info so a single-application Envoy starts without warnings.
    pub deployment: bool,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Validates a header name and returns it lower-cased.
pub(crate) fn header_name(name: &str, path: &str) -> Result<String, ConfigError> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !valid {
        return Err(ConfigError::new(
            path,
            format!("'{name}' is not a valid HTTP header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Compiles a claim name: a string, or a non-empty array of segments for a nested path
/// (strings for object keys, whole numbers for array positions, `"*"` for every element).
pub fn claim_path(value: &Value, path: &str) -> Result<ClaimPath, ConfigError> {
    match value {
        Value::String(name) if !name.is_empty() => Ok(ClaimPath::single(name)),
        Value::Array(segments) if !segments.is_empty() => {
            let mut names = Vec::with_capacity(segments.len());
            for (index, segment) in segments.iter().enumerate() {
                match segment {
                    Value::String(name) if !name.is_empty() => names.push(name.clone()),
                    Value::Number(number) if number.is_u64() && index > 0 => {
                        names.push(number.to_string())
                    }
                    _ => {
                        return Err(ConfigError::new(
                            format!("{path}[{index}]"),
                            "a claim path segment must be a non-empty string, or a whole number after the first",
                        ))
                    }
                }
            }
            Ok(ClaimPath::new(names))
        }
        _ => Err(ConfigError::new(
            path,
            "must be a claim name or a non-empty list of path segments",
        )),
    }
}

/// Errs unless exactly one of the named fields is given.
pub(crate) fn exactly_one(path: &str, fields: &[(&str, bool)]) -> Result<(), ConfigError> {
    if fields.iter().filter(|(_, given)| *given).count() == 1 {
        return Ok(());
    }
    let names: Vec<String> = fields
        .iter()
        .map(|(name, _)| format!("\"{name}\""))
        .collect();
    Err(ConfigError::new(
        path,
        format!("give exactly one of {}", names.join(", ")),
    ))
}

/// Errs when `field` is given without the field it belongs to.
pub(crate) fn only_with(
    path: &str,
    field: (&str, bool),
    partner: (&str, bool),
) -> Result<(), ConfigError> {
    if field.1 && !partner.1 {
        return Err(ConfigError::new(
            format!("{path}.{}", field.0),
            format!("only goes with \"{}\"", partner.0),
        ));
    }
    Ok(())
}
