//! "Keys are missing": the one type token verification reports, the decision carries to
//! the adapter, and the key source waiting logic judges. A request that lacks keys may
//! wait for a fetch and be decided again; without one, its refusal stands.

use std::fmt;

use crate::provider_id::ProviderId;

/// What a request lacked, of which provider's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMiss {
    pub provider: ProviderId,
    pub kind: MissKind,
}

/// What was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissKind {
    /// The provider has no key set (remote keys not fetched yet, or stale beyond their
    /// limit): an outage, 503 or the source's configured outage status.
    NoKeys,
    /// No key of the provider carries the token's `kid`: 401, and the adapter may refetch
    /// a remote key set (rate-limited) and decide again.
    UnknownKid,
}

impl KeyMiss {
    pub fn no_keys(provider: ProviderId) -> KeyMiss {
        KeyMiss {
            provider,
            kind: MissKind::NoKeys,
        }
    }

    pub fn unknown_kid(provider: ProviderId) -> KeyMiss {
        KeyMiss {
            provider,
            kind: MissKind::UnknownKid,
        }
    }
}

impl fmt::Display for MissKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MissKind::NoKeys => "no keys",
            MissKind::UnknownKid => "unknown kid",
        })
    }
}
