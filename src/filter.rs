//! The proxy-wasm adapter: loads the configuration in the root context and, per request,
//! hands the headers to [`decide`] and applies what it returns. No policy lives here.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

use crate::cache::TokenCache;
use crate::config::Config;
use crate::decision::{decide_with_cache, Outcome};
use crate::jwks::KeyRing;
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
                log::info!(
                    "claimgate: configuration loaded: {} provider(s), {} rule(s)",
                    config.providers.len(),
                    config.rules.len()
                );
                self.shared = Some(Rc::new(Shared {
                    config,
                    keys,
                    cache,
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
        let decision = decide_with_cache(
            &self.shared.config,
            &keys,
            &mut self.shared.cache.borrow_mut(),
            &RequestView::new(&headers),
            now,
        );
        log::debug!(
            "claimgate: {} (status {}, rule {:?}, subject {:?})",
            decision.reason,
            decision.status(),
            decision.rule,
            decision.subject
        );
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
