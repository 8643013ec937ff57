//! What every context of one plugin in one VM shares: the compiled configuration, the
//! keys in use, the verified-token cache, each remote source's state and the requests
//! waiting for keys. Created once the configuration loads; the root context and every
//! HTTP context hold it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::cache::TokenCache;
use crate::config::Config;
use crate::decision::{decide, Decision, Environment, Input, ProofEnvironment};
use crate::dpop::{NonceKey, ProofId, ReplayGuard, ReplayShards};
use crate::jwks::{KeyRing, KeySet};
use crate::keysource::RemoteSource;
use crate::provider_id::ProviderId;
use crate::request::{RequestView, Scheme};

use super::filter_state::ExplanationMemo;
use super::host::Host;
use super::logger::LogLevelSync;
use super::proofs::{shared_nonce_key, FixedAnswer, SharedReplay};
use super::remote::RemoteState;
use super::shared_record::SharedRecord;
use super::stats::Stats;
use super::waiters::Waiter;

pub struct Plugin {
    pub host: Rc<dyn Host>,
    pub config: Config,
    /// Swapped whole when a key set is replaced; a request decides with the ring it got.
    keys: RefCell<Rc<KeyRing>>,
    /// Verified tokens of this VM; emptied whenever `keys` is replaced.
    cache: RefCell<TokenCache>,
    /// This VM's view of each remote key source, one per provider that has one.
    pub remote: RefCell<Vec<(ProviderId, RemoteState)>>,
    /// Requests paused until keys arrive.
    pub waiters: RefCell<Vec<Waiter>>,
    pub stats: Stats,
    /// The filter state of the last decision, reused when the next one says the same.
    pub explanations: ExplanationMemo,
    pub log_level: LogLevelSync,
    /// Whether the host clock failed on the last call, so the failure is logged once.
    clock_failed: Cell<bool>,
    /// The nonce key from the operator's secrets (`nonce_secrets`), the same on every
    /// replica; `None`: the per-Envoy key in shared data.
    nonce_key: Option<NonceKey>,
    /// The fleet-wide once-only record in etcd, when configured.
    pub shared_record: Option<SharedRecord>,
}

impl Plugin {
    pub fn new(
        host: Rc<dyn Host>,
        config: Config,
        keys: KeyRing,
        stats: Stats,
        nonce_key: Option<NonceKey>,
    ) -> Plugin {
        let cache = TokenCache::new(config.token_cache);
        let shared_record = config.dpop.shared_record.clone().map(|settings| {
            SharedRecord::new(
                host.as_ref(),
                settings,
                config.dpop.max_age_seconds,
                config.dpop.clock_skew_seconds,
            )
        });
        let remote = config
            .providers
            .remote_sources()
            .map(|(id, _)| (id, RemoteState::default()))
            .collect();
        Plugin {
            host,
            config,
            keys: RefCell::new(Rc::new(keys)),
            cache: RefCell::new(cache),
            remote: RefCell::new(remote),
            waiters: RefCell::new(Vec::new()),
            stats,
            explanations: ExplanationMemo::default(),
            log_level: LogLevelSync::default(),
            clock_failed: Cell::new(false),
            nonce_key,
            shared_record,
        }
    }

    /// The host clock in milliseconds; `None` (logged once) when the host cannot tell,
    /// and then nothing is decided or scheduled: a clock read as 0 would make every
    /// expired token look valid.
    pub fn now_ms(&self) -> Option<u64> {
        match self.host.now_ms() {
            Ok(now) => {
                self.clock_failed.set(false);
                Some(now)
            }
            Err(error) => {
                if !self.clock_failed.replace(true) {
                    log::error!("claimgate: cannot read the host clock: {error}");
                }
                None
            }
        }
    }

    pub fn source(&self, provider: ProviderId) -> Option<&RemoteSource> {
        self.config
            .providers
            .get(provider)
            .and_then(|entry| entry.remote.as_ref())
    }

    pub fn provider_name(&self, provider: ProviderId) -> &str {
        self.config
            .providers
            .get(provider)
            .map_or("?", |entry| entry.name.as_str())
    }

    /// Installs a remote key set for `provider` (beside its inline keys, if any).
    pub fn install(&self, provider: ProviderId, remote: &KeySet) {
        let Some(entry) = self.config.providers.get(provider) else {
            return;
        };
        let set = entry.keys_with_remote(remote);
        self.replace_keys(|ring| ring.replace(provider, Arc::new(set)));
    }

    /// Drops `provider`'s remote keys (stale beyond the limit): inline keys remain.
    pub fn uninstall(&self, provider: ProviderId) {
        let inline = self
            .config
            .providers
            .get(provider)
            .and_then(|entry| entry.inline_keys.as_ref());
        self.replace_keys(|ring| match inline {
            Some(inline) => ring.replace(provider, Arc::clone(inline)),
            None => ring.remove(provider),
        });
    }

    fn replace_keys(&self, change: impl FnOnce(&mut KeyRing)) {
        let mut ring = (**self.keys.borrow()).clone();
        change(&mut ring);
        *self.keys.borrow_mut() = Rc::new(ring);
        self.cache.borrow_mut().clear();
    }

    /// Decides a request with the current keys; DPoP proofs against the record and the
    /// nonce key every worker shares. Also names the proof the per-Envoy record took (to
    /// be checked against the fleet-wide record); with `fixed`, proofs get that answer
    /// instead of the per-Envoy record's.
    pub fn decide_recording(
        &self,
        headers: &[(String, Vec<u8>)],
        peer: &Peer,
        now_ms: u64,
        fixed: Option<&FixedAnswer>,
    ) -> (Decision, Option<(ProofId, i64)>) {
        let keys = Rc::clone(&self.keys.borrow());
        let mut cache = self.cache.borrow_mut();
        let request = RequestView::new(headers)
            .with_client_address(peer.address.as_deref())
            .with_client_certificate(peer.certificate.as_deref())
            .with_connection_scheme(peer.scheme);
        // The per-Envoy nonce key is read only when a proof may need it (one host call).
        let nonce_key = (self.config.dpop.use_dpop_nonce
            && request.header_values("dpop").next().is_some())
        .then(|| {
            self.nonce_key
                .clone()
                .or_else(|| shared_nonce_key(self.host.as_ref()))
        })
        .flatten();
        let replay = SharedReplay {
            host: self.host.as_ref(),
            shards: ReplayShards::new(self.config.dpop.replay_cache_entries),
            recorded: Cell::new(None),
        };
        let guard: &dyn ReplayGuard = match fixed {
            Some(fixed) => fixed,
            None => &replay,
        };
        let environment = Environment::new(&self.config, &keys, unix_seconds(now_ms))
            .with_cache(&mut cache)
            .with_proofs(ProofEnvironment {
                nonce_key: nonce_key.as_ref(),
                replay: guard,
            });
        let decision = decide(Input::new(request), environment);
        self.stats.record_verification(
            self.host.as_ref(),
            cache.counters(),
            decision.signatures_checked_in_module,
        );
        (decision, replay.recorded.get())
    }

    #[cfg(test)]
    pub fn cached_tokens(&self) -> usize {
        self.cache.borrow().len()
    }
}

/// What the decision reads of the connection, besides the headers: read from Envoy only
/// when the configuration uses it (each is a host call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// `source.address`, when a condition reads the client address.
    pub address: Option<String>,
    /// The TLS client certificate's SHA-256 thumbprint (base64url), when a provider binds
    /// tokens to certificates (RFC 8705).
    pub certificate: Option<String>,
    /// Whether the connection is TLS, when a DPoP `htu` or a `request: scheme` condition
    /// needs the scheme.
    pub scheme: Option<Scheme>,
}

pub fn unix_seconds(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1000).unwrap_or(i64::MAX)
}
