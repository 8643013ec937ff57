//! The seam between the adapter and Envoy: every host call the filter makes goes through
//! [`Host`], so the adapter runs natively against a scripted host in unit tests
//! ([`super::mock`]) and against Envoy through [`super::proxy_host`] in the module.
//!
//! Every call answers with a `Result`: a host status the module did not expect is an
//! error the caller handles (refuse the request, keep the last keys, retry later), never
//! a panic that would kill the VM.

use crate::request::SerializedHeaders;
use crate::time::UnixMillis;
use std::fmt;
use std::time::Duration;

/// A host call that did not succeed: the proxy-wasm status, or an answer the module
/// could not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    NotFound,
    BadArgument,
    SerializationFailure,
    ParseFailure,
    Empty,
    /// A compare-and-swap write lost against another writer.
    CasMismatch,
    InternalFailure,
    Unimplemented,
    /// A status this module does not know.
    Status(u32),
    /// The host answered `Ok` with data the module cannot read.
    Malformed(&'static str),
}

impl HostError {
    /// The error for a proxy-wasm status code other than `Ok` (0).
    pub fn from_status(status: u32) -> HostError {
        match status {
            1 => HostError::NotFound,
            2 => HostError::BadArgument,
            3 => HostError::SerializationFailure,
            4 => HostError::ParseFailure,
            7 => HostError::Empty,
            8 => HostError::CasMismatch,
            10 => HostError::InternalFailure,
            12 => HostError::Unimplemented,
            other => HostError::Status(other),
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotFound => f.write_str("not found"),
            HostError::BadArgument => f.write_str("bad argument"),
            HostError::SerializationFailure => f.write_str("serialization failure"),
            HostError::ParseFailure => f.write_str("parse failure"),
            HostError::Empty => f.write_str("empty"),
            HostError::CasMismatch => f.write_str("compare-and-swap mismatch"),
            HostError::InternalFailure => f.write_str("internal failure"),
            HostError::Unimplemented => f.write_str("unimplemented"),
            HostError::Status(status) => write!(f, "unknown status {status}"),
            HostError::Malformed(what) => write!(f, "unreadable answer: {what}"),
        }
    }
}

impl std::error::Error for HostError {}

pub type HostResult<T> = Result<T, HostError>;

/// A header map as a host serialized it, checked against its own lengths.
pub fn parse_header_map(bytes: Vec<u8>) -> HostResult<SerializedHeaders> {
    SerializedHeaders::parse(bytes).map_err(|_| HostError::Malformed("header map"))
}

/// A shared-data record and its compare-and-swap value (`None` when the record does not
/// exist).
pub type SharedRecord = (Option<Vec<u8>>, Option<u32>);

/// Request headers as pairs, in order, values as bytes (a header value need not be
/// UTF-8): the mock host's request, edited in place, and the tests' requests.
#[cfg(test)]
pub type HeaderList = Vec<(String, Vec<u8>)>;

/// Whether the host lets a request go on after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Pause,
}

/// What the adapter asks of Envoy. Calls act on the host's *effective* context: the
/// request being handled, or the root context during ticks and fetch responses (see
/// [`Host::set_effective_context`]).
pub trait Host {
    /// Wall-clock time, milliseconds since the Unix epoch.
    fn now_ms(&self) -> HostResult<UnixMillis>;
    /// Random bits for backoff jitter.
    fn random_u64(&self) -> HostResult<u64>;

    #[cfg_attr(
        not(target_os = "wasi"),
        allow(dead_code, reason = "only the module's logger calls it")
    )]
    fn log(&self, level: log::Level, message: &str) -> HostResult<()>;
    /// Envoy's current log level for Wasm (changeable at run time through `/logging`).
    fn log_level(&self) -> HostResult<log::LevelFilter>;

    /// The plugin's `configuration` bytes.
    fn plugin_configuration(&self) -> HostResult<Option<Vec<u8>>>;
    fn set_tick_period(&self, period: Duration) -> HostResult<()>;
    /// A variable of the VM's environment (`vm_config.environment_variables`), `None`
    /// when unset or not UTF-8.
    fn environment_variable(&self, name: &str) -> Option<String>;

    fn shared_data(&self, key: &str) -> HostResult<SharedRecord>;
    /// Writes a shared-data record; with `cas`, only if the record's CAS still has that
    /// value ([`HostError::CasMismatch`] otherwise).
    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()>;

    /// Starts an HTTP call through an Envoy cluster; the answer arrives as an
    /// `on_http_call_response` with the returned token, in the context that dispatched it.
    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32>;
    /// A header of the HTTP call response being delivered.
    fn http_call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>>;
    /// The first `max_size` bytes of the HTTP call response body being delivered.
    fn http_call_response_body(&self, max_size: usize) -> HostResult<Option<Vec<u8>>>;

    fn request_headers(&self) -> HostResult<SerializedHeaders>;
    /// Removes every value of a request header.
    fn remove_request_header(&self, name: &str) -> HostResult<()>;
    /// Appends a request header value.
    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()>;
    /// Resumes the effective (paused) request.
    fn resume_request(&self) -> HostResult<()>;
    /// Answers the effective request locally instead of forwarding it; `details` becomes
    /// Envoy's `%RESPONSE_CODE_DETAILS%` (no spaces).
    fn send_response(
        &self,
        status: u16,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HostResult<()>;

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>>;
    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()>;

    fn define_counter(&self, name: &str) -> HostResult<u32>;
    fn define_gauge(&self, name: &str) -> HostResult<u32>;
    /// Adds `delta` to a counter or a gauge (gauges may go down).
    fn increment_counter(&self, id: u32, delta: i64) -> HostResult<()>;
    fn set_gauge(&self, id: u32, value: u64) -> HostResult<()>;

    /// A host-provided function such as Envoy's `verify_signature`.
    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> HostResult<Option<Vec<u8>>>;

    /// Makes `context_id` the context later calls act on (a paused request, from a root
    /// callback). Fails when that context is gone.
    fn set_effective_context(&self, context_id: u32) -> HostResult<()>;
}
