//! The Wasm ceiling: a proxy-wasm HTTP filter that lets every request through untouched.
//! The load harness runs it beside claimgate so that every run measures what any
//! proxy-wasm filter costs on that Envoy (VM entry, per-request contexts, the SDK's
//! dispatch) and claimgate's targets are ratios to it.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(NoopRoot) });
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopRequest))
    }
}

struct NoopRequest;

impl Context for NoopRequest {}

impl HttpContext for NoopRequest {}
