//! What DPoP needs from the whole Envoy, kept in proxy-wasm shared data so every worker
//! agrees: the once-only record of proofs (one record per shard, updated by
//! compare-and-swap) and the key server nonces are made with.

use std::cell::Cell;

use crate::dpop::{NonceKey, ProofId, ReplayError, ReplayGuard, ReplayShards};

use super::host::Host;
use super::shared_data::{cas_update, CasFailure, Update, CAS_ATTEMPTS};
use crate::time::UnixSeconds;

/// The shared-data record of the nonce key.
const NONCE_KEY: &str = "claimgate/dpop-nonce-key";

/// The once-only record in shared data. A shard is read with its CAS and written back
/// only if no other worker wrote it in between (else read again); a missing shard is
/// created with [`CAS_CREATE`](super::shared_data::CAS_CREATE), which the host refuses once another worker created it —
/// so no worker's entry is ever overwritten.
pub struct SharedReplay<'h> {
    pub host: &'h dyn Host,
    pub shards: ReplayShards,
    /// The proof this record took (at most one per decision), for the fleet-wide record.
    pub recorded: Cell<Option<(ProofId, i64)>>,
}

/// A record that gives one answer: how a request is decided again once the fleet-wide
/// record answered that its proof was used before, or could not answer.
pub struct FixedAnswer(pub ReplayError);

impl ReplayGuard for FixedAnswer {
    fn first_use(
        &self,
        _id: ProofId,
        _expires_at: i64,
        _now: UnixSeconds,
    ) -> Result<(), ReplayError> {
        Err(self.0)
    }
}

impl ReplayGuard for SharedReplay<'_> {
    fn first_use(&self, id: ProofId, expires_at: i64, now: UnixSeconds) -> Result<(), ReplayError> {
        let key = self.shards.key(id);
        let inserted = cas_update(self.host, &key, |record| {
            let updated = self.shards.insert(record, id, expires_at, now)?;
            Ok(Update::Write(updated, ()))
        });
        match inserted {
            Ok(()) => {
                self.recorded.set(Some((id, expires_at)));
                Ok(())
            }
            Err(CasFailure::Refused(error)) => Err(error),
            Err(CasFailure::Unavailable) => Err(ReplayError::Unavailable),
            Err(CasFailure::Contended) => {
                log::warn!(
                    "claimgate: DPoP replay record {key} contended beyond {CAS_ATTEMPTS} attempts"
                );
                Err(ReplayError::Unavailable)
            }
        }
    }
}

/// The nonce key every worker of this Envoy uses: created once (by the first worker to
/// need it) and read from shared data each time, so a nonce one worker issued is
/// accepted by all. `None` when shared data fails (nonce checks then answer 503).
pub fn shared_nonce_key(host: &dyn Host) -> Option<NonceKey> {
    let key = cas_update(host, NONCE_KEY, |existing| match existing {
        Some(bytes) => Ok::<_, ()>(Update::Keep(NonceKey::from_bytes(bytes))),
        // Created only if absent: when another worker created it first, the next
        // attempt reads and uses that one.
        None => {
            let key = NonceKey::random().ok_or(())?;
            Ok(Update::Write(key.as_bytes().to_vec(), Some(key)))
        }
    });
    key.ok().flatten()
}
