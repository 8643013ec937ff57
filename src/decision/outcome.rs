//! What a decision is: forward (with which header edits), answer with a denial, or answer
//! with a document that is no denial (the protected-resource metadata), plus
//! the context every decision carries for logs and for the adapter (rule, reason, removed
//! headers, a key miss to wait on).

use std::rc::Rc;

use super::{Cause, DryRunReport};
use crate::identity::SkippedHeader;
pub use crate::key_miss::KeyMiss;
use crate::policy::VerdictKind;
use crate::request::Headers;

/// A response Envoy sends instead of forwarding the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Why, in the vocabulary metrics count.
    pub cause: Cause,
}

/// A response Envoy sends instead of forwarding the request that is not a refusal: the
/// protected-resource metadata document (RFC 9728), whose cause is
/// [`Cause::ResourceMetadata`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// What happens to the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward upstream after removing [`Decision::remove_headers`] and then setting
    /// [`Allowed::set_headers`].
    Allow(Allowed),
    /// Refuse: answer locally with the refusal.
    Deny(Denial),
    /// Answer locally with a document the client asked for; neither forwarded nor refused.
    Reply(LocalReply),
}

/// Leave to forward a request. Only the decision pipeline makes one, and only from a
/// policy verdict that allows (for a verified token, or a rule that needs none): nothing
/// starts out allowed and is later turned into a refusal, so a path that forgets to
/// decide ends in a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    set_headers: SetHeaders,
    preflight: bool,
}

/// The headers an allowed request gets: the token's identity headers, shared with the
/// cached token (a repeated token allocates nothing for them — issue 22), or, when the
/// token was removed from the query or a cookie, a copy with those rewrites appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SetHeaders {
    Shared(Rc<[(String, String)]>),
    Owned(Vec<(String, String)>),
}

impl Default for SetHeaders {
    fn default() -> Self {
        SetHeaders::Owned(Vec::new())
    }
}

impl SetHeaders {
    /// `identity` followed by `rewrites`.
    pub(super) fn new(identity: &Rc<[(String, String)]>, rewrites: Vec<(String, String)>) -> Self {
        if rewrites.is_empty() {
            return SetHeaders::Shared(Rc::clone(identity));
        }
        let mut all = identity.to_vec();
        all.extend(rewrites);
        SetHeaders::Owned(all)
    }

    fn as_slice(&self) -> &[(String, String)] {
        match self {
            SetHeaders::Shared(shared) => shared,
            SetHeaders::Owned(owned) => owned,
        }
    }
}

impl Allowed {
    /// The allow for a policy verdict of `kind`, setting these identity headers; `None`
    /// unless the verdict allows.
    pub(super) fn granted(kind: VerdictKind, set_headers: SetHeaders) -> Option<Allowed> {
        (kind == VerdictKind::Allow).then_some(Allowed {
            set_headers,
            preflight: false,
        })
    }

    /// The allow for a CORS preflight under `bypass_cors_preflight`: no identity is set
    /// (and the client's identity headers are removed as always).
    pub(super) fn preflight() -> Allowed {
        Allowed {
            set_headers: SetHeaders::default(),
            preflight: true,
        }
    }

    /// Headers set on the forwarded request (after the removals).
    pub fn set_headers(&self) -> &[(String, String)] {
        self.set_headers.as_slice()
    }
}

/// What every decision carries whatever its outcome, gathered while the request is
/// examined. The outcome is chosen once, at the end ([`Context::finish`]).
#[derive(Debug, Default)]
pub(super) struct Context {
    pub(super) rule: Option<String>,
    pub(super) failed_condition: Option<String>,
    pub(super) dry_run: Option<DryRunReport>,
    pub(super) provider: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) remove_headers: Vec<String>,
    pub(super) skipped_headers: Vec<SkippedHeader>,
    pub(super) key_miss: Option<KeyMiss>,
    /// The token came as `Authorization: DPoP`: challenges use that scheme.
    pub(super) dpop_presented: bool,
}

impl Context {
    /// Every decision starts here: the client's identity headers are always removed.
    pub(super) fn new(remove_headers: Vec<String>) -> Context {
        Context {
            remove_headers,
            ..Context::default()
        }
    }

    /// The decision, with its one outcome.
    pub(super) fn finish(self, outcome: Outcome, reason: String) -> Decision {
        Decision {
            outcome,
            rule: self.rule,
            reason,
            failed_condition: self.failed_condition,
            dry_run: self.dry_run,
            provider: self.provider,
            subject: self.subject,
            remove_headers: self.remove_headers,
            skipped_headers: self.skipped_headers,
            key_miss: self.key_miss,
            signatures_checked_in_module: 0,
        }
    }
}

/// What to do with one request, and why.
#[derive(Debug, Clone)]
pub struct Decision {
    pub outcome: Outcome,
    /// The rule that decided; `None` for the default access or a refusal before rules.
    pub rule: Option<String>,
    /// Why, for logs and `claimgate eval` (may name claims; never sent to the client).
    pub reason: String,
    /// When a rule's condition refused the request: the part that failed.
    pub failed_condition: Option<String>,
    /// What the policy would have decided with its dry-run rules enforced, when any
    /// dry-run rule matched (or the whole policy is in dry run).
    pub dry_run: Option<DryRunReport>,
    pub provider: Option<String>,
    pub subject: Option<String>,
    /// Removed from every request, allowed or not, before anything is set.
    pub remove_headers: Vec<String>,
    /// Identity headers that could not be written, and why.
    pub skipped_headers: Vec<SkippedHeader>,
    /// Set when the token was refused for lack of keys (see [`KeyMiss`]).
    pub key_miss: Option<KeyMiss>,
    /// Signatures this decision checked in the module rather than through the host's
    /// crypto (the adapter adds them to `claimgate.signatures.checked_in_module`).
    pub signatures_checked_in_module: u32,
}

impl Decision {
    pub fn status(&self) -> u16 {
        match &self.outcome {
            Outcome::Allow(_) => 200,
            Outcome::Deny(denial) => denial.status,
            Outcome::Reply(reply) => reply.status,
        }
    }

    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allow(_))
    }

    /// Why the request got its answer, for metrics.
    pub fn cause(&self) -> Cause {
        match &self.outcome {
            Outcome::Allow(allowed) if allowed.preflight => Cause::CorsPreflight,
            Outcome::Allow(_) => Cause::Allowed,
            Outcome::Deny(denial) => denial.cause,
            Outcome::Reply(_) => Cause::ResourceMetadata,
        }
    }

    /// Envoy's `%RESPONSE_CODE_DETAILS%` when the filter answers (see
    /// [`Cause::response_details`]).
    pub fn response_details(&self) -> String {
        self.cause().response_details(self.rule.as_deref())
    }

    /// How the request headers change when the request is allowed: every value of each
    /// `remove` name goes (removed identity headers, and present headers that get a new
    /// value, so a client's duplicate can never survive), then the `add` headers are
    /// appended. Only names present in `request` are removed: each edit is a host call.
    /// `None` when the request is refused.
    pub fn header_edits<'h>(&self, request: impl Into<Headers<'h>>) -> Option<HeaderEdits<'_>> {
        let request = request.into();
        let Outcome::Allow(allowed) = &self.outcome else {
            return None;
        };
        let set_headers = allowed.set_headers();
        let mut remove: Vec<&str> = self.remove_headers.iter().map(String::as_str).collect();
        for (name, _) in set_headers {
            if !remove.contains(&name.as_str()) && request.contains(name) {
                remove.push(name);
            }
        }
        Some(HeaderEdits {
            remove,
            add: set_headers,
        })
    }

    /// The headers the upstream gets when the request is allowed ([`Decision::header_edits`]
    /// applied to `request`). `None` when the request is refused.
    pub fn forwarded_headers<'a>(
        &'a self,
        request: &'a [(String, Vec<u8>)],
    ) -> Option<Vec<(&'a str, &'a [u8])>> {
        let edits = self.header_edits(request)?;
        let mut headers: Vec<(&str, &[u8])> = request
            .iter()
            .filter(|(name, _)| {
                !edits
                    .remove
                    .iter()
                    .any(|removed| removed.eq_ignore_ascii_case(name))
            })
            .map(|(name, value)| (name.as_str(), value.as_slice()))
            .collect();
        headers.extend(
            edits
                .add
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        );
        Some(headers)
    }
}

/// Request header changes of an allowed request ([`Decision::header_edits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderEdits<'a> {
    /// Names whose every value is removed first.
    pub remove: Vec<&'a str>,
    /// Headers appended afterwards.
    pub add: &'a [(String, String)],
}
