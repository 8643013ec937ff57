//! Logging to Envoy's log. The SDK's logger panics when a log call fails, so the module
//! installs this one; and `log::max_level` follows Envoy's level for Wasm, so a record
//! below it is never even formatted (a debug line per request costs real time).

use std::cell::Cell;

use super::host::Host;
use crate::time::UnixMillis;

/// Sends `log` records to the host's log; a failed log call is dropped.
#[cfg(target_os = "wasi")]
pub struct HostLogger<H: 'static> {
    host: &'static H,
}

#[cfg(target_os = "wasi")]
impl<H> HostLogger<H> {
    pub const fn new(host: &'static H) -> HostLogger<H> {
        HostLogger { host }
    }
}

#[cfg(target_os = "wasi")]
impl<H: Host + Sync + Send> log::Log for HostLogger<H> {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let _ = self
                .host
                .log(record.level(), for_envoy(&record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

/// A log line as the host gets it: Envoy already starts each with `wasm log PLUGIN ROOT_ID:`
/// (`wasm log claimgate claimgate:`), so the module's own `claimgate: ` prefix is dropped
/// rather than doubled.
pub(crate) fn for_envoy(message: &str) -> &str {
    message.strip_prefix("claimgate: ").unwrap_or(message)
}

/// Makes `log::max_level` follow Envoy's log level, which the admin `/logging` endpoint
/// can change at run time: asked at most once a second, so a request normally makes no
/// host call for it.
#[derive(Default)]
pub struct LogLevelSync {
    /// When the level was last asked for (0: never).
    checked_ms: Cell<u64>,
}

impl LogLevelSync {
    pub fn sync(&self, host: &dyn Host, now_ms: UnixMillis) {
        let now_ms = now_ms.0;
        let checked = self.checked_ms.get();
        if checked != 0 && now_ms.saturating_sub(checked) < 1000 {
            return;
        }
        self.checked_ms.set(now_ms.max(1));
        // A level the host cannot tell leaves Info, the default.
        log::set_max_level(host.log_level().unwrap_or(log::LevelFilter::Info));
    }
}
