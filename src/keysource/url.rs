//! `http`/`https` URLs as discovery and the CLI use them: split into origin, authority and
//! path for an Envoy request, refusing credentials, fragments and other schemes.

/// An `http` or `https` URL, split for an Envoy request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub scheme: String,
    pub host: String,
    pub port: Option<u16>,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, &'static str> {
        let (scheme, rest) = text.split_once("://").ok_or("not an absolute URL")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err("scheme must be https or http");
        }
        if text.contains('#') {
            return Err("a fragment is not allowed");
        }
        if text.chars().any(|c| c.is_control() || c == ' ') {
            return Err("control characters or spaces");
        }
        let (authority, path) = match rest.find(['/', '?']) {
            Some(index) => (
                rest.get(..index).unwrap_or(""),
                rest.get(index..).unwrap_or(""),
            ),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err("credentials in the URL are not allowed");
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (inner, after) = bracketed.split_once(']').ok_or("bad host")?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port.parse::<u16>().map_err(|_| "bad port")?),
                None if after.is_empty() => None,
                None => return Err("bad host"),
            };
            (authority.get(..inner.len() + 2).unwrap_or(""), port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| "bad port")?)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err("no host");
        }
        let path_and_query = if path.starts_with('?') {
            format!("/{path}")
        } else if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        };
        Ok(HttpUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            path_and_query,
        })
    }

    fn default_port(&self) -> u16 {
        if self.scheme == "https" {
            443
        } else {
            80
        }
    }

    /// Scheme, host and effective port.
    pub fn origin(&self) -> (String, String, u16) {
        (
            self.scheme.clone(),
            self.host.clone(),
            self.port.unwrap_or(self.default_port()),
        )
    }

    /// `host` or `host:port` (the port only when not the scheme's default).
    pub fn authority(&self) -> String {
        match self.port {
            Some(port) if port != self.default_port() => format!("{}:{port}", self.host),
            _ => self.host.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_authority_and_path() {
        let url = HttpUrl::parse("HTTPS://Tenant.Auth0.com:443/a/b?c=d").unwrap();
        assert_eq!(url.authority(), "tenant.auth0.com");
        assert_eq!(url.path_and_query, "/a/b?c=d");
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080").unwrap().authority(),
            "127.0.0.1:8080"
        );
        assert_eq!(HttpUrl::parse("https://h?x").unwrap().path_and_query, "/?x");
        assert!(HttpUrl::parse("https://h:99999/").is_err());
        assert!(HttpUrl::parse("https:///x").is_err());
        assert!(HttpUrl::parse("https://h/x#f").is_err());
    }
}
