//! The compact JWS as received: split into header, claims and signature and decoded with
//! a strict base64url decoder, but not yet trusted. Nothing here checks a signature.

use serde::Deserialize;
use serde_json::Value;

use super::TokenError;
use crate::claims::Claims;

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
    alg_name: String,
    kid: Option<String>,
    typ: Option<String>,
    pub(super) has_crit: bool,
    /// Not verified: read only through [`UntrustedToken::unverified_claims`].
    claims: Claims,
    signed_data: &'t str,
    signature: Vec<u8>,
}

impl<'t> UntrustedToken<'t> {
    /// Decodes a compact JWS. The size limit is checked by the caller first.
    pub fn parse(token: &'t str) -> Result<UntrustedToken<'t>, TokenError> {
        let JwsParts {
            signed_data,
            header,
            payload,
            signature,
        } = split_jws(token).map_err(|err| match err {
            NotJws::Parts => TokenError::Malformed("token is not a JWT"),
            NotJws::Jwe => TokenError::Malformed("token is not a JWS (JWE is not accepted)"),
        })?;
        let decode = |part: &str| {
            decode_base64url(part.as_bytes())
                .ok_or(TokenError::Malformed("token is not valid base64url"))
        };
        // UTF-8 checked first: serde skips the fields it does not read without decoding
        // them, so invalid UTF-8 there would otherwise pass (RFC 7515 §4: UTF-8 JSON).
        let header = decode(header)?;
        let header: JoseHeader = std::str::from_utf8(&header)
            .ok()
            .and_then(|header| serde_json::from_str(header).ok())
            .ok_or(TokenError::Malformed("token header is not valid"))?;
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

    /// The `alg` header as written.
    pub fn alg_name(&self) -> &str {
        &self.alg_name
    }

    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    pub fn typ(&self) -> Option<&str> {
        self.typ.as_deref()
    }

    /// The claims as sent, before any check: to pick the provider and check the times
    /// and audience, never to decide on.
    pub fn unverified_claims(&self) -> &Claims {
        &self.claims
    }

    pub(super) fn signed_data(&self) -> &'t str {
        self.signed_data
    }

    pub(super) fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The `kid` and claims, for the [`super::VerifiedToken`] verification makes.
    pub(super) fn into_kid_and_claims(self) -> (Option<String>, Claims) {
        (self.kid, self.claims)
    }

    /// The `iss` claim, when it is a string.
    pub fn issuer(&self) -> Option<&str> {
        self.claims.get("iss").and_then(Value::as_str)
    }
}

/// The parts of a compact JWS, still base64url-encoded: `header.payload.signature`.
pub(crate) struct JwsParts<'t> {
    /// `header.payload`, what the signature covers.
    pub(crate) signed_data: &'t str,
    pub(crate) header: &'t str,
    pub(crate) payload: &'t str,
    pub(crate) signature: &'t str,
}

/// Why a text is not a compact JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotJws {
    /// Fewer than three parts.
    Parts,
    /// Five parts: a JWE.
    Jwe,
}

/// Splits a compact JWS into its three parts (the one splitter of tokens and DPoP
/// proofs).
pub(crate) fn split_jws(text: &str) -> Result<JwsParts<'_>, NotJws> {
    let (signed_data, signature) = text.rsplit_once('.').ok_or(NotJws::Parts)?;
    let (header, payload) = signed_data.split_once('.').ok_or(NotJws::Parts)?;
    if payload.contains('.') {
        return Err(NotJws::Jwe);
    }
    Ok(JwsParts {
        signed_data,
        header,
        payload,
        signature,
    })
}

/// Sextet of each base64url character; `0xff` for everything else.
#[allow(
    clippy::indexing_slicing,
    reason = "const evaluation: an index out of range fails the build, not a request"
)]
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

#[cfg(test)]
mod tests {
    use super::{TokenError, UntrustedToken};
    use base64ct::{Base64UrlUnpadded, Encoding};

    #[test]
    fn a_header_with_invalid_utf8_in_a_field_claimgate_does_not_read_is_refused() {
        let token = |header: &[u8]| {
            format!(
                "{}.{}.AAAA",
                Base64UrlUnpadded::encode_string(header),
                Base64UrlUnpadded::encode_string(br#"{"sub":"a"}"#)
            )
        };
        assert!(UntrustedToken::parse(&token(br#"{"alg":"RS256","x":"ok"}"#)).is_ok());
        // Found by the token_parse fuzz target: serde skipped "x" without decoding it.
        assert_eq!(
            UntrustedToken::parse(&token(b"{\"alg\":\"RS256\",\"x\":\"\xb2\xcd\"}")).unwrap_err(),
            TokenError::Malformed("token header is not valid")
        );
    }

    #[test]
    fn rfc7519_7_2_claims_that_are_not_utf8_json_objects_are_refused() {
        let token = |claims: &[u8]| {
            format!(
                "{}.{}.AAAA",
                Base64UrlUnpadded::encode_string(br#"{"alg":"RS256"}"#),
                Base64UrlUnpadded::encode_string(claims)
            )
        };
        assert!(UntrustedToken::parse(&token(br#"{"sub":"a"}"#)).is_ok());
        for claims in [
            &b"{\"sub\":\"\xff\"}"[..],
            b"{\"x\":\"\xc3\"}",
            b"[]",
            b"\"text\"",
            b"",
            b"{\"sub\":\"a\"",
        ] {
            assert_eq!(
                UntrustedToken::parse(&token(claims)).unwrap_err(),
                TokenError::Malformed("token claims are not a JSON object"),
                "{}",
                String::from_utf8_lossy(claims)
            );
        }
    }

    /// Differential: the strict decoder against two independent ones, `base64ct` and the
    /// `base64` crate (URL-safe, no padding, trailing bits must be zero), on random text
    /// over the whole byte range and on valid encodings with one mutation each.
    #[test]
    fn base64url_decoder_agrees_with_base64ct_and_the_base64_crate_on_random_and_mutated_text() {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        use base64ct::{Base64UrlUnpadded, Encoding};
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let check = |text: &[u8]| {
            let ours = super::decode_base64url(text);
            let base64ct = std::str::from_utf8(text)
                .ok()
                .and_then(|text| Base64UrlUnpadded::decode_vec(text).ok());
            let base64 = URL_SAFE_NO_PAD.decode(text).ok();
            assert_eq!(
                ours,
                base64ct,
                "base64ct: {:?}",
                String::from_utf8_lossy(text)
            );
            assert_eq!(ours, base64, "base64: {:?}", String::from_utf8_lossy(text));
            ours.is_some()
        };
        let (mut valid, mut invalid) = (0, 0);
        for round in 0..40_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let text = if round % 2 == 0 {
                // Any bytes at all.
                bytes
            } else {
                // A valid encoding with one mutation: a character replaced by any byte,
                // one removed, one added, or the last one's unused bits changed.
                let mut text = URL_SAFE_NO_PAD.encode(&bytes).into_bytes();
                let at = (next() as usize) % (text.len() + 1);
                match next() % 4 {
                    0 if at < text.len() => text[at] = next() as u8,
                    1 if at < text.len() => {
                        text.remove(at);
                    }
                    2 => text.insert(at, next() as u8),
                    _ => {
                        if let Some(last) = text.last_mut() {
                            *last =
                                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                    [(next() % 64) as usize];
                        }
                    }
                }
                text
            };
            if check(&text) {
                valid += 1;
            } else {
                invalid += 1;
            }
        }
        assert!(
            valid > 5_000 && invalid > 5_000,
            "{valid} valid, {invalid} invalid"
        );
    }

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
}
