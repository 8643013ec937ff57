//! The fleet-wide once-only record of proofs in etcd v3, through etcd's HTTP/JSON gateway
//! (`/v3/kv/txn`, `/v3/lease/grant`): the request bodies and how to read the answers.
//! No I/O here; the adapter sends these and pauses the request meanwhile.
//!
//! A proof is recorded by one transaction: if its key was never created
//! (`create_revision == 0`), put it. etcd answers `succeeded: true` to exactly one of any
//! number of identical transactions, whichever replica sends them. Each key is attached
//! to the lease of its time bucket, so keys expire with their bucket and the store stays
//! bounded: buckets are `bucket_seconds` wide, and bucket `b`'s lease lives until
//! `(b + 2) × bucket_seconds`, after every proof of the bucket is stale. Lease ids are
//! derived from the key prefix and the bucket, so every replica grants and uses the
//! same lease (a second grant of an existing id is refused by etcd and taken as done).

use base64ct::{Base64, Encoding};
use serde_json::{json, Value};

use super::replay::ProofId;
use crate::time::UnixSeconds;

/// Paths of etcd's gateway (v3 API, etcd 3.4 and later).
pub const TXN_PATH: &str = "/v3/kv/txn";
pub const LEASE_GRANT_PATH: &str = "/v3/lease/grant";

/// The lease a proof that expires at `expires_at` is attached to: its bucket, id and the
/// TTL to grant it with at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketLease {
    pub bucket: i64,
    pub id: i64,
    pub ttl_seconds: i64,
}

/// The lease of the bucket `expires_at` falls in.
pub fn bucket_lease(
    prefix: &str,
    bucket_seconds: i64,
    expires_at: i64,
    now: UnixSeconds,
) -> BucketLease {
    let now = now.0;
    let width = bucket_seconds.max(1);
    let bucket = expires_at.div_euclid(width);
    let ends = bucket.saturating_add(2).saturating_mul(width);
    // A positive 63-bit id from the prefix and the bucket (FNV-1a), never 0 (0 asks etcd
    // to choose one).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in prefix.bytes().chain(bucket.to_be_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let id = i64::try_from(hash >> 1).unwrap_or(i64::MAX).max(1);
    BucketLease {
        bucket,
        id,
        ttl_seconds: ends.saturating_sub(now).max(width),
    }
}

/// The etcd key of a proof.
pub fn proof_key(prefix: &str, id: ProofId) -> String {
    format!("{prefix}{}", id.to_hex())
}

/// `POST /v3/lease/grant` body.
pub fn lease_grant_body(lease: &BucketLease) -> Vec<u8> {
    json!({"ID": lease.id.to_string(), "TTL": lease.ttl_seconds.to_string()})
        .to_string()
        .into_bytes()
}

/// `POST /v3/kv/txn` body: create `key` with the lease only if it was never created.
pub fn create_if_absent_body(key: &str, lease_id: i64) -> Vec<u8> {
    let key = Base64::encode_string(key.as_bytes());
    json!({
        "compare": [{"key": key, "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
        "success": [{"request_put": {"key": key, "value": Base64::encode_string(b"1"), "lease": lease_id.to_string()}}]
    })
    .to_string()
    .into_bytes()
}

/// What etcd said to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdAnswer {
    /// The transaction put the key: the proof is new to the fleet.
    Created,
    /// The key existed: the proof was used before (on any replica).
    Exists,
    /// The lease was granted (or already existed).
    LeaseReady,
    /// The lease a put named does not exist (expired, or never granted).
    LeaseMissing,
    /// No usable answer: unreachable, timed out, a 5xx or an unreadable body.
    Unavailable(String),
}

/// Reads the answer to a transaction.
pub fn read_txn(status: Option<u16>, body: Option<&[u8]>) -> EtcdAnswer {
    let value = match parse(status, body) {
        Ok(value) => value,
        Err(answer) => return answer,
    };
    if let Some(error) = error_message(&value) {
        if error.contains("requested lease not found") {
            return EtcdAnswer::LeaseMissing;
        }
        return EtcdAnswer::Unavailable(format!("etcd error: {error}"));
    }
    if value.get("header").is_none() {
        return EtcdAnswer::Unavailable("no header in the transaction answer".to_owned());
    }
    // proto3 JSON leaves `succeeded: false` out.
    match value.get("succeeded") {
        Some(Value::Bool(true)) => EtcdAnswer::Created,
        None | Some(Value::Bool(false)) => EtcdAnswer::Exists,
        Some(other) => EtcdAnswer::Unavailable(format!("succeeded is {other}")),
    }
}

/// Reads the answer to a lease grant.
pub fn read_lease_grant(status: Option<u16>, body: Option<&[u8]>) -> EtcdAnswer {
    let value = match parse(status, body) {
        Ok(value) => value,
        Err(answer) => return answer,
    };
    match error_message(&value) {
        Some(error) if error.contains("lease already exists") => EtcdAnswer::LeaseReady,
        Some(error) => EtcdAnswer::Unavailable(format!("etcd error: {error}")),
        None if value.get("ID").is_some() => EtcdAnswer::LeaseReady,
        None => EtcdAnswer::Unavailable("no ID in the lease grant answer".to_owned()),
    }
}

fn parse(status: Option<u16>, body: Option<&[u8]>) -> Result<Value, EtcdAnswer> {
    let status = status.ok_or_else(|| {
        EtcdAnswer::Unavailable("no answer (unreachable or timed out)".to_owned())
    })?;
    let value: Option<Value> = body.and_then(|body| serde_json::from_slice(body).ok());
    match (status, value) {
        // Errors come with a JSON body (4xx/5xx) naming them; the lease ones are
        // expected, the rest make the record unavailable.
        (_, Some(value)) if error_message(&value).is_some() => Ok(value),
        (200, Some(value)) => Ok(value),
        (200, None) => Err(EtcdAnswer::Unavailable("unreadable answer".to_owned())),
        (status, _) => Err(EtcdAnswer::Unavailable(format!(
            "status {status}{}",
            body_excerpt(body)
        ))),
    }
}

/// The start of an answer that is not etcd's JSON (e.g. Envoy's own local reply), printable
/// and short, for the log line that says why the record was unavailable.
fn body_excerpt(body: Option<&[u8]>) -> String {
    const LIMIT: usize = 120;
    let Some(body) = body.filter(|body| !body.is_empty()) else {
        return String::new();
    };
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(LIMIT)
        .collect();
    format!(": {}", text.trim())
}

fn error_message(value: &Value) -> Option<&str> {
    value
        .get("error")
        .or_else(|| value.get("message"))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_to_the_lease_of_their_bucket_which_outlives_every_proof_in_it() {
        let now = 1_000_000;
        for expires_at in [now + 1, now + 59, now + 60, now + 61, now + 65] {
            let lease = bucket_lease("p/", 60, expires_at, UnixSeconds(now));
            assert!(now + lease.ttl_seconds >= expires_at, "{lease:?}");
            assert!(lease.ttl_seconds <= 3 * 60, "{lease:?}");
            assert!(lease.id > 0);
            // Same bucket, same lease, whichever replica asks and when.
            assert_eq!(
                bucket_lease("p/", 60, expires_at, UnixSeconds(now + 5)).id,
                lease.id
            );
        }
        assert_ne!(
            bucket_lease("p/", 60, now, UnixSeconds(now)).id,
            bucket_lease("p/", 60, now + 60, UnixSeconds(now)).id
        );
        assert_ne!(
            bucket_lease("p/", 60, now, UnixSeconds(now)).id,
            bucket_lease("q/", 60, now, UnixSeconds(now)).id
        );
    }

    #[test]
    fn transaction_bodies_and_answers() {
        let id = ProofId::new("jkt", "jti");
        let key = proof_key("claimgate/dpop/", id);
        assert_eq!(key.len(), "claimgate/dpop/".len() + 32);
        let body: Value = serde_json::from_slice(&create_if_absent_body(&key, 42)).unwrap();
        let encoded = Base64::encode_string(key.as_bytes());
        assert_eq!(body["compare"][0]["key"], json!(encoded));
        assert_eq!(body["compare"][0]["target"], "CREATE");
        assert_eq!(body["success"][0]["request_put"]["lease"], "42");
        let header = r#""header":{"revision":"5"}"#;
        let answer = |body: &str| read_txn(Some(200), Some(body.as_bytes()));
        assert_eq!(
            answer(&format!("{{{header},\"succeeded\":true}}")),
            EtcdAnswer::Created
        );
        assert_eq!(answer(&format!("{{{header}}}")), EtcdAnswer::Exists);
        assert_eq!(
            read_txn(
                Some(400),
                Some(br#"{"error":"etcdserver: requested lease not found","code":5}"#)
            ),
            EtcdAnswer::LeaseMissing
        );
        for (status, body) in [
            (None, None),
            (Some(503), Some(&b"upstream connect error"[..])),
            (Some(200), Some(&b"{}"[..])),
            (Some(200), Some(&b"not json"[..])),
            (
                Some(500),
                Some(&br#"{"error":"etcdserver: request timed out","code":14}"#[..]),
            ),
        ] {
            assert!(
                matches!(read_txn(status, body), EtcdAnswer::Unavailable(_)),
                "{status:?} {body:?}"
            );
        }
        // An answer that is not etcd's says what it was, shortened and printable.
        let long = format!("upstream connect error\n{}", "x".repeat(500));
        let EtcdAnswer::Unavailable(why) = read_txn(Some(503), Some(long.as_bytes())) else {
            panic!("a 503 is unavailable");
        };
        assert!(
            why.starts_with("status 503: upstream connect error x"),
            "{why}"
        );
        assert!(why.len() < 160, "{why}");
        assert_eq!(
            read_lease_grant(Some(200), Some(br#"{"header":{},"ID":"7","TTL":"120"}"#)),
            EtcdAnswer::LeaseReady
        );
        assert_eq!(
            read_lease_grant(
                Some(400),
                Some(br#"{"error":"etcdserver: lease already exists","code":9}"#)
            ),
            EtcdAnswer::LeaseReady
        );
        assert!(matches!(
            read_lease_grant(Some(503), None),
            EtcdAnswer::Unavailable(_)
        ));
        let lease: Value = serde_json::from_slice(&lease_grant_body(&bucket_lease(
            "p/",
            60,
            1000,
            UnixSeconds(900),
        )))
        .unwrap();
        assert_eq!(lease["TTL"], "180");
    }
}
