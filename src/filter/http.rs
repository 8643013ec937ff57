//! One request: read its headers, decide, and apply the decision — or pause it until its
//! provider's keys arrive (the root context then decides it again).

use std::rc::Rc;

use crate::dpop::certificate_thumbprint_from_hex;
use crate::request::Scheme;

use super::apply::{apply, refuse_internal, Stage};
use super::host::{Flow, Host};
use super::peer::Peer;
use super::phase_timing::{self, Phase};
use super::plugin::Plugin;
use super::record_check::ToCheck;
use super::remote::Delivered;
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
        phase_timing::start();
        let flow = self.decide_and_apply();
        phase_timing::finish();
        flow
    }

    fn decide_and_apply(&mut self) -> Flow {
        let plugin = self.plugin.as_ref();
        let host = plugin.host();
        let headers = match host.request_headers() {
            Ok(headers) => headers,
            Err(error) => {
                log::error!("claimgate: cannot read request headers: {error}");
                return refuse_internal(host);
            }
        };
        phase_timing::mark(Phase::ReadHeaders);
        let Some(now) = plugin.now_ms() else {
            return refuse_internal(host);
        };
        plugin.log_level().sync(host, now);
        let peer = self.peer();
        phase_timing::mark(Phase::Prepare);
        let Some((mut decision, mut recorded)) =
            plugin.decide_recording(&headers, &peer, now, None)
        else {
            return refuse_internal(host);
        };
        phase_timing::mark(Phase::Decide);
        if let Some(miss) = decision.key_miss {
            // Another VM may have published keys since this VM's last tick; this also
            // refreshes the control record the wait is judged by.
            if plugin.sync(miss.provider, now) {
                let Some(again) = plugin.decide_recording(&headers, &peer, now, None) else {
                    return refuse_internal(host);
                };
                (decision, recorded) = again;
            }
        }
        if let Some(miss) = decision.key_miss {
            let paused = PausedRequest {
                context_id: self.context_id,
                headers: headers.clone(),
                peer: peer.clone(),
            };
            if plugin.wait_for_keys(miss, paused, now) {
                return Flow::Pause;
            }
        }
        if let (Some(record), Some((proof, expires_at))) = (plugin.shared_record(), recorded) {
            let request = ToCheck {
                context_id: self.context_id,
                headers,
                peer,
                decision,
                proof,
                expires_at,
            };
            return plugin.check_shared_record(record, request, now, Stage::Headers);
        }
        apply(&plugin.effects(), &decision, &headers, Stage::Headers)
    }

    /// etcd's answer for this request's proof (the call was sent from this context).
    pub fn on_http_call_response(&mut self, delivered: &Delivered) {
        if let Some(now) = self.plugin.now_ms() {
            self.plugin.on_record_response(delivered, now);
        }
    }

    /// Envoy's `source.address` and the TLS client certificate's digest
    /// (`connection.sha256_peer_certificate_digest`, hex), each read only when the
    /// configuration uses it: a host call fewer per request. Unreadable reads as absent
    /// (conditions on the address then fail; a certificate-bound token is refused).
    fn peer(&self) -> Peer {
        let config = self.plugin.config();
        let read = |path: &[&str]| {
            self.plugin
                .host()
                .property(path)
                .ok()
                .flatten()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        Peer {
            address: config
                .policy
                .uses_client_address
                .then(|| read(&["source", "address"]))
                .flatten(),
            certificate: config
                .uses_client_certificate
                .then(|| read(&["connection", "sha256_peer_certificate_digest"]))
                .flatten()
                .and_then(|hex| certificate_thumbprint_from_hex(&hex)),
            scheme: config
                .uses_connection_scheme
                .then(|| connection_scheme(self.plugin.host()))
                .flatten(),
        }
    }

    /// While the request waits for keys, nothing of it (body, trailers) may move on.
    pub fn hold_while_waiting(&self) -> Flow {
        let record_pending = self
            .plugin
            .shared_record()
            .is_some_and(|record| record.is_pending(self.context_id));
        if record_pending || self.plugin.is_waiting(self.context_id) {
            Flow::Pause
        } else {
            Flow::Continue
        }
    }
}

/// `https` when the downstream connection is TLS (Envoy's `connection.tls_version` is set
/// only then), `http` when it is not; `None` when Envoy cannot say, and then no DPoP
/// proof matches and no `request: scheme` condition holds. Never the client's `:scheme`,
/// which an HTTP/2 client writes itself.
fn connection_scheme(host: &dyn Host) -> Option<Scheme> {
    match host.property(&["connection", "tls_version"]) {
        Ok(Some(version)) if !version.is_empty() => Some(Scheme::Https),
        Ok(_) => Some(Scheme::Http),
        Err(_) => None,
    }
}

impl Drop for HttpFilter {
    fn drop(&mut self) {
        self.plugin.forget_waiter(self.context_id);
        if let Some(record) = self.plugin.shared_record() {
            record.forget(self.context_id);
        }
    }
}
