//! The request as the decision sees it: pseudo-headers, headers as raw bytes, and the
//! helpers that read paths, query parameters and cookies without trusting the client.

mod headers;

use std::borrow::Cow;
use std::fmt;

pub use headers::{serialize_pairs, HeaderIter, Headers, MalformedHeaders, SerializedHeaders};

/// A read-only view of one HTTP request's headers, in the shape Envoy hands them over:
/// pseudo-headers (`:method`, `:path`, `:authority`) first, names lowercase, values raw
/// bytes (a value may not be UTF-8).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    headers: Headers<'a>,
    /// `:method`, `:path` and `:authority`, found in one pass when the view is made: every
    /// step of a decision reads them.
    pseudo: PseudoHeaders<'a>,
    client_address: Option<&'a str>,
    client_certificate: Option<&'a str>,
    scheme: SchemeOrigin,
}

/// The pseudo-headers a decision reads, each as [`RequestView::header_text`] reads it:
/// the first header of that name (in any case), empty when absent or not UTF-8.
#[derive(Debug, Clone, Copy, Default)]
struct PseudoHeaders<'a> {
    method: &'a str,
    path: &'a str,
    authority: &'a str,
}

impl<'a> PseudoHeaders<'a> {
    fn find(headers: Headers<'a>) -> PseudoHeaders<'a> {
        let mut found: [Option<&'a [u8]>; 3] = [None; 3];
        for (name, value) in headers.iter().filter(|(name, _)| name.starts_with(b":")) {
            let slot = [&b":method"[..], b":path", b":authority"]
                .iter()
                .position(|pseudo| name.eq_ignore_ascii_case(pseudo));
            if let Some(first) = slot.and_then(|slot| found.get_mut(slot)) {
                first.get_or_insert(value);
            }
        }
        let text = |value: Option<&'a [u8]>| {
            value
                .and_then(|value| std::str::from_utf8(value).ok())
                .unwrap_or("")
        };
        let [method, path, authority] = found;
        PseudoHeaders {
            method: text(method),
            path: text(path),
            authority: text(authority),
        }
    }
}

/// Where a request's scheme is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SchemeOrigin {
    /// The `:scheme` pseudo-header: requests built offline (`claimgate eval`/`test`, the
    /// native tests), which name it.
    PseudoHeader,
    /// What Envoy said of the downstream connection; `None` when it could not say (or was
    /// not asked), and then the request has no scheme.
    Connection(Option<Scheme>),
}

/// The scheme a request came with: over TLS or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// `http` or `https`, in any case; anything else is no scheme a request can have.
    pub fn parse(text: &str) -> Option<Scheme> {
        if text.eq_ignore_ascii_case("https") {
            Some(Scheme::Https)
        } else if text.eq_ignore_ascii_case("http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl<'a> RequestView<'a> {
    pub fn new(headers: impl Into<Headers<'a>>) -> RequestView<'a> {
        let headers = headers.into();
        RequestView {
            headers,
            pseudo: PseudoHeaders::find(headers),
            client_address: None,
            client_certificate: None,
            scheme: SchemeOrigin::PseudoHeader,
        }
    }

    /// The same request with the SHA-256 thumbprint (base64url, the `cnf.x5t#S256` form)
    /// of the TLS client certificate the connection presented.
    pub fn with_client_certificate(self, thumbprint: Option<&'a str>) -> RequestView<'a> {
        RequestView {
            client_certificate: thumbprint,
            ..self
        }
    }

    pub fn client_certificate(&self) -> Option<&'a str> {
        self.client_certificate
    }

    /// The same request with its scheme taken from the connection it came over (`https`
    /// when the downstream connection is TLS), as Envoy reports it: `None` when Envoy could
    /// not say (or was not asked), and then the request has no scheme — never the
    /// `:scheme` pseudo-header, which an HTTP/2 client writes itself (`javascript`, `ftp`,
    /// or `https` over plain TCP). The Envoy adapter always sets it.
    pub fn with_connection_scheme(self, scheme: Option<Scheme>) -> RequestView<'a> {
        RequestView {
            scheme: SchemeOrigin::Connection(scheme),
            ..self
        }
    }

    /// The request's scheme: the connection's (Envoy), or the `:scheme` pseudo-header of a
    /// request built offline (`claimgate eval`/`test`); `None` when unknown or not
    /// `http`/`https`.
    pub fn scheme(&self) -> Option<Scheme> {
        match self.scheme {
            SchemeOrigin::Connection(scheme) => scheme,
            SchemeOrigin::PseudoHeader => self.header_text(":scheme").and_then(Scheme::parse),
        }
    }

    /// The same request with the downstream peer address Envoy reports (`ip:port`).
    pub fn with_client_address(self, address: Option<&'a str>) -> RequestView<'a> {
        RequestView {
            client_address: address,
            ..self
        }
    }

    pub fn client_address(&self) -> Option<&'a str> {
        self.client_address
    }

    pub fn headers(&self) -> Headers<'a> {
        self.headers
    }

    /// Every value of header `name` (compared case-insensitively), in order.
    pub fn header_values(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(key, _)| key.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// The first value of header `name`, when it is valid UTF-8.
    pub fn header_text(&self, name: &'a str) -> Option<&'a str> {
        self.header_values(name)
            .next()
            .and_then(|value| std::str::from_utf8(value).ok())
    }

    pub fn method(&self) -> &'a str {
        self.pseudo.method
    }

    /// The `:path` pseudo-header: path and query string as sent.
    pub fn raw_path(&self) -> &'a str {
        self.pseudo.path
    }

    pub fn authority(&self) -> &'a str {
        self.pseudo.authority
    }

    /// The query string (without `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        self.raw_path().split_once('?').map(|(_, query)| query)
    }

    /// Every value of query parameter `name` (after percent-decoding both).
    pub fn query_values(&self, name: &str) -> Vec<String> {
        let Some(query) = self.query() else {
            return Vec::new();
        };
        query_pairs(query)
            .filter_map(|(_, key, value)| {
                (percent_decode(key).as_deref() == Some(name))
                    .then(|| percent_decode(value))
                    .flatten()
            })
            .collect()
    }

    /// Every `name=value` pair of every `Cookie` header, trimmed, as written (empty
    /// pairs skipped).
    pub fn cookie_pairs(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.header_values("cookie")
            .filter_map(|value| std::str::from_utf8(value).ok())
            .flat_map(|line| line.split(';'))
            .map(str::trim)
            .filter(|pair| !pair.is_empty())
    }

    /// Every value of cookie `name` across all `Cookie` headers.
    pub fn cookie_values(&self, name: &str) -> Vec<&'a str> {
        self.cookie_pairs()
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                (key.trim() == name).then(|| value.trim().trim_matches('"'))
            })
            .collect()
    }
}

/// Each pair of a query string (without `?`) as written, with its key and value split (a
/// pair without `=` has an empty value); decoding is the caller's. The one query parser:
/// reading parameters and removing one both use it.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str, &str)> {
    query.split('&').map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (pair, key, value)
    })
}

/// A request as Envoy hands it to the filter: the pseudo-headers first (`:scheme` only
/// when given), then `headers` in order with lower-case names. The one request builder of
/// `claimgate eval`, `claimgate test` and the tests that build requests by hand.
pub fn request_headers<'h>(
    method: &str,
    path: &str,
    authority: &str,
    scheme: Option<&str>,
    headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
) -> Vec<(String, Vec<u8>)> {
    let mut all = vec![
        (":method".to_owned(), method.as_bytes().to_vec()),
        (":path".to_owned(), path.as_bytes().to_vec()),
        (":authority".to_owned(), authority.as_bytes().to_vec()),
    ];
    if let Some(scheme) = scheme {
        all.push((":scheme".to_owned(), scheme.as_bytes().to_vec()));
    }
    all.extend(
        headers
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_vec())),
    );
    all
}

/// `Authorization: Bearer TOKEN`, as a request header.
pub fn bearer_header(token: &str) -> (String, Vec<u8>) {
    (
        "authorization".to_owned(),
        format!("Bearer {token}").into_bytes(),
    )
}

/// A `:authority` that is not `host[:port]`: userinfo (`x@internal.example.com`),
/// percent-escapes (`internal.example.com%2e`) or other characters a host name cannot
/// have. An upstream or a proxy further in may read such a value as another host than a
/// rule's `hosts` saw, so it is refused before any rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHost;

impl fmt::Display for InvalidHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request host is not a plain host[:port]")
    }
}

impl std::error::Error for InvalidHost {}

/// Checks that `authority` is empty or `host[:port]`: a registered name of letters,
/// digits, `-`, `_` and `.`, or a bracketed IPv6 literal, and a port from 1 to 65535. An
/// empty port (`host:`) is refused too: RFC 3986 lets it mean the default port, but an
/// upstream or a proxy further in need not read it so.
pub fn check_authority(authority: &str) -> Result<(), InvalidHost> {
    match split_authority(authority)? {
        (_, Some(port)) => parse_port(port).map(|_| ()).ok_or(InvalidHost),
        (_, None) => Ok(()),
    }
}

/// `authority` split into its host and its port text (digits only, possibly empty),
/// refusing what is not `host[:port]` (see [`check_authority`]). The host may be empty.
pub fn split_authority(authority: &str) -> Result<(&str, Option<&str>), InvalidHost> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(literal) => {
            let (address, rest) = literal.split_once(']').ok_or(InvalidHost)?;
            let address_ok = !address.is_empty()
                && address
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !address_ok {
                return Err(InvalidHost);
            }
            let port = match rest {
                "" => None,
                rest => Some(rest.strip_prefix(':').ok_or(InvalidHost)?),
            };
            (authority.get(..address.len() + 2).unwrap_or(""), port)
        }
        None => {
            let (host, port) = match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let host_ok = host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !host_ok {
                return Err(InvalidHost);
            }
            (host, port)
        }
    };
    if port.is_some_and(|port| !port.bytes().all(|b| b.is_ascii_digit())) {
        return Err(InvalidHost);
    }
    Ok((host, port))
}

/// A port number from 1 to 65535 written in decimal digits (leading zeros allowed).
pub fn parse_port(digits: &str) -> Option<u16> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 5 {
        return None;
    }
    significant.parse::<u16>().ok().filter(|port| *port != 0)
}

/// Why a request path is refused before any rule is looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    Empty,
    NotOriginForm,
    /// `.`/`..` segments (plain or percent-encoded), encoded `/` or `\`, backslashes or
    /// control characters: forms that upstreams resolve differently from a plain match,
    /// so a rule could be bypassed.
    Ambiguous(&'static str),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::Empty => f.write_str("request has no path"),
            PathError::NotOriginForm => f.write_str("request path must start with '/'"),
            PathError::Ambiguous(what) => write!(f, "request path contains {what}"),
        }
    }
}

impl std::error::Error for PathError {}

/// The path rules are matched against: the `:path` without its query string, with runs
/// of `/` merged and percent-encoding in one canonical spelling ([`canonical_escapes`]).
/// Paths an upstream could resolve to something else are refused.
pub fn canonical_path(raw_path: &str) -> Result<Cow<'_, str>, PathError> {
    let path = raw_path.split(['?', '#']).next().unwrap_or("");
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if !path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    // One pass over the bytes (this runs on every request); problems are reported in a
    // fixed order whatever their position.
    let (mut control, mut backslash, mut encoded_slash, mut encoded_nul) =
        (false, false, false, false);
    let (mut double_slash, mut rewrite) = (false, false);
    let bytes = path.as_bytes();
    for (index, &byte) in bytes.iter().enumerate() {
        match byte {
            0..=0x1f | 0x7f => control = true,
            b'\\' => backslash = true,
            b'/' if index > 0 && bytes.get(index - 1) == Some(&b'/') => double_slash = true,
            b'%' => {
                rewrite = true;
                match (bytes.get(index + 1), bytes.get(index + 2)) {
                    (Some(b'2'), Some(b'f' | b'F')) | (Some(b'5'), Some(b'c' | b'C')) => {
                        encoded_slash = true
                    }
                    (Some(b'0'), Some(b'0')) => encoded_nul = true,
                    _ => {}
                }
            }
            0x80..=0xff => rewrite = true,
            _ => {}
        }
    }
    if control {
        return Err(PathError::Ambiguous("control characters"));
    }
    if backslash {
        return Err(PathError::Ambiguous("a backslash"));
    }
    if encoded_slash {
        return Err(PathError::Ambiguous("an encoded slash or backslash"));
    }
    if encoded_nul {
        return Err(PathError::Ambiguous("an encoded NUL"));
    }
    if path.split('/').any(is_dot_segment) {
        return Err(PathError::Ambiguous("a dot segment"));
    }
    if !double_slash && !rewrite {
        return Ok(Cow::Borrowed(path));
    }
    let mut merged = String::with_capacity(path.len());
    for ch in path.chars() {
        if !(ch == '/' && merged.ends_with('/')) {
            merged.push(ch);
        }
    }
    Ok(if rewrite {
        Cow::Owned(canonical_escapes(&merged))
    } else {
        Cow::Owned(merged)
    })
}

/// One spelling for every path Envoy or a client may send for the same resource, so a
/// rule written `/users/auth0|carol` matches `/users/auth0%7Ccarol` and `%7c` alike: an
/// escape of a printable ASCII character that means nothing special in a path is
/// decoded; escapes of `%`, `/`, `\`, `?`, `#`, `;`, spaces, control and non-ASCII bytes
/// stay escaped with upper-case hex; raw non-ASCII bytes and a `%` that starts no valid
/// escape are escaped.
pub fn canonical_escapes(path: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = match (byte, bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_value(high).zip(hex_value(low)),
            _ => None,
        };
        let (value, width) = match escaped {
            Some((high, low)) => (high << 4 | low, 3),
            None => (byte, 1),
        };
        // A `%` that starts no valid escape is itself escaped (`%25`): left bare, it
        // could pair with what a decoded escape yields (`%%32e` → `%2e`) into an
        // escape no check has seen.
        if value.is_ascii_graphic() && !b"%/\\?#;".contains(&value) {
            out.push(value);
        } else if escaped.is_some() || !value.is_ascii() || value == b'%' {
            out.push(b'%');
            out.extend(
                [value >> 4, value & 0x0f]
                    .iter()
                    .filter_map(|nibble| HEX.get(usize::from(*nibble))),
            );
        } else {
            out.push(byte);
        }
        index += width;
    }
    // Only ASCII was pushed (escapes are ASCII; raw non-ASCII bytes were escaped).
    String::from_utf8(out).unwrap_or_default()
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `.` or `..`, with any dot written as `%2e`, once the segment's parameters are set
/// aside: servlet containers (Tomcat, Jetty, Spring) and Envoy's own `normalize_path`
/// downstream strip `;…` from a segment before resolving it, so `..;x` climbs a level
/// there. An encoded `;` (`%3b`) counts too.
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment;
    let mut dots = 0;
    loop {
        rest = if let Some(after) = rest.strip_prefix('.') {
            after
        } else if rest
            .get(..3)
            .is_some_and(|escape| escape.eq_ignore_ascii_case("%2e"))
        {
            rest.get(3..).unwrap_or("")
        } else {
            let parameters = rest.is_empty()
                || rest.starts_with(';')
                || rest
                    .get(..3)
                    .is_some_and(|escape| escape.eq_ignore_ascii_case("%3b"));
            return parameters && (dots == 1 || dots == 2);
        };
        dots += 1;
    }
}

/// Percent-decodes `text` (also `+` as space, as forms encode it). `None` when the result
/// is not UTF-8 or an escape is broken.
pub fn percent_decode(text: &str) -> Option<String> {
    decode(text, true)
}

/// Percent-decodes one path segment (`+` stays `+`). `None` when the result is not UTF-8
/// or an escape is broken.
pub fn percent_decode_segment(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    decode(text, false).map(Cow::Owned)
}

fn decode(text: &str, plus_is_space: bool) -> Option<String> {
    if !(text.contains('%') || plus_is_space && text.contains('+')) {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        match byte {
            b'%' => {
                let high = bytes
                    .get(index + 1)
                    .and_then(|b| (*b as char).to_digit(16))?;
                let low = bytes
                    .get(index + 2)
                    .and_then(|b| (*b as char).to_digit(16))?;
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                index += 1;
            }
            other => {
                out.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Request headers from text pairs, for the unit tests of every module.
#[cfg(test)]
pub(crate) fn header_pairs(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.as_bytes().to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        header_pairs(pairs)
    }

    #[test]
    fn pseudo_headers_are_read_from_the_view() {
        let h = headers(&[
            (":method", "POST"),
            (":path", "/a?b=1"),
            (":authority", "x"),
        ]);
        let view = RequestView::new(&h);
        assert_eq!(view.method(), "POST");
        assert_eq!(view.raw_path(), "/a?b=1");
        assert_eq!(view.authority(), "x");
        assert_eq!(view.query(), Some("b=1"));
    }

    /// The pseudo-headers found when the view is made read exactly as `header_text`
    /// reads them, from pairs and from a serialized map: the first of each name in any
    /// case, empty when absent or not UTF-8 (never a later duplicate).
    #[test]
    fn pseudo_headers_found_once_read_like_any_header() {
        let mut h = headers(&[
            ("x-a", "1"),
            (":METHOD", "GET"),
            (":method", "DELETE"),
            (":path", "/first"),
            (":path", "/second"),
        ]);
        h.push((":authority".to_owned(), vec![0xff]));
        h.push((":authority".to_owned(), b"later.example".to_vec()));
        let serialized = SerializedHeaders::parse(serialize_pairs(&h)).unwrap();
        for view in [RequestView::new(&h), RequestView::new(&serialized)] {
            assert_eq!(view.method(), view.header_text(":method").unwrap_or(""));
            assert_eq!(view.method(), "GET");
            assert_eq!(view.raw_path(), "/first");
            assert_eq!(view.authority(), "");
            assert_eq!(view.header_text(":authority"), None);
        }
        let none = headers(&[("x-a", "1")]);
        let view = RequestView::new(&none);
        assert_eq!(
            (view.method(), view.raw_path(), view.authority()),
            ("", "", "")
        );
    }

    #[test]
    fn non_utf8_header_values_are_skipped_not_fatal() {
        let h = vec![("x".to_string(), vec![0xff, 0xfe])];
        let view = RequestView::new(&h);
        assert_eq!(view.header_text("x"), None);
        assert_eq!(view.header_values("X").count(), 1);
    }

    #[test]
    fn query_values_are_percent_decoded_and_repeatable() {
        let h = headers(&[(
            ":path",
            "/p?access%5Ftoken=a%2Eb&x=1&access_token=c+d&bad=%zz",
        )]);
        let view = RequestView::new(&h);
        assert_eq!(view.query_values("access_token"), vec!["a.b", "c d"]);
        assert!(view.query_values("bad").is_empty());
        assert!(view.query_values("none").is_empty());
    }

    #[test]
    fn cookies_are_found_across_headers() {
        let h = headers(&[("cookie", "a=1; at=tok1"), ("Cookie", "at=\"tok2\";b=2")]);
        let view = RequestView::new(&h);
        assert_eq!(view.cookie_values("at"), vec!["tok1", "tok2"]);
        assert_eq!(view.cookie_values("b"), vec!["2"]);
    }

    #[test]
    fn canonical_path_drops_query_and_merges_slashes() {
        assert_eq!(canonical_path("/a/b?x=/..").unwrap(), "/a/b");
        assert_eq!(canonical_path("//admin///x").unwrap(), "/admin/x");
        assert_eq!(canonical_path("/").unwrap(), "/");
    }

    #[test]
    fn canonical_path_refuses_ambiguous_forms() {
        for path in [
            "/public/../admin",
            "/public/%2e%2E/admin",
            "/public/.%2e/admin",
            "/a/.",
            "/a/%2fb",
            "/a/%5Cb",
            "/a\\b",
            "/a/%00",
            "/a\u{1}b",
        ] {
            assert!(
                matches!(canonical_path(path), Err(PathError::Ambiguous(_))),
                "{path}"
            );
        }
        assert_eq!(canonical_path(""), Err(PathError::Empty));
        assert_eq!(canonical_path("?x"), Err(PathError::Empty));
        assert_eq!(canonical_path("http://x/"), Err(PathError::NotOriginForm));
        assert!(canonical_path("/a/...b/.c").is_ok());
        assert!(canonical_path("/a/.../%2e%2e%2e").is_ok());
        assert!(canonical_path("/a/%2e").is_err());
        assert!(canonical_path("/a/%2").is_ok());
    }

    #[test]
    fn authorities_must_be_plain_hosts_with_ports() {
        for good in [
            "",
            "api.example.com",
            "API.example.com:8443",
            "internal_svc.local",
            "example.com.",
            "10.0.0.1:80",
            "[::1]",
            "[2001:db8::1]:443",
            "h:65535",
            "h:1",
            "h:0008443",
        ] {
            assert_eq!(check_authority(good), Ok(()), "{good}");
        }
        for bad in [
            "x@internal.example.com",
            "internal.example.com%2e",
            "internal.example.com:80x",
            "a b",
            "[::1",
            "[::1]x",
            "[zz]",
            "host:1:2",
            "evil.com/internal.example.com",
            // Ports outside 1-65535, and an empty port.
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:99999",
            "127.0.0.1:4294967297",
            "[::1]:",
            "[::1]:70000",
        ] {
            assert_eq!(check_authority(bad), Err(InvalidHost), "{bad}");
        }
    }

    #[test]
    fn dot_segments_behind_path_parameters_are_refused() {
        for path in [
            "/public/..;/admin/users",
            "/public/%2e%2e;/admin/users",
            "/public/%2E%2e;jsessionid=1/admin",
            "/public/.;x/../admin",
            "/public/..%3b/admin",
            "/public/.%2E%3Bx/admin",
            "/a/.;",
        ] {
            assert_eq!(
                canonical_path(path),
                Err(PathError::Ambiguous("a dot segment")),
                "{path}"
            );
        }
        for path in ["/a/..x;/b", "/a/x;../b", "/a/...;/b", "/a/;../b"] {
            assert!(canonical_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn percent_escapes_have_one_canonical_spelling() {
        assert_eq!(
            canonical_path("/users/auth0%7Ccarol").unwrap(),
            "/users/auth0|carol"
        );
        assert_eq!(
            canonical_path("/users/auth0%7ccarol").unwrap(),
            "/users/auth0|carol"
        );
        assert_eq!(canonical_path("/a%41%2d").unwrap(), "/aA-");
        // Escapes that mean something in a path, and non-ASCII, stay escaped (upper case).
        assert_eq!(
            canonical_path("/a%3fb%23c%3bd%25e").unwrap(),
            "/a%3Fb%23c%3Bd%25e"
        );
        assert_eq!(canonical_path("/caf%c3%a9").unwrap(), "/caf%C3%A9");
        assert_eq!(canonical_path("/café").unwrap(), "/caf%C3%A9");
        assert_eq!(canonical_path("/a%20b").unwrap(), "/a%20b");
        assert_eq!(canonical_path("/a/%2").unwrap(), "/a/%252");
        // A stray % never pairs with a decoded escape into a new one.
        assert_eq!(
            canonical_path("/public/%%32e%%32e/admin").unwrap(),
            "/public/%252e%252e/admin"
        );
        for path in ["/a%7C/%%32e", "/caf%c3%a9/%41%", "/x/%2"] {
            let once = canonical_path(path).unwrap().into_owned();
            assert_eq!(canonical_path(&once).unwrap(), once, "idempotent: {path}");
        }
        assert_eq!(canonical_path("//a%7C//b").unwrap(), "/a|/b");
        assert!(matches!(
            canonical_path("/plain/path"),
            Ok(Cow::Borrowed(_))
        ));
        assert_eq!(
            canonical_path("/a\\b/%2f/%00/.."),
            Err(PathError::Ambiguous("a backslash"))
        );
        assert_eq!(
            canonical_path("/x/%2F/%00"),
            Err(PathError::Ambiguous("an encoded slash or backslash"))
        );
    }

    #[test]
    fn percent_decode_rejects_broken_escapes_and_non_utf8() {
        assert_eq!(percent_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
        assert_eq!(percent_decode("a+b").as_deref(), Some("a b"));
        assert_eq!(
            percent_decode_segment("auth0%7Ca+b").as_deref(),
            Some("auth0|a+b")
        );
        assert_eq!(percent_decode_segment("%zz"), None);
    }
}
