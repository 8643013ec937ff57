//! Step-up authentication (RFC 9470): what an allow rule demands of *how* the user signed
//! in — an `acr` (authentication context class) at least some level, or one of a list, and
//! an `auth_time` no older than some number of seconds — and the challenge a client gets
//! when its token falls short, so it can send the user back to the identity provider.

use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use super::facts::Facts;
use super::{Claims, TierList};
use crate::time::UnixSeconds;
use std::sync::Arc;

/// `step_up` of a rule, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStepUp {
    #[serde(default)]
    pub(super) acr_at_least: Option<String>,
    #[serde(default)]
    pub(super) tiers: Option<String>,
    #[serde(default)]
    pub(super) acr_in: Option<Vec<String>>,
    #[serde(default)]
    pub(super) max_age_seconds: Option<u32>,
}

/// Which `acr` values a rule accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcrRequirement {
    /// At or above this value on an ordered list (`tiers`).
    AtLeast {
        tiers: Arc<TierList>,
        /// Position of the lowest accepted value in `tiers`.
        rank: usize,
    },
    /// One of these values.
    OneOf(Vec<String>),
}

impl AcrRequirement {
    fn accepts(&self, acr: &str) -> bool {
        match self {
            AcrRequirement::AtLeast { tiers, rank } => {
                tiers.rank(acr).is_some_and(|found| found >= *rank)
            }
            AcrRequirement::OneOf(values) => values.iter().any(|value| value == acr),
        }
    }

    /// The accepted values, best first: RFC 9470's `acr_values` lists them in order of
    /// preference.
    fn accepted_values(&self) -> Vec<&str> {
        match self {
            AcrRequirement::AtLeast { tiers, rank } => tiers
                .values
                .iter()
                .skip(*rank)
                .rev()
                .map(String::as_str)
                .collect(),
            AcrRequirement::OneOf(values) => values.iter().map(String::as_str).collect(),
        }
    }
}

/// What a rule demands of the authentication event behind a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    pub acr: Option<AcrRequirement>,
    /// `auth_time` must be at most this many seconds before now.
    pub max_age_seconds: Option<i64>,
}

/// The `WWW-Authenticate` parameters of an RFC 9470 `insufficient_user_authentication`
/// challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpChallenge {
    /// Space-separated `acr` values, in order of preference.
    pub acr_values: Option<String>,
    pub max_age: Option<i64>,
}

impl StepUp {
    /// Compiles `step_up`; `tiers` are the policy's tier lists. Errors are
    /// `(field, message)` relative to the `step_up` object.
    pub(crate) fn compile(
        raw: RawStepUp,
        tiers: &[Arc<TierList>],
    ) -> Result<StepUp, (&'static str, String)> {
        let acr = match (raw.acr_at_least, raw.tiers, raw.acr_in) {
            (Some(level), Some(list), None) => {
                let tiers = tiers
                    .iter()
                    .find(|known| known.name == list)
                    .ok_or_else(|| ("tiers", format!("no tier list named '{list}'")))?;
                let rank = tiers.rank(&level).ok_or_else(|| {
                    (
                        "acr_at_least",
                        format!(
                            "'{level}' is not in tier list '{list}' ({})",
                            tiers.values.join(" < ")
                        ),
                    )
                })?;
                Some(AcrRequirement::AtLeast {
                    tiers: Arc::clone(tiers),
                    rank,
                })
            }
            (Some(_), None, _) => {
                return Err((
                    "acr_at_least",
                    "needs \"tiers\": the ordered list of acr values it is compared on".into(),
                ))
            }
            (None, Some(_), _) => {
                return Err(("tiers", "only goes with \"acr_at_least\"".into()));
            }
            (Some(_), Some(_), Some(_)) => {
                return Err((
                    "acr_in",
                    "give \"acr_at_least\" (with \"tiers\") or \"acr_in\", not both".into(),
                ))
            }
            (None, None, Some(values)) => {
                if values.is_empty() || values.iter().any(|value| !is_acr_value(value)) {
                    return Err((
                        "acr_in",
                        "list at least one acr value, each without spaces, quotes or backslashes"
                            .into(),
                    ));
                }
                Some(AcrRequirement::OneOf(values))
            }
            (None, None, None) => None,
        };
        if let Some(AcrRequirement::AtLeast { tiers, .. }) = &acr {
            if !tiers.values.iter().all(|value| is_acr_value(value)) {
                return Err((
                    "tiers",
                    "acr values go into a challenge: no spaces, quotes or backslashes".into(),
                ));
            }
        }
        if raw.max_age_seconds == Some(0) {
            return Err(("max_age_seconds", "must be positive".into()));
        }
        if acr.is_none() && raw.max_age_seconds.is_none() {
            return Err((
                "",
                "give \"acr_at_least\" with \"tiers\", \"acr_in\" or \"max_age_seconds\"".into(),
            ));
        }
        Ok(StepUp {
            acr,
            max_age_seconds: raw.max_age_seconds.map(i64::from),
        })
    }

    /// Whether the token's `acr` and `auth_time` satisfy the rule; a missing or mistyped
    /// claim does not.
    pub fn holds(&self, facts: &Facts<'_>) -> bool {
        self.first_failure(facts).is_none()
    }

    /// What the token lacks, for explanations; `None` when it satisfies the rule.
    pub fn first_failure(&self, facts: &Facts<'_>) -> Option<String> {
        self.failure(facts.claims, facts.now, facts.clock_skew_seconds)
    }

    /// `auth_time` must be a number of seconds no later than now (plus the provider's
    /// clock skew): a future one would make any `max_age` hold (a negative age).
    fn failure(&self, claims: Option<&Claims>, now: UnixSeconds, skew: i64) -> Option<String> {
        let now = now.0;
        let acr = claims
            .and_then(|claims| claims.get("acr"))
            .and_then(Value::as_str);
        if let Some(requirement) = &self.acr {
            if !acr.is_some_and(|acr| requirement.accepts(acr)) {
                return Some(format!(
                    "acr {} (token: {})",
                    requirement,
                    acr.map_or_else(|| "none".to_owned(), |acr| format!("'{acr}'"))
                ));
            }
        }
        if let Some(max_age) = self.max_age_seconds {
            let auth_time = claims
                .and_then(|claims| claims.get("auth_time"))
                .and_then(Value::as_f64)
                .filter(|seconds| seconds.is_finite());
            let age = auth_time.map(|auth_time| now as f64 - auth_time);
            if age.is_some_and(|age| age < -(skew as f64)) {
                return Some(format!(
                    "auth_time within the last {max_age} s (token: auth_time in the future)"
                ));
            }
            if !age.is_some_and(|age| age <= max_age as f64) {
                return Some(format!(
                    "auth_time within the last {max_age} s (token: {})",
                    age.map_or_else(
                        || "no auth_time".to_owned(),
                        |age| format!("{} s ago", age.floor())
                    )
                ));
            }
        }
        None
    }

    /// The challenge parameters that tell the client what would satisfy the rule.
    pub fn challenge(&self) -> StepUpChallenge {
        StepUpChallenge {
            acr_values: self.acr.as_ref().map(|acr| acr.accepted_values().join(" ")),
            max_age: self.max_age_seconds,
        }
    }
}

impl fmt::Display for AcrRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcrRequirement::AtLeast { tiers, rank } => write!(
                f,
                "at least '{}' on {}",
                tiers.values.get(*rank).map_or("?", String::as_str),
                tiers.name
            ),
            AcrRequirement::OneOf(values) => write!(f, "one of {}", values.join(", ")),
        }
    }
}

impl fmt::Display for StepUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(acr) = &self.acr {
            parts.push(format!("acr {acr}"));
        }
        if let Some(max_age) = self.max_age_seconds {
            parts.push(format!("auth_time within {max_age} s"));
        }
        write!(f, "step-up: {}", parts.join(" and "))
    }
}

/// An `acr` value that can stand in a challenge's quoted, space-separated `acr_values`.
fn is_acr_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The rule's verdict with a provider skew of 60 s.
    fn holds(rule: &StepUp, claims: Option<&Claims>, now: i64) -> bool {
        failure(rule, claims, now).is_none()
    }

    fn failure(rule: &StepUp, claims: Option<&Claims>, now: i64) -> Option<String> {
        rule.failure(claims, UnixSeconds(now), 60)
    }

    #[test]
    fn rfc9470_a_future_auth_time_never_satisfies_max_age() {
        let rule = step_up(json!({"max_age_seconds": 600})).unwrap();
        let now = 1_800_000_000_i64;
        // Within the provider's clock skew: a client clock a little ahead.
        assert!(holds(
            &rule,
            Some(&claims(json!({"auth_time": now + 60}))),
            now
        ));
        for future in [
            json!(now + 61),
            json!(now + 86_400),
            json!(now + 10 * 365 * 86_400),
            json!(1e300),
            json!(f64::MAX),
            json!(i64::MAX),
            json!(u64::MAX),
        ] {
            assert_eq!(
                failure(&rule, Some(&claims(json!({"auth_time": future}))), now).as_deref(),
                Some("auth_time within the last 600 s (token: auth_time in the future)"),
                "{future}"
            );
        }
        // Not a number of seconds, or too old: refused too.
        for bad in [
            json!("1800000000"),
            json!([now]),
            json!({"t": now}),
            json!(null),
            json!(true),
            json!(-1),
            json!(i64::MIN),
            json!(-1e300),
        ] {
            assert!(
                !holds(&rule, Some(&claims(json!({"auth_time": bad}))), now),
                "{bad}"
            );
        }
    }

    fn assurance() -> Vec<Arc<TierList>> {
        vec![Arc::new(TierList {
            name: "assurance".into(),
            values: vec!["pwd".into(), "mfa".into(), "phr".into()],
        })]
    }

    fn step_up(raw: Value) -> Result<StepUp, (&'static str, String)> {
        StepUp::compile(serde_json::from_value(raw).unwrap(), &assurance())
    }

    fn claims(value: Value) -> Claims {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn acr_at_least_accepts_that_level_and_above_and_nothing_unknown() {
        let rule = step_up(json!({"acr_at_least": "mfa", "tiers": "assurance"})).unwrap();
        for (acr, holds) in [
            (json!("pwd"), false),
            (json!("mfa"), true),
            (json!("phr"), true),
            (json!("MFA"), false),
            (json!(2), false),
            // Issue 19's attack round: empty, array, object, null, bool, padded.
            (json!(""), false),
            (json!(["mfa"]), false),
            (json!({"value": "mfa"}), false),
            (json!(null), false),
            (json!(true), false),
            (json!(" mfa"), false),
            (json!("mfa "), false),
        ] {
            assert_eq!(
                super::tests::holds(&rule, Some(&claims(json!({"acr": acr}))), 0),
                holds,
                "{acr}"
            );
        }
        assert!(!holds(&rule, Some(&claims(json!({}))), 0));
        assert!(!holds(&rule, None, 0));
        assert_eq!(rule.challenge().acr_values.as_deref(), Some("phr mfa"));
    }

    #[test]
    fn max_age_needs_a_recent_auth_time() {
        let rule = step_up(json!({"max_age_seconds": 600})).unwrap();
        let now = 1_800_000_000;
        assert!(holds(
            &rule,
            Some(&claims(json!({"auth_time": now - 600}))),
            now
        ));
        assert!(holds(
            &rule,
            Some(&claims(json!({"auth_time": now as f64 - 10.5}))),
            now
        ));
        assert!(!holds(
            &rule,
            Some(&claims(json!({"auth_time": now - 601}))),
            now
        ));
        assert!(!holds(
            &rule,
            Some(&claims(json!({"auth_time": "recent"}))),
            now
        ));
        assert!(!holds(&rule, Some(&claims(json!({}))), now));
        assert_eq!(
            failure(&rule, Some(&claims(json!({"auth_time": now - 700}))), now).unwrap(),
            "auth_time within the last 600 s (token: 700 s ago)"
        );
        assert_eq!(
            rule.challenge(),
            StepUpChallenge {
                acr_values: None,
                max_age: Some(600)
            }
        );
    }

    #[test]
    fn mistakes_name_the_field() {
        for (raw, field) in [
            (json!({}), ""),
            (json!({"acr_at_least": "mfa"}), "acr_at_least"),
            (
                json!({"acr_at_least": "otp", "tiers": "assurance"}),
                "acr_at_least",
            ),
            (json!({"acr_at_least": "mfa", "tiers": "loyalty"}), "tiers"),
            (json!({"tiers": "assurance"}), "tiers"),
            (json!({"acr_in": []}), "acr_in"),
            (json!({"acr_in": ["a b"]}), "acr_in"),
            (json!({"max_age_seconds": 0}), "max_age_seconds"),
        ] {
            assert_eq!(step_up(raw.clone()).unwrap_err().0, field, "{raw}");
        }
    }
}
