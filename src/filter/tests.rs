//! The adapter against the scripted host: configuration, requests, remote keys, waiters
//! and failing host calls. What Envoy itself does is covered by `tests/envoy/`.

mod host_calls;
mod timing;

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};

use crate::jwks::Alg;
use crate::keysource::Control;
use crate::mint::SigningKey;
use crate::provider_id::ProviderId;
use crate::time::{UnixMillis, UnixSeconds};

use super::host::{Flow, HeaderList, Host, HostError};
use super::http::HttpFilter;
use super::mock::{CallResponse, MockHost, SharedData, ROOT_CONTEXT};
use super::remote::Delivered;
use super::root::RootFilter;
use super::waiters::MAX_WAITERS;

const NOW: u64 = 1_800_000_000_000;
const ISSUER: &str = "https://idp.test/";
const AUDIENCE: &str = "https://api.test";

thread_local! {
    static KEY: SigningKey = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
}

fn key() -> SigningKey {
    KEY.with(Clone::clone)
}

fn token_from(key: &SigningKey, claims: Value) -> String {
    let mut all =
        json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "auth0|alice", "exp": NOW / 1000 + 600});
    for (name, value) in claims.as_object().unwrap() {
        all[name] = value.clone();
    }
    key.sign(&all).unwrap()
}

fn token() -> String {
    token_from(&key(), json!({}))
}

fn jwks() -> Value {
    json!({"keys": [key().public_jwk()]})
}

fn config(jwks_source: Value) -> Value {
    json!({
        "realm": "test",
        "providers": [{
            "name": "idp",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["ES256"],
            "jwks": jwks_source,
        }],
        "identity": {"headers": [{"header": "x-user-id", "claim": "sub"}]},
        "rules": [
            {"name": "open", "match": {"prefix": "/public"}, "access": "public"},
            {"name": "members", "match": {"prefix": "/members"}, "access": "authenticated"},
            {"name": "gold", "match": {"prefix": "/gold"}, "when": {"claim": "tier", "equals": "gold"}},
            {"name": "no-alice-preview", "effect": "deny", "match": {"prefix": "/members/preview"}, "when": {"claim": "sub", "equals": "auth0|alice"}}
        ]
    })
}

fn inline_config() -> Value {
    config(json!({"inline": jwks()}))
}

/// The deny rule on `/members/preview` only reports what it would refuse.
fn dry_run_config() -> Value {
    let mut config = inline_config();
    config["rules"][3]["mode"] = json!("dry_run");
    config
}

fn remote_config() -> Value {
    config(
        json!({"remote": {"cluster": "idp_jwks", "path": "/jwks.json", "authority": "idp.test"}}),
    )
}

fn discovery_config() -> Value {
    config(json!({"discovery": {"cluster": "idp"}}))
}

/// One worker VM of a mock Envoy: its root context, its live requests.
struct Vm {
    host: Rc<MockHost>,
    root: RootFilter,
    requests: HashMap<u32, HttpFilter>,
    next_context: u32,
}

impl Vm {
    fn start(config: &Value) -> Vm {
        let vm = Vm::unconfigured(MockHost::new(NOW), config);
        vm.configured()
    }

    /// Another worker VM of the same Envoy as `other` (shared data in common).
    fn beside(other: &Vm, config: &Value) -> Vm {
        let host = MockHost::sharing(other.host.now_ms.get(), Rc::clone(&other.host.shared));
        Vm::unconfigured(host, config).configured()
    }

    fn unconfigured(host: MockHost, config: &Value) -> Vm {
        *host.configuration.borrow_mut() = Some(config.to_string().into_bytes());
        let host = Rc::new(host);
        let dyn_host: Rc<dyn Host> = host.clone();
        Vm {
            root: RootFilter::new(dyn_host, ROOT_CONTEXT),
            host,
            requests: HashMap::new(),
            next_context: ROOT_CONTEXT + 1,
        }
    }

    fn configured(mut self) -> Vm {
        assert!(self.configure(), "configuration refused");
        self
    }

    fn configure(&mut self) -> bool {
        self.host.effective.set(ROOT_CONTEXT);
        self.root.on_configure()
    }

    /// Sends a request's headers; returns its context id and what the filter answered.
    fn send(&mut self, path: &str, token: Option<&str>, extra: &[(&str, &str)]) -> (u32, Flow) {
        let mut headers = vec![
            (":method".to_owned(), b"GET".to_vec()),
            (":path".to_owned(), path.as_bytes().to_vec()),
            (":authority".to_owned(), b"api.test".to_vec()),
        ];
        if let Some(token) = token {
            headers.push((
                "authorization".into(),
                format!("Bearer {token}").into_bytes(),
            ));
        }
        for (name, value) in extra {
            headers.push(((*name).to_owned(), value.as_bytes().to_vec()));
        }
        self.send_headers(headers)
    }

    /// Sends a request with exactly these headers (values may be any bytes).
    fn send_headers(&mut self, headers: HeaderList) -> (u32, Flow) {
        let context_id = self.next_context;
        self.next_context += 1;
        self.host.requests.borrow_mut().insert(
            context_id,
            super::mock::MockRequest {
                headers,
                ..Default::default()
            },
        );
        self.host.effective.set(context_id);
        let mut filter = self
            .root
            .create_http_context(context_id)
            .expect("configured");
        let flow = filter.on_request_headers();
        self.requests.insert(context_id, filter);
        (context_id, flow)
    }

    fn status(&self, context_id: u32) -> Option<u16> {
        self.host.request(context_id).response.map(|r| r.status)
    }

    fn tick(&mut self) {
        self.host.effective.set(ROOT_CONTEXT);
        self.root.on_tick();
    }

    fn advance(&mut self, ms: u64) {
        self.host.now_ms.set(self.host.now_ms.get() + ms);
    }

    /// Delivers the answer to HTTP call `token`.
    fn deliver(&mut self, token: u32, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut all = vec![(":status".to_owned(), status.to_string())];
        all.extend(
            headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
        );
        *self.host.delivering.borrow_mut() = Some(CallResponse {
            headers: all,
            body: body.to_vec(),
        });
        self.host.effective.set(ROOT_CONTEXT);
        self.root.on_http_call_response(&Delivered {
            token,
            num_headers: 2,
            body_size: body.len(),
        });
        *self.host.delivering.borrow_mut() = None;
    }

    /// A call that ended without any response (reset, refused).
    fn deliver_nothing(&mut self, token: u32) {
        self.host.effective.set(ROOT_CONTEXT);
        self.root.on_http_call_response(&Delivered {
            token,
            num_headers: 0,
            body_size: 0,
        });
    }

    fn last_call(&self) -> super::mock::HttpCall {
        self.host
            .calls
            .borrow()
            .last()
            .cloned()
            .expect("an HTTP call")
    }

    fn control(&self) -> Control {
        let plugin = self.root.plugin().expect("configured");
        let source = plugin
            .source(ProviderId::from_index(0))
            .expect("remote source");
        Control::decode(
            &self
                .host
                .record(&source.control_key())
                .expect("control record"),
        )
    }
}

fn jwks_body() -> Vec<u8> {
    jwks().to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------
// Configuration.

#[test]
fn a_valid_configuration_loads_and_a_bad_one_is_refused() {
    let vm = Vm::start(&inline_config());
    assert!(vm.root.plugin().is_some());
    assert_eq!(vm.host.tick_period.get(), None, "no remote keys, no ticks");

    let mut bad = inline_config();
    bad["rules"][2]["when"]["operator_that_does_not_exist"] = json!(1);
    let mut vm = Vm::unconfigured(MockHost::new(NOW), &bad);
    assert!(!vm.configure());
    assert!(vm.root.plugin().is_none());
    assert!(vm.root.create_http_context(7).is_none());
}

#[test]
fn a_missing_or_unreadable_configuration_is_refused() {
    let mut vm = Vm::unconfigured(MockHost::new(NOW), &inline_config());
    *vm.host.configuration.borrow_mut() = None;
    assert!(!vm.configure());
    let mut vm = Vm::unconfigured(MockHost::new(NOW), &inline_config());
    vm.host
        .fail_next("plugin_configuration", HostError::InternalFailure);
    assert!(!vm.configure());
}

#[test]
fn remote_keys_start_the_tick_and_a_refused_tick_refuses_the_configuration() {
    let vm = Vm::start(&remote_config());
    assert!(vm.host.tick_period.get().is_some());
    let mut vm = Vm::unconfigured(MockHost::new(NOW), &remote_config());
    vm.host.fail_next("set_tick_period", HostError::BadArgument);
    assert!(!vm.configure());
}

#[test]
fn counters_that_cannot_be_defined_do_not_stop_the_configuration() {
    let mut vm = Vm::unconfigured(MockHost::new(NOW), &dry_run_config());
    vm.host
        .fail_always("define_counter", HostError::InternalFailure);
    assert!(vm.configure());
    vm.host.heal("define_counter");
    let (id, flow) = vm.send("/members/preview", Some(&token()), &[]);
    assert_eq!(flow, Flow::Continue, "dry run only reports");
    assert_eq!(vm.status(id), None);
}

// ---------------------------------------------------------------------------------------
// Requests.

#[test]
fn an_allowed_request_gets_its_identity_headers_and_loses_the_spoofed_ones() {
    let mut vm = Vm::start(&inline_config());
    let (id, flow) = vm.send(
        "/members/1",
        Some(&token()),
        &[("x-user-id", "admin"), ("x-user-id", "root")],
    );
    assert_eq!(flow, Flow::Continue);
    let request = vm.host.request(id);
    assert_eq!(request.response, None);
    assert_eq!(request.header("x-user-id"), ["auth0|alice"]);
    let explanation = request
        .properties
        .get("claimgate.decision")
        .expect("decision filter state");
    let explanation: Value = serde_json::from_slice(explanation).unwrap();
    assert_eq!(explanation["status"], 200);
    assert_eq!(explanation["rule"], "members");
}

#[test]
fn refused_requests_get_a_local_response_and_are_held() {
    let mut vm = Vm::start(&inline_config());
    let (missing, flow) = vm.send("/members/1", None, &[]);
    assert_eq!(flow, Flow::Pause);
    let response = vm.host.request(missing).response.expect("a local response");
    assert_eq!(response.status, 401);
    assert!(response
        .headers
        .contains(&("www-authenticate".into(), "Bearer realm=\"test\"".into())));

    let (forbidden, flow) = vm.send("/gold", Some(&token()), &[]);
    assert_eq!((flow, vm.status(forbidden)), (Flow::Pause, Some(403)));
    let (allowed, flow) = vm.send(
        "/gold",
        Some(&token_from(&key(), json!({"tier": "gold"}))),
        &[],
    );
    assert_eq!((flow, vm.status(allowed)), (Flow::Continue, None));

    let (bad_path, flow) = vm.send("/public/../members", None, &[]);
    assert_eq!((flow, vm.status(bad_path)), (Flow::Pause, Some(400)));
}

#[test]
fn the_decision_filter_state_can_be_switched_off() {
    let mut quiet = inline_config();
    quiet["decision_filter_state"] = json!(false);
    let mut vm = Vm::start(&quiet);
    let (id, _) = vm.send("/members/1", Some(&token()), &[]);
    assert!(vm.host.request(id).properties.is_empty());
}

#[test]
fn dry_run_verdicts_are_counted() {
    let mut vm = Vm::start(&dry_run_config());
    let (id, flow) = vm.send("/members/preview", Some(&token()), &[]);
    assert_eq!((flow, vm.status(id)), (Flow::Continue, None));
    assert_eq!(vm.host.counter("claimgate.dry_run.would_deny"), Some(1));
    assert_eq!(
        vm.host
            .counter("claimgate.dry_run.rule.no-alice-preview.would_deny"),
        Some(1)
    );
    assert_eq!(vm.host.counter("claimgate.dry_run.would_allow"), Some(0));
}

#[test]
fn repeated_tokens_are_served_from_the_cache() {
    let mut vm = Vm::start(&inline_config());
    let token = token();
    vm.send("/members/1", Some(&token), &[]);
    vm.send("/members/2", Some(&token), &[]);
    assert_eq!(vm.root.plugin().unwrap().cached_tokens(), 1);
}

// ---------------------------------------------------------------------------------------
// Host calls that fail: the request is refused, never forwarded, and nothing panics.

#[test]
fn a_failing_host_call_on_the_request_path_refuses_the_request() {
    for call in [
        "request_headers",
        "now_ms",
        "remove_request_header",
        "add_request_header",
    ] {
        let mut vm = Vm::start(&inline_config());
        vm.host.fail_next(call, HostError::InternalFailure);
        let (id, flow) = vm.send("/members/1", Some(&token()), &[("x-user-id", "spoof")]);
        assert_eq!(flow, Flow::Pause, "{call}: never forwarded");
        assert_eq!(vm.status(id), Some(500), "{call}");
    }
}

#[test]
fn host_calls_that_only_report_do_not_change_the_decision() {
    for call in ["set_property", "increment_counter", "log", "log_level"] {
        let mut vm = Vm::start(&inline_config());
        vm.host.fail_always(call, HostError::InternalFailure);
        let (allowed, flow) = vm.send("/members/1", Some(&token()), &[]);
        assert_eq!((flow, vm.status(allowed)), (Flow::Continue, None), "{call}");
        let (refused, flow) = vm.send("/members/1", None, &[]);
        assert_eq!(
            (flow, vm.status(refused)),
            (Flow::Pause, Some(401)),
            "{call}"
        );
    }
}

#[test]
fn a_refusal_that_cannot_be_sent_still_holds_the_request() {
    let mut vm = Vm::start(&inline_config());
    vm.host
        .fail_always("send_response", HostError::InternalFailure);
    let (id, flow) = vm.send("/members/1", None, &[]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(vm.status(id), None);
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    vm.host
        .fail_next("add_request_header", HostError::InternalFailure);
    assert_eq!(
        flow,
        Flow::Continue,
        "allowed before the failure was scripted"
    );
    assert_eq!(vm.host.request(id).header("x-user-id"), ["auth0|alice"]);
    let (_, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(
        flow,
        Flow::Pause,
        "header edit failed and the 500 failed too"
    );
}

// ---------------------------------------------------------------------------------------
// Remote keys.

#[test]
fn the_first_tick_fetches_and_the_published_keys_decide_requests() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let call = vm.last_call();
    assert_eq!(
        (
            call.cluster.as_str(),
            call.path.as_str(),
            call.authority.as_str()
        ),
        ("idp_jwks", "/jwks.json", "idp.test")
    );
    assert_eq!(call.timeout, std::time::Duration::from_secs(5));
    assert!(vm.control().lease_until > UnixMillis(NOW), "lease taken");
    vm.deliver(
        call.token,
        200,
        &[("cache-control", "max-age=900")],
        &jwks_body(),
    );
    let control = vm.control();
    assert_eq!((control.version, control.failures), (1, 0));
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!((flow, vm.status(id)), (Flow::Continue, None));
    // Nothing more is due until the refresh.
    vm.advance(1000);
    vm.tick();
    assert_eq!(vm.host.calls.borrow().len(), 1);
}

#[test]
fn only_one_vm_fetches_and_the_others_install_its_keys_when_the_version_moves() {
    let mut first = Vm::start(&remote_config());
    let mut second = Vm::beside(&first, &remote_config());
    first.tick();
    second.tick();
    assert_eq!(first.host.calls.borrow().len(), 1);
    assert!(second.host.calls.borrow().is_empty(), "the lease is held");
    let call = first.last_call();
    first.deliver(call.token, 200, &[], &jwks_body());
    // Before its next tick, the second VM finds the keys when a request needs them.
    let (id, flow) = second.send("/members/1", Some(&token()), &[]);
    assert_eq!((flow, second.status(id)), (Flow::Continue, None));
    second.tick();
    assert!(second.host.calls.borrow().is_empty());
}

#[test]
fn a_lease_write_that_loses_the_compare_and_swap_is_retried_against_the_new_record() {
    let mut vm = Vm::start(&remote_config());
    vm.host.fail_next("set_shared_data", HostError::CasMismatch);
    vm.tick();
    assert_eq!(vm.host.calls.borrow().len(), 1, "the retried write won");
}

#[test]
fn a_vm_that_loses_the_lease_to_another_does_not_fetch() {
    let mut first = Vm::start(&remote_config());
    let second = Vm::beside(&first, &remote_config());
    let key = second
        .root
        .plugin()
        .unwrap()
        .source(ProviderId::from_index(0))
        .unwrap()
        .control_key();
    // Between this VM's read and its write, another VM takes the lease.
    let taken = Control {
        lease_until: UnixMillis(NOW + 60_000),
        ..Control::default()
    };
    *first.host.before_next_write.borrow_mut() = Some(Box::new(move |shared: &mut SharedData| {
        shared.set(&key, &taken.encode(), None).unwrap();
    }));
    first.tick();
    assert!(first.host.calls.borrow().is_empty());
}

#[test]
fn discovery_is_fetched_first_and_then_the_jwks_it_names() {
    let mut vm = Vm::start(&discovery_config());
    vm.tick();
    let discovery = vm.last_call();
    assert_eq!(discovery.path, "/.well-known/openid-configuration");
    assert_eq!(discovery.authority, "idp.test");
    let document = json!({"issuer": ISSUER, "jwks_uri": "https://idp.test/keys/v2.json"});
    vm.deliver(discovery.token, 200, &[], document.to_string().as_bytes());
    let jwks_call = vm.last_call();
    assert_ne!(jwks_call.token, discovery.token);
    assert_eq!(jwks_call.path, "/keys/v2.json");
    vm.deliver(jwks_call.token, 200, &[], &jwks_body());
    assert_eq!(vm.control().version, 1);
    let (_, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(flow, Flow::Continue);
}

#[test]
fn a_failed_dispatch_is_a_failed_attempt_retried_after_backoff() {
    let mut vm = Vm::start(&remote_config());
    vm.host
        .fail_next("dispatch_http_call", HostError::BadArgument);
    vm.tick();
    let control = vm.control();
    assert_eq!(control.failures, 1);
    assert!(control.next_attempt_at > UnixMillis(NOW));
    assert!(vm.host.calls.borrow().is_empty());
    vm.tick();
    assert!(vm.host.calls.borrow().is_empty(), "not before the backoff");
    vm.advance(control.next_attempt_at.millis_since(UnixMillis(NOW)));
    vm.tick();
    assert_eq!(vm.host.calls.borrow().len(), 1);
}

#[test]
fn a_jwks_dispatch_that_fails_after_discovery_backs_off_from_the_time_it_failed() {
    let mut vm = Vm::start(&discovery_config());
    vm.tick();
    let discovery = vm.last_call();
    // The discovery answer comes late in the cycle; the JWKS request then cannot be sent.
    let late = 4_000;
    vm.advance(late);
    vm.host
        .fail_next("dispatch_http_call", HostError::BadArgument);
    let document = json!({"issuer": ISSUER, "jwks_uri": "https://idp.test/jwks.json"});
    vm.deliver(discovery.token, 200, &[], document.to_string().as_bytes());
    let control = vm.control();
    assert_eq!(control.failures, 1);
    // Backoff is at least half the initial retry delay (1 s), counted from the failure.
    assert!(
        control.next_attempt_at >= UnixMillis(NOW + late + 500),
        "retry at {} ms after the cycle start",
        control.next_attempt_at.millis_since(UnixMillis(NOW))
    );
}

#[test]
fn bad_answers_keep_no_keys_and_are_retried() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let call = vm.last_call();
    vm.deliver(call.token, 500, &[], b"oops");
    assert_eq!(vm.control().failures, 1);
    vm.advance(vm.control().next_attempt_at.millis_since(UnixMillis(NOW)));
    vm.tick();
    let call = vm.last_call();
    vm.deliver_nothing(call.token);
    assert_eq!(vm.control().failures, 2);
    assert_eq!(vm.control().version, 0);
}

#[test]
fn unreadable_shared_data_skips_the_fetch_without_panicking() {
    let mut vm = Vm::start(&remote_config());
    vm.host
        .fail_always("shared_data", HostError::InternalFailure);
    vm.tick();
    assert!(vm.host.calls.borrow().is_empty());
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!((flow, vm.status(id)), (Flow::Pause, None), "waits for keys");
    for _ in 0..200 {
        vm.advance(100);
        vm.tick();
    }
    assert!(vm.host.calls.borrow().is_empty());
    assert_eq!(vm.status(id), Some(503), "no keys: refused, never allowed");
}

#[test]
fn an_unexpected_http_call_response_is_ignored() {
    let mut vm = Vm::start(&remote_config());
    vm.deliver(99, 200, &[], &jwks_body());
    assert!(vm.host.record("claimgate").is_none());
    let (_, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(flow, Flow::Pause);
}

// ---------------------------------------------------------------------------------------
// Requests waiting for keys.

#[test]
fn a_request_waits_for_the_first_key_set_and_is_resumed_when_it_arrives() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let (id, flow) = vm.send("/members/1", Some(&token()), &[("x-user-id", "spoof")]);
    assert_eq!(flow, Flow::Pause);
    assert_eq!(vm.status(id), None);
    assert_eq!(
        vm.requests[&id].hold_while_waiting(),
        Flow::Pause,
        "body held too"
    );
    let call = vm.last_call();
    vm.deliver(call.token, 200, &[], &jwks_body());
    let request = vm.host.request(id);
    assert!(request.resumed);
    assert_eq!(request.header("x-user-id"), ["auth0|alice"]);
    assert_eq!(vm.requests[&id].hold_while_waiting(), Flow::Continue);
    assert_eq!(vm.host.effective.get(), ROOT_CONTEXT, "back to the root");
}

#[test]
fn a_waiting_request_is_refused_when_its_wait_runs_out() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(flow, Flow::Pause);
    // The fetch never answers; the wait is bounded by one fetch cycle.
    for _ in 0..100 {
        vm.advance(100);
        vm.tick();
        if vm.status(id).is_some() {
            break;
        }
    }
    let request = vm.host.request(id);
    assert_eq!(request.response.map(|r| r.status), Some(503));
    assert!(!request.resumed);
}

#[test]
fn a_waiting_request_that_goes_away_is_forgotten() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let (id, _) = vm.send("/members/1", Some(&token()), &[]);
    assert!(vm.root.plugin().unwrap().is_waiting(id));
    vm.requests.remove(&id);
    assert!(!vm.root.plugin().unwrap().is_waiting(id));
    let call = vm.last_call();
    vm.deliver(call.token, 200, &[], &jwks_body());
    assert!(!vm.host.request(id).resumed);
}

#[test]
fn a_waiting_request_whose_context_is_gone_in_the_host_is_skipped() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let (gone, _) = vm.send("/members/1", Some(&token()), &[]);
    let (kept, _) = vm.send("/members/2", Some(&token()), &[]);
    vm.host.requests.borrow_mut().remove(&gone);
    let call = vm.last_call();
    vm.deliver(call.token, 200, &[], &jwks_body());
    assert!(vm.host.request(kept).resumed);
}

#[test]
fn waiting_requests_are_bounded() {
    let plugin_limit = MAX_WAITERS;
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    for _ in 0..plugin_limit {
        let (_, flow) = vm.send("/members/1", Some(&token()), &[]);
        assert_eq!(flow, Flow::Pause);
    }
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(503)));
}

// ---------------------------------------------------------------------------------------
// Host plumbing.

#[test]
fn unknown_host_statuses_become_errors() {
    assert_eq!(HostError::from_status(8), HostError::CasMismatch);
    assert_eq!(HostError::from_status(1), HostError::NotFound);
    assert_eq!(HostError::from_status(12), HostError::Unimplemented);
    assert_eq!(HostError::from_status(99), HostError::Status(99));
    assert_eq!(HostError::Status(99).to_string(), "unknown status 99");
}

#[test]
fn keys_that_cannot_be_published_are_not_trusted_and_the_fetch_is_retried() {
    let mut vm = Vm::start(&remote_config());
    vm.tick();
    let call = vm.last_call();
    vm.host
        .fail_always("set_shared_data", HostError::InternalFailure);
    vm.deliver(call.token, 200, &[], &jwks_body());
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!((flow, vm.status(id)), (Flow::Pause, None), "still waits");
    vm.host.heal("set_shared_data");
    // The lease of the lost attempt runs out; the next tick fetches again.
    for _ in 0..200 {
        vm.advance(100);
        vm.tick();
        if vm.host.calls.borrow().len() > 1 {
            break;
        }
    }
    let retry = vm.last_call();
    assert_ne!(retry.token, call.token);
    vm.deliver(retry.token, 200, &[], &jwks_body());
    assert_eq!(vm.control().version, 1);
}

#[test]
fn an_unreadable_fetch_response_is_a_failed_attempt() {
    for call in ["http_call_response_header", "http_call_response_body"] {
        let mut vm = Vm::start(&remote_config());
        vm.tick();
        let fetch = vm.last_call();
        vm.host.fail_always(call, HostError::InternalFailure);
        vm.deliver(fetch.token, 200, &[], &jwks_body());
        let control = vm.control();
        assert_eq!((control.version, control.failures), (0, 1), "{call}");
    }
}

#[test]
fn a_clock_that_fails_on_a_tick_schedules_nothing() {
    let mut vm = Vm::start(&remote_config());
    vm.host.fail_next("now_ms", HostError::InternalFailure);
    vm.tick();
    assert!(vm.host.calls.borrow().is_empty());
    vm.tick();
    assert_eq!(vm.host.calls.borrow().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Hostile request shapes.

#[test]
fn header_values_that_are_not_utf8_are_decided_without_panicking() {
    let mut vm = Vm::start(&inline_config());
    let request = |path: &str, more: Vec<(String, Vec<u8>)>| -> HeaderList {
        let mut headers = vec![
            (":method".to_owned(), b"GET".to_vec()),
            (":path".to_owned(), path.as_bytes().to_vec()),
            (":authority".to_owned(), b"api.test".to_vec()),
        ];
        headers.extend(more);
        headers
    };
    let spoofed = vec![0xff, 0xfe, b'a'];
    let (id, flow) = vm.send_headers(request(
        "/members/1",
        vec![
            (
                "authorization".to_owned(),
                format!("Bearer {}", token()).into_bytes(),
            ),
            ("x-user-id".to_owned(), spoofed.clone()),
            ("x-binary".to_owned(), vec![0x80; 64]),
        ],
    ));
    assert_eq!(flow, Flow::Continue);
    let forwarded = vm.host.request(id);
    assert_eq!(forwarded.header("x-user-id"), ["auth0|alice"]);
    assert!(forwarded.headers.iter().all(|(_, value)| *value != spoofed));
    // A token that is not UTF-8 is a bad token, not a crash.
    let (id, flow) = vm.send_headers(request(
        "/public/x",
        vec![("authorization".to_owned(), b"Bearer \xff\xfe.\x80".to_vec())],
    ));
    assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(401)));
}

#[test]
fn a_header_map_near_envoys_limits_is_handled() {
    let mut vm = Vm::start(&inline_config());
    // Envoy's defaults: 60 KiB of headers, 100 headers; go past both.
    let filler = "v".repeat(600);
    let names: Vec<String> = (0..150).map(|n| format!("x-filler-{n}")).collect();
    let extra: Vec<(&str, &str)> = names
        .iter()
        .map(|name| (name.as_str(), filler.as_str()))
        .collect();
    let (id, flow) = vm.send("/members/1", Some(&token()), &extra);
    assert_eq!((flow, vm.status(id)), (Flow::Continue, None));
    assert_eq!(vm.host.request(id).header("x-user-id"), ["auth0|alice"]);
}

#[test]
fn thousands_of_distinct_tokens_keep_the_cache_within_its_bound() {
    let mut config = inline_config();
    config["token_cache"] = json!({"max_entries": 500});
    let mut vm = Vm::start(&config);
    for n in 0..3000 {
        let token = token_from(&key(), json!({"sub": format!("auth0|user{n}")}));
        let (id, flow) = vm.send("/members/1", Some(&token), &[]);
        assert_eq!(flow, Flow::Continue);
        vm.requests.remove(&id);
        vm.host.requests.borrow_mut().remove(&id);
    }
    let cached = vm.root.plugin().unwrap().cached_tokens();
    assert!(cached <= 500 && cached > 0, "{cached} cached tokens");
}

// ---------------------------------------------------------------------------------------
// DPoP and certificate binding: what the adapter adds to the core (shared state).

thread_local! {
    static CLIENT_KEY: SigningKey = SigningKey::generate(Alg::Es256, None).unwrap();
}

fn dpop_config(extra: Value) -> Value {
    let mut config = inline_config();
    config["providers"][0]["dpop"] = json!("required");
    crate::test_support::merge(&mut config, extra);
    config
}

fn bound_token() -> String {
    let jkt = CLIENT_KEY.with(|key| key.thumbprint().unwrap());
    token_from(&key(), json!({"cnf": {"jkt": jkt}}))
}

fn proof(token: &str, jti: &str, nonce: Option<&str>) -> String {
    CLIENT_KEY.with(|key| {
        key.dpop_proof(&crate::mint::ProofRequest {
            method: "GET",
            // The mock's connections are plain TCP (no `connection.tls_version`).
            url: "http://api.test/members",
            access_token: Some(token),
            nonce,
            iat: (NOW / 1000) as i64,
            jti,
        })
        .unwrap()
    })
}

impl Vm {
    fn send_dpop(&mut self, token: &str, proof: &str) -> (u32, Flow) {
        let authorization = format!("DPoP {token}");
        self.send(
            "/members",
            None,
            &[("authorization", &authorization), ("dpop", proof)],
        )
    }
}

#[test]
fn a_dpop_proof_accepted_by_one_worker_is_refused_as_a_replay_by_another() {
    let config = dpop_config(json!({}));
    let mut first = Vm::start(&config);
    let mut second = Vm::beside(&first, &config);
    let token = bound_token();
    let proof = proof(&token, "once", None);
    let (id, flow) = first.send_dpop(&token, &proof);
    assert_eq!((flow, first.status(id)), (Flow::Continue, None));
    let (id, flow) = second.send_dpop(&token, &proof);
    assert_eq!((flow, second.status(id)), (Flow::Pause, Some(401)));
    let response = second.host.request(id).response.unwrap();
    let challenge = &response
        .headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .unwrap()
        .1;
    assert!(
        challenge.contains("DPoP proof has been used before"),
        "{challenge}"
    );
    // A fresh proof passes on either worker.
    let (id, _) = second.send_dpop(&token, &self::proof(&token, "twice", None));
    assert_eq!(second.status(id), None);
}

#[test]
fn a_worker_racing_on_the_replay_record_never_loses_an_entry() {
    use crate::dpop::{ProofId, ReplayShards};
    // One shard, so every proof lands in the same record.
    let config = dpop_config(json!({"dpop_proofs": {"replay_cache_entries": 256}}));
    let mut vm = Vm::start(&config);
    let mut other = Vm::beside(&vm, &config);
    let token = bound_token();
    let ours = proof(&token, "ours", None);
    let theirs = proof(&token, "theirs", None);
    // Another worker records "theirs" between this worker's read of the shard and its
    // write: the write must fail its compare-and-swap and be retried on the new record.
    let shards = ReplayShards::new(256);
    let jkt = CLIENT_KEY.with(|key| key.thumbprint().unwrap());
    let id = ProofId::new(&jkt, "theirs");
    let now = (NOW / 1000) as i64;
    let record = shards.insert(None, id, now + 61, UnixSeconds(now)).unwrap();
    let key = shards.key(id);
    *vm.host.before_next_write.borrow_mut() = Some(Box::new(move |data: &mut SharedData| {
        data.set(&key, &record, None).unwrap();
    }));
    let (id, _) = vm.send_dpop(&token, &ours);
    assert_eq!(vm.status(id), None, "ours is new");
    // Both entries survived: neither proof passes again, on either worker.
    for (vm, proof) in [(&mut other, &ours), (&mut vm, &theirs)] {
        let (id, _) = vm.send_dpop(&token, proof);
        assert_eq!(vm.status(id), Some(401));
    }
}

#[test]
fn nonces_one_worker_issues_are_accepted_by_another() {
    let config = dpop_config(json!({"dpop_proofs": {"use_dpop_nonce": true}}));
    let mut first = Vm::start(&config);
    let mut second = Vm::beside(&first, &config);
    let token = bound_token();
    let (id, _) = first.send_dpop(&token, &proof(&token, "no-nonce", None));
    let response = first.host.request(id).response.unwrap();
    assert_eq!(response.status, 401);
    let nonce = response
        .headers
        .iter()
        .find(|(name, _)| name == "dpop-nonce")
        .map(|(_, value)| value.clone())
        .expect("a nonce to retry with");
    let (id, _) = second.send_dpop(&token, &proof(&token, "with-nonce", Some(&nonce)));
    assert_eq!(second.status(id), None);
}

/// A VM of another Envoy (its own shared data) with `environment` as its VM environment.
fn replica(config: &Value, environment: &[(&str, &str)]) -> Vm {
    let host = MockHost::new(NOW);
    for (name, value) in environment {
        host.environment
            .borrow_mut()
            .insert((*name).to_owned(), (*value).to_owned());
    }
    Vm::unconfigured(host, config).configured()
}

fn nonce_challenge(vm: &mut Vm, token: &str, proof: &str) -> String {
    let (id, _) = vm.send_dpop(token, proof);
    let response = vm.host.request(id).response.unwrap();
    assert_eq!(response.status, 401);
    response
        .headers
        .iter()
        .find(|(name, _)| name == "dpop-nonce")
        .map(|(_, value)| value.clone())
        .expect("a nonce to retry with")
}

fn secret(byte: u8) -> String {
    <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(&[byte; 32])
}

fn secrets_config(previous: bool) -> Value {
    let mut secrets = json!({"current_env": "CG_NONCE"});
    if previous {
        secrets["previous_env"] = json!("CG_NONCE_OLD");
    }
    dpop_config(json!({"dpop_proofs": {"use_dpop_nonce": true, "nonce_secrets": secrets}}))
}

#[test]
fn without_nonce_secrets_another_envoy_refuses_the_nonce_with_a_new_one() {
    let config = dpop_config(json!({"dpop_proofs": {"use_dpop_nonce": true}}));
    let token = bound_token();
    let mut a = replica(&config, &[]);
    let mut b = replica(&config, &[]);
    let nonce = nonce_challenge(&mut a, &token, &proof(&token, "n0", None));
    let fresh = nonce_challenge(&mut b, &token, &proof(&token, "n1", Some(&nonce)));
    assert_ne!(fresh, nonce);
}

#[test]
fn with_nonce_secrets_every_envoy_accepts_the_nonces_of_the_others_and_rotation_keeps_old_ones() {
    let token = bound_token();
    let (old, new, newer) = (secret(1), secret(2), secret(3));
    let config = secrets_config(false);
    let mut a = replica(&config, &[("CG_NONCE", &old)]);
    let mut b = replica(&config, &[("CG_NONCE", &old)]);
    let nonce = nonce_challenge(&mut a, &token, &proof(&token, "s0", None));
    let (id, _) = b.send_dpop(&token, &proof(&token, "s1", Some(&nonce)));
    assert_eq!(b.status(id), None, "B accepts A's nonce");
    // Rotation: C has the new secret and the old one as previous.
    let rotated = secrets_config(true);
    let mut c = replica(&rotated, &[("CG_NONCE", &new), ("CG_NONCE_OLD", &old)]);
    let (id, _) = c.send_dpop(&token, &proof(&token, "s2", Some(&nonce)));
    assert_eq!(
        c.status(id),
        None,
        "the previous secret's nonce is accepted"
    );
    let minted = nonce_challenge(&mut c, &token, &proof(&token, "s3", None));
    // Made with the new secret: the old-only replica refuses it.
    nonce_challenge(&mut a, &token, &proof(&token, "s4", Some(&minted)));
    // Rotated out: the first secret's nonces are refused, the second's accepted.
    let mut d = replica(&rotated, &[("CG_NONCE", &newer), ("CG_NONCE_OLD", &new)]);
    nonce_challenge(&mut d, &token, &proof(&token, "s5", Some(&nonce)));
    let (id, _) = d.send_dpop(&token, &proof(&token, "s6", Some(&minted)));
    assert_eq!(d.status(id), None);
    // The per-Envoy key in shared data is neither made nor used.
    assert!(d.host.record("claimgate/dpop-nonce-key").is_none());
}

#[test]
fn missing_or_short_nonce_secrets_refuse_the_configuration_naming_field_and_variable() {
    use super::root::{operator_nonce_key, NonceSecretError};
    let short = <base64ct::Base64UrlUnpadded as base64ct::Encoding>::encode_string(&[7_u8; 31]);
    for (environment, field) in [
        (vec![], "current_env"),
        (vec![("CG_NONCE", short.as_str())], "current_env"),
        (vec![("CG_NONCE", "not base64!")], "current_env"),
        (vec![("CG_NONCE", secret(1).as_str())], "previous_env"),
    ] {
        let host = MockHost::new(NOW);
        for (name, value) in &environment {
            host.environment
                .borrow_mut()
                .insert((*name).to_owned(), (*value).to_owned());
        }
        *host.configuration.borrow_mut() = Some(secrets_config(true).to_string().into_bytes());
        let host = Rc::new(host);
        let mut root = RootFilter::new(host.clone(), ROOT_CONTEXT);
        assert!(!root.on_configure(), "{environment:?}");
        let secrets = crate::dpop::NonceSecretsEnv {
            current_env: "CG_NONCE".to_owned(),
            previous_env: Some("CG_NONCE_OLD".to_owned()),
        };
        let error = operator_nonce_key(host.as_ref(), &secrets).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains(&format!("dpop_proofs.nonce_secrets.{field}")),
            "{message}"
        );
        let variable = if field == "current_env" {
            "CG_NONCE"
        } else {
            "CG_NONCE_OLD"
        };
        assert!(message.contains(variable), "{message}");
        // The value is never in the message.
        for (_, value) in &environment {
            assert!(!message.contains(value), "{message}");
        }
        assert!(matches!(
            error,
            NonceSecretError::Missing { .. } | NonceSecretError::Invalid { .. }
        ));
    }
}

#[test]
fn when_the_replay_record_cannot_be_read_dpop_requests_get_503_never_a_pass() {
    let config = dpop_config(json!({}));
    let mut vm = Vm::start(&config);
    let token = bound_token();
    vm.host.fail_next("shared_data", HostError::InternalFailure);
    let (id, flow) = vm.send_dpop(&token, &proof(&token, "p", None));
    assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(503)));
    // Bearer requests of other providers are not affected; this one retries fine.
    let (id, _) = vm.send_dpop(&token, &proof(&token, "p", None));
    assert_eq!(vm.status(id), None);
}

#[test]
fn certificate_bound_tokens_need_the_connections_certificate() {
    let mut config = inline_config();
    config["providers"][0]["mtls_binding"] = json!("required");
    let mut vm = Vm::start(&config);
    let digest = "ab".repeat(32);
    let thumbprint = crate::dpop::certificate_thumbprint_from_hex(&digest).unwrap();
    let bound = token_from(&key(), json!({"cnf": {"x5t#S256": thumbprint}}));
    // No certificate on the connection.
    let (id, _) = vm.send("/members", Some(&bound), &[]);
    assert_eq!(vm.status(id), Some(401));
    vm.host.properties.borrow_mut().insert(
        "connection.sha256_peer_certificate_digest".into(),
        digest.into_bytes(),
    );
    let (id, _) = vm.send("/members", Some(&bound), &[]);
    assert_eq!(vm.status(id), None);
    // Another certificate, or a token without cnf.
    vm.host.properties.borrow_mut().insert(
        "connection.sha256_peer_certificate_digest".into(),
        "cd".repeat(32).into_bytes(),
    );
    let (id, _) = vm.send("/members", Some(&bound), &[]);
    assert_eq!(vm.status(id), Some(401));
    let (id, _) = vm.send("/members", Some(&token()), &[]);
    assert_eq!(vm.status(id), Some(401));
}

#[test]
fn htu_names_the_connections_scheme_never_the_clients() {
    let config = dpop_config(json!({}));
    let mut vm = Vm::start(&config);
    let token = bound_token();
    let https_proof = |jti: &str| {
        CLIENT_KEY.with(|key| {
            key.dpop_proof(&crate::mint::ProofRequest {
                method: "GET",
                url: "https://api.test/members",
                access_token: Some(&token),
                nonce: None,
                iat: (NOW / 1000) as i64,
                jti,
            })
            .unwrap()
        })
    };
    // A plain connection: a proof for https does not match, whatever `:scheme` says.
    let authorization = format!("DPoP {token}");
    let (id, _) = vm.send(
        "/members",
        None,
        &[
            ("authorization", &authorization),
            ("dpop", &https_proof("a")),
            (":scheme", "https"),
        ],
    );
    assert_eq!(vm.status(id), Some(401));
    // Over TLS it does.
    vm.host
        .properties
        .borrow_mut()
        .insert("connection.tls_version".into(), b"TLSv1.3".to_vec());
    let (id, _) = vm.send_dpop(&token, &https_proof("b"));
    assert_eq!(vm.status(id), None);
    // When Envoy cannot say, no proof matches: refused, never passed.
    vm.host.fail_always("property", HostError::InternalFailure);
    let (id, _) = vm.send_dpop(&token, &https_proof("c"));
    assert_eq!(vm.status(id), Some(401));
    let (id, _) = vm.send_dpop(&token, &proof(&token, "d", None));
    assert_eq!(vm.status(id), Some(401));
}

// ---------------------------------------------------------------------------------------
// Claims of the documentation (tests/CLAIMS.md), through the adapter.

const ADDRESS: &str = "source.address";
const DIGEST: &str = "connection.sha256_peer_certificate_digest";

fn reads(vm: &Vm, path: &str) -> usize {
    vm.host
        .property_reads
        .borrow()
        .iter()
        .filter(|read| *read == path)
        .count()
}

#[test]
fn the_client_address_and_certificate_are_read_only_when_the_configuration_uses_them() {
    // Neither used: two requests, no read of either.
    let mut vm = Vm::start(&inline_config());
    vm.send("/members/1", Some(&token()), &[]);
    vm.send("/gold", Some(&token()), &[]);
    assert_eq!((reads(&vm, ADDRESS), reads(&vm, DIGEST)), (0, 0));

    // A rule on the client address: read once per request, the certificate still not.
    let mut config = inline_config();
    config["rules"][1]["when"] = json!({"request": "client_address", "in_cidr": "10.0.0.0/8"});
    let mut vm = Vm::start(&config);
    vm.host
        .properties
        .borrow_mut()
        .insert(ADDRESS.into(), b"10.1.2.3:5555".to_vec());
    let (id, _) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(vm.status(id), None, "the address was read and matched");
    vm.send("/public/x", None, &[]);
    assert_eq!((reads(&vm, ADDRESS), reads(&vm, DIGEST)), (2, 0));

    // A provider binding tokens to certificates: the digest is read, the address not.
    let mut config = inline_config();
    config["providers"][0]["mtls_binding"] = json!("optional");
    let mut vm = Vm::start(&config);
    vm.send("/members/1", Some(&token()), &[]);
    assert_eq!((reads(&vm, ADDRESS), reads(&vm, DIGEST)), (0, 1));
}

#[test]
fn token_caches_are_emptied_when_the_keys_change_in_every_worker() {
    let config = remote_config();
    let mut first = Vm::start(&config);
    let mut second = Vm::beside(&first, &config);
    first.tick();
    let call = first.last_call();
    first.deliver(call.token, 200, &[], &jwks_body());
    let token = token();
    for vm in [&mut first, &mut second] {
        let (id, _) = vm.send("/members/1", Some(&token), &[]);
        assert_eq!(vm.status(id), None);
        assert_eq!(vm.root.plugin().unwrap().cached_tokens(), 1);
    }
    // Past the refresh point (90 % of the default 600 s, at least 30 s early) the first
    // VM fetches again and the IdP has added a key: a new version.
    for vm in [&mut first, &mut second] {
        vm.advance(571_000);
        let (id, _) = vm.send("/members/2", Some(&token), &[]);
        assert_eq!(vm.status(id), None);
        assert_eq!(vm.root.plugin().unwrap().cached_tokens(), 1);
    }
    first.tick();
    assert_eq!(first.host.calls.borrow().len(), 2, "the refresh fetch");
    let call = first.last_call();
    let added = SigningKey::generate(Alg::Es256, Some("k2")).unwrap();
    let rotated = json!({"keys": [key().public_jwk(), added.public_jwk()]});
    first.deliver(call.token, 200, &[], rotated.to_string().as_bytes());
    assert_eq!(first.control().version, 2);
    assert_eq!(first.root.plugin().unwrap().cached_tokens(), 0);
    // The other worker installs the new version on its next tick and empties its cache.
    assert_eq!(second.root.plugin().unwrap().cached_tokens(), 1);
    second.tick();
    assert_eq!(second.root.plugin().unwrap().cached_tokens(), 0);
    // A token of the added key passes on both.
    let new_token = token_from(&added, json!({}));
    for vm in [&mut first, &mut second] {
        let (id, _) = vm.send("/members/1", Some(&new_token), &[]);
        assert_eq!(vm.status(id), None);
    }
}

fn options_preflight(vm: &mut Vm, path: &str) -> (u32, Flow) {
    vm.send_headers(vec![
        (":method".to_owned(), b"OPTIONS".to_vec()),
        (":path".to_owned(), path.as_bytes().to_vec()),
        (":authority".to_owned(), b"api.test".to_vec()),
        ("origin".to_owned(), b"https://shop.test".to_vec()),
        ("access-control-request-method".to_owned(), b"GET".to_vec()),
        ("x-user-id".to_owned(), b"spoofed".to_vec()),
    ])
}

#[test]
fn the_cors_bypass_still_refuses_ambiguous_paths() {
    let mut config = inline_config();
    config["bypass_cors_preflight"] = json!(true);
    let mut vm = Vm::start(&config);
    let (id, flow) = options_preflight(&mut vm, "/members/1");
    assert_eq!((flow, vm.status(id)), (Flow::Continue, None));
    assert!(vm.host.request(id).header("x-user-id").is_empty());
    for path in [
        "/members/../admin",
        "/members/%2e%2e/admin",
        "/members/..;x/admin",
        "/members%2fadmin",
        "/members%5cadmin",
    ] {
        let (id, flow) = options_preflight(&mut vm, path);
        assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(400)), "{path}");
    }
    assert_eq!(
        vm.host.counter("claimgate.requests.cors_preflight"),
        Some(1)
    );
    assert_eq!(vm.host.counter("claimgate.requests.bad_request"), Some(5));
}

#[test]
fn a_dry_run_policy_lets_refused_tokens_through_without_identity_but_still_answers_503() {
    let mut config = inline_config();
    config["mode"] = json!("dry_run");
    let mut vm = Vm::start(&config);
    let expired = token_from(&key(), json!({"exp": NOW / 1000 - 3600}));
    let (id, flow) = vm.send("/members/1", Some(&expired), &[("x-user-id", "spoofed")]);
    assert_eq!((flow, vm.status(id)), (Flow::Continue, None));
    let request = vm.host.request(id);
    assert!(request.header("x-user-id").is_empty(), "{request:?}");
    let explanation: Value =
        serde_json::from_slice(&request.properties["claimgate.decision"]).unwrap();
    assert_eq!(explanation["status"], 200, "{explanation}");
    assert_eq!(explanation["dry_run"]["status"], 401, "{explanation}");
    assert_eq!(vm.host.counter("claimgate.dry_run.would_deny"), Some(1));
    // A valid token under dry run still gets its identity headers.
    let (id, _) = vm.send("/gold", Some(&token()), &[]);
    assert_eq!(vm.status(id), None);
    assert_eq!(vm.host.request(id).header("x-user-id"), ["auth0|alice"]);

    // Without keys, dry run or not, the answer is 503.
    let mut config = remote_config();
    config["mode"] = json!("dry_run");
    let mut vm = Vm::start(&config);
    vm.tick();
    let (id, flow) = vm.send("/members/1", Some(&token()), &[]);
    assert_eq!(flow, Flow::Pause);
    let call = vm.last_call();
    vm.deliver(call.token, 500, &[], b"down");
    for _ in 0..100 {
        vm.advance(100);
        vm.tick();
        if vm.status(id).is_some() {
            break;
        }
    }
    assert_eq!(vm.status(id), Some(503));
    assert!(!vm.host.request(id).resumed);
}

/// `inline_config` with these identity headers and rules.
fn config_with(identity: Value, rules: Value) -> Value {
    let mut config = inline_config();
    config["identity"] = json!({ "headers": identity });
    config["rules"] = rules;
    config
}

#[test]
fn a_fixed_identity_value_is_written_and_empty_values_are_skipped() {
    let config = config_with(
        json!([
            {"header": "x-user-id", "claim": "sub"},
            {"header": "x-gateway", "value": "claimgate-edge"},
            {"header": "x-email", "claim": "email"},
            {"header": "x-name", "first_of": [{"claim": "nickname"}, {"value": ""}]}
        ]),
        json!([{"match": {"prefix": "/"}, "access": "authenticated"}]),
    );
    let mut vm = Vm::start(&config);
    let token = token_from(&key(), json!({"email": "", "nickname": ""}));
    let (id, _) = vm.send(
        "/x",
        Some(&token),
        &[("x-gateway", "spoofed"), ("x-email", "spoofed")],
    );
    let request = vm.host.request(id);
    assert_eq!(request.response, None);
    assert_eq!(request.header("x-user-id"), ["auth0|alice"]);
    assert_eq!(request.header("x-gateway"), ["claimgate-edge"]);
    assert!(request.header("x-email").is_empty(), "{request:?}");
    assert!(request.header("x-name").is_empty(), "{request:?}");
}

fn status_of(vm: &mut Vm, path: &str, token: Option<&str>) -> Option<u16> {
    let (id, _) = vm.send(path, token, &[]);
    vm.status(id)
}

#[test]
fn access_deny_refuses_every_request_it_matches_even_where_an_allow_rule_holds() {
    let config = config_with(
        json!([]),
        json!([
            {"name": "closed", "match": {"prefix": "/closed"}, "access": "deny"},
            {"name": "open", "match": {"prefix": "/"}, "access": "public"}
        ]),
    );
    let mut vm = Vm::start(&config);
    assert_eq!(status_of(&mut vm, "/closed/x", Some(&token())), Some(403));
    assert_eq!(status_of(&mut vm, "/closed", None), Some(403));
    assert_eq!(status_of(&mut vm, "/open", None), None);
    assert_eq!(vm.host.counter("claimgate.rule.closed.denied"), Some(2));
}

#[test]
fn require_and_when_on_one_rule_must_both_hold() {
    let config = config_with(
        json!([]),
        json!([{
            "name": "both",
            "match": {"prefix": "/both"},
            "require": [{"claim": "tier", "equals": "gold"}],
            "when": {"claim": "team", "equals": "red"}
        }]),
    );
    let mut vm = Vm::start(&config);
    for (claims, expected) in [
        (json!({"tier": "gold", "team": "red"}), None),
        (json!({"tier": "gold", "team": "blue"}), Some(403)),
        (json!({"tier": "silver", "team": "red"}), Some(403)),
        (json!({}), Some(403)),
    ] {
        let token = token_from(&key(), claims.clone());
        assert_eq!(
            status_of(&mut vm, "/both", Some(&token)),
            expected,
            "{claims}"
        );
    }
}

#[test]
fn a_deny_rule_with_providers_refuses_only_those_providers_tokens() {
    let other_key = SigningKey::generate(Alg::Es256, Some("o1")).unwrap();
    let mut config = inline_config();
    config["providers"].as_array_mut().unwrap().push(json!({
        "name": "partner",
        "issuer": "https://partner.test/",
        "audiences": [AUDIENCE],
        "algorithms": ["ES256"],
        "jwks": {"inline": {"keys": [other_key.public_jwk()]}}
    }));
    config["rules"] = json!([
        {"name": "no-partners", "match": {"prefix": "/internal"}, "effect": "deny", "providers": ["partner"]},
        {"name": "members", "match": {"prefix": "/"}, "access": "authenticated"}
    ]);
    let mut vm = Vm::start(&config);
    let partner = token_from(&other_key, json!({"iss": "https://partner.test/"}));
    assert_eq!(status_of(&mut vm, "/internal/x", Some(&partner)), Some(403));
    assert_eq!(status_of(&mut vm, "/internal/x", Some(&token())), None);
    assert_eq!(status_of(&mut vm, "/elsewhere", Some(&partner)), None);
    assert_eq!(
        vm.host.counter("claimgate.rule.no-partners.denied"),
        Some(1)
    );
}

#[test]
fn strings_are_compared_exactly_without_case_folding_or_normalization() {
    let config = config_with(
        json!([]),
        json!([
            {"name": "gold", "match": {"prefix": "/gold"}, "when": {"claim": "tier", "equals": "Gold"}},
            {"name": "cafe", "match": {"prefix": "/cafe"}, "when": {"claim": "place", "in": ["caf\u{e9}"]}},
            {"name": "team", "match": {"prefix": "/team"}, "when": {"header": "x-team", "equals": "red"}}
        ]),
    );
    let mut vm = Vm::start(&config);
    for (tier, expected) in [
        ("Gold", None),
        ("gold", Some(403)),
        ("GOLD", Some(403)),
        (" Gold", Some(403)),
        ("Gold ", Some(403)),
    ] {
        let token = token_from(&key(), json!({"tier": tier}));
        assert_eq!(
            status_of(&mut vm, "/gold", Some(&token)),
            expected,
            "{tier:?}"
        );
    }
    // NFC é passes; the decomposed e + U+0301 (NFD) is another string.
    for (place, expected) in [("caf\u{e9}", None), ("cafe\u{301}", Some(403))] {
        let token = token_from(&key(), json!({"place": place}));
        assert_eq!(
            status_of(&mut vm, "/cafe", Some(&token)),
            expected,
            "{place:?}"
        );
    }
    for (team, expected) in [("red", None), ("Red", Some(403)), ("RED", Some(403))] {
        let (id, _) = vm.send("/team", Some(&token()), &[("x-team", team)]);
        assert_eq!(vm.status(id), expected, "{team:?}");
    }
}

/// Envoy prefixes a module's log lines with `wasm log PLUGIN ROOT_ID:`, so the module's own
/// `claimgate: ` is dropped (not `claimgate claimgate: claimgate: …`); the decision's debug
/// line prints names and text, not Rust's `Some("…")`.
#[test]
fn log_lines_are_not_doubled_and_print_no_rust_options() {
    use super::apply::decision_log_line;
    use super::logger::for_envoy;
    assert_eq!(
        for_envoy("claimgate: configuration loaded"),
        "configuration loaded"
    );
    assert_eq!(for_envoy("other text"), "other text");

    let config =
        crate::config::Config::from_json(include_bytes!("../../filter-config/aethermarket.json"))
            .unwrap();
    let headers = crate::request::request_headers(
        "DELETE",
        "/admin/users",
        "localhost",
        None,
        std::iter::empty(),
    );
    let request = crate::request::RequestView::new(&headers);
    let keys = config.initial_keys();
    let decision = crate::decide(
        crate::Input::new(request),
        crate::Environment::new(&config, &keys, crate::UnixSeconds(0)),
    );
    let line = decision_log_line(&decision, "none");
    assert!(!line.contains("Some("), "{line}");
    assert!(!line.contains('"'), "{line}");
    assert!(line.contains("rule admin-write,"), "{line}");
    assert!(line.contains("subject none"), "{line}");
}

// The fleet-wide record in etcd (`dpop_proofs.shared_record`).

fn etcd_config(on_unavailable: &str) -> Value {
    dpop_config(json!({"dpop_proofs": {"shared_record": {
        "cluster": "etcd", "authority": "etcd.local", "timeout_ms": 300,
        "on_unavailable": on_unavailable
    }}}))
}

impl Vm {
    /// Delivers the answer to a call the request `context_id` made (Envoy delivers it to
    /// the context that dispatched it); `None` status: no answer at all.
    fn answer(&mut self, context_id: u32, status: Option<u16>, body: &str) {
        let token = self.last_call().token;
        let num_headers = match status {
            Some(status) => {
                *self.host.delivering.borrow_mut() = Some(CallResponse {
                    headers: vec![(":status".to_owned(), status.to_string())],
                    body: body.as_bytes().to_vec(),
                });
                1
            }
            None => 0,
        };
        self.host.effective.set(context_id);
        let filter = self.requests.get_mut(&context_id).expect("a request");
        filter.on_http_call_response(&Delivered {
            token,
            num_headers,
            body_size: body.len(),
        });
        *self.host.delivering.borrow_mut() = None;
    }
}

const LEASE_OK: &str = r#"{"header":{"revision":"1"},"ID":"5","TTL":"130"}"#;
const CREATED: &str = r#"{"header":{"revision":"2"},"succeeded":true}"#;
const EXISTED: &str = r#"{"header":{"revision":"2"}}"#;

#[test]
fn with_a_shared_record_a_proof_waits_for_etcd_and_a_proof_etcd_has_seen_is_a_replay() {
    let config = etcd_config("refuse");
    let token = bound_token();
    let proof = proof(&token, "fleet-once", None);
    // Replica A: lease grant, then the transaction; the request waits for both.
    let mut a = Vm::start(&config);
    let (id, flow) = a.send_dpop(&token, &proof);
    assert_eq!(flow, Flow::Pause);
    let call = a.last_call();
    assert_eq!(
        (
            call.cluster.as_str(),
            call.path.as_str(),
            call.authority.as_str()
        ),
        ("etcd", "/v3/lease/grant", "etcd.local")
    );
    assert_eq!(call.timeout, std::time::Duration::from_millis(300));
    a.answer(id, Some(200), LEASE_OK);
    let call = a.last_call();
    assert_eq!(call.path, "/v3/kv/txn");
    let body: Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["compare"][0]["target"], "CREATE");
    assert!(!a.host.request(id).resumed);
    a.answer(id, Some(200), CREATED);
    assert!(a.host.request(id).resumed, "created: the request goes on");
    assert_eq!(a.status(id), None);
    assert_eq!(
        a.host.counter("claimgate.dpop.shared_record.created"),
        Some(1)
    );
    assert_eq!(
        a.host.counter("claimgate.dpop.shared_record.calls"),
        Some(2)
    );
    // Next proof on A: the lease is known, one call.
    let calls = a.host.calls.borrow().len();
    let (id, _) = a.send_dpop(&token, &self::proof(&token, "fleet-two", None));
    assert_eq!(a.host.calls.borrow().len(), calls + 1);
    assert_eq!(a.last_call().path, "/v3/kv/txn");
    a.answer(id, Some(200), CREATED);
    assert!(a.host.request(id).resumed);
    // Replica B (another Envoy: its own per-Envoy record) gets the first proof again:
    // etcd says the key exists, so it is a replay, never forwarded.
    let mut b = Vm::start(&config);
    let (id, flow) = b.send_dpop(&token, &proof);
    assert_eq!(flow, Flow::Pause);
    b.answer(id, Some(200), LEASE_OK);
    b.answer(id, Some(200), EXISTED);
    assert_eq!(b.status(id), Some(401));
    assert!(!b.host.request(id).resumed);
    let response = b.host.request(id).response.unwrap();
    let challenge = &response
        .headers
        .iter()
        .find(|(name, _)| name == "www-authenticate")
        .unwrap()
        .1;
    assert!(challenge.contains("used before"), "{challenge}");
    assert_eq!(
        b.host.counter("claimgate.dpop.shared_record.replayed"),
        Some(1)
    );
    // The same proof on A again: the per-Envoy record refuses it without asking etcd.
    let calls = a.host.calls.borrow().len();
    let (id, _) = a.send_dpop(&token, &proof);
    assert_eq!(a.status(id), Some(401));
    assert_eq!(a.host.calls.borrow().len(), calls);
}

#[test]
fn when_etcd_cannot_answer_the_proof_gets_503_or_with_local_the_per_envoy_verdict() {
    let token = bound_token();
    for (status, body) in [
        (None, ""),
        (Some(503), "upstream connect error"),
        (
            Some(500),
            r#"{"error":"etcdserver: request timed out","code":14}"#,
        ),
        (Some(200), "not json"),
    ] {
        let mut vm = Vm::start(&etcd_config("refuse"));
        let (id, _) = vm.send_dpop(&token, &proof(&token, "u1", None));
        vm.answer(id, status, body);
        if status.is_some() {
            // An answer that is not etcd's verdict: sent once more, then given up.
            assert_eq!(vm.status(id), None, "retried: {status:?} {body}");
            vm.answer(id, status, body);
        }
        assert_eq!(vm.status(id), Some(503), "{status:?} {body}");
        assert!(!vm.host.request(id).resumed);
        let response = vm.host.request(id).response.unwrap();
        assert!(response
            .headers
            .iter()
            .any(|(name, _)| name == "retry-after"));
        assert_eq!(
            vm.host.counter("claimgate.dpop.shared_record.failures"),
            Some(1)
        );
        // With `local`: forwarded on the per-Envoy record's word, counted.
        let mut vm = Vm::start(&etcd_config("local"));
        let (id, _) = vm.send_dpop(&token, &proof(&token, "u2", None));
        vm.answer(id, status, body);
        if status.is_some() {
            vm.answer(id, status, body);
        }
        assert!(vm.host.request(id).resumed, "{status:?} {body}");
        assert_eq!(
            vm.host.counter("claimgate.dpop.shared_record.fallbacks"),
            Some(1)
        );
        // ...which still refuses the proof a second time on this Envoy.
        let (id, _) = vm.send_dpop(&token, &proof(&token, "u2", None));
        assert_eq!(vm.status(id), Some(401));
    }
    // A call that cannot even start: 503 at once.
    let mut vm = Vm::start(&etcd_config("refuse"));
    vm.host
        .fail_next("dispatch_http_call", HostError::BadArgument);
    let (id, flow) = vm.send_dpop(&token, &proof(&token, "u3", None));
    assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(503)));
}

#[test]
fn an_answer_that_is_not_etcds_verdict_is_sent_once_more_and_the_next_answer_decides() {
    let token = bound_token();
    let lost_member = "upstream connect error or disconnect/reset before headers";
    let leader_changed = r#"{"error":"etcdserver: leader changed","code":14}"#;
    for (first, then, expected) in [
        ((503, lost_member), (200, CREATED), None),
        ((503, leader_changed), (200, EXISTED), Some(401)),
        ((503, lost_member), (503, lost_member), Some(503)),
    ] {
        let mut vm = Vm::start(&etcd_config("refuse"));
        let (id, _) = vm.send_dpop(&token, &proof(&token, "r1", None));
        vm.answer(id, Some(200), LEASE_OK);
        let calls = vm.host.calls.borrow().len();
        vm.answer(id, Some(first.0), first.1);
        assert_eq!(vm.host.calls.borrow().len(), calls + 1, "sent once more");
        assert_eq!(vm.last_call().path, "/v3/kv/txn");
        assert_eq!(vm.status(id), None);
        vm.answer(id, Some(then.0), then.1);
        assert_eq!(vm.status(id), expected, "{first:?} then {then:?}");
        assert_eq!(vm.host.request(id).resumed, expected.is_none());
        assert_eq!(vm.host.calls.borrow().len(), calls + 1, "only once more");
        assert_eq!(
            vm.host.counter("claimgate.dpop.shared_record.retries"),
            Some(1)
        );
    }
    // No answer at all (the call timed out, its budget spent): not sent again.
    let mut vm = Vm::start(&etcd_config("refuse"));
    let (id, _) = vm.send_dpop(&token, &proof(&token, "r2", None));
    let calls = vm.host.calls.borrow().len();
    vm.answer(id, None, "");
    assert_eq!(vm.host.calls.borrow().len(), calls);
    assert_eq!(vm.status(id), Some(503));
}

#[test]
fn a_put_whose_lease_is_gone_grants_it_again_once() {
    let mut vm = Vm::start(&etcd_config("refuse"));
    let token = bound_token();
    let (id, _) = vm.send_dpop(&token, &proof(&token, "l1", None));
    vm.answer(id, Some(200), LEASE_OK);
    let missing = r#"{"error":"etcdserver: requested lease not found","code":5}"#;
    vm.answer(id, Some(400), missing);
    assert_eq!(vm.last_call().path, "/v3/lease/grant");
    vm.answer(
        id,
        Some(400),
        r#"{"error":"etcdserver: lease already exists","code":9}"#,
    );
    assert_eq!(vm.last_call().path, "/v3/kv/txn");
    vm.answer(id, Some(400), missing);
    assert_eq!(vm.status(id), Some(503), "only once");
}

#[test]
fn requests_without_a_proof_or_refused_ones_never_ask_etcd() {
    let mut vm = Vm::start(&etcd_config("refuse"));
    let token = bound_token();
    let (id, flow) = vm.send_dpop(&token, "not-a-proof");
    assert_eq!((flow, vm.status(id)), (Flow::Pause, Some(401)));
    assert!(vm.host.calls.borrow().is_empty());
}

#[test]
fn a_request_that_waited_for_keys_is_checked_in_etcd_from_the_root_context() {
    let mut config = remote_config();
    config["providers"][0]["dpop"] = json!("required");
    crate::test_support::merge(
        &mut config,
        json!({"dpop_proofs": {"shared_record": {"cluster": "etcd", "authority": "etcd.local"}}}),
    );
    let mut vm = Vm::start(&config);
    vm.tick();
    let fetch = vm.last_call();
    let token = bound_token();
    let (id, flow) = vm.send_dpop(&token, &proof(&token, "after-keys", None));
    assert_eq!(flow, Flow::Pause, "waits for keys");
    // The keys arrive in a root callback: the request is decided, and its proof goes to
    // etcd from the root context (the answers arrive there too).
    vm.deliver(fetch.token, 200, &[], &jwks_body());
    assert_eq!(vm.last_call().path, "/v3/lease/grant");
    assert!(!vm.host.request(id).resumed, "waits for etcd");
    assert_eq!(vm.requests[&id].hold_while_waiting(), Flow::Pause);
    let lease = vm.last_call().token;
    vm.deliver(lease, 200, &[], LEASE_OK.as_bytes());
    assert_eq!(vm.last_call().path, "/v3/kv/txn");
    assert_eq!(vm.host.effective.get(), ROOT_CONTEXT, "back to the root");
    let txn = vm.last_call().token;
    vm.deliver(txn, 200, &[], CREATED.as_bytes());
    assert!(vm.host.request(id).resumed);
    assert_eq!(vm.status(id), None);
    assert_eq!(vm.requests[&id].hold_while_waiting(), Flow::Continue);
    assert_eq!(vm.host.effective.get(), ROOT_CONTEXT, "back to the root");
}

#[test]
fn the_filter_state_follows_each_decision_when_the_last_one_is_reused() {
    let mut vm = Vm::start(&inline_config());
    let good = token();
    let mut seen = Vec::new();
    for (path, token, status) in [
        ("/members", Some(good.as_str()), 200),
        ("/members", Some(good.as_str()), 200),
        ("/members/preview", Some(good.as_str()), 403),
        ("/members", None, 401),
        ("/members/preview", Some(good.as_str()), 403),
        ("/members", Some(good.as_str()), 200),
    ] {
        let (id, _) = vm.send(path, token, &[]);
        assert_eq!(vm.status(id).unwrap_or(200), status, "{path}");
        let state: Value =
            serde_json::from_slice(&vm.host.request(id).properties["claimgate.decision"]).unwrap();
        assert_eq!(state["status"], status, "{path}: {state}");
        seen.push(state);
    }
    // The same decision, the same JSON; another decision, its own.
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[5]);
    assert_eq!(seen[2], seen[4]);
    assert_ne!(seen[2]["reason"], seen[3]["reason"]);
}
