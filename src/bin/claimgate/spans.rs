//! Where a field path (`rules[3].when.claim`, as a `ConfigError` or warning names it) is
//! in the user's own file: the line and column of its value in the original JSON or YAML
//! text, never in a re-serialized copy. A path that goes deeper than the document (a
//! missing field) gives the position of the deepest part that exists.

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A line and a column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// The rest of `path` after the map key `key`, when the path goes through it.
fn step_key<'p>(path: &'p str, key: &str) -> Option<&'p str> {
    let after = path.strip_prefix(key)?;
    if after.is_empty() || after.starts_with('[') {
        Some(after)
    } else {
        after.strip_prefix('.')
    }
}

/// The index `path` starts with (`[3]…`) and the rest after it.
fn step_index(path: &str) -> Option<(usize, &str)> {
    let (digits, after) = path.strip_prefix('[')?.split_once(']')?;
    let index = digits.parse().ok()?;
    Some((index, after.strip_prefix('.').unwrap_or(after)))
}

/// `.` (the document itself) is the empty path.
fn normalized(path: &str) -> &str {
    if path == "." {
        ""
    } else {
        path
    }
}

// ---------------------------------------------------------------------------------------
// JSON: a small scanner over text serde_json has already accepted.

/// The position of `path` in `text`, a JSON document serde_json parsed (so it is valid,
/// and nested no deeper than serde_json's limit).
pub fn in_json(text: &str, path: &str) -> Option<Position> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
        line: 1,
        column: 1,
    };
    scanner.seek(normalized(path))
}

struct Scanner<'t> {
    bytes: &'t [u8],
    at: usize,
    line: usize,
    column: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        if byte == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if byte & 0xC0 != 0x80 {
            // Columns count characters: UTF-8 continuation bytes add none.
            self.column += 1;
        }
        Some(byte)
    }

    fn whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.bump();
        }
    }

    fn position(&self) -> Position {
        Position {
            line: self.line,
            column: self.column,
        }
    }

    /// A string (the scanner at its opening quote), decoded.
    fn string(&mut self) -> Option<String> {
        let start = self.at;
        self.bump();
        loop {
            match self.bump()? {
                b'\\' => {
                    self.bump()?;
                }
                b'"' => break,
                _ => {}
            }
        }
        let raw = std::str::from_utf8(self.bytes.get(start..self.at)?).ok()?;
        serde_json::from_str(raw).ok()
    }

    fn skip_value(&mut self) -> Option<()> {
        self.whitespace();
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.bump();
                loop {
                    self.whitespace();
                    if self.peek()? == close {
                        self.bump();
                        break;
                    }
                    if open == b'{' {
                        self.string()?;
                        self.whitespace();
                        self.bump()?; // ':'
                    }
                    self.skip_value()?;
                    self.whitespace();
                    if self.peek()? == b',' {
                        self.bump();
                    }
                }
            }
            _ => {
                while !matches!(
                    self.peek(),
                    None | Some(b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n')
                ) {
                    self.bump();
                }
            }
        }
        Some(())
    }

    /// The position of `path` below the value at the scanner, or of the deepest part of it
    /// that exists.
    fn seek(&mut self, path: &str) -> Option<Position> {
        self.whitespace();
        let here = self.position();
        if path.is_empty() {
            return Some(here);
        }
        match self.peek()? {
            b'{' => {
                self.bump();
                loop {
                    self.whitespace();
                    if self.peek()? != b'"' {
                        return Some(here);
                    }
                    let key = self.string()?;
                    self.whitespace();
                    self.bump()?; // ':'
                    if let Some(rest) = step_key(path, &key) {
                        return self.seek(rest).or(Some(here));
                    }
                    self.skip_value()?;
                    self.whitespace();
                    if self.bump()? != b',' {
                        return Some(here);
                    }
                }
            }
            b'[' => {
                let Some((wanted, rest)) = step_index(path) else {
                    return Some(here);
                };
                self.bump();
                let mut index = 0;
                loop {
                    self.whitespace();
                    if self.peek()? == b']' {
                        return Some(here);
                    }
                    if index == wanted {
                        return self.seek(rest).or(Some(here));
                    }
                    self.skip_value()?;
                    self.whitespace();
                    if self.bump()? != b',' {
                        return Some(here);
                    }
                    index += 1;
                }
            }
            _ => Some(here),
        }
    }
}

// ---------------------------------------------------------------------------------------
// YAML: serde_yaml_ng marks an error with the position of the node being read, so a seed
// that fails exactly at the wanted node learns its position.

const FOUND: &str = "claimgate: position found";

/// The position of `path` in document `document` (from 0) of the YAML `text`.
pub fn in_yaml(text: &str, document: usize, path: &str) -> Option<Position> {
    let deserializer = serde_yaml_ng::Deserializer::from_str(text).nth(document)?;
    let error = match (Seek {
        path: normalized(path),
    })
    .deserialize(deserializer)
    {
        Ok(()) => return None,
        Err(error) => error,
    };
    let location = error.location()?;
    Some(Position {
        line: location.line(),
        column: location.column(),
    })
}

struct Seek<'p> {
    path: &'p str,
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn found<E: de::Error>() -> Result<(), E> {
    Err(E::custom(FOUND))
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if !self.path.is_empty() {
            while let Some(key) = map.next_key::<serde_yaml_ng::Value>()? {
                let text = match key {
                    serde_yaml_ng::Value::String(text) => text,
                    serde_yaml_ng::Value::Number(number) => number.to_string(),
                    serde_yaml_ng::Value::Bool(flag) => flag.to_string(),
                    _ => String::new(),
                };
                if let Some(rest) = step_key(self.path, &text) {
                    return map.next_value_seed(Seek { path: rest });
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        found()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if let Some((wanted, rest)) = step_index(self.path) {
            let mut index = 0;
            while index < wanted {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return found();
                }
                index += 1;
            }
            if seq.next_element_seed(Seek { path: rest })?.is_some() {
                return Ok(());
            }
        }
        found()
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        found()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        found()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        found()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        found()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        found()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        found()
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        found()
    }
    fn visit_some<D: de::Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        found()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = "{\n  \"realm\": \"api\",\n  \"rules\": [\n    {\"name\": \"a\"},\n    {\"name\": \"b\", \"when\": {\"claim\": \"x\", \"matches\": \"y\"}}\n  ],\n  \"https://x.example/tier\": {\"é\": 1, \"k\": 2}\n}\n";

    fn at(line: usize, column: usize) -> Option<Position> {
        Some(Position { line, column })
    }

    #[test]
    fn json_paths_point_at_their_values() {
        assert_eq!(in_json(JSON, "."), at(1, 1));
        assert_eq!(in_json(JSON, "realm"), at(2, 12));
        assert_eq!(in_json(JSON, "rules[1]"), at(5, 5));
        assert_eq!(in_json(JSON, "rules[1].when.matches"), at(5, 53));
        // Keys with dots, and columns counted in characters.
        assert_eq!(in_json(JSON, "https://x.example/tier.k"), at(7, 43));
        // A missing field: the deepest part that exists.
        assert_eq!(in_json(JSON, "rules[0].when"), at(4, 5));
        assert_eq!(in_json(JSON, "rules[7]"), at(3, 12));
    }

    const YAML: &str = "realm: api\nrules:\n  - name: a\n  - name: b\n    when: {claim: x, matches: y}\n---\nkind: WasmPlugin\nspec:\n  pluginConfig:\n    realm: z\n";

    #[test]
    fn yaml_paths_point_at_their_values_in_any_document() {
        assert_eq!(in_yaml(YAML, 0, "realm"), at(1, 8));
        assert_eq!(in_yaml(YAML, 0, "rules[1]"), at(4, 5));
        assert_eq!(in_yaml(YAML, 0, "rules[1].when.matches"), at(5, 31));
        assert_eq!(in_yaml(YAML, 0, "rules[0].when"), at(3, 5));
        assert_eq!(in_yaml(YAML, 1, "spec.pluginConfig.realm"), at(10, 12));
        assert_eq!(in_yaml(YAML, 2, "realm"), None);
    }
}
