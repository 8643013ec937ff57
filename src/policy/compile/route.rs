//! Compiling a rule's `match`: one path form (exact, prefix, template or regex),
//! methods and hosts.

use super::raw::RawMatch;
use crate::fields::ConfigError;
use crate::policy::{HostPattern, PathMatch, PathTemplate, RouteMatch};

pub(super) fn compile_route(matcher: RawMatch, path: &str) -> Result<RouteMatch, ConfigError> {
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
pub(super) fn anchored_regex(pattern: &str, path: &str) -> Result<regex_lite::Regex, ConfigError> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|err| ConfigError::new(path, format!("invalid regex: {err}")))
}
