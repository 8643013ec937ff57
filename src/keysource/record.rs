//! The shared keys record (`VERSION\n` + the JWKS text) and the FNV-1a hash used for key
//! set identity and shared-data key suffixes.

/// The shared keys record: `VERSION\n` then the validated JWKS text, exactly as fetched.
pub fn encode_keys(version: u64, jwks: &[u8]) -> Vec<u8> {
    let mut record = format!("{version}\n").into_bytes();
    record.extend_from_slice(jwks);
    record
}

pub fn decode_keys(record: &[u8]) -> Option<(u64, &[u8])> {
    let newline = record.iter().position(|byte| *byte == b'\n')?;
    let version = std::str::from_utf8(record.get(..newline)?)
        .ok()?
        .parse()
        .ok()?;
    Some((version, record.get(newline + 1..)?))
}

/// A 64-bit FNV-1a hash (key set identity, shared-data key suffixes).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keysource::test_support::*;
    #[test]
    fn keys_records_carry_their_version_and_the_jwks_untouched() {
        let jwks = jwks_body();
        let record = encode_keys(7, &jwks);
        assert_eq!(decode_keys(&record), Some((7, jwks.as_slice())));
        assert_eq!(decode_keys(b"no newline"), None);
        assert_eq!(decode_keys(b"x\n{}"), None);
        assert_eq!(decode_keys(b"3\n"), Some((3, &b""[..])));
    }
}
