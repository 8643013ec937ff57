//! Read-modify-write of proxy-wasm shared data, the one way every worker of an Envoy
//! agrees on a record: read it with its CAS, compute the next value, write it only if no
//! other worker wrote in between, and read again when one did. Used by the remote key
//! sources' control records and DPoP's once-only record and nonce key, so the retry bound
//! and the create-only CAS are decided once, here.

use super::host::{Host, HostError};

/// The CAS value used to create a record only if it does not exist yet: the host creates
/// a missing key whatever the CAS, and refuses to overwrite an existing one whose CAS
/// differs. CAS values count up from 1, so an existing record never has this one in
/// practice.
pub const CAS_CREATE: u32 = u32::MAX;
/// Compare-and-swap attempts before giving up (until the next tick, or with the record's
/// "unavailable" answer): bounded, so a contended record cannot hold a worker.
pub const CAS_ATTEMPTS: usize = 8;

/// What [`cas_update`]'s computation makes of the record it read.
pub enum Update<T> {
    /// Write these bytes; once written, the update answers `T`.
    Write(Vec<u8>, T),
    /// Leave the record as it is and answer `T`.
    Keep(T),
}

/// Why [`cas_update`] wrote nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum CasFailure<E> {
    /// The host could not read or write the record (logged here).
    Unavailable,
    /// Other workers wrote the record each time, [`CAS_ATTEMPTS`] times.
    Contended,
    /// The computation refused, with its reason.
    Refused(E),
}

/// Reads `key` (`None`: no record yet), lets `compute` decide, and writes its bytes with
/// compare-and-swap: with the CAS read, or [`CAS_CREATE`] for a record that did not exist,
/// so no other worker's write is ever overwritten. A lost race reads and computes again,
/// at most [`CAS_ATTEMPTS`] times.
pub fn cas_update<T, E>(
    host: &dyn Host,
    key: &str,
    mut compute: impl FnMut(Option<&[u8]>) -> Result<Update<T>, E>,
) -> Result<T, CasFailure<E>> {
    for _ in 0..CAS_ATTEMPTS {
        let (record, cas) = host.shared_data(key).map_err(|error| {
            log::error!("claimgate: cannot read shared data {key}: {error}");
            CasFailure::Unavailable
        })?;
        let (bytes, answer) = match compute(record.as_deref()).map_err(CasFailure::Refused)? {
            Update::Write(bytes, answer) => (bytes, answer),
            Update::Keep(answer) => return Ok(answer),
        };
        let cas = if record.is_some() {
            cas.or(Some(CAS_CREATE))
        } else {
            Some(CAS_CREATE)
        };
        match host.set_shared_data(key, &bytes, cas) {
            Ok(()) => return Ok(answer),
            Err(HostError::CasMismatch) => continue,
            Err(error) => {
                log::error!("claimgate: cannot write shared data {key}: {error}");
                return Err(CasFailure::Unavailable);
            }
        }
    }
    Err(CasFailure::Contended)
}
