//! [`Host`] over the proxy-wasm ABI, for the module Envoy loads.
//!
//! The `proxy-wasm` SDK's `hostcalls` wrappers `panic!` on any status they do not expect
//! (and read the status into a Rust enum, so an unknown value is not even a valid
//! `Status`). A panic kills the VM, so this file declares the imports itself with plain
//! `u32` statuses and turns every status into a `Result`.
//!
//! One SDK call remains: [`Host::dispatch_http_call`] goes through
//! `proxy_wasm::hostcalls::dispatch_http_call`, because the SDK's dispatcher routes the
//! response (`on_http_call_response`) by the token that call registers, and panics on a
//! token it does not know. Envoy's `Context::httpCall` answers only `Ok`, `BadArgument`
//! and `InternalFailure`, which that wrapper returns as `Result`s.

#![allow(
    unsafe_code,
    reason = "the proxy-wasm ABI: raw host imports and the buffers the host allocates"
)]

use std::ptr::{null, null_mut};
use std::time::Duration;

use super::host::{parse_header_map, Host, HostError, HostResult, SharedRecord};
use super::wire::serialize_path;
use crate::request::{serialize_pairs, SerializedHeaders};
use crate::time::UnixMillis;

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

const HTTP_REQUEST_HEADERS: u32 = 0;
const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
const HTTP_CALL_RESPONSE_BODY: u32 = 4;
const PLUGIN_CONFIGURATION: u32 = 7;
const STREAM_REQUEST: u32 = 0;
const METRIC_COUNTER: u32 = 0;
const METRIC_GAUGE: u32 = 1;

#[allow(
    clashing_extern_declarations,
    reason = "the SDK declares these with its own enum types"
)]
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        name_data: *const u8,
        name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

fn status(code: u32) -> HostResult<()> {
    match code {
        OK => Ok(()),
        other => Err(HostError::from_status(other)),
    }
}

/// Takes ownership of bytes the host returned. The host allocates them through this
/// module's `proxy_on_memory_allocate` (the SDK's allocator) with exactly `size` bytes.
///
/// # Safety
/// `data` is null or was allocated by that allocator with `size` bytes and is not owned
/// by anything else.
unsafe fn owned_bytes(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// Calls an import that returns bytes through two out-pointers; `NotFound` reads as
/// `None`.
fn returned_bytes(
    call: impl FnOnce(*mut *mut u8, *mut usize) -> u32,
) -> HostResult<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let code = call(&mut data, &mut size);
    // SAFETY: on any status the host either left `data` null or handed us a buffer it
    // allocated for us (see `owned_bytes`); taking it also frees it on error paths.
    let bytes = unsafe { owned_bytes(data, size) };
    match code {
        OK => Ok(bytes),
        NOT_FOUND => Ok(None),
        other => Err(HostError::from_status(other)),
    }
}

fn ptr_len(bytes: &[u8]) -> (*const u8, usize) {
    if bytes.is_empty() {
        (null(), 0)
    } else {
        (bytes.as_ptr(), bytes.len())
    }
}

fn define_metric(kind: u32, name: &str) -> HostResult<u32> {
    let mut id: u32 = 0;
    // SAFETY: name and the out-pointer are live for the call.
    status(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Envoy, reached through the proxy-wasm ABI. Stateless: the host keeps the effective
/// context.
pub struct ProxyWasmHost;

impl ProxyWasmHost {
    /// Logs at proxy-wasm's `critical` level, which the `log` crate has no name for (the
    /// panic hook's last word).
    pub fn log_critical(&self, message: &str) {
        const CRITICAL: u32 = 5;
        // SAFETY: pointer and length describe a live string for the call.
        let _ = unsafe { proxy_log(CRITICAL, message.as_ptr(), message.len()) };
    }
}

impl Host for ProxyWasmHost {
    fn now_ms(&self) -> HostResult<UnixMillis> {
        let mut nanos: u64 = 0;
        // SAFETY: the host writes one u64 into a live local.
        status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
        Ok(UnixMillis(nanos / 1_000_000))
    }

    fn random_u64(&self) -> HostResult<u64> {
        use rand_core::{OsRng, RngCore};
        let mut bytes = [0u8; 8];
        OsRng
            .try_fill_bytes(&mut bytes)
            .map_err(|_| HostError::Malformed("no random bytes"))?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn log(&self, level: log::Level, message: &str) -> HostResult<()> {
        let level = match level {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        // SAFETY: pointer and length describe a live string for the call.
        status(unsafe { proxy_log(level, message.as_ptr(), message.len()) })
    }

    fn log_level(&self) -> HostResult<log::LevelFilter> {
        let mut level: u32 = u32::MAX;
        // SAFETY: the host writes one u32 into a live local.
        status(unsafe { proxy_get_log_level(&mut level) })?;
        match level {
            0 => Ok(log::LevelFilter::Trace),
            1 => Ok(log::LevelFilter::Debug),
            2 => Ok(log::LevelFilter::Info),
            3 => Ok(log::LevelFilter::Warn),
            4 => Ok(log::LevelFilter::Error),
            5 => Ok(log::LevelFilter::Off),
            _ => Err(HostError::Malformed("log level")),
        }
    }

    fn plugin_configuration(&self) -> HostResult<Option<Vec<u8>>> {
        returned_bytes(|data, size| {
            // SAFETY: out-pointers to live locals (see `returned_bytes`).
            unsafe { proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, usize::MAX, data, size) }
        })
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        // WASI `environ_get`: Envoy hands the VM `environment_variables` this way.
        std::env::var(name).ok()
    }

    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
        // SAFETY: no pointers.
        status(unsafe { proxy_set_tick_period_milliseconds(millis) })
    }

    fn shared_data(&self, key: &str) -> HostResult<SharedRecord> {
        let mut cas: u32 = 0;
        let value = returned_bytes(|data, size| {
            // SAFETY: key and out-pointers are live for the call.
            unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), data, size, &mut cas) }
        })?;
        Ok((value, (cas != 0).then_some(cas)))
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        let (value_data, value_size) = ptr_len(value);
        // SAFETY: key and value are live for the call.
        status(unsafe {
            proxy_set_shared_data(
                key.as_ptr(),
                key.len(),
                value_data,
                value_size,
                cas.unwrap_or(0),
            )
        })
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        proxy_wasm::hostcalls::dispatch_http_call(cluster, headers.to_vec(), body, vec![], timeout)
            .map_err(|status| HostError::from_status(status as u32))
    }

    fn http_call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        returned_bytes(|data, size| {
            // SAFETY: name and out-pointers are live for the call.
            unsafe {
                proxy_get_header_map_value(
                    HTTP_CALL_RESPONSE_HEADERS,
                    name.as_ptr(),
                    name.len(),
                    data,
                    size,
                )
            }
        })
    }

    fn http_call_response_body(&self, max_size: usize) -> HostResult<Option<Vec<u8>>> {
        returned_bytes(|data, size| {
            // SAFETY: out-pointers to live locals.
            unsafe { proxy_get_buffer_bytes(HTTP_CALL_RESPONSE_BODY, 0, max_size, data, size) }
        })
    }

    /// The map as the host serialized it, kept and read in place (no copy per header).
    fn request_headers(&self) -> HostResult<SerializedHeaders> {
        let serialized = returned_bytes(|data, size| {
            // SAFETY: out-pointers to live locals.
            unsafe { proxy_get_header_map_pairs(HTTP_REQUEST_HEADERS, data, size) }
        })?;
        serialized.map_or(Ok(SerializedHeaders::default()), parse_header_map)
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        // SAFETY: name is live for the call.
        status(unsafe {
            proxy_remove_header_map_value(HTTP_REQUEST_HEADERS, name.as_ptr(), name.len())
        })
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        let (value_data, value_size) = ptr_len(value);
        // SAFETY: name and value are live for the call.
        status(unsafe {
            proxy_add_header_map_value(
                HTTP_REQUEST_HEADERS,
                name.as_ptr(),
                name.len(),
                value_data,
                value_size,
            )
        })
    }

    fn resume_request(&self) -> HostResult<()> {
        // SAFETY: no pointers.
        status(unsafe { proxy_continue_stream(STREAM_REQUEST) })
    }

    fn send_response(
        &self,
        status_code: u16,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HostResult<()> {
        let pairs: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes()))
            .collect();
        let headers = serialize_pairs(&pairs);
        let (body_data, body_size) = ptr_len(body);
        let (details_data, details_size) = ptr_len(details.as_bytes());
        // SAFETY: details, body and serialized headers are live for the call.
        status(unsafe {
            proxy_send_local_response(
                u32::from(status_code),
                details_data,
                details_size,
                body_data,
                body_size,
                headers.as_ptr(),
                headers.len(),
                -1,
            )
        })
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        let path = serialize_path(path);
        returned_bytes(|data, size| {
            // SAFETY: path and out-pointers are live for the call.
            unsafe { proxy_get_property(path.as_ptr(), path.len(), data, size) }
        })
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()> {
        let path = serialize_path(path);
        let (value_data, value_size) = ptr_len(value);
        // SAFETY: path and value are live for the call.
        status(unsafe { proxy_set_property(path.as_ptr(), path.len(), value_data, value_size) })
    }

    fn define_counter(&self, name: &str) -> HostResult<u32> {
        define_metric(METRIC_COUNTER, name)
    }

    fn define_gauge(&self, name: &str) -> HostResult<u32> {
        define_metric(METRIC_GAUGE, name)
    }

    fn set_gauge(&self, id: u32, value: u64) -> HostResult<()> {
        // SAFETY: no pointers.
        status(unsafe { proxy_record_metric(id, value) })
    }

    fn increment_counter(&self, id: u32, delta: i64) -> HostResult<()> {
        // SAFETY: no pointers.
        status(unsafe { proxy_increment_metric(id, delta) })
    }

    fn call_foreign_function(&self, name: &str, arguments: &[u8]) -> HostResult<Option<Vec<u8>>> {
        let (arguments_data, arguments_size) = ptr_len(arguments);
        let mut data: *mut u8 = null_mut();
        let mut size: usize = 0;
        // SAFETY: name, arguments and out-pointers are live for the call.
        let code = unsafe {
            proxy_call_foreign_function(
                name.as_ptr(),
                name.len(),
                arguments_data,
                arguments_size,
                &mut data,
                &mut size,
            )
        };
        // SAFETY: see `owned_bytes`.
        let result = unsafe { owned_bytes(data, size) };
        // Unlike the other calls, NotFound here means "no such function": an error.
        status(code).map(|()| result)
    }

    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        // SAFETY: no pointers.
        status(unsafe { proxy_set_effective_context(context_id) })
    }
}
