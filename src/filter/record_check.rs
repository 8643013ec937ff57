//! The fleet-wide check of a DPoP proof in the adapter (`dpop_proofs.shared_record`): the
//! calls to etcd for a paused request and what its answer does to the request — the
//! protocol and the counters are described in `shared_record`, whose per-VM state this
//! works on.

use crate::decision::Decision;
use crate::dpop::etcd::{self, EtcdAnswer};
use crate::dpop::{OnUnavailable, ProofId, ReplayError};

use super::apply::{apply, refuse_internal, Stage};
use super::host::{Flow, Host};
use super::peer::Peer;
use super::plugin::Plugin;
use super::proofs::FixedAnswer;
use super::remote::Delivered;
use super::shared_record::{PendingCheck, SharedRecord, Step, MAX_ANSWER_BYTES, MAX_PENDING};
use crate::request::SerializedHeaders;
use crate::time::UnixMillis;

/// A request whose proof the fleet-wide record must take before it goes on.
pub struct ToCheck {
    pub context_id: u32,
    pub headers: SerializedHeaders,
    pub peer: Peer,
    pub decision: Decision,
    pub proof: ProofId,
    pub expires_at: i64,
}

impl Plugin {
    /// Starts the fleet-wide check of `request`'s proof: `Flow::Pause` while etcd
    /// answers, or the applied answer when the call could not start.
    pub fn check_shared_record(
        &self,
        record: &SharedRecord,
        request: ToCheck,
        now: UnixMillis,
        stage: Stage,
    ) -> Flow {
        let host = self.host();
        let lease = etcd::bucket_lease(
            &record.settings.key_prefix,
            record.bucket_seconds,
            request.expires_at,
            now.seconds(),
        );
        let key = etcd::proof_key(&record.settings.key_prefix, request.proof);
        let step = if record.lease_known(lease.id) {
            Step::Txn
        } else {
            Step::Lease
        };
        let full = record.pending_full();
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
        match record.hold(check) {
            None => Flow::Pause,
            Some(check) => self.unavailable(record, &check, "busy", now, stage),
        }
    }

    /// Handles etcd's answer to one of this VM's calls, on the effective context of its
    /// request (made so when the call was sent from a root callback). `false` when the
    /// token is not one of them.
    pub fn on_record_response(&self, delivered: &Delivered, now: UnixMillis) -> bool {
        let Some(record) = self.shared_record() else {
            return false;
        };
        let Some(mut check) = record.take(delivered.token) else {
            return false;
        };
        let host = self.host();
        let elapsed = now.millis_since(check.started_ms);
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
                apply(
                    &self.effects(),
                    &check.decision,
                    &check.headers,
                    Stage::Paused,
                );
            }
            EtcdAnswer::Exists => {
                record.stats.replayed.increment(host);
                self.apply_again(&check, ReplayError::Replayed, now, Stage::Paused);
            }
            EtcdAnswer::LeaseMissing => {
                record.stats.failures.increment(host);
                self.unavailable(record, &check, "the lease is missing", now, Stage::Paused);
            }
            EtcdAnswer::Unavailable(why)
                if answered
                    && !check.retried
                    && now.millis_since(check.started_ms) < record.settings.timeout_ms =>
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

    fn next_step(
        &self,
        record: &SharedRecord,
        mut check: PendingCheck,
        step: Step,
        now: UnixMillis,
    ) {
        let host = self.host();
        match record.dispatch(host, step, &check.key, &check.lease) {
            Some(token) => {
                check.token = token;
                check.step = step;
                if let Some(check) = record.hold(check) {
                    self.unavailable(record, &check, "busy", now, Stage::Paused);
                }
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
        now: UnixMillis,
        stage: Stage,
    ) -> Flow {
        let host = self.host();
        match record.settings.on_unavailable {
            OnUnavailable::Refuse => {
                log::warn!(
                    "claimgate: DPoP shared record unavailable ({why}): the request gets 503"
                );
                self.apply_again(check, ReplayError::Unavailable, now, stage)
            }
            OnUnavailable::Local => {
                record.stats.fallbacks.increment(host);
                log::warn!(
                    "claimgate: DPoP shared record unavailable ({why}): the per-Envoy record \
                     decided alone (on_unavailable: local)"
                );
                apply(&self.effects(), &check.decision, &check.headers, stage)
            }
        }
    }

    /// Decides `check`'s request again with the fleet-wide record's `answer`, and
    /// applies that decision (500 when it cannot be made).
    fn apply_again(
        &self,
        check: &PendingCheck,
        answer: ReplayError,
        now: UnixMillis,
        stage: Stage,
    ) -> Flow {
        let fixed = FixedAnswer(answer);
        match self.decide_recording(&check.headers, &check.peer, now, Some(&fixed)) {
            Some((decision, _)) => apply(&self.effects(), &decision, &check.headers, stage),
            None => refuse_internal(self.host()),
        }
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
