//! The two clocks the code reads, as two types: [`UnixSeconds`] for everything a token
//! or a proof says (`exp`, `iat`, `auth_time`, nonces, the decision's `now`) and
//! [`UnixMillis`] for the proxy-wasm host clock and what is scheduled by it (key
//! fetches, waiting requests, the once-only record's checks). One cannot be passed for
//! the other; the one conversion is [`UnixMillis::seconds`]. Arithmetic saturates: a
//! time near the ends of the range never overflows on a request path. Code that compares
//! the time with a claim's number reads the seconds out (`now.0`) at that comparison.

use std::ops::Add;

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, as JWT claims count them (RFC 7519 `NumericDate`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixSeconds(pub i64);

/// Milliseconds since the Unix epoch, as the proxy-wasm host clock counts them.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMillis(pub u64);

impl UnixSeconds {
    /// `seconds` later (earlier when negative), saturating.
    #[must_use]
    pub fn saturating_add(self, seconds: i64) -> UnixSeconds {
        UnixSeconds(self.0.saturating_add(seconds))
    }
}

impl UnixMillis {
    /// The same instant in whole seconds (rounded down; `i64::MAX` past its range).
    #[must_use]
    pub fn seconds(self) -> UnixSeconds {
        UnixSeconds(i64::try_from(self.0 / 1000).unwrap_or(i64::MAX))
    }

    /// `millis` later, saturating.
    #[must_use]
    pub fn saturating_add(self, millis: u64) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to this instant; 0 when `earlier` is not earlier.
    #[must_use]
    pub fn millis_since(self, earlier: UnixMillis) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// `millis` later, saturating as [`UnixMillis::saturating_add`] does (never an overflow).
impl Add<u64> for UnixMillis {
    type Output = UnixMillis;

    fn add(self, millis: u64) -> UnixMillis {
        self.saturating_add(millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_convert_to_whole_seconds_and_arithmetic_saturates() {
        assert_eq!(
            UnixMillis(1_700_000_000_999).seconds(),
            UnixSeconds(1_700_000_000)
        );
        assert_eq!(
            UnixMillis(u64::MAX).seconds(),
            UnixSeconds(18_446_744_073_709_551)
        );
        assert_eq!(
            UnixSeconds(i64::MAX).saturating_add(1),
            UnixSeconds(i64::MAX)
        );
        assert_eq!(
            UnixSeconds(i64::MIN).saturating_add(-1),
            UnixSeconds(i64::MIN)
        );
        assert_eq!(UnixMillis(u64::MAX).saturating_add(1), UnixMillis(u64::MAX));
        assert_eq!(UnixMillis(u64::MAX) + 1, UnixMillis(u64::MAX));
        assert_eq!(UnixMillis(5).millis_since(UnixMillis(7)), 0);
        assert_eq!(UnixMillis(7).millis_since(UnixMillis(5)), 2);
    }
}
