//! Once only: a DPoP proof's `jti` is accepted once while the proof is fresh (RFC 9449
//! §11.1). The record of used proofs must hold across every worker of an Envoy, so the
//! adapter keeps it in proxy-wasm shared data; this module is the part that is plain
//! logic — which record a proof goes to, and what the record becomes — and an in-memory
//! guard for the CLI and tests.
//!
//! **Bound.** The record is split into shards (one shared-data entry each) of at most
//! `per_shard` entries of 16 bytes (a 64-bit proof id and its expiry). An entry lives
//! until the proof it records would be refused as stale anyway
//! (`iat + max_age_seconds + 1`), and expired entries are dropped whenever their shard is
//! written. A shard that is
//! still full of live entries refuses a new proof (503, never a forgotten proof), so the
//! memory is at most `replay_cache_entries` × 16 bytes per Envoy, and the sustained rate
//! of DPoP requests it admits is about `replay_cache_entries / max_age_seconds` per
//! second (65 536 / 60 s ≈ 1 000 proofs per second with the defaults).

use std::cell::RefCell;
use std::collections::HashMap;

use sha2::{Digest, Sha256};

/// Why a proof could not be recorded as used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The proof was used before (and is still fresh).
    Replayed,
    /// The record is full of live proofs: refuse (503) rather than forget one.
    Full,
    /// The shared record could not be read or written (or was contended beyond retries).
    Unavailable,
}

/// A proof's identity in the record: 64 bits of SHA-256 over the key thumbprint and the
/// `jti` (the client picks the `jti`; a collision only refuses, never admits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProofId(u64);

impl ProofId {
    pub fn new(jkt: &str, jti: &str) -> ProofId {
        let digest = Sha256::new_with_prefix(jkt.as_bytes())
            .chain_update([0])
            .chain_update(jti.as_bytes())
            .finalize();
        let mut first = [0_u8; 8];
        first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        ProofId(u64::from_be_bytes(first))
    }
}

/// Records each proof once. `first_use` succeeds only the first time it is called with a
/// proof (until `expires_at`).
pub trait ReplayGuard {
    fn first_use(&self, id: ProofId, expires_at: i64, now: i64) -> Result<(), ReplayError>;
}

/// Bytes of one entry: proof id and expiry, big-endian.
const ENTRY: usize = 16;

/// How the record is split into shared-data entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayShards {
    shards: u64,
    per_shard: usize,
}

impl ReplayShards {
    /// Shards of at most 256 entries (4 KiB, copied on each write), at most 4096 of them.
    pub fn new(total_entries: usize) -> ReplayShards {
        let shards = total_entries.div_ceil(256).clamp(1, 4096);
        ReplayShards {
            shards: shards as u64,
            per_shard: total_entries.div_ceil(shards).max(1),
        }
    }

    /// The shared-data key of the shard `id` belongs to.
    pub fn key(&self, id: ProofId) -> String {
        format!("claimgate/dpop-replay/{}", id.0 % self.shards)
    }

    /// The shard record after recording `id`: expired entries dropped, `id` added.
    pub fn insert(
        &self,
        record: Option<&[u8]>,
        id: ProofId,
        expires_at: i64,
        now: i64,
    ) -> Result<Vec<u8>, ReplayError> {
        let record = record.unwrap_or_default();
        if record.len() % ENTRY != 0 {
            return Err(ReplayError::Unavailable);
        }
        let mut kept = Vec::with_capacity(record.len() + ENTRY);
        for entry in record.chunks_exact(ENTRY) {
            let (known, expiry) = entry.split_at(8);
            let known = u64::from_be_bytes(known.try_into().unwrap_or_default());
            let expiry = i64::from_be_bytes(expiry.try_into().unwrap_or_default());
            if expiry <= now {
                continue;
            }
            if known == id.0 {
                return Err(ReplayError::Replayed);
            }
            kept.extend_from_slice(entry);
        }
        if kept.len() / ENTRY >= self.per_shard {
            return Err(ReplayError::Full);
        }
        kept.extend_from_slice(&id.0.to_be_bytes());
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
    fn first_use(&self, id: ProofId, expires_at: i64, now: i64) -> Result<(), ReplayError> {
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

    #[test]
    fn a_shard_refuses_a_live_proof_twice_forgets_expired_ones_and_never_overflows() {
        let shards = ReplayShards::new(256);
        assert_eq!(shards.key(ProofId(7)), "claimgate/dpop-replay/0");
        let first = shards.insert(None, ProofId(1), 100, 0).unwrap();
        assert_eq!(
            shards.insert(Some(&first), ProofId(1), 100, 50),
            Err(ReplayError::Replayed)
        );
        // Expired: dropped, and the proof (stale by then anyway) is new to the record.
        let again = shards.insert(Some(&first), ProofId(1), 200, 100).unwrap();
        assert_eq!(again.len(), ENTRY);
        let mut record = Vec::new();
        for id in 0..256 {
            record = shards.insert(Some(&record), ProofId(id), 100, 0).unwrap();
        }
        assert_eq!(
            shards.insert(Some(&record), ProofId(999), 100, 0),
            Err(ReplayError::Full)
        );
        assert!(shards.insert(Some(&record), ProofId(999), 200, 100).is_ok());
        assert_eq!(
            shards.insert(Some(&[1, 2, 3]), ProofId(1), 1, 0),
            Err(ReplayError::Unavailable)
        );
    }

    #[test]
    fn shards_bound_the_record_to_the_configured_entries() {
        let shards = ReplayShards::new(65_536);
        assert_eq!((shards.shards, shards.per_shard), (256, 256));
        let small = ReplayShards::new(300);
        assert_eq!((small.shards, small.per_shard), (2, 150));
        assert_ne!(ProofId::new("k", "a"), ProofId::new("k", "b"));
        assert_ne!(ProofId::new("ka", ""), ProofId::new("k", "a"));
    }

    #[test]
    fn the_memory_guard_accepts_a_proof_once_while_it_is_fresh() {
        let guard = MemoryReplayGuard::default();
        let id = ProofId::new("jkt", "jti-1");
        assert_eq!(guard.first_use(id, 60, 0), Ok(()));
        assert_eq!(guard.first_use(id, 60, 59), Err(ReplayError::Replayed));
        assert_eq!(guard.first_use(id, 120, 60), Ok(()));
    }
}
