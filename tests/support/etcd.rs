//! A 3-member etcd v3 cluster on loopback (Debian `etcd-server`, binary `etcd`), started
//! by a test with data directories in a temp directory; members can be killed and started
//! again on the same data. Everything is killed and removed on drop.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64ct::{Base64, Encoding};

use super::free_port;

pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    pub members: Vec<Member>,
    dir: PathBuf,
    initial_cluster: String,
}

fn etcd_binary() -> PathBuf {
    let path = PathBuf::from("/usr/bin/etcd");
    assert!(
        path.exists(),
        "etcd is missing: run scripts/bootstrap.sh --wasm-tests (Debian etcd-server)"
    );
    path
}

impl EtcdCluster {
    pub fn start(size: usize) -> EtcdCluster {
        let dir = std::env::temp_dir().join(format!(
            "claimgate-etcd-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let members: Vec<Member> = (0..size)
            .map(|index| Member {
                name: format!("m{index}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|member| format!("{}=http://127.0.0.1:{}", member.name, member.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            dir,
            initial_cluster,
        };
        for index in 0..size {
            cluster.start_member(index);
        }
        for index in 0..size {
            cluster.wait_healthy(index, Duration::from_secs(30));
        }
        cluster
    }

    /// Starts member `index` (again: on its existing data).
    pub fn start_member(&mut self, index: usize) {
        let member = &self.members[index];
        let data = self.dir.join(&member.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", member.name)))
            .unwrap();
        let client = format!("http://127.0.0.1:{}", member.client_port);
        let peer = format!("http://127.0.0.1:{}", member.peer_port);
        let child = Command::new(etcd_binary())
            .args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "claimgate-test",
            ])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            // Old revisions are compacted away (deleted keys do not pile up).
            .args([
                "--auto-compaction-mode",
                "periodic",
                "--auto-compaction-retention",
                "1m",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start etcd");
        self.members[index].child = Some(child);
    }

    pub fn kill_member(&mut self, index: usize) {
        if let Some(mut child) = self.members[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until member `index` says it is healthy (it has a leader).
    pub fn wait_healthy(&self, index: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        let port = self.members[index].client_port;
        loop {
            if let Ok((200, body)) = request(port, "GET", "/health", "") {
                if body.contains("\"true\"") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "etcd member {index} not healthy after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A port of a running member.
    pub fn live_port(&self) -> u16 {
        self.members
            .iter()
            .find(|member| member.child.is_some())
            .map(|member| member.client_port)
            .expect("a running member")
    }

    /// Keys under `prefix` (a linearizable count).
    pub fn count(&self, prefix: &str) -> u64 {
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let body = serde_json::json!({
            "key": Base64::encode_string(prefix.as_bytes()),
            "range_end": Base64::encode_string(&end),
            "count_only": true
        });
        let (status, answer) =
            request(self.live_port(), "POST", "/v3/kv/range", &body.to_string()).unwrap();
        assert_eq!(status, 200, "{answer}");
        let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
        // proto3 JSON leaves a count of 0 out.
        value["count"]
            .as_str()
            .map_or(0, |count| count.parse().unwrap())
    }

    /// Leases alive now.
    pub fn leases(&self) -> usize {
        let (status, answer) = request(self.live_port(), "POST", "/v3/lease/leases", "{}").unwrap();
        assert_eq!(status, 200, "{answer}");
        let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
        value["leases"].as_array().map_or(0, Vec::len)
    }

    /// The Envoy cluster (top-level YAML list item) named `name` with every member,
    /// actively health-checked on `/health` so members without a leader are skipped —
    /// as REPLICAS.md recommends: two failed checks to skip a member (one slow answer on
    /// a busy machine does not), and no panic mode (with most members marked down, Envoy
    /// would otherwise send calls to all of them, dead ones included).
    pub fn envoy_cluster(&self, name: &str) -> String {
        format!(
            "{}  common_lb_config: {{ healthy_panic_threshold: {{ value: 0 }} }}\n  health_checks:\n  - timeout: 1s\n    interval: 0.3s\n    no_traffic_interval: 0.3s\n    unhealthy_interval: 0.3s\n    unhealthy_threshold: 2\n    healthy_threshold: 1\n    http_health_check: {{ path: /health }}\n",
            self.envoy_cluster_without_health_checks(name)
        )
    }

    /// The same cluster without health checks: Envoy sends calls to dead members too.
    pub fn envoy_cluster_without_health_checks(&self, name: &str) -> String {
        let endpoints: Vec<String> = self
            .members
            .iter()
            .map(|member| {
                format!(
                    "      - endpoint: {{ address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }} }}",
                    member.client_port
                )
            })
            .collect();
        format!(
            "- name: {name}\n  type: STATIC\n  connect_timeout: 0.5s\n  lb_policy: ROUND_ROBIN\n  load_assignment:\n    cluster_name: {name}\n    endpoints:\n    - lb_endpoints:\n{}\n",
            endpoints.join("\n")
        )
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for index in 0..self.members.len() {
            self.kill_member(index);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/1.1 request with a JSON body: (status, body).
pub fn request(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|err| err.to_string())?;
    let timeout = Some(Duration::from_secs(5));
    stream
        .set_read_timeout(timeout)
        .map_err(|err| err.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|err| err.to_string())?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|err| err.to_string())?;
    let response = super::client::read_response(BufReader::new(stream), false)?;
    Ok((response.status, response.body))
}
