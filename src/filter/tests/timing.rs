//! The timings the README promises: every VM ticks every 100 ms, and a request waiting
//! for the first key set waits at most the fetch timeout plus a second (twice the timeout
//! with discovery), then is answered.

use std::time::Duration;

use super::{discovery_config, remote_config, token, Vm};

#[test]
fn every_vm_ticks_every_100_ms() {
    let vm = Vm::start(&remote_config());
    assert_eq!(vm.host.tick_period.get(), Some(Duration::from_millis(100)));
}

/// Milliseconds until a request waiting for keys that never come is answered, and its status.
fn wait_of(config: &serde_json::Value) -> (u64, Option<u16>) {
    let mut vm = Vm::start(config);
    vm.tick();
    let (id, _) = vm.send("/members/1", Some(&token()), &[]);
    let mut waited = 0;
    while vm.status(id).is_none() && waited < 60_000 {
        vm.advance(100);
        vm.tick();
        waited += 100;
    }
    (waited, vm.status(id))
}

#[test]
fn a_request_waits_for_the_first_keys_at_most_the_fetch_timeout_plus_a_second() {
    // The default `timeout_ms` is 5 s: answered within 6 s, not before the fetch could
    // have answered.
    let (waited, status) = wait_of(&remote_config());
    assert_eq!(status, Some(503));
    assert!((5_000..=6_000).contains(&waited), "waited {waited} ms");
    // With discovery, two fetches in a row: twice the timeout (plus the second).
    let (waited, status) = wait_of(&discovery_config());
    assert_eq!(status, Some(503));
    assert!((10_000..=11_000).contains(&waited), "waited {waited} ms");
}
