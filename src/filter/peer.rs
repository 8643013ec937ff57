//! What the decision reads of the connection besides the headers, carried with a request
//! while it waits (for keys, or for the fleet-wide record).

use crate::request::Scheme;

/// What the decision reads of the connection, besides the headers: read from Envoy only
/// when the configuration uses it (each is a host call).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    /// `source.address`, when a condition reads the client address.
    pub address: Option<String>,
    /// The TLS client certificate's SHA-256 thumbprint (base64url), when a provider binds
    /// tokens to certificates (RFC 8705).
    pub certificate: Option<String>,
    /// Whether the connection is TLS, when a DPoP `htu` or a `request: scheme` condition
    /// needs the scheme.
    pub scheme: Option<Scheme>,
}
