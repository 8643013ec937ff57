//! Verified claims and the paths that read them. Its own module, below the policy, the
//! token and the identity mapping, which all read claims without importing each other.

use std::borrow::Cow;
use std::fmt;

use serde_json::{Map, Value};

/// Verified token claims (the JSON payload object).
pub type Claims = Map<String, Value>;

/// A claim name or a nested path. Names are exact strings, so URL-namespaced claims
/// (`https://aethermarket.com/loyalty_tier`) need no escaping; nested objects are a list
/// of segments; a segment that is a number indexes into an array, and `*` takes every
/// element of an array (the result is the list of what the rest of the path finds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimPath {
    segments: Vec<String>,
}

impl ClaimPath {
    /// A path of one or more segments; empty paths are refused by the config compiler.
    pub fn new(segments: Vec<String>) -> ClaimPath {
        ClaimPath { segments }
    }

    pub fn single(name: &str) -> ClaimPath {
        ClaimPath {
            segments: vec![name.to_owned()],
        }
    }

    /// Looks the claim up; `None` when any segment is missing.
    pub fn resolve<'c>(&self, claims: &'c Claims) -> Option<Cow<'c, Value>> {
        let (first, rest) = self.segments.split_first()?;
        resolve_in(claims.get(first)?, rest)
    }
}

fn resolve_in<'c>(value: &'c Value, segments: &[String]) -> Option<Cow<'c, Value>> {
    let Some((segment, rest)) = segments.split_first() else {
        return Some(Cow::Borrowed(value));
    };
    match value {
        Value::Array(items) if segment == "*" => {
            let mut found = Vec::new();
            for item in items {
                match resolve_in(item, rest) {
                    Some(Cow::Owned(Value::Array(inner))) if !rest.is_empty() => {
                        found.extend(inner)
                    }
                    Some(value) => found.push(value.into_owned()),
                    None => {}
                }
            }
            Some(Cow::Owned(Value::Array(found)))
        }
        Value::Object(object) => resolve_in(object.get(segment)?, rest),
        Value::Array(items) => resolve_in(items.get(segment.parse::<usize>().ok()?)?, rest),
        _ => None,
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.segments.as_slice() {
            [single] => f.write_str(single),
            segments => write!(f, "{}", Value::from(segments.to_vec())),
        }
    }
}
