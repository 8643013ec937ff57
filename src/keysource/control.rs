//! The control record every worker VM of one Envoy shares, and its transitions: due,
//! lease taken, succeeded, failed, discovered. Pure functions of the record, the source
//! and the time, so the whole lifecycle is tested without a host.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::schedule::{backoff_ms, cache_duration_ms, refresh_after_ms};
use super::{JwksLocation, RemoteSource};
use crate::time::UnixMillis;

/// The per-provider record every worker VM of one Envoy shares (proxy-wasm shared data,
/// updated with compare-and-swap). Small on purpose: workers read it on every tick.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// Version of the key set in the keys record; 0 while there is none.
    pub version: u64,
    /// Hash of the current JWKS text (an identical refresh keeps the version).
    pub keys_hash: u64,
    /// When the current key set was last fetched successfully (its age, for metrics).
    pub fetched_at: UnixMillis,
    /// When the next routine refresh is due.
    pub refresh_at: UnixMillis,
    /// When the cache duration of the current keys runs out (they are stale after).
    pub expires_at: UnixMillis,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// No new attempt before this (backoff after a failure).
    pub next_attempt_at: UnixMillis,
    /// Until when the fetch under way holds the lease: the worker whose compare-and-swap
    /// write set it fetches, the others wait.
    pub lease_until: UnixMillis,
    /// Completed attempts, successful or not: waiting requests are decided again when
    /// this moves.
    pub attempts: u64,
    /// When the last unknown-`kid` refetch started (0: never).
    pub kid_refetch_at: UnixMillis,
    /// The `jwks_uri` found by discovery, split for the fetch.
    pub jwks_authority: Option<String>,
    pub jwks_path: Option<String>,
}

/// Why a fetch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    Initial,
    Refresh,
    Retry,
    UnknownKid,
}

impl fmt::Display for FetchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FetchReason::Initial => "initial fetch",
            FetchReason::Refresh => "refresh",
            FetchReason::Retry => "retry",
            FetchReason::UnknownKid => "unknown kid",
        })
    }
}

impl Control {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a record; an unreadable one counts as empty (and is overwritten).
    pub fn decode(bytes: &[u8]) -> Control {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    pub fn fetch_in_flight(&self, now: UnixMillis) -> bool {
        self.lease_until > now
    }

    pub fn kid_refetch_allowed(&self, source: &RemoteSource, now: UnixMillis) -> bool {
        self.kid_refetch_at == UnixMillis(0)
            || now
                >= self
                    .kid_refetch_at
                    .saturating_add(source.unknown_kid_interval_ms)
    }

    /// Whether the current keys may still be used: present, and not stale for longer
    /// than the configured maximum.
    pub fn keys_usable(&self, source: &RemoteSource, now: UnixMillis) -> bool {
        self.version > 0 && now < self.stale_until(source)
    }

    pub fn stale_until(&self, source: &RemoteSource) -> UnixMillis {
        self.expires_at.saturating_add(source.max_stale_ms)
    }

    /// Whether a fetch should start now, and why. `kid_wanted`: a request is waiting on
    /// an unknown `kid`.
    pub fn due(
        &self,
        source: &RemoteSource,
        now: UnixMillis,
        kid_wanted: bool,
    ) -> Option<FetchReason> {
        if self.fetch_in_flight(now) {
            return None;
        }
        if kid_wanted && self.kid_refetch_allowed(source, now) {
            return Some(FetchReason::UnknownKid);
        }
        if now < self.next_attempt_at {
            return None;
        }
        match (self.version, self.failures) {
            (0, 0) => Some(FetchReason::Initial),
            (_, failures) if failures > 0 => Some(FetchReason::Retry),
            _ if now >= self.refresh_at => Some(FetchReason::Refresh),
            _ => None,
        }
    }

    /// The record with the lease taken (for the worker whose write of it wins).
    pub fn acquired(&self, source: &RemoteSource, now: UnixMillis, reason: FetchReason) -> Control {
        let mut next = self.clone();
        next.lease_until = now.saturating_add(source.cycle_ms());
        if reason == FetchReason::UnknownKid {
            next.kid_refetch_at = now;
        }
        next
    }

    /// The record after a fetch that produced a valid key set. `keys_hash` is the hash
    /// of the new JWKS text; the version moves only when the keys changed.
    pub fn succeeded(
        &self,
        source: &RemoteSource,
        now: UnixMillis,
        max_age_seconds: Option<u64>,
        keys_hash: u64,
    ) -> Control {
        let duration = cache_duration_ms(source, max_age_seconds);
        let mut next = self.clone();
        if self.version == 0 || self.keys_hash != keys_hash {
            next.version = self.version.saturating_add(1);
        }
        next.keys_hash = keys_hash;
        next.fetched_at = now;
        next.expires_at = now.saturating_add(duration);
        next.refresh_at = now.saturating_add(refresh_after_ms(duration));
        next.failures = 0;
        next.next_attempt_at = UnixMillis(0);
        next.lease_until = UnixMillis(0);
        next.attempts = self.attempts.saturating_add(1);
        next
    }

    /// The record after a failed fetch: keys untouched, retry scheduled with backoff and
    /// jitter (`jitter` is any random number). Discovery is redone on the next attempt.
    pub fn failed(&self, source: &RemoteSource, now: UnixMillis, jitter: u64) -> Control {
        let mut next = self.clone();
        next.failures = self.failures.saturating_add(1);
        next.next_attempt_at = now.saturating_add(backoff_ms(
            next.failures,
            source.retry_initial_ms,
            source.retry_max_ms,
            jitter,
        ));
        next.lease_until = UnixMillis(0);
        next.attempts = self.attempts.saturating_add(1);
        next.jwks_authority = None;
        next.jwks_path = None;
        next
    }

    /// The record with the `jwks_uri` found by discovery.
    pub fn discovered(&self, location: &JwksLocation) -> Control {
        let mut next = self.clone();
        next.jwks_authority = Some(location.authority.clone());
        next.jwks_path = Some(location.path.clone());
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::test_support::*;
    #[test]
    fn the_first_fetch_is_due_at_once_and_nothing_while_one_is_in_flight() {
        let source = source();
        let control = Control::default();
        assert_eq!(control.due(&source, NOW, false), Some(FetchReason::Initial));
        let taken = control.acquired(&source, NOW, FetchReason::Initial);
        assert_eq!(taken.lease_until, NOW + 6 * S);
        assert_eq!(taken.due(&source, NOW + S, true), None);
        // A lease that was never released (the holder died) expires.
        assert_eq!(
            taken.due(&source, NOW + 6 * S, false),
            Some(FetchReason::Initial)
        );
    }

    #[test]
    fn an_identical_key_set_keeps_its_version() {
        let source = source();
        let first = Control::default().succeeded(&source, NOW, None, 42);
        let same = first.succeeded(&source, NOW + 600 * S, None, 42);
        assert_eq!(same.version, 1);
        assert_eq!(same.attempts, 2);
        let changed = same.succeeded(&source, NOW + 1200 * S, None, 43);
        assert_eq!(changed.version, 2);
    }

    #[test]
    fn stale_keys_are_used_up_to_the_maximum_staleness() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert!(control.keys_usable(&source, NOW + 600 * S + 86_399 * S));
        assert!(!control.keys_usable(&source, NOW + 600 * S + 86_400 * S));
        assert!(!Control::default().keys_usable(&source, NOW));
    }

    #[test]
    fn unknown_kid_refetches_are_rate_limited() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert_eq!(
            control.due(&source, NOW + S, true),
            Some(FetchReason::UnknownKid)
        );
        let taken = control.acquired(&source, NOW + S, FetchReason::UnknownKid);
        let done = taken.succeeded(&source, NOW + 2 * S, None, 1);
        assert_eq!(done.kid_refetch_at, NOW + S);
        assert_eq!(done.due(&source, NOW + 30 * S, true), None);
        assert_eq!(
            done.due(&source, NOW + 31 * S, true),
            Some(FetchReason::UnknownKid)
        );
        // During backoff an unknown kid still may fetch, within the rate limit.
        let failing = done.failed(&source, NOW + 40 * S, 0);
        assert_eq!(
            failing.due(&source, NOW + 40 * S, true),
            Some(FetchReason::UnknownKid)
        );
    }

    #[test]
    fn control_records_round_trip_and_garbage_reads_as_empty() {
        let source = source();
        let control = Control::default()
            .succeeded(&source, NOW, Some(900), 99)
            .discovered(&JwksLocation {
                authority: "a".into(),
                path: "/p".into(),
            });
        assert_eq!(Control::decode(&control.encode()), control);
        assert_eq!(Control::decode(b"\xff garbage"), Control::default());
    }
}
