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

use std::cell::RefCell;
use std::time::Duration;

use crate::decision::Decision;
use crate::dpop::etcd::{self, BucketLease, EtcdAnswer};
use crate::dpop::{OnUnavailable, ProofId, ReplayError, SharedRecordSettings};

use super::apply::{apply, Stage};
use super::host::{Flow, HeaderList, Host};
use super::plugin::{unix_seconds, Peer, Plugin};
use super::proofs::FixedAnswer;
use super::remote::Delivered;
use super::stats::Counter;

/// Most requests one VM holds while etcd answers; beyond that a proof gets the
/// unavailable answer at once (memory stays bounded).
pub const MAX_PENDING: usize = 4096;
/// Lease ids this VM knows are granted (the current buckets).
const KNOWN_LEASES: usize = 8;
/// Largest etcd answer read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

pub struct RecordStats {
    calls: Counter,
    created: Counter,
    replayed: Counter,
    retries: Counter,
    failures: Counter,
    fallbacks: Counter,
    latency_ms_total: Counter,
    last_latency_ms: Counter,
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
    bucket_seconds: i64,
    stats: RecordStats,
    /// Lease ids granted (by any replica) as far as this VM knows.
    leases: RefCell<Vec<i64>>,
    pending: RefCell<Vec<PendingCheck>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Lease,
    Txn,
}

/// A request paused for etcd's answer.
struct PendingCheck {
    token: u32,
    context_id: u32,
    step: Step,
    key: String,
    lease: BucketLease,
    /// Whether the lease was granted again after a put named a missing one.
    regranted: bool,
    /// Whether a call was sent once more after an answer that was not etcd's verdict.
    retried: bool,
    started_ms: u64,
    headers: HeaderList,
    peer: Peer,
    decision: Decision,
}

/// A request whose proof the fleet-wide record must take before it goes on.
pub struct ToCheck {
    pub context_id: u32,
    pub headers: HeaderList,
    pub peer: Peer,
    pub decision: Decision,
    pub proof: ProofId,
    pub expires_at: i64,
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

    fn lease_known(&self, id: i64) -> bool {
        self.leases
            .try_borrow()
            .is_ok_and(|leases| leases.contains(&id))
    }

    fn remember_lease(&self, id: i64) {
        if let Ok(mut leases) = self.leases.try_borrow_mut() {
            if !leases.contains(&id) {
                if leases.len() >= KNOWN_LEASES {
                    leases.remove(0);
                }
                leases.push(id);
            }
        }
    }

    fn forget_lease(&self, id: i64) {
        if let Ok(mut leases) = self.leases.try_borrow_mut() {
            leases.retain(|known| *known != id);
        }
    }

    /// Sends `step` for `key`; the token, or `None` when the call could not start.
    fn dispatch(&self, host: &dyn Host, step: Step, key: &str, lease: &BucketLease) -> Option<u32> {
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
}

impl Plugin {
    /// Starts the fleet-wide check of `request`'s proof: `Flow::Pause` while etcd
    /// answers, or the applied answer when the call could not start.
    pub fn check_shared_record(
        &self,
        record: &SharedRecord,
        request: ToCheck,
        now: u64,
        stage: Stage,
    ) -> Flow {
        let host = self.host.as_ref();
        let lease = etcd::bucket_lease(
            &record.settings.key_prefix,
            record.bucket_seconds,
            request.expires_at,
            unix_seconds(now),
        );
        let key = etcd::proof_key(&record.settings.key_prefix, request.proof);
        let step = if record.lease_known(lease.id) {
            Step::Txn
        } else {
            Step::Lease
        };
        let full = record
            .pending
            .try_borrow()
            .map_or(true, |pending| pending.len() >= MAX_PENDING);
        let token = if full {
            log::warn!("claimgate: {MAX_PENDING} requests already wait for the DPoP shared record");
            None
        } else {
            record.dispatch(host, step, &key, &lease)
        };
        let check = PendingCheck {
            token: token.unwrap_or_default(),
            context_id: request.context_id,
            step,
            key,
            lease,
            regranted: false,
            retried: false,
            started_ms: now,
            headers: request.headers,
            peer: request.peer,
            decision: request.decision,
        };
        if token.is_none() {
            record.stats.failures.increment(host);
            return self.unavailable(record, &check, "the call could not start", now, stage);
        }
        match record.pending.try_borrow_mut() {
            Ok(mut pending) => {
                pending.push(check);
                Flow::Pause
            }
            Err(_) => self.unavailable(record, &check, "busy", now, stage),
        }
    }

    /// Handles etcd's answer to one of this VM's calls, on the effective context of its
    /// request (made so when the call was sent from a root callback). `false` when the
    /// token is not one of them.
    pub fn on_record_response(&self, delivered: &Delivered, now: u64) -> bool {
        let Some(record) = self.shared_record.as_ref() else {
            return false;
        };
        let taken = record
            .pending
            .try_borrow_mut()
            .ok()
            .and_then(|mut pending| {
                let at = pending
                    .iter()
                    .position(|check| check.token == delivered.token)?;
                Some(pending.remove(at))
            });
        let Some(mut check) = taken else {
            return false;
        };
        let host = self.host.as_ref();
        let elapsed = now.saturating_sub(check.started_ms);
        record
            .stats
            .latency_ms_total
            .add(host, i64::try_from(elapsed).unwrap_or(i64::MAX));
        record.stats.last_latency_ms.set(host, elapsed);
        let (answer, answered) = read_answer(host, delivered, check.step);
        // The answer is read; now act on the request (already effective when the call
        // was sent from its own context; made so when sent from a root callback).
        if host.set_effective_context(check.context_id).is_err() {
            return true; // the request is gone
        }
        match answer {
            EtcdAnswer::LeaseReady => {
                record.remember_lease(check.lease.id);
                self.next_step(record, check, Step::Txn, now);
            }
            EtcdAnswer::LeaseMissing if !check.regranted => {
                // The lease expired or was never granted: grant it, then try once more.
                record.forget_lease(check.lease.id);
                check.regranted = true;
                self.next_step(record, check, Step::Lease, now);
            }
            EtcdAnswer::Created => {
                record.stats.created.increment(host);
                apply(self, &check.decision, &check.headers, Stage::Paused);
            }
            EtcdAnswer::Exists => {
                record.stats.replayed.increment(host);
                let decision = self.decide_again(&check, ReplayError::Replayed, now);
                apply(self, &decision, &check.headers, Stage::Paused);
            }
            EtcdAnswer::LeaseMissing => {
                record.stats.failures.increment(host);
                self.unavailable(record, &check, "the lease is missing", now, Stage::Paused);
            }
            EtcdAnswer::Unavailable(why)
                if answered
                    && !check.retried
                    && now.saturating_sub(check.started_ms) < record.settings.timeout_ms =>
            {
                log::debug!("claimgate: DPoP shared record: {why}; sending the call once more");
                record.stats.retries.increment(host);
                check.retried = true;
                let step = check.step;
                self.next_step(record, check, step, now);
            }
            EtcdAnswer::Unavailable(why) => {
                record.stats.failures.increment(host);
                self.unavailable(record, &check, &why, now, Stage::Paused);
            }
        }
        true
    }

    fn next_step(&self, record: &SharedRecord, mut check: PendingCheck, step: Step, now: u64) {
        let host = self.host.as_ref();
        match record.dispatch(host, step, &check.key, &check.lease) {
            Some(token) => {
                check.token = token;
                check.step = step;
                if let Ok(mut pending) = record.pending.try_borrow_mut() {
                    pending.push(check);
                    return;
                }
                self.unavailable(record, &check, "busy", now, Stage::Paused);
            }
            None => {
                record.stats.failures.increment(host);
                self.unavailable(
                    record,
                    &check,
                    "the call could not start",
                    now,
                    Stage::Paused,
                );
            }
        }
    }

    /// etcd could not answer: 503 (fail closed), or the per-Envoy record's verdict when
    /// the operator chose `local`.
    fn unavailable(
        &self,
        record: &SharedRecord,
        check: &PendingCheck,
        why: &str,
        now: u64,
        stage: Stage,
    ) -> Flow {
        let host = self.host.as_ref();
        match record.settings.on_unavailable {
            OnUnavailable::Refuse => {
                log::warn!(
                    "claimgate: DPoP shared record unavailable ({why}): the request gets 503"
                );
                let decision = self.decide_again(check, ReplayError::Unavailable, now);
                apply(self, &decision, &check.headers, stage)
            }
            OnUnavailable::Local => {
                record.stats.fallbacks.increment(host);
                log::warn!(
                    "claimgate: DPoP shared record unavailable ({why}): the per-Envoy record \
                     decided alone (on_unavailable: local)"
                );
                apply(self, &check.decision, &check.headers, stage)
            }
        }
    }

    fn decide_again(&self, check: &PendingCheck, answer: ReplayError, now: u64) -> Decision {
        self.decide_recording(&check.headers, &check.peer, now, Some(&FixedAnswer(answer)))
            .0
    }
}

/// etcd's answer to a call of `step`, and whether any answer came (`false`: timed out or
/// unreachable, no status).
fn read_answer(host: &dyn Host, delivered: &Delivered, step: Step) -> (EtcdAnswer, bool) {
    let status = host
        .http_call_response_header(":status")
        .ok()
        .flatten()
        .and_then(|status| String::from_utf8(status).ok())
        .and_then(|status| status.parse::<u16>().ok())
        .filter(|_| delivered.num_headers > 0);
    let body = host
        .http_call_response_body(delivered.body_size.min(MAX_ANSWER_BYTES))
        .ok()
        .flatten();
    let answer = match step {
        Step::Lease => etcd::read_lease_grant(status, body.as_deref()),
        Step::Txn => etcd::read_txn(status, body.as_deref()),
    };
    (answer, status.is_some())
}
