//! An evaluation remembered for one verified token on one route (issue 22): a cached
//! token that comes back on the same route skips matching rules and evaluating
//! conditions. Only an evaluation that depends on nothing else is kept
//! ([`Evaluation::route_and_token_only`]), so reusing it decides exactly as evaluating
//! again would; it lives and dies with the cached token (which a key change, a new
//! configuration or the token's expiry removes).

use super::{Evaluation, RequestFacts};

/// The evaluation of one route (method, host, canonical path) for one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteVerdict {
    method: String,
    host: String,
    path: String,
    evaluation: Evaluation,
}

impl RouteVerdict {
    /// The most bytes one remembered evaluation may hold (route and texts): the token
    /// cache counts this much per token, so its byte bound holds with evaluations kept.
    /// Larger ones (a long path, a long explanation) are evaluated every time.
    pub const MAX_BYTES: usize = 1024;

    /// `evaluation` of `request`'s route, to remember; `None` when it depends on more
    /// than the route and the token, or is larger than [`RouteVerdict::MAX_BYTES`].
    pub fn remember(request: &RequestFacts<'_>, evaluation: &Evaluation) -> Option<RouteVerdict> {
        if !evaluation.route_and_token_only {
            return None;
        }
        let bytes = request.method.len()
            + request.host.len()
            + request.path.len()
            + evaluation_bytes(evaluation);
        (bytes <= Self::MAX_BYTES).then(|| RouteVerdict {
            method: request.method.to_owned(),
            host: request.host.to_owned(),
            path: request.path.to_owned(),
            evaluation: evaluation.clone(),
        })
    }

    /// The remembered evaluation, when `request` is on the same route (exactly: method,
    /// host and canonical path compared byte for byte).
    pub fn for_route(&self, request: &RequestFacts<'_>) -> Option<&Evaluation> {
        (self.path == request.path && self.host == request.host && self.method == request.method)
            .then_some(&self.evaluation)
    }
}

/// The text an evaluation holds, in bytes.
fn evaluation_bytes(evaluation: &Evaluation) -> usize {
    let verdict = |verdict: &super::Verdict| {
        verdict.reason.len()
            + verdict.rule.as_ref().map_or(0, String::len)
            + verdict.failed_condition.as_ref().map_or(0, String::len)
            + verdict.step_up.as_ref().map_or(0, |challenge| {
                challenge.acr_values.as_ref().map_or(0, String::len) + 16
            })
    };
    verdict(&evaluation.verdict)
        + evaluation.dry_run.as_ref().map_or(0, |dry_run| {
            verdict(&dry_run.verdict) + dry_run.rules.iter().map(String::len).sum::<usize>()
        })
}
