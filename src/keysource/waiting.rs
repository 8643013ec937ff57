//! Requests that lack keys: whether one waits for a fetch, and whether it keeps waiting.

use super::{Control, RemoteSource};
use crate::key_miss::MissKind;
use crate::time::UnixMillis;

/// Whether a request that lacks keys should wait for a fetch (until the given time), or
/// be decided now with the keys there are.
pub fn wait_until(
    control: &Control,
    source: &RemoteSource,
    now: UnixMillis,
    miss: MissKind,
) -> Option<UnixMillis> {
    let wait = match miss {
        _ if control.fetch_in_flight(now) => true,
        MissKind::NoKeys => control.next_attempt_at <= now.saturating_add(source.timeout_ms),
        MissKind::UnknownKid => control.kid_refetch_allowed(source, now),
    };
    wait.then(|| now.saturating_add(source.cycle_ms()))
}

/// Whether a request paused at `attempts_seen` (the control record's attempt count when
/// it paused) keeps waiting. It stops at its deadline, when an attempt has completed
/// since it paused, or when no fetch is running or about to run for it.
pub fn keep_waiting(
    control: &Control,
    source: &RemoteSource,
    now: UnixMillis,
    miss: MissKind,
    attempts_seen: u64,
    until: UnixMillis,
) -> bool {
    if now >= until || control.attempts != attempts_seen {
        return false;
    }
    if control.fetch_in_flight(now) {
        return true;
    }
    match miss {
        MissKind::NoKeys => control.next_attempt_at <= now.saturating_add(source.timeout_ms),
        MissKind::UnknownKid => control.kid_refetch_allowed(source, now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::test_support::*;
    #[test]
    fn requests_wait_only_when_a_fetch_is_running_or_coming() {
        let source = source();
        let empty = Control::default();
        assert_eq!(
            wait_until(&empty, &source, NOW, MissKind::NoKeys),
            Some(NOW + 6 * S)
        );
        let backing_off = empty.failed(&source, NOW, 0).failed(&source, NOW, 0);
        // Second failure: next attempt 1 s away (within the timeout), so wait.
        assert!(wait_until(&backing_off, &source, NOW, MissKind::NoKeys).is_some());
        let mut far = backing_off.clone();
        far.next_attempt_at = NOW + 60 * S;
        assert_eq!(wait_until(&far, &source, NOW, MissKind::NoKeys), None);

        let good = Control::default().succeeded(&source, NOW, None, 1);
        assert!(wait_until(&good, &source, NOW, MissKind::UnknownKid).is_some());
        let limited = good
            .acquired(&source, NOW, FetchReason::UnknownKid)
            .succeeded(&source, NOW + S, None, 1);
        assert_eq!(
            wait_until(&limited, &source, NOW + 2 * S, MissKind::UnknownKid),
            None
        );
        let in_flight = limited.acquired(&source, NOW + 2 * S, FetchReason::Refresh);
        assert!(wait_until(&in_flight, &source, NOW + 2 * S, MissKind::UnknownKid).is_some());
    }

    #[test]
    fn waiting_stops_at_the_deadline_or_when_an_attempt_completes() {
        let source = source();
        let control = Control::default().acquired(&source, NOW, FetchReason::Initial);
        let until = NOW + 6 * S;
        assert!(keep_waiting(
            &control,
            &source,
            NOW + S,
            MissKind::NoKeys,
            0,
            until
        ));
        assert!(!keep_waiting(
            &control,
            &source,
            until,
            MissKind::NoKeys,
            0,
            until
        ));
        let done = control.failed(&source, NOW + S, 0);
        assert!(!keep_waiting(
            &done,
            &source,
            NOW + S,
            MissKind::NoKeys,
            0,
            until
        ));
        // Nothing running and the rate limit spent: decide now.
        let spent = Control::default()
            .succeeded(&source, NOW, None, 1)
            .acquired(&source, NOW, FetchReason::UnknownKid)
            .succeeded(&source, NOW, None, 1);
        assert!(!keep_waiting(
            &spent,
            &source,
            NOW + S,
            MissKind::UnknownKid,
            2,
            until
        ));
    }
}
