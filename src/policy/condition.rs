//! Conditions: an operand, an operator and (for most operators) a second operand, combined
//! with `all`, `any` and `not`. Operands read the verified claims, the request, the
//! route's path captures, constants and the clock.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::Value;

use super::{ClaimPath, Claims, TierList};
use crate::request::{percent_decode_segment, RequestView};

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
    fn accepts(self, ordering: Ordering) -> bool {
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

/// An IP network such as `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("'{text}' is not an IP address or network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max)
                .ok_or_else(|| format!("'{text}': the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr {
            network,
            prefix_len,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match (self.network, address) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            (_, address) => address,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
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
    pub now: i64,
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
    pub now: i64,
}

impl<'a> Facts<'a> {
    pub fn new(
        request: RequestFacts<'a>,
        claims: Option<&'a Claims>,
        claim_paths: &'a [ClaimPath],
    ) -> Facts<'a> {
        Facts {
            claims,
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

/// Unix seconds of an RFC 3339 date-time (`2026-11-25T10:00:00Z`, `...+01:00`, fractions
/// ignored); `None` for anything else.
pub fn rfc3339_seconds(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let separators_ok = bytes.get(4) == Some(&b'-')
        && bytes.get(7) == Some(&b'-')
        && matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        && bytes.get(13) == Some(&b':')
        && bytes.get(16) == Some(&b':');
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits_len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits_len == 0 {
            return None;
        }
        rest = fraction.get(digits_len..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && (zone.starts_with('+') || zone.starts_with('-')) => {
            if zone.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
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
                Value::Number(number) => match (parse_number(text), Quantity::of(number)) {
                    (Some(a), Some(b)) => a.compare(b) == Some(Ordering::Equal),
                    _ => false,
                },
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

/// The address part of `ip`, `ip:port` or `[ip]:port`.
fn parse_address(text: &str) -> Option<IpAddr> {
    if let Ok(address) = text.parse() {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    text.rsplit_once(':')?.0.parse().ok()
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
                    RequestAttribute::Scheme => facts.request.header_text(":scheme")?,
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
                facts.now.saturating_add(*offset),
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
