//! The proxy-wasm entry points: the SDK's context traits, each delegating to the
//! host-independent filter with [`ProxyWasmHost`]. Nothing is decided here.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use super::host::{Flow, Host};
use super::http::HttpFilter;
use super::logger::HostLogger;
use super::proxy_host::ProxyWasmHost;
use super::remote::Delivered;
use super::root::RootFilter;

static HOST: ProxyWasmHost = ProxyWasmHost;
static LOGGER: HostLogger<ProxyWasmHost> = HostLogger::new(&HOST);

proxy_wasm::main! {{
    // Our logger, not the SDK's (which panics when a log call fails); the level follows
    // Envoy's from the first configuration on.
    let _ = log::set_logger(&LOGGER);
    // A panic aborts the VM (Envoy then answers with the plugin's failure policy); say
    // why first, at the highest level. The message never holds a request's data: no
    // code path formats a token or header into a panic.
    std::panic::set_hook(Box::new(|info| {
        HOST.log_critical(&format!("claimgate: the VM panicked and stops: {info}"));
    }));
    log::set_max_level(log::LevelFilter::Info);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        let host: Rc<dyn Host> = Rc::new(ProxyWasmHost);
        Box::new(Root(RootFilter::new(host, context_id)))
    });
}}

fn action(flow: Flow) -> Action {
    match flow {
        Flow::Continue => Action::Continue,
        Flow::Pause => Action::Pause,
    }
}

struct Root(RootFilter);

/// An HTTP call's answer as the host announces it, for the root context (key fetches) and
/// for a request context (the shared DPoP record) alike.
fn delivered(token: u32, num_headers: usize, body_size: usize) -> Delivered {
    Delivered {
        token,
        num_headers,
        body_size,
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.0
            .on_http_call_response(&delivered(token_id, num_headers, body_size));
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        self.0.on_configure()
    }

    fn on_tick(&mut self) {
        self.0.on_tick();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let filter = self.0.create_http_context(context_id)?;
        Some(Box::new(Http(filter)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http(HttpFilter);

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        self.0
            .on_http_call_response(&delivered(token_id, num_headers, body_size));
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        #[cfg(feature = "fault-injection")]
        trap_on_marker();
        action(self.0.on_request_headers())
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        action(self.0.hold_while_waiting())
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        action(self.0.hold_while_waiting())
    }
}

/// The test-only fault (feature `fault-injection`): a request carrying
/// `x-claimgate-fault: trap` makes the VM panic, as a bug would.
#[cfg(feature = "fault-injection")]
#[allow(clippy::panic, reason = "the whole point of this test-only build")]
fn trap_on_marker() {
    let marked = HOST.request_headers().is_ok_and(|headers| {
        headers
            .iter()
            .any(|(name, value)| name == b"x-claimgate-fault" && value == b"trap")
    });
    if marked {
        panic!("fault injected by x-claimgate-fault");
    }
}
