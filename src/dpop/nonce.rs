//! Server nonces (RFC 9449 §8): when `use_dpop_nonce` is on, every proof must carry a
//! nonce this Envoy issued recently. Nonces are stateless — the issue time and an HMAC of
//! it under a secret every worker shares — so any worker accepts what another issued,
//! and nothing has to be stored per client.
//!
//! The secret is random per Envoy unless the operator supplies one (`nonce_secrets`):
//! then every replica given the same secret accepts what another issued, and a rotation
//! keeps the previous secret's nonces acceptable while new ones are made with the current.

use std::fmt;

use crate::time::UnixSeconds;
use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmSignature};
use rand_core::{OsRng, RngCore};

/// Bytes of the HMAC kept in a nonce.
const MAC_BYTES: usize = 16;
/// Seconds a nonce's issue time may be ahead of the checking worker's clock.
const CLOCK_TOLERANCE: i64 = 2;

/// Fewest bytes an operator-supplied nonce secret may have (after base64url decoding).
pub const MIN_SECRET_BYTES: usize = 32;

/// The secret nonces are made and checked with, and optionally the previous one, whose
/// nonces are still accepted (a rotation in progress).
#[derive(Clone, PartialEq, Eq)]
pub struct NonceKey {
    secret: [u8; 32],
    previous: Option<[u8; 32]>,
}

/// An operator-supplied secret that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// Not base64url (padding optional).
    NotBase64Url,
    /// Fewer than [`MIN_SECRET_BYTES`] bytes once decoded.
    TooShort { bytes: usize },
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretError::NotBase64Url => f.write_str("is not base64url"),
            SecretError::TooShort { bytes } => write!(
                f,
                "decodes to {bytes} bytes; at least {MIN_SECRET_BYTES} are required"
            ),
        }
    }
}

impl std::error::Error for SecretError {}

/// The 32-byte nonce key an operator's secret stands for: an HMAC of a fixed label under
/// the secret, so a secret of any length gives a key used for nonces only.
fn derive(secret: &str) -> Result<[u8; 32], SecretError> {
    let trimmed = secret.trim().trim_end_matches('=');
    let bytes = Base64UrlUnpadded::decode_vec(trimmed).map_err(|_| SecretError::NotBase64Url)?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort { bytes: bytes.len() });
    }
    let mac = Hs256.sign(&Hs256Key::new(&bytes), b"claimgate dpop nonce key v1");
    mac.as_bytes()
        .as_ref()
        .try_into()
        .map_err(|_| SecretError::TooShort { bytes: 0 })
}

impl fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NonceKey(..)")
    }
}

impl NonceKey {
    /// A fresh random key; `None` when the system has no randomness to give.
    pub fn random() -> Option<NonceKey> {
        let mut secret = [0_u8; 32];
        OsRng.try_fill_bytes(&mut secret).ok()?;
        Some(NonceKey {
            secret,
            previous: None,
        })
    }

    /// The key from operator-supplied secrets (base64url, at least
    /// [`MIN_SECRET_BYTES`] bytes): nonces are made with `current`, and accepted when made
    /// with `current` or `previous`. The error names which one is bad.
    pub fn from_secrets(
        current: &str,
        previous: Option<&str>,
    ) -> Result<NonceKey, (SecretRole, SecretError)> {
        let secret = derive(current).map_err(|error| (SecretRole::Current, error))?;
        let previous = previous
            .map(derive)
            .transpose()
            .map_err(|error| (SecretRole::Previous, error))?;
        Ok(NonceKey { secret, previous })
    }

    /// The key from its stored bytes (shared data); `None` unless 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<NonceKey> {
        Some(NonceKey {
            secret: bytes.try_into().ok()?,
            previous: None,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.secret
    }

    fn mac(secret: &[u8; 32], issued: i64) -> Vec<u8> {
        let mut mac = Hs256
            .sign(&Hs256Key::new(secret), &issued.to_be_bytes())
            .as_bytes()
            .into_owned();
        mac.truncate(MAC_BYTES);
        mac
    }

    /// A nonce issued at `now`.
    pub fn issue(&self, now: UnixSeconds) -> String {
        let now = now.0;
        let mut bytes = now.to_be_bytes().to_vec();
        bytes.extend(Self::mac(&self.secret, now));
        Base64UrlUnpadded::encode_string(&bytes)
    }

    /// Whether `nonce` was issued with this key (or the previous one) at most `lifetime`
    /// seconds before `now`.
    pub fn accepts(&self, nonce: &str, now: UnixSeconds, lifetime: i64) -> bool {
        let now = now.0;
        let Ok(bytes) = Base64UrlUnpadded::decode_vec(nonce) else {
            return false;
        };
        let Some((time, mac)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let issued = i64::from_be_bytes(*time);
        // Compared without an early exit: the MAC is the secret part.
        let made_with = |secret: &[u8; 32]| {
            let expected = Self::mac(secret, issued);
            mac.len() == expected.len()
                && mac
                    .iter()
                    .zip(&expected)
                    .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
                    == 0
        };
        let same = made_with(&self.secret) | self.previous.as_ref().is_some_and(made_with);
        same && issued <= now.saturating_add(CLOCK_TOLERANCE)
            && now.saturating_sub(issued) <= lifetime
    }
}

/// Which of the two configured secrets an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretRole {
    Current,
    Previous,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_by_its_key_within_its_lifetime_only() {
        let key = NonceKey::random().unwrap();
        let nonce = key.issue(UnixSeconds(1000));
        assert!(key.accepts(&nonce, UnixSeconds(1000), 300));
        assert!(key.accepts(&nonce, UnixSeconds(1300), 300));
        assert!(!key.accepts(&nonce, UnixSeconds(1301), 300));
        assert!(
            !key.accepts(&nonce, UnixSeconds(990), 300),
            "issued in the future"
        );
        let other = NonceKey::random().unwrap();
        assert!(!other.accepts(&nonce, UnixSeconds(1000), 300));
        let mut forged = Base64UrlUnpadded::decode_vec(&nonce).unwrap();
        forged[3] ^= 1;
        assert!(!key.accepts(
            &Base64UrlUnpadded::encode_string(&forged),
            UnixSeconds(1000),
            1 << 40
        ));
        assert!(!key.accepts("", UnixSeconds(1000), 300));
        assert!(!key.accepts("!!", UnixSeconds(1000), 300));
        let again = NonceKey::from_bytes(key.as_bytes()).unwrap();
        assert!(again.accepts(&nonce, UnixSeconds(1000), 300));
    }

    fn secret(byte: u8, len: usize) -> String {
        Base64UrlUnpadded::encode_string(&vec![byte; len])
    }

    #[test]
    fn operator_secrets_make_the_same_key_on_every_replica_and_rotate() {
        let (old, new, newer) = (secret(1, 32), secret(2, 48), secret(3, 32));
        let replica_a = NonceKey::from_secrets(&old, None).unwrap();
        let replica_b = NonceKey::from_secrets(&old, None).unwrap();
        let nonce = replica_a.issue(UnixSeconds(1000));
        assert!(
            replica_b.accepts(&nonce, UnixSeconds(1001), 300),
            "same secret, other replica"
        );
        // Rotation: new current, old as previous; old nonces still accepted, new ones
        // are made with the new secret only.
        let rotated = NonceKey::from_secrets(&new, Some(&old)).unwrap();
        assert!(rotated.accepts(&nonce, UnixSeconds(1001), 300));
        let fresh = rotated.issue(UnixSeconds(1002));
        assert!(
            !replica_a.accepts(&fresh, UnixSeconds(1002), 300),
            "made with the new secret"
        );
        assert!(NonceKey::from_secrets(&new, None).unwrap().accepts(
            &fresh,
            UnixSeconds(1002),
            300
        ));
        // Rotated out: the old secret's nonces are refused, within their lifetime too.
        let again = NonceKey::from_secrets(&newer, Some(&new)).unwrap();
        assert!(!again.accepts(&nonce, UnixSeconds(1003), 300));
        assert!(again.accepts(&fresh, UnixSeconds(1003), 300));
        // The previous secret's nonces still expire.
        assert!(!rotated.accepts(&nonce, UnixSeconds(1301), 300));
        // Padding and surrounding whitespace are tolerated (Kubernetes Secrets).
        let padded = format!(" {}=\n", Base64UrlUnpadded::encode_string(&[1_u8; 32]));
        assert!(NonceKey::from_secrets(&padded, None).unwrap().accepts(
            &nonce,
            UnixSeconds(1000),
            300
        ));
        // A random per-Envoy key is not an operator key.
        assert!(!NonceKey::random()
            .unwrap()
            .accepts(&nonce, UnixSeconds(1000), 300));
    }

    #[test]
    fn short_or_malformed_secrets_are_refused_naming_which() {
        assert_eq!(
            NonceKey::from_secrets(&secret(1, 31), None).unwrap_err(),
            (SecretRole::Current, SecretError::TooShort { bytes: 31 })
        );
        assert_eq!(
            NonceKey::from_secrets(&secret(1, 32), Some("")).unwrap_err(),
            (SecretRole::Previous, SecretError::TooShort { bytes: 0 })
        );
        assert_eq!(
            NonceKey::from_secrets("not base64 at all!", None).unwrap_err(),
            (SecretRole::Current, SecretError::NotBase64Url)
        );
        let message = SecretError::TooShort { bytes: 31 }.to_string();
        assert!(
            message.contains("31") && message.contains("32"),
            "{message}"
        );
    }
}
