//! Requests paused until their provider's keys arrive. A request that lacks keys waits
//! only while a fetch is running or about to run for it ([`keysource::wait_until`]), at
//! most for one fetch cycle, and is then decided again from the root context — never
//! forwarded without a decision.

use crate::key_miss::KeyMiss;
use crate::keysource;

use super::apply::{apply, refuse_internal, Stage};
use super::plugin::Plugin;
use super::record_check::ToCheck;
use super::waiters::{PausedRequest, Waiter};
use crate::time::UnixMillis;

impl Plugin {
    /// Pauses the request until `miss` may be resolved by a fetch; `false` when no fetch
    /// is running or coming for it (the decision then stands).
    pub fn wait_for_keys(&self, miss: KeyMiss, request: PausedRequest, now: UnixMillis) -> bool {
        let provider = miss.provider;
        let Some(source) = self.source(provider) else {
            return false;
        };
        // The record `sync` just read: the same view the root settles waiters with.
        let Some(control) = self.control(provider) else {
            return false;
        };
        let kind = miss.kind;
        let Some(until) = keysource::wait_until(&control, source, now, kind) else {
            return false;
        };
        let waiter = Waiter {
            context_id: request.context_id,
            provider,
            miss: kind,
            until,
            attempts_seen: control.attempts,
            headers: request.headers,
            peer: request.peer,
        };
        if !self.waiters().push(waiter) {
            return false;
        }
        log::debug!(
            "claimgate: provider {}: request waits for keys ({kind:?})",
            self.provider_name(provider)
        );
        true
    }

    /// Whether the HTTP context `context_id` is paused here.
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters().any(|waiter| waiter.context_id == context_id)
    }

    /// Forgets a request that went away while it waited.
    pub fn forget_waiter(&self, context_id: u32) {
        self.waiters().forget(context_id);
    }

    /// Decides again every paused request whose wait is over, and resumes or answers
    /// it, then makes `root_context_id` effective again. Runs last in a root callback:
    /// resuming a request may re-enter the VM.
    pub fn settle_waiters(&self, root_context_id: u32, now: UnixMillis) {
        let ready = self.ready_waiters(now);
        if ready.is_empty() {
            return;
        }
        for waiter in ready {
            if self
                .host()
                .set_effective_context(waiter.context_id)
                .is_err()
            {
                continue; // the request is gone (client went away)
            }
            let Some((decision, recorded)) =
                self.decide_recording(&waiter.headers, &waiter.peer, now, None)
            else {
                refuse_internal(self.host());
                continue;
            };
            match (self.shared_record(), recorded) {
                (Some(record), Some((proof, expires_at))) => {
                    let request = ToCheck {
                        context_id: waiter.context_id,
                        headers: waiter.headers,
                        peer: waiter.peer,
                        decision,
                        proof,
                        expires_at,
                    };
                    self.check_shared_record(record, request, now, Stage::Paused);
                }
                _ => {
                    apply(&self.effects(), &decision, &waiter.headers, Stage::Paused);
                }
            }
        }
        if let Err(error) = self.host().set_effective_context(root_context_id) {
            log::error!("claimgate: cannot return to the root context: {error}");
        }
    }

    /// Takes out the waiters whose wait is over.
    fn ready_waiters(&self, now: UnixMillis) -> Vec<Waiter> {
        self.waiters().take_ready(|waiter| {
            match (self.control(waiter.provider), self.source(waiter.provider)) {
                (Some(control), Some(source)) => !keysource::keep_waiting(
                    &control,
                    source,
                    now,
                    waiter.miss,
                    waiter.attempts_seen,
                    waiter.until,
                ),
                _ => true,
            }
        })
    }
}
