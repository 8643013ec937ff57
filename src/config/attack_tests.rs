//! Issue 19's attack round on every configuration field added since 0.2.0 (DPoP, mTLS
//! binding, the unchecked-binding opt-out, step-up, protected-resource metadata, tier
//! identity headers): each tried empty, unparseable, out of range, negative, huge, as the
//! wrong type, in the wrong case, as an array and duplicated. Every one is refused at
//! load naming the exact field — never accepted, never a panic.

use serde_json::{json, Value};

use super::Config;

const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA";

fn base() -> Value {
    json!({
        "realm": "api",
        "providers": [{"name": "p", "issuer": "https://idp.example/",
            "audiences": ["https://api.example"], "algorithms": ["HS256"],
            "jwks": {"inline": {"keys": [{"kty": "oct", "k": SECRET, "alg": "HS256"}]}},
            "dpop": "optional"}],
        "tiers": {"loyalty": ["Bronze", "Silver", "Gold"], "assurance": ["pwd", "mfa"]},
        "rules": [{"name": "r", "match": {"prefix": "/"}, "access": "authenticated"}],
        "resource_metadata": {"resource": "https://api.example/v1"},
        "identity": {"headers": [{"header": "x-tier", "claim": "tier", "tiers": "loyalty"}]}
    })
}

/// The error of the configuration `edit` makes of the base, or `None` if it loads.
fn refusal(edit: impl FnOnce(&mut Value)) -> Option<String> {
    let mut config = base();
    edit(&mut config);
    Config::from_json(config.to_string().as_bytes())
        .err()
        .map(|err| err.to_string())
}

#[test]
fn the_base_configuration_loads() {
    assert_eq!(refusal(|_| {}), None);
}

#[test]
fn new_provider_fields_with_bad_values_are_refused_naming_the_field() {
    for (field, values) in [
        (
            "dpop",
            vec![
                json!(""),
                json!("Optional"),
                json!("on"),
                json!(true),
                json!(1),
                json!(["optional"]),
                json!(null),
            ],
        ),
        (
            "mtls_binding",
            vec![
                json!(""),
                json!("REQUIRED"),
                json!(false),
                json!(0),
                json!(["required"]),
                json!({}),
            ],
        ),
        (
            "insecure_accept_unchecked_binding",
            vec![
                json!("true"),
                json!(1),
                json!([true]),
                json!(null),
                json!("yes"),
            ],
        ),
    ] {
        for value in values {
            let error = refusal(|config| config["providers"][0][field] = value.clone());
            let error = error.unwrap_or_else(|| panic!("{field}: {value} was accepted"));
            assert!(
                error.starts_with(&format!("providers[0].{field}")),
                "{field}: {value}: {error}"
            );
        }
    }
}

/// Bad values of each `dpop_proofs` field.
#[allow(clippy::too_many_lines, reason = "a data table, one value a line")]
fn bad_dpop_proofs_values() -> Vec<(&'static str, Vec<Value>)> {
    let huge = json!(u64::MAX);
    vec![
        (
            "algorithms",
            vec![
                json!([]),
                json!(["HS256"]),
                json!(["none"]),
                json!(["es256"]),
                json!("ES256"),
                json!([1]),
            ],
        ),
        (
            "max_age_seconds",
            vec![
                json!(0),
                json!(-1),
                json!(3601),
                huge.clone(),
                json!("60"),
                json!(1.5),
                json!([60]),
            ],
        ),
        (
            "clock_skew_seconds",
            vec![json!(-1), json!(301), huge.clone(), json!("5"), json!(null)],
        ),
        (
            "nonce_lifetime_seconds",
            vec![
                json!(9),
                json!(86_401),
                json!(-5),
                huge.clone(),
                json!("300"),
            ],
        ),
        (
            "use_dpop_nonce",
            vec![json!("true"), json!(1), json!([true])],
        ),
        (
            "htu_scheme",
            vec![
                json!("ftp"),
                json!(""),
                json!("javascript"),
                json!(1),
                json!(["https"]),
            ],
        ),
        (
            "htu_authority",
            vec![
                json!(""),
                json!("user@host"),
                json!("host/path"),
                json!("host:99999"),
                json!("host:"),
                json!(7),
            ],
        ),
        (
            "replay_cache_entries",
            vec![
                json!(0),
                json!(255),
                json!(1_048_577),
                json!(-1),
                huge.clone(),
                json!("65536"),
            ],
        ),
        (
            "max_proof_bytes",
            vec![
                json!(0),
                json!(255),
                json!(16_385),
                json!(-1),
                huge,
                json!("4096"),
            ],
        ),
    ]
}

#[test]
fn dpop_proofs_fields_with_bad_values_are_refused_naming_the_field() {
    for (field, values) in bad_dpop_proofs_values() {
        for value in values {
            let error = refusal(|config| config["dpop_proofs"] = json!({field: value.clone()}));
            let error = error.unwrap_or_else(|| panic!("{field}: {value} was accepted"));
            assert!(
                error.starts_with(&format!("dpop_proofs.{field}")),
                "{field}: {value}: {error}"
            );
        }
    }
    // Unknown and duplicated members.
    let unknown = refusal(|config| config["dpop_proofs"] = json!({"max_age": 60})).unwrap();
    assert!(unknown.starts_with("dpop_proofs"), "{unknown}");
    let text = base().to_string().replacen(
        "\"realm\":\"api\"",
        "\"realm\":\"api\",\"dpop_proofs\":{\"max_age_seconds\":60,\"max_age_seconds\":3600}",
        1,
    );
    let duplicated = Config::from_json(text.as_bytes()).unwrap_err().to_string();
    assert!(duplicated.contains("duplicate field"), "{duplicated}");
}

#[test]
fn step_up_fields_with_bad_values_are_refused_naming_the_field() {
    for (step_up, field) in [
        (json!({}), "rules[0].step_up"),
        (json!({"acr_at_least": "mfa"}), "rules[0].step_up"),
        (
            json!({"acr_at_least": "MFA", "tiers": "assurance"}),
            "rules[0].step_up.acr_at_least",
        ),
        (
            json!({"acr_at_least": "mfa", "tiers": "nope"}),
            "rules[0].step_up.tiers",
        ),
        (
            json!({"acr_at_least": "", "tiers": "assurance"}),
            "rules[0].step_up.acr_at_least",
        ),
        (json!({"acr_in": []}), "rules[0].step_up.acr_in"),
        (json!({"acr_in": ["a\"b"]}), "rules[0].step_up.acr_in"),
        (json!({"acr_in": "mfa"}), "rules[0].step_up.acr_in"),
        (
            json!({"acr_in": ["mfa"], "acr_at_least": "mfa", "tiers": "assurance"}),
            "rules[0].step_up",
        ),
        (
            json!({"max_age_seconds": -1}),
            "rules[0].step_up.max_age_seconds",
        ),
        (
            json!({"max_age_seconds": "600"}),
            "rules[0].step_up.max_age_seconds",
        ),
        (
            json!({"max_age_seconds": u64::MAX}),
            "rules[0].step_up.max_age_seconds",
        ),
        (
            json!({"max_age_seconds": 1.5}),
            "rules[0].step_up.max_age_seconds",
        ),
        (json!([{"max_age_seconds": 60}]), "rules[0].step_up"),
    ] {
        let error = refusal(|config| config["rules"][0]["step_up"] = step_up.clone());
        let error = error.unwrap_or_else(|| panic!("{step_up} was accepted"));
        assert!(error.starts_with(field), "{step_up}: {error}");
    }
}

#[test]
fn resource_metadata_and_tier_header_fields_with_bad_values_are_refused_naming_the_field() {
    for (metadata, field) in [
        (json!({}), "resource_metadata"),
        (json!({"resource": ""}), "resource_metadata.resource"),
        (
            json!({"resource": "https://api.example/v1", "cache_max_age_seconds": -1}),
            "resource_metadata.cache_max_age_seconds",
        ),
        (
            json!({"resource": "https://api.example/v1", "scopes_supported": "a b"}),
            "resource_metadata.scopes_supported",
        ),
        (
            json!({"resource": "https://api.example/v1", "authorization_servers": [1]}),
            "resource_metadata.authorization_servers",
        ),
        (
            json!({"resource": ["https://api.example/v1"]}),
            "resource_metadata.resource",
        ),
    ] {
        let error = refusal(|config| config["resource_metadata"] = metadata.clone());
        let error = error.unwrap_or_else(|| panic!("{metadata} was accepted"));
        assert!(error.starts_with(field), "{metadata}: {error}");
    }
    for (header, field) in [
        (
            json!({"header": "x-tier", "claim": "tier", "tiers": "nope"}),
            "identity.headers[0].tiers",
        ),
        (
            json!({"header": "x-tier", "claim": "tier", "tiers": "loyalty", "default": "Diamond"}),
            "identity.headers[0].default",
        ),
        (
            json!({"header": "x-tier", "claim": "tier", "tiers": "loyalty", "default": "bronze"}),
            "identity.headers[0].default",
        ),
        (
            json!({"header": "x-tier", "claim": "tier", "tiers": ["loyalty"]}),
            "identity.headers[0].tiers: invalid type: sequence, expected a string",
        ),
        (
            json!({"header": "x-tier", "first_of": [{"claim": "a", "default": 7}]}),
            "identity.headers[0].first_of[0].default",
        ),
        (
            json!({"header": "x-tier", "claim": "tier", "tier": "loyalty"}),
            "identity.headers[0].tier: unknown field `tier`",
        ),
        (
            json!({"header": "x-tier", "claim": "tier", "default": "Bronze"}),
            "identity.headers[0].default",
        ),
    ] {
        let error = refusal(|config| config["identity"]["headers"][0] = header.clone());
        let error = error.unwrap_or_else(|| panic!("{header} was accepted"));
        assert!(error.starts_with(field), "{header}: {error}");
    }
}
