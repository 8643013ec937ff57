//! The decision: one function, [`decide`], from an [`Input`] (the request) and an
//! [`Environment`] (compiled config, keys, now, token cache, DPoP proof record) to what
//! Envoy must do. Envoy, the CLI, the tests and the benches all call it; it makes no key,
//! record or count of its own (what it needs comes in the environment, what it counted
//! goes out in the [`Decision`]).
//!
//! The pipeline is here: path check, token lookup, verification (through the token cache),
//! policy, identity headers. What a decision is lives in `outcome`, how a refusal is
//! answered in `response`, how a decision is explained in `explain`, why it was made in
//! the metrics' vocabulary in `cause`, and how an unforwarded token is removed in `strip`.

mod binding;
mod cause;
mod explain;
mod input;
mod outcome;
mod response;
mod strip;

use std::borrow::Cow;
use std::rc::Rc;

use serde_json::Value;

use crate::cache::TokenCache;
use crate::config::Config;
use crate::dpop::VerifiedProof;
use crate::jwks::SignatureChecks;
use crate::policy::{
    request_host, Evaluation, Mode, RequestFacts, StepUpChallenge, TokenFacts, VerdictKind,
};
use crate::request::{canonical_path, check_authority, RequestView};
use crate::token::{find_token, verify, FoundToken, TokenError, VerifiedToken};
use binding::{check_binding, first_use, presented_as_dpop};
pub use cause::{name_segment, AuthFailure, Cause};
pub use explain::DryRunReport;
use input::Step;
pub use input::{Environment, Input, ProofEnvironment, TokenInput};
use outcome::Context;
use outcome::SetHeaders;
pub use outcome::{Allowed, Decision, Denial, HeaderEdits, KeyMiss, LocalReply, Outcome};
use response::{denial, metadata_answer, Refusal};
use strip::strip_token;

/// Decides one request: `input` (the request, and its token or claims already verified)
/// in `environment` (configuration, keys, clock, token cache, DPoP proof record). The
/// decision carries how many signatures the module checked itself.
pub fn decide(input: Input<'_>, environment: Environment<'_>) -> Decision {
    let Environment {
        config,
        keys,
        now,
        cache,
        proofs,
    } = environment;
    let checks = SignatureChecks::new(keys.host_crypto());
    let request = &input.request;
    let mut decision = match start(config, request) {
        Err(answered) => *answered,
        Ok((context, path)) => {
            let step = Step {
                config,
                keys,
                checks: &checks,
                proofs: proofs.as_ref(),
                request,
                path: &path,
                now,
                tokens_cached: cache.as_ref().is_some_and(|cache| cache.keeps_tokens()),
            };
            match input.token {
                TokenInput::FromRequest => decide_request(&step, context, cache),
                TokenInput::PreVerified(verified) => {
                    decide_verified(&step, context, verified, None, None)
                }
            }
        }
    };
    decision.signatures_checked_in_module = checks.in_module();
    decision
}

/// Verifies `found`, from the cache when it holds the token.
fn verify_cached(
    step: &Step<'_>,
    cache: Option<&mut TokenCache>,
    found: &FoundToken<'_>,
) -> Result<Rc<VerifiedToken>, TokenError> {
    let Step {
        config,
        keys,
        checks,
        now,
        ..
    } = *step;
    let verify_now = || verify(found, &config.providers, |id| keys.get(id), checks, now);
    let Some(cache) = cache else {
        return verify_now().map(Rc::new);
    };
    if let Some(hit) = cache.get(&found.token, now) {
        let provider = config.providers.get(hit.provider());
        return match provider {
            Some(provider) if provider.reads_from(&found.locations) => Ok(hit),
            _ => Err(TokenError::WrongLocation),
        };
    }
    let verified = Rc::new(verify_now()?);
    let skew = config
        .providers
        .get(verified.provider())
        .map_or(0, |provider| provider.clock_skew_seconds);
    let valid_until = verified.expires_at().map(|exp| exp.saturating_add(skew));
    cache.insert(&found.token, &verified, valid_until, now);
    Ok(verified)
}

/// Decides a request whose token (if any) is to be found in it and verified.
fn decide_request(
    step: &Step<'_>,
    mut context: Context,
    cache: Option<&mut TokenCache>,
) -> Decision {
    let Step {
        config, request, ..
    } = *step;
    if config.bypass_cors_preflight && is_cors_preflight(request) {
        return context.finish(
            Outcome::Allow(Allowed::preflight()),
            "CORS preflight forwarded without a token (bypass_cors_preflight)".to_owned(),
        );
    }
    let found = match find_token(&config.locations, request) {
        Ok(found) => found,
        Err(err) => return token_problem(step, context, Refusal::BadToken(err)),
    };
    let (verified, proof) = match &found {
        None => (None, None),
        Some(found) => {
            context.dpop_presented = presented_as_dpop(config, found);
            let checked = verify_cached(step, cache, found)
                .map_err(|err| {
                    context.key_miss = err.key_miss();
                    Refusal::BadToken(err)
                })
                .and_then(|verified| {
                    check_binding(step, found, &verified).map(|proof| (Some(verified), proof))
                });
            match checked {
                Ok(checked) => checked,
                Err(refusal) => return token_problem(step, context, refusal),
            }
        }
    };
    decide_verified(
        step,
        context,
        verified.as_deref(),
        found.as_ref(),
        proof.as_ref(),
    )
}

/// A CORS preflight (Fetch standard): `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`.
fn is_cors_preflight(request: &RequestView<'_>) -> bool {
    request.method() == "OPTIONS"
        && request.header_values("origin").next().is_some()
        && request
            .header_values("access-control-request-method")
            .next()
            .is_some()
}

/// A token that cannot be used: refused with 401 (or 503 when keys are missing), unless
/// the whole policy is in dry run, where the refusal is reported and the request goes on
/// as if it carried no token.
fn token_problem(step: &Step<'_>, context: Context, refusal: Refusal) -> Decision {
    let config = step.config;
    let reason = match &refusal {
        Refusal::BadToken(err) => format!("token refused: {err}"),
        Refusal::BadProof(err) => format!("DPoP proof refused: {err}"),
        Refusal::NonceRequired(_) => "DPoP proof refused: no fresh server nonce".to_owned(),
        Refusal::ProofsUnavailable => "DPoP proof record unavailable".to_owned(),
        _ => "token refused".to_owned(),
    };
    if config.policy.mode == Mode::Enforce || refusal.status() == 503 {
        return refuse(config, context, refusal, reason);
    }
    let mut decision = decide_verified(step, context, None, None, None);
    decision.dry_run = Some(DryRunReport {
        rules: Vec::new(),
        status: 401,
        rule: None,
        reason,
    });
    decision
}

/// The context every decision starts from (client identity headers always removed) and
/// the canonical path; a refusal when the host or the path is ambiguous, or the
/// protected-resource metadata when that is what the request asks for.
fn start<'r>(
    config: &Config,
    request: &RequestView<'r>,
) -> Result<(Context, Cow<'r, str>), Box<Decision>> {
    let context = Context::new(config.identity.headers_to_remove(request));
    let checked = check_authority(request.authority())
        .map_err(|err| err.to_string())
        .and_then(|()| canonical_path(request.raw_path()).map_err(|err| err.to_string()));
    match checked {
        Ok(path) => match &config.resource_metadata {
            Some(metadata) if metadata.serves(request.method(), &path) => {
                Err(Box::new(context.finish(
                    Outcome::Reply(metadata_answer(metadata)),
                    "protected-resource metadata (RFC 9728)".to_owned(),
                )))
            }
            _ => Ok((context, path)),
        },
        Err(reason) => Err(Box::new(refuse(
            config,
            context,
            Refusal::BadRequest(reason.clone()),
            reason,
        ))),
    }
}

/// Asks the policy about the request with its verified token (if any), and builds the
/// one outcome: an allow only when the policy's verdict allows, and its DPoP proof (if
/// any) was not used before.
fn decide_verified(
    step: &Step<'_>,
    mut context: Context,
    verified: Option<&VerifiedToken>,
    found: Option<&FoundToken<'_>>,
    proof: Option<&VerifiedProof>,
) -> Decision {
    let Step {
        config, request, ..
    } = *step;
    if let Some(verified) = verified {
        if let Some(provider) = config.providers.get(verified.provider()) {
            context.provider = Some(provider.name.clone());
        }
        context.subject = verified
            .claims()
            .get("sub")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    let Evaluation {
        verdict, dry_run, ..
    } = evaluate(step, verified);
    context.rule = verdict.rule;
    context.failed_condition = verdict.failed_condition;
    context.dry_run = dry_run.map(|dry_run| DryRunReport {
        rules: dry_run.rules,
        status: dry_run.verdict.kind.status(),
        rule: dry_run.verdict.rule,
        reason: dry_run.verdict.reason,
    });
    let refusal = match verdict.kind {
        VerdictKind::Allow => None,
        VerdictKind::NeedsToken => Some(Refusal::NoToken),
        VerdictKind::WrongProvider => Some(Refusal::BadToken(TokenError::ProviderNotAccepted)),
        VerdictKind::InsufficientAuthentication => Some(Refusal::StepUp(
            verdict.step_up.clone().unwrap_or(StepUpChallenge {
                acr_values: None,
                max_age: None,
            }),
        )),
        VerdictKind::Forbidden if verified.is_some() && context.failed_condition.is_some() => Some(
            Refusal::Forbidden("the token does not grant access to this resource"),
        ),
        VerdictKind::Forbidden => Some(FORBIDDEN),
    };
    if let Some(refusal) = refusal {
        return refuse(config, context, refusal, verdict.reason);
    }
    let mut set_headers = SetHeaders::default();
    if let Some(verified) = verified {
        let (set, skipped) = verified.identity_headers().get_or_init(|| {
            let (set, skipped) = config.identity.headers_to_set(verified.claims());
            (set.into(), skipped)
        });
        context.skipped_headers.clone_from(skipped);
        let mut rewrites = Vec::new();
        if let Some(found) = found {
            strip_token(
                config,
                verified,
                found,
                request,
                &mut context.remove_headers,
                &mut rewrites,
            );
        }
        set_headers = SetHeaders::new(set, rewrites);
    }
    let Some(allowed) = Allowed::granted(verdict.kind, set_headers) else {
        return refuse(config, context, FORBIDDEN, verdict.reason);
    };
    if let Some(proof) = proof {
        // A proof that passed is recorded as used; without a record it cannot be.
        let recorded = match step.proofs {
            Some(proofs) => first_use(proof, proofs.replay, step.now),
            None => Err(Refusal::ProofsUnavailable),
        };
        if let Err(refusal) = recorded {
            return token_problem(step, context, refusal);
        }
    }
    context.finish(Outcome::Allow(allowed), verdict.reason)
}

/// The refusal for a request no rule lets through.
const FORBIDDEN: Refusal = Refusal::Forbidden("access to this resource is not allowed");

/// The policy's verdict on the request, with the verified token's provider and claims.
fn evaluate(step: &Step<'_>, verified: Option<&VerifiedToken>) -> Evaluation {
    let Step {
        config,
        request,
        path,
        now,
        tokens_cached,
        ..
    } = *step;
    let host = request_host(request.authority());
    let facts = RequestFacts {
        request: *request,
        method: request.method(),
        path,
        host: &host,
        client_address: request.client_address(),
        now,
    };
    let remembered = verified.filter(|_| tokens_cached);
    if let Some(evaluation) = remembered.and_then(|verified| verified.remembered_evaluation(&facts))
    {
        return evaluation;
    }
    let evaluation = config.policy.evaluate(
        facts,
        verified.map(|verified| TokenFacts {
            provider: verified.provider(),
            claims: verified.claims(),
            clock_skew_seconds: config
                .providers
                .get(verified.provider())
                .map_or(0, |provider| provider.clock_skew_seconds),
        }),
    );
    if let Some(verified) = remembered {
        verified.remember_evaluation(&facts, &evaluation);
    }
    evaluation
}

fn refuse(config: &Config, context: Context, refusal: Refusal, reason: String) -> Decision {
    let answer = denial(config, &refusal, context.dpop_presented);
    context.finish(Outcome::Deny(answer), reason)
}

#[cfg(test)]
mod tests;
