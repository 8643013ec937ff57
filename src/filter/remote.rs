//! Remote key sets in the adapter: moving bytes between [`crate::keysource`] (which
//! decides when to fetch, how long keys last, what a valid answer is) and the host.
//!
//! Every worker VM's root context ticks. On a tick it reads each provider's small control
//! record from Envoy's shared data, installs a newer key set another VM published, and —
//! when [`Control::due`] says so and its compare-and-swap write of the lease wins —
//! fetches itself. The validated JWKS is published in shared data for every VM, so one
//! Envoy makes one fetch per refresh.

use std::time::Duration;

use crate::jwks::{KeySet, ParsedKeySet, SymmetricKeys};
use crate::key_miss::MissKind;
use crate::keysource::{
    self, decode_keys, encode_keys, fnv1a, Control, Endpoint, FetchError, FetchReason,
    FetchRequest, FetchResponse, FetchStep, RemoteSource, SourceKind,
};
use crate::provider_id::ProviderId;

use super::plugin::Plugin;
use super::remote_state::{Pending, RemoteState};
use super::shared_data::{cas_update, Update};
use crate::time::UnixMillis;

/// A fetch response as the host delivered it.
pub struct Delivered {
    pub token: u32,
    pub num_headers: usize,
    pub body_size: usize,
}

impl Plugin {
    /// The control record (the default when it does not exist yet); `None` when shared
    /// data cannot be read.
    fn read_control(&self, key: &str) -> Option<Control> {
        match self.host().shared_data(key) {
            Ok((Some(bytes), _)) => Some(Control::decode(&bytes)),
            Ok((None, _)) => Some(Control::default()),
            Err(error) => {
                log::error!("claimgate: cannot read shared data {key}: {error}");
                None
            }
        }
    }

    /// Read-modify-write of a control record with compare-and-swap. `change` returns
    /// `None` to leave it as it is. Returns the record written.
    fn update_control(
        &self,
        key: &str,
        mut change: impl FnMut(&Control) -> Option<Control>,
    ) -> Option<Control> {
        cas_update(self.host(), key, |record| {
            let current = record.map(Control::decode).unwrap_or_default();
            let next = change(&current).ok_or(())?;
            Ok::<_, ()>(Update::Write(next.encode(), next))
        })
        .ok()
    }

    fn with_state(&self, provider: ProviderId, change: impl FnOnce(&mut RemoteState)) {
        self.remote_states().with(provider, change);
    }

    fn read_state<T>(
        &self,
        provider: ProviderId,
        read: impl FnOnce(&RemoteState) -> T,
    ) -> Option<T> {
        self.remote_states().read(provider, read)
    }

    /// The control record this VM last read for `provider`.
    pub fn control(&self, provider: ProviderId) -> Option<Control> {
        self.read_state(provider, |state| state.control.clone())
    }

    /// Providers with a remote key source.
    pub fn remote_providers(&self) -> Vec<ProviderId> {
        self.remote_states().providers()
    }

    /// Reads `provider`'s control record and brings this VM's keys in line with it:
    /// installs a newer published key set, drops one stale beyond the limit. Returns
    /// whether the keys changed.
    pub fn sync(&self, provider: ProviderId, now: UnixMillis) -> bool {
        let Some(source) = self.source(provider) else {
            return false;
        };
        let Some(control) = self.read_control(&source.control_key()) else {
            return false;
        };
        let Some(installed) = self.installed_version(provider) else {
            return false;
        };
        let usable = control.keys_usable(source, now);
        if let Some(stats) = self.stats().keys(provider) {
            let age_seconds = match control.version {
                0 => 0,
                _ if !usable => 0,
                _ => now.millis_since(control.fetched_at) / 1000,
            };
            let stale = !usable || control.version == 0 || now >= control.expires_at;
            stats.key_set_state(self.host(), age_seconds, stale);
        }
        let mut changed = false;
        if usable && control.version != installed {
            changed = self.install_shared(provider, source);
        }
        if !usable && installed != 0 {
            self.drop_stale(provider, source);
            changed = true;
        }
        self.with_state(provider, |state| state.control = control);
        changed
    }

    fn installed_version(&self, provider: ProviderId) -> Option<u64> {
        self.read_state(provider, |state| state.installed)
    }

    /// Installs the key set another VM published for `provider`.
    fn install_shared(&self, provider: ProviderId, source: &RemoteSource) -> bool {
        let name = self.provider_name(provider);
        let record = match self.host().shared_data(&source.keys_key()) {
            Ok((Some(record), _)) => record,
            Ok((None, _)) => return false,
            Err(error) => {
                let key = source.keys_key();
                log::error!("claimgate: cannot read shared data {key}: {error}");
                return false;
            }
        };
        let Some((version, jwks)) = decode_keys(&record) else {
            log::error!("claimgate: provider {name}: shared key record is malformed");
            return false;
        };
        match KeySet::parse_jwks(jwks, SymmetricKeys::Refused) {
            Ok(parsed) => {
                self.install(provider, &parsed.keys);
                self.with_state(provider, |state| {
                    state.installed = version;
                    state.dropped = false;
                });
                log::debug!(
                    "claimgate: provider {name}: installed shared key set version {version} ({} key(s))",
                    parsed.keys.len()
                );
                true
            }
            Err(err) => {
                log::error!("claimgate: provider {name}: shared key set version {version} unreadable: {err}");
                false
            }
        }
    }

    /// Drops `provider`'s remote keys, stale beyond `max_stale_seconds`; logged once.
    fn drop_stale(&self, provider: ProviderId, source: &RemoteSource) {
        self.uninstall(provider);
        let mut first = false;
        self.with_state(provider, |state| {
            state.installed = 0;
            first = !state.dropped;
            state.dropped = true;
        });
        if first {
            log::error!(
                "claimgate: provider {}: key set stale for more than {} s without a successful refresh; dropped (requests get {})",
                self.provider_name(provider),
                source.max_stale_ms / 1000,
                source.outage_status
            );
        }
    }

    /// Starts a fetch for `provider` when one is due and this VM wins the lease: its
    /// compare-and-swap write of the record with `lease_until` set.
    pub fn maybe_fetch(&self, provider: ProviderId, now: UnixMillis) {
        let Some(source) = self.source(provider) else {
            return;
        };
        let mut busy = true;
        let mut control = Control::default();
        self.with_state(provider, |state| {
            // A fetch whose answer never came (Envoy always calls back or times out)
            // must not block refreshes forever.
            let limit = source.cycle_ms().saturating_add(5000);
            if state
                .pending
                .as_ref()
                .is_some_and(|p| now > p.started.saturating_add(limit))
            {
                state.pending = None;
            }
            busy = state.pending.is_some();
            control = state.control.clone();
        });
        if busy {
            return;
        }
        let kid_wanted = self.kid_wanted(provider, control.attempts);
        if control.due(source, now, kid_wanted).is_none() {
            return;
        }
        let mut reason = None;
        let acquired = self.update_control(&source.control_key(), |current| {
            let due = current.due(source, now, kid_wanted)?;
            reason = Some(due);
            Some(current.acquired(source, now, due))
        });
        let (Some(control), Some(reason)) = (acquired, reason) else {
            return;
        };
        let request = source.first_request(&control);
        self.with_state(provider, |state| state.control = control);
        if reason == FetchReason::UnknownKid {
            if let Some(stats) = self.stats().keys(provider) {
                stats.unknown_kid_refetch(self.host());
            }
        }
        self.dispatch(provider, source, request, reason, now);
    }

    /// Whether a request paused since the last completed attempt waits for an unknown
    /// `kid` of `provider`.
    fn kid_wanted(&self, provider: ProviderId, attempts: u64) -> bool {
        self.waiters().any(|waiter| {
            waiter.provider == provider
                && waiter.miss == MissKind::UnknownKid
                && waiter.attempts_seen == attempts
        })
    }

    /// Sends one request of a fetch cycle; a request that cannot be sent is a failed
    /// attempt, retried after backoff.
    fn dispatch(
        &self,
        provider: ProviderId,
        source: &RemoteSource,
        request: FetchRequest,
        reason: FetchReason,
        now: UnixMillis,
    ) {
        let Endpoint {
            cluster,
            authority,
            path,
        } = &request.endpoint;
        let headers = [
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "claimgate"),
        ];
        let timeout = Duration::from_millis(source.timeout_ms);
        match self
            .host()
            .dispatch_http_call(cluster, &headers, None, timeout)
        {
            Ok(token) => {
                log::debug!(
                    "claimgate: provider {}: {reason}: fetching {}",
                    self.provider_name(provider),
                    request.endpoint
                );
                self.with_state(provider, |state| {
                    state.pending = Some(Pending {
                        token,
                        step: request.step,
                        reason,
                        started: now,
                    });
                });
            }
            Err(error) => {
                self.count_fetch(provider, request.step, false);
                let error = FetchError::Dispatch(format!(
                    "{error} (is cluster '{cluster}' defined in the Envoy configuration?)"
                ));
                self.fail(provider, source, reason, &request.endpoint, &error, now);
            }
        }
    }

    /// Handles the answer to one of this VM's fetches. Returns `false` when the token
    /// is not one of them.
    pub fn on_fetch_response(&self, delivered: &Delivered, now: UnixMillis) -> bool {
        let Some((provider, pending, control)) = self.take_pending(delivered.token) else {
            return false;
        };
        let Some(source) = self.source(provider) else {
            return true;
        };
        let limit = source.max_response_bytes;
        let (status, cache_control, body) = self.read_response(delivered, limit);
        let response = FetchResponse {
            status,
            cache_control: cache_control.as_deref(),
            body_size: delivered.body_size,
            body: body.as_deref(),
        };
        let endpoint = source.first_request(&control).endpoint;
        let outcome = match pending.step {
            FetchStep::Discovery => {
                self.discovered(provider, source, &response, &control, &pending, now)
            }
            FetchStep::Jwks => keysource::validate_jwks(&response, limit).map(|valid| {
                let jwks = response.body.unwrap_or_default();
                let fetched = Fetched {
                    reason: pending.reason,
                    endpoint: &endpoint,
                    jwks,
                    parsed: &valid.parsed,
                    max_age: valid.max_age_seconds,
                };
                self.publish(provider, source, &fetched, now);
            }),
        };
        self.count_fetch(provider, pending.step, outcome.is_ok());
        // Both steps fail the same way: one place records the failure and its backoff.
        if let Err(error) = outcome {
            self.fail(provider, source, pending.reason, &endpoint, &error, now);
        }
        true
    }

    fn count_fetch(&self, provider: ProviderId, step: FetchStep, ok: bool) {
        if let Some(stats) = self.stats().keys(provider) {
            stats.fetched(self.host(), step, ok);
        }
    }

    fn take_pending(&self, token: u32) -> Option<(ProviderId, Pending, Control)> {
        self.remote_states().take_pending(token)
    }

    /// A discovery document arrived: record the `jwks_uri` it names and fetch that.
    fn discovered(
        &self,
        provider: ProviderId,
        source: &RemoteSource,
        response: &FetchResponse<'_>,
        control: &Control,
        pending: &Pending,
        now: UnixMillis,
    ) -> Result<(), FetchError> {
        let allow_cross_origin = matches!(
            source.kind,
            SourceKind::Discovery {
                allow_cross_origin: true,
                ..
            }
        );
        let location = keysource::validate_discovery(
            response,
            source.max_response_bytes,
            &source.issuer,
            allow_cross_origin,
        )?;
        let written = self
            .update_control(&source.control_key(), |current| {
                Some(current.discovered(&location))
            })
            .unwrap_or_else(|| control.discovered(&location));
        let next = source.first_request(&written);
        log::info!(
            "claimgate: provider {}: discovery from {}: jwks_uri is {}",
            self.provider_name(provider),
            source.first_request(control).endpoint,
            next.endpoint
        );
        self.with_state(provider, |state| state.control = written);
        self.dispatch(provider, source, next, pending.reason, now);
        Ok(())
    }

    /// Reads a fetch response from the host: status, `cache-control` and the body when
    /// it is within `limit`. Headers are read only when the host says there are some (a
    /// failed callout has none); a response without a readable status is treated like
    /// no response at all.
    fn read_response(
        &self,
        delivered: &Delivered,
        limit: usize,
    ) -> (Option<u16>, Option<String>, Option<Vec<u8>>) {
        if delivered.num_headers == 0 {
            return (None, None, None);
        }
        let header = |name: &str| {
            self.host()
                .http_call_response_header(name)
                .ok()
                .flatten()
                .and_then(|value| String::from_utf8(value).ok())
        };
        let status = header(":status").and_then(|status| status.trim().parse::<u16>().ok());
        let cache_control = header("cache-control");
        let body = if delivered.body_size > 0 && delivered.body_size <= limit {
            self.host()
                .http_call_response_body(delivered.body_size)
                .ok()
                .flatten()
        } else {
            None
        };
        (status, cache_control, body)
    }

    /// Records a failed attempt (keys kept) and logs it once.
    fn fail(
        &self,
        provider: ProviderId,
        source: &RemoteSource,
        reason: FetchReason,
        endpoint: &Endpoint,
        error: &FetchError,
        now: UnixMillis,
    ) {
        // No entropy: jitter from the clock is still better than none.
        let jitter = self
            .host()
            .random_u64()
            .unwrap_or_else(|_| fnv1a(&now.0.to_le_bytes()));
        let message = error.to_string();
        let written = self.update_control(&source.control_key(), |current| {
            Some(current.failed(source, now, jitter))
        });
        let name = self.provider_name(provider);
        let Some(control) = written else {
            log::error!("claimgate: provider {name}: {reason} from {endpoint} failed: {message}; could not record the failure");
            return;
        };
        let retry_in = control.next_attempt_at.millis_since(now);
        let keys = if control.keys_usable(source, now) {
            format!(
                "keeping the last good key set (version {}, usable until {} s from now)",
                control.version,
                control.stale_until(source).millis_since(now) / 1000
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
        self.with_state(provider, |state| state.control = control);
    }

    /// Publishes a validated JWKS for every VM and installs it here.
    fn publish(
        &self,
        provider: ProviderId,
        source: &RemoteSource,
        fetched: &Fetched<'_>,
        now: UnixMillis,
    ) {
        let name = self.provider_name(provider);
        for (index, problem) in &fetched.parsed.skipped {
            log::warn!("claimgate: provider {name}: JWKS keys[{index}] skipped: {problem}");
        }
        let Some(control) = self.write_published(source, fetched, now) else {
            log::error!(
                "claimgate: provider {name}: {} from {}: got {} key(s) but could not publish them; retrying",
                fetched.reason,
                fetched.endpoint,
                fetched.parsed.keys.len()
            );
            return;
        };
        let Some(installed) = self.installed_version(provider) else {
            return;
        };
        let changed = installed != control.version;
        if changed {
            self.install(provider, &fetched.parsed.keys);
        }
        log::info!(
            "claimgate: provider {name}: {} from {}: HTTP 200, {} key(s){}, version {}{}, next refresh in {:.1} s",
            fetched.reason,
            fetched.endpoint,
            fetched.parsed.keys.len(),
            match fetched.parsed.skipped.len() {
                0 => String::new(),
                skipped => format!(" ({skipped} skipped)"),
            },
            control.version,
            if changed { "" } else { " (unchanged)" },
            control.refresh_at.millis_since(now) as f64 / 1000.0
        );
        self.with_state(provider, |state| {
            if changed {
                state.installed = control.version;
                state.dropped = false;
            }
            state.control = control;
        });
    }

    /// Writes the keys record (when the key set changed) and then the control record
    /// with compare-and-swap; returns the control record written.
    fn write_published(
        &self,
        source: &RemoteSource,
        fetched: &Fetched<'_>,
        now: UnixMillis,
    ) -> Option<Control> {
        let hash = fnv1a(fetched.jwks);
        self.update_control(&source.control_key(), |current| {
            let next = current.succeeded(source, now, fetched.max_age, hash);
            if next.version != current.version {
                let record = encode_keys(next.version, fetched.jwks);
                if let Err(error) = self
                    .host()
                    .set_shared_data(&source.keys_key(), &record, None)
                {
                    log::error!("claimgate: cannot share the key set: {error}");
                    return None;
                }
            }
            Some(next)
        })
    }
}

/// A JWKS fetched and validated, ready to publish.
struct Fetched<'a> {
    reason: FetchReason,
    endpoint: &'a Endpoint,
    jwks: &'a [u8],
    parsed: &'a ParsedKeySet,
    max_age: Option<u64>,
}
