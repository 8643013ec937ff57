//! A scripted [`Host`] for the adapter's unit tests: an in-memory Envoy with shared data
//! (real compare-and-swap, shareable between mock VMs), per-context request headers,
//! recorded HTTP calls, local responses and counters, and one-shot failures of any host
//! call by name.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use super::host::parse_header_map;
use super::host::{HeaderList, Host, HostError, HostResult, SharedRecord};
use crate::request::{serialize_pairs, SerializedHeaders};
use crate::time::UnixMillis;

/// Shared data of one Envoy: key → (value, CAS). Mock VMs of one Envoy share it.
#[derive(Default)]
pub struct SharedData {
    records: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl SharedData {
    pub fn set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        if let (Some(cas), Some((_, current))) = (cas, self.records.get(key)) {
            if cas != *current {
                return Err(HostError::CasMismatch);
            }
        }
        self.next_cas += 1;
        self.records
            .insert(key.to_owned(), (value.to_vec(), self.next_cas));
        Ok(())
    }
}

/// A request as the mock holds it: its headers (edited in place), and what the filter
/// did with it.
#[derive(Default, Clone, Debug)]
pub struct MockRequest {
    pub headers: HeaderList,
    pub response: Option<LocalResponse>,
    pub resumed: bool,
    pub properties: HashMap<String, Vec<u8>>,
}

impl MockRequest {
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(present, _)| present == name)
            .filter_map(|(_, value)| std::str::from_utf8(value).ok())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u16,
    /// Envoy's `%RESPONSE_CODE_DETAILS%`.
    pub details: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout: Duration,
    pub body: Vec<u8>,
}

/// The response the mock delivers with `on_http_call_response`.
#[derive(Clone, Debug, Default)]
pub struct CallResponse {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The root context's id in the mock (request contexts are other ids).
pub const ROOT_CONTEXT: u32 = 1;

/// Another writer's change to shared data, run between a VM's read and its write.
pub type Race = Box<dyn FnOnce(&mut SharedData)>;

pub struct MockHost {
    pub now_ms: Cell<u64>,
    pub configuration: RefCell<Option<Vec<u8>>>,
    pub shared: Rc<RefCell<SharedData>>,
    pub effective: Cell<u32>,
    pub requests: RefCell<HashMap<u32, MockRequest>>,
    pub calls: RefCell<Vec<HttpCall>>,
    next_token: Cell<u32>,
    pub delivering: RefCell<Option<CallResponse>>,
    pub counters: RefCell<HashMap<u32, (String, i64)>>,
    pub properties: RefCell<HashMap<String, Vec<u8>>>,
    /// Every property path read, in order (dotted): what the adapter asked Envoy.
    pub property_reads: RefCell<Vec<String>>,
    pub tick_period: Cell<Option<Duration>>,
    failures: RefCell<HashMap<&'static str, VecDeque<HostError>>>,
    /// Run just before the next `set_shared_data`: another VM's write racing this one.
    pub before_next_write: RefCell<Option<Race>>,
    /// How often each host function was called (by the names `fail_next` takes).
    pub call_counts: RefCell<BTreeMap<&'static str, usize>>,
    /// The VM's environment variables.
    pub environment: RefCell<HashMap<String, String>>,
}

impl MockHost {
    pub fn new(now_ms: u64) -> MockHost {
        MockHost::sharing(now_ms, Rc::new(RefCell::new(SharedData::default())))
    }

    /// A VM of the same Envoy as the one owning `shared`.
    pub fn sharing(now_ms: u64, shared: Rc<RefCell<SharedData>>) -> MockHost {
        MockHost {
            now_ms: Cell::new(now_ms),
            configuration: RefCell::new(None),
            shared,
            effective: Cell::new(0),
            requests: RefCell::new(HashMap::new()),
            calls: RefCell::new(Vec::new()),
            next_token: Cell::new(1),
            delivering: RefCell::new(None),
            counters: RefCell::new(HashMap::new()),
            properties: RefCell::new(HashMap::new()),
            property_reads: RefCell::new(Vec::new()),
            tick_period: Cell::new(None),
            failures: RefCell::new(HashMap::new()),
            before_next_write: RefCell::new(None),
            call_counts: RefCell::new(BTreeMap::new()),
            environment: RefCell::new(HashMap::new()),
        }
    }

    /// Makes the next call of host function `call` fail with `error`.
    pub fn fail_next(&self, call: &'static str, error: HostError) {
        self.failures
            .borrow_mut()
            .entry(call)
            .or_default()
            .push_back(error);
    }

    /// Makes every call of `call` fail from now on (until [`MockHost::heal`]).
    pub fn fail_always(&self, call: &'static str, error: HostError) {
        let mut failures = self.failures.borrow_mut();
        let queue = failures.entry(call).or_default();
        queue.clear();
        queue.extend(std::iter::repeat_n(error, 1 << 16));
    }

    pub fn heal(&self, call: &'static str) {
        self.failures.borrow_mut().remove(call);
    }

    fn check(&self, call: &'static str) -> HostResult<()> {
        *self.call_counts.borrow_mut().entry(call).or_default() += 1;
        match self
            .failures
            .borrow_mut()
            .get_mut(call)
            .and_then(VecDeque::pop_front)
        {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub fn counter(&self, name: &str) -> Option<i64> {
        self.counters
            .borrow()
            .values()
            .find(|(counter, _)| counter == name)
            .map(|(_, value)| *value)
    }

    pub fn record(&self, key: &str) -> Option<Vec<u8>> {
        self.shared
            .borrow()
            .records
            .get(key)
            .map(|(value, _)| value.clone())
    }

    pub fn request(&self, context_id: u32) -> MockRequest {
        self.requests
            .borrow()
            .get(&context_id)
            .cloned()
            .unwrap_or_default()
    }

    fn with_request<T>(&self, change: impl FnOnce(&mut MockRequest) -> T) -> HostResult<T> {
        let mut requests = self.requests.borrow_mut();
        let request = requests
            .get_mut(&self.effective.get())
            .ok_or(HostError::BadArgument)?;
        Ok(change(request))
    }
}

impl Host for MockHost {
    fn now_ms(&self) -> HostResult<UnixMillis> {
        self.check("now_ms")?;
        Ok(UnixMillis(self.now_ms.get()))
    }

    fn random_u64(&self) -> HostResult<u64> {
        self.check("random_u64")?;
        Ok(0x5eed)
    }

    fn log(&self, _level: log::Level, _message: &str) -> HostResult<()> {
        self.check("log")
    }

    fn log_level(&self) -> HostResult<log::LevelFilter> {
        self.check("log_level")?;
        Ok(log::LevelFilter::Info)
    }

    fn plugin_configuration(&self) -> HostResult<Option<Vec<u8>>> {
        self.check("plugin_configuration")?;
        Ok(self.configuration.borrow().clone())
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        self.environment.borrow().get(name).cloned()
    }

    fn set_tick_period(&self, period: Duration) -> HostResult<()> {
        self.check("set_tick_period")?;
        self.tick_period.set(Some(period));
        Ok(())
    }

    fn shared_data(&self, key: &str) -> HostResult<SharedRecord> {
        self.check("shared_data")?;
        Ok(match self.shared.borrow().records.get(key) {
            Some((value, cas)) => (Some(value.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn set_shared_data(&self, key: &str, value: &[u8], cas: Option<u32>) -> HostResult<()> {
        if let Some(race) = self.before_next_write.borrow_mut().take() {
            race(&mut self.shared.borrow_mut());
        }
        self.check("set_shared_data")?;
        self.shared.borrow_mut().set(key, value, cas)
    }

    fn dispatch_http_call(
        &self,
        cluster: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> HostResult<u32> {
        self.check("dispatch_http_call")?;
        let header = |name: &str| {
            headers
                .iter()
                .find(|(present, _)| *present == name)
                .map_or_else(String::new, |(_, value)| (*value).to_owned())
        };
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        self.calls.borrow_mut().push(HttpCall {
            token,
            cluster: cluster.to_owned(),
            path: header(":path"),
            authority: header(":authority"),
            timeout,
            body: body.unwrap_or_default().to_vec(),
        });
        Ok(token)
    }

    fn http_call_response_header(&self, name: &str) -> HostResult<Option<Vec<u8>>> {
        self.check("http_call_response_header")?;
        let delivering = self.delivering.borrow();
        let response = delivering.as_ref().ok_or(HostError::NotFound)?;
        Ok(response
            .headers
            .iter()
            .find(|(present, _)| present == name)
            .map(|(_, value)| value.clone().into_bytes()))
    }

    fn http_call_response_body(&self, max_size: usize) -> HostResult<Option<Vec<u8>>> {
        self.check("http_call_response_body")?;
        let delivering = self.delivering.borrow();
        let response = delivering.as_ref().ok_or(HostError::NotFound)?;
        Ok(Some(response.body.iter().take(max_size).copied().collect()))
    }

    fn request_headers(&self) -> HostResult<SerializedHeaders> {
        self.check("request_headers")?;
        // Serialized and parsed back as the real host's map is.
        self.with_request(|request| serialize_pairs(&request.headers))
            .and_then(parse_header_map)
    }

    fn remove_request_header(&self, name: &str) -> HostResult<()> {
        self.check("remove_request_header")?;
        self.with_request(|request| {
            request
                .headers
                .retain(|(present, _)| !present.eq_ignore_ascii_case(name));
        })
    }

    fn add_request_header(&self, name: &str, value: &[u8]) -> HostResult<()> {
        self.check("add_request_header")?;
        self.with_request(|request| request.headers.push((name.to_owned(), value.to_vec())))
    }

    fn resume_request(&self) -> HostResult<()> {
        self.check("resume_request")?;
        self.with_request(|request| request.resumed = true)
    }

    fn send_response(
        &self,
        status: u16,
        details: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HostResult<()> {
        self.check("send_response")?;
        self.with_request(|request| {
            request.response = Some(LocalResponse {
                status,
                details: details.to_owned(),
                headers: headers
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                    .collect(),
                body: body.to_vec(),
            });
        })
    }

    fn property(&self, path: &[&str]) -> HostResult<Option<Vec<u8>>> {
        self.property_reads.borrow_mut().push(path.join("."));
        self.check("property")?;
        Ok(self.properties.borrow().get(&path.join(".")).cloned())
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> HostResult<()> {
        self.check("set_property")?;
        let key = path.join(".");
        self.with_request(|request| request.properties.insert(key, value.to_vec()))?;
        Ok(())
    }

    fn define_counter(&self, name: &str) -> HostResult<u32> {
        self.check("define_counter")?;
        let mut counters = self.counters.borrow_mut();
        if let Some((id, _)) = counters.iter().find(|(_, (present, _))| present == name) {
            return Ok(*id);
        }
        let id = u32::try_from(counters.len()).unwrap_or(u32::MAX) + 1;
        counters.insert(id, (name.to_owned(), 0));
        Ok(id)
    }

    fn define_gauge(&self, name: &str) -> HostResult<u32> {
        self.check("define_gauge")?;
        self.define_counter(name)
    }

    fn set_gauge(&self, id: u32, value: u64) -> HostResult<()> {
        self.check("set_gauge")?;
        let mut counters = self.counters.borrow_mut();
        let (_, current) = counters.get_mut(&id).ok_or(HostError::NotFound)?;
        *current = i64::try_from(value).unwrap_or(i64::MAX);
        Ok(())
    }

    fn increment_counter(&self, id: u32, delta: i64) -> HostResult<()> {
        self.check("increment_counter")?;
        let mut counters = self.counters.borrow_mut();
        let (_, value) = counters.get_mut(&id).ok_or(HostError::NotFound)?;
        *value += delta;
        Ok(())
    }

    fn call_foreign_function(&self, _name: &str, _arguments: &[u8]) -> HostResult<Option<Vec<u8>>> {
        self.check("call_foreign_function")?;
        // No host crypto: every signature is checked in the module.
        Err(HostError::NotFound)
    }

    fn set_effective_context(&self, context_id: u32) -> HostResult<()> {
        self.check("set_effective_context")?;
        if context_id != ROOT_CONTEXT && !self.requests.borrow().contains_key(&context_id) {
            return Err(HostError::BadArgument);
        }
        self.effective.set(context_id);
        Ok(())
    }
}
