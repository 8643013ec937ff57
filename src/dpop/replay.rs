//! Once only: a DPoP proof's `jti` is accepted once while the proof is fresh (RFC 9449
//! §11.1). The record of used proofs must hold across every worker of an Envoy, so the
//! adapter keeps it in proxy-wasm shared data; this module is the part that is plain
//! logic — which record a proof goes to, and what the record becomes — and an in-memory
//! guard for the CLI and tests.
//!
//! **Bound.** The record is split into shards (one shared-data entry each) of at most
//! `per_shard` entries of 24 bytes (a 64-bit key id, a 64-bit proof id and the expiry).
//! An entry lives until the proof it records would be refused as stale anyway
//! (`iat + max_age_seconds + 1`), and expired entries are dropped whenever their shard is
//! written. A shard that is still full of live entries refuses a new proof (503, never a
//! forgotten proof), so the memory is at most `replay_cache_entries` × 24 bytes per
//! Envoy, and the sustained rate of DPoP requests it admits is about
//! `replay_cache_entries / max_age_seconds` per second (65 536 / 60 s ≈ 1 000 proofs
//! per second with the defaults).
//!
//! **Fairness.** The client picks the `jti`, so one client's proofs spread over every
//! shard. One proof key (one `jwk` thumbprint, so one bound token's `cnf.jkt`) may hold
//! at most an eighth of each shard ([`KEY_SHARE`]); its next proof in a shard where it
//! holds that many is refused with [`ReplayError::KeyQuota`] (429 with `Retry-After`,
//! never a forgotten proof) until one of its own entries there expires. So one key
//! sustains about `replay_cache_entries / 8 / max_age_seconds` proofs per second (≈ 136
//! with the defaults) and can never take more than an eighth of the record from other
//! keys: exhausting it takes eight keys, that is eight tokens the issuer bound.
//! Live entries are never evicted — that would let a replay through.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crate::time::UnixSeconds;
use sha2::{Digest, Sha256};

/// Why a proof could not be recorded as used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The proof was used before (and is still fresh).
    Replayed,
    /// The proof's key already holds its share of the shard: refuse (429) until one of
    /// its entries there expires, in `retry_after` seconds.
    KeyQuota { retry_after: i64 },
    /// The record is full of live proofs: refuse (503) rather than forget one.
    Full,
    /// The shared record could not be read or written (or was contended beyond retries).
    Unavailable,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Replayed => f.write_str("the DPoP proof was used before"),
            ReplayError::KeyQuota { retry_after } => write!(
                f,
                "the DPoP key holds its share of the proof record (retry after {retry_after} s)"
            ),
            ReplayError::Full => f.write_str("the DPoP proof record is full"),
            ReplayError::Unavailable => f.write_str("the DPoP proof record is unavailable"),
        }
    }
}

impl std::error::Error for ReplayError {}

/// A proof's identity in the record: 64 bits of SHA-256 over the key thumbprint (the
/// key, for its quota) and 64 bits over the thumbprint and the `jti` (the proof; the
/// client picks the `jti`; a collision only refuses, never admits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProofId {
    key: u64,
    proof: u64,
}

/// The `index`th big-endian 64-bit word of `bytes` (of a digest, or of a record entry:
/// key, proof, expiry). Read byte by byte, so there is no short slice to fall back from.
fn be_word(bytes: &[u8], index: usize) -> u64 {
    bytes
        .iter()
        .skip(index * 8)
        .take(8)
        .fold(0, |word, byte| (word << 8) | u64::from(*byte))
}

impl ProofId {
    pub fn new(jkt: &str, jti: &str) -> ProofId {
        let proof = Sha256::new_with_prefix(jkt.as_bytes())
            .chain_update([0])
            .chain_update(jti.as_bytes())
            .finalize();
        let key = Sha256::new_with_prefix(b"claimgate-dpop-key\0")
            .chain_update(jkt.as_bytes())
            .finalize();
        ProofId {
            key: be_word(&key, 0),
            proof: be_word(&proof, 0),
        }
    }

    /// The id as 32 hex digits (key, then proof): a stable name for a shared record.
    pub fn to_hex(&self) -> String {
        format!("{:016x}{:016x}", self.key, self.proof)
    }
}

/// Records each proof once. `first_use` succeeds only the first time it is called with a
/// proof (until `expires_at`).
pub trait ReplayGuard {
    fn first_use(&self, id: ProofId, expires_at: i64, now: UnixSeconds) -> Result<(), ReplayError>;
}

/// Bytes of one entry: key id, proof id and expiry, big-endian.
const ENTRY: usize = 24;

/// The part of each shard one proof key may hold: one entry in `KEY_SHARE`.
pub const KEY_SHARE: usize = 8;

/// How the record is split into shared-data entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayShards {
    shards: u64,
    per_shard: usize,
    per_key: usize,
}

impl ReplayShards {
    /// Shards of at most 256 entries (6 KiB, copied on each write), at most 4096 of them.
    pub fn new(total_entries: usize) -> ReplayShards {
        let shards = total_entries.div_ceil(256).clamp(1, 4096);
        let per_shard = total_entries.div_ceil(shards).max(1);
        ReplayShards {
            shards: shards as u64,
            per_shard,
            per_key: (per_shard / KEY_SHARE).max(1),
        }
    }

    /// The shared-data key of the shard `id` belongs to.
    pub fn key(&self, id: ProofId) -> String {
        format!("claimgate/dpop-replay/{}", id.proof % self.shards)
    }

    /// The shard record after recording `id`: expired entries dropped, `id` added.
    pub fn insert(
        &self,
        record: Option<&[u8]>,
        id: ProofId,
        expires_at: i64,
        now: UnixSeconds,
    ) -> Result<Vec<u8>, ReplayError> {
        let now = now.0;
        let record = record.unwrap_or_default();
        if record.len() % ENTRY != 0 {
            return Err(ReplayError::Unavailable);
        }
        let mut kept = Vec::with_capacity(record.len() + ENTRY);
        // The key's live entries in this shard, and the first of them to expire.
        let mut held = 0_usize;
        let mut first_expiry = i64::MAX;
        for entry in record.chunks_exact(ENTRY) {
            let key = be_word(entry, 0);
            let proof = be_word(entry, 1);
            let expiry = be_word(entry, 2) as i64;
            if expiry <= now {
                continue;
            }
            if proof == id.proof {
                return Err(ReplayError::Replayed);
            }
            if key == id.key {
                held += 1;
                first_expiry = first_expiry.min(expiry);
            }
            kept.extend_from_slice(entry);
        }
        if held >= self.per_key {
            return Err(ReplayError::KeyQuota {
                retry_after: first_expiry.saturating_sub(now).max(1),
            });
        }
        if kept.len() / ENTRY >= self.per_shard {
            return Err(ReplayError::Full);
        }
        kept.extend_from_slice(&id.key.to_be_bytes());
        kept.extend_from_slice(&id.proof.to_be_bytes());
        kept.extend_from_slice(&expires_at.to_be_bytes());
        Ok(kept)
    }
}

/// The record in memory, for one process: `claimgate eval` and `claimgate test` (a case
/// file may replay a proof of an earlier case) and the native tests.
#[derive(Debug, Default)]
pub struct MemoryReplayGuard {
    used: RefCell<HashMap<ProofId, i64>>,
}

impl ReplayGuard for MemoryReplayGuard {
    fn first_use(&self, id: ProofId, expires_at: i64, now: UnixSeconds) -> Result<(), ReplayError> {
        let now = now.0;
        let mut used = self.used.borrow_mut();
        used.retain(|_, expiry| *expiry > now);
        if used.contains_key(&id) {
            return Err(ReplayError::Replayed);
        }
        used.insert(id, expires_at);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(key: u64, proof: u64) -> ProofId {
        ProofId { key, proof }
    }

    #[test]
    fn a_shard_refuses_a_live_proof_twice_forgets_expired_ones_and_never_overflows() {
        let shards = ReplayShards::new(256);
        assert_eq!(shards.key(id(1, 7)), "claimgate/dpop-replay/0");
        let first = shards.insert(None, id(1, 1), 100, UnixSeconds(0)).unwrap();
        assert_eq!(
            shards.insert(Some(&first), id(1, 1), 100, UnixSeconds(50)),
            Err(ReplayError::Replayed)
        );
        // Expired: dropped, and the proof (stale by then anyway) is new to the record.
        let again = shards
            .insert(Some(&first), id(1, 1), 200, UnixSeconds(100))
            .unwrap();
        assert_eq!(again.len(), ENTRY);
        // 256 proofs by 256 keys fill the shard; the next is refused, whatever its key.
        let mut record = Vec::new();
        for n in 0..256 {
            record = shards
                .insert(Some(&record), id(n, n), 100, UnixSeconds(0))
                .unwrap();
        }
        assert_eq!(
            shards.insert(Some(&record), id(999, 999), 100, UnixSeconds(0)),
            Err(ReplayError::Full)
        );
        assert!(shards
            .insert(Some(&record), id(999, 999), 200, UnixSeconds(100))
            .is_ok());
        assert_eq!(
            shards.insert(Some(&[1, 2, 3]), id(1, 1), 1, UnixSeconds(0)),
            Err(ReplayError::Unavailable)
        );
    }

    #[test]
    fn one_key_holds_at_most_an_eighth_of_a_shard_and_others_keep_the_rest() {
        let shards = ReplayShards::new(256);
        assert_eq!(shards.per_key, 32);
        let mut record = Vec::new();
        // The flooding key: 32 proofs expiring at 100..132 pass, the 33rd is refused
        // until its first entry expires (at 100, so in 90 s at 10) — and not recorded.
        for n in 0..32 {
            record = shards
                .insert(Some(&record), id(1, n), 100 + n as i64, UnixSeconds(0))
                .unwrap();
        }
        assert_eq!(
            shards.insert(Some(&record), id(1, 1000), 160, UnixSeconds(10)),
            Err(ReplayError::KeyQuota { retry_after: 90 })
        );
        // A replay is still a replay, not a quota refusal.
        assert_eq!(
            shards.insert(Some(&record), id(1, 5), 160, UnixSeconds(10)),
            Err(ReplayError::Replayed)
        );
        // Every other key keeps the other 7/8 of the shard.
        for other in 2..9 {
            for n in 0..32 {
                record = shards
                    .insert(
                        Some(&record),
                        id(other, other * 1000 + n),
                        100,
                        UnixSeconds(0),
                    )
                    .unwrap();
            }
        }
        assert_eq!(record.len(), 256 * ENTRY);
        // Once the flooding key's first entry expires it may record one more.
        assert!(shards
            .insert(Some(&record), id(1, 1000), 160, UnixSeconds(100))
            .is_ok());
        // A quota answer never asks for less than a second.
        let one = shards.insert(None, id(3, 1), 5, UnixSeconds(0)).unwrap();
        let tiny = ReplayShards::new(8);
        assert_eq!(tiny.per_key, 1);
        assert_eq!(
            tiny.insert(Some(&one), id(3, 2), 5, UnixSeconds(5 - 1)),
            Err(ReplayError::KeyQuota { retry_after: 1 })
        );
    }

    #[test]
    fn shards_bound_the_record_to_the_configured_entries() {
        let shards = ReplayShards::new(65_536);
        assert_eq!(
            (shards.shards, shards.per_shard, shards.per_key),
            (256, 256, 32)
        );
        let small = ReplayShards::new(300);
        assert_eq!((small.shards, small.per_shard, small.per_key), (2, 150, 18));
        assert_ne!(ProofId::new("k", "a"), ProofId::new("k", "b"));
        assert_eq!(ProofId::new("k", "a").key, ProofId::new("k", "b").key);
        assert_ne!(ProofId::new("ka", ""), ProofId::new("k", "a"));
        assert_ne!(ProofId::new("ka", "").key, ProofId::new("k", "a").key);
    }

    #[test]
    fn the_memory_guard_accepts_a_proof_once_while_it_is_fresh() {
        let guard = MemoryReplayGuard::default();
        let id = ProofId::new("jkt", "jti-1");
        assert_eq!(guard.first_use(id, 60, UnixSeconds(0)), Ok(()));
        assert_eq!(
            guard.first_use(id, 60, UnixSeconds(59)),
            Err(ReplayError::Replayed)
        );
        assert_eq!(guard.first_use(id, 120, UnixSeconds(60)), Ok(()));
    }
}
