//! The module as a release artifact. `scripts/package.sh` packages the module the test
//! command built as an OCI image in the Wasm "compat" variant; the image is pushed with
//! skopeo to Debian's `docker-registry` on a loopback port (a throwaway registry whose
//! storage is a temp directory), read back over the registry API the way Istio's and
//! Envoy Gateway's image fetchers read it, pulled back with skopeo into a fresh OCI
//! layout and unpacked with umoci: `plugin.wasm` must be byte for byte the module.
//! Nothing is pushed anywhere but 127.0.0.1. Also: `claimgate --version` and the
//! CHANGELOG name the crate version.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]
#![allow(clippy::panic, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::too_many_lines, reason = "test code")]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free loopback port")
}

/// Runs a command to completion within `COMMAND_TIMEOUT`; panics with its output if it
/// fails. Returns stdout.
fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let name = program.rsplit('/').next().unwrap_or(program);
    let stdout_path = dir.join(format!("{name}.stdout"));
    let stderr_path = dir.join(format!("{name}.stderr"));
    let mut child = Command::new(program)
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap_or_else(|err| {
            panic!("cannot run {program}: {err} (scripts/bootstrap.sh --release-tools installs it)")
        });
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} {args:?} did not finish in {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        status.success(),
        "{program} {args:?} failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

/// A response from the registry API.
struct ApiResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A throwaway `docker-registry` on 127.0.0.1, storing into `dir`; killed on drop.
struct Registry {
    child: Child,
    port: u16,
}

impl Registry {
    fn start(dir: &Path) -> Registry {
        let port = free_port();
        let storage = dir.join("registry-storage");
        std::fs::create_dir_all(&storage).unwrap();
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect(
                "cannot start docker-registry (scripts/bootstrap.sh --release-tools installs it)",
            );
        let mut registry = Registry { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "docker-registry exited with {status}:\n{}",
                    std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
                );
            }
            if let Ok(response) = registry.get("/v2/", "application/json") {
                if response.status == 200 {
                    return registry;
                }
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry not up after 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One GET against the registry API.
    fn get(&self, path: &str, accept: &str) -> std::io::Result<ApiResponse> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{}\r\naccept: {accept}\r\nconnection: close\r\n\r\n",
            self.port
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no end of headers"))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let body = raw[split + 4..].to_vec();
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad status line"))?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Ok(ApiResponse {
            status,
            headers,
            body,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The manifest a tag points to in an OCI image layout.
fn layout_manifest(layout: &Path, tag: &str) -> (String, Value) {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let descriptor = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|descriptor| descriptor["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {}", layout.display()));
    let digest = descriptor["digest"].as_str().unwrap().to_owned();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(sha256_hex(&bytes), hex, "the manifest blob has its digest");
    (hex.to_owned(), serde_json::from_slice(&bytes).unwrap())
}

fn assert_compat_variant(manifest: &Value, origin: &str) {
    assert_eq!(
        manifest["annotations"]["module.wasm.image/variant"], "compat",
        "{origin}: the compat variant's annotation: {manifest}"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{origin}: exactly one layer: {manifest}");
    assert_eq!(
        layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "{origin}: {manifest}"
    );
}

#[test]
#[ignore = "needs the built module and the release tools (skopeo, umoci, docker-registry): scripts/test.sh runs it"]
fn the_oci_image_round_trips_through_a_loopback_registry_unchanged() {
    let module_path = root().join("target/wasm32-wasip1/release/claimgate.wasm");
    let module = std::fs::read(&module_path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}: scripts/test.sh builds it (cargo build --release --lib --target wasm32-wasip1)",
            module_path.display()
        )
    });
    let module_sha = sha256_hex(&module);
    let dir = std::env::temp_dir().join(format!("claimgate-release-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("oci");
    let out_arg = out.display().to_string();

    // Package the module as it is (the test command built it).
    run(
        &dir,
        "scripts/package.sh",
        &["--no-build", "--out", &out_arg],
    );
    let written_sha = std::fs::read_to_string(out.join("claimgate.wasm.sha256")).unwrap();
    assert_eq!(
        written_sha.split_whitespace().next(),
        Some(module_sha.as_str()),
        "claimgate.wasm.sha256 is the module's"
    );
    let layout = out.join("image");
    let (image_digest, manifest) = layout_manifest(&layout, VERSION);
    assert_compat_variant(&manifest, "packaged");
    // Reproducible (README, "Deploy it"): packaging the same module again, a moment later
    // and elsewhere, gives the same image digest (times come from the last commit).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = dir.join("oci-again");
    run(
        &dir,
        "scripts/package.sh",
        &["--no-build", "--out", &again.display().to_string()],
    );
    let (again_digest, _) = layout_manifest(&again.join("image"), VERSION);
    assert_eq!(again_digest, image_digest, "the image is reproducible");
    assert_eq!(
        std::fs::read_to_string(out.join("claimgate.image.digest"))
            .unwrap()
            .trim(),
        image_digest,
        "claimgate.image.digest is the manifest's digest"
    );

    // Push to a registry on loopback, and nowhere else.
    let registry = Registry::start(&dir);
    let reference = format!("127.0.0.1:{}/claimgate:{VERSION}", registry.port);
    run(
        &dir,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--dest-no-creds",
            &format!("oci:{}:{VERSION}", layout.display()),
            &format!("docker://{reference}"),
        ],
    );

    // What an image fetcher sees: the manifest under the tag, with the digest that
    // WasmPlugin.sha256 / EnvoyExtensionPolicy image.sha256 are compared with.
    let ApiResponse {
        status,
        headers,
        body,
    } = registry
        .get(
            &format!("/v2/claimgate/manifests/{VERSION}"),
            "application/vnd.oci.image.manifest.v1+json",
        )
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let served_digest = headers
        .iter()
        .find(|(name, _)| name == "docker-content-digest")
        .map(|(_, value)| value.clone());
    assert_eq!(
        served_digest,
        Some(format!("sha256:{image_digest}")),
        "the registry serves the manifest package.sh wrote, digest unchanged"
    );
    assert_eq!(sha256_hex(&body), image_digest);
    assert_compat_variant(&serde_json::from_slice(&body).unwrap(), "registry");

    // Pull it back with skopeo into a fresh layout and unpack it with umoci.
    let pulled = dir.join("pulled");
    run(
        &dir,
        "skopeo",
        &[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            "--src-no-creds",
            &format!("docker://{reference}"),
            &format!("oci:{}:{VERSION}", pulled.display()),
        ],
    );
    let (pulled_digest, pulled_manifest) = layout_manifest(&pulled, VERSION);
    assert_eq!(pulled_digest, image_digest, "pulled manifest digest");
    assert_compat_variant(&pulled_manifest, "pulled");
    // `raw unpack`: the layers only (a runtime bundle needs a Linux image, this is Wasm).
    let rootfs = dir.join("rootfs");
    let rootless = Command::new("id")
        .arg("-u")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim() != "0")
        .unwrap_or(true);
    let image_arg = format!("{}:{VERSION}", pulled.display());
    let rootfs_arg = rootfs.display().to_string();
    let mut unpack = vec!["raw", "unpack", "--image", &image_arg, &rootfs_arg];
    if rootless {
        unpack.insert(2, "--rootless");
    }
    run(&dir, "umoci", &unpack);
    let plugin = std::fs::read(rootfs.join("plugin.wasm")).unwrap();
    assert_eq!(
        sha256_hex(&plugin),
        module_sha,
        "plugin.wasm pulled back from the registry is the module"
    );
    let files: Vec<_> = std::fs::read_dir(&rootfs)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files, ["plugin.wasm"], "the layer holds only plugin.wasm");

    drop(registry);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_cli_and_the_changelog_name_the_crate_version() {
    let output = Command::new(env!("CARGO_BIN_EXE_claimgate"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("claimgate {VERSION}\n")
    );
    let changelog = std::fs::read_to_string(root().join("CHANGELOG.md")).unwrap();
    let first_release = changelog
        .lines()
        .find(|line| line.starts_with("## "))
        .expect("a release heading in CHANGELOG.md");
    assert!(
        first_release.starts_with(&format!("## {VERSION} "))
            || first_release == format!("## {VERSION}"),
        "the newest CHANGELOG entry is {VERSION}: {first_release}"
    );
}
