//! What happens when the VM fails anyway: with a test-only build that traps on a marker
//! header (`--features fault-injection`, which `scripts/test.sh` builds and keeps as
//! `target/fault-injection/claimgate.wasm`), the request that killed the VM is refused, never
//! forwarded; and with the shipped `failure_policy: FAIL_RELOAD`, Envoy starts a fresh VM
//! so service comes back, still deciding every request.

use std::time::{Duration, Instant};

use crate::support::{demo_token, fault_module, Envoy, EnvoyOptions};
use serde_json::json;

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_vm_that_traps_refuses_the_request_and_envoy_brings_service_back() {
    let envoy = Envoy::start_with(
        CONFIG,
        EnvoyOptions {
            module: Some(fault_module()),
            ..EnvoyOptions::default()
        },
    )
    .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let bearer = format!("Bearer {}", demo_token(json!({"sub": "auth0|failure"})));
    let ok = envoy.request("GET", "/products/1", &[("authorization", &bearer)]);
    assert_eq!(ok.status, 200, "{}", ok.body);

    // A valid token on an allowed route: the trap must still never forward it.
    let trapped = envoy.request(
        "GET",
        "/products/1",
        &[("authorization", &bearer), ("x-claimgate-fault", "trap")],
    );
    assert!(
        trapped.status >= 500,
        "a request whose VM trapped must be refused, got {}: {}",
        trapped.status,
        trapped.body
    );
    assert!(!trapped.body.contains("\"method\""), "reached the upstream");
    assert!(
        envoy.log().contains("the VM panicked and stops"),
        "the panic hook logs why:\n{}",
        envoy.log()
    );

    // While and after the VM is replaced: never an unauthenticated pass, and the
    // authenticated request works again within the reload backoff.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut recovered = false;
    while Instant::now() < deadline {
        let anonymous = envoy.request("GET", "/products/1", &[]);
        assert_ne!(anonymous.status, 200, "no token must never pass");
        let again = envoy.request("GET", "/products/1", &[("authorization", &bearer)]);
        if again.status == 200 {
            recovered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(recovered, "service did not come back:\n{}", envoy.log());
    let anonymous = envoy.request("GET", "/products/1", &[]);
    assert_eq!(anonymous.status, 401, "the new VM decides again");
}
