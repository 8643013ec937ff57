//! Where a request's time goes inside the module, by phase (issue 22), in a measurement
//! build only (feature `phase-timing`; `scripts/load.sh --phases` builds and runs it).
//! Each mark reads WASI's monotonic clock (one host call, about 0.2 µs, so the build is
//! a little slower than the shipped one); every `REPORT_EVERY` requests the VM logs the
//! mean nanoseconds of each phase at warning level and starts again. The shipped build
//! compiles every mark to nothing.

/// The phases of one request, in order; a mark ends the phase it names.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// `get_header_map_pairs` and turning the answer into the header list.
    ReadHeaders = 0,
    /// The clock, the log level, the peer's properties.
    Prepare = 1,
    /// The decision (token, cache, policy, outcome).
    Decide = 2,
    /// The counters of the decision.
    Counters = 3,
    /// Building the decision's filter state and `set_property`.
    FilterState = 4,
    /// The header edits (or the local response).
    Respond = 5,
}

#[cfg(feature = "phase-timing")]
mod enabled {
    use std::cell::RefCell;
    use std::time::Instant;

    use super::Phase;

    const PHASES: usize = 6;
    const NAMES: [&str; PHASES] = [
        "read headers",
        "prepare",
        "decide",
        "counters",
        "filter state",
        "respond",
    ];
    const REPORT_EVERY: u64 = 5_000;

    #[derive(Default)]
    struct Totals {
        last: Option<Instant>,
        nanos: [u128; PHASES],
        requests: u64,
    }

    thread_local! {
        static TOTALS: RefCell<Totals> = RefCell::new(Totals::default());
    }

    pub fn start() {
        TOTALS.with(|totals| {
            if let Ok(mut totals) = totals.try_borrow_mut() {
                totals.last = Some(Instant::now());
            }
        });
    }

    pub fn mark(phase: Phase) {
        TOTALS.with(|totals| {
            let Ok(mut totals) = totals.try_borrow_mut() else {
                return;
            };
            let now = Instant::now();
            if let Some(last) = totals.last.replace(now) {
                if let Some(slot) = totals.nanos.get_mut(phase as usize) {
                    *slot += now.duration_since(last).as_nanos();
                }
            }
        });
    }

    pub fn finish() {
        TOTALS.with(|totals| {
            let Ok(mut totals) = totals.try_borrow_mut() else {
                return;
            };
            totals.last = None;
            totals.requests += 1;
            if totals.requests < REPORT_EVERY {
                return;
            }
            let requests = totals.requests;
            let line: Vec<String> = NAMES
                .iter()
                .zip(totals.nanos)
                .map(|(name, nanos)| format!("{name} {} ns", nanos / u128::from(requests)))
                .collect();
            log::warn!(
                "claimgate phase timing, mean of {requests} requests: {}",
                line.join(", ")
            );
            *totals = Totals::default();
        });
    }
}

#[cfg(feature = "phase-timing")]
pub use enabled::{finish, mark, start};

#[cfg(not(feature = "phase-timing"))]
#[inline(always)]
pub fn start() {}

#[cfg(not(feature = "phase-timing"))]
#[inline(always)]
pub fn mark(_phase: Phase) {}

#[cfg(not(feature = "phase-timing"))]
#[inline(always)]
pub fn finish() {}
