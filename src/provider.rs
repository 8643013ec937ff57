//! The configured identity providers: one entry per provider holding everything about it
//! (how its tokens are verified, its inline keys, its remote key source), and the list of
//! them, addressed by [`ProviderId`].

use std::sync::Arc;

use serde::Deserialize;

use crate::jwks::{Alg, KeySet};
use crate::keysource::RemoteSource;
pub use crate::provider_id::ProviderId;

/// Whether a provider's tokens are bound to a key the client proves it holds: a DPoP
/// key (RFC 9449) or a TLS client certificate (RFC 8705).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    /// Not checked: tokens are bearer tokens, as before.
    #[default]
    Off,
    /// A bound token must be presented with its proof; unbound tokens still pass.
    Optional,
    /// Every token must be bound and presented with its proof.
    Required,
}

/// One identity provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// Exact `iss` value.
    pub issuer: String,
    /// Any one of these must appear in `aud`.
    pub audiences: Vec<String>,
    /// Allow-list; anything else (and `none`) is refused.
    pub algorithms: Vec<Alg>,
    /// Indices into the config's combined token locations that this provider reads.
    pub locations: Vec<usize>,
    pub require_exp: bool,
    pub clock_skew_seconds: i64,
    pub max_lifetime_seconds: Option<i64>,
    /// Required `typ` header (e.g. `at+jwt`), compared as a media type.
    pub token_type: Option<String>,
    pub max_token_bytes: usize,
    /// Forward the token upstream, or remove it.
    pub forward_token: bool,
    /// `jwks.inline`: keys the configuration carries (the only place secrets may come from).
    pub inline_keys: Option<Arc<KeySet>>,
    /// `jwks.remote` or `jwks.discovery`: where keys are fetched from at run time.
    pub remote: Option<RemoteSource>,
    /// DPoP (RFC 9449): tokens bound to a proof-of-possession key (`cnf.jkt`).
    pub dpop: Binding,
    /// RFC 8705: tokens bound to the TLS client certificate (`cnf.x5t#S256`).
    pub mtls_binding: Binding,
    /// A token whose `cnf` names a binding this provider does not check (`cnf.jkt` with
    /// `dpop: off`, `cnf.x5t#S256` with `mtls_binding: off`, any other confirmation
    /// method) is refused: RFC 9449 §7.2 and RFC 8705 §3 forbid using a bound token as a
    /// bearer token. `true` accepts it as a bearer token (a migration aid; `claimgate
    /// check` warns).
    pub insecure_accept_unchecked_binding: bool,
}

impl Provider {
    /// Whether this provider reads tokens from any of these locations (indices into the
    /// config's combined token locations).
    pub fn reads_from(&self, locations: &[usize]) -> bool {
        locations
            .iter()
            .any(|location| self.locations.contains(location))
    }

    /// The key set to use once `remote` keys were fetched: the inline keys (if any)
    /// followed by the remote ones. The one place the two are combined.
    pub fn keys_with_remote(&self, remote: &KeySet) -> KeySet {
        match &self.inline_keys {
            Some(inline) => inline.merged(remote),
            None => remote.clone(),
        }
    }

    /// The status requests get while this provider has no keys: 503 unless its remote
    /// source says 401.
    pub fn outage_status(&self) -> u16 {
        self.remote
            .as_ref()
            .map_or(503, |source| source.outage_status)
    }
}

/// Every configured provider, in configuration order.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    entries: Vec<Provider>,
}

impl Providers {
    pub(crate) fn new(entries: Vec<Provider>) -> Providers {
        Providers { entries }
    }

    pub fn get(&self, id: ProviderId) -> Option<&Provider> {
        self.entries.get(id.index())
    }

    /// Every provider with its id, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = (ProviderId, &Provider)> + '_ {
        self.entries
            .iter()
            .enumerate()
            .map(|(index, provider)| (ProviderId::from_index(index), provider))
    }

    pub fn ids(&self) -> impl Iterator<Item = ProviderId> + '_ {
        (0..self.entries.len()).map(ProviderId::from_index)
    }

    /// The provider named `name`.
    pub fn id_of(&self, name: &str) -> Option<ProviderId> {
        self.iter()
            .find(|(_, provider)| provider.name == name)
            .map(|(id, _)| id)
    }

    /// The provider whose issuer is exactly `issuer`.
    pub fn by_issuer(&self, issuer: &str) -> Option<(ProviderId, &Provider)> {
        self.iter().find(|(_, provider)| provider.issuer == issuer)
    }

    /// Every provider with a remote key source.
    pub fn remote_sources(&self) -> impl Iterator<Item = (ProviderId, &RemoteSource)> + '_ {
        self.iter()
            .filter_map(|(id, provider)| Some((id, provider.remote.as_ref()?)))
    }

    /// The largest token any provider accepts.
    pub fn max_token_bytes(&self) -> usize {
        self.entries
            .iter()
            .map(|provider| provider.max_token_bytes)
            .max()
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
