//! Compiling a rule's `match`: one path form (exact, prefix, template or regex),
//! methods and hosts.

use super::raw::RawMatch;
use crate::fields::ConfigError;
use crate::policy::{HostPattern, PathMatch, PathTemplate, RouteMatch};
use crate::request::canonical_path;

pub(super) fn compile_route(matcher: RawMatch, path: &str) -> Result<RouteMatch, ConfigError> {
    let path_match = match (
        matcher.path,
        matcher.prefix,
        matcher.template,
        matcher.regex,
    ) {
        (None, None, None, None) => PathMatch::Any,
        (Some(exact), None, None, None) => {
            PathMatch::Exact(canonical_rule_path(&exact, &format!("{path}.path"))?)
        }
        (None, Some(prefix), None, None) => {
            let prefix = canonical_rule_path(&prefix, &format!("{path}.prefix"))?;
            let trimmed = prefix.trim_end_matches('/');
            PathMatch::Prefix(if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            })
        }
        (None, None, Some(template), None) => {
            let field = format!("{path}.template");
            let template = canonical_rule_path(&template, &field)?;
            PathMatch::Template(
                PathTemplate::parse(&template).map_err(|err| ConfigError::new(field, err))?,
            )
        }
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

/// A rule's path in the spelling request paths are compared in ([`canonical_path`]:
/// merged slashes, one percent-encoding), so `/users/auth0|carol` matches what Envoy
/// forwards (`/users/auth0%7Ccarol`). A path no request could ever match — one with a
/// query or fragment, a dot segment, an encoded slash — refuses the configuration.
fn canonical_rule_path(text: &str, field: &str) -> Result<String, ConfigError> {
    if !text.starts_with('/') {
        return Err(ConfigError::new(field, "must start with '/'"));
    }
    if text.contains(['?', '#']) {
        return Err(ConfigError::new(
            field,
            "contains '?' or '#': rules match the path without its query, so this can never match",
        ));
    }
    canonical_path(text)
        .map(|canonical| canonical.into_owned())
        .map_err(|err| {
            ConfigError::new(
                field,
                format!("can never match: {err}, which is refused with 400 before any rule"),
            )
        })
}

/// Compiles a regex that must match the whole value (linear-time engine).
pub(super) fn anchored_regex(pattern: &str, path: &str) -> Result<regex_lite::Regex, ConfigError> {
    regex_lite::Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|err| ConfigError::new(path, format!("invalid regex: {err}")))
}
