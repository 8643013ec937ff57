//! The Wasm ceiling: a proxy-wasm HTTP filter that lets every request through untouched.
//! The load harness runs it beside claimgate so that every run measures what any
//! proxy-wasm filter costs on that Envoy (VM entry, per-request contexts, the SDK's
//! dispatch) and claimgate's targets are ratios to it.
//!
//! It can also price host calls (issue 22): with a plugin configuration
//! `noop_calls: KIND=N,KIND=N,…` it makes N calls of each kind per request and still lets
//! the request through, so the harness's slope over N is the Envoy CPU one call costs, and
//! claimgate's own counts give "the do-nothing module with claimgate's host calls". Any
//! other configuration (the harness passes claimgate's) makes no call at all. Parsed by
//! hand: a JSON parser would grow the module whose footprint is the baseline.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(NoopRoot { calls: Rc::new(RefCell::new(Calls::default())) })
    });
}}

/// Host calls to make per request, by kind.
#[derive(Default, Clone, Copy)]
struct Calls {
    /// `get_http_request_headers`: the whole header map as pairs.
    request_headers: u32,
    /// `get_http_request_header(":path")`: one value.
    request_header: u32,
    /// `get_property(["request", "path"])`.
    property: u32,
    /// `get_current_time`.
    now: u32,
    /// `increment_metric` on one counter.
    counter: u32,
    /// `add_http_request_header`.
    add_header: u32,
    /// `remove_http_request_header` (of a header the request does not have).
    remove_header: u32,
    /// `set_property(["noop"])` (filter state).
    set_property: u32,
    /// `get_shared_data` of one key.
    shared_data: u32,
    counter_id: u32,
}

impl Calls {
    /// `noop_calls: request_headers=1,now=1,…`; anything else is no calls.
    fn parse(text: &str) -> Calls {
        let mut calls = Calls::default();
        let Some(list) = text.trim().strip_prefix("noop_calls:") else {
            return calls;
        };
        for item in list.split(',') {
            let Some((kind, count)) = item.trim().split_once('=') else {
                continue;
            };
            let count = count.trim().parse().unwrap_or(0);
            match kind.trim() {
                "request_headers" => calls.request_headers = count,
                "request_header" => calls.request_header = count,
                "property" => calls.property = count,
                "now" => calls.now = count,
                "counter" => calls.counter = count,
                "add_header" => calls.add_header = count,
                "remove_header" => calls.remove_header = count,
                "set_property" => calls.set_property = count,
                "shared_data" => calls.shared_data = count,
                _ => {}
            }
        }
        calls
    }

    fn make(&self, request: &NoopRequest) {
        for _ in 0..self.request_headers {
            let _ = request.get_http_request_headers();
        }
        for _ in 0..self.request_header {
            let _ = request.get_http_request_header(":path");
        }
        for _ in 0..self.property {
            let _ = request.get_property(vec!["request", "path"]);
        }
        for _ in 0..self.now {
            let _ = hostcalls::get_current_time();
        }
        for _ in 0..self.counter {
            let _ = hostcalls::increment_metric(self.counter_id, 1);
        }
        for _ in 0..self.add_header {
            request.add_http_request_header("x-noop", "1");
        }
        for _ in 0..self.remove_header {
            request.set_http_request_header("x-noop-absent", None);
        }
        for _ in 0..self.set_property {
            request.set_property(vec!["noop"], Some(b"1"));
        }
        for _ in 0..self.shared_data {
            let _ = request.get_shared_data("noop");
        }
    }
}

struct NoopRoot {
    calls: Rc<RefCell<Calls>>,
}

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = self
            .get_plugin_configuration()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        let mut calls = Calls::parse(&text);
        if calls.counter > 0 {
            calls.counter_id = hostcalls::define_metric(MetricType::Counter, "noop.calls").unwrap_or(0);
        }
        *self.calls.borrow_mut() = calls;
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest {
            calls: *self.calls.borrow(),
        }))
    }
}

struct NoopRequest {
    calls: Calls,
}

impl Context for NoopRequest {}

impl HttpContext for NoopRequest {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let calls = self.calls;
        calls.make(self);
        Action::Continue
    }
}
