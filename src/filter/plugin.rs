//! What every context of one plugin in one VM shares: the compiled configuration, the
//! keys in use, the verified-token cache, each remote source's state and the requests
//! waiting for keys. Created once the configuration loads; the root context and every
//! HTTP context hold it.
//!
//! Its fields are private. Every `RefCell` is borrowed only inside a method and only
//! with `try_borrow*`, never across a host call: a borrow that fails (a callback that
//! re-entered the VM) takes the safe path — the request is refused, the change skipped —
//! where a bare `borrow()` would panic and kill the VM. The work on the plugin lives
//! above this file (`remote`, `key_wait`, `record_check`), which import it, never the
//! other way round.

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
use crate::request::{RequestView, SerializedHeaders};

use super::apply::Effects;
use super::filter_state::ExplanationMemo;
use super::host::Host;
use super::logger::LogLevelSync;
use super::peer::Peer;
use super::proofs::{shared_nonce_key, FixedAnswer, SharedReplay};
use super::remote_state::RemoteStates;
use super::shared_record::SharedRecord;
use super::stats::Stats;
use super::waiters::Waiters;
use crate::time::UnixMillis;

pub struct Plugin {
    host: Rc<dyn Host>,
    config: Config,
    /// Swapped whole when a key set is replaced; a request decides with the ring it got.
    keys: RefCell<Rc<KeyRing>>,
    /// Verified tokens of this VM; emptied whenever `keys` is replaced.
    cache: RefCell<TokenCache>,
    /// This VM's view of each remote key source, one per provider that has one.
    remote: RemoteStates,
    /// Requests paused until keys arrive.
    waiters: Waiters,
    stats: Stats,
    /// The filter state of the last decision, reused when the next one says the same.
    explanations: ExplanationMemo,
    log_level: LogLevelSync,
    /// Whether the host clock failed on the last call, so the failure is logged once.
    clock_failed: Cell<bool>,
    /// The nonce key from the operator's secrets (`nonce_secrets`), the same on every
    /// replica; `None`: the per-Envoy key in shared data.
    nonce_key: Option<NonceKey>,
    /// The fleet-wide once-only record in etcd, when configured.
    shared_record: Option<SharedRecord>,
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
        let remote = RemoteStates::new(config.providers.remote_sources().map(|(id, _)| id));
        Plugin {
            host,
            config,
            keys: RefCell::new(Rc::new(keys)),
            cache: RefCell::new(cache),
            remote,
            waiters: Waiters::default(),
            stats,
            explanations: ExplanationMemo::default(),
            log_level: LogLevelSync::default(),
            clock_failed: Cell::new(false),
            nonce_key,
            shared_record,
        }
    }

    pub fn host(&self) -> &dyn Host {
        self.host.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn log_level(&self) -> &LogLevelSync {
        &self.log_level
    }

    pub fn shared_record(&self) -> Option<&SharedRecord> {
        self.shared_record.as_ref()
    }

    pub fn remote_states(&self) -> &RemoteStates {
        &self.remote
    }

    pub fn waiters(&self) -> &Waiters {
        &self.waiters
    }

    /// What carrying out a decision needs of the plugin.
    pub fn effects(&self) -> Effects<'_> {
        Effects {
            host: self.host.as_ref(),
            config: &self.config,
            stats: &self.stats,
            explanations: &self.explanations,
        }
    }

    /// The host clock in milliseconds; `None` (logged once) when the host cannot tell,
    /// and then nothing is decided or scheduled: a clock read as 0 would make every
    /// expired token look valid.
    pub fn now_ms(&self) -> Option<UnixMillis> {
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

    /// Replaces the key ring with a changed copy and empties the token cache (tokens were
    /// verified with the old keys). Skipped, and logged, when either is borrowed: the
    /// next sync installs the keys again.
    fn replace_keys(&self, change: impl FnOnce(&mut KeyRing)) {
        let (Ok(mut keys), Ok(mut cache)) =
            (self.keys.try_borrow_mut(), self.cache.try_borrow_mut())
        else {
            log::error!("claimgate: key ring busy; key change skipped");
            return;
        };
        let mut ring = (**keys).clone();
        change(&mut ring);
        *keys = Rc::new(ring);
        cache.clear();
    }

    /// Decides a request with the current keys; DPoP proofs against the record and the
    /// nonce key every worker shares. Also names the proof the per-Envoy record took (to
    /// be checked against the fleet-wide record); with `fixed`, proofs get that answer
    /// instead of the per-Envoy record's. `None` when the key ring is borrowed (a
    /// re-entered callback): the caller refuses the request.
    pub fn decide_recording(
        &self,
        headers: &SerializedHeaders,
        peer: &Peer,
        now_ms: UnixMillis,
        fixed: Option<&FixedAnswer>,
    ) -> Option<(Decision, Option<(ProofId, i64)>)> {
        let keys = Rc::clone(&*self.keys.try_borrow().ok()?);
        // A busy cache only costs the verification it would have saved.
        let mut cache = self.cache.try_borrow_mut().ok();
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
        let mut environment = Environment::new(&self.config, &keys, now_ms.seconds());
        if let Some(cache) = cache.as_deref_mut() {
            environment = environment.with_cache(cache);
        }
        let environment = environment.with_proofs(ProofEnvironment {
            nonce_key: nonce_key.as_ref(),
            replay: guard,
        });
        let decision = decide(Input::new(request), environment);
        self.stats.record_verification(
            self.host.as_ref(),
            cache.as_ref().map(|cache| cache.counters()),
            decision.signatures_checked_in_module,
        );
        Some((decision, replay.recorded.get()))
    }

    #[cfg(test)]
    pub fn cached_tokens(&self) -> usize {
        self.cache.try_borrow().map_or(0, |cache| cache.len())
    }
}
