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

use std::ops::Deref;

use crate::support;
use crate::support::idp::{Idp, Reply};
use crate::support::{demo_token, repo_file, wasm_path, Envoy, EnvoyOptions, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");
const TEMPLATE: &str = "envoy/claimgate-remote-module.envoy.yaml.tmpl";
const MODULE_PATH: &str = "/claimgate/claimgate.wasm";
/// 1 download + `num_retries: 3` in the shipped template.
const DOWNLOADS_WHEN_REFUSED: usize = 4;

fn module_bytes() -> Vec<u8> {
    std::fs::read(wasm_path()).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn bearer() -> String {
    format!(
        "Bearer {}",
        demo_token(json!({"sub": "auth0|remote-module"}))
    )
}

/// Envoy from the remote-module template (`support::Envoy` with that template), the
/// module served by `module_server`.
struct RemoteEnvoy(Envoy);

impl RemoteEnvoy {
    fn start(module_server: &Idp, sha256: &str) -> RemoteEnvoy {
        RemoteEnvoy::start_with(module_server, sha256, &[], "claimgate")
    }

    /// `extra_args` go to Envoy's command line (e.g. `--config-yaml`).
    /// `plugin_name`: the Wasm plugin's `name` (Istio names a WasmPlugin's plugin
    /// `<namespace>.<name>`, and Envoy's per-plugin stats carry it). Envoy is LIVE once
    /// its init manager is done: after the module download succeeded or was given up.
    fn start_with(
        module_server: &Idp,
        sha256: &str,
        extra_args: &[&str],
        plugin_name: &str,
    ) -> RemoteEnvoy {
        let edits = [
            (
                "                name: claimgate\n",
                format!("                name: {plugin_name}\n"),
            ),
            (
                "{{MODULE_URL}}",
                format!("http://127.0.0.1:{}{MODULE_PATH}", module_server.port),
            ),
            ("{{MODULE_HOST}}", "127.0.0.1".to_owned()),
            ("{{MODULE_PORT}}", module_server.port.to_string()),
            ("{{MODULE_SHA256}}", sha256.to_owned()),
        ];
        let options = EnvoyOptions {
            template: Some(TEMPLATE),
            template_edits: edits
                .into_iter()
                .map(|(from, to)| (from.to_owned(), to))
                .collect(),
            args: extra_args.iter().map(|&arg| arg.to_owned()).collect(),
            ..EnvoyOptions::default()
        };
        let envoy = Envoy::start_with(CONFIG, options)
            .unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"));
        RemoteEnvoy(envoy)
    }

    fn request(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.0.request("GET", path, headers)
    }
}

impl Deref for RemoteEnvoy {
    type Target = Envoy;

    fn deref(&self) -> &Envoy {
        &self.0
    }
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
    let text = std::fs::read_to_string(repo_file("envoy/deploy/istio/gateway.yaml")).unwrap();
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
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
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
