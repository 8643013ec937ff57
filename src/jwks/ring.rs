//! The current key set of every provider, swapped whole when a remote set is replaced,
//! and the host's signature checks when the host offers them.

use std::rc::Rc;
use std::sync::Arc;

use super::{HostCrypto, KeySet};

/// The current key set of every provider, by provider index. Key sets are swapped whole
/// at run time (remote JWKS refresh), never edited in place.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    sets: Vec<Option<Arc<KeySet>>>,
    host: Option<Rc<HostCrypto>>,
}

impl KeyRing {
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

    /// The key set of provider `index`; `None` while it has none yet.
    pub fn get(&self, index: usize) -> Option<&KeySet> {
        self.sets.get(index).and_then(|set| set.as_deref())
    }

    /// Installs a new key set for provider `index`.
    pub fn replace(&mut self, index: usize, keys: Arc<KeySet>) {
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = Some(keys);
        }
    }

    /// Leaves provider `index` without keys (its remote set went stale beyond its limit).
    pub fn remove(&mut self, index: usize) {
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = None;
        }
    }
}
