//! Carries a decision out on the effective request: the explanation for access logs, the
//! header edits of an allowed request, or the local response of a refused one. A request
//! whose identity headers could not be fixed is never forwarded.

use crate::decision::{Decision, Denial, LocalReply, Outcome};
use crate::request::{RequestView, SerializedHeaders};
use crate::token::find_token;

use crate::config::Config;

use super::filter_state::ExplanationMemo;
use super::host::{Flow, Host, HostResult};
use super::phase_timing::{self, Phase};
use super::stats::Stats;

/// What carrying out a decision needs of the plugin, and no more: taking these rather
/// than the whole plugin keeps this file below `plugin` in the import graph.
pub struct Effects<'p> {
    pub host: &'p dyn Host,
    pub config: &'p Config,
    pub stats: &'p Stats,
    /// The filter state of the last decision, reused when the next one says the same.
    pub explanations: &'p ExplanationMemo,
}

/// Where the request stands when the decision is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Inside the request-headers callback: returning `Continue` forwards it.
    Headers,
    /// Paused earlier (waiting for keys): forwarding needs an explicit resume.
    Paused,
}

/// Applies `decision` to the effective request, whose headers were `request`.
pub fn apply(
    effects: &Effects<'_>,
    decision: &Decision,
    request: &SerializedHeaders,
    stage: Stage,
) -> Flow {
    let host = effects.host;
    if log::log_enabled!(log::Level::Debug) {
        // Only at debug: finding the token again costs a pass over the headers.
        let token = find_token(&effects.config.locations, &RequestView::new(request))
            .ok()
            .flatten()
            .map_or_else(|| "none".to_owned(), |found| found.log_name());
        log::debug!("{}", decision_log_line(decision, &token));
    }
    effects.stats.record(host, decision);
    phase_timing::mark(Phase::Counters);
    if effects.config.decision_filter_state {
        // Envoy keeps this as filter state `wasm.claimgate.decision` for access logs
        // (`%FILTER_STATE(wasm.claimgate.decision:PLAIN)%`); Wasm cannot write dynamic
        // metadata (envoy#15148).
        let written = effects.explanations.with(decision, |explanation| {
            host.set_property(&["claimgate.decision"], explanation)
        });
        if let Err(error) = written {
            log::debug!("claimgate: cannot set the decision filter state: {error}");
        }
    }
    phase_timing::mark(Phase::FilterState);
    for skipped in &decision.skipped_headers {
        log::warn!(
            "claimgate: identity header {} not set: {}",
            skipped.header,
            skipped.reason
        );
    }
    match &decision.outcome {
        Outcome::Allow { .. } => {
            if let Err(error) = edit_request_headers(host, decision, request) {
                log::error!("claimgate: cannot rewrite request headers: {error}");
                return refuse_internal(host);
            }
            phase_timing::mark(Phase::Respond);
            if stage == Stage::Paused {
                if let Err(error) = host.resume_request() {
                    log::error!("claimgate: cannot resume a request: {error}");
                }
            }
            Flow::Continue
        }
        Outcome::Deny(Denial {
            status,
            headers,
            body,
            ..
        })
        | Outcome::Reply(LocalReply {
            status,
            headers,
            body,
        }) => {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let details = decision.response_details();
            if let Err(error) = host.send_response(*status, &details, &headers, body.as_bytes()) {
                log::error!("claimgate: cannot send the response: {error}");
            }
            Flow::Pause
        }
    }
}

/// Answers 500 and holds the request: used whenever the filter cannot do its job (the
/// headers cannot be read or fixed, the clock is unreadable). Never forwards.
pub fn refuse_internal(host: &dyn Host) -> Flow {
    if let Err(error) = host.send_response(500, "claimgate.internal_error", &[], b"") {
        log::error!("claimgate: cannot send the response: {error}");
    }
    Flow::Pause
}

/// Applies the decision's header edits, one host call per removed name and per added
/// header (a typical request has no identity header of its own, so only the additions);
/// replacing the whole map in one call costs Envoy more than a few targeted edits.
fn edit_request_headers(
    host: &dyn Host,
    decision: &Decision,
    request: &SerializedHeaders,
) -> HostResult<()> {
    let Some(edits) = decision.header_edits(request) else {
        return Ok(());
    };
    for name in edits.remove {
        host.remove_request_header(name)?;
    }
    for (name, value) in edits.add {
        host.add_request_header(name, value.as_bytes())?;
    }
    Ok(())
}

/// The debug line of a decision: plain text, no Rust `Some("…")`.
pub(crate) fn decision_log_line(decision: &Decision, token: &str) -> String {
    let or_none = |value: &Option<String>| value.as_deref().unwrap_or("none").to_owned();
    format!(
        "claimgate: {} (status {}, rule {}, failed condition {}, subject {}, token {token})",
        decision.reason,
        decision.status(),
        decision
            .rule
            .as_deref()
            .unwrap_or("none (the default decided)"),
        or_none(&decision.failed_condition),
        or_none(&decision.subject)
    )
}
