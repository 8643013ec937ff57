//! How many host calls of each kind claimgate makes per request (issue 22: each call that
//! returns data costs about 1 µs of Envoy CPU, the others 0.15–0.34 µs). Exact counts per
//! case: a change that adds a call fails here and must say why; a change that removes
//! one updates the numbers.

use std::collections::BTreeMap;

use serde_json::json;

use super::{bound_token, dpop_config, inline_config, proof, token, Vm};

/// The host calls one request makes, by kind.
fn calls_of(
    vm: &mut Vm,
    send: impl FnOnce(&mut Vm) -> Option<u16>,
    expected: Option<u16>,
) -> BTreeMap<&'static str, usize> {
    vm.host.call_counts.borrow_mut().clear();
    let status = send(vm);
    assert_eq!(status, expected);
    vm.host.call_counts.borrow().clone()
}

fn counts(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

#[test]
fn host_calls_per_request_are_counted_per_case() {
    let mut vm = Vm::start(&inline_config());
    let good = token();
    let send = |path: &'static str, token: Option<String>| {
        move |vm: &mut Vm| {
            let (id, _) = vm.send(path, token.as_deref(), &[]);
            vm.status(id)
        }
    };
    let new_token = calls_of(&mut vm, send("/members", Some(good.clone())), None);
    let cached = calls_of(&mut vm, send("/members", Some(good.clone())), None);
    let no_token = calls_of(&mut vm, send("/members", None), Some(401));
    let denied = calls_of(&mut vm, send("/members/preview", Some(good)), Some(403));
    let mut dpop_vm = Vm::start(&dpop_config(json!({})));
    let bound = bound_token();
    let fresh = proof(&bound, "counted", None);
    let dpop = calls_of(
        &mut dpop_vm,
        move |vm: &mut Vm| {
            let (id, _) = vm.send_dpop(&bound, &fresh);
            vm.status(id)
        },
        None,
    );
    // One header-map read, the clock, the decision's filter state, the identity header;
    // counters: the request, its outcome, the provider, the rule, the token cache.
    assert_eq!(
        new_token,
        counts(&[
            ("request_headers", 1),
            ("now_ms", 1),
            ("log_level", 1),
            ("set_property", 1),
            ("add_request_header", 1),
            ("increment_counter", 6),
        ])
    );
    // The cached path: no log-level check, two counters fewer (no cache miss, no
    // verification).
    assert_eq!(
        cached,
        counts(&[
            ("request_headers", 1),
            ("now_ms", 1),
            ("set_property", 1),
            ("add_request_header", 1),
            ("increment_counter", 4),
        ])
    );
    assert_eq!(
        no_token,
        counts(&[
            ("request_headers", 1),
            ("now_ms", 1),
            ("set_property", 1),
            ("send_response", 1),
            ("increment_counter", 2),
        ])
    );
    assert_eq!(
        denied,
        counts(&[
            ("request_headers", 1),
            ("now_ms", 1),
            ("set_property", 1),
            ("send_response", 1),
            ("increment_counter", 4),
        ])
    );
    // DPoP adds the connection's scheme (one property read) and the shared once-only
    // record (one read, one compare-and-swap write).
    assert_eq!(
        dpop,
        counts(&[
            ("request_headers", 1),
            ("now_ms", 1),
            ("log_level", 1),
            ("property", 1),
            ("shared_data", 1),
            ("set_shared_data", 1),
            ("set_property", 1),
            ("add_request_header", 1),
            ("increment_counter", 6),
        ])
    );
}
