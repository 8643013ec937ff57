//! Access tokens: finding them in a request (`extract`), splitting and decoding the
//! compact JWS without trusting it (`jws`), verifying signature and claims against a
//! provider's keys ([`verify`]), and why a token is refused (`error`).
//!
//! Split by concern so the untrusted-input parsing, the security checks and the error
//! vocabulary can each be read (and fuzzed) alone.

mod error;
mod extract;
mod jws;
mod verify;

pub use crate::provider::Provider;
pub use error::TokenError;
pub use extract::{find_token, FoundToken, TokenLocation};
pub use jws::UntrustedToken;
pub(crate) use jws::{decode_base64url, split_jws, JwsParts};
pub use verify::{verify, VerifiedToken};
