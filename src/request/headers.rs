//! The headers of one request in either form they come in: pairs built offline (the CLI,
//! native tests, benches), or the serialized map a proxy-wasm host hands over, read in
//! place. Reading in place is what issue 22 asked of the cached path: the module copied
//! every header of every request into owned strings before (two allocations each).

/// One header: its name and its value, borrowed.
pub type Header<'a> = (&'a [u8], &'a [u8]);

/// Headers as name and value bytes, borrowed: names lowercase as Envoy gives them,
/// values raw (a value may not be UTF-8).
#[derive(Debug, Clone, Copy)]
pub enum Headers<'a> {
    Pairs(&'a [(String, Vec<u8>)]),
    Serialized(&'a SerializedHeaders),
}

impl<'a> Headers<'a> {
    /// Every header in order, each as (name, value).
    pub fn iter(self) -> HeaderIter<'a> {
        match self {
            Headers::Pairs(pairs) => HeaderIter::Pairs(pairs.iter()),
            Headers::Serialized(serialized) => HeaderIter::Serialized(serialized.iter()),
        }
    }

    /// Whether a header is named exactly `name` (Envoy's names are lowercase).
    pub fn contains(self, name: &str) -> bool {
        self.iter().any(|(present, _)| present == name.as_bytes())
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;

    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

impl<'a> From<&'a [(String, Vec<u8>)]> for Headers<'a> {
    fn from(pairs: &'a [(String, Vec<u8>)]) -> Self {
        Headers::Pairs(pairs)
    }
}

impl<'a> From<&'a Vec<(String, Vec<u8>)>> for Headers<'a> {
    fn from(pairs: &'a Vec<(String, Vec<u8>)>) -> Self {
        Headers::Pairs(pairs)
    }
}

impl<'a, const N: usize> From<&'a [(String, Vec<u8>); N]> for Headers<'a> {
    fn from(pairs: &'a [(String, Vec<u8>); N]) -> Self {
        Headers::Pairs(pairs)
    }
}

impl<'a> From<&'a SerializedHeaders> for Headers<'a> {
    fn from(serialized: &'a SerializedHeaders) -> Self {
        Headers::Serialized(serialized)
    }
}

/// The iterator of [`Headers::iter`].
pub enum HeaderIter<'a> {
    Pairs(std::slice::Iter<'a, (String, Vec<u8>)>),
    Serialized(SerializedIter<'a>),
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            HeaderIter::Pairs(pairs) => pairs
                .next()
                .map(|(name, value)| (name.as_bytes(), value.as_slice())),
            HeaderIter::Serialized(serialized) => serialized.next(),
        }
    }
}

/// A header map in the proxy-wasm ABI's serialized form — a little-endian `u32` count,
/// the `u32` lengths of every name and value, then each name and value followed by a
/// NUL — checked once against its own lengths ([`SerializedHeaders::parse`]) and then
/// read in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SerializedHeaders {
    bytes: Vec<u8>,
    count: usize,
}

/// A serialized header map that contradicts its own lengths (or has a name that is not
/// UTF-8): nothing is read from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHeaders;

impl SerializedHeaders {
    /// Takes the bytes a host returned, after checking that every length, NUL and name
    /// is where the count says. Names must be UTF-8 (Envoy's always are).
    pub fn parse(bytes: Vec<u8>) -> Result<SerializedHeaders, MalformedHeaders> {
        let count = read_u32(&bytes, 0).ok_or(MalformedHeaders)?;
        let data_starts = data_start(count).ok_or(MalformedHeaders)?;
        let mut iter = SerializedIter {
            bytes: &bytes,
            remaining: count,
            table_at: 4,
            data_at: data_starts,
        };
        let mut read = 0;
        while let Some(entry) = iter.entry() {
            let (name, _) = entry?;
            std::str::from_utf8(name).map_err(|_| MalformedHeaders)?;
            read += 1;
        }
        if read != count {
            return Err(MalformedHeaders);
        }
        Ok(SerializedHeaders { bytes, count })
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> SerializedIter<'_> {
        SerializedIter {
            bytes: &self.bytes,
            remaining: self.count,
            table_at: 4,
            data_at: data_start(self.count).unwrap_or(usize::MAX),
        }
    }
}

/// Serializes pairs in the proxy-wasm ABI's header-map form (see [`SerializedHeaders`]).
pub fn serialize_pairs<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(name, value)| 10 + name.as_ref().len() + value.as_ref().len())
        .sum::<usize>();
    let mut bytes = Vec::with_capacity(size);
    bytes.extend_from_slice(&wire_len(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        bytes.extend_from_slice(&wire_len(name.as_ref().len()).to_le_bytes());
        bytes.extend_from_slice(&wire_len(value.as_ref().len()).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_ref());
        bytes.push(0);
        bytes.extend_from_slice(value.as_ref());
        bytes.push(0);
    }
    bytes
}

/// A length as the ABI's `u32`; nothing the filter sends comes near 4 GiB.
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// Where the names and values start: after the count and the table of lengths.
fn data_start(count: usize) -> Option<usize> {
    count.checked_mul(8)?.checked_add(4)
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// The iterator of [`SerializedHeaders::iter`]: walks the table of lengths and the data
/// side by side. A map is checked when parsed, so it never meets a bad length; were it
/// to, it would stop there rather than panic.
pub struct SerializedIter<'a> {
    bytes: &'a [u8],
    remaining: usize,
    table_at: usize,
    data_at: usize,
}

impl<'a> SerializedIter<'a> {
    /// The next entry; `Some(Err)` where the bytes contradict their lengths.
    fn entry(&mut self) -> Option<Result<Header<'a>, MalformedHeaders>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let entry = self.read_entry().ok_or(MalformedHeaders);
        if entry.is_err() {
            self.remaining = 0;
        }
        Some(entry)
    }

    fn read_entry(&mut self) -> Option<Header<'a>> {
        let name_len = read_u32(self.bytes, self.table_at)?;
        let value_len = read_u32(self.bytes, self.table_at.checked_add(4)?)?;
        self.table_at = self.table_at.checked_add(8)?;
        let name = self.take(name_len)?;
        let value = self.take(value_len)?;
        Some((name, value))
    }

    /// `len` bytes and the NUL after them.
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.data_at.checked_add(len)?;
        let taken = self.bytes.get(self.data_at..end)?;
        match self.bytes.get(end) {
            Some(0) => {
                self.data_at = end.checked_add(1)?;
                Some(taken)
            }
            _ => None,
        }
    }
}

impl<'a> Iterator for SerializedIter<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        self.entry().and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs() -> Vec<(String, Vec<u8>)> {
        vec![
            (":path".to_owned(), b"/a".to_vec()),
            ("x-binary".to_owned(), vec![0xff, 0x00, 0x7f]),
            ("empty".to_owned(), Vec::new()),
        ]
    }

    #[test]
    fn a_serialized_map_reads_back_as_the_pairs_it_was_made_from() {
        let pairs = pairs();
        let serialized = SerializedHeaders::parse(serialize_pairs(&pairs)).unwrap();
        assert_eq!(serialized.len(), 3);
        let read: Vec<(&[u8], &[u8])> = Headers::from(&serialized).iter().collect();
        let expected: Vec<(&[u8], &[u8])> = Headers::from(&pairs).iter().collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn a_map_contradicting_its_lengths_is_refused_whole() {
        let good = serialize_pairs(&pairs());
        for cut in 0..good.len() {
            assert_eq!(
                SerializedHeaders::parse(good[..cut].to_vec()),
                Err(MalformedHeaders),
                "cut at {cut}"
            );
        }
        let mut no_nul = good.clone();
        let last = no_nul.len() - 1;
        no_nul[last] = b'x';
        assert_eq!(SerializedHeaders::parse(no_nul), Err(MalformedHeaders));
        let mut huge_count = good.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SerializedHeaders::parse(huge_count), Err(MalformedHeaders));
        let mut huge_length = good;
        huge_length[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(SerializedHeaders::parse(huge_length), Err(MalformedHeaders));
        let bad_name = serialize_pairs(&[(vec![0xc3u8, 0x28], b"v".to_vec())]);
        assert_eq!(SerializedHeaders::parse(bad_name), Err(MalformedHeaders));
    }

    #[test]
    fn an_empty_map_has_no_headers() {
        let empty = SerializedHeaders::parse(0u32.to_le_bytes().to_vec()).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.iter().count(), 0);
        assert_eq!(SerializedHeaders::default().iter().count(), 0);
    }

    #[test]
    fn presence_is_by_exact_name() {
        let pairs = pairs();
        let serialized = SerializedHeaders::parse(serialize_pairs(&pairs)).unwrap();
        for headers in [Headers::from(&pairs), Headers::from(&serialized)] {
            assert!(headers.contains("x-binary"));
            assert!(!headers.contains("X-Binary"));
            assert!(!headers.contains("x-bin"));
        }
    }
}
