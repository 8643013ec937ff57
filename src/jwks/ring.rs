//! The current key set of every provider, swapped whole when a remote set is replaced,
//! and the host's signature checks when the host offers them.

use std::rc::Rc;
use std::sync::Arc;

use super::{HostCrypto, KeySet};
use crate::provider_id::ProviderId;

/// The current key set of every provider, by [`ProviderId`]. Key sets are swapped whole
/// at run time (remote JWKS refresh), never edited in place.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    sets: Vec<Option<Arc<KeySet>>>,
    host: Option<Rc<HostCrypto>>,
}

impl KeyRing {
    /// A ring with the key set of each provider, in configuration order.
    pub fn new(sets: Vec<Option<Arc<KeySet>>>) -> KeyRing {
        KeyRing { sets, host: None }
    }

    /// Lets the host check the signatures it passed its self-test for.
    pub fn set_host_crypto(&mut self, host: Rc<HostCrypto>) {
        self.host = Some(host);
    }

    /// The host's signature checks, when there are any.
    pub fn host_crypto(&self) -> Option<&HostCrypto> {
        self.host.as_deref()
    }

    /// The key set of `provider`; `None` while it has none yet.
    pub fn get(&self, provider: ProviderId) -> Option<&KeySet> {
        self.sets
            .get(provider.index())
            .and_then(|set| set.as_deref())
    }

    /// Installs a new key set for `provider`.
    pub fn replace(&mut self, provider: ProviderId, keys: Arc<KeySet>) {
        if let Some(slot) = self.sets.get_mut(provider.index()) {
            *slot = Some(keys);
        }
    }

    /// Leaves `provider` without keys (its remote set went stale beyond its limit).
    pub fn remove(&mut self, provider: ProviderId) {
        if let Some(slot) = self.sets.get_mut(provider.index()) {
            *slot = None;
        }
    }
}
