//! The JSON Schema (`filter-config/claimgate.schema.json`) and the serde structs of
//! [`super::raw`] must accept the same fields. Checked both ways at every object the
//! schema closes (`additionalProperties` / `unevaluatedProperties: false`):
//!
//! - every property the schema lists there is not an "unknown field" to the parser;
//! - every field the parser accepts there (serde lists them when it refuses a probe) is
//!   in the schema, or is one of [`COMPILER_REFUSES`], which the compiler then refuses.
//!
//! A new closed object in the schema must get a [`Spot`] here, so nothing is skipped by
//! accident. Conditions are checked against the operator table in `policy::condition`.

use serde_json::{json, Value};

use super::Config;
use crate::mint::SigningKey;

/// Where one closed schema object lives in a configuration.
struct Spot {
    /// JSON pointer of the object in the schema.
    schema: &'static str,
    /// Whether the base configuration uses discovery (else a remote JWKS).
    discovery: bool,
    /// JSON pointer of the object in the base configuration.
    config: &'static str,
}

const SPOTS: [Spot; 17] = [
    spot("", "", false),
    spot("/properties/token_cache", "/token_cache", false),
    spot("/properties/dpop_proofs", "/dpop_proofs", false),
    spot(
        "/properties/dpop_proofs/properties/shared_record",
        "/dpop_proofs/shared_record",
        false,
    ),
    spot(
        "/properties/dpop_proofs/properties/nonce_secrets",
        "/dpop_proofs/nonce_secrets",
        false,
    ),
    spot("/properties/resource_metadata", "/resource_metadata", false),
    spot("/$defs/provider", "/providers/0", false),
    spot(
        "/$defs/provider/properties/jwks",
        "/providers/0/jwks",
        false,
    ),
    spot("/$defs/remote_source", "/providers/0/jwks/remote", false),
    spot(
        "/$defs/discovery_source",
        "/providers/0/jwks/discovery",
        true,
    ),
    spot("/$defs/location", "/providers/0/from/0", false),
    spot("/$defs/rule", "/rules/0", false),
    spot("/$defs/rule/properties/match", "/rules/0/match", false),
    spot("/$defs/rule/properties/step_up", "/rules/0/step_up", false),
    spot("/$defs/identity", "/identity", false),
    spot("/$defs/header", "/identity/headers/0", false),
    spot(
        "/$defs/nested_source",
        "/identity/headers/0/first_of/0",
        false,
    ),
];

const fn spot(schema: &'static str, config: &'static str, discovery: bool) -> Spot {
    Spot {
        schema,
        discovery,
        config,
    }
}

/// Closed schema objects checked elsewhere.
const CHECKED_ELSEWHERE: [&str; 4] = [
    // Operands and operators: `policy::condition` tests them against the schema.
    "/$defs/test",
    // `all`, `any`, `not`: parsed by hand in `policy::compile::condition`.
    "/$defs/condition/oneOf/0",
    "/$defs/condition/oneOf/1",
    "/$defs/condition/oneOf/2",
];

/// Fields the parser takes at a spot that the schema leaves out because the compiler
/// refuses them there: (spot, field, a well-typed value).
const COMPILER_REFUSES: [(&str, &str, &str); 2] = [
    // One shape for `remote` and `discovery`; these two only go with discovery.
    ("/$defs/remote_source", "jwks_cluster", "\"keys\""),
    (
        "/$defs/remote_source",
        "allow_cross_origin_jwks_uri",
        "true",
    ),
];

fn schema() -> Value {
    serde_json::from_str(include_str!("../../filter-config/claimgate.schema.json")).unwrap()
}

/// A configuration that compiles and has an object at every spot.
fn base(discovery: bool) -> Value {
    let key = SigningKey::generate(crate::jwks::Alg::Hs256, Some("h")).unwrap();
    let source = if discovery {
        json!({"discovery": {"cluster": "idp"}})
    } else {
        json!({"remote": {"cluster": "idp", "path": "/jwks", "authority": "idp.example"}})
    };
    let mut jwks = json!({"inline": {"keys": [key.public_jwk()]}});
    crate::test_support::merge(&mut jwks, source);
    json!({
        "providers": [{
            "name": "idp",
            "issuer": "https://idp.example/",
            "audiences": ["api"],
            "algorithms": ["HS256"],
            "jwks": jwks,
            "from": [{"header": "authorization", "prefix": "Bearer "}]
        }],
        "rules": [{"match": {"prefix": "/"}, "access": "authenticated", "step_up": {"max_age_seconds": 60}}],
        "identity": {"headers": [{"header": "x-a", "first_of": [{"claim": "sub"}]}]},
        "token_cache": {},
        "dpop_proofs": {"use_dpop_nonce": true, "nonce_secrets": {"current_env": "N"},
            "shared_record": {"cluster": "etcd", "authority": "etcd"}},
        "resource_metadata": {"resource": "https://api.example.com/v1"}
    })
}

/// The property names of a schema object, following `allOf` references.
fn schema_properties(schema: &Value, object: &Value) -> Vec<String> {
    let mut names: Vec<String> = object
        .get("properties")
        .and_then(Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default();
    for part in object["allOf"].as_array().into_iter().flatten() {
        let part = match part["$ref"].as_str() {
            Some(reference) => schema
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("no {reference} in the schema")),
            None => part,
        };
        names.extend(schema_properties(schema, part));
    }
    names
}

/// The configuration with `field: value` added to the object at `at`, compiled.
fn with_field(discovery: bool, at: &str, field: &str, value: Value) -> Result<Config, String> {
    let mut config = base(discovery);
    config
        .pointer_mut(at)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("no object at {at}"))
        .insert(field.to_owned(), value);
    Config::from_json(config.to_string().as_bytes()).map_err(|err| err.to_string())
}

/// The fields serde accepts at `at`, from its refusal of an unknown one ("expected one of
/// `a`, `b`"); `None` when it does not list them (a flattened struct).
fn parser_fields(discovery: bool, at: &str) -> Option<Vec<String>> {
    let err = with_field(discovery, at, "__probe__", json!(1)).unwrap_err();
    assert!(err.contains("unknown field `__probe__`"), "{at}: {err}");
    let (_, expected) = err.split_once("expected ")?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// Every closed object of the schema, as JSON pointers.
fn closed_objects(value: &Value, pointer: &str, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            let closed = [
                object.get("additionalProperties"),
                object.get("unevaluatedProperties"),
            ]
            .contains(&Some(&Value::Bool(false)));
            if closed {
                found.push(pointer.to_owned());
            }
            for (key, inner) in object {
                let key = key.replace('~', "~0").replace('/', "~1");
                closed_objects(inner, &format!("{pointer}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                closed_objects(inner, &format!("{pointer}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn the_base_configurations_compile() {
    for discovery in [false, true] {
        Config::from_json(base(discovery).to_string().as_bytes()).unwrap();
    }
}

#[test]
fn every_closed_schema_object_is_checked() {
    let mut found = Vec::new();
    closed_objects(&schema(), "", &mut found);
    for pointer in found {
        assert!(
            SPOTS.iter().any(|spot| spot.schema == pointer)
                || CHECKED_ELSEWHERE.contains(&pointer.as_str()),
            "the schema closes {pointer}: add a Spot for it in config/schema_tests.rs"
        );
    }
}

#[test]
fn every_schema_property_is_a_field_the_parser_takes() {
    let schema = schema();
    for spot in &SPOTS {
        let object = schema.pointer(spot.schema).unwrap();
        for name in schema_properties(&schema, object) {
            if let Err(err) = with_field(spot.discovery, spot.config, &name, Value::Null) {
                assert!(
                    !err.contains(&format!("unknown field `{name}`")),
                    "{}: the schema lists \"{name}\" but the parser refuses it: {err}",
                    spot.schema
                );
            }
        }
    }
}

#[test]
fn every_field_the_parser_takes_is_in_the_schema() {
    let schema = schema();
    for spot in &SPOTS {
        let Some(fields) = parser_fields(spot.discovery, spot.config) else {
            // A flattened struct: its parts are spots of their own.
            continue;
        };
        let object = schema.pointer(spot.schema).unwrap();
        let listed = schema_properties(&schema, object);
        for field in fields {
            if listed.contains(&field) {
                continue;
            }
            let refused = COMPILER_REFUSES
                .iter()
                .find(|(at, name, _)| *at == spot.schema && *name == field);
            let Some((_, _, value)) = refused else {
                panic!(
                    "{}: the parser takes \"{field}\" but the schema does not list it",
                    spot.schema
                );
            };
            let value: Value = serde_json::from_str(value).unwrap();
            let err = with_field(spot.discovery, spot.config, &field, value).unwrap_err();
            assert!(err.contains(&field), "{}: {field}: {err}", spot.schema);
        }
    }
}
