//! The proxy-wasm ABI's byte formats for header maps and property paths, written and read
//! without panicking: a map the host hands over is checked against its own lengths
//! before any byte is taken from it.

use super::host::{HeaderList, HostError};

/// Serializes pairs the way `proxy_send_local_response` and `proxy_http_call` take them:
/// a little-endian `u32` count, the lengths of every name and value, then each name and
/// value followed by a NUL.
pub fn serialize_pairs(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(name, value)| 10 + name.len() + value.len())
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&wire_len(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        bytes.extend_from_slice(&wire_len(name.len()).to_le_bytes());
        bytes.extend_from_slice(&wire_len(value.len()).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value);
        bytes.push(0);
    }
    bytes
}

/// A length as the ABI's `u32`; nothing the filter sends comes near 4 GiB.
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Reads a serialized header map. Names must be UTF-8 (Envoy's always are); values stay
/// bytes.
pub fn deserialize_pairs(bytes: &[u8]) -> Result<HeaderList, HostError> {
    const BAD: HostError = HostError::Malformed("header map");
    let mut lengths = Reader { bytes, at: 0 };
    let count = lengths.u32()?;
    // The names and values follow the table of lengths; read both side by side (no copy
    // of the table: this runs on every request).
    let data_starts = count
        .checked_mul(8)
        .and_then(|table| table.checked_add(4))
        .ok_or(BAD)?;
    let mut reader = Reader {
        bytes,
        at: data_starts,
    };
    let mut pairs = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let (name_len, value_len) = (lengths.u32()?, lengths.u32()?);
        let name = reader.take(name_len)?;
        reader.nul()?;
        let value = reader.take(value_len)?;
        reader.nul()?;
        let name = std::str::from_utf8(name).map_err(|_| BAD)?;
        pairs.push((name.to_owned(), value.to_vec()));
    }
    Ok(pairs)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], HostError> {
        let end = self.at.checked_add(len);
        let taken = end.and_then(|end| self.bytes.get(self.at..end));
        let taken = taken.ok_or(HostError::Malformed("header map"))?;
        self.at += len;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<usize, HostError> {
        let bytes: [u8; 4] = self
            .take(4)?
            .try_into()
            .map_err(|_| HostError::Malformed("header map"))?;
        usize::try_from(u32::from_le_bytes(bytes)).map_err(|_| HostError::Malformed("header map"))
    }

    fn nul(&mut self) -> Result<(), HostError> {
        match self.take(1)? {
            [0] => Ok(()),
            _ => Err(HostError::Malformed("header map")),
        }
    }
}

/// A property path as `proxy_get_property` and `proxy_set_property` take it: the parts
/// separated by NUL, with none after the last (as the proxy-wasm SDKs write it). Envoy
/// uses a set path as the filter-state name itself, so a trailing NUL would end up in
/// the name (`wasm.claimgate.decision\0`, which no access log can name).
pub fn serialize_path(path: &[&str]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(path.iter().map(|part| part.len() + 1).sum());
    for (index, part) in path.iter().enumerate() {
        if index > 0 {
            bytes.push(0);
        }
        bytes.extend_from_slice(part.as_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_with_binary_values() {
        let pairs: [(&str, &[u8]); 3] = [
            (":path", b"/a"),
            ("x-binary", &[0xff, 0x00, 0x80]),
            ("empty", b""),
        ];
        let decoded = deserialize_pairs(&serialize_pairs(&pairs)).unwrap();
        let expected: HeaderList = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.to_vec()))
            .collect();
        assert_eq!(decoded, expected);
    }

    #[test]
    fn truncated_or_lying_maps_are_errors_not_panics() {
        let good = serialize_pairs(&[("a", b"b"), ("cc", b"dd")]);
        for cut in 0..good.len() {
            assert!(deserialize_pairs(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(deserialize_pairs(&huge_count).is_err());
        let mut huge_length = good.clone();
        huge_length[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(deserialize_pairs(&huge_length).is_err());
        let mut no_nul = good;
        let first_nul = 4 + 16 + 1;
        no_nul[first_nul] = b'x';
        assert!(deserialize_pairs(&no_nul).is_err());
        assert_eq!(deserialize_pairs(&0u32.to_le_bytes()).unwrap(), Vec::new());
    }

    #[test]
    fn property_paths_separate_parts_with_nul_and_never_end_with_one() {
        assert_eq!(serialize_path(&["source", "address"]), b"source\0address");
        assert_eq!(
            serialize_path(&["claimgate.decision"]),
            b"claimgate.decision"
        );
        assert_eq!(serialize_path(&[]), b"");
    }
}
