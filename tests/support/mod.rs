//! Integration-test harness: a real Envoy (from the project's `.venv`) running the built
//! `claimgate.wasm` in front of the echo upstream, on free loopback ports, plus a small
//! HTTP/1.1 client that can send repeated headers.
#![allow(
    dead_code,
    reason = "each test binary uses only part of the support code"
)]

pub mod etcd;
pub mod front;
pub mod idp;
pub mod pyjwt;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo's private key (demo only; its public half is in the AetherMarket config).
pub const DEMO_KEY: &str = include_str!("../../filter-config/demo/private-demo-only.jwk.json");

/// `extra`'s members set on `base`; both must be JSON objects (a test that merges
/// anything else fails instead of running with the defaults).
pub fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    let serde_json::Value::Object(extra) = extra else {
        panic!("not a JSON object to merge: {extra}");
    };
    match base {
        serde_json::Value::Object(base) => base.extend(extra),
        other => panic!("not a JSON object to merge into: {other}"),
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

pub fn demo_key() -> claimgate::mint::SigningKey {
    claimgate::mint::SigningKey::from_jwk(&serde_json::from_str(DEMO_KEY).unwrap()).unwrap()
}

/// A configuration with one provider that verifies `keys` inline (each key's algorithm
/// allowed), a valid token on every path, and no token cache, so every request's
/// signature is checked — by Envoy's crypto or in the module, as `host_crypto` says.
pub fn uncached_keys_config(
    issuer: &str,
    audience: &str,
    keys: &[claimgate::mint::SigningKey],
    host_crypto: &str,
) -> String {
    serde_json::json!({
        "providers": [{
            "name": "idp",
            "issuer": issuer,
            "audiences": [audience],
            "algorithms": keys.iter().map(|key| key.alg().name()).collect::<Vec<_>>(),
            "jwks": {"inline": {"keys": keys.iter().map(|key| key.public_jwk()).collect::<Vec<_>>()}}
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated"}],
        "token_cache": {"max_entries": 0},
        "host_crypto": host_crypto
    })
    .to_string()
}

/// A token the AetherMarket demo accepts (its issuer and audience, a fixed subject,
/// valid for ten minutes), signed with the demo key, with `extra` claims merged in.
pub fn demo_token(extra: serde_json::Value) -> String {
    let mut claims = serde_json::json!({
        "iss": "https://aethermarket.auth0.com/",
        "aud": "https://api.aethermarket.com",
        "sub": "auth0|5f7c8ec7c33c6c004bbafe82",
        "iat": now(),
        "exp": now() + 600,
    });
    merge(&mut claims, extra);
    demo_key().sign(&claims).unwrap()
}
const IO_TIMEOUT: Duration = Duration::from_secs(10);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn wasm_path() -> PathBuf {
    let path = root().join("target/wasm32-wasip1/release/claimgate.wasm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --lib --target wasm32-wasip1` (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn envoy_binary() -> PathBuf {
    if let Ok(path) = std::env::var("CLAIMGATE_ENVOY") {
        return PathBuf::from(path);
    }
    let path = root().join(".venv/bin/envoy");
    assert!(
        path.exists(),
        "{} is missing: run scripts/bootstrap.sh",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free loopback port")
}

/// Envoy start-up options.
pub struct EnvoyOptions {
    pub concurrency: usize,
    pub runtime: &'static str,
    /// Let headers with `_` in their names through Envoy (the shipped template drops
    /// them), to test that claimgate alone also keeps spoofed identity out.
    pub allow_underscore_headers: bool,
    /// Another build of the module (default: the release module `scripts/test.sh` builds).
    pub module: Option<PathBuf>,
    /// Stand in for the GeoIP filter the template leaves a place for: the edge sets
    /// `x-geo-region` from the test-only header `x-test-trusted-geo` (after removing the
    /// client's own `x-geo-region`, as the shipped template always does).
    pub trusted_geo: bool,
    /// Put Envoy's CORS filter before claimgate with a policy for this origin.
    pub cors_origin: Option<&'static str>,
    /// Serve the listener over TLS and ask clients for certificates.
    pub tls: Option<ListenerTls>,
    /// Text replacements in the template before rendering (`from` must occur in it): routes
    /// to extra clusters, other filter settings.
    pub template_edits: Vec<(String, String)>,
    /// Another bootstrap template of `envoy/` (default: `envoy/claimgate.envoy.yaml.tmpl`).
    /// One with `{{POLICY_DIR}}` (the live-policy template) gets its policy file written
    /// by `envoy/render.py --ecds-only` into [`Envoy::policy_dir`].
    pub template: Option<&'static str>,
    /// The Wasm VM's environment (`vm_config.environment_variables.key_values`).
    pub environment: Vec<(String, String)>,
}

/// A TLS listener: its certificate and key, and the CA client certificates must chain to.
#[derive(Debug, Clone)]
pub struct ListenerTls {
    pub certificate: PathBuf,
    pub private_key: PathBuf,
    pub client_ca: PathBuf,
    /// Refuse the handshake without a client certificate (else it is only requested).
    pub require_client_certificate: bool,
}

impl Default for EnvoyOptions {
    fn default() -> Self {
        EnvoyOptions {
            concurrency: 1,
            runtime: "v8",
            allow_underscore_headers: false,
            module: None,
            trusted_geo: false,
            cors_origin: None,
            tls: None,
            template_edits: Vec::new(),
            template: None,
            environment: Vec::new(),
        }
    }
}

/// A running Envoy and echo upstream; both are killed on drop.
pub struct Envoy {
    envoy: Child,
    upstream: Child,
    pub port: u16,
    pub admin_port: u16,
    dir: PathBuf,
}

/// A response as the client saw it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

impl Envoy {
    /// Starts Envoy with `plugin_config`; panics with Envoy's log if it does not come up.
    pub fn start(plugin_config: &str) -> Envoy {
        Envoy::start_with(plugin_config, EnvoyOptions::default())
            .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"))
    }

    /// Starts Envoy; `Err` carries Envoy's log when it refuses the configuration.
    pub fn try_start(plugin_config: &str) -> Result<Envoy, String> {
        Envoy::start_with(plugin_config, EnvoyOptions::default())
    }

    pub fn start_with(plugin_config: &str, options: EnvoyOptions) -> Result<Envoy, String> {
        Envoy::start_with_clusters(plugin_config, options, "")
    }

    /// Starts Envoy with extra clusters: YAML list items (`- name: …`), indented by two
    /// spaces per level as they would be at the top level of a file.
    pub fn start_with_clusters(
        plugin_config: &str,
        options: EnvoyOptions,
        clusters: &str,
    ) -> Result<Envoy, String> {
        let port = free_port();
        let admin_port = free_port();
        let upstream_port = free_port();
        let dir =
            std::env::temp_dir().join(format!("claimgate-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
        let template_path = options
            .template
            .unwrap_or("envoy/claimgate.envoy.yaml.tmpl");
        let mut template =
            std::fs::read_to_string(root().join(template_path)).map_err(|err| err.to_string())?;
        if template.contains("{{POLICY_DIR}}") {
            let policy_dir = dir.join("policy");
            write_policy(
                &policy_dir,
                plugin_config,
                &options.module.clone().unwrap_or_else(wasm_path),
                options.runtime,
            )?;
            template = template.replace("{{POLICY_DIR}}", &policy_dir.display().to_string());
        }
        if options.trusted_geo {
            template = template.replace(
                "# {{TRUSTED_GEO}}",
                r#"- append: { header: { key: x-geo-region, value: "%REQ(x-test-trusted-geo)%" }, append_action: OVERWRITE_IF_EXISTS_OR_ADD }"#,
            );
        }
        if let Some(origin) = options.cors_origin {
            template = template
                .replace(
                    "# {{CORS_FILTER}}",
                    "- name: envoy.filters.http.cors\n            typed_config: { \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors }",
                )
                .replace(
                    "# {{CORS_POLICY}}",
                    &format!("typed_per_filter_config: {{ envoy.filters.http.cors: {{ \"@type\": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy, allow_origin_string_match: [{{ exact: \"{origin}\" }}], allow_methods: \"GET, POST\", allow_headers: \"authorization\" }} }}"),
                );
        }
        if let Some(tls) = &options.tls {
            const CHAIN: &str = "    filter_chains:\n    - filters:\n";
            assert!(
                template.contains(CHAIN),
                "the template has one filter chain"
            );
            template = template.replacen(
                CHAIN,
                &format!(
                    "    filter_chains:\n    - transport_socket:\n        name: envoy.transport_sockets.tls\n        typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext\n          require_client_certificate: {}\n          common_tls_context:\n            tls_certificates:\n            - certificate_chain: {{ filename: \"{}\" }}\n              private_key: {{ filename: \"{}\" }}\n            validation_context:\n              trusted_ca: {{ filename: \"{}\" }}\n      filters:\n",
                    tls.require_client_certificate,
                    tls.certificate.display(),
                    tls.private_key.display(),
                    tls.client_ca.display()
                ),
                1,
            );
        }
        if !options.environment.is_empty() {
            const CODE: &str = "code: { local: { filename: \"{{WASM_PATH}}\" } }";
            assert!(
                template.contains(CODE),
                "the template has no vm_config code line"
            );
            let values: Vec<String> = options
                .environment
                .iter()
                .map(|(name, value)| format!("{name}: {}", serde_json::json!(value)))
                .collect();
            template = template.replace(
                CODE,
                &format!(
                    "{CODE}\n                  environment_variables: {{ key_values: {{ {} }} }}",
                    values.join(", ")
                ),
            );
        }
        for (from, to) in &options.template_edits {
            assert!(
                template.contains(from.as_str()),
                "the template has no {from:?}"
            );
            template = template.replace(from.as_str(), to);
        }
        if options.allow_underscore_headers {
            const DROP: &str = "headers_with_underscores_action: DROP_HEADER";
            assert!(
                template.contains(DROP),
                "the template drops underscore headers"
            );
            template = template.replace(DROP, "headers_with_underscores_action: ALLOW");
        }
        let encoded_config = serde_json::to_string(plugin_config).map_err(|err| err.to_string())?;
        let rendered = template
            .replace("{{LISTEN_PORT}}", &port.to_string())
            .replace("{{ADMIN_PORT}}", &admin_port.to_string())
            .replace("{{UPSTREAM_PORT}}", &upstream_port.to_string())
            .replace(
                "{{WASM_PATH}}",
                &options
                    .module
                    .clone()
                    .unwrap_or_else(wasm_path)
                    .display()
                    .to_string(),
            )
            .replace("{{RUNTIME}}", options.runtime)
            .replace("{{PLUGIN_CONFIG}}", &encoded_config)
            .replace(
                "# {{EXTRA_CLUSTERS}}",
                &clusters.trim_end().lines().collect::<Vec<_>>().join("\n  "),
            );
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, rendered).map_err(|err| err.to_string())?;
        let upstream = Command::new("python3")
            .arg(root().join("envoy/echo_upstream.py"))
            .args(["--port", &upstream_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start the echo upstream: {err}"))?;
        let log_path = dir.join("envoy.log");
        let log_file = std::fs::File::create(&log_path).map_err(|err| err.to_string())?;
        let envoy = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config_path)
            .args(["--concurrency", &options.concurrency.to_string()])
            .args(["--base-id", &port.to_string()])
            .args(["-l", "info", "--component-log-level", "wasm:debug"])
            .stdout(log_file.try_clone().map_err(|err| err.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|err| format!("cannot start Envoy: {err}"))?;
        let mut running = Envoy {
            envoy,
            upstream,
            port,
            admin_port,
            dir,
        };
        running.wait_ready(upstream_port)?;
        Ok(running)
    }

    fn wait_ready(&mut self, upstream_port: u16) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.envoy.try_wait() {
                return Err(format!("Envoy exited with {status}:\n{}", self.log()));
            }
            let upstream_up = TcpStream::connect(("127.0.0.1", upstream_port)).is_ok();
            if upstream_up {
                if let Ok(response) = http(self.admin_port, "GET", "/ready", &[]) {
                    if response.status == 200 && response.body.trim() == "LIVE" {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Envoy not ready after {READY_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The directory the live-policy template's Envoy watches for its policy file.
    pub fn policy_dir(&self) -> PathBuf {
        self.dir.join("policy")
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// One request through the listener (repeated header names allowed).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.port, method, path, headers)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\nEnvoy log:\n{}", self.log()))
    }

    /// Envoy's resident memory now, in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.envoy.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    }

    pub fn admin(&self, path: &str) -> Response {
        http(self.admin_port, "GET", path, &[]).unwrap_or_else(|err| panic!("admin {path}: {err}"))
    }

    /// The first `count` claimgate access-log lines (the shipped template's format:
    /// `claimgate-access METHOD PATH STATUS DETAILS EXPLANATION`), waiting up to 10 s for
    /// them. Every line of a request the filter decided (details `via_upstream` or
    /// `claimgate.…`) must carry its JSON explanation (filter state
    /// `wasm.claimgate.decision`): a `-` there fails the test.
    pub fn access_log(&self, count: usize) -> Vec<AccessLine> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            let lines: Vec<&str> = log
                .lines()
                .filter_map(|line| line.find("claimgate-access ").map(|at| &line[at..]))
                .collect();
            if lines.len() >= count || Instant::now() > deadline {
                assert!(
                    lines.len() >= count,
                    "{} access log lines for {count} requests:\n{log}",
                    lines.len()
                );
                return lines
                    .iter()
                    .take(count)
                    .map(|line| AccessLine::parse(line))
                    .collect();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One claimgate access-log line.
#[derive(Debug, Clone)]
pub struct AccessLine {
    pub method: String,
    pub path: String,
    pub status: u16,
    /// `%RESPONSE_CODE_DETAILS%`: `claimgate.…` for the filter's own answers.
    pub details: String,
    /// The decision explanation (`%FILTER_STATE(wasm.claimgate.decision:PLAIN)%`);
    /// `None` only for a request Envoy answered before the filter ran (its details are
    /// Envoy's own, such as `path_normalization_failed`).
    pub explanation: Option<serde_json::Value>,
}

impl AccessLine {
    /// The explanation, which this line must have.
    pub fn explained(&self) -> &serde_json::Value {
        self.explanation
            .as_ref()
            .unwrap_or_else(|| panic!("Envoy answered before claimgate: {self:?}"))
    }

    fn parse(line: &str) -> AccessLine {
        let mut parts = line.trim_end().splitn(6, ' ');
        let mut next = || parts.next().unwrap_or_default().to_owned();
        let (_, method, path, status, details, explanation) =
            (next(), next(), next(), next(), next(), next());
        let decided = details == "via_upstream" || details.starts_with("claimgate.");
        let explanation = match serde_json::from_str(&explanation) {
            Ok(explanation) => Some(explanation),
            Err(_) if !decided && explanation == "-" => None,
            Err(err) => panic!("no claimgate explanation in the access log ({err}): {line}"),
        };
        AccessLine {
            method,
            path,
            status: status
                .parse()
                .unwrap_or_else(|_| panic!("no status: {line}")),
            details,
            explanation,
        }
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.envoy.kill();
        let _ = self.envoy.wait();
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `plugin_config` as the live-policy template's policy file in `policy_dir`, with
/// the shipped tool (`envoy/render.py --ecds-only`: a temporary file renamed over it).
pub fn write_policy(
    policy_dir: &Path,
    plugin_config: &str,
    module: &Path,
    runtime: &str,
) -> Result<(), String> {
    std::fs::create_dir_all(policy_dir).map_err(|err| err.to_string())?;
    let config_file = policy_dir.with_extension("claimgate.json");
    std::fs::write(&config_file, plugin_config).map_err(|err| err.to_string())?;
    let output = Command::new("python3")
        .arg(root().join("envoy/render.py"))
        .arg(&config_file)
        .arg("--ecds-only")
        .arg("--policy-dir")
        .arg(policy_dir)
        .arg("--wasm")
        .arg(module)
        .args(["--runtime", runtime])
        .output()
        .map_err(|err| format!("envoy/render.py: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "envoy/render.py --ecds-only: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// A minimal HTTP/1.1 exchange over one connection (`Connection: close`).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|err| err.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|err| err.to_string())?;
    // A caller's own host header replaces the default one.
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or_else(
            || format!("127.0.0.1:{port}"),
            |(_, value)| (*value).to_owned(),
        );
    let mut request = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n");
    for (name, value) in headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
    {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if matches!(method, "POST" | "PUT" | "PATCH") {
        request.push_str("content-length: 0\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|err| err.to_string())?;
    read_response(BufReader::new(stream), method == "HEAD")
}

/// Reads one HTTP/1.1 response (chunked, by length, or to the end of the connection).
pub fn read_response(mut reader: BufReader<TcpStream>, head: bool) -> Result<Response, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|err| err.to_string())?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|err| err.to_string())?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value): &(String, String)| value.clone())
    };
    let mut body = Vec::new();
    if head {
    } else if find("transfer-encoding").is_some_and(|value| value.eq_ignore_ascii_case("chunked")) {
        loop {
            line.clear();
            reader.read_line(&mut line).map_err(|err| err.to_string())?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|err| err.to_string())?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader
                .read_exact(&mut chunk)
                .map_err(|err| err.to_string())?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = find("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| "bad content-length".to_string())?;
        body.resize(length, 0);
        reader
            .read_exact(&mut body)
            .map_err(|err| err.to_string())?;
    } else {
        reader
            .read_to_end(&mut body)
            .map_err(|err| err.to_string())?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Absolute path of a file in the repository.
pub fn repo_file(relative: &str) -> PathBuf {
    let path = root().join(relative);
    assert!(Path::new(&path).exists(), "{} missing", path.display());
    path
}
