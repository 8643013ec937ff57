//! Requests paused until their provider's keys arrive. A request that lacks keys waits
//! only while a fetch is running or about to run for it ([`keysource::wait_until`]), at
//! most for one fetch cycle, and is then decided again from the root context — never
//! forwarded without a decision.

use crate::key_miss::{KeyMiss, MissKind};
use crate::keysource;
use crate::provider_id::ProviderId;

use super::apply::{apply, Stage};
use super::host::HeaderList;
use super::plugin::{Peer, Plugin};
use super::shared_record::ToCheck;

/// Most requests one VM holds while waiting for keys; beyond that they are decided at
/// once with the keys there are (memory stays bounded under a flood).
pub const MAX_WAITERS: usize = 4096;

/// A request paused until its provider's keys arrive.
pub struct Waiter {
    pub context_id: u32,
    pub provider: ProviderId,
    pub miss: MissKind,
    until: u64,
    /// The control record's attempt count when it paused.
    pub attempts_seen: u64,
    headers: HeaderList,
    peer: Peer,
}

/// What a paused request needs to be decided again.
pub struct PausedRequest {
    pub context_id: u32,
    pub headers: HeaderList,
    pub peer: Peer,
}

impl Plugin {
    /// Pauses the request until `miss` may be resolved by a fetch; `false` when no fetch
    /// is running or coming for it (the decision then stands).
    pub fn wait_for_keys(&self, miss: KeyMiss, request: PausedRequest, now: u64) -> bool {
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
        let Ok(mut waiters) = self.waiters.try_borrow_mut() else {
            return false;
        };
        if waiters.len() >= MAX_WAITERS {
            log::warn!(
                "claimgate: {MAX_WAITERS} requests already wait for keys; deciding this one now"
            );
            return false;
        }
        log::debug!(
            "claimgate: provider {}: request waits for keys ({kind:?})",
            self.provider_name(provider)
        );
        waiters.push(Waiter {
            context_id: request.context_id,
            provider,
            miss: kind,
            until,
            attempts_seen: control.attempts,
            headers: request.headers,
            peer: request.peer,
        });
        true
    }

    /// Whether the HTTP context `context_id` is paused here.
    pub fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters
            .try_borrow()
            .is_ok_and(|waiters| waiters.iter().any(|w| w.context_id == context_id))
    }

    /// Forgets a request that went away while it waited.
    pub fn forget_waiter(&self, context_id: u32) {
        if let Ok(mut waiters) = self.waiters.try_borrow_mut() {
            waiters.retain(|waiter| waiter.context_id != context_id);
        }
    }

    /// Decides again every paused request whose wait is over, and resumes or answers
    /// it, then makes `root_context_id` effective again. Runs last in a root callback:
    /// resuming a request may re-enter the VM.
    pub fn settle_waiters(&self, root_context_id: u32, now: u64) {
        let ready = self.ready_waiters(now);
        if ready.is_empty() {
            return;
        }
        for waiter in ready {
            if self.host.set_effective_context(waiter.context_id).is_err() {
                continue; // the request is gone (client went away)
            }
            let (decision, recorded) =
                self.decide_recording(&waiter.headers, &waiter.peer, now, None);
            match (&self.shared_record, recorded) {
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
                    apply(self, &decision, &waiter.headers, Stage::Paused);
                }
            }
        }
        if let Err(error) = self.host.set_effective_context(root_context_id) {
            log::error!("claimgate: cannot return to the root context: {error}");
        }
    }

    /// Takes out the waiters whose wait is over.
    fn ready_waiters(&self, now: u64) -> Vec<Waiter> {
        let Ok(mut waiters) = self.waiters.try_borrow_mut() else {
            return Vec::new();
        };
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = waiters.drain(..).partition(|waiter| {
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
        });
        *waiters = waiting;
        ready
    }
}
