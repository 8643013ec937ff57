//! The URI a proof's `htu` names and the URI of the request, in the one form they are
//! compared in. RFC 9449 §4.3 (check 9) compares them "ignoring any query and fragment
//! parts" and recommends syntax-based normalization (RFC 3986 §6.2.2) and scheme-based
//! normalization (§6.2.3): scheme and host case, percent-encoding case, percent-encoded
//! unreserved characters, dot segments, an empty or default port, an empty path. What is
//! ambiguous (userinfo, an escaped slash, a dot segment behind `;`, a backslash, control
//! characters) is refused on both sides rather than guessed at. A URI that cannot be
//! formed is an error, never a value two requests could share.

use std::fmt;

use super::DpopSettings;
use crate::request::{canonical_escapes, canonical_path, parse_port, split_authority};
use crate::request::{RequestView, Scheme};

/// An absolute `http`/`https` URI without query and fragment, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUri {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
}

/// Why a URI cannot be compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriError {
    NotAbsolute,
    Scheme,
    Userinfo,
    Host,
    Port,
    Path,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UriError::NotAbsolute => "not an absolute URI",
            UriError::Scheme => "scheme is not http or https",
            UriError::Userinfo => "userinfo is not allowed",
            UriError::Host => "host is empty or not a plain host",
            UriError::Port => "port is not from 1 to 65535",
            UriError::Path => "path is ambiguous",
        })
    }
}

impl std::error::Error for UriError {}

impl TargetUri {
    /// A proof's `htu`, normalized; its query and fragment are dropped.
    pub fn parse(uri: &str) -> Result<TargetUri, UriError> {
        let without_query = uri.split(['?', '#']).next().unwrap_or_default();
        let (scheme, rest) = without_query
            .split_once("://")
            .ok_or(UriError::NotAbsolute)?;
        let scheme = Scheme::parse(scheme).ok_or(UriError::Scheme)?;
        let (authority, path) = match rest.find('/') {
            Some(index) => rest.split_at(index),
            None => (rest, ""),
        };
        TargetUri::from_parts(scheme, authority, path)
    }

    /// The URI of the request as the client addressed it: the configured `htu_scheme`,
    /// else the connection's scheme (never a client's `:scheme`: see
    /// [`RequestView::scheme`]); the configured `htu_authority`, else `:authority`; the
    /// `:path` without its query.
    pub fn of_request(
        settings: &DpopSettings,
        request: &RequestView<'_>,
    ) -> Result<TargetUri, UriError> {
        let scheme = settings
            .htu_scheme
            .or_else(|| request.scheme())
            .ok_or(UriError::Scheme)?;
        let authority = settings
            .htu_authority
            .as_deref()
            .unwrap_or_else(|| request.authority());
        let path = request.raw_path().split(['?', '#']).next().unwrap_or("");
        if !path.starts_with('/') {
            return Err(UriError::Path);
        }
        TargetUri::from_parts(scheme, authority, path)
    }

    fn from_parts(scheme: Scheme, authority: &str, path: &str) -> Result<TargetUri, UriError> {
        if authority.contains('@') {
            return Err(UriError::Userinfo);
        }
        let (host, port) = split_authority(authority).map_err(|_| UriError::Host)?;
        if host.is_empty() {
            return Err(UriError::Host);
        }
        // RFC 3986 §6.2.3: an empty port is the scheme's default.
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(digits) => parse_port(digits).ok_or(UriError::Port)?,
        };
        Ok(TargetUri {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path: normalize_path(path)?,
        })
    }
}

impl fmt::Display for TargetUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.name();
        if self.port == self.scheme.default_port() {
            write!(f, "{scheme}://{}{}", self.host, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// An empty path as `/`; percent-encoding in one spelling (unreserved characters
/// decoded, hex upper case: [`canonical_escapes`]); dot segments removed (RFC 3986
/// §5.2.4); then the checks and the merged slashes rule paths get ([`canonical_path`]),
/// so both sides of the comparison are spelled as the request path rules match.
fn normalize_path(path: &str) -> Result<String, UriError> {
    let path = if path.is_empty() { "/" } else { path };
    let escaped = canonical_escapes(path);
    let resolved = remove_dot_segments(&escaped);
    canonical_path(&resolved)
        .map(|path| path.into_owned())
        .map_err(|_| UriError::Path)
}

/// RFC 3986 §5.2.4 for an absolute path: `.` segments dropped, `..` removes the segment
/// before it (never above the root); a path ending in a dot segment keeps its final `/`.
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut output: Vec<&str> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        match *segment {
            "." => {}
            ".." => {
                output.pop();
            }
            other => {
                output.push(other);
                continue;
            }
        }
        if index == last {
            output.push("");
        }
    }
    format!("/{}", output.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::request_headers;

    fn parsed(uri: &str) -> String {
        TargetUri::parse(uri)
            .map(|uri| uri.to_string())
            .unwrap_or_else(|err| format!("error: {err}"))
    }

    #[test]
    fn rfc3986_6_2_2_and_6_2_3_normalizations_are_applied() {
        let same = "https://api.example.com/caf%C3%A9/orders";
        for spelling in [
            same,
            "HTTPS://API.Example.COM/caf%C3%A9/orders",
            // §6.2.2.1: percent-encoding hex in lower case.
            "https://api.example.com/caf%c3%a9/orders",
            // §6.2.2.2: percent-encoded unreserved characters.
            "https://api.example.com/caf%c3%a9/%6Frders",
            "https://api.example.com/%63af%C3%A9/orders",
            // §6.2.2.3: dot segments.
            "https://api.example.com/x/../caf%C3%A9/./orders",
            "https://api.example.com/../caf%C3%A9/orders",
            "https://api.example.com/caf%C3%A9/x/%2E%2E/orders",
            // §6.2.3: empty port, default port; query and fragment ignored (RFC 9449 §4.3).
            "https://api.example.com:/caf%C3%A9/orders",
            "https://api.example.com:443/caf%C3%A9/orders",
            "https://api.example.com:0443/caf%C3%A9/orders",
            "https://api.example.com/caf%C3%A9/orders?page=2#top",
            // Raw non-ASCII as its UTF-8 escapes.
            "https://api.example.com/café/orders",
        ] {
            assert_eq!(parsed(spelling), same, "{spelling}");
        }
        assert_eq!(parsed("http://h"), "http://h/");
        assert_eq!(parsed("http://h:/"), "http://h/");
        assert_eq!(parsed("http://h:8080/a/b/.."), "http://h:8080/a/");
        assert_eq!(parsed("http://[::1]:80/x"), "http://[::1]/x");
    }

    #[test]
    fn what_cannot_be_formed_or_is_ambiguous_is_an_error() {
        for (uri, error) in [
            ("", UriError::NotAbsolute),
            ("x", UriError::NotAbsolute),
            ("/admin", UriError::NotAbsolute),
            ("//h/x", UriError::NotAbsolute),
            ("ftp://x/orders", UriError::Scheme),
            ("javascript://x/orders", UriError::Scheme),
            ("http://user@x/", UriError::Userinfo),
            ("http://:443/x", UriError::Host),
            ("http:///x", UriError::Host),
            ("http://exa%6Dple.com/x", UriError::Host),
            ("http://a b/x", UriError::Host),
            ("http://h:0/x", UriError::Port),
            ("http://h:65536/x", UriError::Port),
            ("http://h:99999/x", UriError::Port),
            ("http://h:99999999999999999999/x", UriError::Port),
            ("http://h:-1/x", UriError::Host),
            ("http://h/a%2Fb", UriError::Path),
            ("http://h/a%5Cb", UriError::Path),
            ("http://h/a\\b", UriError::Path),
            ("http://h/..;x/admin", UriError::Path),
            ("http://h/a%00b", UriError::Path),
        ] {
            assert_eq!(TargetUri::parse(uri), Err(error), "{uri:?}");
        }
    }

    #[test]
    fn the_request_uri_needs_a_known_scheme_and_a_host() {
        let settings = DpopSettings::default();
        // `connection`: what Envoy said of the connection (`Some(None)`: it could not
        // say); `None`: a request built offline, whose `:scheme` names the scheme.
        let uri = |scheme: Option<&str>, authority: &str, connection: Option<Option<Scheme>>| {
            let headers = request_headers("GET", "/o?x", authority, scheme, []);
            let request = match connection {
                Some(connection) => RequestView::new(&headers).with_connection_scheme(connection),
                None => RequestView::new(&headers),
            };
            TargetUri::of_request(&settings, &request).map(|uri| uri.to_string())
        };
        // Envoy could not say: no scheme, whatever the client's `:scheme`.
        assert_eq!(uri(Some("https"), "h", Some(None)), Err(UriError::Scheme));
        assert_eq!(
            uri(Some("https"), "api.example.com", None),
            Ok("https://api.example.com/o".into())
        );
        // The connection's scheme wins over a client's `:scheme`.
        assert_eq!(
            uri(Some("https"), "h", Some(Some(Scheme::Http))),
            Ok("http://h/o".into())
        );
        assert_eq!(
            uri(Some("javascript"), "h", Some(Some(Scheme::Https))),
            Ok("https://h/o".into())
        );
        for scheme in ["foo", "ftp", "javascript", ""] {
            assert_eq!(uri(Some(scheme), "h", None), Err(UriError::Scheme));
        }
        assert_eq!(uri(None, "h", None), Err(UriError::Scheme));
        assert_eq!(uri(Some("http"), "", None), Err(UriError::Host));
        for authority in ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:0"] {
            assert_eq!(uri(Some("http"), authority, None), Err(UriError::Port));
        }
    }
}
