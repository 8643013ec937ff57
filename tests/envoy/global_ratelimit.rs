//! Per-tier limits across replicas (issue 21): two claimgate Envoys rendered from
//! `envoy/claimgate-global-ratelimit.envoy.yaml.tmpl` share one rate limit service — a
//! `RateLimitService` gRPC server written for this test in Python (`grpcio`, protobuf
//! by hand; the reference Go service is not installable here). The descriptor Envoy sends
//! is claimgate's verified tier in the tier list's spelling, never the client's header;
//! the limit holds for the fleet, not per replica; the service down refuses (fail closed).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::{demo_token, Envoy, EnvoyOptions};
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const TIER: &str = "https://aethermarket.com/loyalty_tier";

struct Service {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: PathBuf,
}

impl Service {
    fn start(limits: Value) -> Service {
        let dir = std::env::temp_dir().join(format!(
            "claimgate-rls-{}-{}",
            std::process::id(),
            support::free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (port_file, log) = (dir.join("port"), dir.join("requests.jsonl"));
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let child = Command::new(root.join(".venv/bin/python"))
            .arg(root.join("tests/support/ratelimit_service.py"))
            .arg(&port_file)
            .arg(&log)
            .arg(limits.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start the rate limit service");
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.trim().parse().ok())
            {
                break port;
            }
            assert!(
                Instant::now() < deadline,
                "the rate limit service did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        Service {
            child,
            port,
            log,
            dir,
        }
    }

    /// Every request the service got: (domain, descriptors).
    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn replica(service: &Service) -> Envoy {
    let options = EnvoyOptions {
        template: Some("envoy/claimgate-global-ratelimit.envoy.yaml.tmpl"),
        template_edits: vec![(
            "address: ratelimit, port_value: 8081".to_owned(),
            format!("address: 127.0.0.1, port_value: {}", service.port),
        )],
        ..EnvoyOptions::default()
    };
    Envoy::start_with(CONFIG, options).unwrap_or_else(|log| panic!("no replica:\n{log}"))
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn tier_limits_hold_across_replicas_with_the_verified_tier_as_descriptor() {
    let mut service = Service::start(json!({"tier=Bronze": 3, "tier=Gold": 60}));
    let replicas = [replica(&service), replica(&service)];
    let bronze = format!("Bearer {}", demo_token(json!({TIER: "Bronze"})));
    let unlisted = format!("Bearer {}", demo_token(json!({TIER: "bronze"})));
    let gold = format!("Bearer {}", demo_token(json!({TIER: "Gold"})));
    // Bronze gets 3 a minute for the whole fleet: alternating replicas (each would allow 3
    // with local_ratelimit), the 4th request on is limited. The client's own tier header
    // and an unlisted spelling change nothing.
    let mut statuses = Vec::new();
    for round in 0..6 {
        let token = if round % 2 == 0 { &bronze } else { &unlisted };
        let response = replicas[round % 2].request(
            "GET",
            "/recommendations/for-you",
            &[("authorization", token), ("x-loyalty-tier", "Platinum")],
        );
        statuses.push(response.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    for replica in &replicas {
        let response = replica.request(
            "GET",
            "/recommendations/for-you",
            &[("authorization", &gold)],
        );
        assert_eq!(response.status, 200, "{}", response.body);
    }
    // What Envoy sent: domain claimgate, one descriptor (tier, the list's spelling).
    let sent = service.requests();
    assert_eq!(sent.len(), 8, "{sent:?}");
    for (index, request) in sent.iter().enumerate() {
        let tier = if index < 6 { "Bronze" } else { "Gold" };
        assert_eq!(
            request,
            &json!({"domain": "claimgate", "descriptors": [[["tier", tier]]]}),
            "request {index}"
        );
    }
    // Paths without rate_limits never ask the service.
    let response = replicas[0].request("GET", "/", &[("authorization", &bronze)]);
    assert_ne!(response.status, 429);
    assert_eq!(service.requests().len(), 8);
    // The service down: refused, never let through unlimited.
    service.stop();
    let response = replicas[1].request(
        "GET",
        "/recommendations/for-you",
        &[("authorization", &gold)],
    );
    assert_eq!(response.status, 500, "{}", response.body);
}
