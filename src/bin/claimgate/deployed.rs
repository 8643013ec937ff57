//! What users deploy, and the claimgate configurations inside it: an Envoy bootstrap or
//! ECDS resource (a Wasm plugin's `configuration.value` string), an Istio `WasmPlugin`
//! (`spec.pluginConfig`), an Envoy Gateway `EnvoyExtensionPolicy` (`spec.wasm[].config`);
//! and the Envoy clusters those files define, for the key-fetch cross-check.

use serde_json::Value;

/// One configuration found in a document.
#[derive(Debug, Clone)]
pub struct Found {
    /// Where it was found, for people: `WasmPlugin aethermarket/claimgate`.
    pub label: String,
    /// Its path in the document (`spec.pluginConfig`).
    pub path: String,
    pub form: Form,
}

#[derive(Debug, Clone)]
pub enum Form {
    /// The configuration as structured data in the document.
    Object(Value),
    /// The configuration as a JSON string (Envoy's `google.protobuf.StringValue`).
    Text(String),
}

/// Whether `document` is a claimgate configuration itself rather than something that
/// embeds one: an object that is not an Envoy bootstrap, an ECDS file or a Kubernetes
/// resource.
pub fn is_configuration(document: &Value) -> bool {
    document.as_object().is_some_and(|object| {
        [
            "apiVersion",
            "kind",
            "static_resources",
            "resources",
            "admin",
        ]
        .iter()
        .all(|key| !object.contains_key(*key))
    })
}

/// The claimgate configurations `document` embeds.
pub fn configurations(document: &Value) -> Vec<Found> {
    let kind = document.get("kind").and_then(Value::as_str);
    let name = kubernetes_name(document);
    let mut found = Vec::new();
    match kind {
        Some("WasmPlugin") => {
            if let Some(config) = document.pointer("/spec/pluginConfig") {
                found.push(Found {
                    label: format!("WasmPlugin {name}"),
                    path: "spec.pluginConfig".into(),
                    form: Form::Object(config.clone()),
                });
            }
        }
        Some("EnvoyExtensionPolicy") => {
            let plugins = document.pointer("/spec/wasm").and_then(Value::as_array);
            for (index, plugin) in plugins.into_iter().flatten().enumerate() {
                if let Some(config) = plugin.get("config") {
                    let plugin_name = plugin.get("name").and_then(Value::as_str).unwrap_or("?");
                    found.push(Found {
                        label: format!("EnvoyExtensionPolicy {name}, wasm '{plugin_name}'"),
                        path: format!("spec.wasm[{index}].config"),
                        form: Form::Object(config.clone()),
                    });
                }
            }
        }
        Some(_) => {}
        None => envoy_plugins(document, String::new(), &mut found),
    }
    found
}

fn kubernetes_name(document: &Value) -> String {
    let field = |name: &str| {
        document
            .pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    match (field("namespace"), field("name")) {
        ("", name) => name.to_owned(),
        (namespace, name) => format!("{namespace}/{name}"),
    }
}

/// Envoy Wasm plugin configurations (`{vm_config, configuration: {value}}`) anywhere in an
/// Envoy bootstrap or ECDS resource.
fn envoy_plugins(value: &Value, path: String, found: &mut Vec<Found>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(object) => {
            let text = object
                .get("configuration")
                .and_then(|configuration| configuration.get("value"))
                .and_then(Value::as_str);
            if let (Some(text), true) = (text, object.contains_key("vm_config")) {
                let name = object
                    .get("name")
                    .or_else(|| object.get("root_id"))
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                found.push(Found {
                    label: format!("Envoy Wasm plugin '{name}'"),
                    path: join("configuration.value"),
                    form: Form::Text(text.to_owned()),
                });
                return;
            }
            for (key, child) in object {
                envoy_plugins(child, join(key), found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                envoy_plugins(child, format!("{path}[{index}]"), found);
            }
        }
        _ => {}
    }
}

/// The Envoy clusters `document` defines: a bootstrap's `static_resources.clusters`, the
/// clusters an `EnvoyPatchPolicy` adds, and those Istio makes for a `ServiceEntry`
/// (`outbound|PORT||HOST`).
pub fn clusters(document: &Value) -> Vec<String> {
    let names = |items: Option<&Value>| -> Vec<String> {
        items
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|cluster| cluster.get("name").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    };
    match document.get("kind").and_then(Value::as_str) {
        None => names(document.pointer("/static_resources/clusters")),
        Some("EnvoyPatchPolicy") => document
            .pointer("/spec/jsonPatches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|patch| {
                patch
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.ends_with("envoy.config.cluster.v3.Cluster"))
            })
            .filter_map(|patch| {
                patch
                    .pointer("/operation/value/name")
                    .or_else(|| patch.get("name"))
                    .and_then(Value::as_str)
            })
            .map(str::to_owned)
            .collect(),
        Some("ServiceEntry") => {
            let hosts = document.pointer("/spec/hosts").and_then(Value::as_array);
            let ports = document.pointer("/spec/ports").and_then(Value::as_array);
            let mut clusters = Vec::new();
            for host in hosts.into_iter().flatten().filter_map(Value::as_str) {
                for port in ports.into_iter().flatten() {
                    if let Some(number) = port.get("number").and_then(Value::as_u64) {
                        clusters.push(format!("outbound|{number}||{host}"));
                    }
                }
            }
            clusters
        }
        Some(_) => Vec::new(),
    }
}

/// Whether `document` is one whose clusters are all of Envoy's (a bootstrap): then a key
/// cluster it lacks is missing for sure.
pub fn is_bootstrap(document: &Value) -> bool {
    document.get("static_resources").is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configurations_are_found_where_each_platform_keeps_them() {
        let bootstrap = json!({"static_resources": {"listeners": [{"filters": [{"typed_config": {"config": {
            "name": "claimgate", "vm_config": {}, "configuration": {"value": "{\"realm\": \"x\"}"}}}}]}],
            "clusters": [{"name": "auth0"}]}});
        let found = configurations(&bootstrap);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            "static_resources.listeners[0].filters[0].typed_config.config.configuration.value"
        );
        assert!(matches!(&found[0].form, Form::Text(text) if text.contains("realm")));
        assert_eq!(clusters(&bootstrap), ["auth0"]);

        let plugin = json!({"kind": "WasmPlugin", "metadata": {"name": "claimgate", "namespace": "shop"},
            "spec": {"pluginConfig": {"realm": "x"}}});
        let found = configurations(&plugin);
        assert_eq!(found[0].label, "WasmPlugin shop/claimgate");
        assert_eq!(found[0].path, "spec.pluginConfig");

        let policy = json!({"kind": "EnvoyExtensionPolicy", "metadata": {"name": "p"},
            "spec": {"wasm": [{"name": "other"}, {"name": "claimgate", "config": {"realm": "x"}}]}});
        let found = configurations(&policy);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.wasm[1].config");

        let entry = json!({"kind": "ServiceEntry", "spec": {"hosts": ["a.example"], "ports": [{"number": 443}]}});
        assert_eq!(clusters(&entry), ["outbound|443||a.example"]);
        let patch = json!({"kind": "EnvoyPatchPolicy", "spec": {"jsonPatches": [
            {"type": "type.googleapis.com/envoy.config.cluster.v3.Cluster", "name": "idp",
             "operation": {"op": "add", "path": "", "value": {"name": "idp"}}},
            {"type": "type.googleapis.com/envoy.config.listener.v3.Listener", "name": "l"}]}});
        assert_eq!(clusters(&patch), ["idp"]);
        assert!(!is_configuration(&entry));
        assert!(is_configuration(&json!({"providers": []})));
    }
}
