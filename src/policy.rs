//! Route rules and claim requirements: which rule a request falls under, and whether its
//! verified claims satisfy it.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// Verified token claims (the JSON payload object).
pub type Claims = Map<String, Value>;

/// A claim name or a nested path. Names are exact strings, so URL-namespaced claims
/// (`https://aethermarket.com/loyalty_tier`) need no escaping; nested objects are a list
/// of segments, and a segment that is a number indexes into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub fn resolve<'c>(&self, claims: &'c Claims) -> Option<&'c Value> {
        let (first, rest) = self.segments.split_first()?;
        let mut value = claims.get(first)?;
        for segment in rest {
            value = match value {
                Value::Object(object) => object.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
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

/// A named, ordered list of values, lowest first (e.g. loyalty tiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierList {
    pub name: String,
    pub values: Vec<String>,
}

impl TierList {
    pub fn rank(&self, value: &str) -> Option<usize> {
        self.values.iter().position(|tier| tier == value)
    }
}

/// What a claim must satisfy.
#[derive(Debug, Clone)]
pub enum ClaimTest {
    Equals(Value),
    OneOf(Vec<Value>),
    /// An array claim holding the value, or a space-delimited string (`scope`) holding it
    /// as one of its words.
    Contains(Value),
    /// At or above `minimum` on the tier list (rank of `minimum` precomputed).
    AtLeast {
        tiers: Arc<TierList>,
        minimum: String,
        minimum_rank: usize,
    },
    Present(bool),
}

/// One claim requirement of a rule.
#[derive(Debug, Clone)]
pub struct Condition {
    pub claim: ClaimPath,
    pub test: ClaimTest,
}

impl Condition {
    pub fn holds(&self, claims: &Claims) -> bool {
        let value = self.claim.resolve(claims);
        match (&self.test, value) {
            (ClaimTest::Present(expected), value) => value.is_some() == *expected,
            (_, None) => false,
            (ClaimTest::Equals(expected), Some(value)) => json_equal(value, expected),
            (ClaimTest::OneOf(options), Some(value)) => {
                options.iter().any(|option| json_equal(value, option))
            }
            (ClaimTest::Contains(needle), Some(Value::Array(items))) => {
                items.iter().any(|item| json_equal(item, needle))
            }
            (ClaimTest::Contains(Value::String(needle)), Some(Value::String(words))) => {
                words.split_ascii_whitespace().any(|word| word == needle)
            }
            (ClaimTest::Contains(_), Some(_)) => false,
            (
                ClaimTest::AtLeast {
                    tiers,
                    minimum_rank,
                    ..
                },
                Some(Value::String(value)),
            ) => tiers.rank(value).is_some_and(|rank| rank >= *minimum_rank),
            (ClaimTest::AtLeast { .. }, Some(_)) => false,
        }
    }

    /// A human explanation of what this condition requires (for logs and `eval`).
    pub fn describe(&self) -> String {
        let claim = &self.claim;
        match &self.test {
            ClaimTest::Equals(value) => format!("claim {claim} must equal {value}"),
            ClaimTest::OneOf(values) => {
                format!(
                    "claim {claim} must be one of {}",
                    Value::from(values.clone())
                )
            }
            ClaimTest::Contains(value) => format!("claim {claim} must contain {value}"),
            ClaimTest::AtLeast { tiers, minimum, .. } => {
                format!(
                    "claim {claim} must be at least {minimum} on tiers '{}'",
                    tiers.name
                )
            }
            ClaimTest::Present(true) => format!("claim {claim} must be present"),
            ClaimTest::Present(false) => format!("claim {claim} must be absent"),
        }
    }
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => a.as_f64() == b.as_f64(),
        },
        _ => left == right,
    }
}

/// How a rule matches the request path.
#[derive(Debug, Clone)]
pub enum PathMatch {
    Any,
    Exact(String),
    /// Segment-aware prefix: `/admin` matches `/admin` and `/admin/...`, not `/administrator`.
    Prefix(String),
    Template(PathTemplate),
    Regex(regex_lite::Regex),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => {
                prefix == "/"
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Template(template) => template.matches(path),
            PathMatch::Regex(regex) => regex.is_match(path),
        }
    }
}

impl fmt::Display for PathMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathMatch::Any => f.write_str("any path"),
            PathMatch::Exact(exact) => write!(f, "path {exact}"),
            PathMatch::Prefix(prefix) => write!(f, "prefix {prefix}"),
            PathMatch::Template(template) => write!(f, "template {template}"),
            PathMatch::Regex(regex) => write!(f, "regex {}", regex.as_str()),
        }
    }
}

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    Literal(String),
    /// `{name}` or `*`: exactly one non-empty segment.
    Capture(Option<String>),
    /// `**` at the end: any rest, including nothing.
    Rest,
}

/// A path template such as `/users/{user_id}/orders` or `/files/**`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<TemplateSegment>,
}

impl PathTemplate {
    /// Parses a template; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<PathTemplate, String> {
        let rest = template
            .strip_prefix('/')
            .ok_or_else(|| "a template must start with '/'".to_string())?;
        let mut segments = Vec::new();
        let parts: Vec<&str> = rest.split('/').collect();
        for (index, part) in parts.iter().enumerate() {
            let segment = if *part == "**" {
                if index + 1 != parts.len() {
                    return Err("'**' may only be the last segment".into());
                }
                TemplateSegment::Rest
            } else if *part == "*" {
                TemplateSegment::Capture(None)
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "capture '{{{name}}}' must be a name of letters, digits and '_'"
                    ));
                }
                TemplateSegment::Capture(Some(name.to_owned()))
            } else if part.contains(['{', '}', '*']) {
                return Err(format!(
                    "segment '{part}' mixes text with '{{', '}}' or '*'; use a regex instead"
                ));
            } else {
                TemplateSegment::Literal((*part).to_owned())
            };
            segments.push(segment);
        }
        Ok(PathTemplate { segments })
    }

    pub fn matches(&self, path: &str) -> bool {
        self.captures(path).is_some()
    }

    /// The named captures when `path` matches.
    pub fn captures<'p>(&self, path: &'p str) -> Option<Vec<(&str, &'p str)>> {
        let rest = path.strip_prefix('/')?;
        let mut parts = rest.split('/');
        let mut captures = Vec::new();
        for segment in &self.segments {
            match segment {
                TemplateSegment::Rest => return Some(captures),
                TemplateSegment::Literal(literal) => {
                    if parts.next()? != literal {
                        return None;
                    }
                }
                TemplateSegment::Capture(name) => {
                    let part = parts.next().filter(|part| !part.is_empty())?;
                    if let Some(name) = name {
                        captures.push((name.as_str(), part));
                    }
                }
            }
        }
        parts.next().is_none().then_some(captures)
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                TemplateSegment::Literal(text) => write!(f, "/{text}")?,
                TemplateSegment::Capture(Some(name)) => write!(f, "/{{{name}}}")?,
                TemplateSegment::Capture(None) => f.write_str("/*")?,
                TemplateSegment::Rest => f.write_str("/**")?,
            }
        }
        Ok(())
    }
}

/// What a matched rule asks of the request.
#[derive(Debug, Clone)]
pub enum Access {
    /// No token needed; a token that is present must still be valid.
    Public,
    /// Any valid token.
    Authenticated,
    /// A valid token whose claims satisfy every condition.
    Require(Vec<Condition>),
    /// Never allowed.
    Deny,
}

/// A route rule: the first rule whose match fits the request decides.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub path: PathMatch,
    /// Upper-case methods; empty means any method.
    pub methods: Vec<String>,
    pub access: Access,
    /// Indices of the providers whose tokens this rule accepts; empty means any.
    pub providers: Vec<usize>,
}

impl Rule {
    pub fn matches(&self, method: &str, path: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && self.path.matches(path)
    }

    pub fn accepts_provider(&self, provider: usize) -> bool {
        self.providers.is_empty() || self.providers.contains(&provider)
    }
}

/// The first failing condition, if any.
pub fn first_failure<'r>(conditions: &'r [Condition], claims: &Claims) -> Option<&'r Condition> {
    conditions.iter().find(|condition| !condition.holds(claims))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            _ => panic!("claims must be an object"),
        }
    }

    fn tiers() -> Arc<TierList> {
        Arc::new(TierList {
            name: "loyalty".into(),
            values: ["Bronze", "Silver", "Gold", "Platinum"]
                .map(String::from)
                .to_vec(),
        })
    }

    fn cond(claim: &str, test: ClaimTest) -> Condition {
        Condition {
            claim: ClaimPath::single(claim),
            test,
        }
    }

    #[test]
    fn url_named_and_nested_claims_resolve() {
        let c = claims(json!({
            "https://aethermarket.com/loyalty_tier": "Gold",
            "address": {"country": "DE", "lines": ["a", "b"]}
        }));
        assert_eq!(
            ClaimPath::single("https://aethermarket.com/loyalty_tier").resolve(&c),
            Some(&json!("Gold"))
        );
        let nested = ClaimPath::new(vec!["address".into(), "country".into()]);
        assert_eq!(nested.resolve(&c), Some(&json!("DE")));
        let element = ClaimPath::new(vec!["address".into(), "lines".into(), "1".into()]);
        assert_eq!(element.resolve(&c), Some(&json!("b")));
        let missing = ClaimPath::new(vec!["address".into(), "lines".into(), "9".into()]);
        assert_eq!(missing.resolve(&c), None);
        assert_eq!(ClaimPath::new(vec![]).resolve(&c), None);
    }

    #[test]
    fn at_least_follows_the_tier_order() {
        let gold = ClaimTest::AtLeast {
            tiers: tiers(),
            minimum: "Gold".into(),
            minimum_rank: 2,
        };
        let condition = cond("tier", gold);
        assert!(condition.holds(&claims(json!({"tier": "Gold"}))));
        assert!(condition.holds(&claims(json!({"tier": "Platinum"}))));
        assert!(!condition.holds(&claims(json!({"tier": "Silver"}))));
        assert!(!condition.holds(&claims(json!({"tier": "gold"}))));
        assert!(!condition.holds(&claims(json!({"tier": ["Gold"]}))));
        assert!(!condition.holds(&claims(json!({}))));
    }

    #[test]
    fn contains_reads_arrays_and_space_delimited_scopes() {
        let condition = cond("scope", ClaimTest::Contains(json!("orders:write")));
        assert!(condition.holds(&claims(json!({"scope": "openid orders:write profile"}))));
        assert!(!condition.holds(&claims(json!({"scope": "openid orders:writer"}))));
        assert!(condition.holds(&claims(json!({"scope": ["orders:write"]}))));
        assert!(!condition.holds(&claims(json!({"scope": []}))));
        assert!(!condition.holds(&claims(json!({"scope": 5}))));
        assert!(!condition.holds(&claims(json!({}))));
    }

    #[test]
    fn equals_and_one_of_compare_numbers_by_value() {
        let condition = cond("n", ClaimTest::Equals(json!(1)));
        assert!(condition.holds(&claims(json!({"n": 1.0}))));
        assert!(!condition.holds(&claims(json!({"n": "1"}))));
        let region = cond("r", ClaimTest::OneOf(vec![json!("EU"), json!("UK")]));
        assert!(region.holds(&claims(json!({"r": "UK"}))));
        assert!(!region.holds(&claims(json!({"r": "US"}))));
        assert!(!region.holds(&claims(json!({}))));
    }

    #[test]
    fn present_and_absent() {
        let present = cond("email", ClaimTest::Present(true));
        let absent = cond("email", ClaimTest::Present(false));
        let with = claims(json!({"email": null}));
        assert!(present.holds(&with));
        assert!(!absent.holds(&with));
        assert!(absent.holds(&claims(json!({}))));
    }

    #[test]
    fn prefix_matches_whole_segments_only() {
        let prefix = PathMatch::Prefix("/admin".into());
        assert!(prefix.matches("/admin"));
        assert!(prefix.matches("/admin/users"));
        assert!(!prefix.matches("/administrator"));
        assert!(PathMatch::Prefix("/".into()).matches("/anything"));
    }

    #[test]
    fn templates_capture_segments() {
        let template = PathTemplate::parse("/users/{user_id}/orders").unwrap();
        assert_eq!(
            template.captures("/users/auth0|42/orders"),
            Some(vec![("user_id", "auth0|42")])
        );
        assert!(!template.matches("/users//orders"));
        assert!(!template.matches("/users/1/orders/2"));
        assert_eq!(template.to_string(), "/users/{user_id}/orders");
        let rest = PathTemplate::parse("/files/*/**").unwrap();
        assert_eq!(rest.to_string(), "/files/*/**");
        assert!(rest.matches("/files/a"));
        assert!(rest.matches("/files/a/b/c"));
        assert!(!rest.matches("/files"));
        assert!(PathTemplate::parse("/a/**/b").is_err());
        assert!(PathTemplate::parse("/a/{}").is_err());
        assert!(PathTemplate::parse("/a/x{y}").is_err());
        assert!(PathTemplate::parse("a").is_err());
    }

    #[test]
    fn rules_match_methods_and_paths() {
        let rule = Rule {
            name: "r".into(),
            path: PathMatch::Exact("/orders".into()),
            methods: vec!["POST".into()],
            access: Access::Authenticated,
            providers: vec![],
        };
        assert!(rule.matches("POST", "/orders"));
        assert!(!rule.matches("GET", "/orders"));
        assert!(!rule.matches("POST", "/orders/1"));
        assert!(rule.accepts_provider(3));
    }
}
