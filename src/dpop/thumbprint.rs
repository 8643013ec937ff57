//! Key and certificate thumbprints the `cnf` claim binds a token to: the RFC 7638 JWK
//! thumbprint (`cnf.jkt`, DPoP) and the SHA-256 certificate thumbprint (`cnf.x5t#S256`,
//! RFC 8705), both base64url without padding.

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over the JSON object of the key
/// type's required members only, in lexicographic order, without whitespace. `None` for a
/// key type claimgate does not take or a required member that is missing or not a string.
pub fn jwk_thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let members: &[&str] = match jwk.get("kty").and_then(Value::as_str)? {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (index, name) in members.iter().enumerate() {
        let value = jwk.get(*name).and_then(Value::as_str)?;
        if index > 0 {
            canonical.push(',');
        }
        // serde_json writes a string with exactly the escapes RFC 7638 §3.3 asks for.
        canonical.push_str(&Value::from(*name).to_string());
        canonical.push(':');
        canonical.push_str(&Value::from(value).to_string());
    }
    canonical.push('}');
    Some(Base64UrlUnpadded::encode_string(&Sha256::digest(
        canonical.as_bytes(),
    )))
}

/// The base64url SHA-256 of `text` (a DPoP proof's `ath` is this of the access token).
pub fn sha256_base64url(text: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(text))
}

/// `cnf.x5t#S256` form of a certificate digest Envoy reports as hex
/// (`connection.sha256_peer_certificate_digest`); `None` unless 64 hex digits.
pub fn certificate_thumbprint_from_hex(hex: &str) -> Option<String> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut digest = [0_u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(Base64UrlUnpadded::encode_string(&digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7638_section_3_1_example_thumbprint() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn thumbprints_need_every_required_member_and_a_known_key_type() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "ignored"});
        let without_d = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"});
        assert_eq!(
            jwk_thumbprint(ec.as_object().unwrap()),
            jwk_thumbprint(without_d.as_object().unwrap())
        );
        for bad in [
            json!({"kty": "EC", "crv": "P-256", "x": "a"}),
            json!({"kty": "oct", "k": "secret"}),
            json!({"kty": "EC", "crv": "P-256", "x": "a", "y": 5}),
        ] {
            assert_eq!(jwk_thumbprint(bad.as_object().unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn certificate_digests_in_hex_become_base64url_thumbprints() {
        let hex = "ff".repeat(32);
        assert_eq!(
            certificate_thumbprint_from_hex(&hex).as_deref(),
            Some("__________________________________________8")
        );
        assert_eq!(certificate_thumbprint_from_hex("abc"), None);
        assert_eq!(certificate_thumbprint_from_hex(&"zz".repeat(32)), None);
    }
}
