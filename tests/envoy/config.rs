//! A bad configuration is refused by Envoy itself, with a message naming the exact field.

use crate::support::Envoy;
use serde_json::{json, Value};

const CONFIG: &str = include_str!("../../filter-config/aethermarket.json");

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn envoy_refuses_a_config_with_an_unknown_tier_and_names_the_field() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    config["rules"][3]["require"][0]["at_least"] = json!("Diamond");
    let log = match Envoy::try_start(&config.to_string()) {
        Ok(_) => panic!("Envoy accepted a configuration with an unknown tier"),
        Err(log) => log,
    };
    assert!(
        log.contains("rules[3].require[0].at_least"),
        "Envoy log does not name the field:\n{log}"
    );
    assert!(
        log.contains("'Diamond' is not in tier list 'loyalty'"),
        "{log}"
    );
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn envoy_refuses_a_policy_with_a_type_mismatch_and_names_the_field() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    let streaming = config["rules"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|rule| rule["name"] == "streaming")
        .unwrap();
    streaming["when"]["all"][1]["greater_than"] = json!("tomorrow");
    let log = match Envoy::try_start(&config.to_string()) {
        Ok(_) => panic!("Envoy accepted a numeric comparison against a string"),
        Err(log) => log,
    };
    assert!(log.contains("rules[11].when.all[1].greater_than"), "{log}");
    assert!(log.contains("type mismatch"), "{log}");
}

#[test]
#[ignore = "needs Envoy and the built module: scripts/test.sh runs it"]
fn envoy_refuses_a_config_with_a_weak_rsa_key() {
    let mut config: Value = serde_json::from_str(CONFIG).unwrap();
    let short_modulus = "xR".repeat(86); // 1024-bit modulus in base64url
    config["providers"][0]["jwks"]["inline"]["keys"][0]["n"] = json!(short_modulus);
    let log = match Envoy::try_start(&config.to_string()) {
        Ok(_) => panic!("Envoy accepted a 1024-bit RSA key"),
        Err(log) => log,
    };
    assert!(log.contains("providers[0].jwks.inline.keys[0]"), "{log}");
}
