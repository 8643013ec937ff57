//! The proxy-wasm adapter: loads the configuration in the root context and, per request,
//! hands the headers to [`decide`] and applies what it returns. No policy lives here.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::hostcalls::{define_metric, increment_metric};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

use crate::cache::TokenCache;
use crate::config::Config;
use crate::decision::{decide_with_cache, Decision, Outcome};
use crate::jwks::KeyRing;
use crate::policy::Mode;
use crate::request::RequestView;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(ClaimgateRoot::default()) });
}}

/// What every HTTP context of this plugin shares: the compiled configuration and the
/// current keys (swapped whole when a key set is replaced).
struct Shared {
    config: Config,
    keys: RefCell<Rc<KeyRing>>,
    /// Verified tokens of this VM; emptied whenever `keys` is replaced.
    cache: RefCell<TokenCache>,
    dry_run: DryRunCounters,
}

/// Envoy counters for dry-run verdicts (`/stats?filter=claimgate`): totals, and per
/// dry-run rule how often it would have refused a request that was allowed.
#[derive(Default)]
struct DryRunCounters {
    would_deny: Option<u32>,
    would_allow: Option<u32>,
    rule_would_deny: HashMap<String, u32>,
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
struct ClaimgateRoot {
    shared: Option<Rc<Shared>>,
}

impl Context for ClaimgateRoot {}

impl RootContext for ClaimgateRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("claimgate: no plugin configuration; give the JSON configuration as the Wasm plugin 'configuration'");
            return false;
        };
        match Config::from_json(&bytes) {
            Ok(config) => {
                let keys = RefCell::new(Rc::new(config.initial_keys()));
                let cache = RefCell::new(TokenCache::new(config.token_cache));
                for warning in &config.warnings {
                    log::warn!("claimgate: configuration warning: {warning}");
                }
                let dry_run = DryRunCounters::define(&config);
                log::info!(
                    "claimgate: configuration loaded: {} provider(s), {} rule(s)",
                    config.providers.len(),
                    config.policy.rules.len()
                );
                self.shared = Some(Rc::new(Shared {
                    config,
                    keys,
                    cache,
                    dry_run,
                }));
                true
            }
            Err(err) => {
                log::error!("claimgate: invalid configuration: {err}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(ClaimgateHttp { shared }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct ClaimgateHttp {
    shared: Rc<Shared>,
}

impl Context for ClaimgateHttp {}

impl ClaimgateHttp {
    fn unix_now(&self) -> i64 {
        // A host clock before 1970 fails closed: every token looks not yet valid.
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
            })
    }
}

impl HttpContext for ClaimgateHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let headers = self.get_http_request_headers_bytes();
        let keys = Rc::clone(&self.shared.keys.borrow());
        let now = self.unix_now();
        // Only fetched when a condition reads it: one host call fewer per request.
        let client_address = if self.shared.config.policy.uses_client_address {
            self.get_property(vec!["source", "address"])
        } else {
            None
        };
        let request = RequestView::new(&headers).with_client_address(
            client_address
                .as_deref()
                .and_then(|bytes| std::str::from_utf8(bytes).ok()),
        );
        let decision = decide_with_cache(
            &self.shared.config,
            &keys,
            &mut self.shared.cache.borrow_mut(),
            &request,
            now,
        );
        log::debug!(
            "claimgate: {} (status {}, rule {:?}, failed condition {:?}, subject {:?})",
            decision.reason,
            decision.status(),
            decision.rule,
            decision.failed_condition,
            decision.subject
        );
        self.shared.dry_run.record(&decision);
        // Envoy keeps this as filter state `wasm.claimgate.decision` for access logs
        // (`%FILTER_STATE(wasm.claimgate.decision:PLAIN)%`); Wasm cannot write dynamic
        // metadata (envoy#15148).
        let explanation = decision.explanation_json().to_string();
        self.set_property(vec!["claimgate.decision"], Some(explanation.as_bytes()));
        for skipped in &decision.skipped_headers {
            log::warn!(
                "claimgate: identity header {} not set: {}",
                skipped.header,
                skipped.reason
            );
        }
        match &decision.outcome {
            Outcome::Allow { set_headers } => {
                for name in &decision.remove_headers {
                    self.set_http_request_header(name, None);
                }
                for (name, value) in set_headers {
                    self.set_http_request_header(name, Some(value));
                }
                Action::Continue
            }
            Outcome::Deny(denial) => {
                let headers: Vec<(&str, &str)> = denial
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_str()))
                    .collect();
                self.send_http_response(
                    u32::from(denial.status),
                    headers,
                    Some(denial.body.as_bytes()),
                );
                Action::Pause
            }
        }
    }
}
