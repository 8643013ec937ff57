//! A plain Envoy (no claimgate) in front of several claimgate Envoys, balancing requests
//! round-robin: what a cloud load balancer or a Kubernetes Service does to a fleet.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::{envoy_binary, free_port, http, Response};

/// The front Envoy; killed on drop.
pub struct Front {
    envoy: Child,
    pub port: u16,
    pub admin_port: u16,
    dir: PathBuf,
}

impl Front {
    /// Starts a front Envoy (one worker, so the round-robin order is strict) sending
    /// requests to `backends` (loopback ports) in turn.
    pub fn start(backends: &[u16]) -> Front {
        let port = free_port();
        let admin_port = free_port();
        let dir =
            std::env::temp_dir().join(format!("claimgate-front-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
        let config_path = dir.join("front.yaml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.join("front.log")).unwrap();
        let envoy = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", "1", "--base-id", &port.to_string()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start the front Envoy");
        let mut front = Front {
            envoy,
            port,
            admin_port,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = front.envoy.try_wait() {
                panic!("the front Envoy exited with {status}:\n{}", front.log());
            }
            if http(admin_port, "GET", "/ready", &[]).is_ok_and(|response| response.status == 200) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the front Envoy is not ready:\n{}",
                front.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        front
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("front.log")).unwrap_or_default()
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.port, method, path, headers)
            .unwrap_or_else(|err| panic!("{method} {path} through the front: {err}"))
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
