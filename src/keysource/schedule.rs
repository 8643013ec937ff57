//! When keys expire and when to try again: the cache duration (`max-age` within the
//! configured bounds), the early refresh point, and exponential backoff with jitter.

use super::RemoteSource;

/// How long a fetched key set is good for: the response's `max-age` (or the configured
/// duration without one), within the configured bounds.
pub fn cache_duration_ms(source: &RemoteSource, max_age_seconds: Option<u64>) -> u64 {
    let wanted = max_age_seconds.map_or(source.cache_duration_ms, |seconds| {
        seconds.saturating_mul(1000)
    });
    wanted.clamp(
        source.min_cache_duration_ms,
        source
            .max_cache_duration_ms
            .max(source.min_cache_duration_ms),
    )
}

/// Refresh before the cache duration runs out: at 90 % of it, and at least 30 s early
/// for durations of 5 minutes and more.
pub fn refresh_after_ms(duration: u64) -> u64 {
    let early = if duration >= 300_000 {
        (duration / 10).max(30_000)
    } else {
        duration / 10
    };
    duration.saturating_sub(early).max(1)
}

/// Exponential backoff with "equal jitter": half the delay is fixed, half random, so
/// retries from many Envoys spread out but never come sooner than half the schedule.
pub fn backoff_ms(failures: u32, initial_ms: u64, max_ms: u64, jitter: u64) -> u64 {
    let exponent = failures.saturating_sub(1).min(32);
    let delay = initial_ms
        .saturating_mul(1u64 << exponent)
        .min(max_ms)
        .max(1);
    let half = delay / 2;
    half + jitter % (delay - half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::max_age_seconds;
    use crate::keysource::test_support::*;

    #[test]
    fn refresh_comes_before_the_cache_duration_runs_out() {
        let source = source();
        let control = Control::default().succeeded(&source, NOW, None, 1);
        assert_eq!(control.version, 1);
        assert_eq!(control.expires_at, NOW + 600 * S);
        assert_eq!(control.refresh_at, NOW + 540 * S);
        assert_eq!(control.due(&source, NOW + 539 * S, false), None);
        assert_eq!(
            control.due(&source, NOW + 540 * S, false),
            Some(FetchReason::Refresh)
        );
        assert_eq!(refresh_after_ms(2 * S), 1800);
        assert_eq!(refresh_after_ms(0), 1);
    }

    #[test]
    fn max_age_is_honoured_within_the_bounds() {
        let source = source();
        assert_eq!(cache_duration_ms(&source, None), 600 * S);
        assert_eq!(cache_duration_ms(&source, Some(900)), 900 * S);
        assert_eq!(cache_duration_ms(&source, Some(15)), 300 * S);
        assert_eq!(cache_duration_ms(&source, Some(10_000_000)), 86_400 * S);
        assert_eq!(
            max_age_seconds("public, max-age=15, stale-if-error=86400"),
            Some(15)
        );
        assert_eq!(max_age_seconds("MAX-AGE = 60"), Some(60));
        assert_eq!(max_age_seconds("max-age=\"30\""), Some(30));
        assert_eq!(max_age_seconds("no-store"), Some(0));
        assert_eq!(max_age_seconds("max-age=-1"), None);
        assert_eq!(max_age_seconds("public"), None);
    }

    #[test]
    fn failures_back_off_exponentially_with_jitter_and_keep_the_keys() {
        let source = source();
        let good = Control::default().succeeded(&source, NOW, None, 1);
        let failed = good.failed(&source, NOW + 540 * S, 0);
        assert_eq!(failed.version, 1);
        assert_eq!(failed.failures, 1);
        assert_eq!(failed.next_attempt_at, NOW + 540 * S + 500);
        assert_eq!(failed.due(&source, NOW + 540 * S + 499, false), None);
        assert_eq!(
            failed.due(&source, NOW + 540 * S + 500, false),
            Some(FetchReason::Retry)
        );
        for failures in 1..40 {
            for jitter in [0, 1, 999, u64::MAX] {
                let delay = backoff_ms(failures, S, 300 * S, jitter);
                let full = (S << (failures - 1).min(32)).min(300 * S);
                assert!(
                    delay >= full / 2 && delay <= full,
                    "{failures} {jitter} {delay}"
                );
            }
        }
        assert_eq!(backoff_ms(0, 0, 0, 5), 1);
    }
}
