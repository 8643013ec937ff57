//! Token signing for the demo, the CLI and the tests. Never used on the request path.
//!
//! Signing goes through jwt-compact's algorithms (RSA with the `rsa` crate, ES256, EdDSA
//! with `ed25519-dalek`, HMAC) and our ES384 and ES512 (`jwks::Ecdsa`), so a token
//! minted here is a standard JWS. Verification does not share all of that code: RS*/PS*
//! are checked by `jwks::RsaVerifier`, not the `rsa` crate (see `jwks/key.rs`).
//!
//! Native only: the module Envoy loads is built without it and its dependencies.

use std::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::alg::{
    Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa, RsaPrivateKey,
};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm as JwsAlgorithm, AlgorithmSignature};
use rand_core::{OsRng, RngCore};
use serde_json::{json, Map, Value};

use crate::dpop::{jwk_thumbprint, sha256_base64url};
use crate::jwks::{self, Alg, Es384, Es512, KeyFamily, MIN_RSA_BITS, P384, P521};

/// The jwt-compact RSA algorithm for `alg` (signing only; verification is
/// `jwks::RsaVerifier`).
fn rsa_algorithm(alg: Alg) -> Option<Rsa> {
    match alg {
        Alg::Rs256 => Some(Rsa::rs256()),
        Alg::Rs384 => Some(Rsa::rs384()),
        Alg::Rs512 => Some(Rsa::rs512()),
        Alg::Ps256 => Some(Rsa::ps256()),
        Alg::Ps384 => Some(Rsa::ps384()),
        Alg::Ps512 => Some(Rsa::ps512()),
        _ => None,
    }
}

/// Why a signing key or a token could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MintError {
    /// The private JWK is missing a field, has a wrong type or bad key material.
    BadKey(String),
    /// The JWK names no usable `alg` and none was given.
    NoAlgorithm,
    /// Claims or header are not JSON objects.
    NotAnObject(&'static str),
    KeyGeneration(String),
}

impl fmt::Display for MintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MintError::BadKey(why) => write!(f, "unusable private key: {why}"),
            MintError::NoAlgorithm => f.write_str("the key has no \"alg\"; name one"),
            MintError::NotAnObject(what) => write!(f, "{what} must be a JSON object"),
            MintError::KeyGeneration(why) => write!(f, "key generation failed: {why}"),
        }
    }
}

impl std::error::Error for MintError {}

#[derive(Clone)]
enum Secret {
    Rsa(Box<RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(Box<p521::ecdsa::SigningKey>),
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Hmac(Vec<u8>),
}

/// A private key with the algorithm and `kid` it signs with.
#[derive(Clone)]
pub struct SigningKey {
    alg: Alg,
    kid: Option<String>,
    secret: Secret,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads a private JWK. Its `alg` is used unless it has none (then it is an error).
    pub fn from_jwk(value: &Value) -> Result<SigningKey, MintError> {
        let alg = match value.get("alg").and_then(Value::as_str) {
            Some(name) => Alg::from_name(name)
                .ok_or_else(|| MintError::BadKey(format!("unsupported alg \"{name}\"")))?,
            None => return Err(MintError::NoAlgorithm),
        };
        let kid = value.get("kid").and_then(Value::as_str).map(str::to_owned);
        let jwk: JsonWebKey<'_> = serde_json::from_value(value.clone())
            .map_err(|err| MintError::BadKey(err.to_string()))?;
        let bad = |err: &dyn fmt::Display| MintError::BadKey(err.to_string());
        let secret = match alg.family() {
            KeyFamily::Rsa => Secret::Rsa(Box::new(
                RsaPrivateKey::try_from(&jwk).map_err(|e| bad(&e))?,
            )),
            KeyFamily::P256 => {
                Secret::P256(p256::ecdsa::SigningKey::try_from(&jwk).map_err(|e| bad(&e))?)
            }
            KeyFamily::P384 => Secret::P384(
                jwks::signing_key_from_scalar::<P384>(ec_scalar(&jwk, "P-384")?)
                    .map_err(|e| bad(&e))?,
            ),
            KeyFamily::P521 => Secret::P521(Box::new(
                jwks::signing_key_from_scalar::<P521>(ec_scalar(&jwk, "P-521")?)
                    .map_err(|e| bad(&e))?,
            )),
            KeyFamily::Ed25519 => Secret::Ed25519(Box::new(
                ed25519_dalek::SigningKey::try_from(&jwk).map_err(|e| bad(&e))?,
            )),
            KeyFamily::Hmac => match &jwk {
                JsonWebKey::Symmetric { secret } => Secret::Hmac(secret.to_vec()),
                _ => return Err(MintError::BadKey("HMAC needs an oct key".into())),
            },
        };
        Ok(SigningKey { alg, kid, secret })
    }

    /// Makes a fresh random key for `alg` (RSA keys are 2048 bits).
    pub fn generate(alg: Alg, kid: Option<&str>) -> Result<SigningKey, MintError> {
        let mut rng = OsRng;
        let secret = match alg.family() {
            KeyFamily::Rsa => Secret::Rsa(Box::new(
                RsaPrivateKey::new(&mut rng, MIN_RSA_BITS)
                    .map_err(|err| MintError::KeyGeneration(err.to_string()))?,
            )),
            KeyFamily::P256 => Secret::P256(p256::ecdsa::SigningKey::random(&mut rng)),
            KeyFamily::P384 => Secret::P384(p384::ecdsa::SigningKey::random(&mut rng)),
            KeyFamily::P521 => Secret::P521(Box::new(p521::ecdsa::SigningKey::random(&mut rng))),
            KeyFamily::Ed25519 => {
                let mut seed = [0_u8; ed25519_dalek::SECRET_KEY_LENGTH];
                rng.try_fill_bytes(&mut seed)
                    .map_err(|err| MintError::KeyGeneration(err.to_string()))?;
                Secret::Ed25519(Box::new(ed25519_dalek::SigningKey::from_bytes(&seed)))
            }
            KeyFamily::Hmac => {
                let mut secret = vec![0_u8; 64];
                rng.try_fill_bytes(&mut secret)
                    .map_err(|err| MintError::KeyGeneration(err.to_string()))?;
                Secret::Hmac(secret)
            }
        };
        Ok(SigningKey {
            alg,
            kid: kid.map(str::to_owned),
            secret,
        })
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The JWK that verifies this key's tokens (for HMAC, the shared secret itself).
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.secret {
            Secret::Rsa(key) => jwk_value(&JsonWebKey::from(&key.to_public_key())),
            Secret::P256(key) => jwk_value(&JsonWebKey::from(key.verifying_key())),
            Secret::P384(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                ec_public_jwk("P-384", point.x(), point.y())
            }
            Secret::P521(key) => {
                let point = p521::ecdsa::VerifyingKey::from(key.as_ref()).to_encoded_point(false);
                ec_public_jwk("P-521", point.x(), point.y())
            }
            Secret::Ed25519(key) => jwk_value(&JsonWebKey::from(&key.verifying_key())),
            Secret::Hmac(secret) => {
                json!({"kty": "oct", "k": Base64UrlUnpadded::encode_string(secret)})
            }
        };
        self.add_metadata(&mut jwk);
        jwk
    }

    /// The private JWK, to store a generated key (`claimgate keygen`).
    pub fn private_jwk(&self) -> Value {
        let mut jwk = match &self.secret {
            Secret::Rsa(key) => rsa_private_jwk(key),
            Secret::P256(key) => jwk_value(&JsonWebKey::from(key)),
            Secret::P384(key) => self.public_jwk_with_scalar(&key.to_bytes()),
            Secret::P521(key) => self.public_jwk_with_scalar(&key.to_bytes()),
            Secret::Ed25519(key) => jwk_value(&JsonWebKey::from(key.as_ref())),
            Secret::Hmac(_) => self.public_jwk(),
        };
        self.add_metadata(&mut jwk);
        jwk
    }

    /// The public JWK with the private scalar `d` added (the EC keys jwt-compact cannot
    /// write itself).
    fn public_jwk_with_scalar(&self, d: &[u8]) -> Value {
        let mut jwk = self.public_jwk();
        if let Some(object) = jwk.as_object_mut() {
            object.insert("d".into(), Base64UrlUnpadded::encode_string(d).into());
        }
        jwk
    }

    fn add_metadata(&self, jwk: &mut Value) {
        if let Some(object) = jwk.as_object_mut() {
            object.insert("alg".into(), self.alg.name().into());
            object.insert("use".into(), "sig".into());
            if let Some(kid) = &self.kid {
                object.insert("kid".into(), kid.clone().into());
            }
        }
    }

    /// Signs `claims` with the header `{"alg", "typ": "JWT", "kid"}`.
    pub fn sign(&self, claims: &Value) -> Result<String, MintError> {
        self.sign_with_header(Map::new(), claims)
    }

    /// Signs `claims` with extra header fields. Fields given in `header` win over the
    /// defaults, including `alg`: tests use that to forge mismatched headers. The
    /// signature itself is always made with this key's own algorithm.
    pub fn sign_with_header(
        &self,
        header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, MintError> {
        if !claims.is_object() {
            return Err(MintError::NotAnObject("claims"));
        }
        let mut full_header = Map::new();
        full_header.insert("alg".into(), self.alg.name().into());
        full_header.insert("typ".into(), "JWT".into());
        if let Some(kid) = &self.kid {
            full_header.insert("kid".into(), kid.clone().into());
        }
        full_header.extend(header);
        let mut token =
            Base64UrlUnpadded::encode_string(Value::Object(full_header).to_string().as_bytes());
        token.push('.');
        token.push_str(&Base64UrlUnpadded::encode_string(
            claims.to_string().as_bytes(),
        ));
        let signature = self.sign_bytes(token.as_bytes());
        token.push('.');
        token.push_str(&Base64UrlUnpadded::encode_string(&signature));
        Ok(token)
    }

    /// The RFC 7638 thumbprint of this key's public JWK: what a token bound to it carries
    /// as `cnf.jkt` (DPoP). `None` for HMAC keys.
    pub fn thumbprint(&self) -> Option<String> {
        match self.public_jwk() {
            Value::Object(jwk) if self.alg.family() != KeyFamily::Hmac => jwk_thumbprint(&jwk),
            _ => None,
        }
    }

    /// A DPoP proof (RFC 9449 §4.2) signed with this key for one request: `htm`, `htu`,
    /// `iat`, `jti`, `ath` of the access token when given, and the server's nonce when
    /// given. `extra` claims are merged last (tests use them to forge proofs).
    pub fn dpop_proof(&self, request: &ProofRequest<'_>) -> Result<String, MintError> {
        if self.alg.family() == KeyFamily::Hmac {
            return Err(MintError::BadKey(
                "a DPoP proof needs an asymmetric key".into(),
            ));
        }
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("jwk".into(), self.public_jwk());
        let mut claims = Map::new();
        claims.insert("jti".into(), request.jti.into());
        claims.insert("htm".into(), request.method.into());
        claims.insert("htu".into(), request.url.into());
        claims.insert("iat".into(), request.iat.into());
        if let Some(token) = request.access_token {
            claims.insert("ath".into(), sha256_base64url(token.as_bytes()).into());
        }
        if let Some(nonce) = request.nonce {
            claims.insert("nonce".into(), nonce.into());
        }
        self.sign_with_header(header, &Value::Object(claims))
    }

    /// Raw JWS signature over `message` with this key's algorithm.
    pub fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        fn run<A: JwsAlgorithm>(alg: &A, key: &A::SigningKey, message: &[u8]) -> Vec<u8> {
            alg.sign(key, message).as_bytes().into_owned()
        }
        match (&self.secret, self.alg) {
            (Secret::Rsa(key), alg) => match rsa_algorithm(alg) {
                Some(rsa) => run(&rsa, key.as_ref(), message),
                None => Vec::new(),
            },
            (Secret::P256(key), _) => run(&Es256, key, message),
            (Secret::P384(key), _) => run(&Es384::new(), key, message),
            (Secret::P521(key), _) => run(&Es512::new(), key.as_ref(), message),
            (Secret::Ed25519(key), _) => run(&Ed25519, key.as_ref(), message),
            (Secret::Hmac(secret), Alg::Hs384) => run(&Hs384, &Hs384Key::new(secret), message),
            (Secret::Hmac(secret), Alg::Hs512) => run(&Hs512, &Hs512Key::new(secret), message),
            (Secret::Hmac(secret), _) => run(&Hs256, &Hs256Key::new(secret), message),
        }
    }
}

/// The request a DPoP proof is made for ([`SigningKey::dpop_proof`]).
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    pub method: &'a str,
    /// The request URI without query and fragment, e.g. `https://api.example.com/orders`.
    pub url: &'a str,
    /// The access token sent with the proof (its hash becomes `ath`).
    pub access_token: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub iat: i64,
    /// Unique per proof.
    pub jti: &'a str,
}

/// A complete RFC 7518 §6.3.2 private RSA JWK: jwt-compact writes `p` and `q` but not the
/// CRT parameters `dp`, `dq` and `qi`, and standard JOSE libraries refuse a key with some
/// of them and not all.
fn rsa_private_jwk(key: &RsaPrivateKey) -> Value {
    use rsa::traits::PrivateKeyParts;
    let mut jwk = jwk_value(&JsonWebKey::from(key));
    let mut key = key.clone();
    let crt = match key.precompute() {
        Ok(()) => [
            ("dp", key.dp().map(|value| value.to_bytes_be())),
            ("dq", key.dq().map(|value| value.to_bytes_be())),
            ("qi", key.crt_coefficient().map(|value| value.to_bytes_be())),
        ],
        Err(_) => [("dp", None), ("dq", None), ("qi", None)],
    };
    if let Some(object) = jwk.as_object_mut() {
        if crt.iter().all(|(_, value)| value.is_some()) {
            for (name, value) in crt {
                let value = value.unwrap_or_default();
                object.insert(name.into(), Base64UrlUnpadded::encode_string(&value).into());
            }
        } else {
            // Without all CRT parameters, none of them: `d` alone is still a valid key.
            object.remove("p");
            object.remove("q");
        }
    }
    jwk
}

/// The private scalar `d` of an EC JWK on `curve`.
fn ec_scalar<'j>(jwk: &'j JsonWebKey<'_>, curve: &str) -> Result<&'j [u8], MintError> {
    match jwk {
        JsonWebKey::EllipticCurve {
            curve: named,
            secret: Some(d),
            ..
        } if named.as_ref() == curve => Ok(d.as_ref()),
        _ => Err(MintError::BadKey(format!("needs a private {curve} EC key"))),
    }
}

/// A public EC JWK from the coordinates of an uncompressed point.
fn ec_public_jwk(curve: &str, x: Option<&impl AsRef<[u8]>>, y: Option<&impl AsRef<[u8]>>) -> Value {
    json!({
        "kty": "EC",
        "crv": curve,
        "x": x.map(|x| Base64UrlUnpadded::encode_string(x.as_ref())),
        "y": y.map(|y| Base64UrlUnpadded::encode_string(y.as_ref())),
    })
}

fn jwk_value(jwk: &JsonWebKey<'_>) -> Value {
    serde_json::to_value(jwk).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{KeySet, SignatureChecks, SymmetricKeys};

    #[test]
    fn every_algorithm_signs_tokens_its_public_jwk_verifies() {
        for alg in Alg::ALL {
            let key = SigningKey::generate(alg, Some("k1")).unwrap();
            let jwks = json!({"keys": [key.public_jwk()]});
            let keys = KeySet::from_jwks_value(&jwks, SymmetricKeys::Allowed)
                .unwrap()
                .keys;
            let token = key.sign(&json!({"sub": "a"})).unwrap();
            let (signed, signature) = token.rsplit_once('.').unwrap();
            let signature = Base64UrlUnpadded::decode_vec(signature).unwrap();
            let verifier = &keys.keys()[0];
            assert!(
                verifier.verify(
                    alg,
                    signed.as_bytes(),
                    &signature,
                    &SignatureChecks::default()
                ),
                "{alg}"
            );
            let mut tampered = signed.as_bytes().to_vec();
            tampered[5] ^= 1;
            assert!(
                !verifier.verify(alg, &tampered, &signature, &SignatureChecks::default()),
                "{alg} tampered"
            );
        }
    }

    #[test]
    fn private_jwk_round_trips() {
        for alg in [
            Alg::Rs256,
            Alg::Es256,
            Alg::Es384,
            Alg::Es512,
            Alg::EdDsa,
            Alg::Hs512,
        ] {
            let key = SigningKey::generate(alg, Some("r")).unwrap();
            let again = SigningKey::from_jwk(&key.private_jwk()).unwrap();
            assert_eq!(again.alg(), alg);
            assert_eq!(again.public_jwk(), key.public_jwk());
        }
    }

    #[test]
    fn private_rsa_jwks_carry_every_crt_parameter() {
        use rsa::BigUint;
        let key = SigningKey::generate(Alg::Rs256, Some("r")).unwrap();
        let jwk = key.private_jwk();
        let number = |name: &str| {
            let text = jwk[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} missing"));
            BigUint::from_bytes_be(&Base64UrlUnpadded::decode_vec(text).unwrap())
        };
        let one = BigUint::from(1u8);
        let (d, p, q) = (number("d"), number("p"), number("q"));
        assert_eq!(number("dp"), &d % (&p - &one));
        assert_eq!(number("dq"), &d % (&q - &one));
        assert_eq!((number("qi") * &q) % &p, one);
    }

    #[test]
    fn claims_must_be_an_object() {
        let key = SigningKey::generate(Alg::Hs256, None).unwrap();
        assert_eq!(
            key.sign(&json!([1])).unwrap_err(),
            MintError::NotAnObject("claims")
        );
    }
}
