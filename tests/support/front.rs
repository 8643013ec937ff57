//! A plain Envoy (no claimgate) in front of several claimgate Envoys, balancing requests
//! round-robin: what a cloud load balancer or a Kubernetes Service does to a fleet.

use super::envoy::EnvoyProcess;
use super::{free_port, http, Response};

/// The front Envoy; killed on drop.
pub struct Front {
    process: EnvoyProcess,
    pub port: u16,
}

impl Front {
    /// Starts a front Envoy (one worker, so the round-robin order is strict) sending
    /// requests to `backends` (loopback ports) in turn.
    pub fn start(backends: &[u16]) -> Front {
        let port = free_port();
        let admin_port = free_port();
        let dir =
            std::env::temp_dir().join(format!("claimgate-front-{}-{port}", std::process::id()));
        let endpoints: Vec<String> = backends
            .iter()
            .map(|backend| {
                format!(
                    "        - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {backend} }} }} }}"
                )
            })
            .collect();
        let config = format!(
            r#"admin:
  address: {{ socket_address: {{ address: 127.0.0.1, port_value: {admin_port} }} }}
static_resources:
  listeners:
  - name: front
    address: {{ socket_address: {{ address: 127.0.0.1, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: front
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{ prefix: "/" }}
                route: {{ cluster: replicas, timeout: 15s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
  clusters:
  - name: replicas
    type: STATIC
    lb_policy: ROUND_ROBIN
    connect_timeout: 2s
    load_assignment:
      cluster_name: replicas
      endpoints:
      - lb_endpoints:
{}
"#,
            endpoints.join("\n")
        );
        let args = ["--concurrency".to_owned(), "1".to_owned()];
        let process = EnvoyProcess::start(dir, &config, port, admin_port, &args, || true)
            .unwrap_or_else(|log| panic!("the front Envoy did not start:\n{log}"));
        Front { process, port }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.port, method, path, headers).unwrap_or_else(|err| {
            panic!(
                "{method} {path} through the front: {err}\nfront Envoy log:\n{}",
                self.log()
            )
        })
    }
}
