//! Verification: the provider is chosen by the exact issuer, the algorithm by the
//! provider's allow-list and the key, then the signature, the time claims and the
//! audience are checked. Only a token that passed all of it becomes a [`VerifiedToken`].

use std::cell::{OnceCell, RefCell};

use serde_json::Value;

use super::{FoundToken, TokenError, UntrustedToken};
use crate::claims::Claims;
use crate::identity::SharedIdentityHeaders;
use crate::jwks::{Alg, KeySet, SignatureChecks};
use crate::key_miss::KeyMiss;
use crate::policy::{Evaluation, RequestFacts, RouteVerdict};
use crate::provider::{Provider, ProviderId, Providers};
use crate::time::UnixSeconds;

/// A token whose signature and claims passed every check: a proof. Its fields are
/// private and only verification ([`verify`]) makes one, so holding a `VerifiedToken`
/// means the token was verified. Tests, benches and `claimgate test`, which decide with
/// given claims, use [`VerifiedToken::assume_verified_for_tests`], which is not compiled
/// into the Envoy module.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    provider: ProviderId,
    alg: Alg,
    kid: Option<String>,
    claims: Claims,
    expires_at: Option<i64>,
    identity_headers: OnceCell<SharedIdentityHeaders>,
    /// The policy's evaluation of the last route this token was used on, when it may be
    /// reused (issue 22). Borrowed only with `try_borrow*`: never a panic.
    remembered: RefCell<Option<RouteVerdict>>,
}

impl VerifiedToken {
    /// Only verification calls this.
    fn new(
        provider: ProviderId,
        alg: Alg,
        kid: Option<String>,
        claims: Claims,
        expires_at: Option<i64>,
    ) -> VerifiedToken {
        VerifiedToken {
            provider,
            alg,
            kid,
            claims,
            expires_at,
            identity_headers: OnceCell::new(),
            remembered: RefCell::new(None),
        }
    }

    /// Claims taken as verified without any token: for policy tests (`claimgate test`
    /// cases with `claims`), unit tests and benches. Not compiled into the Envoy module.
    #[cfg(not(target_os = "wasi"))]
    pub fn assume_verified_for_tests(
        provider: ProviderId,
        alg: Alg,
        claims: Claims,
        expires_at: Option<i64>,
    ) -> VerifiedToken {
        VerifiedToken::new(provider, alg, None, claims, expires_at)
    }

    /// The provider whose keys verified the token.
    pub fn provider(&self) -> ProviderId {
        self.provider
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// `exp`, when present (whole seconds).
    pub fn expires_at(&self) -> Option<i64> {
        self.expires_at
    }

    /// The policy's evaluation remembered for this token on `request`'s route.
    pub(crate) fn remembered_evaluation(&self, request: &RequestFacts<'_>) -> Option<Evaluation> {
        let remembered = self.remembered.try_borrow().ok()?;
        remembered.as_ref()?.for_route(request).cloned()
    }

    /// Remembers `evaluation` of `request`'s route in place of the last one, when it may
    /// be reused ([`RouteVerdict::remember`]).
    pub(crate) fn remember_evaluation(&self, request: &RequestFacts<'_>, evaluation: &Evaluation) {
        if let (Some(route), Ok(mut remembered)) = (
            RouteVerdict::remember(request, evaluation),
            self.remembered.try_borrow_mut(),
        ) {
            *remembered = Some(route);
        }
    }

    /// The identity headers these claims map to, worked out once per token (a cached
    /// token reuses them on every hit).
    pub(crate) fn identity_headers(&self) -> &OnceCell<SharedIdentityHeaders> {
        &self.identity_headers
    }
}

/// Verifies `found` against the providers. `keys(id)` gives the current key set of a
/// provider (replaceable at run time; `None` while none has been loaded); `checks` says
/// where signatures are checked, and counts those checked in the module.
pub fn verify<'k>(
    found: &FoundToken<'_>,
    providers: &Providers,
    keys: impl Fn(ProviderId) -> Option<&'k KeySet>,
    checks: &SignatureChecks<'_>,
    now: UnixSeconds,
) -> Result<VerifiedToken, TokenError> {
    let global_limit = providers.max_token_bytes();
    if found.token.len() > global_limit {
        return Err(TokenError::TooLarge {
            limit: global_limit,
        });
    }
    let untrusted = UntrustedToken::parse(&found.token)?;
    let alg = Alg::from_name(untrusted.alg_name()).ok_or(TokenError::UnsupportedAlgorithm)?;
    if untrusted.has_crit {
        return Err(TokenError::CriticalHeader);
    }
    let issuer = untrusted.issuer().ok_or(TokenError::UnknownIssuer)?;
    let (id, provider) = providers
        .by_issuer(issuer)
        .ok_or(TokenError::UnknownIssuer)?;
    if found.token.len() > provider.max_token_bytes {
        return Err(TokenError::TooLarge {
            limit: provider.max_token_bytes,
        });
    }
    if !provider.reads_from(&found.locations) {
        return Err(TokenError::WrongLocation);
    }
    if !provider.algorithms.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if let Some(expected) = &provider.token_type {
        if !untrusted
            .typ()
            .is_some_and(|typ| media_type_matches(typ, expected))
        {
            return Err(TokenError::WrongTokenType);
        }
    }
    let key_set = keys(id).ok_or(TokenError::KeysMissing(KeyMiss::no_keys(id)))?;
    check_signature(&untrusted, alg, key_set, checks, id)?;
    let expires_at = check_times(untrusted.unverified_claims(), provider, now)?;
    check_audience(untrusted.unverified_claims(), provider)?;
    let (kid, claims) = untrusted.into_kid_and_claims();
    Ok(VerifiedToken::new(id, alg, kid, claims, expires_at))
}

fn check_signature(
    token: &UntrustedToken<'_>,
    alg: Alg,
    keys: &KeySet,
    checks: &SignatureChecks<'_>,
    provider: ProviderId,
) -> Result<(), TokenError> {
    let kid = token.kid();
    let mut tried = false;
    for key in keys.candidates(kid, alg) {
        tried = true;
        if key.verify(
            alg,
            token.signed_data().as_bytes(),
            token.signature(),
            checks,
        ) {
            return Ok(());
        }
    }
    match (tried, kid) {
        (true, _) => Err(TokenError::BadSignature),
        (false, Some(kid)) if !keys.has_kid(kid) => {
            Err(TokenError::KeysMissing(KeyMiss::unknown_kid(provider)))
        }
        (false, _) => Err(TokenError::NoSuitableKey),
    }
}

/// Reads a NumericDate claim (seconds, integer or fractional; fractions are dropped).
fn numeric_date(claims: &Claims, name: &'static str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => match (number.as_i64(), number.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(seconds)) if seconds.is_finite() && seconds.abs() < 1e15 => {
                Ok(Some(seconds.floor() as i64))
            }
            _ => Err(TokenError::Malformed("a time claim is out of range")),
        },
        Some(_) => Err(TokenError::Malformed("a time claim is not a number")),
    }
}

fn check_times(
    claims: &Claims,
    provider: &Provider,
    now: UnixSeconds,
) -> Result<Option<i64>, TokenError> {
    let now = now.0;
    let skew = provider.clock_skew_seconds;
    let exp = numeric_date(claims, "exp")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    match exp {
        None if provider.require_exp => return Err(TokenError::MissingExpiry),
        Some(exp) if now >= exp.saturating_add(skew) => return Err(TokenError::Expired),
        _ => {}
    }
    if nbf.is_some_and(|nbf| now.saturating_add(skew) < nbf) {
        return Err(TokenError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(TokenError::IssuedInFuture);
    }
    if let Some(max) = provider.max_lifetime_seconds {
        let Some(exp) = exp else {
            // Without `exp` (only when `require_exp` is off) a token lives
            // `max_lifetime_seconds` from when it was issued; it must say when.
            let end = iat
                .or(nbf)
                .ok_or(TokenError::MissingExpiry)?
                .saturating_add(max);
            if now >= end.saturating_add(skew) {
                return Err(TokenError::Expired);
            }
            return Ok(Some(end));
        };
        let start = iat.or(nbf).unwrap_or(now);
        if exp.saturating_sub(start) > max || exp.saturating_sub(now) > max {
            return Err(TokenError::LifetimeTooLong);
        }
    }
    Ok(exp)
}

fn check_audience(claims: &Claims, provider: &Provider) -> Result<(), TokenError> {
    let accepted = |aud: &Value| {
        aud.as_str()
            .is_some_and(|aud| provider.audiences.iter().any(|a| a == aud))
    };
    let ok = match claims.get("aud") {
        Some(Value::Array(auds)) => auds.iter().any(accepted),
        Some(aud) => accepted(aud),
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::AudienceMismatch)
    }
}

/// `typ` comparison as RFC 7515 §4.1.9 describes: case-insensitive, `application/` optional.
fn media_type_matches(actual: &str, expected: &str) -> bool {
    let strip = |text: &str| {
        let lower = text.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(actual) == strip(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::SymmetricKeys;
    use crate::mint::SigningKey;
    use serde_json::{json, Map};

    const NOW: i64 = 1_800_000_000;
    const ISS: &str = "https://idp.example/";
    const AUD: &str = "https://api.example";

    fn provider(algorithms: Vec<Alg>) -> Provider {
        Provider {
            name: "idp".into(),
            issuer: ISS.into(),
            audiences: vec![AUD.into()],
            algorithms,
            locations: vec![0],
            require_exp: true,
            clock_skew_seconds: 60,
            max_lifetime_seconds: None,
            token_type: None,
            max_token_bytes: 8192,
            forward_token: true,
            inline_keys: None,
            remote: None,
            dpop: crate::provider::Binding::Off,
            mtls_binding: crate::provider::Binding::Off,
            insecure_accept_unchecked_binding: false,
        }
    }

    fn claims() -> Value {
        json!({"iss": ISS, "aud": AUD, "sub": "auth0|1", "exp": NOW + 600, "iat": NOW - 10})
    }

    fn setup(alg: Alg) -> (SigningKey, KeySet, Provider) {
        let key = SigningKey::generate(alg, Some("k1")).unwrap();
        let keys =
            KeySet::from_jwks_value(&json!({"keys": [key.public_jwk()]}), SymmetricKeys::Allowed)
                .unwrap()
                .keys;
        (key, keys, provider(vec![alg]))
    }

    fn check(
        token: String,
        provider: &Provider,
        keys: &KeySet,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        let found = FoundToken {
            token: token.into(),
            locations: vec![0],
        };
        verify(
            &found,
            &Providers::new(vec![provider.clone()]),
            |_| Some(keys),
            &SignatureChecks::default(),
            UnixSeconds(now),
        )
    }

    fn with(mut claims: Value, field: &str, value: Value) -> Value {
        claims[field] = value;
        claims
    }

    #[test]
    fn a_good_token_verifies_and_keeps_its_claims() {
        let (key, keys, provider) = setup(Alg::Es256);
        let verified = check(key.sign(&claims()).unwrap(), &provider, &keys, NOW).unwrap();
        assert_eq!(verified.claims()["sub"], json!("auth0|1"));
        assert_eq!(verified.expires_at(), Some(NOW + 600));
        assert_eq!(verified.kid(), Some("k1"));
    }

    #[test]
    fn time_claims_are_enforced_with_skew() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let sign = |c: Value| key.sign(&c).unwrap();
        let exp_past = with(claims(), "exp", json!(NOW - 61));
        assert_eq!(
            check(sign(exp_past), &provider, &keys, NOW).unwrap_err(),
            TokenError::Expired
        );
        let exp_in_skew = with(claims(), "exp", json!(NOW - 30));
        assert!(check(sign(exp_in_skew), &provider, &keys, NOW).is_ok());
        let nbf_future = with(claims(), "nbf", json!(NOW + 120));
        assert_eq!(
            check(sign(nbf_future), &provider, &keys, NOW).unwrap_err(),
            TokenError::NotYetValid
        );
        let iat_future = with(claims(), "iat", json!(NOW + 120));
        assert_eq!(
            check(sign(iat_future), &provider, &keys, NOW).unwrap_err(),
            TokenError::IssuedInFuture
        );
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            check(sign(no_exp.clone()), &provider, &keys, NOW).unwrap_err(),
            TokenError::MissingExpiry
        );
        let mut lenient = provider.clone();
        lenient.require_exp = false;
        assert!(check(sign(no_exp), &lenient, &keys, NOW).is_ok());
        let float_exp = with(claims(), "exp", json!((NOW + 600) as f64 + 0.5));
        assert!(check(sign(float_exp), &provider, &keys, NOW).is_ok());
        let text_exp = with(claims(), "exp", json!("tomorrow"));
        assert!(matches!(
            check(sign(text_exp), &provider, &keys, NOW).unwrap_err(),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn maximum_lifetime_is_enforced() {
        let (key, keys, mut provider) = setup(Alg::Hs256);
        provider.max_lifetime_seconds = Some(3600);
        let long = with(claims(), "exp", json!(NOW + 7200));
        assert_eq!(
            check(key.sign(&long).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::LifetimeTooLong
        );
        assert!(check(key.sign(&claims()).unwrap(), &provider, &keys, NOW).is_ok());
    }

    #[test]
    fn without_exp_a_token_lives_its_maximum_lifetime_from_iat() {
        let (key, keys, mut provider) = setup(Alg::Hs256);
        provider.require_exp = false;
        provider.max_lifetime_seconds = Some(3600);
        let issued = |iat: i64| {
            let mut claims = with(claims(), "iat", json!(iat));
            claims.as_object_mut().unwrap().remove("exp");
            key.sign(&claims).unwrap()
        };
        assert_eq!(
            check(issued(NOW - 600), &provider, &keys, NOW)
                .unwrap()
                .expires_at(),
            Some(NOW - 600 + 3600)
        );
        assert_eq!(
            check(issued(NOW - 7200), &provider, &keys, NOW).unwrap_err(),
            TokenError::Expired
        );
        let mut no_times = claims();
        no_times.as_object_mut().unwrap().remove("exp");
        no_times.as_object_mut().unwrap().remove("iat");
        assert_eq!(
            check(key.sign(&no_times).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::MissingExpiry
        );
    }

    #[test]
    fn audience_may_be_a_string_or_an_array() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let array = with(claims(), "aud", json!(["other", AUD]));
        assert!(check(key.sign(&array).unwrap(), &provider, &keys, NOW).is_ok());
        let wrong = with(claims(), "aud", json!(["other"]));
        assert_eq!(
            check(key.sign(&wrong).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::AudienceMismatch
        );
        let mut none = claims();
        none.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            check(key.sign(&none).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::AudienceMismatch
        );
    }

    #[test]
    fn issuer_must_match_exactly() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let slashless = with(claims(), "iss", json!("https://idp.example"));
        assert_eq!(
            check(key.sign(&slashless).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::UnknownIssuer
        );
    }

    #[test]
    fn algorithm_comes_from_the_allow_list_and_the_key() {
        let (rsa, keys, provider) = setup(Alg::Rs256);
        // alg "none" and unknown algorithms.
        let mut header = Map::new();
        header.insert("alg".into(), json!("none"));
        let none = rsa.sign_with_header(header, &claims()).unwrap();
        assert_eq!(
            check(none, &provider, &keys, NOW).unwrap_err(),
            TokenError::UnsupportedAlgorithm
        );
        // HS256 "signed" with the RSA public key as the HMAC secret.
        let public_n = rsa.public_jwk()["n"].as_str().unwrap().to_owned();
        let forged_key = SigningKey::from_jwk(
            &json!({"kty": "oct", "k": public_n, "alg": "HS256", "kid": "k1"}),
        )
        .unwrap();
        let forged = forged_key.sign(&claims()).unwrap();
        assert_eq!(
            check(forged.clone(), &provider, &keys, NOW).unwrap_err(),
            TokenError::AlgorithmNotAllowed
        );
        let mut permissive = provider.clone();
        permissive.algorithms = vec![Alg::Rs256, Alg::Hs256];
        assert_eq!(
            check(forged, &permissive, &keys, NOW).unwrap_err(),
            TokenError::NoSuitableKey
        );
    }

    #[test]
    fn kid_selects_keys_and_unknown_kids_are_reported() {
        let (key, keys, provider) = setup(Alg::EdDsa);
        let other = SigningKey::generate(Alg::EdDsa, Some("k2")).unwrap();
        assert_eq!(
            check(other.sign(&claims()).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::KeysMissing(KeyMiss::unknown_kid(ProviderId::from_index(0)))
        );
        let impostor = SigningKey::generate(Alg::EdDsa, Some("k1")).unwrap();
        assert_eq!(
            check(impostor.sign(&claims()).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::BadSignature
        );
        let no_kid = SigningKey::from_jwk(&{
            let mut jwk = key.private_jwk();
            jwk.as_object_mut().unwrap().remove("kid");
            jwk
        })
        .unwrap();
        assert!(check(no_kid.sign(&claims()).unwrap(), &provider, &keys, NOW).is_ok());
    }

    #[test]
    fn crit_headers_and_wrong_types_are_refused() {
        let (key, keys, mut provider) = setup(Alg::Hs256);
        let mut crit = Map::new();
        crit.insert("crit".into(), json!(["exp"]));
        assert_eq!(
            check(
                key.sign_with_header(crit, &claims()).unwrap(),
                &provider,
                &keys,
                NOW
            )
            .unwrap_err(),
            TokenError::CriticalHeader
        );
        provider.token_type = Some("at+jwt".into());
        assert_eq!(
            check(key.sign(&claims()).unwrap(), &provider, &keys, NOW).unwrap_err(),
            TokenError::WrongTokenType
        );
        let mut typ = Map::new();
        typ.insert("typ".into(), json!("application/AT+JWT"));
        assert!(check(
            key.sign_with_header(typ, &claims()).unwrap(),
            &provider,
            &keys,
            NOW
        )
        .is_ok());
    }

    #[test]
    fn size_limit_is_checked_before_parsing() {
        let (_, keys, mut provider) = setup(Alg::Hs256);
        provider.max_token_bytes = 10;
        assert_eq!(
            check("x".repeat(11), &provider, &keys, NOW).unwrap_err(),
            TokenError::TooLarge { limit: 10 }
        );
    }

    /// A token signed over exactly `header` and `payload` (no JSON re-encoding).
    fn raw_token(key: &SigningKey, header: &str, payload: &[u8]) -> String {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let signed = format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(header.as_bytes()),
            Base64UrlUnpadded::encode_string(payload)
        );
        let signature = Base64UrlUnpadded::encode_string(&key.sign_bytes(signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// RFC 7519 §4.1.4–4.1.6: `exp`, `nbf` and `iat` must be NumericDates.
    #[test]
    fn time_claims_that_are_not_numeric_dates_are_refused() {
        let (key, keys, provider) = setup(Alg::Hs256);
        for (claim, value) in [
            ("nbf", json!("yesterday")),
            ("nbf", json!(1e300)),
            ("iat", json!("now")),
            ("iat", json!([NOW])),
            ("exp", json!(null)),
            ("exp", json!({"at": NOW + 600})),
        ] {
            let token = key.sign(&with(claims(), claim, value.clone())).unwrap();
            assert!(
                matches!(
                    check(token, &provider, &keys, NOW).unwrap_err(),
                    TokenError::Malformed(_)
                ),
                "{claim}: {value}"
            );
        }
    }

    /// RFC 7519 §4: duplicate claim names are either refused or the last one is used —
    /// here the last, for the checks and for the claims alike.
    #[test]
    fn of_duplicate_claims_the_last_one_counts() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let header = r#"{"alg":"HS256","kid":"k1"}"#;
        let payload = |first_exp: i64, last_exp: i64| {
            format!(
                r#"{{"iss":"{ISS}","aud":"{AUD}","sub":"first","exp":{first_exp},"sub":"last","exp":{last_exp}}}"#
            )
        };
        let valid_last = raw_token(&key, header, payload(NOW - 1000, NOW + 600).as_bytes());
        let verified = check(valid_last, &provider, &keys, NOW).unwrap();
        assert_eq!(verified.expires_at(), Some(NOW + 600));
        assert_eq!(verified.claims()["sub"], json!("last"));
        let expired_last = raw_token(&key, header, payload(NOW + 600, NOW - 1000).as_bytes());
        assert_eq!(
            check(expired_last, &provider, &keys, NOW).unwrap_err(),
            TokenError::Expired
        );
    }

    /// RFC 7519 §4.1.1, RFC 8725 §3.8: a token must name its issuer as a string.
    #[test]
    fn a_token_without_a_string_issuer_is_refused() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let mut without = claims();
        without.as_object_mut().unwrap().remove("iss");
        for claims in [without, with(claims(), "iss", json!([ISS]))] {
            assert_eq!(
                check(key.sign(&claims).unwrap(), &provider, &keys, NOW).unwrap_err(),
                TokenError::UnknownIssuer,
                "{claims}"
            );
        }
    }

    /// RFC 8725 §3.8: the keys must belong to the issuer the token names. Two providers
    /// whose keys share a `kid`: each token verifies only with its own issuer's keys.
    #[test]
    fn a_token_is_checked_only_with_its_issuers_keys() {
        const OTHER: &str = "https://other.example/";
        let (a_key, a_keys, a) = setup(Alg::Es256);
        let (b_key, b_keys, mut b) = setup(Alg::Es256);
        b.name = "other".into();
        b.issuer = OTHER.into();
        let providers = Providers::new(vec![a, b]);
        let verify_with = |token: String| {
            let found = FoundToken {
                token: token.into(),
                locations: vec![0],
            };
            let keys_of = |id: ProviderId| {
                Some(if id == ProviderId::from_index(0) {
                    &a_keys
                } else {
                    &b_keys
                })
            };
            verify(
                &found,
                &providers,
                keys_of,
                &SignatureChecks::default(),
                UnixSeconds(NOW),
            )
        };
        let b_claims = with(claims(), "iss", json!(OTHER));
        assert!(verify_with(a_key.sign(&claims()).unwrap()).is_ok());
        assert!(verify_with(b_key.sign(&b_claims).unwrap()).is_ok());
        assert_eq!(
            verify_with(b_key.sign(&claims()).unwrap()).unwrap_err(),
            TokenError::BadSignature
        );
        assert_eq!(
            verify_with(a_key.sign(&b_claims).unwrap()).unwrap_err(),
            TokenError::BadSignature
        );
    }

    /// RFC 8725 §3.10: keys come only from the provider; `jku`, `x5u`, `x5c` and an
    /// embedded `jwk` naming the signer's own key are never used.
    #[test]
    fn key_urls_and_keys_in_the_header_are_never_used() {
        let (_, keys, provider) = setup(Alg::Es256);
        let attacker = SigningKey::generate(Alg::Es256, Some("k1")).unwrap();
        for (name, value) in [
            ("jku", json!("https://evil.example/jwks.json")),
            ("x5u", json!("https://evil.example/cert.pem")),
            (
                "x5c",
                json!(["MIIBkTCB+wIJAKHBfpegPjMCMA0GCSqGSIb3DQEBCwUAMBExDzANBgNV"]),
            ),
            ("jwk", attacker.public_jwk()),
        ] {
            let mut header = Map::new();
            header.insert(name.into(), value);
            let token = attacker.sign_with_header(header, &claims()).unwrap();
            assert_eq!(
                check(token, &provider, &keys, NOW).unwrap_err(),
                TokenError::BadSignature,
                "{name}"
            );
        }
    }

    /// RFC 7519 §7.2 steps 6–8, RFC 8725 §3.3: a JWE (five parts) is refused, and so is
    /// a nested JWT (`cty: JWT`, the payload another JWT): its inner claims are never used.
    #[test]
    fn jwes_and_nested_jwts_are_refused() {
        let (key, keys, provider) = setup(Alg::Hs256);
        let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.AAAA.AAAA.AAAA.AAAA";
        assert!(matches!(
            check(jwe.into(), &provider, &keys, NOW).unwrap_err(),
            TokenError::Malformed(_)
        ));
        let inner = key.sign(&claims()).unwrap();
        let nested = raw_token(
            &key,
            r#"{"alg":"HS256","kid":"k1","cty":"JWT"}"#,
            inner.as_bytes(),
        );
        assert!(matches!(
            check(nested, &provider, &keys, NOW).unwrap_err(),
            TokenError::Malformed(_)
        ));
    }

    #[test]
    fn malformed_tokens_are_refused_without_panicking() {
        let (_, keys, provider) = setup(Alg::Hs256);
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!.!!.!!",
            "e30.e30.",
            "e30.W10.AA",
            "eyJhbGciOiJIUzI1NiJ9.bnVsbA.AA",
        ] {
            let err = check(token.to_string(), &provider, &keys, NOW).unwrap_err();
            assert!(
                matches!(
                    err,
                    TokenError::Malformed(_) | TokenError::UnsupportedAlgorithm
                ),
                "{token}: {err:?}"
            );
        }
    }
}
