//! Conditions: an operand, an operator and (for most operators) a second operand, combined
//! with `all`, `any` and `not`. Operands read the verified claims, the request, the
//! route's path captures, constants and the clock.
//!
//! This module is the language only: what a compiled condition is and how it reads.
//! Evaluation is in [`super::eval`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::{Cidr, ClaimPath, TierList};

/// A request attribute a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestAttribute {
    Method,
    /// The canonical path rules match against, without the query string.
    Path,
    /// The `:authority` without port, lowercase.
    Host,
    Scheme,
    /// The downstream peer's IP address as Envoy reports it (`source.address`), without port.
    ClientAddress,
}

impl RequestAttribute {
    pub const NAMES: [&'static str; 5] = ["method", "path", "host", "scheme", "client_address"];

    pub fn from_name(name: &str) -> Option<RequestAttribute> {
        Some(match name {
            "method" => RequestAttribute::Method,
            "path" => RequestAttribute::Path,
            "host" => RequestAttribute::Host,
            "scheme" => RequestAttribute::Scheme,
            "client_address" => RequestAttribute::ClientAddress,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            RequestAttribute::Method => "method",
            RequestAttribute::Path => "path",
            RequestAttribute::Host => "host",
            RequestAttribute::Scheme => "scheme",
            RequestAttribute::ClientAddress => "client_address",
        }
    }
}

/// Something a condition reads.
#[derive(Debug, Clone)]
pub enum Operand {
    /// A claim; `slot` indexes the policy's table of distinct claim paths, so each path is
    /// resolved at most once per request however many conditions read it.
    Claim {
        slot: usize,
        path: ClaimPath,
    },
    /// A request header (lowercase name). Missing when absent, repeated or not UTF-8.
    Header(String),
    /// A query parameter, percent-decoded. Missing when absent or repeated.
    Query(String),
    /// A named capture of the rule's path template; `index` is its position.
    Capture {
        index: usize,
        name: String,
    },
    Request(RequestAttribute),
    /// The host clock in Unix seconds, plus `offset` seconds.
    Now {
        offset: i64,
    },
    Constant(Value),
}

impl Operand {
    /// True when the value is the same for every request on one route with one token:
    /// a claim, a capture of the path, the method, host or path, or a constant. Not a
    /// header, a query parameter, the scheme, the client address or the clock.
    pub fn reads_only_route_or_token(&self) -> bool {
        match self {
            Operand::Claim { .. } | Operand::Capture { .. } | Operand::Constant(_) => true,
            Operand::Request(attribute) => match attribute {
                RequestAttribute::Method | RequestAttribute::Path | RequestAttribute::Host => true,
                RequestAttribute::Scheme | RequestAttribute::ClientAddress => false,
            },
            Operand::Header(_) | Operand::Query(_) | Operand::Now { .. } => false,
        }
    }

    /// True when the value comes from the request as text (a header or a capture holding
    /// `42` may be compared with the number 42).
    pub fn is_request_text(&self) -> bool {
        matches!(
            self,
            Operand::Header(_) | Operand::Query(_) | Operand::Capture { .. } | Operand::Request(_)
        )
    }
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Claim { path, .. } => write!(f, "claim {path}"),
            Operand::Header(name) => write!(f, "header {name}"),
            Operand::Query(name) => write!(f, "query parameter {name}"),
            Operand::Capture { name, .. } => write!(f, "path capture {name}"),
            Operand::Request(attribute) => write!(f, "request {}", attribute.name()),
            Operand::Now { offset: 0 } => f.write_str("now"),
            Operand::Now { offset } if *offset > 0 => write!(f, "now + {offset}s"),
            Operand::Now { offset } => write!(f, "now - {}s", offset.unsigned_abs()),
            Operand::Constant(value) => write!(f, "{value}"),
        }
    }
}

/// Which side of an ordering a comparison accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub(super) fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Comparison::Less => ordering == Ordering::Less,
            Comparison::LessOrEqual => ordering != Ordering::Greater,
            Comparison::Greater => ordering == Ordering::Greater,
            Comparison::GreaterOrEqual => ordering != Ordering::Less,
        }
    }
}

/// Every operator a condition may name: what it is, the key it is written with, what
/// its argument must be, and how it reads in explanations. The one list of operators: the
/// compiler, the error messages, `Display` and the schema test all read it.
pub const OPERATORS: [OperatorSpec; 20] = [
    spec(
        OperatorKind::Equals,
        "equals",
        ArgumentKind::Comparand,
        "equals",
    ),
    spec(
        OperatorKind::NotEquals,
        "not_equals",
        ArgumentKind::Comparand,
        "does not equal",
    ),
    spec(OperatorKind::In, "in", ArgumentKind::List, "is in"),
    spec(OperatorKind::OneOf, "one_of", ArgumentKind::List, "is in"),
    spec(
        OperatorKind::NotIn,
        "not_in",
        ArgumentKind::List,
        "is not in",
    ),
    spec(
        OperatorKind::Contains,
        "contains",
        ArgumentKind::Single,
        "contains",
    ),
    spec(
        OperatorKind::ContainsAny,
        "contains_any",
        ArgumentKind::List,
        "contains any of",
    ),
    spec(
        OperatorKind::ContainsAll,
        "contains_all",
        ArgumentKind::List,
        "contains all of",
    ),
    spec(
        OperatorKind::Prefix,
        "prefix",
        ArgumentKind::Text,
        "starts with",
    ),
    spec(
        OperatorKind::Suffix,
        "suffix",
        ArgumentKind::Text,
        "ends with",
    ),
    spec(
        OperatorKind::Regex,
        "regex",
        ArgumentKind::Pattern,
        "matches regex",
    ),
    spec(
        OperatorKind::LessThan,
        "less_than",
        ArgumentKind::Quantity,
        "is less than",
    ),
    spec(
        OperatorKind::LessOrEqual,
        "less_or_equal",
        ArgumentKind::Quantity,
        "is at most",
    ),
    spec(
        OperatorKind::GreaterThan,
        "greater_than",
        ArgumentKind::Quantity,
        "is greater than",
    ),
    spec(
        OperatorKind::GreaterOrEqual,
        "greater_or_equal",
        ArgumentKind::Quantity,
        "is at least",
    ),
    spec(
        OperatorKind::AtLeast,
        "at_least",
        ArgumentKind::Tier,
        "is at least",
    ),
    spec(
        OperatorKind::AtMost,
        "at_most",
        ArgumentKind::Tier,
        "is at most",
    ),
    spec(
        OperatorKind::InCidr,
        "in_cidr",
        ArgumentKind::Networks,
        "is in network",
    ),
    spec(
        OperatorKind::Present,
        "present",
        ArgumentKind::Flag,
        "is present",
    ),
    spec(
        OperatorKind::Absent,
        "absent",
        ArgumentKind::Flag,
        "is absent",
    ),
];

/// [`OPERATORS`] lists every [`OperatorKind`] once, at the kind's own index (what
/// [`OperatorKind::spec`] reads): checked when the crate is built.
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an index out of range fails the build, not a request"
)]
const _: () = {
    assert!(OPERATORS.len() == OperatorKind::Absent as usize + 1);
    let mut index = 0;
    while index < OPERATORS.len() {
        assert!(OPERATORS[index].kind as usize == index);
        index += 1;
    }
};

/// The operator names in table order, for messages.
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an index out of range fails the build, not a request"
)]
pub const OPERATOR_NAMES: [&str; OPERATORS.len()] = {
    let mut names = [""; OPERATORS.len()];
    let mut index = 0;
    while index < OPERATORS.len() {
        names[index] = OPERATORS[index].name;
        index += 1;
    }
    names
};

const fn spec(
    kind: OperatorKind,
    name: &'static str,
    argument: ArgumentKind,
    phrase: &'static str,
) -> OperatorSpec {
    OperatorSpec {
        kind,
        name,
        argument,
        phrase,
    }
}

/// One row of [`OPERATORS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OperatorSpec {
    pub kind: OperatorKind,
    /// The key a condition writes it with.
    pub name: &'static str,
    pub argument: ArgumentKind,
    /// How it reads between the operand and the argument in explanations.
    pub phrase: &'static str,
}

/// Which operator a condition names (`one_of` is `in` by another name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperatorKind {
    Equals,
    NotEquals,
    In,
    OneOf,
    NotIn,
    Contains,
    ContainsAny,
    ContainsAll,
    Prefix,
    Suffix,
    Regex,
    LessThan,
    LessOrEqual,
    GreaterThan,
    GreaterOrEqual,
    AtLeast,
    AtMost,
    InCidr,
    Present,
    Absent,
}

/// What an operator's argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgumentKind {
    /// Anything equality can compare (numbers only when the operand is `now`).
    Comparand,
    /// A non-empty list.
    List,
    /// One value, not a list or object.
    Single,
    /// A string.
    Text,
    /// A number or an RFC 3339 time.
    Quantity,
    /// A regex string.
    Pattern,
    /// A tier name, with the tier list in `tiers`.
    Tier,
    /// A network or a non-empty list of networks.
    Networks,
    /// `true` (`present: false` also means absent).
    Flag,
}

impl OperatorKind {
    /// The operator written `name`, if any.
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        OPERATORS
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec.kind)
    }

    /// This operator's row of [`OPERATORS`], which lists the kinds in declaration order
    /// (a const assertion beside the table fails the build otherwise).
    #[expect(
        clippy::indexing_slicing,
        reason = "OPERATORS has one row per kind at the kind's own index, checked at compile time"
    )]
    pub fn spec(self) -> &'static OperatorSpec {
        &OPERATORS[self as usize]
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// What a condition asks of its operand.
#[derive(Debug, Clone)]
pub enum Operator {
    Equals(Operand),
    NotEquals(Operand),
    In(Operand),
    NotIn(Operand),
    /// An array holding the value, or a space-delimited string (`scope`) holding it as a word.
    Contains(Operand),
    ContainsAny(Operand),
    ContainsAll(Operand),
    Prefix(Operand),
    Suffix(Operand),
    /// Must match the whole value (anchored when compiled).
    Regex {
        pattern: String,
        regex: regex_lite::Regex,
    },
    /// Numbers, or times (Unix seconds or RFC 3339 text).
    Compare(Comparison, Operand),
    /// At or above `value` on a named ordered list (its rank precomputed).
    AtLeast {
        tiers: Arc<TierList>,
        value: String,
        rank: usize,
    },
    /// At or below `value` on a named ordered list.
    AtMost {
        tiers: Arc<TierList>,
        value: String,
        rank: usize,
    },
    InCidr(Vec<Cidr>),
    Present,
    Absent,
}

impl Operator {
    /// Which operator this is, for its row of [`OPERATORS`].
    pub fn kind(&self) -> OperatorKind {
        match self {
            Operator::Equals(_) => OperatorKind::Equals,
            Operator::NotEquals(_) => OperatorKind::NotEquals,
            Operator::In(_) => OperatorKind::In,
            Operator::NotIn(_) => OperatorKind::NotIn,
            Operator::Contains(_) => OperatorKind::Contains,
            Operator::ContainsAny(_) => OperatorKind::ContainsAny,
            Operator::ContainsAll(_) => OperatorKind::ContainsAll,
            Operator::Prefix(_) => OperatorKind::Prefix,
            Operator::Suffix(_) => OperatorKind::Suffix,
            Operator::Regex { .. } => OperatorKind::Regex,
            Operator::Compare(Comparison::Less, _) => OperatorKind::LessThan,
            Operator::Compare(Comparison::LessOrEqual, _) => OperatorKind::LessOrEqual,
            Operator::Compare(Comparison::Greater, _) => OperatorKind::GreaterThan,
            Operator::Compare(Comparison::GreaterOrEqual, _) => OperatorKind::GreaterOrEqual,
            Operator::AtLeast { .. } => OperatorKind::AtLeast,
            Operator::AtMost { .. } => OperatorKind::AtMost,
            Operator::InCidr(_) => OperatorKind::InCidr,
            Operator::Present => OperatorKind::Present,
            Operator::Absent => OperatorKind::Absent,
        }
    }

    /// The second operand, for operators that compare with one.
    pub fn argument(&self) -> Option<&Operand> {
        match self {
            Operator::Equals(right)
            | Operator::NotEquals(right)
            | Operator::In(right)
            | Operator::NotIn(right)
            | Operator::Contains(right)
            | Operator::ContainsAny(right)
            | Operator::ContainsAll(right)
            | Operator::Prefix(right)
            | Operator::Suffix(right)
            | Operator::Compare(_, right) => Some(right),
            _ => None,
        }
    }
}

/// One operand tested by one operator.
#[derive(Debug, Clone)]
pub struct Test {
    pub operand: Operand,
    pub operator: Operator,
}

impl Test {
    /// Both operands read only the route and the token
    /// ([`Operand::reads_only_route_or_token`]).
    pub fn reads_only_route_or_token(&self) -> bool {
        self.operand.reads_only_route_or_token()
            && self
                .operator
                .argument()
                .is_none_or(Operand::reads_only_route_or_token)
    }
}

/// A condition tree.
#[derive(Debug, Clone)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Test(Test),
}

impl fmt::Display for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operand = &self.operand;
        let phrase = self.operator.kind().spec().phrase;
        match &self.operator {
            Operator::Regex { pattern, .. } => write!(f, "{operand} {phrase} {pattern:?}"),
            Operator::AtLeast { tiers, value, .. } | Operator::AtMost { tiers, value, .. } => {
                write!(f, "{operand} {phrase} {value} on tiers '{}'", tiers.name)
            }
            Operator::InCidr(networks) => {
                let list: Vec<String> = networks.iter().map(ToString::to_string).collect();
                write!(f, "{operand} {phrase} {}", list.join(", "))
            }
            Operator::Present | Operator::Absent => write!(f, "{operand} {phrase}"),
            other => match other.argument() {
                Some(right) => write!(f, "{operand} {phrase} {right}"),
                None => write!(f, "{operand} {phrase}"),
            },
        }
    }
}

impl Condition {
    /// Every operand the condition reads (for compile-time checks and lints).
    pub fn tests(&self) -> Vec<&Test> {
        let mut found = Vec::new();
        let mut stack = vec![self];
        while let Some(condition) = stack.pop() {
            match condition {
                Condition::All(parts) | Condition::Any(parts) => stack.extend(parts.iter().rev()),
                Condition::Not(inner) => stack.push(inner),
                Condition::Test(test) => found.push(test),
            }
        }
        found
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut fmt::Formatter<'_>, parts: &[Condition], word: &str| {
            for (index, part) in parts.iter().enumerate() {
                if index > 0 {
                    write!(f, " {word} ")?;
                }
                match part {
                    Condition::Test(_) | Condition::Not(_) => write!(f, "{part}")?,
                    _ => write!(f, "({part})")?,
                }
            }
            Ok(())
        };
        match self {
            Condition::All(parts) => joined(f, parts, "and"),
            Condition::Any(parts) => joined(f, parts, "or"),
            Condition::Not(inner) => write!(f, "not ({inner})"),
            Condition::Test(test) => write!(f, "{test}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_has_one_row_and_one_name() {
        for (index, spec) in OPERATORS.iter().enumerate() {
            assert_eq!(OperatorKind::from_name(spec.name), Some(spec.kind));
            assert_eq!(spec.kind.spec(), spec, "{}", spec.name);
            assert_eq!(OPERATOR_NAMES[index], spec.name);
            assert!(
                !OPERATORS[..index]
                    .iter()
                    .any(|earlier| earlier.kind == spec.kind || earlier.name == spec.name),
                "{} listed twice",
                spec.name
            );
        }
    }

    #[test]
    fn the_schema_lists_exactly_the_operators() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../filter-config/claimgate.schema.json"))
                .unwrap();
        let test = &schema["$defs"]["test"];
        let alternatives = test["allOf"][1]["oneOf"].as_array().unwrap();
        let in_schema: Vec<&str> = alternatives
            .iter()
            .map(|one| one["required"][0].as_str().unwrap())
            .collect();
        assert_eq!(in_schema, OPERATOR_NAMES.to_vec());
        for name in OPERATOR_NAMES {
            assert!(test["properties"].get(name).is_some(), "{name}");
        }
    }
}
