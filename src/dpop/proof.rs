//! Checking one DPoP proof (RFC 9449 §4.3), completely: one `DPoP` header; a compact JWS
//! whose header has `typ` `dpop+jwt`, an allowed asymmetric `alg` and a `jwk` holding a
//! public key only; the signature by that key; `htm` and `htu` naming this request; `iat`
//! within the window; a `jti`; `ath` the hash of the access token presented; the nonce
//! when nonces are required. Only a proof that passed all of it becomes a
//! [`VerifiedProof`]; binding it to the token (`cnf.jkt`) and the once-only rule are the
//! caller's next steps.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::htu::TargetUri;
use super::nonce::NonceKey;
use super::replay::ProofId;
use super::thumbprint::{jwk_thumbprint, sha256_base64url};
use super::DpopSettings;
use crate::jwks::{parse_jwk, significant_bits, Alg, KeyFamily, SignatureChecks, SymmetricKeys};
use crate::request::RequestView;
use crate::time::UnixSeconds;
use crate::token::{decode_base64url, split_jws, JwsParts};

/// Why a proof is refused. Every variant is 401 `invalid_dpop_proof`, except
/// [`ProofError::NonceRequired`] (401 `use_dpop_nonce`, with a fresh nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    Missing,
    Multiple,
    TooLarge,
    Malformed(&'static str),
    WrongType,
    AlgorithmNotAllowed,
    /// The `jwk` header holds private key material, or is not a usable public key.
    BadKey(&'static str),
    BadSignature,
    WrongMethod,
    WrongUri,
    Stale,
    IssuedInFuture,
    MissingJti,
    MissingAth,
    WrongAth,
    /// No nonce, or one this Envoy did not issue recently.
    NonceRequired,
    /// The proof's key is not the one the token is bound to (`cnf.jkt`).
    KeyMismatch,
    /// The proof was used before.
    Replayed,
}

impl ProofError {
    /// The RFC 9449 §7.1 error code. A valid proof by another key than the token's
    /// `cnf.jkt` is a problem of the token's binding, not of the proof: §7.1's example
    /// answers it `invalid_token` ("Invalid DPoP key binding"), and so does claimgate.
    pub fn error_code(self) -> &'static str {
        match self {
            ProofError::NonceRequired => "use_dpop_nonce",
            ProofError::KeyMismatch => "invalid_token",
            _ => "invalid_dpop_proof",
        }
    }

    /// Fixed text, safe to send to the client (never proof or token content).
    pub fn description(self) -> &'static str {
        match self {
            ProofError::Missing => "a DPoP proof is required",
            ProofError::Multiple => "more than one DPoP proof",
            ProofError::TooLarge => "DPoP proof too large",
            ProofError::Malformed(what) => what,
            ProofError::WrongType => "DPoP proof typ must be dpop+jwt",
            ProofError::AlgorithmNotAllowed => "DPoP proof algorithm not allowed",
            ProofError::BadKey(what) => what,
            ProofError::BadSignature => "invalid DPoP proof signature",
            ProofError::WrongMethod => "DPoP proof htm does not match the request method",
            ProofError::WrongUri => "DPoP proof htu does not match the request URI",
            ProofError::Stale => "DPoP proof is too old",
            ProofError::IssuedInFuture => "DPoP proof issued in the future",
            ProofError::MissingJti => "DPoP proof has no jti",
            ProofError::MissingAth => "DPoP proof has no ath",
            ProofError::WrongAth => "DPoP proof ath does not match the access token",
            ProofError::NonceRequired => "a fresh DPoP nonce is required",
            ProofError::KeyMismatch => "DPoP proof key does not match the token binding",
            ProofError::Replayed => "DPoP proof has been used before",
        }
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl std::error::Error for ProofError {}

/// A proof that passed every check of [`verify_proof`]: a proof of possession of the key
/// whose thumbprint it carries, for this request, now. Only verification makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedProof {
    jkt: String,
    id: ProofId,
    expires_at: i64,
}

impl VerifiedProof {
    /// The RFC 7638 thumbprint of the proof's key (compared with the token's `cnf.jkt`).
    pub fn jkt(&self) -> &str {
        &self.jkt
    }

    /// The proof's identity for the once-only record.
    pub fn id(&self) -> ProofId {
        self.id
    }

    /// When the proof would be refused as stale; the once-only record keeps it till then.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }
}

/// The request a proof must name, and the key it must be signed with.
pub struct ProofContext<'a> {
    pub request: &'a RequestView<'a>,
    /// The access token presented with the proof (`ath` is its hash).
    pub access_token: &'a str,
    /// The token's `cnf.jkt`: the thumbprint of the only key whose proofs count. Compared
    /// before the signature is checked, so a proof by any other key costs a hash.
    pub bound_jkt: &'a str,
    pub now: UnixSeconds,
    /// Present when nonces are required.
    pub nonce_key: Option<&'a NonceKey>,
    /// Where the proof's signature is checked (and counted).
    pub checks: &'a SignatureChecks<'a>,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Map<String, Value>>,
    #[serde(default)]
    crit: Option<Value>,
}

/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The proof in the request's `DPoP` header, checked completely.
pub fn verify_proof(
    settings: &DpopSettings,
    context: &ProofContext<'_>,
) -> Result<VerifiedProof, ProofError> {
    let mut headers = context.request.header_values("dpop");
    let proof = headers.next().ok_or(ProofError::Missing)?;
    if headers.next().is_some() || proof.contains(&b',') {
        return Err(ProofError::Multiple);
    }
    if proof.len() > settings.max_proof_bytes {
        return Err(ProofError::TooLarge);
    }
    let proof = std::str::from_utf8(proof)
        .map_err(|_| ProofError::Malformed("DPoP proof is not ASCII"))?
        .trim();
    let JwsParts {
        signed_data: signed,
        header,
        payload,
        signature,
    } = split_jws(proof).map_err(|_| ProofError::Malformed("DPoP proof is not a JWT"))?;
    let decode = |part: &str| {
        decode_base64url(part.as_bytes())
            .ok_or(ProofError::Malformed("DPoP proof is not valid base64url"))
    };
    let header: ProofHeader = std::str::from_utf8(&decode(header)?)
        .ok()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or(ProofError::Malformed("DPoP proof header is not valid"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&decode(payload)?)
        .map_err(|_| ProofError::Malformed("DPoP proof claims are not a JSON object"))?;
    let signature = decode(signature)?;
    if !header
        .typ
        .as_deref()
        .is_some_and(|typ| typ.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(ProofError::WrongType);
    }
    if header.crit.is_some() {
        return Err(ProofError::Malformed(
            "DPoP proof has critical header extensions",
        ));
    }
    let alg = Alg::from_name(&header.alg)
        .filter(|alg| alg.family() != KeyFamily::Hmac && settings.algorithms.contains(alg))
        .ok_or(ProofError::AlgorithmNotAllowed)?;
    let jwk = header
        .jwk
        .ok_or(ProofError::BadKey("DPoP proof has no jwk"))?;
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return Err(ProofError::BadKey("DPoP proof jwk must be a public key"));
    }
    let jkt = jwk_thumbprint(&jwk).ok_or(ProofError::BadKey(
        "DPoP proof jwk is not a usable public key",
    ))?;
    if jkt != context.bound_jkt {
        return Err(ProofError::KeyMismatch);
    }
    check_rsa_size(&jwk)?;
    let key = parse_jwk(&Value::Object(jwk), SymmetricKeys::Refused)
        .map_err(|_| ProofError::BadKey("DPoP proof jwk is not a usable public key"))?;
    if !key.fits(alg) {
        return Err(ProofError::BadKey("DPoP proof jwk does not fit its alg"));
    }
    if !key.verify(alg, signed.as_bytes(), &signature, context.checks) {
        return Err(ProofError::BadSignature);
    }
    check_claims(settings, context, &claims)?;
    let jti = text_claim(&claims, "jti").ok_or(ProofError::MissingJti)?;
    let iat = iat(&claims)?;
    Ok(VerifiedProof {
        id: ProofId::new(&jkt, jti),
        jkt,
        expires_at: iat
            .saturating_add(settings.max_age_seconds)
            .saturating_add(1),
    })
}

/// Largest RSA modulus a proof key may have, in bits. Clients make 2048- to 4096-bit keys;
/// a larger one only makes the signature check (in the module: ≈ quadratic in the size)
/// a weapon. Issuer keys come from configuration or the issuer's JWKS and are not bound
/// here.
pub const MAX_PROOF_RSA_BITS: usize = 4096;
/// Largest RSA public exponent a proof key may have, in bits (65537 has 17; a 64-bit
/// exponent makes each check ≈ 4 times slower for nothing).
pub const MAX_PROOF_RSA_EXPONENT_BITS: usize = 32;

/// Refuses RSA proof keys outside [`MAX_PROOF_RSA_BITS`] and
/// [`MAX_PROOF_RSA_EXPONENT_BITS`] before the key is even parsed (the smallest size is
/// the issuer keys' minimum, checked by [`parse_jwk`]).
fn check_rsa_size(jwk: &Map<String, Value>) -> Result<(), ProofError> {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Ok(());
    }
    let bits = |member: &str| {
        jwk.get(member)
            .and_then(Value::as_str)
            .and_then(|text| decode_base64url(text.as_bytes()))
            .map(|bytes| significant_bits(&bytes))
    };
    match (bits("n"), bits("e")) {
        (Some(n), Some(e)) if n <= MAX_PROOF_RSA_BITS && e <= MAX_PROOF_RSA_EXPONENT_BITS => Ok(()),
        (Some(_), Some(_)) => Err(ProofError::BadKey(
            "DPoP proof RSA key is larger than 4096 bits or its exponent than 32 bits",
        )),
        _ => Err(ProofError::BadKey(
            "DPoP proof jwk is not a usable public key",
        )),
    }
}

fn text_claim<'c>(claims: &'c Map<String, Value>, name: &str) -> Option<&'c str> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

fn iat(claims: &Map<String, Value>) -> Result<i64, ProofError> {
    claims
        .get("iat")
        .and_then(Value::as_f64)
        .filter(|seconds| seconds.is_finite() && seconds.abs() < 1e15)
        .map(|seconds| seconds.floor() as i64)
        .ok_or(ProofError::Malformed(
            "DPoP proof iat is missing or not a number",
        ))
}

/// `jti`, `htm`, `htu`, `iat`, `ath` and `nonce`, in that order.
fn check_claims(
    settings: &DpopSettings,
    context: &ProofContext<'_>,
    claims: &Map<String, Value>,
) -> Result<(), ProofError> {
    if text_claim(claims, "jti").is_none_or(|jti| jti.len() > 256) {
        return Err(ProofError::MissingJti);
    }
    if text_claim(claims, "htm") != Some(context.request.method()) {
        return Err(ProofError::WrongMethod);
    }
    let htu = text_claim(claims, "htu").ok_or(ProofError::WrongUri)?;
    // Both must be formed: a URI that cannot be is never equal to anything.
    let named = TargetUri::parse(htu).map_err(|_| ProofError::WrongUri)?;
    let requested =
        TargetUri::of_request(settings, context.request).map_err(|_| ProofError::WrongUri)?;
    if named != requested {
        return Err(ProofError::WrongUri);
    }
    let iat = iat(claims)?;
    if iat > context.now.0.saturating_add(settings.clock_skew_seconds) {
        return Err(ProofError::IssuedInFuture);
    }
    if iat < context.now.0.saturating_sub(settings.max_age_seconds) {
        return Err(ProofError::Stale);
    }
    let ath = text_claim(claims, "ath").ok_or(ProofError::MissingAth)?;
    if ath != sha256_base64url(context.access_token.as_bytes()) {
        return Err(ProofError::WrongAth);
    }
    if let Some(key) = context.nonce_key {
        let fresh = text_claim(claims, "nonce")
            .is_some_and(|nonce| key.accepts(nonce, context.now, settings.nonce_lifetime_seconds));
        if !fresh {
            return Err(ProofError::NonceRequired);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mint::{ProofRequest, SigningKey};
    use crate::request::{request_headers, Scheme};

    const NOW: i64 = 1_800_000_000;
    const URL: &str = "https://api.example.com/orders";
    const TOKEN: &str = "header.payload.signature";

    fn proof_with<'a>(key: &SigningKey, edit: impl FnOnce(&mut ProofRequest<'a>)) -> String {
        let mut request = ProofRequest {
            method: "POST",
            url: URL,
            access_token: Some(TOKEN),
            nonce: None,
            iat: NOW,
            jti: "jti-1",
        };
        edit(&mut request);
        key.dpop_proof(&request).unwrap()
    }

    fn check_with(
        settings: &DpopSettings,
        proofs: &[&str],
        method: &str,
        nonce_key: Option<&NonceKey>,
    ) -> Result<VerifiedProof, ProofError> {
        let headers = request_headers(
            method,
            "/orders?page=2",
            "API.example.com:443",
            Some("https"),
            proofs.iter().map(|proof| ("dpop", proof.as_bytes())),
        );
        let request = RequestView::new(&headers);
        let bound = proofs
            .first()
            .map(|proof| header_jkt(proof))
            .unwrap_or_default();
        verify_proof(
            settings,
            &ProofContext {
                request: &request,
                access_token: TOKEN,
                bound_jkt: &bound,
                now: UnixSeconds(NOW),
                nonce_key,
                checks: &SignatureChecks::default(),
            },
        )
    }

    /// The thumbprint of the key a proof's header names: these tests bind the token to
    /// whatever key the proof claims, so the checks after the binding are reached.
    fn header_jkt(proof: &str) -> String {
        proof
            .split('.')
            .next()
            .and_then(|header| decode_base64url(header.as_bytes()))
            .and_then(|header| serde_json::from_slice::<Value>(&header).ok())
            .and_then(|header| {
                header
                    .get("jwk")
                    .and_then(Value::as_object)
                    .and_then(jwk_thumbprint)
            })
            .unwrap_or_default()
    }

    fn check(proof: &str) -> Result<VerifiedProof, ProofError> {
        check_with(&DpopSettings::default(), &[proof], "POST", None)
    }

    #[test]
    fn a_proof_for_this_request_passes_and_names_its_key() {
        for alg in [Alg::Es256, Alg::Es512, Alg::EdDsa, Alg::Rs256, Alg::Ps256] {
            let key = SigningKey::generate(alg, None).unwrap();
            let verified = check(&proof_with(&key, |_| {})).unwrap();
            assert_eq!(Some(verified.jkt()), key.thumbprint().as_deref(), "{alg}");
            assert_eq!(verified.expires_at(), NOW + 61);
            assert_eq!(verified.id(), ProofId::new(verified.jkt(), "jti-1"));
        }
        // htu: scheme and host in any case, the default port, a fragment: all the same URI.
        let key = SigningKey::generate(Alg::Es256, None).unwrap();
        let spelled = proof_with(&key, |r| r.url = "HTTPS://api.EXAMPLE.com:443/orders#top");
        assert!(check(&spelled).is_ok());
    }

    #[test]
    fn proofs_for_another_request_time_or_token_are_refused() {
        let key = SigningKey::generate(Alg::Es256, None).unwrap();
        let cases: [(&str, String, ProofError); 8] = [
            (
                "wrong method",
                proof_with(&key, |r| r.method = "GET"),
                ProofError::WrongMethod,
            ),
            (
                "wrong URL",
                proof_with(&key, |r| r.url = "https://api.example.com/admin"),
                ProofError::WrongUri,
            ),
            (
                "other host",
                proof_with(&key, |r| r.url = "https://evil.example.com/orders"),
                ProofError::WrongUri,
            ),
            (
                "http",
                proof_with(&key, |r| r.url = "http://api.example.com/orders"),
                ProofError::WrongUri,
            ),
            (
                "stale",
                proof_with(&key, |r| r.iat = NOW - 61),
                ProofError::Stale,
            ),
            (
                "future",
                proof_with(&key, |r| r.iat = NOW + 6),
                ProofError::IssuedInFuture,
            ),
            (
                "no ath",
                proof_with(&key, |r| r.access_token = None),
                ProofError::MissingAth,
            ),
            (
                "other token",
                proof_with(&key, |r| r.access_token = Some("another.token.x")),
                ProofError::WrongAth,
            ),
        ];
        for (case, proof, error) in cases {
            assert_eq!(check(&proof), Err(error), "{case}");
        }
        assert_eq!(
            check(&proof_with(&key, |r| r.jti = "")),
            Err(ProofError::MissingJti)
        );
    }

    #[test]
    fn forged_proofs_are_refused() {
        let key = SigningKey::generate(Alg::Es256, None).unwrap();
        let good = proof_with(&key, |_| {});
        // Tampered claims (another jti) under the original signature.
        let (header, rest) = good.split_once('.').unwrap();
        let (_, signature) = rest.split_once('.').unwrap();
        let other = proof_with(&key, |r| r.jti = "jti-2");
        let payload = other.split('.').nth(1).unwrap();
        assert_eq!(
            check(&format!("{header}.{payload}.{signature}")),
            Err(ProofError::BadSignature)
        );
        // Signed by another key than the jwk header names.
        let impostor = SigningKey::generate(Alg::Es256, None).unwrap();
        let mut forged_header = Map::new();
        forged_header.insert("typ".into(), "dpop+jwt".into());
        forged_header.insert("jwk".into(), key.public_jwk());
        let claims = serde_json::json!({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW,
            "ath": sha256_base64url(TOKEN.as_bytes())});
        let forged = impostor
            .sign_with_header(forged_header.clone(), &claims)
            .unwrap();
        assert_eq!(check(&forged), Err(ProofError::BadSignature));
        // A private key in the header.
        let mut private_header = Map::new();
        private_header.insert("typ".into(), "dpop+jwt".into());
        private_header.insert("jwk".into(), key.private_jwk());
        let leaked = key.sign_with_header(private_header, &claims).unwrap();
        assert_eq!(
            check(&leaked),
            Err(ProofError::BadKey("DPoP proof jwk must be a public key"))
        );
        // Wrong typ, alg none, an algorithm not allowed, no jwk.
        let mut header = forged_header.clone();
        header.insert("typ".into(), "JWT".into());
        assert_eq!(
            check(&key.sign_with_header(header, &claims).unwrap()),
            Err(ProofError::WrongType)
        );
        let mut header = forged_header.clone();
        header.insert("alg".into(), "none".into());
        assert_eq!(
            check(&key.sign_with_header(header, &claims).unwrap()),
            Err(ProofError::AlgorithmNotAllowed)
        );
        let mut header = forged_header.clone();
        header.remove("jwk");
        assert!(matches!(
            check(&key.sign_with_header(header, &claims).unwrap()),
            Err(ProofError::BadKey(_))
        ));
        let narrow = DpopSettings {
            algorithms: vec![Alg::EdDsa],
            ..DpopSettings::default()
        };
        assert_eq!(
            check_with(&narrow, &[&good], "POST", None),
            Err(ProofError::AlgorithmNotAllowed)
        );
        for garbage in ["", "abc", "a.b.c", "!!.!!.!!"] {
            assert!(
                matches!(check(garbage), Err(ProofError::Malformed(_))),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn exactly_one_proof_and_a_fresh_nonce_when_nonces_are_on() {
        let key = SigningKey::generate(Alg::Es256, None).unwrap();
        let good = proof_with(&key, |_| {});
        let settings = DpopSettings::default();
        assert_eq!(
            check_with(&settings, &[], "POST", None),
            Err(ProofError::Missing)
        );
        assert_eq!(
            check_with(&settings, &[&good, &good], "POST", None),
            Err(ProofError::Multiple)
        );
        let nonces = NonceKey::random().unwrap();
        assert_eq!(
            check_with(&settings, &[&good], "POST", Some(&nonces)),
            Err(ProofError::NonceRequired)
        );
        let nonce = nonces.issue(UnixSeconds(NOW - 10));
        let with_nonce = proof_with(&key, |r| r.nonce = Some(&nonce));
        assert!(check_with(&settings, &[&with_nonce], "POST", Some(&nonces)).is_ok());
        let old = nonces.issue(UnixSeconds(NOW - 301));
        let with_old = proof_with(&key, |r| r.nonce = Some(&old));
        assert_eq!(
            check_with(&settings, &[&with_old], "POST", Some(&nonces)),
            Err(ProofError::NonceRequired)
        );
        let big = DpopSettings {
            max_proof_bytes: 256,
            ..DpopSettings::default()
        };
        assert_eq!(
            check_with(&big, &[&good], "POST", None),
            Err(ProofError::TooLarge)
        );
    }

    #[test]
    fn htu_names_the_scheme_and_host_the_client_used_behind_another_proxy() {
        // TLS and the public name end at a proxy in front of Envoy: Envoy sees
        // http://internal:8080, the client addressed https://api.example.com.
        let headers = request_headers(
            "GET",
            "/orders?x=1",
            "internal:8080",
            Some("http"),
            std::iter::empty(),
        );
        let request = RequestView::new(&headers);
        let uri = |settings: &DpopSettings| {
            TargetUri::of_request(settings, &request).map(|uri| uri.to_string())
        };
        assert_eq!(
            uri(&DpopSettings::default()),
            Ok("http://internal:8080/orders".into())
        );
        let behind = DpopSettings {
            htu_scheme: Some(Scheme::Https),
            htu_authority: Some("api.example.com".into()),
            ..DpopSettings::default()
        };
        assert_eq!(uri(&behind), Ok("https://api.example.com/orders".into()));
    }

    /// A proof whose header carries `jwk` and whose signature is junk.
    fn junk_proof(jwk: &Value) -> String {
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": jwk});
        let claims = serde_json::json!({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW,
            "ath": sha256_base64url(TOKEN.as_bytes())});
        let encode = |value: &Value| {
            base64ct::Base64UrlUnpadded::encode_string(value.to_string().as_bytes())
        };
        use base64ct::Encoding;
        format!(
            "{}.{}.{}",
            encode(&header),
            encode(&claims),
            "A".repeat(1600)
        )
    }

    #[test]
    fn rfc9449_4_3_oversized_rsa_proof_keys_are_refused_before_any_signature_work() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        // A 9,600-bit modulus with a 64-bit exponent: ≈ 20 times an ES256 check if tried.
        let mut modulus = vec![0xc5_u8; 1200];
        if let Some(last) = modulus.last_mut() {
            *last |= 1;
        }
        let huge = serde_json::json!({"kty": "RSA",
            "n": Base64UrlUnpadded::encode_string(&modulus),
            "e": Base64UrlUnpadded::encode_string(&[0xff; 8])});
        let settings = DpopSettings {
            max_proof_bytes: 16_384,
            ..DpopSettings::default()
        };
        let proof = junk_proof(&huge);
        assert_eq!(
            check_with(&settings, &[&proof], "POST", None),
            Err(ProofError::BadKey(
                "DPoP proof RSA key is larger than 4096 bits or its exponent than 32 bits"
            ))
        );
        // A 4096-bit modulus with a 33-bit exponent: the exponent alone is refused.
        let mut modulus = vec![0xc5_u8; 512];
        if let Some(last) = modulus.last_mut() {
            *last |= 1;
        }
        let big_exponent = serde_json::json!({"kty": "RSA",
            "n": Base64UrlUnpadded::encode_string(&modulus),
            "e": Base64UrlUnpadded::encode_string(&[1, 0, 0, 0, 1])});
        assert!(matches!(
            check_with(&settings, &[&junk_proof(&big_exponent)], "POST", None),
            Err(ProofError::BadKey(_))
        ));
        // Bound to another key, the same proof costs one hash: a key mismatch.
        let headers = request_headers(
            "POST",
            "/orders",
            "api.example.com",
            Some("https"),
            [("dpop", proof.as_bytes())],
        );
        let request = RequestView::new(&headers);
        let context = ProofContext {
            request: &request,
            access_token: TOKEN,
            bound_jkt: "another-key-thumbprint",
            now: UnixSeconds(NOW),
            nonce_key: None,
            checks: &SignatureChecks::default(),
        };
        assert_eq!(
            verify_proof(&settings, &context),
            Err(ProofError::KeyMismatch)
        );
    }

    #[test]
    fn rfc9449_4_3_proof_members_of_the_wrong_type_or_range_are_refused() {
        let key = SigningKey::generate(Alg::Es256, None).unwrap();
        let base = serde_json::json!({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW,
            "ath": sha256_base64url(TOKEN.as_bytes())});
        let mut header = Map::new();
        header.insert("typ".into(), "dpop+jwt".into());
        header.insert("jwk".into(), key.public_jwk());
        let sign = |claims: &Value| key.sign_with_header(header.clone(), claims).unwrap();
        assert!(check(&sign(&base)).is_ok());
        let cases: Vec<(&str, Value, ProofError)> = vec![
            (
                "iat",
                json_str("1800000000"),
                ProofError::Malformed("DPoP proof iat is missing or not a number"),
            ),
            (
                "iat",
                serde_json::json!([NOW]),
                ProofError::Malformed("DPoP proof iat is missing or not a number"),
            ),
            (
                "iat",
                serde_json::json!(1e300),
                ProofError::Malformed("DPoP proof iat is missing or not a number"),
            ),
            ("iat", serde_json::json!(-1), ProofError::Stale),
            (
                "iat",
                serde_json::json!(NOW + 86_400),
                ProofError::IssuedInFuture,
            ),
            (
                "iat",
                serde_json::json!(u64::MAX),
                ProofError::Malformed("DPoP proof iat is missing or not a number"),
            ),
            ("jti", serde_json::json!(7), ProofError::MissingJti),
            ("jti", serde_json::json!(["a"]), ProofError::MissingJti),
            ("jti", json_str(&"j".repeat(257)), ProofError::MissingJti),
            ("htm", json_str("post"), ProofError::WrongMethod),
            ("htm", serde_json::json!(["POST"]), ProofError::WrongMethod),
            ("htu", serde_json::json!([URL]), ProofError::WrongUri),
            ("htu", json_str(""), ProofError::WrongUri),
            ("htu", json_str("x"), ProofError::WrongUri),
            ("htu", json_str("/orders"), ProofError::WrongUri),
            (
                "htu",
                json_str("ftp://api.example.com/orders"),
                ProofError::WrongUri,
            ),
            (
                "htu",
                json_str("https://user@api.example.com/orders"),
                ProofError::WrongUri,
            ),
            ("ath", serde_json::json!(1), ProofError::MissingAth),
            ("ath", json_str(""), ProofError::MissingAth),
        ];
        for (member, value, error) in cases {
            let mut claims = base.clone();
            claims[member] = value.clone();
            assert_eq!(check(&sign(&claims)), Err(error), "{member}: {value}");
        }
        // RFC 9449 §4.3 check 3: every required claim present.
        for (member, error) in [
            ("jti", ProofError::MissingJti),
            ("htm", ProofError::WrongMethod),
            ("htu", ProofError::WrongUri),
            (
                "iat",
                ProofError::Malformed("DPoP proof iat is missing or not a number"),
            ),
            ("ath", ProofError::MissingAth),
        ] {
            let mut claims = base.clone();
            claims.as_object_mut().unwrap().remove(member);
            assert_eq!(check(&sign(&claims)), Err(error), "without {member}");
        }
    }

    fn json_str(text: &str) -> Value {
        Value::String(text.to_owned())
    }
}
