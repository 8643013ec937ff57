//! The JWS algorithms claimgate verifies, their names and the key family each needs.

use std::fmt;

use super::RsaHash;

/// A JWS algorithm claimgate can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    Es512,
    EdDsa,
    Hs256,
    Hs384,
    Hs512,
}

/// The key family an algorithm needs; a key verifies only algorithms of its own family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
    Hmac,
}

impl Alg {
    /// Every supported algorithm, in a stable order (for messages and schemas).
    pub const ALL: [Alg; 13] = [
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::EdDsa,
        Alg::Hs256,
        Alg::Hs384,
        Alg::Hs512,
    ];

    /// Parses a JOSE `alg` name exactly (case-sensitive, as RFC 7515 requires).
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Rs384 => "RS384",
            Alg::Rs512 => "RS512",
            Alg::Ps256 => "PS256",
            Alg::Ps384 => "PS384",
            Alg::Ps512 => "PS512",
            Alg::Es256 => "ES256",
            Alg::Es384 => "ES384",
            Alg::Es512 => "ES512",
            Alg::EdDsa => "EdDSA",
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
        }
    }

    pub fn family(self) -> KeyFamily {
        match self {
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                KeyFamily::Rsa
            }
            Alg::Es256 => KeyFamily::P256,
            Alg::Es384 => KeyFamily::P384,
            Alg::Es512 => KeyFamily::P521,
            Alg::EdDsa => KeyFamily::Ed25519,
            Alg::Hs256 | Alg::Hs384 | Alg::Hs512 => KeyFamily::Hmac,
        }
    }

    /// The shortest secret an HMAC algorithm accepts, in bytes: the size of its hash
    /// output (RFC 7518 §3.2). `None` for the other algorithms.
    pub fn min_hmac_bytes(self) -> Option<usize> {
        match self {
            Alg::Hs256 => Some(32),
            Alg::Hs384 => Some(48),
            Alg::Hs512 => Some(64),
            _ => None,
        }
    }

    /// The hash of an RSA algorithm and whether it uses PSS padding (else PKCS#1 v1.5).
    pub(crate) fn rsa_scheme(self) -> Option<(RsaHash, bool)> {
        match self {
            Alg::Rs256 => Some((RsaHash::Sha256, false)),
            Alg::Rs384 => Some((RsaHash::Sha384, false)),
            Alg::Rs512 => Some((RsaHash::Sha512, false)),
            Alg::Ps256 => Some((RsaHash::Sha256, true)),
            Alg::Ps384 => Some((RsaHash::Sha384, true)),
            Alg::Ps512 => Some((RsaHash::Sha512, true)),
            _ => None,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alg_names_round_trip_and_are_case_sensitive() {
        for alg in Alg::ALL {
            assert_eq!(Alg::from_name(alg.name()), Some(alg));
        }
        assert_eq!(Alg::from_name("rs256"), None);
        assert_eq!(Alg::from_name("none"), None);
        assert_eq!(Alg::from_name("ES256K"), None);
    }
}
