//! A real Envoy (from the project's `.venv`) running the built `claimgate.wasm` in front
//! of the echo upstream, on free loopback ports: one launcher for every bootstrap
//! template of `envoy/`.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::client::{free_port, http, Response};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `path` below the repository, which must exist (else the test fails saying `how` to
/// make it: an Envoy test is never skipped).
fn required(path: &str, how: &str) -> PathBuf {
    let path = root().join(path);
    assert!(path.exists(), "{} is missing: {how}", path.display());
    path
}

/// The release module.
pub fn wasm_path() -> PathBuf {
    required(
        "target/wasm32-wasip1/release/claimgate.wasm",
        "build it with `cargo build --release --lib --target wasm32-wasip1` (scripts/test.sh does)",
    )
}

/// The Envoy to run: `CLAIMGATE_ENVOY`, else the project's `.venv/bin/envoy`. Missing,
/// it fails the test (scripts/test.sh never skips an Envoy test).
pub fn envoy_binary() -> PathBuf {
    let (path, how) = match std::env::var("CLAIMGATE_ENVOY") {
        Ok(path) => (PathBuf::from(path), "set by CLAIMGATE_ENVOY"),
        Err(_) => (
            root().join(".venv/bin/envoy"),
            "run scripts/bootstrap.sh to install it",
        ),
    };
    assert!(path.exists(), "{} is missing ({how})", path.display());
    path
}

/// The test-only module that traps on a marker header (`--features fault-injection`).
pub fn fault_module() -> PathBuf {
    required(
        "target/fault-injection/claimgate.wasm",
        "scripts/test.sh builds it (cargo build --release --lib --target wasm32-wasip1 --features fault-injection, then copied there)",
    )
}

/// `claimgate.signatures.checked_by_envoy` from the admin stats, `None` while it is not
/// defined (`host_crypto: off` never probes Envoy's crypto).
pub fn envoy_checks(envoy: &Envoy) -> Option<u64> {
    let stats = envoy
        .admin("/stats?filter=claimgate\\.signatures\\.checked_by_envoy")
        .body;
    let values: Vec<u64> = stats
        .lines()
        .filter_map(|line| line.rsplit_once(": "))
        .map(|(_, value)| value.trim().parse::<u64>().unwrap())
        .collect();
    // The counter exists only once the module has probed Envoy's crypto (`auto`).
    assert!(values.len() <= 1, "{stats}");
    values.first().copied()
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
    /// by `envoy/render.py --ecds-only` into [`Envoy::policy_dir`]; one without
    /// `{{WASM_PATH}}` (the remote-module template) fills its own placeholders with
    /// `template_edits`. A placeholder left outside a comment is an error.
    pub template: Option<&'static str>,
    /// The Wasm VM's environment (`vm_config.environment_variables.key_values`).
    pub environment: Vec<(String, String)>,
    /// More arguments on Envoy's command line (e.g. `--config-yaml`).
    pub args: Vec<String>,
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
            args: Vec::new(),
        }
    }
}

/// The loopback ports of one Envoy: its listener, its admin interface, the echo upstream.
struct Ports {
    listen: u16,
    admin: u16,
    upstream: u16,
}

/// A running Envoy and echo upstream; both are killed on drop.
pub struct Envoy {
    process: EnvoyProcess,
    upstream: Child,
    pub port: u16,
    pub admin_port: u16,
}

/// An Envoy process on a bootstrap in its own directory (`envoy.yaml`, `envoy.log`):
/// started, waited for, killed on drop and its directory removed. `Envoy` and the
/// front Envoy of `front.rs` both run through it.
pub struct EnvoyProcess {
    child: Child,
    dir: PathBuf,
}

impl EnvoyProcess {
    /// Writes `bootstrap` into `dir` and starts Envoy on it (`--base-id base_id`, then
    /// `args`), its output into `dir/envoy.log`; waits until its admin interface on
    /// `admin_port` says LIVE and `also_ready` holds. `Err` carries Envoy's log.
    pub fn start(
        dir: PathBuf,
        bootstrap: &str,
        base_id: u16,
        admin_port: u16,
        args: &[String],
        also_ready: impl Fn() -> bool,
    ) -> Result<EnvoyProcess, String> {
        std::fs::create_dir_all(&dir).map_err(|err| err.to_string())?;
        let config_path = dir.join("envoy.yaml");
        std::fs::write(&config_path, bootstrap).map_err(|err| err.to_string())?;
        let log_file =
            std::fs::File::create(dir.join("envoy.log")).map_err(|err| err.to_string())?;
        let child = Command::new(envoy_binary())
            .arg("-c")
            .arg(&config_path)
            .args(["--base-id", &base_id.to_string()])
            .args(args)
            .stdout(log_file.try_clone().map_err(|err| err.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|err| format!("cannot start Envoy: {err}"))?;
        let mut process = EnvoyProcess { child, dir };
        process.wait_ready(admin_port, also_ready)?;
        Ok(process)
    }

    fn wait_ready(&mut self, admin_port: u16, also_ready: impl Fn() -> bool) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("Envoy exited with {status}:\n{}", self.log()));
            }
            if also_ready() {
                if let Ok(response) = http(admin_port, "GET", "/ready", &[]) {
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

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
        let ports = Ports {
            listen: port,
            admin: admin_port,
            upstream: upstream_port,
        };
        let rendered = Envoy::render(plugin_config, &options, clusters, &ports, &dir)?;
        let mut upstream = Command::new("python3")
            .arg(root().join("envoy/echo_upstream.py"))
            .args(["--port", &upstream_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start the echo upstream: {err}"))?;
        let mut args: Vec<String> = ["--concurrency", &options.concurrency.to_string()]
            .into_iter()
            .chain(["-l", "info", "--component-log-level", "wasm:debug"])
            .map(str::to_owned)
            .collect();
        args.extend(options.args);
        let upstream_up = || TcpStream::connect(("127.0.0.1", upstream_port)).is_ok();
        match EnvoyProcess::start(dir, &rendered, port, admin_port, &args, upstream_up) {
            Ok(process) => Ok(Envoy {
                process,
                upstream,
                port,
                admin_port,
            }),
            Err(log) => {
                let _ = upstream.kill();
                let _ = upstream.wait();
                Err(log)
            }
        }
    }

    /// `options.template` (or the default one) filled in for `plugin_config`, `options`,
    /// the extra `clusters` and the `ports`; the live-policy template's policy file is
    /// written below `dir`.
    fn render(
        plugin_config: &str,
        options: &EnvoyOptions,
        clusters: &str,
        ports: &Ports,
        dir: &Path,
    ) -> Result<String, String> {
        let module = || options.module.clone().unwrap_or_else(wasm_path);
        let template_path = options
            .template
            .unwrap_or("envoy/claimgate.envoy.yaml.tmpl");
        let mut template =
            std::fs::read_to_string(root().join(template_path)).map_err(|err| err.to_string())?;
        if template.contains("{{POLICY_DIR}}") {
            let policy_dir = dir.join("policy");
            write_policy(&policy_dir, plugin_config, &module(), options.runtime)?;
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
        if template.contains("{{WASM_PATH}}") {
            template = template.replace("{{WASM_PATH}}", &module().display().to_string());
        }
        let encoded_config = serde_json::to_string(plugin_config).map_err(|err| err.to_string())?;
        let rendered = template
            .replace("{{LISTEN_PORT}}", &ports.listen.to_string())
            .replace("{{ADMIN_PORT}}", &ports.admin.to_string())
            .replace("{{UPSTREAM_PORT}}", &ports.upstream.to_string())
            .replace("{{RUNTIME}}", options.runtime)
            .replace("{{PLUGIN_CONFIG}}", &encoded_config)
            .replace(
                "# {{EXTRA_CLUSTERS}}",
                &clusters.trim_end().lines().collect::<Vec<_>>().join("\n  "),
            );
        let left: Vec<&str> = rendered
            .lines()
            .filter(|line| line.contains("{{") && !line.trim_start().starts_with('#'))
            .collect();
        if !left.is_empty() {
            return Err(format!("{template_path}: placeholders left: {left:?}"));
        }
        Ok(rendered)
    }

    /// The directory the live-policy template's Envoy watches for its policy file.
    pub fn policy_dir(&self) -> PathBuf {
        self.process.dir.join("policy")
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// One request through the listener (repeated header names allowed).
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        http(self.port, method, path, headers)
            .unwrap_or_else(|err| panic!("{method} {path}: {err}\nEnvoy log:\n{}", self.log()))
    }

    /// Envoy's resident memory now, in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.process.child.id())).ok()?;
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
        let (_, _method, path, status, details, explanation) =
            (next(), next(), next(), next(), next(), next());
        let decided = details == "via_upstream" || details.starts_with("claimgate.");
        let explanation = match serde_json::from_str(&explanation) {
            Ok(explanation) => Some(explanation),
            Err(_) if !decided && explanation == "-" => None,
            Err(err) => panic!("no claimgate explanation in the access log ({err}): {line}"),
        };
        AccessLine {
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
        // Envoy itself (`process`) is killed and its directory removed right after.
        let _ = self.upstream.kill();
        let _ = self.upstream.wait();
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

/// Absolute path of a file in the repository.
pub fn repo_file(relative: &str) -> PathBuf {
    required(relative, "a file of the repository")
}
