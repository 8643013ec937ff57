//! The proxy-wasm ABI's byte format for property paths. (Header maps, which the core
//! reads too, are `crate::request::SerializedHeaders`.)

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
    fn property_paths_separate_parts_with_nul_and_never_end_with_one() {
        assert_eq!(serialize_path(&["source", "address"]), b"source\0address");
        assert_eq!(
            serialize_path(&["claimgate.decision"]),
            b"claimgate.decision"
        );
        assert_eq!(serialize_path(&[]), b"");
    }
}
