//! Explaining a decision: the one-line JSON for access logs, the full JSON
//! `claimgate eval` prints, and the dry-run report.

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{Decision, Denial, LocalReply, Outcome};

impl Decision {
    /// Why, in short, as one line of JSON: status, rule, reason, failed condition and
    /// dry-run verdict (for access logs; never sent to the client). Serialized straight
    /// from borrowed fields: it is written on every request.
    pub fn explanation(&self) -> String {
        #[derive(Serialize)]
        struct Explanation<'a> {
            status: u16,
            rule: Option<&'a str>,
            reason: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            failed_condition: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            dry_run: Option<&'a DryRunReport>,
        }
        serde_json::to_string(&Explanation {
            status: self.status(),
            rule: self.rule.as_deref(),
            reason: &self.reason,
            failed_condition: self.failed_condition.as_deref(),
            dry_run: self.dry_run.as_ref(),
        })
        .unwrap_or_default()
    }

    /// The decision as JSON, the shape `claimgate eval` prints.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        let mut put = |name: &str, value: Value| {
            out.insert(name.to_owned(), value);
        };
        put("allowed", Value::from(self.is_allowed()));
        put("status", Value::from(self.status()));
        put("rule", json!(self.rule));
        put("reason", Value::from(self.reason.as_str()));
        put("failed_condition", json!(self.failed_condition));
        put("provider", json!(self.provider));
        put("subject", json!(self.subject));
        put("remove_headers", json!(self.remove_headers));
        match &self.outcome {
            Outcome::Allow(allowed) => put("set_headers", pairs_json(allowed.set_headers())),
            Outcome::Deny(Denial { headers, body, .. })
            | Outcome::Reply(LocalReply { headers, body, .. }) => {
                put("response_headers", pairs_json(headers));
                put("response_body", Value::from(body.clone()));
            }
        }
        if let Some(dry_run) = &self.dry_run {
            put("dry_run", dry_run.to_json());
        }
        if !self.skipped_headers.is_empty() {
            put(
                "skipped_headers",
                self.skipped_headers
                    .iter()
                    .map(|skip| json!({"header": skip.header, "reason": skip.reason}))
                    .collect(),
            );
        }
        Value::Object(out)
    }
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    pairs
        .iter()
        .map(|(name, value)| json!([name, value]))
        .collect()
}

/// What the dry-run rules would have done: logged and counted, never enforced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRunReport {
    /// The dry-run rules that matched.
    pub rules: Vec<String>,
    /// The status the request would have had.
    pub status: u16,
    pub rule: Option<String>,
    pub reason: String,
}

impl DryRunReport {
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}
