//! Token claims and the clock, for every test binary that signs tokens.

use serde_json::{json, Value};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// `extra`'s members set on `base`; both must be JSON objects (a test that merges
/// anything else fails instead of running with the defaults).
pub fn merge(base: &mut Value, extra: Value) {
    let Value::Object(extra) = extra else {
        panic!("not a JSON object to merge: {extra}");
    };
    match base {
        Value::Object(base) => base.extend(extra),
        other => panic!("not a JSON object to merge into: {other}"),
    }
}

/// The claims of a token for `audience` from `issuer`, issued now and valid for ten
/// minutes, with `extra` claims (`sub`, or others in place of these) merged in.
pub fn claims(issuer: &str, audience: &str, extra: Value) -> Value {
    let mut claims = json!({"iss": issuer, "aud": audience, "iat": now(), "exp": now() + 600});
    merge(&mut claims, extra);
    claims
}
