//! A key set (the usable keys of one JWKS), how a JWKS document is parsed into one, and
//! how a token's header selects candidate keys from it.

use std::fmt;

use serde_json::Value;

use super::jwk::{parse_jwk, JwkProblem};
use super::{Alg, VerificationKey};

/// A JWKS document that could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    NotJson(String),
    NoKeysArray,
    /// Every key was skipped; the problems say why, by index in `keys`.
    NoUsableKey(Vec<(usize, JwkProblem)>),
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::NotJson(err) => write!(f, "JWKS is not valid JSON: {err}"),
            JwksError::NoKeysArray => f.write_str("JWKS has no \"keys\" array"),
            JwksError::NoUsableKey(problems) => {
                f.write_str("JWKS has no usable signing key")?;
                for (index, problem) in problems {
                    write!(f, "; keys[{index}]: {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for JwksError {}

/// Whether symmetric (`oct`) keys may be taken from a JWKS. Only the operator's own
/// configuration may carry shared secrets; a remote JWKS must never introduce one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SymmetricKeys {
    Allowed,
    Refused,
}

/// The usable keys of one JWKS, parsed once and shared read-only by every request.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
}

/// A parsed key set together with the keys that were skipped and why.
#[derive(Debug, Clone)]
pub struct ParsedKeySet {
    pub keys: KeySet,
    pub skipped: Vec<(usize, JwkProblem)>,
}

impl KeySet {
    pub fn new(keys: Vec<VerificationKey>) -> KeySet {
        KeySet { keys }
    }

    /// These keys followed by `other`'s (inline keys beside a remote set).
    pub fn merged(&self, other: &KeySet) -> KeySet {
        let mut keys = self.keys.clone();
        keys.extend(other.keys.iter().cloned());
        KeySet { keys }
    }

    /// Parses a JWKS document (`{"keys": [...]}`) from text.
    pub fn parse_jwks(text: &[u8], symmetric: SymmetricKeys) -> Result<ParsedKeySet, JwksError> {
        let value: Value =
            serde_json::from_slice(text).map_err(|err| JwksError::NotJson(err.to_string()))?;
        KeySet::from_jwks_value(&value, symmetric)
    }

    /// Parses an already-decoded JWKS document. Keys that cannot be used are skipped and
    /// reported; a set with no usable key at all is an error.
    pub fn from_jwks_value(
        value: &Value,
        symmetric: SymmetricKeys,
    ) -> Result<ParsedKeySet, JwksError> {
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NoKeysArray)?;
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match parse_jwk(entry, symmetric) {
                Ok(key) => keys.push(key),
                Err(problem) => skipped.push((index, problem)),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok(ParsedKeySet {
            keys: KeySet { keys },
            skipped,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// Whether any key carries this `kid` (to tell "unknown key" from "bad signature").
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// The keys that may verify a token with this header: with a `kid`, only keys with
    /// that `kid`; without, every key. Either way only keys that fit `alg`.
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Alg,
    ) -> impl Iterator<Item = &'a VerificationKey> + 'a {
        self.keys
            .iter()
            .filter(move |key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
            .filter(move |key| key.fits(alg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jwks_without_keys_array_is_an_error() {
        let err =
            KeySet::from_jwks_value(&json!({"kty": "RSA"}), SymmetricKeys::Allowed).unwrap_err();
        assert_eq!(err, JwksError::NoKeysArray);
    }

    #[test]
    fn encryption_keys_are_skipped_not_defects() {
        let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3ODk";
        let jwks = json!({"keys": [
            {"kty": "oct", "k": secret, "use": "enc"},
            {"kty": "oct", "k": secret, "kid": "h"}
        ]});
        let parsed = KeySet::from_jwks_value(&jwks, SymmetricKeys::Allowed).unwrap();
        assert_eq!(parsed.keys.len(), 1);
        assert_eq!(parsed.skipped.len(), 1);
        assert!(!parsed.skipped[0].1.is_defect());
    }

    #[test]
    fn symmetric_keys_are_refused_where_not_allowed() {
        let jwks = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]});
        let err = KeySet::from_jwks_value(&jwks, SymmetricKeys::Refused).unwrap_err();
        assert_eq!(
            err,
            JwksError::NoUsableKey(vec![(0, JwkProblem::SymmetricNotAllowed)])
        );
    }
}
