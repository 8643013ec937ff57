//! Verification keys: JWKS parsing, the algorithms claimgate accepts, and signature checks.
//!
//! The algorithm used to check a signature is decided by the key (its type, curve and `alg`)
//! together with the provider's allow-list; the token header only selects among candidates.
//! That is what makes "HS256 signed with the RSA public key" impossible here.

mod es384;
mod host;
mod rsa_verify;

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as JwsAlgorithm, AlgorithmSignature};
use serde_json::Value;

pub use es384::{signing_key_from_scalar as es384_signing_key, Es384};
pub use host::{ForeignVerifier, HostCrypto};
pub use rsa_verify::{RsaHash, RsaVerifier};

/// Smallest RSA modulus accepted, in bits (NIST SP 800-131A).
pub const MIN_RSA_BITS: usize = 2048;

/// Smallest HMAC secret accepted, in bytes: RFC 7518 §3.2 wants at least the hash size.
pub const MIN_HMAC_BYTES: usize = 32;

/// A JWS algorithm claimgate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

/// The key family an algorithm needs; a key verifies only algorithms of its own family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
    Hmac,
}

impl Alg {
    /// Every supported algorithm, in a stable order (for messages and schemas).
    pub const ALL: [Alg; 12] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// Parses a JOSE `alg` name exactly (case-sensitive, as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                KeyFamily::Rsa
            }
            Alg::Es256 => KeyFamily::P256,
            Alg::Es384 => KeyFamily::P384,
            Alg::EdDsa => KeyFamily::Ed25519,
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => KeyFamily::Hmac,
        }
    }

    /// The hash of an RSA algorithm and whether it uses PSS padding (else PKCS#1 v1.5).
    pub(crate) fn rsa_scheme(self) -> Option<(RsaHash, bool)> {
        match self {
            Alg::Rs256 => Some((RsaHash::Sha256, false)),
            Alg::Rs384 => Some((RsaHash::Sha384, false)),
            Alg::Rs512 => Some((RsaHash::Sha512, false)),
            Alg::Ps256 => Some((RsaHash::Sha256, true)),
            Alg::Ps384 => Some((RsaHash::Sha384, true)),
            Alg::Ps512 => Some((RsaHash::Sha512, true)),
            _ => None,
        }
    }

    /// The jwt-compact RSA algorithm (for signing; verification is [`RsaVerifier`]).
    pub(crate) fn rsa(self) -> Option<Rsa> {
        match self {
            Alg::Rs256 => Some(Rsa::rs256()),
            Alg::Rs384 => Some(Rsa::rs384()),
            Alg::Rs512 => Some(Rsa::rs512()),
            Alg::Ps256 => Some(Rsa::ps256()),
            Alg::Ps384 => Some(Rsa::ps384()),
            Alg::Ps512 => Some(Rsa::ps512()),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Public (or, for HMAC, shared) key material, parsed once when the key set is loaded.
#[derive(Clone)]
enum KeyMaterial {
    /// RS* and PS* both through [`RsaVerifier`] (several times faster in Wasm than the
    /// `rsa` crate, which only signs here).
    Rsa(Box<RsaVerifier>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_compact::PublicKey),
    Hmac(Vec<u8>),
}

impl KeyMaterial {
    fn family(&self) -> KeyFamily {
        match self {
            KeyMaterial::Rsa(..) => KeyFamily::Rsa,
            KeyMaterial::P256(_) => KeyFamily::P256,
            KeyMaterial::P384(_) => KeyFamily::P384,
            KeyMaterial::Ed25519(_) => KeyFamily::Ed25519,
            KeyMaterial::Hmac(_) => KeyFamily::Hmac,
        }
    }
}

/// One usable verification key from a JWKS.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Option<String>,
    alg: Option<Alg>,
    material: KeyMaterial,
    /// DER `SubjectPublicKeyInfo`, for keys the host may check ([`HostCrypto`]).
    host_key: Option<Arc<[u8]>>,
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("family", &self.material.family())
            .finish()
    }
}

impl VerificationKey {
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn alg(&self) -> Option<Alg> {
        self.alg
    }

    pub fn family(&self) -> KeyFamily {
        self.material.family()
    }

    /// Whether this key may check a signature made with `alg`: same family, and the
    /// key's own `alg`, when it names one, is exactly `alg`.
    pub fn fits(&self, alg: Alg) -> bool {
        self.material.family() == alg.family() && self.alg.is_none_or(|own| own == alg)
    }

    /// The key as DER `SubjectPublicKeyInfo` (RSA and EC keys).
    pub fn host_key(&self) -> Option<&[u8]> {
        self.host_key.as_deref()
    }

    /// Checks `signature` over `signed_data` with `alg`, by the host when it offers the
    /// check and answers, else in the module. A key that does not fit `alg` never verifies
    /// anything.
    pub fn verify(
        &self,
        alg: Alg,
        signed_data: &[u8],
        signature: &[u8],
        host: Option<&HostCrypto>,
    ) -> bool {
        if !self.fits(alg) {
            return false;
        }
        if let (Some(host), Some(der)) = (host, self.host_key.as_deref()) {
            if let Some(answer) = host.check(alg, der, signed_data, signature) {
                return answer;
            }
        }
        match (&self.material, alg) {
            (KeyMaterial::Rsa(rsa), _) => match alg.rsa_scheme() {
                Some((hash, false)) => rsa.verify(hash, signed_data, signature),
                Some((hash, true)) => rsa.verify_pss(hash, signed_data, signature),
                None => false,
            },
            (KeyMaterial::P256(key), Alg::Es256) => {
                verify_with(&Es256, key, signed_data, signature)
            }
            (KeyMaterial::P384(key), Alg::Es384) => {
                verify_with(&Es384, key, signed_data, signature)
            }
            (KeyMaterial::Ed25519(key), Alg::EdDsa) => {
                verify_with(&Ed25519, key, signed_data, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs256) => {
                verify_with(&Hs256, &Hs256Key::new(secret), signed_data, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs384) => {
                verify_with(&Hs384, &Hs384Key::new(secret), signed_data, signature)
            }
            (KeyMaterial::Hmac(secret), Alg::Hs512) => {
                verify_with(&Hs512, &Hs512Key::new(secret), signed_data, signature)
            }
            _ => false,
        }
    }
}

/// Runs one jwt-compact algorithm, checking the signature length first (some
/// `try_from_slice` implementations assume it).
fn verify_with<A: JwsAlgorithm>(
    algorithm: &A,
    key: &A::VerifyingKey,
    signed_data: &[u8],
    signature: &[u8],
) -> bool {
    if let Some(expected) = A::Signature::LENGTH {
        if signature.len() != expected.get() {
            return false;
        }
    }
    match A::Signature::try_from_slice(signature) {
        Ok(signature) => algorithm.verify_signature(&signature, key, signed_data),
        Err(_) => false,
    }
}

/// Why one JWK of a set was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkProblem {
    /// Not a signing key (`use` other than `sig`, or `key_ops` without `verify`): ignored by design.
    NotForSignatures(String),
    /// A key type, curve or algorithm claimgate does not verify with.
    Unsupported(String),
    /// A symmetric key where only public keys are allowed (remote JWKS).
    SymmetricNotAllowed,
    /// A key below the minimum strength.
    TooWeak(String),
    /// A key that cannot be decoded.
    Malformed(String),
}

impl JwkProblem {
    /// Problems that mean the key is broken or unsafe, as opposed to "not meant for us".
    pub fn is_defect(&self) -> bool {
        !matches!(self, JwkProblem::NotForSignatures(_))
    }
}

impl fmt::Display for JwkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwkProblem::NotForSignatures(why) => write!(f, "not a signature key ({why})"),
            JwkProblem::Unsupported(what) => write!(f, "unsupported key: {what}"),
            JwkProblem::SymmetricNotAllowed => {
                f.write_str("symmetric (oct) keys are only accepted inline in the configuration")
            }
            JwkProblem::TooWeak(why) => write!(f, "key too weak: {why}"),
            JwkProblem::Malformed(why) => write!(f, "malformed key: {why}"),
        }
    }
}

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

/// The current key set of every provider, by provider index. Key sets are swapped whole
/// at run time (remote JWKS refresh), never edited in place.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    sets: Vec<Option<Arc<KeySet>>>,
    host: Option<Rc<HostCrypto>>,
}

impl KeyRing {
    pub fn new(sets: Vec<Option<Arc<KeySet>>>) -> KeyRing {
        KeyRing { sets, host: None }
    }

    /// Lets the host check the signatures it passed its self-test for.
    pub fn set_host_crypto(&mut self, host: Rc<HostCrypto>) {
        self.host = Some(host);
    }

    /// The host's signature checks, when there are any.
    pub fn host_crypto(&self) -> Option<&HostCrypto> {
        self.host.as_deref()
    }

    /// The key set of provider `index`; `None` while it has none yet.
    pub fn get(&self, index: usize) -> Option<&KeySet> {
        self.sets.get(index).and_then(|set| set.as_deref())
    }

    /// Installs a new key set for provider `index`.
    pub fn replace(&mut self, index: usize, keys: Arc<KeySet>) {
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = Some(keys);
        }
    }

    /// Leaves provider `index` without keys (its remote set went stale beyond its limit).
    pub fn remove(&mut self, index: usize) {
        if let Some(slot) = self.sets.get_mut(index) {
            *slot = None;
        }
    }
}

/// Parses one JWK into a verification key, or says why it cannot be used.
pub fn parse_jwk(entry: &Value, symmetric: SymmetricKeys) -> Result<VerificationKey, JwkProblem> {
    let object = entry
        .as_object()
        .ok_or_else(|| JwkProblem::Malformed("a JWK must be a JSON object".into()))?;
    let text_field = |name: &str| -> Result<Option<&str>, JwkProblem> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(JwkProblem::Malformed(format!(
                "\"{name}\" must be a string"
            ))),
        }
    };
    if let Some(key_use) = text_field("use")? {
        if key_use != "sig" {
            return Err(JwkProblem::NotForSignatures(format!("use \"{key_use}\"")));
        }
    }
    if let Some(ops) = object.get("key_ops") {
        let ops = ops
            .as_array()
            .ok_or_else(|| JwkProblem::Malformed("\"key_ops\" must be an array".into()))?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(JwkProblem::NotForSignatures(
                "key_ops without \"verify\"".into(),
            ));
        }
    }
    let kid = text_field("kid")?.map(str::to_owned);
    let alg = match text_field("alg")? {
        None => None,
        Some(name) => Some(
            Alg::from_name(name)
                .ok_or_else(|| JwkProblem::Unsupported(format!("alg \"{name}\"")))?,
        ),
    };
    let kty = text_field("kty")?.ok_or_else(|| JwkProblem::Malformed("missing \"kty\"".into()))?;
    if kty == "oct" && symmetric == SymmetricKeys::Refused {
        return Err(JwkProblem::SymmetricNotAllowed);
    }
    let jwk: JsonWebKey<'_> = serde_json::from_value(entry.clone())
        .map_err(|err| JwkProblem::Malformed(err.to_string()))?;
    let material = key_material(&jwk, kty)?;
    let host_key = host_key(&jwk, material.family()).map(Arc::from);
    if let Some(alg) = alg {
        if alg.family() != material.family() {
            return Err(JwkProblem::Malformed(format!(
                "alg {alg} does not fit a {kty} key"
            )));
        }
    }
    Ok(VerificationKey {
        kid,
        alg,
        material,
        host_key,
    })
}

/// The DER form the host's crypto library takes, for the families it may check. RSA keys
/// BoringSSL refuses to use (an exponent over 33 bits, a modulus over 16384 bits) get
/// none, so their tokens are checked in the module as on any other host.
fn host_key(jwk: &JsonWebKey<'_>, family: KeyFamily) -> Option<Vec<u8>> {
    match jwk {
        JsonWebKey::Rsa {
            modulus,
            public_exponent,
            ..
        } => (significant_bits(public_exponent) <= 33 && significant_bits(modulus) <= 16384)
            .then(|| host::rsa_public_key_der(modulus, public_exponent)),
        JsonWebKey::EllipticCurve { x, y, .. } => host::ec_public_key_der(family, x, y),
        _ => None,
    }
}

fn key_material(jwk: &JsonWebKey<'_>, kty: &str) -> Result<KeyMaterial, JwkProblem> {
    match jwk {
        JsonWebKey::Rsa {
            modulus,
            public_exponent,
            ..
        } => {
            let bits = significant_bits(modulus);
            if bits < MIN_RSA_BITS {
                return Err(JwkProblem::TooWeak(format!(
                    "RSA modulus of {bits} bits; at least {MIN_RSA_BITS} required"
                )));
            }
            let fast = RsaVerifier::new(modulus, public_exponent).ok_or_else(|| {
                JwkProblem::Malformed(
                    "RSA modulus must be odd and the exponent odd, above 1 and at most 64 bits"
                        .into(),
                )
            })?;
            Ok(KeyMaterial::Rsa(Box::new(fast)))
        }
        JsonWebKey::EllipticCurve { curve, x, y, .. } => match curve.as_ref() {
            "P-256" => p256::ecdsa::VerifyingKey::try_from(jwk)
                .map(KeyMaterial::P256)
                .map_err(|err| JwkProblem::Malformed(err.to_string())),
            "P-384" => es384::verifying_key_from_coordinates(x, y).map(KeyMaterial::P384),
            other => Err(JwkProblem::Unsupported(format!("EC curve \"{other}\""))),
        },
        JsonWebKey::KeyPair { curve, .. } => match curve.as_ref() {
            "Ed25519" => ed25519_compact::PublicKey::try_from(jwk)
                .map(KeyMaterial::Ed25519)
                .map_err(|err| JwkProblem::Malformed(err.to_string())),
            other => Err(JwkProblem::Unsupported(format!("OKP curve \"{other}\""))),
        },
        JsonWebKey::Symmetric { secret } => {
            let secret: &[u8] = secret.as_ref();
            if secret.len() < MIN_HMAC_BYTES {
                return Err(JwkProblem::TooWeak(format!(
                    "HMAC secret of {} bytes; at least {MIN_HMAC_BYTES} required",
                    secret.len()
                )));
            }
            Ok(KeyMaterial::Hmac(secret.to_vec()))
        }
        _ => Err(JwkProblem::Unsupported(format!("kty \"{kty}\""))),
    }
}

/// Bit length of a big-endian unsigned integer, ignoring leading zero bytes.
fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|byte| **byte == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rsa_keys_the_host_would_refuse_are_kept_for_the_module() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let modulus = Base64UrlUnpadded::encode_string(&[0xff; 256]);
        let key = |e: &[u8]| {
            let jwk = json!({"kty": "RSA", "n": modulus, "e": Base64UrlUnpadded::encode_string(e)});
            parse_jwk(&jwk, SymmetricKeys::Refused).unwrap()
        };
        assert!(key(&[1, 0, 1]).host_key().is_some());
        assert!(key(&[1, 0, 0, 0, 1]).host_key().is_some());
        assert!(key(&[3, 0, 0, 0, 1]).host_key().is_none());
    }

    #[test]
    fn alg_names_round_trip_and_are_case_sensitive() {
        for alg in Alg::ALL {
            assert_eq!(Alg::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Alg::from_name("rs256"), None);
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("ES256K"), None);
    }

    #[test]
    fn significant_bits_ignores_leading_zeros() {
        assert_eq!(significant_bits(&[]), 0);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[0, 1]), 1);
        assert_eq!(significant_bits(&[0x80, 0]), 16);
        assert_eq!(significant_bits(&[0, 0x7f, 0xff]), 15);
    }

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

    #[test]
    fn short_hmac_secrets_are_too_weak() {
        let jwks = json!({"keys": [{"kty": "oct", "k": "c2hvcnQ"}]});
        let err = KeySet::from_jwks_value(&jwks, SymmetricKeys::Allowed).unwrap_err();
        assert!(
            matches!(err, JwksError::NoUsableKey(ref p) if matches!(p[0].1, JwkProblem::TooWeak(_)))
        );
    }

    #[test]
    fn unknown_key_types_and_curves_are_unsupported() {
        for jwk in [
            json!({"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"}),
            json!({"kty": "OKP", "crv": "X25519", "x": "AA"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "none"}),
        ] {
            let problem = parse_jwk(&jwk, SymmetricKeys::Allowed).unwrap_err();
            assert!(problem.is_defect(), "{jwk}: {problem}");
        }
    }

    #[test]
    fn non_object_jwk_is_malformed() {
        let problem = parse_jwk(&json!("RSA"), SymmetricKeys::Allowed).unwrap_err();
        assert!(matches!(problem, JwkProblem::Malformed(_)));
    }
}
