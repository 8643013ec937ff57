//! Server nonces (RFC 9449 §8): when `use_dpop_nonce` is on, every proof must carry a
//! nonce this Envoy issued recently. Nonces are stateless — the issue time and an HMAC of
//! it under a secret every worker shares — so any worker accepts what another issued,
//! and nothing has to be stored per client.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmSignature};
use rand_core::{OsRng, RngCore};

/// Bytes of the HMAC kept in a nonce.
const MAC_BYTES: usize = 16;
/// Seconds a nonce's issue time may be ahead of the checking worker's clock.
const CLOCK_TOLERANCE: i64 = 2;

/// The secret nonces are made and checked with.
#[derive(Clone, PartialEq, Eq)]
pub struct NonceKey {
    secret: [u8; 32],
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
        Some(NonceKey { secret })
    }

    /// The key from its stored bytes (shared data); `None` unless 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<NonceKey> {
        Some(NonceKey {
            secret: bytes.try_into().ok()?,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.secret
    }

    fn mac(&self, issued: i64) -> Vec<u8> {
        let mut mac = Hs256
            .sign(&Hs256Key::new(self.secret), &issued.to_be_bytes())
            .as_bytes()
            .into_owned();
        mac.truncate(MAC_BYTES);
        mac
    }

    /// A nonce issued at `now`.
    pub fn issue(&self, now: i64) -> String {
        let mut bytes = now.to_be_bytes().to_vec();
        bytes.extend(self.mac(now));
        Base64UrlUnpadded::encode_string(&bytes)
    }

    /// Whether `nonce` was issued with this key at most `lifetime` seconds before `now`.
    pub fn accepts(&self, nonce: &str, now: i64, lifetime: i64) -> bool {
        let Ok(bytes) = Base64UrlUnpadded::decode_vec(nonce) else {
            return false;
        };
        let Some((time, mac)) = bytes.split_first_chunk::<8>() else {
            return false;
        };
        let issued = i64::from_be_bytes(*time);
        let expected = self.mac(issued);
        // Compared without an early exit: the MAC is the secret part.
        let same = mac.len() == expected.len()
            && mac
                .iter()
                .zip(&expected)
                .fold(0_u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        same && issued <= now.saturating_add(CLOCK_TOLERANCE)
            && now.saturating_sub(issued) <= lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_by_its_key_within_its_lifetime_only() {
        let key = NonceKey::random().unwrap();
        let nonce = key.issue(1000);
        assert!(key.accepts(&nonce, 1000, 300));
        assert!(key.accepts(&nonce, 1300, 300));
        assert!(!key.accepts(&nonce, 1301, 300));
        assert!(!key.accepts(&nonce, 990, 300), "issued in the future");
        let other = NonceKey::random().unwrap();
        assert!(!other.accepts(&nonce, 1000, 300));
        let mut forged = Base64UrlUnpadded::decode_vec(&nonce).unwrap();
        forged[3] ^= 1;
        assert!(!key.accepts(&Base64UrlUnpadded::encode_string(&forged), 1000, 1 << 40));
        assert!(!key.accepts("", 1000, 300));
        assert!(!key.accepts("!!", 1000, 300));
        let again = NonceKey::from_bytes(key.as_bytes()).unwrap();
        assert!(again.accepts(&nonce, 1000, 300));
    }
}
