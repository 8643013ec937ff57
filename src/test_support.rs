//! Test helpers. JSON objects merged, loudly: a test that merges a non-object (a mistyped
//! `extra`) fails instead of silently running with the defaults.

use serde_json::Value;

/// `extra`'s members set on `base`; both must be objects.
pub(crate) fn merge(base: &mut Value, extra: Value) {
    let Value::Object(extra) = extra else {
        panic!("not a JSON object to merge: {extra}");
    };
    match base {
        serde_json::Value::Object(base) => base.extend(extra),
        other => panic!("not a JSON object to merge into: {other}"),
    }
}
