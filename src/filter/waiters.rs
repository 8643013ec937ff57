//! The requests of one VM paused until their provider's keys arrive (when they wait, and
//! how they are decided again: `key_wait`).

use std::cell::RefCell;

use crate::key_miss::MissKind;
use crate::provider_id::ProviderId;

use super::peer::Peer;
use crate::request::SerializedHeaders;
use crate::time::UnixMillis;

/// Most requests one VM holds while waiting for keys; beyond that they are decided at
/// once with the keys there are (memory stays bounded under a flood).
pub const MAX_WAITERS: usize = 4096;

/// A request paused until its provider's keys arrive.
pub struct Waiter {
    pub context_id: u32,
    pub provider: ProviderId,
    pub miss: MissKind,
    /// When the wait ends at the latest.
    pub until: UnixMillis,
    /// The control record's attempt count when it paused.
    pub attempts_seen: u64,
    pub headers: SerializedHeaders,
    pub peer: Peer,
}

/// What a paused request needs to be decided again.
pub struct PausedRequest {
    pub context_id: u32,
    pub headers: SerializedHeaders,
    pub peer: Peer,
}

/// The paused requests of one VM. Borrowed only briefly and only with `try_borrow*`: a
/// borrow that fails (a re-entered callback) leaves the list as it is — a request that
/// cannot be paused is decided at once — and never panics the VM.
#[derive(Default)]
pub struct Waiters(RefCell<Vec<Waiter>>);

impl Waiters {
    /// Pauses `waiter`; `false` when the list is full or busy.
    pub fn push(&self, waiter: Waiter) -> bool {
        let Ok(mut waiters) = self.0.try_borrow_mut() else {
            return false;
        };
        if waiters.len() >= MAX_WAITERS {
            log::warn!(
                "claimgate: {MAX_WAITERS} requests already wait for keys; deciding this one now"
            );
            return false;
        }
        waiters.push(waiter);
        true
    }

    /// Whether some paused request matches `wanted`.
    pub fn any(&self, wanted: impl FnMut(&Waiter) -> bool) -> bool {
        self.0
            .try_borrow()
            .is_ok_and(|waiters| waiters.iter().any(wanted))
    }

    /// Forgets the request of HTTP context `context_id`.
    pub fn forget(&self, context_id: u32) {
        if let Ok(mut waiters) = self.0.try_borrow_mut() {
            waiters.retain(|waiter| waiter.context_id != context_id);
        }
    }

    /// Takes out the paused requests that `ready` says are done waiting.
    pub fn take_ready(&self, mut ready: impl FnMut(&Waiter) -> bool) -> Vec<Waiter> {
        let Ok(mut waiters) = self.0.try_borrow_mut() else {
            return Vec::new();
        };
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) =
            waiters.drain(..).partition(|waiter| ready(waiter));
        *waiters = waiting;
        done
    }
}
