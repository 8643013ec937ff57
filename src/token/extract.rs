//! Finding the access token in a request: a header with a scheme prefix, a query
//! parameter or a cookie, at every location a provider reads. Two different tokens in
//! one request are refused here, before anything is decoded.

use std::borrow::Cow;
use std::fmt;

use super::TokenError;
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

    /// `Authorization: DPoP <token>`, where DPoP-bound tokens come (RFC 9449 §7.1).
    pub fn dpop() -> TokenLocation {
        TokenLocation::Header {
            name: "authorization".into(),
            prefix: "DPoP ".into(),
        }
    }

    /// Every token this location holds in the request.
    fn tokens<'r>(&self, request: &RequestView<'r>) -> Vec<TokenText<'r>> {
        match self {
            TokenLocation::Header { name, prefix } => request
                .headers()
                .iter()
                .filter(|(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
                .filter_map(|(_, value)| strip_scheme(value, prefix.as_bytes()))
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

impl<'r> TokenText<'r> {
    fn bytes(&self) -> &[u8] {
        match self {
            TokenText::Raw(bytes) => bytes,
            TokenText::Owned(bytes) => bytes,
        }
    }

    /// The token as text, borrowed from the request when it was read there as is.
    fn into_text(self) -> Result<Cow<'r, str>, TokenError> {
        let not_ascii = |_| TokenError::Malformed("token is not ASCII");
        match self {
            TokenText::Raw(bytes) => std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(not_ascii),
            TokenText::Owned(bytes) => String::from_utf8(bytes)
                .map(Cow::Owned)
                .map_err(|err| not_ascii(err.utf8_error())),
        }
    }
}

/// The credential after a scheme prefix, compared case-insensitively. A prefix that ends
/// in a space (`Bearer `) takes any run of spaces and tabs there (`Bearer\tTOKEN` is a
/// bearer token too, never a credential forwarded unverified).
fn strip_scheme<'v>(value: &'v [u8], prefix: &[u8]) -> Option<&'v [u8]> {
    let scheme = prefix.strip_suffix(b" ").unwrap_or(prefix);
    let head = value.get(..scheme.len())?;
    let rest = head
        .eq_ignore_ascii_case(scheme)
        .then(|| value.get(scheme.len()..))
        .flatten()?;
    if scheme.len() == prefix.len() {
        return Some(rest);
    }
    match rest.first() {
        Some(b' ' | b'\t') => Some(rest),
        _ => None,
    }
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace());
    match (start, end) {
        (Some(start), Some(end)) => bytes.get(start..=end).unwrap_or(&[]),
        _ => &[],
    }
}

/// A token found in the request, with every configured location it was found at. The
/// text borrows the request's header when the token was taken from it as is: a repeated
/// token is not copied before the cache looks it up (issue 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken<'r> {
    pub token: Cow<'r, str>,
    /// Indices into the list of locations given to [`find_token`].
    pub locations: Vec<usize>,
}

impl FoundToken<'_> {
    /// How logs name this token: the first 8 bytes of its SHA-256, in hex. Enough to
    /// follow one token across log lines; nothing of the token itself.
    pub fn log_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.token.as_bytes());
        let hex: String = digest
            .iter()
            .take(8)
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("sha256:{hex}")
    }
}

/// Looks for the token at every location. No token is `Ok(None)`; two different tokens
/// are an error (which one would the upstream trust?).
pub fn find_token<'r>(
    locations: &[TokenLocation],
    request: &RequestView<'r>,
) -> Result<Option<FoundToken<'r>>, TokenError> {
    let mut found: Option<FoundToken<'r>> = None;
    let mut empty_seen = false;
    for (index, location) in locations.iter().enumerate() {
        for text in location.tokens(request) {
            let bytes = text.bytes();
            if bytes.is_empty() {
                // An empty credential beside a real one is a second, different one.
                empty_seen = true;
                continue;
            }
            // Envoy joins repeated headers with commas; a JWS never has one.
            if bytes.contains(&b',') {
                return Err(TokenError::MultipleTokens);
            }
            let token = text.into_text()?;
            match &mut found {
                None => {
                    found = Some(FoundToken {
                        token,
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
    if empty_seen && found.is_some() {
        return Err(TokenError::MultipleTokens);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_in_headers_queries_and_cookies() {
        let locations = vec![
            TokenLocation::bearer(),
            TokenLocation::Query {
                name: "access_token".into(),
            },
            TokenLocation::Cookie { name: "at".into() },
        ];
        let h = crate::request::header_pairs;
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

    #[test]
    fn repeated_and_oddly_spelled_credentials_are_never_passed_over() {
        let locations = vec![
            TokenLocation::bearer(),
            TokenLocation::Cookie { name: "at".into() },
        ];
        let h = crate::request::header_pairs;
        // Envoy's join of two identical headers, a tab after the scheme, an empty
        // duplicate cookie: no credential slips past as "not a token".
        let joined = h(&[(":path", "/"), ("authorization", "Bearer abc,Bearer abc")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&joined)),
            Err(TokenError::MultipleTokens)
        );
        let tab = h(&[(":path", "/"), ("authorization", "Bearer\tabc")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&tab))
                .unwrap()
                .unwrap()
                .token,
            "abc"
        );
        let glued = h(&[(":path", "/"), ("authorization", "Bearerabc")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&glued)).unwrap(),
            None
        );
        let empty_twin = h(&[(":path", "/"), ("cookie", "at=abc; at=")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&empty_twin)),
            Err(TokenError::MultipleTokens)
        );
        let empty_alone = h(&[(":path", "/"), ("authorization", "Bearer ")]);
        assert_eq!(
            find_token(&locations, &RequestView::new(&empty_alone)).unwrap(),
            None
        );
    }
}
