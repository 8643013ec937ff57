//! Finding the access token in a request and verifying it against a provider's keys.

use std::cell::OnceCell;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::identity::IdentityHeaders;
use crate::jwks::{Alg, HostCrypto, KeySet};
use crate::policy::Claims;
use crate::request::RequestView;

/// Where a provider's tokens are looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header, with a scheme prefix such as `Bearer ` (compared case-insensitively).
    Header {
        name: String,
        prefix: String,
    },
    Query {
        name: String,
    },
    Cookie {
        name: String,
    },
}

impl TokenLocation {
    pub fn bearer() -> TokenLocation {
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: "Bearer ".into(),
        }
    }

    /// Every token this location holds in the request.
    fn tokens<'r>(&self, request: &RequestView<'r>) -> Vec<TokenText<'r>> {
        match self {
            TokenLocation::Header { name, prefix } => request
                .headers()
                .iter()
                .filter(|(key, _)| key.eq_ignore_ascii_case(name))
                .filter_map(|(_, value)| strip_prefix_ignore_case(value, prefix.as_bytes()))
                .map(|token| TokenText::Raw(trim_ascii(token)))
                .collect(),
            TokenLocation::Query { name } => request
                .query_values(name)
                .into_iter()
                .map(|value| TokenText::Owned(value.into_bytes()))
                .collect(),
            TokenLocation::Cookie { name } => request
                .cookie_values(name)
                .into_iter()
                .map(|value| TokenText::Raw(value.as_bytes()))
                .collect(),
        }
    }
}

impl fmt::Display for TokenLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenLocation::Header { name, prefix } => write!(f, "header {name} ({prefix:?})"),
            TokenLocation::Query { name } => write!(f, "query parameter {name}"),
            TokenLocation::Cookie { name } => write!(f, "cookie {name}"),
        }
    }
}

enum TokenText<'r> {
    Raw(&'r [u8]),
    Owned(Vec<u8>),
}

impl TokenText<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            TokenText::Raw(bytes) => bytes,
            TokenText::Owned(bytes) => bytes,
        }
    }
}

fn strip_prefix_ignore_case<'v>(value: &'v [u8], prefix: &[u8]) -> Option<&'v [u8]> {
    let head = value.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| value.get(prefix.len()..))
        .flatten()
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(start), Some(end)) => bytes.get(start..=end).unwrap_or(&[]),
        _ => &[],
    }
}

/// A token found in the request, with every configured location it was found at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    pub token: String,
    /// Indices into the list of locations given to [`find_token`].
    pub locations: Vec<usize>,
}

/// Looks for the token at every location. No token is `Ok(None)`; two different tokens
/// are an error (which one would the upstream trust?).
pub fn find_token(
    locations: &[TokenLocation],
    request: &RequestView<'_>,
) -> Result<Option<FoundToken>, TokenError> {
    let mut found: Option<FoundToken> = None;
    for (index, location) in locations.iter().enumerate() {
        for text in location.tokens(request) {
            let bytes = text.bytes();
            if bytes.is_empty() {
                continue;
            }
            let token = std::str::from_utf8(bytes)
                .map_err(|_| TokenError::Malformed("token is not ASCII"))?;
            match &mut found {
                None => {
                    found = Some(FoundToken {
                        token: token.to_owned(),
                        locations: vec![index],
                    })
                }
                Some(existing) if existing.token == token => {
                    if !existing.locations.contains(&index) {
                        existing.locations.push(index);
                    }
                }
                Some(_) => return Err(TokenError::MultipleTokens),
            }
        }
    }
    Ok(found)
}

/// How one identity provider's tokens are verified.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// Exact `iss` value.
    pub issuer: String,
    /// Any one of these must appear in `aud`.
    pub audiences: Vec<String>,
    /// Allow-list; anything else (and `none`) is refused.
    pub algorithms: Vec<Alg>,
    /// Indices into the config's combined token locations that this provider reads.
    pub locations: Vec<usize>,
    pub require_exp: bool,
    pub clock_skew_seconds: i64,
    pub max_lifetime_seconds: Option<i64>,
    /// Required `typ` header (e.g. `at+jwt`), compared as a media type.
    pub token_type: Option<String>,
    pub max_token_bytes: usize,
    /// Forward the token upstream, or remove it.
    pub forward_token: bool,
}

impl Provider {
    /// Whether this provider reads tokens from any location `found` was seen at.
    pub fn reads_from(&self, found: &FoundToken) -> bool {
        found
            .locations
            .iter()
            .any(|location| self.locations.contains(location))
    }
}

/// Why a token is refused. Every variant means 401 `invalid_token`, except where
/// [`TokenError::status`] says otherwise. Messages never contain token content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    MultipleTokens,
    TooLarge {
        limit: usize,
    },
    Malformed(&'static str),
    UnsupportedAlgorithm,
    AlgorithmNotAllowed,
    CriticalHeader,
    WrongTokenType,
    UnknownIssuer,
    /// The provider does not read tokens from where this one was found.
    WrongLocation,
    /// The provider (by index) has no key set yet (remote keys not fetched, or stale
    /// beyond their limit): an outage, not the client's fault.
    KeysUnavailable {
        provider: usize,
    },
    /// No key of the provider (by index) has the token's `kid`: the adapter may refetch
    /// a remote key set and decide again.
    UnknownKey {
        provider: usize,
    },
    NoSuitableKey,
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    LifetimeTooLong,
    AudienceMismatch,
    /// The token is valid but its provider is not accepted by the matched rule.
    ProviderNotAccepted,
}

impl TokenError {
    /// HTTP status for this failure.
    pub fn status(&self) -> u16 {
        match self {
            TokenError::KeysUnavailable { .. } => 503,
            _ => 401,
        }
    }

    /// The RFC 6750 `error_description`; fixed text, safe to send to the client.
    pub fn description(&self) -> &'static str {
        match self {
            TokenError::MultipleTokens => "more than one token in the request",
            TokenError::TooLarge { .. } => "token too large",
            TokenError::Malformed(what) => what,
            TokenError::UnsupportedAlgorithm => "unsupported signing algorithm",
            TokenError::AlgorithmNotAllowed => "signing algorithm not allowed",
            TokenError::CriticalHeader => "token has critical header extensions",
            TokenError::WrongTokenType => "wrong token type",
            TokenError::UnknownIssuer => "unknown token issuer",
            TokenError::WrongLocation => "token not accepted in this location",
            TokenError::KeysUnavailable { .. } => "signing keys are not available yet",
            TokenError::UnknownKey { .. } => "unknown signing key",
            TokenError::NoSuitableKey => "no key fits the token's algorithm",
            TokenError::BadSignature => "invalid signature",
            TokenError::MissingExpiry => "token has no expiry",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::LifetimeTooLong => "token lifetime too long",
            TokenError::AudienceMismatch => "token audience not accepted",
            TokenError::ProviderNotAccepted => "token issuer not accepted for this route",
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLarge { limit } => write!(f, "token too large (limit {limit} bytes)"),
            other => f.write_str(other.description()),
        }
    }
}

impl std::error::Error for TokenError {}

/// The JOSE header fields claimgate reads. Unknown fields are ignored; duplicate fields
/// are refused by the parser.
#[derive(Debug, Deserialize)]
struct JoseHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

/// A token split into its parts, decoded but not yet trusted.
#[derive(Debug)]
pub struct UntrustedToken<'t> {
    pub alg_name: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
    has_crit: bool,
    pub claims: Claims,
    signed_data: &'t str,
    signature: Vec<u8>,
}

impl<'t> UntrustedToken<'t> {
    /// Decodes a compact JWS. The size limit is checked by the caller first.
    pub fn parse(token: &'t str) -> Result<UntrustedToken<'t>, TokenError> {
        let (signed_data, signature) = token
            .rsplit_once('.')
            .ok_or(TokenError::Malformed("token is not a JWT"))?;
        let (header, payload) = signed_data
            .split_once('.')
            .ok_or(TokenError::Malformed("token is not a JWT"))?;
        if payload.contains('.') {
            return Err(TokenError::Malformed(
                "token is not a JWS (JWE is not accepted)",
            ));
        }
        let decode = |part: &str| {
            decode_base64url(part.as_bytes())
                .ok_or(TokenError::Malformed("token is not valid base64url"))
        };
        let header: JoseHeader = serde_json::from_slice(&decode(header)?)
            .map_err(|_| TokenError::Malformed("token header is not valid"))?;
        let claims: Claims = serde_json::from_slice(&decode(payload)?)
            .map_err(|_| TokenError::Malformed("token claims are not a JSON object"))?;
        let signature = decode(signature)?;
        Ok(UntrustedToken {
            alg_name: header.alg,
            kid: header.kid,
            typ: header.typ,
            has_crit: header.crit.is_some(),
            claims,
            signed_data,
            signature,
        })
    }

    /// The `iss` claim, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// Sextet of each base64url character; `0xff` for everything else.
const BASE64URL: [u8; 256] = {
    let mut table = [0xff_u8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut index = 0;
    while index < alphabet.len() {
        table[alphabet[index] as usize] = index as u8;
        index += 1;
    }
    table
};

/// Strict unpadded base64url (RFC 7515 §2): no padding, no other characters, and unused
/// trailing bits zero, so each token has exactly one spelling. A table lookup per
/// character: the constant-time decoder of `base64ct` was the largest single cost of
/// parsing a new token, and token text is not secret from the client who sent it.
pub(crate) fn decode_base64url(text: &[u8]) -> Option<Vec<u8>> {
    let sextet = |byte: &u8| match BASE64URL.get(usize::from(*byte)) {
        Some(&value) if value != 0xff => Some(u32::from(value)),
        _ => None,
    };
    let chunks = text.chunks_exact(4);
    let tail = chunks.remainder();
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 2);
    for chunk in chunks {
        let mut word = 0_u32;
        for byte in chunk {
            word = (word << 6) | sextet(byte)?;
        }
        let [_, first, second, third] = word.to_be_bytes();
        out.extend_from_slice(&[first, second, third]);
    }
    let mut word = 0_u32;
    for byte in tail {
        word = (word << 6) | sextet(byte)?;
    }
    match tail.len() {
        0 => {}
        // 12 bits: one byte and 4 unused bits.
        2 if word & 0xf == 0 => out.push((word >> 4) as u8),
        // 18 bits: two bytes and 2 unused bits.
        3 if word & 0x3 == 0 => out.extend_from_slice(&((word >> 2) as u16).to_be_bytes()),
        _ => return None,
    }
    Some(out)
}

/// A token whose signature and claims passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub provider: usize,
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Claims,
    /// `exp`, when present (whole seconds).
    pub expires_at: Option<i64>,
    /// The identity headers these claims map to, worked out once per token (a cached
    /// token reuses them on every hit).
    pub identity_headers: OnceCell<IdentityHeaders>,
}

/// Verifies `found` against the providers. `keys(index)` gives the current key set of a
/// provider (replaceable at run time; `None` while none has been loaded); `host` checks the
/// signatures it offers to.
pub fn verify<'k>(
    found: &FoundToken,
    providers: &[Provider],
    keys: impl Fn(usize) -> Option<&'k KeySet>,
    host: Option<&HostCrypto>,
    now: i64,
) -> Result<VerifiedToken, TokenError> {
    let global_limit = providers
        .iter()
        .map(|p| p.max_token_bytes)
        .max()
        .unwrap_or(0);
    if found.token.len() > global_limit {
        return Err(TokenError::TooLarge {
            limit: global_limit,
        });
    }
    let untrusted = UntrustedToken::parse(&found.token)?;
    let alg = Alg::from_name(&untrusted.alg_name).ok_or(TokenError::UnsupportedAlgorithm)?;
    if untrusted.has_crit {
        return Err(TokenError::CriticalHeader);
    }
    let issuer = untrusted.issuer().ok_or(TokenError::UnknownIssuer)?;
    let (index, provider) = providers
        .iter()
        .enumerate()
        .find(|(_, provider)| provider.issuer == issuer)
        .ok_or(TokenError::UnknownIssuer)?;
    if found.token.len() > provider.max_token_bytes {
        return Err(TokenError::TooLarge {
            limit: provider.max_token_bytes,
        });
    }
    if !provider.reads_from(found) {
        return Err(TokenError::WrongLocation);
    }
    if !provider.algorithms.contains(&alg) {
        return Err(TokenError::AlgorithmNotAllowed);
    }
    if let Some(expected) = &provider.token_type {
        if !untrusted
            .typ
            .as_deref()
            .is_some_and(|typ| media_type_matches(typ, expected))
        {
            return Err(TokenError::WrongTokenType);
        }
    }
    let key_set = keys(index).ok_or(TokenError::KeysUnavailable { provider: index })?;
    check_signature(&untrusted, alg, key_set, host, index)?;
    let expires_at = check_times(&untrusted.claims, provider, now)?;
    check_audience(&untrusted.claims, provider)?;
    Ok(VerifiedToken {
        provider: index,
        alg,
        kid: untrusted.kid,
        claims: untrusted.claims,
        expires_at,
        identity_headers: OnceCell::new(),
    })
}

fn check_signature(
    token: &UntrustedToken<'_>,
    alg: Alg,
    keys: &KeySet,
    host: Option<&HostCrypto>,
    provider: usize,
) -> Result<(), TokenError> {
    let kid = token.kid.as_deref();
    let mut tried = false;
    for key in keys.candidates(kid, alg) {
        tried = true;
        if key.verify(alg, token.signed_data.as_bytes(), &token.signature, host) {
            return Ok(());
        }
    }
    match (tried, kid) {
        (true, _) => Err(TokenError::BadSignature),
        (false, Some(kid)) if !keys.has_kid(kid) => Err(TokenError::UnknownKey { provider }),
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

fn check_times(claims: &Claims, provider: &Provider, now: i64) -> Result<Option<i64>, TokenError> {
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
        let exp = exp.ok_or(TokenError::MissingExpiry)?;
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
    #[test]
    fn base64url_decoding_agrees_with_base64ct_on_valid_and_invalid_text() {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = Base64UrlUnpadded::encode_string(&bytes);
            assert_eq!(super::decode_base64url(text.as_bytes()), Some(bytes));
        }
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. \0";
        for round in 0..20_000 {
            let len = (next() % 12) as usize;
            let mut text: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if round % 3 == 0 {
                // Mostly valid characters, to reach the trailing-bit checks.
                text.retain(|c| c.is_ascii_alphanumeric());
            }
            let ours = super::decode_base64url(&text);
            let reference = std::str::from_utf8(&text)
                .ok()
                .and_then(|text| Base64UrlUnpadded::decode_vec(text).ok());
            assert_eq!(ours, reference, "{:?}", String::from_utf8_lossy(&text));
        }
        // Non-canonical trailing bits are refused: "QR" would be 'A' with a stray bit.
        assert_eq!(super::decode_base64url(b"QQ"), Some(b"A".to_vec()));
        assert_eq!(super::decode_base64url(b"QR"), None);
        assert_eq!(super::decode_base64url(b"QUI"), Some(b"AB".to_vec()));
        assert_eq!(super::decode_base64url(b"QUJ"), None);
        assert_eq!(super::decode_base64url(b"Q"), None);
        assert_eq!(super::decode_base64url(b"QQ=="), None);
    }

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
            token,
            locations: vec![0],
        };
        verify(
            &found,
            std::slice::from_ref(provider),
            |_| Some(keys),
            None,
            now,
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
        assert_eq!(verified.claims["sub"], json!("auth0|1"));
        assert_eq!(verified.expires_at, Some(NOW + 600));
        assert_eq!(verified.kid.as_deref(), Some("k1"));
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
            TokenError::UnknownKey { provider: 0 }
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

    #[test]
    fn tokens_are_found_in_headers_queries_and_cookies() {
        let locations = vec![
            TokenLocation::bearer(),
            TokenLocation::Query {
                name: "access_token".into(),
            },
            TokenLocation::Cookie { name: "at".into() },
        ];
        let h = |pairs: &[(&str, &str)]| -> Vec<(String, Vec<u8>)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        let bearer = h(&[(":path", "/"), ("authorization", "bearer  abc ")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&bearer)).unwrap(),
            Some(FoundToken {
                token: "abc".into(),
                locations: vec![0]
            })
        );
        let same_twice = h(&[
            (":path", "/?access_token=abc"),
            ("authorization", "Bearer abc"),
            ("cookie", "at=abc"),
        ]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&same_twice))
                .unwrap()
                .unwrap()
                .locations,
            vec![0, 1, 2]
        );
        let two = h(&[
            (":path", "/?access_token=xyz"),
            ("authorization", "Bearer abc"),
        ]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&two)),
            Err(TokenError::MultipleTokens)
        );
        let two_headers = h(&[
            (":path", "/"),
            ("authorization", "Bearer abc"),
            ("authorization", "Bearer xyz"),
        ]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&two_headers)),
            Err(TokenError::MultipleTokens)
        );
        let basic = h(&[(":path", "/"), ("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&basic)).unwrap(),
            None
        );
        let binary = vec![
            (":path".to_string(), b"/".to_vec()),
            ("authorization".to_string(), b"Bearer \xff".to_vec()),
        ];
        assert!(matches!(
            find_token(&locations, &RequestView::new(&binary)),
            Err(TokenError::Malformed(_))
        ));
    }
}
