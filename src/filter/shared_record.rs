//! The fleet-wide once-only record of DPoP proofs in etcd (`dpop_proofs.shared_record`),
//! in the adapter. A request whose proof the per-Envoy record just took, and that is
//! otherwise allowed, is paused while one transaction asks etcd to create the proof's key
//! if absent (after granting its time bucket's lease, once per bucket and VM). etcd's
//! answer decides: created — the request goes on; it existed — the proof was used on
//! some replica, and the request is decided again as a replay; no answer (unreachable,
//! timeout, 5xx, quorum lost) — 503 with `Retry-After`, or, when the operator chose
//! `on_unavailable: local`, the per-Envoy record's verdict, counted and logged.
//!
//! A call that got an answer which is not etcd's verdict (Envoy's own 503 for a member it
//! could not reach, or etcd's "leader changed" during an election) is sent once more
//! while the call's time budget lasts: the cluster's load balancer picks the next member,
//! so one lost member does not turn a share of the proofs into 503s. The retry is safe:
//! if the first transaction did commit, the second finds the key and the request is
//! refused as a replay (fail closed, never accepted twice). A call that timed out is not
//! retried (its budget is spent).
//!
//! Stats: `claimgate.dpop.shared_record.{calls,created,replayed,retries,failures,fallbacks,
//! latency_ms_total}` (calls are transactions and lease grants; the mean latency of a
//! call is `latency_ms_total / calls`) and the gauge `…last_latency_ms`.
//!
//! This file holds a VM's side of the record — settings, counters, known leases and the
//! requests waiting for etcd — which the plugin owns; the calls and what their answers
//! do to a request are in `record_check`, above the plugin.

use std::cell::RefCell;
use std::time::Duration;

use crate::decision::Decision;
use crate::dpop::etcd::{self, BucketLease};
use crate::dpop::SharedRecordSettings;

use super::host::Host;
use super::peer::Peer;
use super::stats::Counter;
use crate::request::SerializedHeaders;
use crate::time::UnixMillis;

/// Most requests one VM holds while etcd answers; beyond that a proof gets the
/// unavailable answer at once (memory stays bounded).
pub const MAX_PENDING: usize = 4096;
/// Lease ids this VM knows are granted (the current buckets).
const KNOWN_LEASES: usize = 8;
/// Largest etcd answer read.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024;

pub struct RecordStats {
    pub calls: Counter,
    pub created: Counter,
    pub replayed: Counter,
    pub retries: Counter,
    pub failures: Counter,
    pub fallbacks: Counter,
    pub latency_ms_total: Counter,
    pub last_latency_ms: Counter,
}

impl RecordStats {
    pub fn define(host: &dyn Host) -> RecordStats {
        let name = |suffix: &str| format!("claimgate.dpop.shared_record.{suffix}");
        RecordStats {
            calls: Counter::define(host, &name("calls")),
            created: Counter::define(host, &name("created")),
            replayed: Counter::define(host, &name("replayed")),
            retries: Counter::define(host, &name("retries")),
            failures: Counter::define(host, &name("failures")),
            fallbacks: Counter::define(host, &name("fallbacks")),
            latency_ms_total: Counter::define(host, &name("latency_ms_total")),
            last_latency_ms: Counter::gauge(host, &name("last_latency_ms")),
        }
    }
}

/// This VM's side of the shared record.
pub struct SharedRecord {
    pub settings: SharedRecordSettings,
    pub bucket_seconds: i64,
    pub stats: RecordStats,
    /// Lease ids granted (by any replica) as far as this VM knows.
    leases: RefCell<Vec<i64>>,
    pending: RefCell<Vec<PendingCheck>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Lease,
    Txn,
}

/// A request paused for etcd's answer.
pub struct PendingCheck {
    pub token: u32,
    pub context_id: u32,
    pub step: Step,
    pub key: String,
    pub lease: BucketLease,
    /// Whether the lease was granted again after a put named a missing one.
    pub regranted: bool,
    /// Whether a call was sent once more after an answer that was not etcd's verdict.
    pub retried: bool,
    pub started_ms: UnixMillis,
    pub headers: SerializedHeaders,
    pub peer: Peer,
    pub decision: Decision,
}

impl SharedRecord {
    pub fn new(host: &dyn Host, settings: SharedRecordSettings, max_age: i64, skew: i64) -> Self {
        SharedRecord {
            settings,
            // A proof is fresh for at most max_age + skew seconds: buckets that wide.
            bucket_seconds: max_age.saturating_add(skew).max(10),
            stats: RecordStats::define(host),
            leases: RefCell::new(Vec::new()),
            pending: RefCell::new(Vec::new()),
        }
    }

    pub fn is_pending(&self, context_id: u32) -> bool {
        self.pending
            .try_borrow()
            .is_ok_and(|pending| pending.iter().any(|check| check.context_id == context_id))
    }

    pub fn forget(&self, context_id: u32) {
        if let Ok(mut pending) = self.pending.try_borrow_mut() {
            pending.retain(|check| check.context_id != context_id);
        }
    }

    pub fn lease_known(&self, id: i64) -> bool {
        self.leases
            .try_borrow()
            .is_ok_and(|leases| leases.contains(&id))
    }

    pub fn remember_lease(&self, id: i64) {
        if let Ok(mut leases) = self.leases.try_borrow_mut() {
            if !leases.contains(&id) {
                if leases.len() >= KNOWN_LEASES {
                    leases.remove(0);
                }
                leases.push(id);
            }
        }
    }

    pub fn forget_lease(&self, id: i64) {
        if let Ok(mut leases) = self.leases.try_borrow_mut() {
            leases.retain(|known| *known != id);
        }
    }

    /// Sends `step` for `key`; the token, or `None` when the call could not start.
    pub fn dispatch(
        &self,
        host: &dyn Host,
        step: Step,
        key: &str,
        lease: &BucketLease,
    ) -> Option<u32> {
        let (path, body) = match step {
            Step::Lease => (etcd::LEASE_GRANT_PATH, etcd::lease_grant_body(lease)),
            Step::Txn => (etcd::TXN_PATH, etcd::create_if_absent_body(key, lease.id)),
        };
        let headers = [
            (":method", "POST"),
            (":path", path),
            (":authority", self.settings.authority.as_str()),
            ("content-type", "application/json"),
            ("user-agent", "claimgate"),
        ];
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        self.stats.calls.increment(host);
        match host.dispatch_http_call(&self.settings.cluster, &headers, Some(&body), timeout) {
            Ok(token) => Some(token),
            Err(error) => {
                log::warn!(
                    "claimgate: DPoP shared record: cannot call cluster '{}': {error}",
                    self.settings.cluster
                );
                None
            }
        }
    }

    /// Whether no more requests may wait for etcd (or the list is busy).
    pub fn pending_full(&self) -> bool {
        self.pending
            .try_borrow()
            .map_or(true, |pending| pending.len() >= MAX_PENDING)
    }

    /// Holds `check` until etcd answers; gives it back when the list is busy.
    #[must_use]
    pub fn hold(&self, check: PendingCheck) -> Option<PendingCheck> {
        match self.pending.try_borrow_mut() {
            Ok(mut pending) => {
                pending.push(check);
                None
            }
            Err(_) => Some(check),
        }
    }

    /// Takes out the check whose call answered with `token`.
    pub fn take(&self, token: u32) -> Option<PendingCheck> {
        let mut pending = self.pending.try_borrow_mut().ok()?;
        let at = pending.iter().position(|check| check.token == token)?;
        Some(pending.remove(at))
    }
}
