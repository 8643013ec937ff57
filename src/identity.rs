//! Identity headers for upstream services: what is stripped from every incoming request,
//! and what is derived from the verified claims.

use std::rc::Rc;

use serde_json::Value;

use crate::claims::{ClaimPath, Claims};
use crate::request::RequestView;

/// The identity headers to set, and the ones that could not be.
pub type IdentityHeaders = (Vec<(String, String)>, Vec<SkippedHeader>);

/// [`IdentityHeaders`] worked out once for a verified token and shared by every decision
/// that reuses the token: a cached hit allocates nothing for them.
pub type SharedIdentityHeaders = (Rc<[(String, String)]>, Vec<SkippedHeader>);

/// Where a header value comes from.
#[derive(Debug, Clone)]
pub enum ValueSource {
    /// A claim: strings as they are, numbers and booleans as text, arrays joined with the
    /// header's separator, objects as compact JSON.
    Claim(ClaimPath),
    /// The first source that yields a value.
    FirstOf(Vec<ValueSource>),
    /// Every part that yields a value, joined; nothing when no part does.
    Join {
        parts: Vec<ValueSource>,
        separator: String,
    },
    /// The identity provider named by the `sub` prefix (`google-oauth2|…` → `google`).
    SubPrefix {
        map: Vec<(String, String)>,
        default: Option<String>,
    },
    /// A tier: the claim's value when it is exactly one of `list` (a string, spelled as
    /// the list spells it), else `default` — for a missing claim, an unknown value, a
    /// differently cased one, a number or an array alike. So whatever later filters key
    /// on this header (a per-tier rate limit) always sees one of the list's spellings.
    Tier {
        claim: ClaimPath,
        list: Vec<String>,
        default: String,
    },
    /// A fixed text.
    Literal(String),
}

impl ValueSource {
    fn render(&self, claims: &Claims, array_separator: &str) -> Option<String> {
        match self {
            ValueSource::Claim(path) => claim_text(path.resolve(claims)?.as_ref(), array_separator),
            ValueSource::FirstOf(sources) => sources
                .iter()
                .find_map(|source| source.render(claims, array_separator)),
            ValueSource::Join { parts, separator } => {
                let rendered: Vec<String> = parts
                    .iter()
                    .filter_map(|part| part.render(claims, array_separator))
                    .collect();
                (!rendered.is_empty()).then(|| rendered.join(separator))
            }
            ValueSource::SubPrefix { map, default } => {
                let sub = claims.get("sub").and_then(Value::as_str)?;
                let prefix = sub.split_once('|').map(|(prefix, _)| prefix);
                prefix
                    .and_then(|prefix| {
                        map.iter()
                            .find(|(known, _)| known == prefix)
                            .map(|(_, name)| name.clone())
                    })
                    .or_else(|| default.clone())
            }
            ValueSource::Tier {
                claim,
                list,
                default,
            } => {
                let value = claim.resolve(claims);
                let known = value
                    .as_deref()
                    .and_then(Value::as_str)
                    .and_then(|value| list.iter().find(|tier| *tier == value));
                Some(known.unwrap_or(default).clone())
            }
            ValueSource::Literal(text) => Some(text.clone()),
        }
    }
}

fn claim_text(value: &Value, array_separator: &str) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(_) | Value::Number(_) | Value::Object(_) => Some(value.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Array(_) => Some(item.to_string()),
                    other => claim_text(other, array_separator),
                })
                .collect();
            (!parts.is_empty()).then(|| parts.join(array_separator))
        }
    }
}

/// One header written for upstream.
#[derive(Debug, Clone)]
pub struct HeaderMapping {
    /// Lower-case header name.
    pub header: String,
    pub source: ValueSource,
    /// Joins array claims.
    pub separator: String,
}

/// Longest header value written; longer values are dropped, not truncated, so an
/// upstream never sees a silently cut identity.
pub const MAX_HEADER_VALUE_BYTES: usize = 8192;

/// The identity headers of one configuration.
#[derive(Debug, Clone, Default)]
pub struct IdentityMapping {
    pub headers: Vec<HeaderMapping>,
    /// Lower-case header names always removed from incoming requests.
    pub strip_headers: Vec<String>,
    /// Lower-case prefixes: every incoming header starting with one is removed.
    pub strip_prefixes: Vec<String>,
}

/// A header value that was not written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedHeader {
    pub header: String,
    pub reason: &'static str,
}

impl IdentityMapping {
    /// Incoming headers to remove before anything is added: every one the mapping can
    /// write, every configured name and every one under a configured prefix — in any
    /// spelling with `_` for `-` too (`x_user_id`), since CGI/WSGI-style servers read
    /// `x_user_id` as `X-User-Id`. Applied on every route and every outcome; mapped
    /// headers that are set replace any value anyway, so only headers actually present are
    /// listed (each removal is a host call).
    pub fn headers_to_remove(&self, request: &RequestView<'_>) -> Vec<String> {
        let mut remove: Vec<String> = Vec::new();
        for (name, _) in request.headers() {
            if name.starts_with(b":") {
                continue;
            }
            let identity = self
                .headers
                .iter()
                .any(|mapping| same_header(name, &mapping.header))
                || self
                    .strip_headers
                    .iter()
                    .any(|strip| same_header(name, strip))
                || self.strip_prefixes.iter().any(|prefix| {
                    name.get(..prefix.len())
                        .is_some_and(|start| same_header(start, prefix))
                });
            // Lower-cased (a copy) only for the identity headers found, not every header.
            // Names are UTF-8 (pairs are strings; a serialized map is checked when read).
            let Some(name) = identity.then(|| std::str::from_utf8(name).ok()).flatten() else {
                continue;
            };
            if !remove.iter().any(|known| known.eq_ignore_ascii_case(name)) {
                remove.push(name.to_ascii_lowercase());
            }
        }
        remove
    }

    /// Header values from verified claims. Values that are empty, too long, or contain
    /// control characters (header injection) are skipped and reported.
    pub fn headers_to_set(&self, claims: &Claims) -> IdentityHeaders {
        let mut set = Vec::with_capacity(self.headers.len());
        let mut skipped = Vec::new();
        for mapping in &self.headers {
            let Some(value) = mapping.source.render(claims, &mapping.separator) else {
                continue;
            };
            let reason = if value.is_empty() {
                Some("empty value")
            } else if value.len() > MAX_HEADER_VALUE_BYTES {
                Some("value too long")
            } else if value.chars().any(|c| c.is_control() && c != '\t') {
                Some("value contains control characters")
            } else {
                None
            };
            match reason {
                Some(reason) => skipped.push(SkippedHeader {
                    header: mapping.header.clone(),
                    reason,
                }),
                None => set.push((mapping.header.clone(), value)),
            }
        }
        (set, skipped)
    }
}

/// Header names equal ignoring case and `_` against `-`.
fn same_header(name: &[u8], other: &str) -> bool {
    let fold = |byte: u8| match byte {
        b'_' => b'-',
        other => other.to_ascii_lowercase(),
    };
    name.len() == other.len()
        && name
            .iter()
            .zip(other.bytes())
            .all(|(a, b)| fold(*a) == fold(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        value.as_object().cloned().unwrap()
    }

    fn claim(name: &str) -> ValueSource {
        ValueSource::Claim(ClaimPath::single(name))
    }

    fn mapping(header: &str, source: ValueSource) -> HeaderMapping {
        HeaderMapping {
            header: header.into(),
            source,
            separator: ",".into(),
        }
    }

    fn provider_source() -> ValueSource {
        ValueSource::SubPrefix {
            map: vec![
                ("google-oauth2".into(), "google".into()),
                ("apple".into(), "apple".into()),
                ("auth0".into(), "database".into()),
            ],
            default: Some("other".into()),
        }
    }

    #[test]
    fn claims_render_by_type() {
        let identity = IdentityMapping {
            headers: vec![
                mapping("x-s", claim("s")),
                mapping("x-n", claim("n")),
                mapping("x-b", claim("b")),
                mapping("x-a", claim("a")),
                mapping("x-o", claim("o")),
                mapping("x-null", claim("null")),
                mapping("x-missing", claim("missing")),
            ],
            ..Default::default()
        };
        let (set, skipped) = identity.headers_to_set(&claims(json!({
            "s": "text", "n": 4.5, "b": true, "a": ["x", 1, {"k": "v"}], "o": {"k": [1]}, "null": null
        })));
        assert_eq!(
            set,
            vec![
                ("x-s".into(), "text".into()),
                ("x-n".into(), "4.5".into()),
                ("x-b".into(), "true".into()),
                ("x-a".into(), "x,1,{\"k\":\"v\"}".into()),
                ("x-o".into(), "{\"k\":[1]}".into()),
            ]
        );
        assert!(skipped.is_empty());
    }

    #[test]
    fn first_of_falls_back_to_joined_names() {
        let name = ValueSource::FirstOf(vec![
            claim("name"),
            ValueSource::Join {
                parts: vec![claim("given_name"), claim("family_name")],
                separator: " ".into(),
            },
        ]);
        let identity = IdentityMapping {
            headers: vec![mapping("x-user-name", name)],
            ..Default::default()
        };
        let full = identity
            .headers_to_set(&claims(json!({"name": "Ada L", "given_name": "A"})))
            .0;
        assert_eq!(full, vec![("x-user-name".into(), "Ada L".into())]);
        let parts = identity
            .headers_to_set(&claims(
                json!({"given_name": "Ada", "family_name": "Lovelace"}),
            ))
            .0;
        assert_eq!(parts, vec![("x-user-name".into(), "Ada Lovelace".into())]);
        assert!(identity.headers_to_set(&claims(json!({}))).0.is_empty());
    }

    #[test]
    fn sub_prefix_names_the_identity_provider() {
        let identity = IdentityMapping {
            headers: vec![mapping("x-auth-provider", provider_source())],
            ..Default::default()
        };
        for (sub, expected) in [
            ("google-oauth2|1", "google"),
            ("apple|x", "apple"),
            ("auth0|abc", "database"),
            ("samlp|x", "other"),
            ("plain", "other"),
        ] {
            let set = identity.headers_to_set(&claims(json!({"sub": sub}))).0;
            assert_eq!(
                set,
                vec![("x-auth-provider".into(), expected.into())],
                "{sub}"
            );
        }
    }

    #[test]
    fn header_injection_and_oversized_values_are_skipped() {
        let identity = IdentityMapping {
            headers: vec![mapping("x-e", claim("e")), mapping("x-l", claim("l"))],
            ..Default::default()
        };
        let (set, skipped) = identity.headers_to_set(&claims(json!({
            "e": "a\r\nx-admin: true", "l": "x".repeat(MAX_HEADER_VALUE_BYTES + 1)
        })));
        assert!(set.is_empty());
        assert_eq!(skipped.len(), 2);
    }

    #[test]
    fn spoofed_headers_are_listed_for_removal() {
        let identity = IdentityMapping {
            headers: vec![mapping("x-id", claim("sub"))],
            strip_headers: vec!["x-customer-id".into()],
            strip_prefixes: vec!["x-user-".into(), "x-auth-".into()],
        };
        let headers = crate::request::header_pairs(&[
            (":path", "/"),
            ("X-User-Email", "evil@example.com"),
            ("x-auth-provider", "google"),
            ("x-other", "kept"),
            ("X-Id", "spoofed"),
            ("x-customer-id", "c"),
            ("x-user-email", "again"),
        ]);
        let remove = identity.headers_to_remove(&RequestView::new(&headers));
        assert_eq!(
            remove,
            vec!["x-user-email", "x-auth-provider", "x-id", "x-customer-id"]
        );
    }

    #[test]
    fn identity_headers_spelled_with_underscores_are_removed_too() {
        let identity = IdentityMapping {
            headers: vec![mapping("x-user-id", claim("sub"))],
            strip_headers: vec!["x-customer-id".into()],
            strip_prefixes: vec!["x-auth-".into()],
        };
        let headers = crate::request::header_pairs(&[
            ("x_user_id", "auth0|ceo"),
            ("X_Customer-Id", "c"),
            ("x_auth_anything", "1"),
            ("x_other", "kept"),
            ("x-userid", "kept"),
        ]);
        let remove = identity.headers_to_remove(&RequestView::new(&headers));
        assert_eq!(
            remove,
            vec!["x_user_id", "x_customer-id", "x_auth_anything"]
        );
    }

    #[test]
    fn a_tier_header_carries_only_a_spelling_of_its_list_and_else_the_default() {
        let tier = |default: &str| IdentityMapping {
            headers: vec![mapping(
                "x-loyalty-tier",
                ValueSource::Tier {
                    claim: ClaimPath::single("tier"),
                    list: vec!["Bronze".into(), "Silver".into(), "Gold".into()],
                    default: default.into(),
                },
            )],
            ..IdentityMapping::default()
        };
        let header = |identity: &IdentityMapping, claims_json: Value| {
            let (set, skipped) = identity.headers_to_set(&claims(claims_json));
            assert!(skipped.is_empty());
            set.into_iter().map(|(_, value)| value).collect::<Vec<_>>()
        };
        let lowest = tier("Bronze");
        assert_eq!(header(&lowest, json!({"tier": "Gold"})), ["Gold"]);
        for escape in [
            json!({}),
            json!({"tier": null}),
            json!({"tier": "Diamond"}),
            json!({"tier": "gold"}),
            json!({"tier": "GOLD"}),
            json!({"tier": " Gold"}),
            json!({"tier": ""}),
            json!({"tier": ["Gold"]}),
            json!({"tier": ["Gold", "Silver"]}),
            json!({"tier": {"name": "Gold"}}),
            json!({"tier": 3}),
            json!({"tier": true}),
        ] {
            assert_eq!(header(&lowest, escape.clone()), ["Bronze"], "{escape}");
        }
        assert_eq!(
            header(&tier("Silver"), json!({"tier": "Diamond"})),
            ["Silver"]
        );
    }
}
