//! Which identity provider: a type of its own for the provider's position in the
//! configuration, so it is never confused with another index (a token location, a rule,
//! a key). At the bottom of the import graph: keys, tokens, policies and decisions all
//! name providers.

use std::fmt;

/// A provider of one compiled configuration. Only the crate makes them (from positions in
/// the configuration's `providers`); others get them from the configuration
/// (`Providers::ids`, `Providers::id_of`, `Config::provider_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(usize);

impl ProviderId {
    pub(crate) fn from_index(index: usize) -> ProviderId {
        ProviderId(index)
    }

    /// The provider's position in the configuration's `providers`.
    pub fn index(self) -> usize {
        self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "providers[{}]", self.0)
    }
}
