//! Which rules a request falls under: path forms, methods and hosts, and the index that
//! keeps route selection proportional to the path's depth rather than the rule count.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// How a rule matches the request path.
#[derive(Debug, Clone)]
pub enum PathMatch {
    Any,
    Exact(String),
    /// Segment-aware prefix: `/admin` matches `/admin` and `/admin/...`, not `/administrator`.
    Prefix(String),
    Template(PathTemplate),
    /// A regex that must match the whole path (anchored at load).
    Regex(regex_lite::Regex),
}

impl PathMatch {
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => prefix_covers(prefix, path),
            PathMatch::Template(template) => template.matches(path),
            PathMatch::Regex(regex) => regex.is_match(path),
        }
    }

    /// The literal leading segments every matching path starts with (for the index).
    fn literal_segments(&self) -> Vec<&str> {
        match self {
            PathMatch::Any | PathMatch::Regex(_) => Vec::new(),
            PathMatch::Exact(path) => path_segments(path).collect(),
            PathMatch::Prefix(prefix) if prefix == "/" => Vec::new(),
            PathMatch::Prefix(prefix) => path_segments(prefix).collect(),
            PathMatch::Template(template) => template
                .segments
                .iter()
                .map_while(|segment| match segment {
                    TemplateSegment::Literal(text) => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// True when `self` matches every path `narrower` matches (for shadowing warnings).
    /// Conservative: `false` when unsure.
    pub fn covers(&self, narrower: &PathMatch) -> bool {
        match (self, narrower) {
            (PathMatch::Any, _) => true,
            (_, PathMatch::Any) => false,
            (PathMatch::Prefix(prefix), PathMatch::Exact(path) | PathMatch::Prefix(path)) => {
                prefix_covers(prefix, path)
            }
            (PathMatch::Prefix(prefix), PathMatch::Template(template)) => {
                let literal = narrower.literal_segments();
                let wanted: Vec<&str> = path_segments(prefix).collect();
                prefix == "/"
                    || (literal.len() >= wanted.len()
                        && literal.iter().zip(&wanted).all(|(a, b)| a == b)
                        && template.segments.len() >= wanted.len())
            }
            (PathMatch::Exact(a), PathMatch::Exact(b)) => a == b,
            (PathMatch::Template(template), PathMatch::Exact(path)) => template.matches(path),
            (PathMatch::Template(a), PathMatch::Template(b)) => a == b,
            (PathMatch::Regex(a), PathMatch::Regex(b)) => a.as_str() == b.as_str(),
            (PathMatch::Regex(regex), PathMatch::Exact(path)) => regex.is_match(path),
            _ => false,
        }
    }
}

fn prefix_covers(prefix: &str, path: &str) -> bool {
    prefix == "/"
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The segments of an absolute path: `/a/b` → `a`, `b`; `/` → one empty segment.
fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').skip(1)
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
                if segments
                    .iter()
                    .any(|known| *known == TemplateSegment::Capture(Some(name.to_owned())))
                {
                    return Err(format!("capture '{{{name}}}' appears twice"));
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

    /// The names of the captures, in the order [`PathTemplate::captures`] returns them.
    pub fn capture_names(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|segment| match segment {
            TemplateSegment::Capture(Some(name)) => Some(name.as_str()),
            _ => None,
        })
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

/// A host a rule applies to: `api.example.com`, or `*.example.com` for any subdomain.
/// Compared case-insensitively, without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The text after `*`, starting with a dot.
    AnySubdomain(String),
}

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<HostPattern, String> {
        let lower = pattern.to_ascii_lowercase();
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !valid {
            return Err(format!(
                "'{pattern}' is not a host name (letters, digits, '-' and dots; '*.' may lead)"
            ));
        }
        Ok(if wildcard {
            HostPattern::AnySubdomain(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_owned())
        })
    }

    /// `host` must already be lowercase and without its port (see [`request_host`]).
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(name) => host == name,
            HostPattern::AnySubdomain(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
        }
    }

    fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::AnySubdomain(_), HostPattern::Exact(name)) => self.matches(name),
            (HostPattern::AnySubdomain(a), HostPattern::AnySubdomain(b)) => {
                a == b || b.ends_with(a.as_str())
            }
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::AnySubdomain(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The `:authority` as rules see it: lowercase, without port or trailing dot. Borrowed
/// when it is lowercase already, as clients send it.
pub fn request_host(authority: &str) -> Cow<'_, str> {
    let without_port = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority, |(address, _)| address)
            .trim_start_matches('[')
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
    };
    let host = without_port.trim_end_matches('.');
    if host.bytes().any(|byte| byte.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The part of a rule that selects requests.
#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Upper-case methods; empty means any method.
    pub methods: Vec<String>,
    /// Empty means any host.
    pub hosts: Vec<HostPattern>,
}

impl RouteMatch {
    pub fn any() -> RouteMatch {
        RouteMatch {
            path: PathMatch::Any,
            methods: Vec::new(),
            hosts: Vec::new(),
        }
    }

    /// Whether the request falls under this match; `host` as [`request_host`] gives it.
    pub fn matches(&self, method: &str, host: &str, path: &str) -> bool {
        self.captures(method, host, path).is_some()
    }

    /// When the request falls under this match: the template's captures in order (empty
    /// for other path forms).
    pub fn captures<'p>(&self, method: &str, host: &str, path: &'p str) -> Option<Vec<&'p str>> {
        if !(self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            || !(self.hosts.is_empty() || self.hosts.iter().any(|h| h.matches(host)))
        {
            return None;
        }
        match &self.path {
            PathMatch::Template(template) => template
                .captures(path)
                .map(|found| found.into_iter().map(|(_, value)| value).collect()),
            other => other.matches(path).then(Vec::new),
        }
    }

    /// True when every request `narrower` matches, `self` matches too.
    pub fn covers(&self, narrower: &RouteMatch) -> bool {
        let methods = self.methods.is_empty()
            || (!narrower.methods.is_empty()
                && narrower.methods.iter().all(|m| self.methods.contains(m)));
        let hosts = self.hosts.is_empty()
            || (!narrower.hosts.is_empty()
                && narrower
                    .hosts
                    .iter()
                    .all(|h| self.hosts.iter().any(|mine| mine.covers(h))));
        methods && hosts && self.path.covers(&narrower.path)
    }
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.methods.is_empty() {
            write!(f, "{} ", self.methods.join("|"))?;
        }
        write!(f, "{}", self.path)?;
        if !self.hosts.is_empty() {
            let hosts: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
            write!(f, " on {}", hosts.join("|"))?;
        }
        Ok(())
    }
}

/// A tree of literal path segments. Each rule hangs at the node of the literal segments
/// every path it matches starts with, so a lookup walks the request path once and only
/// looks at the rules on that walk, however many rules the policy has.
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    nodes: Vec<IndexNode>,
}

#[derive(Debug, Clone, Default)]
struct IndexNode {
    children: HashMap<String, usize>,
    rules: Vec<usize>,
}

impl RouteIndex {
    /// Indexes `paths`, the path match of rule 0, 1, ... in order.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a PathMatch>) -> RouteIndex {
        let mut index = RouteIndex {
            nodes: vec![IndexNode::default()],
        };
        for (rule, path) in paths.into_iter().enumerate() {
            let mut node = 0;
            for segment in path.literal_segments() {
                let existing = index
                    .nodes
                    .get(node)
                    .and_then(|current| current.children.get(segment).copied());
                node = match existing {
                    Some(child) => child,
                    None => {
                        let child = index.nodes.len();
                        index.nodes.push(IndexNode::default());
                        if let Some(current) = index.nodes.get_mut(node) {
                            current.children.insert(segment.to_owned(), child);
                        }
                        child
                    }
                };
            }
            if let Some(current) = index.nodes.get_mut(node) {
                current.rules.push(rule);
            }
        }
        index
    }

    /// The rules that may match `path`, in rule order. Each still needs its full match.
    pub fn candidates(&self, path: &str, into: &mut Vec<usize>) {
        into.clear();
        let Some(mut node) = self.nodes.first() else {
            return;
        };
        into.extend_from_slice(&node.rules);
        for segment in path_segments(path) {
            match node
                .children
                .get(segment)
                .and_then(|child| self.nodes.get(*child))
            {
                Some(child) => {
                    node = child;
                    into.extend_from_slice(&node.rules);
                }
                None => break,
            }
        }
        into.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regex(pattern: &str) -> PathMatch {
        PathMatch::Regex(regex_lite::Regex::new(&format!("^(?:{pattern})$")).unwrap())
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
        assert_eq!(template.capture_names().collect::<Vec<_>>(), ["user_id"]);
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
        assert!(PathTemplate::parse("/a/{x}/{x}").is_err());
        assert!(PathTemplate::parse("a").is_err());
    }

    #[test]
    fn hosts_match_exactly_or_by_subdomain_without_port() {
        let exact = HostPattern::parse("API.example.com").unwrap();
        let any = HostPattern::parse("*.example.com").unwrap();
        assert!(exact.matches(&request_host("api.Example.com:8443")));
        assert!(!exact.matches(&request_host("evil-api.example.com")));
        assert!(any.matches(&request_host("shop.example.com")));
        assert!(!any.matches(&request_host("example.com")));
        assert!(!any.matches(&request_host("shop.example.com.evil.net")));
        assert_eq!(request_host("[::1]:8080"), "::1");
        assert_eq!(request_host("example.com."), "example.com");
        assert!(HostPattern::parse("a..b").is_err());
        assert!(HostPattern::parse("*").is_err());
        assert!(HostPattern::parse("a b").is_err());
    }

    #[test]
    fn routes_match_methods_hosts_and_paths() {
        let route = RouteMatch {
            path: PathMatch::Exact("/orders".into()),
            methods: vec!["POST".into()],
            hosts: vec![HostPattern::parse("api.example.com").unwrap()],
        };
        assert!(route.matches("POST", "api.example.com", "/orders"));
        assert!(!route.matches("GET", "api.example.com", "/orders"));
        assert!(!route.matches("POST", "other.example.com", "/orders"));
        assert!(!route.matches("POST", "api.example.com", "/orders/1"));
        assert_eq!(route.to_string(), "POST path /orders on api.example.com");
    }

    #[test]
    fn coverage_is_conservative() {
        let admin = RouteMatch {
            path: PathMatch::Prefix("/admin".into()),
            ..RouteMatch::any()
        };
        let admin_get = RouteMatch {
            path: PathMatch::Exact("/admin/users".into()),
            methods: vec!["GET".into()],
            hosts: vec![],
        };
        let users = RouteMatch {
            path: PathMatch::Template(PathTemplate::parse("/admin/users/{id}").unwrap()),
            ..RouteMatch::any()
        };
        assert!(admin.covers(&admin_get));
        assert!(admin.covers(&users));
        assert!(!admin_get.covers(&admin));
        assert!(RouteMatch::any().covers(&admin));
        assert!(!admin.covers(&RouteMatch::any()));
        let only_get = RouteMatch {
            methods: vec!["GET".into()],
            ..admin.clone()
        };
        assert!(!only_get.covers(&admin));
        assert!(!regex("/a.*").covers(&PathMatch::Prefix("/a".into())));
        assert!(regex("/a.*").covers(&PathMatch::Exact("/ab".into())));
    }

    #[test]
    fn the_index_returns_only_rules_on_the_path_in_order() {
        let paths = [
            PathMatch::Prefix("/admin".into()),
            PathMatch::Exact("/orders".into()),
            PathMatch::Any,
            PathMatch::Template(PathTemplate::parse("/users/{id}/orders").unwrap()),
            PathMatch::Template(PathTemplate::parse("/{tenant}/x").unwrap()),
            PathMatch::Exact("/".into()),
            PathMatch::Prefix("/admin/users".into()),
        ];
        let index = RouteIndex::new(&paths);
        let mut found = Vec::new();
        index.candidates("/admin/users/7", &mut found);
        assert_eq!(found, [0, 2, 4, 6]);
        index.candidates("/users/1/orders", &mut found);
        assert_eq!(found, [2, 3, 4]);
        index.candidates("/", &mut found);
        assert_eq!(found, [2, 4, 5]);
        index.candidates("/orders", &mut found);
        assert_eq!(found, [1, 2, 4]);
        // Every rule whose path matches is among the candidates (the matching rules are
        // spelled out, so the check cannot pass by matching nothing).
        for (request, matching) in [
            ("/admin/users/7", vec![0, 2, 6]),
            ("/users/1/orders", vec![2, 3]),
            ("/", vec![2, 5]),
            ("/orders", vec![1, 2]),
            ("/t/x", vec![2, 4]),
        ] {
            let matched: Vec<usize> = (0..paths.len())
                .filter(|rule| paths[*rule].matches(request))
                .collect();
            assert_eq!(matched, matching, "{request}");
            index.candidates(request, &mut found);
            for rule in matching {
                assert!(found.contains(&rule), "{} on {request}", paths[rule]);
            }
        }
    }
}
