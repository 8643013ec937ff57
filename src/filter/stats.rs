//! The Envoy stats claimgate keeps (`/stats?filter=claimgate`, `/stats/prometheus`).
//!
//! Names put the variable part — provider, rule, reason — in a fixed position so that the
//! `stats_tags` shipped in `envoy/claimgate.envoy.yaml.tmpl` turn it into a Prometheus
//! label (a module cannot set tags itself). Every name comes from the configuration or a
//! fixed vocabulary, never from request data, so cardinality is bounded by the config.
//! A stat that cannot be defined or updated is logged once at start and never affects a
//! request.
//!
//! - `claimgate.requests.{allowed,cors_preflight,resource_metadata,denied,bad_request,
//!   no_keys,dpop_replay_unavailable,dpop_key_quota}` and
//!   `claimgate.requests.unauthenticated.<reason>` (label `claimgate_reason`);
//! - `claimgate.by_provider.<provider>.{allowed,denied,unauthenticated}` (label
//!   `claimgate_provider`), for requests whose token named a provider;
//! - `claimgate.rule.<rule>.{allowed,denied}` for the rule that decided, and
//!   `claimgate.dry_run.rule.<rule>.would_deny` (label `claimgate_rule`), with the totals
//!   `claimgate.dry_run.{would_deny,would_allow}`;
//! - `claimgate.token_cache.{hits,misses,evictions}` and the gauge `…entries`;
//! - `claimgate.keys.<provider>.{jwks_fetched,jwks_failed,discovery_fetched,
//!   discovery_failed,unknown_kid_refetches}` and the gauges `…age_seconds`, `…stale`;
//! - `claimgate.signatures.checked_by_envoy` (see `host_crypto`) and
//!   `claimgate.signatures.checked_in_module`.

use std::cell::Cell;
use std::collections::HashMap;

use crate::cache::CacheCounters;
use crate::config::Config;
use crate::decision::{name_segment, AuthFailure, Cause, Decision};
use crate::keysource::FetchStep;
use crate::policy::Mode;
use crate::provider_id::ProviderId;

use super::host::Host;

/// A counter or gauge defined in the host; `None` when the host refused to define it.
#[derive(Clone, Copy, Default)]
pub struct Counter(Option<u32>);

impl Counter {
    pub fn define(host: &dyn Host, name: &str) -> Counter {
        Counter::defined(host.define_counter(name), name)
    }

    pub fn gauge(host: &dyn Host, name: &str) -> Counter {
        Counter::defined(host.define_gauge(name), name)
    }

    fn defined(result: super::host::HostResult<u32>, name: &str) -> Counter {
        match result {
            Ok(id) => Counter(Some(id)),
            Err(error) => {
                log::warn!("claimgate: cannot define stat {name}: {error}");
                Counter(None)
            }
        }
    }

    pub fn increment(self, host: &dyn Host) {
        self.add(host, 1);
    }

    pub fn add(self, host: &dyn Host, delta: i64) {
        if let (Some(id), true) = (self.0, delta != 0) {
            // A failed stat update must not affect the request.
            let _ = host.increment_counter(id, delta);
        }
    }

    pub fn set(self, host: &dyn Host, value: u64) {
        if let Some(id) = self.0 {
            let _ = host.set_gauge(id, value);
        }
    }
}

/// A rule or provider name as a stat name segment (see [`name_segment`]).
fn stat_name(name: &str) -> String {
    name_segment(name)
}

struct RequestStats {
    allowed: Counter,
    cors_preflight: Counter,
    resource_metadata: Counter,
    denied: Counter,
    bad_request: Counter,
    no_keys: Counter,
    dpop_replay_unavailable: Counter,
    dpop_key_quota: Counter,
    unauthenticated: [Counter; AuthFailure::ALL.len()],
}

#[derive(Clone, Copy)]
struct ProviderStats {
    allowed: Counter,
    denied: Counter,
    unauthenticated: Counter,
}

#[derive(Clone, Copy)]
struct RuleStats {
    allowed: Counter,
    denied: Counter,
}

/// Key source stats of one provider with remote keys.
pub struct KeyStats {
    jwks_fetched: Counter,
    jwks_failed: Counter,
    discovery_fetched: Counter,
    discovery_failed: Counter,
    unknown_kid_refetches: Counter,
    age_seconds: Counter,
    stale: Counter,
    /// The gauges as last set, so a tick only writes what changed.
    last: Cell<Option<(u64, u64)>>,
}

struct SignatureStats {
    checked_in_module: Counter,
}

struct CacheStats {
    hits: Counter,
    misses: Counter,
    evictions: Counter,
    entries: Counter,
    /// This VM's cache counters as last reported (gauges add up across VMs).
    reported: Cell<CacheCounters>,
}

struct DryRunStats {
    would_deny: Counter,
    would_allow: Counter,
    rule_would_deny: HashMap<String, Counter>,
}

/// Every stat of one plugin in one VM.
pub struct Stats {
    requests: RequestStats,
    providers: HashMap<String, ProviderStats>,
    rules: HashMap<String, RuleStats>,
    keys: Vec<(ProviderId, KeyStats)>,
    cache: CacheStats,
    signatures: SignatureStats,
    dry_run: Option<DryRunStats>,
}

impl Stats {
    /// Defines every stat `config` can ever update.
    pub fn define(host: &dyn Host, config: &Config) -> Stats {
        let counter = |name: &str| Counter::define(host, name);
        let requests = RequestStats {
            allowed: counter("claimgate.requests.allowed"),
            cors_preflight: counter("claimgate.requests.cors_preflight"),
            resource_metadata: counter("claimgate.requests.resource_metadata"),
            denied: counter("claimgate.requests.denied"),
            bad_request: counter("claimgate.requests.bad_request"),
            no_keys: counter("claimgate.requests.no_keys"),
            dpop_replay_unavailable: counter("claimgate.requests.dpop_replay_unavailable"),
            dpop_key_quota: counter("claimgate.requests.dpop_key_quota"),
            unauthenticated: AuthFailure::ALL.map(|reason| {
                counter(&format!(
                    "claimgate.requests.unauthenticated.{}",
                    reason.name()
                ))
            }),
        };
        let providers = config
            .providers
            .iter()
            .map(|(_, provider)| {
                let prefix = format!("claimgate.by_provider.{}", stat_name(&provider.name));
                let stats = ProviderStats {
                    allowed: counter(&format!("{prefix}.allowed")),
                    denied: counter(&format!("{prefix}.denied")),
                    unauthenticated: counter(&format!("{prefix}.unauthenticated")),
                };
                (provider.name.clone(), stats)
            })
            .collect();
        let rules = config
            .policy
            .rules
            .iter()
            .map(|rule| {
                let prefix = format!("claimgate.rule.{}", stat_name(&rule.name));
                let stats = RuleStats {
                    allowed: counter(&format!("{prefix}.allowed")),
                    denied: counter(&format!("{prefix}.denied")),
                };
                (rule.name.clone(), stats)
            })
            .collect();
        let keys = config
            .providers
            .remote_sources()
            .filter_map(|(id, _)| {
                let name = stat_name(&config.providers.get(id)?.name);
                Some((id, KeyStats::define(host, &name)))
            })
            .collect();
        let cache = CacheStats {
            hits: counter("claimgate.token_cache.hits"),
            misses: counter("claimgate.token_cache.misses"),
            evictions: counter("claimgate.token_cache.evictions"),
            entries: Counter::gauge(host, "claimgate.token_cache.entries"),
            reported: Cell::new(CacheCounters::default()),
        };
        let signatures = SignatureStats {
            checked_in_module: counter("claimgate.signatures.checked_in_module"),
        };
        Stats {
            requests,
            providers,
            rules,
            keys,
            cache,
            signatures,
            dry_run: DryRunStats::define(host, config),
        }
    }

    /// Counts one decided request.
    pub fn record(&self, host: &dyn Host, decision: &Decision) {
        let cause = decision.cause();
        let requests = &self.requests;
        match cause {
            Cause::Allowed => requests.allowed.increment(host),
            Cause::CorsPreflight => requests.cors_preflight.increment(host),
            Cause::ResourceMetadata => requests.resource_metadata.increment(host),
            Cause::Denied => requests.denied.increment(host),
            Cause::BadRequest => requests.bad_request.increment(host),
            Cause::NoKeys => requests.no_keys.increment(host),
            Cause::ProofsUnavailable => requests.dpop_replay_unavailable.increment(host),
            Cause::ProofKeyQuota => requests.dpop_key_quota.increment(host),
            Cause::Unauthenticated(reason) => {
                let index = AuthFailure::ALL.iter().position(|known| *known == reason);
                if let Some(counter) = index.and_then(|index| requests.unauthenticated.get(index)) {
                    counter.increment(host);
                }
            }
        }
        if let Some(stats) = decision
            .provider
            .as_ref()
            .and_then(|p| self.providers.get(p))
        {
            match cause {
                Cause::Allowed => stats.allowed.increment(host),
                Cause::Denied => stats.denied.increment(host),
                Cause::Unauthenticated(_) => stats.unauthenticated.increment(host),
                Cause::CorsPreflight
                | Cause::ResourceMetadata
                | Cause::BadRequest
                | Cause::NoKeys
                | Cause::ProofsUnavailable
                | Cause::ProofKeyQuota => {}
            }
        }
        if let Some(stats) = decision.rule.as_ref().and_then(|rule| self.rules.get(rule)) {
            let counter = if cause == Cause::Allowed {
                stats.allowed
            } else {
                stats.denied
            };
            counter.increment(host);
        }
        if let Some(dry_run) = &self.dry_run {
            dry_run.record(host, decision);
        }
    }

    /// Reports what the token cache did since the last report, and the signatures the
    /// module checked itself for one decision.
    /// `cache` is `None` when the decision ran without the cache (it was busy).
    pub fn record_verification(
        &self,
        host: &dyn Host,
        cache: Option<CacheCounters>,
        checked_in_module: u32,
    ) {
        self.signatures
            .checked_in_module
            .add(host, i64::from(checked_in_module));
        if let Some(now) = cache {
            self.record_cache(host, now);
        }
    }

    fn record_cache(&self, host: &dyn Host, now: CacheCounters) {
        let cache = &self.cache;
        let before = cache.reported.replace(now);
        let delta = |now: u64, before: u64| {
            i64::try_from(now).unwrap_or(i64::MAX) - i64::try_from(before).unwrap_or(i64::MAX)
        };
        cache.hits.add(host, delta(now.hits, before.hits));
        cache.misses.add(host, delta(now.misses, before.misses));
        cache
            .evictions
            .add(host, delta(now.evictions, before.evictions));
        cache.entries.add(host, delta(now.entries, before.entries));
    }

    pub fn keys(&self, provider: ProviderId) -> Option<&KeyStats> {
        self.keys
            .iter()
            .find(|(id, _)| *id == provider)
            .map(|(_, stats)| stats)
    }
}

impl KeyStats {
    fn define(host: &dyn Host, provider: &str) -> KeyStats {
        let prefix = format!("claimgate.keys.{provider}");
        let counter = |name: &str| Counter::define(host, &format!("{prefix}.{name}"));
        KeyStats {
            jwks_fetched: counter("jwks_fetched"),
            jwks_failed: counter("jwks_failed"),
            discovery_fetched: counter("discovery_fetched"),
            discovery_failed: counter("discovery_failed"),
            unknown_kid_refetches: counter("unknown_kid_refetches"),
            age_seconds: Counter::gauge(host, &format!("{prefix}.age_seconds")),
            stale: Counter::gauge(host, &format!("{prefix}.stale")),
            last: Cell::new(None),
        }
    }

    /// Counts one fetch request's outcome.
    pub fn fetched(&self, host: &dyn Host, step: FetchStep, ok: bool) {
        let counter = match (step, ok) {
            (FetchStep::Jwks, true) => self.jwks_fetched,
            (FetchStep::Jwks, false) => self.jwks_failed,
            (FetchStep::Discovery, true) => self.discovery_fetched,
            (FetchStep::Discovery, false) => self.discovery_failed,
        };
        counter.increment(host);
    }

    pub fn unknown_kid_refetch(&self, host: &dyn Host) {
        self.unknown_kid_refetches.increment(host);
    }

    /// Sets the age of the key set in use (seconds) and whether it is stale (past its
    /// cache duration, or none at all); writes only what changed.
    pub fn key_set_state(&self, host: &dyn Host, age_seconds: u64, stale: bool) {
        let state = (age_seconds, u64::from(stale));
        let last = self.last.replace(Some(state));
        if last.map(|(age, _)| age) != Some(state.0) {
            self.age_seconds.set(host, state.0);
        }
        if last.map(|(_, stale)| stale) != Some(state.1) {
            self.stale.set(host, state.1);
        }
    }
}

impl DryRunStats {
    /// `None` without any dry-run rule (no such stats then).
    fn define(host: &dyn Host, config: &Config) -> Option<DryRunStats> {
        let dry_run_rules: Vec<&str> = config
            .policy
            .rules
            .iter()
            .filter(|rule| rule.mode == Mode::DryRun)
            .map(|rule| rule.name.as_str())
            .collect();
        if config.policy.mode != Mode::DryRun && dry_run_rules.is_empty() {
            return None;
        }
        let rule_would_deny = dry_run_rules
            .into_iter()
            .map(|rule| {
                let name = format!("claimgate.dry_run.rule.{}.would_deny", stat_name(rule));
                (rule.to_owned(), Counter::define(host, &name))
            })
            .collect();
        Some(DryRunStats {
            would_deny: Counter::define(host, "claimgate.dry_run.would_deny"),
            would_allow: Counter::define(host, "claimgate.dry_run.would_allow"),
            rule_would_deny,
        })
    }

    /// Logs and counts what the dry-run rules would have done with this request.
    fn record(&self, host: &dyn Host, decision: &Decision) {
        let Some(report) = &decision.dry_run else {
            return;
        };
        let status = decision.status();
        let would_deny = report.status >= 400 && status < 400;
        let would_allow = report.status < 400 && status >= 400;
        if would_deny || would_allow {
            log::info!(
                "claimgate: dry run: would answer {} instead of {status} (rule {}): {}",
                report.status,
                report
                    .rule
                    .as_deref()
                    .map_or_else(|| "default".to_owned(), |rule| format!("{rule:?}")),
                report.reason
            );
        }
        if would_deny {
            self.would_deny.increment(host);
            if let Some(counter) = report
                .rule
                .as_ref()
                .and_then(|rule| self.rule_would_deny.get(rule))
            {
                counter.increment(host);
            }
        }
        if would_allow {
            self.would_allow.increment(host);
        }
    }
}
