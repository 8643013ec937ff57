//! The facts of one request a condition may read (claims resolved lazily, at most once
//! per path), and whether a condition holds over them: the typed comparison of JSON and
//! request text, and the operators' semantics. (How the rules' results combine into one
//! verdict is `verdict`.)

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;

use serde_json::Value;

use super::cidr::parse_address;
use super::{
    rfc3339_seconds, ClaimPath, Claims, Condition, Operand, Operator, RequestAttribute, Test,
    TokenFacts,
};
use crate::request::{percent_decode_segment, RequestView};
use crate::time::UnixSeconds;

/// Everything conditions may read for one request. Claim paths are resolved lazily and at
/// most once each.
pub struct Facts<'a> {
    pub claims: Option<&'a Claims>,
    claim_paths: &'a [ClaimPath],
    resolved: Vec<OnceCell<Option<Cow<'a, Value>>>>,
    pub request: RequestView<'a>,
    pub method: &'a str,
    pub path: &'a str,
    pub host: &'a str,
    pub client_address: Option<&'a str>,
    pub now: UnixSeconds,
    /// The token provider's clock skew (0 without a token).
    pub clock_skew_seconds: i64,
}

/// The parts of a request conditions read, besides the claims.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub request: RequestView<'a>,
    pub method: &'a str,
    /// Canonical path (see [`crate::request::canonical_path`]).
    pub path: &'a str,
    /// As [`super::request_host`] gives it.
    pub host: &'a str,
    /// The peer address as Envoy reports it (`ip:port` or `[ip]:port` accepted).
    pub client_address: Option<&'a str>,
    pub now: UnixSeconds,
}

impl<'a> Facts<'a> {
    pub fn new(
        request: RequestFacts<'a>,
        token: Option<TokenFacts<'a>>,
        claim_paths: &'a [ClaimPath],
    ) -> Facts<'a> {
        Facts {
            claims: token.map(|token| token.claims),
            clock_skew_seconds: token.map_or(0, |token| token.clock_skew_seconds),
            claim_paths,
            resolved: claim_paths.iter().map(|_| OnceCell::new()).collect(),
            request: request.request,
            method: request.method,
            path: request.path,
            host: request.host,
            client_address: request.client_address,
            now: request.now,
        }
    }

    fn claim(&self, slot: usize) -> Option<&Value> {
        let cell = self.resolved.get(slot)?;
        cell.get_or_init(|| {
            let claims = self.claims?;
            self.claim_paths.get(slot)?.resolve(claims)
        })
        .as_deref()
    }
}

/// A resolved operand: JSON, or text read from the request.
#[derive(Debug)]
enum Datum<'v> {
    Json(Cow<'v, Value>),
    Text(Cow<'v, str>),
}

impl Datum<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Datum::Json(value) => value.as_str(),
            Datum::Text(text) => Some(text),
        }
    }

    /// The value as a number or a point in time (Unix seconds): JSON numbers, RFC 3339
    /// strings, and request text holding either.
    fn as_quantity(&self) -> Option<Quantity> {
        match self {
            Datum::Json(value) => match value.as_ref() {
                Value::Number(number) => Quantity::of(number),
                Value::String(text) => rfc3339_seconds(text).map(Quantity::Int),
                _ => None,
            },
            Datum::Text(text) => {
                parse_number(text).or_else(|| rfc3339_seconds(text).map(Quantity::Int))
            }
        }
    }
}

/// A number that keeps integers exact.
#[derive(Debug, Clone, Copy)]
enum Quantity {
    Int(i64),
    Float(f64),
}

impl Quantity {
    fn of(number: &serde_json::Number) -> Option<Quantity> {
        number
            .as_i64()
            .map(Quantity::Int)
            .or_else(|| number.as_f64().map(Quantity::Float))
    }

    fn compare(self, other: Quantity) -> Option<Ordering> {
        match (self, other) {
            (Quantity::Int(a), Quantity::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Quantity::Int(value) => value as f64,
            Quantity::Float(value) => value,
        }
    }
}

fn parse_number(text: &str) -> Option<Quantity> {
    if let Ok(int) = text.parse::<i64>() {
        return Some(Quantity::Int(int));
    }
    text.parse::<f64>()
        .ok()
        .filter(|value| value.is_finite() && !text.contains(['i', 'I', 'n', 'N']))
        .map(Quantity::Float)
}

/// JSON equality where numbers compare by value (`1` equals `1.0`).
pub fn json_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => match (Quantity::of(a), Quantity::of(b)) {
            (Some(a), Some(b)) => a.compare(b) == Some(Ordering::Equal),
            _ => false,
        },
        _ => left == right,
    }
}

fn datum_equal(left: &Datum<'_>, right: &Datum<'_>) -> bool {
    match (left, right) {
        (Datum::Json(a), Datum::Json(b)) => json_equal(a, b),
        (Datum::Text(a), Datum::Text(b)) => a == b,
        (Datum::Text(text), Datum::Json(value)) | (Datum::Json(value), Datum::Text(text)) => {
            match value.as_ref() {
                Value::String(string) => string == text,
                // Only the number's own JSON spelling: "042", "+42", "4.2e1" or a digit
                // string that rounds to the same double are other values to an upstream
                // that reads the text (an id in a path), so they never equal 42.
                Value::Number(number) => number.to_string() == *text,
                Value::Bool(flag) => text == if *flag { "true" } else { "false" },
                _ => false,
            }
        }
    }
}

/// Whether `haystack` (an array, or a space-delimited string) holds `needle`.
fn datum_contains(haystack: &Datum<'_>, needle: &Datum<'_>) -> bool {
    match haystack {
        Datum::Json(value) => match value.as_ref() {
            Value::Array(items) => items
                .iter()
                .any(|item| datum_equal(&Datum::Json(Cow::Borrowed(item)), needle)),
            Value::String(words) => contains_word(words, needle),
            _ => false,
        },
        Datum::Text(words) => contains_word(words, needle),
    }
}

fn contains_word(words: &str, needle: &Datum<'_>) -> bool {
    needle
        .as_str()
        .is_some_and(|needle| words.split_ascii_whitespace().any(|word| word == needle))
}

/// Tests the items of a list operand: whether `every` (a non-empty list) or any item
/// passes; `None` when the operand is not a list.
fn each_item(list: &Datum<'_>, every: bool, test: impl Fn(&Datum<'_>) -> bool) -> Option<bool> {
    let items = match list {
        Datum::Json(value) => value.as_array()?,
        Datum::Text(_) => return None,
    };
    let mut results = items
        .iter()
        .map(|item| test(&Datum::Json(Cow::Borrowed(item))));
    Some(if every {
        !items.is_empty() && results.all(|passed| passed)
    } else {
        results.any(|passed| passed)
    })
}

impl Operand {
    fn resolve<'v>(&'v self, facts: &'v Facts<'_>, captures: &[&'v str]) -> Option<Datum<'v>> {
        match self {
            Operand::Claim { slot, .. } => {
                facts.claim(*slot).map(|v| Datum::Json(Cow::Borrowed(v)))
            }
            Operand::Header(name) => {
                let mut values = facts.request.header_values(name);
                let first = values.next()?;
                if values.next().is_some() {
                    return None;
                }
                std::str::from_utf8(first)
                    .ok()
                    .map(|text| Datum::Text(Cow::Borrowed(text)))
            }
            Operand::Query(name) => {
                let mut values = facts.request.query_values(name);
                if values.len() != 1 {
                    return None;
                }
                values.pop().map(|text| Datum::Text(Cow::Owned(text)))
            }
            // Captures compare decoded: `/users/auth0%7C42/orders` is user `auth0|42`.
            Operand::Capture { index, .. } => captures
                .get(*index)
                .and_then(|text| percent_decode_segment(text))
                .map(Datum::Text),
            Operand::Request(attribute) => {
                let text = match attribute {
                    RequestAttribute::Method => facts.method,
                    RequestAttribute::Path => facts.path,
                    RequestAttribute::Host => facts.host,
                    RequestAttribute::Scheme => facts.request.scheme()?.name(),
                    RequestAttribute::ClientAddress => {
                        return facts
                            .client_address
                            .and_then(parse_address)
                            .map(|address| Datum::Text(Cow::Owned(address.to_string())))
                    }
                };
                Some(Datum::Text(Cow::Borrowed(text)))
            }
            Operand::Now { offset } => Some(Datum::Json(Cow::Owned(Value::from(
                facts.now.saturating_add(*offset).0,
            )))),
            Operand::Constant(value) => Some(Datum::Json(Cow::Borrowed(value))),
        }
    }
}

impl Test {
    pub fn holds(&self, facts: &Facts<'_>, captures: &[&str]) -> bool {
        self.holds_with(facts, captures)
    }

    fn holds_with<'v>(&'v self, facts: &'v Facts<'_>, captures: &[&'v str]) -> bool {
        let value = self.operand.resolve(facts, captures);
        let (operator, value) = match (&self.operator, value) {
            (Operator::Present, value) => return value.is_some(),
            (Operator::Absent, value) => return value.is_none(),
            (_, None) => return false,
            (operator, Some(value)) => (operator, value),
        };
        let other = |operand: &'v Operand| operand.resolve(facts, captures);
        match operator {
            Operator::Equals(right) => other(right).is_some_and(|right| datum_equal(&value, &right)),
            Operator::NotEquals(right) => {
                other(right).is_some_and(|right| !datum_equal(&value, &right))
            }
            Operator::In(list) => {
                other(list).and_then(|list| each_item(&list, false, |item| datum_equal(&value, item)))
                    == Some(true)
            }
            Operator::NotIn(list) => {
                other(list).and_then(|list| each_item(&list, false, |item| datum_equal(&value, item)))
                    == Some(false)
            }
            Operator::Contains(needle) => {
                other(needle).is_some_and(|needle| datum_contains(&value, &needle))
            }
            Operator::ContainsAny(list) => {
                other(list).and_then(|list| each_item(&list, false, |item| datum_contains(&value, item)))
                    == Some(true)
            }
            Operator::ContainsAll(list) => {
                other(list).and_then(|list| each_item(&list, true, |item| datum_contains(&value, item)))
                    == Some(true)
            }
            Operator::Prefix(right) => other(right).is_some_and(|right| {
                matches!((value.as_str(), right.as_str()), (Some(text), Some(start)) if text.starts_with(start))
            }),
            Operator::Suffix(right) => other(right).is_some_and(|right| {
                matches!((value.as_str(), right.as_str()), (Some(text), Some(end)) if text.ends_with(end))
            }),
            Operator::Regex { regex, .. } => value.as_str().is_some_and(|text| regex.is_match(text)),
            Operator::Compare(comparison, right) => other(right).is_some_and(|right| {
                match (value.as_quantity(), right.as_quantity()) {
                    (Some(left), Some(right)) => left
                        .compare(right)
                        .is_some_and(|ordering| comparison.accepts(ordering)),
                    _ => false,
                }
            }),
            Operator::AtLeast { tiers, rank, .. } => value
                .as_str()
                .and_then(|text| tiers.rank(text))
                .is_some_and(|found| found >= *rank),
            Operator::AtMost { tiers, rank, .. } => value
                .as_str()
                .and_then(|text| tiers.rank(text))
                .is_some_and(|found| found <= *rank),
            Operator::InCidr(networks) => value
                .as_str()
                .and_then(parse_address)
                .is_some_and(|address| networks.iter().any(|network| network.contains(address))),
            Operator::Present | Operator::Absent => false,
        }
    }
}

impl Condition {
    pub fn holds(&self, facts: &Facts<'_>, captures: &[&str]) -> bool {
        match self {
            Condition::All(parts) => parts.iter().all(|part| part.holds(facts, captures)),
            Condition::Any(parts) => parts.iter().any(|part| part.holds(facts, captures)),
            Condition::Not(inner) => !inner.holds(facts, captures),
            Condition::Test(test) => test.holds(facts, captures),
        }
    }

    /// For a condition that does not hold: the part that made it fail, as a requirement.
    pub fn explain_failure(&self, facts: &Facts<'_>, captures: &[&str]) -> String {
        match self {
            Condition::All(parts) => parts
                .iter()
                .find(|part| !part.holds(facts, captures))
                .map_or_else(
                    || self.to_string(),
                    |part| part.explain_failure(facts, captures),
                ),
            Condition::Any(_) | Condition::Not(_) | Condition::Test(_) => self.to_string(),
        }
    }
}
