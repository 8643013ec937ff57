//! The decision: one pure function from (compiled config, request, keys, now) to what
//! Envoy must do. Envoy, the CLI, the tests and the benches all call [`decide`].

use serde_json::{json, Value};

use crate::config::{Config, DefaultAccess};
use crate::identity::SkippedHeader;
use crate::jwks::KeyRing;
use crate::policy::{first_failure, Access};
use crate::request::{canonical_path, RequestView};
use crate::token::{find_token, verify, FoundToken, TokenError, TokenLocation, VerifiedToken};

/// A response Envoy sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward upstream after removing [`Decision::remove_headers`] and then setting these.
    Allow {
        set_headers: Vec<(String, String)>,
    },
    Deny(Denial),
}

/// What to do with one request, and why.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    /// The rule that decided; `None` for the default access or a refusal before rules.
    pub rule: Option<String>,
    /// Why, for logs and `claimgate eval` (may name claims; never sent to the client).
    pub reason: String,
    pub provider: Option<String>,
    pub subject: Option<String>,
    /// Removed from every request, allowed or not, before anything is set.
    pub remove_headers: Vec<String>,
    /// Identity headers that could not be written, and why.
    pub skipped_headers: Vec<SkippedHeader>,
}

impl Decision {
    pub fn status(&self) -> u16 {
        match &self.outcome {
            Outcome::Allow { .. } => 200,
            Outcome::Deny(denial) => denial.status,
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allow { .. })
    }

    /// The decision as JSON, the shape `claimgate eval` prints.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "allowed": self.is_allowed(),
            "status": self.status(),
            "rule": self.rule,
            "reason": self.reason,
            "provider": self.provider,
            "subject": self.subject,
            "remove_headers": self.remove_headers,
        });
        match &self.outcome {
            Outcome::Allow { set_headers } => {
                out["set_headers"] = pairs_json(set_headers);
            }
            Outcome::Deny(denial) => {
                out["response_headers"] = pairs_json(&denial.headers);
                out["response_body"] = Value::from(denial.body.clone());
            }
        }
        if !self.skipped_headers.is_empty() {
            out["skipped_headers"] = self
                .skipped_headers
                .iter()
                .map(|skip| json!({"header": skip.header, "reason": skip.reason}))
                .collect();
        }
        out
    }
}

fn pairs_json(pairs: &[(String, String)]) -> Value {
    pairs
        .iter()
        .map(|(name, value)| json!([name, value]))
        .collect()
}

/// The kinds of refusal, each with its status and RFC 6750 error code.
enum Refusal {
    BadRequest(String),
    NoToken,
    BadToken(TokenError),
    Forbidden(&'static str),
}

fn denial(config: &Config, refusal: &Refusal) -> Denial {
    let (status, error, description): (u16, Option<&str>, &str) = match refusal {
        Refusal::BadRequest(description) => (400, Some("invalid_request"), description.as_str()),
        Refusal::NoToken => (401, None, "an access token is required"),
        Refusal::BadToken(err) if err.status() == 503 => {
            (503, Some("temporarily_unavailable"), err.description())
        }
        Refusal::BadToken(err) => (401, Some("invalid_token"), err.description()),
        Refusal::Forbidden(description) => (403, Some("insufficient_scope"), description),
    };
    let mut challenge = format!("Bearer realm=\"{}\"", config.realm);
    if let Some(error) = error {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ));
    }
    let mut headers = vec![
        ("www-authenticate".to_owned(), challenge),
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cache-control".to_owned(), "no-store".to_owned()),
    ];
    if status == 503 {
        headers.push(("retry-after".to_owned(), "5".to_owned()));
    }
    let body = json!({
        "error": error.unwrap_or("unauthorized"),
        "error_description": description,
    })
    .to_string();
    Denial {
        status,
        headers,
        body,
    }
}

/// Decides one request. `now` is Unix seconds from the host clock.
pub fn decide(config: &Config, keys: &KeyRing, request: &RequestView<'_>, now: i64) -> Decision {
    let mut decision = Decision {
        outcome: Outcome::Allow {
            set_headers: Vec::new(),
        },
        rule: None,
        reason: String::new(),
        provider: None,
        subject: None,
        remove_headers: config.identity.headers_to_remove(request),
        skipped_headers: Vec::new(),
    };
    let deny = |mut decision: Decision, refusal: Refusal, reason: String| {
        decision.outcome = Outcome::Deny(denial(config, &refusal));
        decision.reason = reason;
        decision
    };

    let path = match canonical_path(request.raw_path()) {
        Ok(path) => path,
        Err(err) => {
            return deny(
                decision,
                Refusal::BadRequest(err.to_string()),
                err.to_string(),
            )
        }
    };
    let method = request.method();
    let rule = config.rules.iter().find(|rule| rule.matches(method, &path));
    decision.rule = rule.map(|rule| rule.name.clone());

    let found = match find_token(&config.locations, request) {
        Ok(found) => found,
        Err(err) => {
            let reason = err.to_string();
            return deny(decision, Refusal::BadToken(err), reason);
        }
    };
    let verified = match &found {
        None => None,
        Some(found) => match verify(found, &config.providers, |index| keys.get(index), now) {
            Ok(verified) => Some(verified),
            Err(err) => {
                let reason = format!("token refused: {err}");
                return deny(decision, Refusal::BadToken(err), reason);
            }
        },
    };
    if let Some(verified) = &verified {
        if let Some(provider) = config.providers.get(verified.provider) {
            decision.provider = Some(provider.name.clone());
        }
        decision.subject = verified
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }

    let access = match rule {
        Some(rule) => &rule.access,
        None => match config.default_access {
            DefaultAccess::Deny => &Access::Deny,
            DefaultAccess::Authenticated => &Access::Authenticated,
            DefaultAccess::Public => &Access::Public,
        },
    };
    let scope = rule.map_or_else(
        || "default access".to_owned(),
        |rule| format!("rule '{}'", rule.name),
    );
    match (access, &verified) {
        (Access::Deny, _) => {
            let reason = match rule {
                Some(_) => format!("{scope} denies this request"),
                None => "no rule matches this request".to_owned(),
            };
            return deny(
                decision,
                Refusal::Forbidden("access to this resource is not allowed"),
                reason,
            );
        }
        (Access::Public, _) => {}
        (Access::Authenticated | Access::Require(_), None) => {
            return deny(
                decision,
                Refusal::NoToken,
                format!("{scope} requires a token"),
            );
        }
        (Access::Authenticated | Access::Require(_), Some(verified)) => {
            if let Some(rule) = rule.filter(|rule| !rule.accepts_provider(verified.provider)) {
                let reason = format!(
                    "rule '{}' does not accept tokens from provider {}",
                    rule.name,
                    decision.provider.as_deref().unwrap_or("?")
                );
                return deny(
                    decision,
                    Refusal::BadToken(TokenError::ProviderNotAccepted),
                    reason,
                );
            }
            if let Access::Require(conditions) = access {
                if let Some(failed) = first_failure(conditions, &verified.claims) {
                    let reason = format!("{scope}: {}", failed.describe());
                    return deny(
                        decision,
                        Refusal::Forbidden("the token does not grant access to this resource"),
                        reason,
                    );
                }
            }
        }
    }

    let mut set_headers = Vec::new();
    if let (Some(verified), Some(found)) = (&verified, &found) {
        let (set, skipped) = config.identity.headers_to_set(&verified.claims);
        set_headers = set;
        decision.skipped_headers = skipped;
        strip_token(
            config,
            verified,
            found,
            request,
            &mut decision.remove_headers,
            &mut set_headers,
        );
    }
    decision.reason = match (&verified, rule) {
        (Some(_), Some(rule)) => format!("allowed by rule '{}'", rule.name),
        (None, Some(rule)) => format!("rule '{}' is public", rule.name),
        (_, None) => "allowed by the default access".to_owned(),
    };
    decision.outcome = Outcome::Allow { set_headers };
    decision
}

/// When the provider does not forward its token, removes it from wherever it was found.
fn strip_token(
    config: &Config,
    verified: &VerifiedToken,
    found: &FoundToken,
    request: &RequestView<'_>,
    remove: &mut Vec<String>,
    set: &mut Vec<(String, String)>,
) {
    let Some(provider) = config.providers.get(verified.provider) else {
        return;
    };
    if provider.forward_token {
        return;
    }
    for location in found
        .locations
        .iter()
        .filter_map(|index| config.locations.get(*index))
    {
        match location {
            TokenLocation::Header { name, .. } => {
                if !remove.contains(name) {
                    remove.push(name.clone());
                }
            }
            TokenLocation::Query { name } => {
                let raw = request.raw_path();
                if let Some((path, query)) = raw.split_once('?') {
                    let kept: Vec<&str> = query
                        .split('&')
                        .filter(|pair| {
                            let key = pair.split_once('=').map_or(*pair, |(key, _)| key);
                            crate::request::percent_decode(key).as_deref() != Some(name.as_str())
                        })
                        .collect();
                    let rewritten = if kept.is_empty() {
                        path.to_owned()
                    } else {
                        format!("{path}?{}", kept.join("&"))
                    };
                    set.push((":path".to_owned(), rewritten));
                }
            }
            TokenLocation::Cookie { name } => {
                let kept: Vec<&str> = request
                    .header_values("cookie")
                    .filter_map(|value| std::str::from_utf8(value).ok())
                    .flat_map(|line| line.split(';'))
                    .map(str::trim)
                    .filter(|pair| {
                        !pair.is_empty()
                            && pair
                                .split_once('=')
                                .is_none_or(|(key, _)| key.trim() != name)
                    })
                    .collect();
                if !remove.iter().any(|known| known == "cookie") {
                    remove.push("cookie".to_owned());
                }
                if !kept.is_empty() {
                    set.push(("cookie".to_owned(), kept.join("; ")));
                }
            }
        }
    }
}
