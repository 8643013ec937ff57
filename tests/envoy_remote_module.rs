//! Plain Envoy loading claimgate from a remote HTTP source: the shipped
//! `envoy/claimgate-remote-module.envoy.yaml.tmpl` (`vm_config.code.remote` with `sha256`
//! and a retry policy), the module served from a loopback HTTP server the test controls.
//! With the module's sha256, Envoy downloads it once, loads it (the startup line names the
//! version) and it decides requests; with any other sha256, Envoy retries the download,
//! gives up, never runs the module and answers every request on the listener with 503 —
//! nothing reaches the upstream. What Envoy 1.40 does here was found by running it: the
//! listener still starts (the remote fetch is not a startup failure) and the Wasm filter
//! fails closed ("Plugin claimgate failed to load").
//!
//! Also here, because it needs the same control over Envoy's command line: the
//! `proxyStatsMatcher` that `envoy/deploy/istio/gateway.yaml` gives its Istio gateway's pods,
//! applied as the `stats_matcher` Istio generates from it, keeps claimgate's
//! stats and drops the rest.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use claimgate::mint::SigningKey;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::idp::{reserve_port, Idp, Reply};

const CONFIG: &str = include_str!("../filter-config/aethermarket.json");
const DEMO_KEY: &str = include_str!("../filter-config/demo/private-demo-only.jwk.json");
const MODULE_PATH: &str = "/claimgate/claimgate.wasm";
/// 1 download + `num_retries: 3` in the shipped template.
const DOWNLOADS_WHEN_REFUSED: usize = 4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn module_bytes() -> Vec<u8> {
    let path = root().join("target/wasm32-wasip1/release/claimgate.wasm");
    std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}: build it with `cargo build --release --lib --target wasm32-wasip1` (scripts/test.sh does)",
            path.display()
        )
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn bearer() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = SigningKey::from_jwk(&serde_json::from_str::<Value>(DEMO_KEY).unwrap()).unwrap();
    let token = key
        .sign(&json!({
            "iss": "https://aethermarket.auth0.com/",
            "aud": "https://api.aethermarket.com",
            "sub": "auth0|remote-module",
            "iat": now,
            "exp": now + 600,
        }))
        .unwrap();
    format!("Bearer {token}")
}

/// Envoy from the remote-module template, and the echo upstream; killed on drop.
struct RemoteEnvoy {
    envoy: Child,
    upstream: Child,
    port: u16,
    admin_port: u16,
    upstream_port: u16,
    dir: PathBuf,
}

impl RemoteEnvoy {
    fn start(module_server: &Idp, sha256: &str) -> RemoteEnvoy {
        RemoteEnvoy::start_with(module_server, sha256, &[], "claimgate")
    }

    /// `extra_args` go to Envoy's command line (e.g. `--config-yaml`).
    /// `plugin_name`: the Wasm plugin's `name` (Istio names a WasmPlugin's plugin
    /// `<namespace>.<name>`, and Envoy's per-plugin stats carry it).
    fn start_with(
        module_server: &Idp,
        sha256: &str,
        extra_args: &[&str],
        plugin_name: &str,
    ) -> RemoteEnvoy {
        let port = reserve_port();
        let admin_port = reserve_port();
        let upstream_port = reserve_port();
        let dir = std::env::temp_dir().join(format!(
            "claimgate-remote-module-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let template =
            std::fs::read_to_string(root().join("envoy/claimgate-remote-module.envoy.yaml.tmpl"))
                .unwrap();
        let rendered = template
            .replacen(
                "                name: claimgate\n",
                &format!("                name: {plugin_name}\n"),
                1,
            )
            .replace("{{LISTEN_PORT}}", &port.to_string())
            .replace("{{ADMIN_PORT}}", &admin_port.to_string())
            .replace("{{UPSTREAM_PORT}}", &upstream_port.to_string())
            .replace("{{RUNTIME}}", "v8")
            .replace("{{PLUGIN_CONFIG}}", &serde_json::to_string(CONFIG).unwrap())
            .replace(
                "{{MODULE_URL}}",
                &format!("http://127.0.0.1:{}{MODULE_PATH}", module_server.port),
            )
            .replace("{{MODULE_HOST}}", "127.0.0.1")
            .replace("{{MODULE_PORT}}", &module_server.port.to_string())
            .replace("{{MODULE_SHA256}}", sha256);
        assert!(
            !rendered.contains("{{") || rendered.contains("# {{EXTRA_CLUSTERS}}"),
            "a placeholder is left in the rendered template"
        );
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, rendered).unwrap();
        let upstream = Command::new("python3")
            .arg(root().join("envoy/echo_upstream.py"))
            .args(["--port", &upstream_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the echo upstream");
        let log = std::fs::File::create(dir.join("envoy.log")).unwrap();
        let envoy = Command::new(root().join(".venv/bin/envoy"))
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", "1", "--base-id", &port.to_string()])
            .args(["-l", "info", "--component-log-level", "wasm:debug"])
            .args(extra_args)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start Envoy: run scripts/bootstrap.sh");
        let mut running = RemoteEnvoy {
            envoy,
            upstream,
            port,
            admin_port,
            upstream_port,
            dir,
        };
        running.wait_ready();
        running
    }

    /// Envoy is LIVE once its init manager is done: after the module download succeeded
    /// or was given up.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = self.envoy.try_wait() {
                panic!("Envoy exited with {status}:\n{}", self.log());
            }
            let upstream_up =
                std::net::TcpStream::connect(("127.0.0.1", self.upstream_port)).is_ok();
            if upstream_up {
                if let Ok(ready) = support::http(self.admin_port, "GET", "/ready", &[]) {
                    if ready.status == 200 && ready.body.trim() == "LIVE" {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "Envoy not ready after 60 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    fn request(&self, path: &str, headers: &[(&str, &str)]) -> support::Response {
        support::http(self.port, "GET", path, headers)
            .unwrap_or_else(|err| panic!("GET {path}: {err}\nEnvoy log:\n{}", self.log()))
    }
}

impl Drop for RemoteEnvoy {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn envoy_loads_the_module_from_a_remote_source_with_its_sha256() {
    let module = module_bytes();
    let sha256 = hex(&Sha256::digest(&module));
    let server = Idp::start();
    server.set(MODULE_PATH, Reply::json(module));
    let envoy = RemoteEnvoy::start(&server, &sha256);

    assert_eq!(
        server.hits(MODULE_PATH),
        1,
        "one download when the digest matches"
    );
    let log = envoy.log();
    let rules = serde_json::from_str::<serde_json::Value>(CONFIG).unwrap()["rules"]
        .as_array()
        .unwrap()
        .len();
    let loaded = format!(
        "claimgate: configuration loaded: 1 provider(s) (0 with remote keys), {rules} rule(s) (claimgate {})",
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        log.contains(&loaded),
        "the startup line names the version ({loaded}):\n{log}"
    );

    let anonymous = envoy.request("/products/42", &[]);
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some(r#"Bearer realm="aethermarket""#)
    );
    let bearer = bearer();
    let allowed = envoy.request("/products/42", &[("authorization", &bearer)]);
    assert_eq!(allowed.status, 200, "{allowed:?}");
    let echoed: Value = serde_json::from_str(&allowed.body).unwrap();
    assert_eq!(echoed["headers"]["x-user-id"], "auth0|remote-module");
    let refused = envoy.request("/deals/exclusive", &[("authorization", &bearer)]);
    assert_eq!(refused.status, 403, "no loyalty tier: {refused:?}");
}

#[test]
fn envoy_refuses_a_module_whose_sha256_does_not_match() {
    let module = module_bytes();
    let mut wrong = Sha256::digest(&module);
    wrong[0] ^= 0x01;
    let server = Idp::start();
    server.set(MODULE_PATH, Reply::json(module));
    let envoy = RemoteEnvoy::start(&server, &hex(&wrong));

    // Envoy downloaded it, found another digest, retried as the retry policy says, then
    // gave up on the plugin: the module never ran.
    assert_eq!(
        server.hits(MODULE_PATH),
        DOWNLOADS_WHEN_REFUSED,
        "1 download + 3 retries"
    );
    let log = envoy.log();
    assert!(
        log.contains("Retry limit exceeded for fetching data from remote data source"),
        "{log}"
    );
    assert!(log.contains("Plugin claimgate failed to load"), "{log}");
    assert!(
        !log.contains("claimgate: configuration loaded"),
        "the module must not run:\n{log}"
    );

    // Fail closed: the listener answers, but nothing passes — with or without a token.
    let bearer = bearer();
    for headers in [vec![], vec![("authorization", bearer.as_str())]] {
        for path in ["/public/catalog", "/products/42"] {
            let response = envoy.request(path, &headers);
            assert_eq!(response.status, 503, "{path}: {response:?}");
            assert!(
                !response.body.contains("\"headers\""),
                "{path} reached the upstream: {}",
                response.body
            );
        }
    }
}

/// The prefixes of `proxy.istio.io/config` → `proxyStatsMatcher.inclusionPrefixes` that the
/// shipped Istio Gateway gives its pods (`spec.infrastructure.annotations`, which Istio
/// copies onto the gateway's pod template).
fn istio_inclusion_prefixes() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("envoy/deploy/istio/gateway.yaml")).unwrap();
    let gateway = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|document| serde_yaml_ng::Value::deserialize(document).unwrap())
        .find(|document| document["kind"].as_str() == Some("Gateway"))
        .expect("gateway.yaml has a Gateway");
    let proxy_config = gateway["spec"]["infrastructure"]["annotations"]["proxy.istio.io/config"]
        .as_str()
        .expect("the Gateway sets proxy.istio.io/config");
    let proxy_config: serde_yaml_ng::Value = serde_yaml_ng::from_str(proxy_config).unwrap();
    proxy_config["proxyStatsMatcher"]["inclusionPrefixes"]
        .as_sequence()
        .expect("proxyStatsMatcher.inclusionPrefixes")
        .iter()
        .map(|prefix| prefix.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_istio_stats_matcher_of_the_gateway_keeps_claimgate_stats() {
    let prefixes = istio_inclusion_prefixes();
    assert!(!prefixes.is_empty());
    // What Istio generates from inclusionPrefixes: stats_matcher.inclusion_list prefixes.
    let patterns: Vec<_> = prefixes
        .iter()
        .map(|prefix| json!({ "prefix": prefix }))
        .collect();
    let stats_config = json!({
        "stats_config": {"stats_matcher": {"inclusion_list": {"patterns": patterns}}}
    })
    .to_string();
    let module = module_bytes();
    let server = Idp::start();
    server.set(MODULE_PATH, Reply::json(module.clone()));
    let envoy = RemoteEnvoy::start_with(
        &server,
        &hex(&Sha256::digest(&module)),
        &["--config-yaml", &stats_config],
        // As Istio names the plugin of envoy/deploy/istio/wasmplugin.yaml.
        "aethermarket.claimgate",
    );
    let bearer = bearer();
    assert_eq!(
        envoy
            .request("/products/42", &[("authorization", &bearer)])
            .status,
        200
    );
    assert_eq!(envoy.request("/recommendations", &[]).status, 401);

    let stats = support::http(envoy.admin_port, "GET", "/stats", &[])
        .unwrap()
        .body;
    let names: Vec<&str> = stats
        .lines()
        .filter_map(|line| line.split_once(": ").map(|(name, _)| name))
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name.starts_with("wasmcustom.claimgate.")),
        "claimgate's own metrics are kept:\n{stats}"
    );
    assert!(
        names.contains(&"wasm.aethermarket.claimgate.vm_reload"),
        "Envoy's per-plugin stats are kept:\n{stats}"
    );
    let others: Vec<_> = names
        .iter()
        .filter(|name| {
            !prefixes
                .iter()
                .any(|prefix| name.starts_with(prefix.as_str()))
        })
        .collect();
    assert!(
        !names
            .iter()
            .any(|name| name.starts_with("cluster.echo_upstream.")),
        "the matcher drops what it does not include: {others:?}"
    );
}
