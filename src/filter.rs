//! The proxy-wasm adapter: loads the configuration in the root context and, per request,
//! hands the headers to [`decide`] and applies what it returns. No policy lives here.
//!
//! Remote key sets: every root context (one per worker VM) ticks; on a tick it reads the
//! provider's small control record from Envoy's shared data, installs a newer key set
//! when another VM published one, and — when [`Control::due`] says so and it wins the
//! compare-and-swap lease — dispatches the fetch itself. The fetched, validated JWKS is
//! published in shared data for every VM, so one Envoy makes one fetch per refresh.
//! Requests that lack keys are paused here and decided again from the root context
//! when a fetch completes or their wait runs out. All scheduling and validation is in
//! [`crate::keysource`]; this file only moves bytes between it and the host.
//!
//! Host calls go through `proxy_wasm::hostcalls` (which return `Result`) rather than the
//! trait helpers that unwrap, and response headers of a fetch are only read when the
//! host says there are some: a failed callout has none, and asking would trap.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls::{self, define_metric, increment_metric};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};
use rand_core::{OsRng, RngCore};

use crate::cache::TokenCache;
use crate::config::{Config, HostCryptoMode};
use crate::decision::{decide_with_cache, Decision, KeyMiss, Outcome};
use crate::jwks::{ForeignVerifier, HostCrypto, KeyRing, KeySet, ParsedKeySet, SymmetricKeys};
use crate::keysource::{
    self, decode_keys, encode_keys, fnv1a, Control, Endpoint, FetchError, FetchReason,
    FetchRequest, FetchResponse, FetchStep, Miss, RemoteSource, SourceKind,
};
use crate::policy::Mode;
use crate::provider::ProviderId;
use crate::request::RequestView;

proxy_wasm::main! {{
    // Our logger, not the SDK's (which panics when a log call fails); the level follows
    // Envoy's from the first configuration on.
    let _ = log::set_logger(&HOST_LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(ClaimgateRoot::new(context_id))
    });
}}

/// Sends `log` records to Envoy's log. Records below Envoy's current level for Wasm are
/// never even formatted, because `log::max_level` follows that level
/// ([`sync_log_level`]); a failed log call is ignored.
struct HostLogger;

static HOST_LOGGER: HostLogger = HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            log::Level::Trace => LogLevel::Trace,
            log::Level::Debug => LogLevel::Debug,
            log::Level::Info => LogLevel::Info,
            log::Level::Warn => LogLevel::Warn,
            log::Level::Error => LogLevel::Error,
        };
        let _ = hostcalls::log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Makes `log::max_level` follow Envoy's log level for Wasm, which the admin `/logging`
/// endpoint can change at run time: asked at most once a second (`checked_ms` is when it
/// was last asked), so a request normally makes no host call for it.
fn sync_log_level(checked_ms: &Cell<u64>, now_ms: u64) {
    if checked_ms.get() != 0 && now_ms.saturating_sub(checked_ms.get()) < 1000 {
        return;
    }
    checked_ms.set(now_ms.max(1));
    #[link(wasm_import_module = "env")]
    extern "C" {
        #[allow(clashing_extern_declarations)]
        fn proxy_get_log_level(return_level: *mut u32) -> u32;
    }
    let mut level: u32 = u32::MAX;
    // SAFETY: the host writes one u32 into `level`, a live local; the raw import (rather
    // than the SDK's) keeps an unknown level or status from becoming a panic.
    let status = unsafe { proxy_get_log_level(&mut level) };
    let filter = match (status, level) {
        (0, 0) => log::LevelFilter::Trace,
        (0, 1) => log::LevelFilter::Debug,
        (0, 2) => log::LevelFilter::Info,
        (0, 3) => log::LevelFilter::Warn,
        (0, 4) => log::LevelFilter::Error,
        (0, 5) => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    log::set_max_level(filter);
}

/// How often root contexts look at the shared key records (only with remote sources).
const TICK: Duration = Duration::from_millis(100);
/// The CAS value used to create a record only if it does not exist yet: the host creates
/// a missing key whatever the CAS, and refuses to overwrite an existing one whose CAS
/// differs. CAS values count up from 1, so an existing record never has this one in
/// practice.
const CAS_CREATE: u32 = u32::MAX;
/// Compare-and-swap attempts before giving up until the next tick.
const CAS_ATTEMPTS: usize = 8;
/// Most requests one VM holds while waiting for keys; beyond that they are decided at
/// once with the keys there are (memory stays bounded under a flood).
const MAX_WAITERS: usize = 4096;

/// What every HTTP context of this plugin shares: the compiled configuration and the
/// current keys (swapped whole when a key set is replaced).
struct Shared {
    config: Config,
    keys: RefCell<Rc<KeyRing>>,
    /// Verified tokens of this VM; emptied whenever `keys` is replaced.
    cache: RefCell<TokenCache>,
    /// This VM's view of each provider's remote source, by provider index.
    remote: RefCell<Vec<Option<RemoteState>>>,
    /// Requests paused until keys arrive.
    waiters: RefCell<Vec<Waiter>>,
    dry_run: DryRunCounters,
    /// When Envoy's log level was last asked for ([`sync_log_level`]).
    log_level_checked_ms: Cell<u64>,
}

/// Envoy counters for dry-run verdicts (`/stats?filter=claimgate`): totals, and per
/// dry-run rule how often it would have refused a request that was allowed.
#[derive(Default)]
struct DryRunCounters {
    would_deny: Option<u32>,
    would_allow: Option<u32>,
    rule_would_deny: HashMap<String, u32>,
}

/// Envoy's BoringSSL through the `verify_signature` foreign function; counts its calls in
/// `claimgate.signatures.checked_by_envoy` (the start-up self-test makes six).
struct EnvoyCrypto {
    calls: Option<u32>,
}

impl ForeignVerifier for EnvoyCrypto {
    fn verify_signature(&self, arguments: &[u8]) -> Option<Vec<u8>> {
        if let Some(id) = self.calls {
            let _ = increment_metric(id, 1);
        }
        call_foreign_function("verify_signature", arguments)
    }
}

/// Probes Envoy's signature checks and lets `ring` use the ones that pass the self-test.
fn install_host_crypto(ring: &mut KeyRing) {
    let name = "claimgate.signatures.checked_by_envoy";
    let calls = define_metric(MetricType::Counter, name)
        .inspect_err(|status| log::warn!("claimgate: cannot define counter {name}: {status:?}"))
        .ok();
    let host = HostCrypto::probe(Box::new(EnvoyCrypto { calls }));
    let algorithms = host.algorithms();
    if algorithms.is_empty() {
        log::info!("claimgate: Envoy's verify_signature is missing or failed its self-test: every signature is checked in the module");
        return;
    }
    let names: Vec<&str> = algorithms.iter().map(|alg| alg.name()).collect();
    log::info!(
        "claimgate: {} signatures checked by Envoy's crypto library (self-test passed); others in the module",
        names.join(", ")
    );
    ring.set_host_crypto(Rc::new(host));
}

/// `proxy_call_foreign_function` without the SDK wrapper, which panics on a status it
/// does not know: any answer but `Ok` is `None` here.
fn call_foreign_function(name: &str, arguments: &[u8]) -> Option<Vec<u8>> {
    #[link(wasm_import_module = "env")]
    extern "C" {
        #[allow(clashing_extern_declarations)]
        fn proxy_call_foreign_function(
            function_name_data: *const u8,
            function_name_size: usize,
            arguments_data: *const u8,
            arguments_size: usize,
            results_data: *mut *mut u8,
            results_size: *mut usize,
        ) -> u32;
    }
    const OK: u32 = 0;
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the pointers and lengths describe live buffers for the duration of the
    // call; a non-null result was allocated by the host through this module's allocator
    // (`proxy_on_memory_allocate`) with exactly `size` bytes and is owned by us now.
    unsafe {
        let status = proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            arguments.as_ptr(),
            arguments.len(),
            &mut data,
            &mut size,
        );
        match (status, data.is_null()) {
            (OK, true) => Some(Vec::new()),
            (OK, false) => Some(Vec::from_raw_parts(data, size, size)),
            _ => None,
        }
    }
}

impl DryRunCounters {
    fn define(config: &Config) -> DryRunCounters {
        let counter = |name: &str| match define_metric(MetricType::Counter, name) {
            Ok(id) => Some(id),
            Err(status) => {
                log::warn!("claimgate: cannot define counter {name}: {status:?}");
                None
            }
        };
        let mut counters = DryRunCounters::default();
        let any_dry_run = config.policy.mode == Mode::DryRun
            || config
                .policy
                .rules
                .iter()
                .any(|rule| rule.mode == Mode::DryRun);
        if !any_dry_run {
            return counters;
        }
        counters.would_deny = counter("claimgate.dry_run.would_deny");
        counters.would_allow = counter("claimgate.dry_run.would_allow");
        for rule in config
            .policy
            .rules
            .iter()
            .filter(|rule| rule.mode == Mode::DryRun)
        {
            let stat_name: String = rule
                .name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if let Some(id) = counter(&format!("claimgate.dry_run.rule.{stat_name}.would_deny")) {
                counters.rule_would_deny.insert(rule.name.clone(), id);
            }
        }
        counters
    }

    /// Logs and counts what the dry-run rules would have done with this request.
    fn record(&self, decision: &Decision) {
        let Some(report) = &decision.dry_run else {
            return;
        };
        let status = decision.status();
        let (would_deny, would_allow) = (
            report.status >= 400 && status < 400,
            report.status < 400 && status >= 400,
        );
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
        let bump = |id: Option<u32>| {
            if let Some(id) = id {
                // A failed counter update must not affect the request.
                let _ = increment_metric(id, 1);
            }
        };
        if would_deny {
            bump(self.would_deny);
            bump(
                report
                    .rule
                    .as_ref()
                    .and_then(|rule| self.rule_would_deny.get(rule).copied()),
            );
        }
        if would_allow {
            bump(self.would_allow);
        }
    }
}

#[derive(Default)]
struct RemoteState {
    /// The shared control record as last read.
    control: Control,
    /// Version of the key set installed in this VM (0: none).
    installed: u64,
    /// The fetch this VM has in flight.
    pending: Option<Pending>,
    /// Whether this VM already logged that its keys went stale beyond the limit.
    dropped: bool,
}

struct Pending {
    token: u32,
    step: FetchStep,
    reason: FetchReason,
    started: u64,
}

/// A request paused until its provider's keys arrive.
struct Waiter {
    context_id: u32,
    provider: usize,
    miss: Miss,
    until: u64,
    /// The control record's attempt count when it paused.
    attempts_seen: u64,
    headers: Vec<(String, Vec<u8>)>,
    client_address: Option<String>,
}

fn now_ms() -> u64 {
    // A host clock before 1970 reads as 0: tokens look not yet valid, fetches are due.
    hostcalls::get_current_time()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

fn unix_seconds(now_ms: u64) -> i64 {
    i64::try_from(now_ms / 1000).unwrap_or(i64::MAX)
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    match OsRng.try_fill_bytes(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        // No entropy: jitter from the clock is still better than none.
        Err(_) => fnv1a(&now_ms().to_le_bytes()),
    }
}

/// The control record and its CAS (`None` when the record does not exist yet).
fn read_control(key: &str) -> Option<(Control, Option<u32>)> {
    match hostcalls::get_shared_data(key) {
        Ok((Some(bytes), cas)) => Some((Control::decode(&bytes), cas.or(Some(CAS_CREATE)))),
        Ok((None, _)) => Some((Control::default(), None)),
        Err(status) => {
            log::error!("claimgate: cannot read shared data {key}: {status:?}");
            None
        }
    }
}

/// Read-modify-write of a control record with compare-and-swap. `change` returns `None`
/// to leave it as it is. Returns the record written.
fn update_control(
    key: &str,
    mut change: impl FnMut(&Control) -> Option<Control>,
) -> Option<Control> {
    for _ in 0..CAS_ATTEMPTS {
        let (current, cas) = read_control(key)?;
        let next = change(&current)?;
        match hostcalls::set_shared_data(key, Some(&next.encode()), Some(cas.unwrap_or(CAS_CREATE)))
        {
            Ok(()) => return Some(next),
            Err(Status::CasMismatch) => continue,
            Err(status) => {
                log::error!("claimgate: cannot write shared data {key}: {status:?}");
                return None;
            }
        }
    }
    None
}

impl Shared {
    fn source(&self, provider: usize) -> Option<&RemoteSource> {
        self.config
            .providers
            .get(ProviderId::from_index(provider))
            .and_then(|entry| entry.remote.as_ref())
    }

    fn provider_name(&self, provider: usize) -> &str {
        self.config
            .providers
            .get(ProviderId::from_index(provider))
            .map_or("?", |provider| provider.name.as_str())
    }

    /// Installs a remote key set for `provider` (beside its inline keys, if any).
    fn install(&self, provider: usize, remote: &KeySet) {
        let id = ProviderId::from_index(provider);
        let Some(entry) = self.config.providers.get(id) else {
            return;
        };
        let set = entry.keys_with_remote(remote);
        let mut ring = (**self.keys.borrow()).clone();
        ring.replace(id, Arc::new(set));
        *self.keys.borrow_mut() = Rc::new(ring);
        self.cache.borrow_mut().clear();
    }

    /// Drops `provider`'s remote keys (stale beyond the limit): inline keys remain.
    fn uninstall(&self, provider: usize) {
        let mut ring = (**self.keys.borrow()).clone();
        let id = ProviderId::from_index(provider);
        match self
            .config
            .providers
            .get(id)
            .and_then(|entry| entry.inline_keys.as_ref())
        {
            Some(inline) => ring.replace(id, Arc::clone(inline)),
            None => ring.remove(id),
        }
        *self.keys.borrow_mut() = Rc::new(ring);
        self.cache.borrow_mut().clear();
    }

    /// Reads `provider`'s control record and brings this VM's keys in line with it:
    /// installs a newer published key set, drops one stale beyond the limit. Returns
    /// whether the keys changed.
    fn sync(&self, provider: usize, now: u64) -> bool {
        let Some(source) = self.source(provider) else {
            return false;
        };
        let Some((control, _)) = read_control(&source.control_key()) else {
            return false;
        };
        let mut remote = self.remote.borrow_mut();
        let Some(Some(state)) = remote.get_mut(provider) else {
            return false;
        };
        let mut changed = false;
        let usable = control.keys_usable(source, now);
        if usable && control.version != state.installed {
            match hostcalls::get_shared_data(&source.keys_key()) {
                Ok((Some(record), _)) => match decode_keys(&record) {
                    Some((version, jwks)) => {
                        match KeySet::parse_jwks(jwks, SymmetricKeys::Refused) {
                            Ok(parsed) => {
                                self.install(provider, &parsed.keys);
                                state.installed = version;
                                state.dropped = false;
                                changed = true;
                                log::debug!(
                                    "claimgate: provider {}: installed shared key set version {version} ({} key(s))",
                                    self.provider_name(provider),
                                    parsed.keys.len()
                                );
                            }
                            Err(err) => log::error!(
                                "claimgate: provider {}: shared key set version {version} unreadable: {err}",
                                self.provider_name(provider)
                            ),
                        }
                    }
                    None => log::error!(
                        "claimgate: provider {}: shared key record is malformed",
                        self.provider_name(provider)
                    ),
                },
                Ok((None, _)) => {}
                Err(status) => log::error!(
                    "claimgate: cannot read shared data {}: {status:?}",
                    source.keys_key()
                ),
            }
        }
        if !usable && state.installed != 0 {
            self.uninstall(provider);
            state.installed = 0;
            changed = true;
            if !state.dropped {
                state.dropped = true;
                log::error!(
                    "claimgate: provider {}: key set stale for more than {} s without a successful refresh; dropped (requests get {})",
                    self.provider_name(provider),
                    source.max_stale_ms / 1000,
                    source.outage_status
                );
            }
        }
        state.control = control;
        changed
    }

    /// Whether the HTTP context `context_id` is paused here.
    fn is_waiting(&self, context_id: u32) -> bool {
        self.waiters
            .try_borrow()
            .is_ok_and(|waiters| waiters.iter().any(|w| w.context_id == context_id))
    }

    /// Decides a request with the current keys.
    fn decide(
        &self,
        headers: &[(String, Vec<u8>)],
        client_address: Option<&str>,
        now: u64,
    ) -> Decision {
        let keys = Rc::clone(&self.keys.borrow());
        decide_with_cache(
            &self.config,
            &keys,
            &mut self.cache.borrow_mut(),
            &RequestView::new(headers).with_client_address(client_address),
            unix_seconds(now),
        )
    }
}

/// Applies a decision to the current (effective) HTTP context. `resumed`: the request
/// was paused and must be resumed explicitly when allowed.
fn apply(
    shared: &Shared,
    decision: &Decision,
    request: &[(String, Vec<u8>)],
    resumed: bool,
) -> Action {
    log::debug!(
        "claimgate: {} (status {}, rule {:?}, failed condition {:?}, subject {:?})",
        decision.reason,
        decision.status(),
        decision.rule,
        decision.failed_condition,
        decision.subject
    );
    shared.dry_run.record(decision);
    if shared.config.decision_filter_state {
        // Envoy keeps this as filter state `wasm.claimgate.decision` for access logs
        // (`%FILTER_STATE(wasm.claimgate.decision:PLAIN)%`); Wasm cannot write dynamic
        // metadata (envoy#15148).
        let explanation = decision.explanation();
        if let Err(status) =
            hostcalls::set_property(vec!["claimgate.decision"], Some(explanation.as_bytes()))
        {
            log::debug!("claimgate: cannot set the decision filter state: {status:?}");
        }
    }
    for skipped in &decision.skipped_headers {
        log::warn!(
            "claimgate: identity header {} not set: {}",
            skipped.header,
            skipped.reason
        );
    }
    match &decision.outcome {
        Outcome::Allow { .. } => {
            if let Err(status) = edit_request_headers(decision, request) {
                // Never forward a request whose identity headers could not be fixed.
                log::error!("claimgate: cannot rewrite request headers: {status:?}");
                let _ = hostcalls::send_http_response(500, vec![], None);
                return Action::Pause;
            }
            if resumed {
                if let Err(status) = hostcalls::resume_http_request() {
                    log::error!("claimgate: cannot resume a request: {status:?}");
                }
            }
            Action::Continue
        }
        Outcome::Deny(denial) => {
            let headers: Vec<(&str, &str)> = denial
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            if let Err(status) = hostcalls::send_http_response(
                u32::from(denial.status),
                headers,
                Some(denial.body.as_bytes()),
            ) {
                log::error!("claimgate: cannot send the response: {status:?}");
            }
            Action::Pause
        }
    }
}

/// Applies the decision's header edits, one host call per removed name and per added
/// header (a typical request has no identity header of its own, so only the additions);
/// replacing the whole map in one call costs Envoy more than a few targeted edits.
fn edit_request_headers(decision: &Decision, request: &[(String, Vec<u8>)]) -> Result<(), Status> {
    let Some(edits) = decision.header_edits(request) else {
        return Ok(());
    };
    for name in edits.remove {
        hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, None)?;
    }
    for (name, value) in edits.add {
        hostcalls::add_map_value_bytes(MapType::HttpRequestHeaders, name, value.as_bytes())?;
    }
    Ok(())
}

struct ClaimgateRoot {
    context_id: u32,
    /// This root context's identity in fetch leases.
    holder: u64,
    shared: Option<Rc<Shared>>,
}

impl ClaimgateRoot {
    fn new(context_id: u32) -> ClaimgateRoot {
        ClaimgateRoot {
            context_id,
            holder: random_u64() | 1,
            shared: None,
        }
    }

    /// Starts a fetch for `provider` when one is due and this VM wins the lease.
    fn maybe_fetch(&self, shared: &Shared, provider: usize, now: u64) {
        let Some(source) = shared.source(provider) else {
            return;
        };
        let (pending, control) = {
            let mut remote = shared.remote.borrow_mut();
            let Some(Some(state)) = remote.get_mut(provider) else {
                return;
            };
            // A fetch whose answer never came (cannot happen with Envoy, which always
            // calls back or times out) must not block refreshes forever.
            if state
                .pending
                .as_ref()
                .is_some_and(|p| now > p.started.saturating_add(source.cycle_ms() + 5000))
            {
                state.pending = None;
            }
            (state.pending.is_some(), state.control.clone())
        };
        if pending {
            return;
        }
        let kid_wanted = shared.waiters.borrow().iter().any(|waiter| {
            waiter.provider == provider
                && waiter.miss == Miss::UnknownKid
                && waiter.attempts_seen == control.attempts
        });
        if control.due(source, now, kid_wanted).is_none() {
            return;
        }
        let mut reason = None;
        let acquired = update_control(&source.control_key(), |current| {
            let due = current.due(source, now, kid_wanted)?;
            reason = Some(due);
            Some(current.acquired(source, self.holder, now, due))
        });
        let (Some(control), Some(reason)) = (acquired, reason) else {
            return;
        };
        let request = source.first_request(&control);
        if let Some(Some(state)) = shared.remote.borrow_mut().get_mut(provider) {
            state.control = control;
        }
        self.dispatch(shared, provider, source, request, reason, now);
    }

    fn dispatch(
        &self,
        shared: &Shared,
        provider: usize,
        source: &RemoteSource,
        request: FetchRequest,
        reason: FetchReason,
        now: u64,
    ) {
        let Endpoint {
            cluster,
            authority,
            path,
        } = &request.endpoint;
        let sent = hostcalls::dispatch_http_call(
            cluster,
            vec![
                (":method", "GET"),
                (":path", path),
                (":authority", authority),
                ("accept", "application/json"),
                ("user-agent", "claimgate"),
            ],
            None,
            vec![],
            Duration::from_millis(source.timeout_ms),
        );
        match sent {
            Ok(token) => {
                log::debug!(
                    "claimgate: provider {}: {reason}: fetching {}",
                    shared.provider_name(provider),
                    request.endpoint
                );
                if let Some(Some(state)) = shared.remote.borrow_mut().get_mut(provider) {
                    state.pending = Some(Pending {
                        token,
                        step: request.step,
                        reason,
                        started: now,
                    });
                }
            }
            Err(status) => {
                let error = FetchError::Dispatch(format!(
                    "{status:?} (is cluster '{cluster}' defined in the Envoy configuration?)"
                ));
                self.fail(
                    shared,
                    provider,
                    source,
                    reason,
                    &request.endpoint,
                    &error,
                    now,
                );
            }
        }
    }

    /// Records a failed attempt (keys kept) and logs it once.
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        shared: &Shared,
        provider: usize,
        source: &RemoteSource,
        reason: FetchReason,
        endpoint: &Endpoint,
        error: &FetchError,
        now: u64,
    ) {
        let jitter = random_u64();
        let message = error.to_string();
        let written = update_control(&source.control_key(), |current| {
            Some(current.failed(source, now, jitter))
        });
        let name = shared.provider_name(provider);
        let Some(control) = written else {
            log::error!("claimgate: provider {name}: {reason} from {endpoint} failed: {message}; could not record the failure");
            return;
        };
        let retry_in = control.next_attempt_at.saturating_sub(now);
        let keys = if control.keys_usable(source, now) {
            format!(
                "keeping the last good key set (version {}, usable until {} s from now)",
                control.version,
                control.stale_until(source).saturating_sub(now) / 1000
            )
        } else {
            format!(
                "no key set: requests for this provider get {}",
                source.outage_status
            )
        };
        log::warn!(
            "claimgate: provider {name}: {reason} from {endpoint} failed: {message}; {keys}; retry in {retry_in} ms (attempt {})",
            control.failures
        );
        if let Some(Some(state)) = shared.remote.borrow_mut().get_mut(provider) {
            state.control = control;
        }
    }

    /// Publishes a validated JWKS for every VM and installs it here.
    #[allow(clippy::too_many_arguments)]
    fn publish(
        &self,
        shared: &Shared,
        provider: usize,
        source: &RemoteSource,
        reason: FetchReason,
        endpoint: &Endpoint,
        jwks: &[u8],
        parsed: &ParsedKeySet,
        max_age: Option<u64>,
        now: u64,
    ) {
        let name = shared.provider_name(provider);
        for (index, problem) in &parsed.skipped {
            log::warn!("claimgate: provider {name}: JWKS keys[{index}] skipped: {problem}");
        }
        let hash = fnv1a(jwks);
        let key = source.control_key();
        let mut written = None;
        for _ in 0..CAS_ATTEMPTS {
            let Some((current, cas)) = read_control(&key) else {
                break;
            };
            let next = current.succeeded(source, now, max_age, hash);
            if next.version != current.version {
                if let Err(status) = hostcalls::set_shared_data(
                    &source.keys_key(),
                    Some(&encode_keys(next.version, jwks)),
                    None,
                ) {
                    log::error!("claimgate: provider {name}: cannot share the key set: {status:?}");
                    break;
                }
            }
            match hostcalls::set_shared_data(
                &key,
                Some(&next.encode()),
                Some(cas.unwrap_or(CAS_CREATE)),
            ) {
                Ok(()) => {
                    written = Some(next);
                    break;
                }
                Err(Status::CasMismatch) => continue,
                Err(status) => {
                    log::error!(
                        "claimgate: provider {name}: cannot write shared data {key}: {status:?}"
                    );
                    break;
                }
            }
        }
        let Some(control) = written else {
            log::error!("claimgate: provider {name}: {reason} from {endpoint}: got {} key(s) but could not publish them; retrying", parsed.keys.len());
            return;
        };
        let mut remote = shared.remote.borrow_mut();
        if let Some(Some(state)) = remote.get_mut(provider) {
            let changed = state.installed != control.version;
            if changed {
                shared.install(provider, &parsed.keys);
                state.installed = control.version;
                state.dropped = false;
            }
            log::info!(
                "claimgate: provider {name}: {reason} from {endpoint}: HTTP 200, {} key(s){}, version {}{}, next refresh in {:.1} s",
                parsed.keys.len(),
                if parsed.skipped.is_empty() { String::new() } else { format!(" ({} skipped)", parsed.skipped.len()) },
                control.version,
                if changed { "" } else { " (unchanged)" },
                control.refresh_at.saturating_sub(now) as f64 / 1000.0
            );
            state.control = control;
        }
    }

    /// Decides again every paused request whose wait is over, and resumes or answers it.
    /// Runs last in a callback: resuming a request may re-enter the VM.
    fn settle_waiters(&self, shared: &Shared, now: u64) {
        let ready: Vec<Waiter> = {
            let Ok(mut waiters) = shared.waiters.try_borrow_mut() else {
                return;
            };
            let remote = shared.remote.borrow();
            let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) =
                waiters.drain(..).partition(|waiter| {
                    let state = remote.get(waiter.provider).and_then(Option::as_ref);
                    match (state, shared.source(waiter.provider)) {
                        (Some(state), Some(source)) => !keysource::keep_waiting(
                            &state.control,
                            source,
                            now,
                            waiter.miss,
                            waiter.attempts_seen,
                            waiter.until,
                        ),
                        _ => true,
                    }
                });
            *waiters = waiting;
            ready
        };
        if ready.is_empty() {
            return;
        }
        for waiter in ready {
            if hostcalls::set_effective_context(waiter.context_id).is_err() {
                continue; // the request is gone (client went away)
            }
            let decision = shared.decide(&waiter.headers, waiter.client_address.as_deref(), now);
            apply(shared, &decision, &waiter.headers, true);
        }
        if let Err(status) = hostcalls::set_effective_context(self.context_id) {
            log::error!("claimgate: cannot return to the root context: {status:?}");
        }
    }

    /// Reads a fetch response from the host. Headers are read only when there are some.
    fn read_response(
        num_headers: usize,
        body_size: usize,
        limit: usize,
    ) -> (Option<u16>, Option<String>, Option<Vec<u8>>) {
        if num_headers == 0 {
            return (None, None, None);
        }
        let header = |name: &str| {
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, name)
                .ok()
                .flatten()
                .and_then(|value| String::from_utf8(value).ok())
        };
        let status = header(":status").and_then(|status| status.trim().parse::<u16>().ok());
        let cache_control = header("cache-control");
        let body = if body_size > 0 && body_size <= limit {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
        } else {
            None
        };
        // A response without a readable status is treated like no response at all.
        (status, cache_control, body)
    }
}

impl Context for ClaimgateRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = now_ms();
        let found =
            shared
                .remote
                .borrow_mut()
                .iter_mut()
                .enumerate()
                .find_map(|(provider, state)| {
                    let state = state.as_mut()?;
                    if state.pending.as_ref()?.token != token_id {
                        return None;
                    }
                    Some((provider, state.pending.take()?, state.control.clone()))
                });
        let Some((provider, pending, control)) = found else {
            return;
        };
        let Some(source) = shared.source(provider) else {
            return;
        };
        let limit = source.max_response_bytes;
        let (status, cache_control, body) = Self::read_response(num_headers, body_size, limit);
        let response = FetchResponse {
            status,
            cache_control: cache_control.as_deref(),
            body_size,
            body: body.as_deref(),
        };
        let endpoint = source.first_request(&control).endpoint;
        // Both steps fail the same way: one place records the failure and its backoff.
        let outcome = match pending.step {
            FetchStep::Discovery => {
                let allow = matches!(
                    source.kind,
                    SourceKind::Discovery {
                        allow_cross_origin: true,
                        ..
                    }
                );
                keysource::validate_discovery(&response, limit, &source.issuer, allow).map(
                    |location| {
                        let written = update_control(&source.control_key(), |current| {
                            Some(current.discovered(&location))
                        })
                        .unwrap_or_else(|| control.discovered(&location));
                        let next = source.first_request(&written);
                        log::info!(
                            "claimgate: provider {}: discovery from {endpoint}: jwks_uri is {}",
                            shared.provider_name(provider),
                            next.endpoint
                        );
                        if let Some(Some(state)) = shared.remote.borrow_mut().get_mut(provider) {
                            state.control = written;
                        }
                        self.dispatch(
                            &shared,
                            provider,
                            source,
                            next,
                            pending.reason,
                            pending.started,
                        );
                    },
                )
            }
            FetchStep::Jwks => keysource::validate_jwks(&response, limit).map(|valid| {
                let jwks = response.body.unwrap_or_default();
                self.publish(
                    &shared,
                    provider,
                    source,
                    pending.reason,
                    &endpoint,
                    jwks,
                    &valid.parsed,
                    valid.max_age_seconds,
                    now,
                );
            }),
        };
        if let Err(error) = outcome {
            self.fail(
                &shared,
                provider,
                source,
                pending.reason,
                &endpoint,
                &error,
                now,
            );
        }
        self.settle_waiters(&shared, now);
    }
}

impl RootContext for ClaimgateRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        sync_log_level(&Cell::new(0), now_ms());
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            _ => {
                log::error!("claimgate: no plugin configuration; give the JSON configuration as the Wasm plugin 'configuration'");
                return false;
            }
        };
        match Config::from_json(&bytes) {
            Ok(config) => {
                let mut ring = config.initial_keys();
                if config.host_crypto == HostCryptoMode::Auto {
                    install_host_crypto(&mut ring);
                }
                let keys = RefCell::new(Rc::new(ring));
                let cache = RefCell::new(TokenCache::new(config.token_cache));
                let remote: Vec<Option<RemoteState>> = config
                    .providers
                    .iter()
                    .map(|(_, entry)| entry.remote.as_ref().map(|_| RemoteState::default()))
                    .collect();
                let remote_count = remote.iter().flatten().count();
                for warning in &config.warnings {
                    log::warn!("claimgate: configuration warning: {warning}");
                }
                let dry_run = DryRunCounters::define(&config);
                log::info!(
                    "claimgate: configuration loaded: {} provider(s) ({} with remote keys), {} rule(s)",
                    config.providers.len(),
                    remote_count,
                    config.policy.rules.len()
                );
                if remote_count > 0 {
                    // Fetches start from the first tick, not from here.
                    if let Err(status) = hostcalls::set_tick_period(TICK) {
                        log::error!("claimgate: cannot set the tick period: {status:?}");
                        return false;
                    }
                }
                self.shared = Some(Rc::new(Shared {
                    config,
                    keys,
                    cache,
                    remote: RefCell::new(remote),
                    waiters: RefCell::new(Vec::new()),
                    dry_run,
                    log_level_checked_ms: Cell::new(0),
                }));
                true
            }
            Err(err) => {
                log::error!("claimgate: invalid configuration: {err}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Some(shared) = self.shared.clone() else {
            return;
        };
        let now = now_ms();
        let providers: Vec<usize> = shared
            .config
            .providers
            .remote_sources()
            .map(|(id, _)| id.index())
            .collect();
        for provider in &providers {
            shared.sync(*provider, now);
        }
        for provider in &providers {
            self.maybe_fetch(&shared, *provider, now);
        }
        self.settle_waiters(&shared, now);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(ClaimgateHttp { shared, context_id }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ClaimgateHttp {
    shared: Rc<Shared>,
    context_id: u32,
}

impl Context for ClaimgateHttp {}

impl Drop for ClaimgateHttp {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.shared.waiters.try_borrow_mut() {
            waiters.retain(|waiter| waiter.context_id != self.context_id);
        }
    }
}

impl ClaimgateHttp {
    /// Pauses the request until `miss` may be resolved by a fetch; `false` when no fetch
    /// is running or coming for it (the decision then stands).
    fn wait_for_keys(
        &self,
        miss: KeyMiss,
        headers: Vec<(String, Vec<u8>)>,
        client_address: Option<String>,
        now: u64,
    ) -> bool {
        let provider = miss.provider.index();
        let Some(source) = self.shared.source(provider) else {
            return false;
        };
        // The record `sync` just read: the same view the root settles waiters with.
        let control = match self.shared.remote.borrow().get(provider) {
            Some(Some(state)) => state.control.clone(),
            _ => return false,
        };
        let kind = miss.kind;
        let Some(until) = keysource::wait_until(&control, source, now, kind) else {
            return false;
        };
        if self.shared.waiters.borrow().len() >= MAX_WAITERS {
            log::warn!(
                "claimgate: {MAX_WAITERS} requests already wait for keys; deciding this one now"
            );
            return false;
        }
        log::debug!(
            "claimgate: provider {}: request waits for keys ({kind:?})",
            self.shared.provider_name(provider)
        );
        self.shared.waiters.borrow_mut().push(Waiter {
            context_id: self.context_id,
            provider,
            miss: kind,
            until,
            attempts_seen: control.attempts,
            headers,
            client_address,
        });
        true
    }

    fn hold_while_waiting(&self) -> Action {
        if self.shared.is_waiting(self.context_id) {
            Action::Pause
        } else {
            Action::Continue
        }
    }
}

impl HttpContext for ClaimgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = match hostcalls::get_map_bytes(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(status) => {
                log::error!("claimgate: cannot read request headers: {status:?}");
                let _ = hostcalls::send_http_response(500, vec![], None);
                return Action::Pause;
            }
        };
        let now = now_ms();
        sync_log_level(&self.shared.log_level_checked_ms, now);
        // Only fetched when a condition reads it: one host call fewer per request.
        let client_address = if self.shared.config.policy.uses_client_address {
            hostcalls::get_property(vec!["source", "address"])
                .ok()
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        } else {
            None
        };
        let mut decision = self.shared.decide(&headers, client_address.as_deref(), now);
        if let Some(miss) = decision.key_miss {
            // Another VM may have published keys since this VM's last tick; this also
            // refreshes the control record the wait is judged by.
            if self.shared.sync(miss.provider.index(), now) {
                decision = self.shared.decide(&headers, client_address.as_deref(), now);
            }
        }
        if let Some(miss) = decision.key_miss {
            if self.wait_for_keys(miss, headers.clone(), client_address.clone(), now) {
                return Action::Pause;
            }
        }
        apply(&self.shared, &decision, &headers, false)
    }

    // While the request waits for keys, nothing of it may move on.
    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        self.hold_while_waiting()
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.hold_while_waiting()
    }
}
