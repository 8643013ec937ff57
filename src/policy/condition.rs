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

    fn text(self) -> &'static str {
        match self {
            Comparison::Less => "is less than",
            Comparison::LessOrEqual => "is at most",
            Comparison::Greater => "is greater than",
            Comparison::GreaterOrEqual => "is at least",
        }
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

/// One operand tested by one operator.
#[derive(Debug, Clone)]
pub struct Test {
    pub operand: Operand,
    pub operator: Operator,
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
        match &self.operator {
            Operator::Equals(right) => write!(f, "{operand} equals {right}"),
            Operator::NotEquals(right) => write!(f, "{operand} does not equal {right}"),
            Operator::In(list) => write!(f, "{operand} is in {list}"),
            Operator::NotIn(list) => write!(f, "{operand} is not in {list}"),
            Operator::Contains(right) => write!(f, "{operand} contains {right}"),
            Operator::ContainsAny(list) => write!(f, "{operand} contains any of {list}"),
            Operator::ContainsAll(list) => write!(f, "{operand} contains all of {list}"),
            Operator::Prefix(right) => write!(f, "{operand} starts with {right}"),
            Operator::Suffix(right) => write!(f, "{operand} ends with {right}"),
            Operator::Regex { pattern, .. } => write!(f, "{operand} matches regex {pattern:?}"),
            Operator::Compare(comparison, right) => {
                write!(f, "{operand} {} {right}", comparison.text())
            }
            Operator::AtLeast { tiers, value, .. } => {
                write!(f, "{operand} is at least {value} on tiers '{}'", tiers.name)
            }
            Operator::AtMost { tiers, value, .. } => {
                write!(f, "{operand} is at most {value} on tiers '{}'", tiers.name)
            }
            Operator::InCidr(networks) => {
                let list: Vec<String> = networks.iter().map(ToString::to_string).collect();
                write!(f, "{operand} is in network {}", list.join(", "))
            }
            Operator::Present => write!(f, "{operand} is present"),
            Operator::Absent => write!(f, "{operand} is absent"),
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
