//! One request: read its headers, decide, and apply the decision — or pause it until its
//! provider's keys arrive (the root context then decides it again).

use std::rc::Rc;

use super::apply::{apply, refuse_internal, Stage};
use super::host::Flow;
use super::plugin::Plugin;
use super::waiters::PausedRequest;

pub struct HttpFilter {
    plugin: Rc<Plugin>,
    context_id: u32,
}

impl HttpFilter {
    pub fn new(plugin: Rc<Plugin>, context_id: u32) -> HttpFilter {
        HttpFilter { plugin, context_id }
    }

    pub fn on_request_headers(&mut self) -> Flow {
        let plugin = self.plugin.as_ref();
        let host = plugin.host.as_ref();
        let headers = match host.request_headers() {
            Ok(headers) => headers,
            Err(error) => {
                log::error!("claimgate: cannot read request headers: {error}");
                return refuse_internal(host);
            }
        };
        let Some(now) = plugin.now_ms() else {
            return refuse_internal(host);
        };
        plugin.log_level.sync(host, now);
        let client_address = self.client_address();
        let mut decision = plugin.decide(&headers, client_address.as_deref(), now);
        if let Some(miss) = decision.key_miss {
            // Another VM may have published keys since this VM's last tick; this also
            // refreshes the control record the wait is judged by.
            if plugin.sync(miss.provider, now) {
                decision = plugin.decide(&headers, client_address.as_deref(), now);
            }
        }
        if let Some(miss) = decision.key_miss {
            let paused = PausedRequest {
                context_id: self.context_id,
                headers: headers.clone(),
                client_address: client_address.clone(),
            };
            if plugin.wait_for_keys(miss, paused, now) {
                return Flow::Pause;
            }
        }
        apply(plugin, &decision, &headers, Stage::Headers)
    }

    /// Envoy's `source.address`, read only when a condition uses it: one host call
    /// fewer per request. Unreadable reads as absent (conditions on it then fail).
    fn client_address(&self) -> Option<String> {
        if !self.plugin.config.policy.uses_client_address {
            return None;
        }
        self.plugin
            .host
            .property(&["source", "address"])
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    /// While the request waits for keys, nothing of it (body, trailers) may move on.
    pub fn hold_while_waiting(&self) -> Flow {
        if self.plugin.is_waiting(self.context_id) {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
}

impl Drop for HttpFilter {
    fn drop(&mut self) {
        self.plugin.forget_waiter(self.context_id);
    }
}
