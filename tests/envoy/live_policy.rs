//! Policy changes without restarting Envoy: envoy/claimgate-live-policy.envoy.yaml.tmpl
//! takes claimgate's configuration by extension config discovery (ECDS) from a watched
//! file. The file is replaced atomically (envoy/render.py --ecds-only) while four client
//! threads keep sending requests: Envoy picks the new policy up, the next requests are
//! decided by it, and no request of the load fails or gets anything but 200 (loopback
//! only, a few seconds). A configuration claimgate refuses is rejected — Envoy counts it
//! and the log names the field — and the policy before it keeps serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{demo_token, http, wasm_path, write_policy, Envoy, EnvoyOptions};
use serde_json::{json, Value};

const TEMPLATE: &str = "envoy/claimgate-live-policy.envoy.yaml.tmpl";
const TIER: &str = "https://aethermarket.com/loyalty_tier";
const LOAD_THREADS: usize = 4;
const LOAD_TIME: Duration = Duration::from_secs(4);

fn demo() -> Value {
    serde_json::from_str(include_str!("../../filter-config/aethermarket.json")).unwrap()
}

/// The demo with its `products` rule changed: any valid token → loyalty tier ≥ Silver.
fn silver_products() -> Value {
    let mut config = demo();
    let rule = config["rules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|rule| rule["name"] == "products")
        .unwrap();
    *rule = json!({
        "name": "products",
        "match": {"prefix": "/products"},
        "require": [{"claim": TIER, "at_least": "Silver", "tiers": "loyalty"}]
    });
    config
}

/// A configuration claimgate refuses: a tier that is not on the tier list.
fn broken() -> Value {
    let mut config = silver_products();
    config["rules"][3]["require"][0]["at_least"] = json!("Diamond");
    config
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .admin(&format!("/stats?filter=^{}$", name.replace('.', "\\.")))
        .body
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name}: ")))
        .map_or(0, |value| value.trim().parse().unwrap_or(0))
}

const ECDS: &str = "extension_config_discovery.http_filter.claimgate";

fn wait_for(what: &str, envoy: &Envoy, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within 15 s\n{}",
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn a_new_policy_file_is_picked_up_under_load_and_a_broken_one_is_refused() {
    let options = EnvoyOptions {
        template: Some(TEMPLATE),
        concurrency: 2,
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with(&demo().to_string(), options)
        .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let gold = format!("Bearer {}", demo_token(json!({ TIER: "Gold" })));
    let bronze = format!("Bearer {}", demo_token(json!({ TIER: "Bronze" })));
    let products = |token: &str| envoy.request("GET", "/products/42", &[("authorization", token)]);
    assert_eq!(products(&bronze).status, 200, "the demo: any valid token");
    assert_eq!(stat(&envoy, &format!("{ECDS}.update_success")), 1);
    let loaded = |envoy: &Envoy| {
        envoy
            .log()
            .matches("claimgate: configuration loaded")
            .count()
    };
    let loaded_before = loaded(&envoy);
    let vms_before = stat(&envoy, "wasm.envoy.wasm.runtime.v8.created");

    // The load: Gold tokens on /products, allowed by both policies.
    let stop = Arc::new(AtomicBool::new(false));
    let port = envoy.port;
    let load: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let (stop, gold) = (Arc::clone(&stop), gold.clone());
            std::thread::spawn(move || {
                let (mut ok, mut other) = (0u64, Vec::new());
                while !stop.load(Ordering::Relaxed) {
                    match http(port, "GET", "/products/42", &[("authorization", &gold)]) {
                        Ok(response) if response.status == 200 => ok += 1,
                        Ok(response) => {
                            other.push(format!("{} {}", response.status, response.body))
                        }
                        Err(error) => other.push(format!("connection: {error}")),
                    }
                }
                (ok, other)
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));

    // The new policy, written atomically into the watched directory.
    let module = wasm_path();
    write_policy(
        &envoy.policy_dir(),
        &silver_products().to_string(),
        &module,
        "v8",
    )
    .unwrap();
    let changed = Instant::now();
    wait_for("the new policy deciding", &envoy, || {
        products(&bronze).status == 403
    });
    let picked_up = changed.elapsed();
    let refused = products(&bronze);
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|value| value.contains(r#"error="insufficient_scope""#)),
        "claimgate's own 403: {refused:?}"
    );
    assert_eq!(products(&gold).status, 200);
    assert_eq!(stat(&envoy, &format!("{ECDS}.update_success")), 2);

    std::thread::sleep(LOAD_TIME.saturating_sub(started.elapsed()));
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut other) = (0, Vec::new());
    for thread in load {
        let (thread_ok, thread_other) = thread.join().unwrap();
        ok += thread_ok;
        other.extend(thread_other);
    }
    assert!(
        other.is_empty(),
        "{} requests failed: {:?}",
        other.len(),
        &other[..other.len().min(5)]
    );
    assert!(ok > 100, "only {ok} requests in {LOAD_TIME:?}");
    let vms_after = stat(&envoy, "wasm.envoy.wasm.runtime.v8.created");
    eprintln!(
        "live policy: picked up {picked_up:?} after the rename; {ok} requests by {LOAD_THREADS} threads over {:?}, none failed; V8 VMs created {vms_before} before the change, {vms_after} after; claimgate configurations loaded {loaded_before} before, {} after; V8 VMs active {}",
        started.elapsed(),
        loaded(&envoy),
        stat(&envoy, "wasm.envoy.wasm.runtime.v8.active"),
    );

    // A broken configuration: rejected, the field named, the previous policy serving.
    write_policy(&envoy.policy_dir(), &broken().to_string(), &module, "v8").unwrap();
    wait_for("the broken policy rejected", &envoy, || {
        stat(&envoy, &format!("{ECDS}.update_rejected")) == 1
    });
    let log = envoy.log();
    assert!(
        log.contains("claimgate: invalid configuration: rules[3].require[0].at_least: 'Diamond' is not in tier list 'loyalty'"),
        "{log}"
    );
    assert!(
        log.contains("Filesystem config update rejected: Unable to create Wasm plugin claimgate"),
        "{log}"
    );
    assert_eq!(stat(&envoy, &format!("{ECDS}.update_success")), 2);
    assert_eq!(products(&bronze).status, 403, "still the second policy");
    assert_eq!(products(&gold).status, 200, "still the second policy");
}
