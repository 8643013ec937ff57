//! WebSocket and gRPC through the shipped template (`upgrade_configs: websocket`; the
//! listener's automatic codec takes HTTP/2 cleartext): a WebSocket upgrade authorized by
//! a token in the Authorization header and by one in the `access_token` query parameter
//! (browsers cannot set headers on a WebSocket), refused upgrades that never reach the
//! upstream, and a real gRPC client (Python grpcio) against a gRPC server behind
//! claimgate: missing token → grpc-status 16, policy denial → 7, allowed → the service's
//! own answer. Clients and the gRPC server: tests/support/websocket_grpc.py.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use crate::support;
use crate::support::{demo_token, repo_file, Envoy, EnvoyOptions};
use serde_json::{json, Value};

const TIER: &str = "https://aethermarket.com/loyalty_tier";
const GRPC_METHOD: &str = "/aethermarket.orders.Orders/Get";

/// The demo configuration, plus the `access_token` query parameter as a token location
/// (for browsers' WebSockets) and a rule for the gRPC orders service.
fn config() -> String {
    let mut config: Value =
        serde_json::from_str(include_str!("../../filter-config/aethermarket.json")).unwrap();
    config["providers"][0]["from"]
        .as_array_mut()
        .unwrap()
        .push(json!({"query": "access_token"}));
    config["rules"].as_array_mut().unwrap().push(json!({
        "name": "grpc-orders",
        "match": {"prefix": "/aethermarket.orders.Orders/", "methods": ["POST"]},
        "require": [{"claim": "scope", "contains": "orders:read"}]
    }));
    config.to_string()
}

fn python() -> std::path::PathBuf {
    repo_file(".venv/bin/python")
}

fn tool(args: &[&str]) -> Value {
    let output = Command::new(python())
        .arg(repo_file("tests/support/websocket_grpc.py"))
        .args(args)
        .output()
        .expect("run tests/support/websocket_grpc.py");
    assert!(
        output.status.success(),
        "websocket_grpc.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn upstream_requests(envoy: &Envoy, cluster: &str) -> u64 {
    let stat = format!("cluster.{cluster}.upstream_rq_total");
    envoy
        .admin(&format!("/stats?filter=^{stat}$"))
        .body
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{stat}: ")))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn websocket_upgrades_are_authorized_by_header_or_query_token_and_refused_ones_never_reach_the_upstream(
) {
    let envoy = Envoy::start(&config());
    let base = format!("ws://127.0.0.1:{}", envoy.port);
    let token = demo_token(json!({}));

    // The token in the Authorization header: 101, the upstream saw claimgate's identity
    // headers (not the client's spoofed x-user-id), and messages flow both ways.
    let opened = tool(&[
        "websocket",
        &format!("{base}/products/live"),
        "--header",
        &format!("authorization:Bearer {token}"),
        "--header",
        "x-user-id:admin",
    ]);
    assert_eq!(opened["status"], 101, "{opened}");
    assert_eq!(
        opened["first"]["headers"]["upgrade"], "websocket",
        "{opened}"
    );
    assert_eq!(
        opened["first"]["headers"]["x-user-id"], "auth0|5f7c8ec7c33c6c004bbafe82",
        "{opened}"
    );
    assert_eq!(opened["echo"], "ping", "{opened}");

    // The token in the query, as a browser sends it.
    let opened = tool(&[
        "websocket",
        &format!("{base}/products/live?access_token={token}"),
    ]);
    assert_eq!(opened["status"], 101, "{opened}");
    assert_eq!(
        opened["first"]["headers"]["x-user-id"], "auth0|5f7c8ec7c33c6c004bbafe82",
        "{opened}"
    );
    assert_eq!(opened["echo"], "ping", "{opened}");

    // Refused upgrades: no token (401), a policy denial (403), a bad query token (401).
    let before = upstream_requests(&envoy, "echo_upstream");
    let refused = tool(&["websocket", &format!("{base}/products/live")]);
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(
        refused["headers"]["www-authenticate"], r#"Bearer realm="aethermarket""#,
        "{refused}"
    );
    let silver = demo_token(json!({ TIER: "Silver" }));
    let refused = tool(&[
        "websocket",
        &format!("{base}/deals/exclusive?access_token={silver}"),
    ]);
    assert_eq!(refused["status"], 403, "{refused}");
    let refused = tool(&[
        "websocket",
        &format!("{base}/products/live?access_token={token}x"),
    ]);
    assert_eq!(refused["status"], 401, "{refused}");
    assert!(
        refused["headers"]["www-authenticate"]
            .as_str()
            .unwrap()
            .contains(r#"error="invalid_token""#),
        "{refused}"
    );
    assert_eq!(
        upstream_requests(&envoy, "echo_upstream"),
        before,
        "a refused upgrade reached the upstream"
    );
}

/// The gRPC server of tests/support/websocket_grpc.py, killed on drop.
struct GrpcServer {
    child: Child,
    port: u16,
}

impl GrpcServer {
    fn start() -> GrpcServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(python())
            .arg(repo_file("tests/support/websocket_grpc.py"))
            .args(["grpc-serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the gRPC server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the gRPC server did not start");
        GrpcServer { child, port }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn grpc_calls_get_unauthenticated_permission_denied_or_the_service_answer() {
    let server = GrpcServer::start();
    // The orders service as an HTTP/2 cluster, routed by its gRPC service prefix.
    let cluster = format!(
        r#"- name: grpc_orders
  type: STATIC
  connect_timeout: 1s
  typed_extension_protocol_options:
    envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
      "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
      explicit_http_config: {{ http2_protocol_options: {{}} }}
  load_assignment:
    cluster_name: grpc_orders
    endpoints:
    - lb_endpoints:
      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }}
"#,
        server.port
    );
    let options = EnvoyOptions {
        template_edits: vec![(
            "              - match: { prefix: \"/\" }\n".to_owned(),
            "              - match: { prefix: \"/aethermarket.orders.Orders/\", grpc: {} }\n                route: { cluster: grpc_orders }\n              - match: { prefix: \"/\" }\n".to_owned(),
        )],
        ..EnvoyOptions::default()
    };
    let envoy = Envoy::start_with_clusters(&config(), options, &cluster)
        .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
    let port = envoy.port.to_string();
    let call = |token: Option<&str>| {
        let mut args = vec!["grpc-call", "--port", &port, "--method", GRPC_METHOD];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        tool(&args)
    };

    let missing = call(None);
    assert_eq!(missing["code"], 16, "UNAUTHENTICATED: {missing}");
    let expired = demo_token(json!({"exp": support::now() - 600, "scope": "orders:read"}));
    let invalid = call(Some(&expired));
    assert_eq!(invalid["code"], 16, "UNAUTHENTICATED: {invalid}");
    let denied = call(Some(&demo_token(json!({"scope": "openid profile"}))));
    assert_eq!(denied["code"], 7, "PERMISSION_DENIED: {denied}");
    assert_eq!(upstream_requests(&envoy, "grpc_orders"), 0);

    let allowed = call(Some(&demo_token(json!({"scope": "openid orders:read"}))));
    assert_eq!(allowed["code"], 0, "{allowed}");
    assert_eq!(
        allowed["response"], "order for auth0|5f7c8ec7c33c6c004bbafe82: 42",
        "the service's own answer, with claimgate's identity header: {allowed}"
    );
    assert_eq!(upstream_requests(&envoy, "grpc_orders"), 1);
}
