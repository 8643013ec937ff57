//! This VM's view of each remote key source: the control record as last read, the key
//! set version installed, the fetch in flight. Kept apart from `remote` (which moves
//! bytes between the host and [`crate::keysource`]) so that [`super::plugin::Plugin`] can
//! own it without importing the code that works on the plugin.

use std::cell::RefCell;

use crate::keysource::{Control, FetchReason, FetchStep};
use crate::provider_id::ProviderId;
use crate::time::UnixMillis;

/// This VM's view of one provider's remote source.
#[derive(Default)]
pub struct RemoteState {
    /// The shared control record as last read.
    pub control: Control,
    /// Version of the key set installed in this VM (0: none).
    pub installed: u64,
    /// The fetch this VM has in flight.
    pub pending: Option<Pending>,
    /// Whether this VM already logged that its keys went stale beyond the limit.
    pub dropped: bool,
}

/// A fetch this VM started and whose answer it waits for.
pub struct Pending {
    pub token: u32,
    pub step: FetchStep,
    pub reason: FetchReason,
    pub started: UnixMillis,
}

/// Every remote source's state, one per provider that has one. Borrowed only briefly and
/// only with `try_borrow*`: a borrow that fails (a re-entered callback) skips the change
/// or reads nothing, and never panics the VM.
pub struct RemoteStates(RefCell<Vec<(ProviderId, RemoteState)>>);

impl RemoteStates {
    pub fn new(providers: impl Iterator<Item = ProviderId>) -> RemoteStates {
        RemoteStates(RefCell::new(
            providers.map(|id| (id, RemoteState::default())).collect(),
        ))
    }

    /// Changes `provider`'s state; nothing when it has none or it is borrowed.
    pub fn with(&self, provider: ProviderId, change: impl FnOnce(&mut RemoteState)) {
        let Ok(mut states) = self.0.try_borrow_mut() else {
            log::warn!("claimgate: remote key state busy; change skipped");
            return;
        };
        if let Some((_, state)) = states.iter_mut().find(|(id, _)| *id == provider) {
            change(state);
        }
    }

    /// Reads `provider`'s state; `None` when it has none or it is borrowed.
    pub fn read<T>(&self, provider: ProviderId, read: impl FnOnce(&RemoteState) -> T) -> Option<T> {
        let states = self.0.try_borrow().ok()?;
        states
            .iter()
            .find(|(id, _)| *id == provider)
            .map(|(_, state)| read(state))
    }

    /// The providers with a remote key source.
    pub fn providers(&self) -> Vec<ProviderId> {
        self.0
            .try_borrow()
            .map(|states| states.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }

    /// Takes out the fetch whose answer carries `token`, with its provider and control
    /// record.
    pub fn take_pending(&self, token: u32) -> Option<(ProviderId, Pending, Control)> {
        let mut states = self.0.try_borrow_mut().ok()?;
        states.iter_mut().find_map(|(provider, state)| {
            if state.pending.as_ref()?.token != token {
                return None;
            }
            Some((*provider, state.pending.take()?, state.control.clone()))
        })
    }
}
