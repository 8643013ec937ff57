//! Reading what the user gives: a configuration, a case file, a bootstrap or manifests —
//! JSON, or YAML (several documents allowed) — and compiling configurations with errors
//! and warnings that point at the line and column of the user's own file.

use std::path::Path;

use claimgate::config::{Config, ConfigError, ConfigWarning};
use serde::Deserialize;
use serde_json::Value;

use crate::spans::{self, Position};
use crate::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Json,
    Yaml,
}

/// A file as read, with its syntax.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
    pub syntax: Syntax,
}

impl Source {
    /// Reads `path`: YAML when its name ends in `.yaml` or `.yml`, JSON when it ends in
    /// `.json`, otherwise JSON when the text starts with `{` or `[`, else YAML.
    pub fn read(path: &Path) -> Result<Source, CliError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|err| CliError::Refused(format!("cannot read {name}: {err}")))?;
        let extension = path.extension().and_then(|ext| ext.to_str());
        let syntax = match extension {
            Some("yaml" | "yml") => Syntax::Yaml,
            Some("json") => Syntax::Json,
            _ if text.trim_start().starts_with(['{', '[']) => Syntax::Json,
            _ => Syntax::Yaml,
        };
        Ok(Source { name, text, syntax })
    }

    /// Text given inline (a configuration embedded in a bootstrap as a JSON string).
    pub fn inline(name: String, text: String) -> Source {
        Source {
            name,
            text,
            syntax: Syntax::Json,
        }
    }

    /// Every document in the file (JSON: one; YAML: one per `---`, empty ones skipped),
    /// with its index. Syntax errors give the line and column in this file.
    pub fn documents(&self) -> Result<Vec<(usize, Value)>, CliError> {
        match self.syntax {
            Syntax::Json => {
                let value = serde_json::from_str(&self.text).map_err(|err| {
                    CliError::Refused(format!(
                        "{}:{}:{}: not JSON: {}",
                        self.name,
                        err.line(),
                        err.column(),
                        without_position(&err.to_string())
                    ))
                })?;
                Ok(vec![(0, value)])
            }
            Syntax::Yaml => {
                let mut documents = Vec::new();
                for (index, document) in
                    serde_yaml_ng::Deserializer::from_str(&self.text).enumerate()
                {
                    let value = Value::deserialize(document).map_err(|err| {
                        let at = err.location().map_or_else(String::new, |location| {
                            format!("{}:{}:", location.line(), location.column())
                        });
                        CliError::Refused(format!("{}:{at} not YAML: {err}", self.name))
                    })?;
                    if !value.is_null() {
                        documents.push((index, value));
                    }
                }
                Ok(documents)
            }
        }
    }

    /// The file's one document.
    pub fn document(&self) -> Result<Value, CliError> {
        let mut documents = self.documents()?.into_iter();
        match (documents.next(), documents.next()) {
            (Some((_, value)), None) => Ok(value),
            (None, _) => Err(CliError::Refused(format!("{}: empty", self.name))),
            (Some(_), Some(_)) => Err(CliError::Refused(format!(
                "{}: several YAML documents; give one",
                self.name
            ))),
        }
    }

    /// Where `path` of document `document` is in this file.
    pub fn position(&self, document: usize, path: &str) -> Option<Position> {
        match self.syntax {
            Syntax::Json => spans::in_json(&self.text, path),
            Syntax::Yaml => spans::in_yaml(&self.text, document, path),
        }
    }

    /// `FILE:LINE:COLUMN` of `path` (`FILE` when it cannot be placed).
    pub fn at(&self, document: usize, path: &str) -> String {
        match self.position(document, path) {
            Some(Position { line, column }) => format!("{}:{line}:{column}", self.name),
            None => self.name.clone(),
        }
    }
}

/// Where a configuration is inside its file: the document and the path of the
/// configuration's object (empty: the whole document).
#[derive(Debug, Clone)]
pub struct Place<'s> {
    pub source: &'s Source,
    pub document: usize,
    pub prefix: String,
}

impl Place<'_> {
    /// The path in the file of `path` inside the configuration.
    fn full_path(&self, path: &str) -> String {
        match (self.prefix.as_str(), path) {
            ("", path) => path.to_owned(),
            (prefix, "." | "") => prefix.to_owned(),
            (prefix, path) => format!("{prefix}.{path}"),
        }
    }

    /// `FILE:LINE:COLUMN` of the configuration's field `path`.
    pub fn at(&self, path: &str) -> String {
        self.source.at(self.document, &self.full_path(path))
    }

    /// A compile error, placed in the file.
    pub fn error(&self, err: &ConfigError) -> String {
        format!(
            "{}: {}: {}",
            self.at(&err.path),
            err.path,
            without_position(&err.message)
        )
    }

    /// A warning as `check` prints it: the path and message, then where it is.
    pub fn warning(&self, warning: &ConfigWarning) -> String {
        format!("{warning} ({})", self.at(&warning.path))
    }
}

/// Compiles the configuration `value` found at `place`.
pub fn compile(value: &Value, place: &Place<'_>) -> Result<Config, CliError> {
    let text = serde_json::to_vec(value).map_err(|err| CliError::Refused(err.to_string()))?;
    Config::from_json(&text).map_err(|err| CliError::Refused(place.error(&err)))
}

/// Reads and compiles the configuration in the file at `path` (its only document).
pub fn load_config(path: &Path) -> Result<Config, CliError> {
    load_document(path).map(|(_, config)| config)
}

/// Reads the configuration in the file at `path` (its only document) and compiles it:
/// the document as read, and what it compiles to.
pub fn load_document(path: &Path) -> Result<(Value, Config), CliError> {
    let source = Source::read(path)?;
    let value = source.document()?;
    let config = compile(
        &value,
        &Place {
            source: &source,
            document: 0,
            prefix: String::new(),
        },
    )?;
    Ok((value, config))
}

/// serde_json's messages carry ` at line L column C`: of the copy the configuration was
/// compiled from, so it is dropped (the caller gives the user's own position).
pub fn without_position(message: &str) -> String {
    let mut rest = message;
    let mut out = String::with_capacity(message.len());
    while let Some(index) = rest.find(" at line ") {
        let (before, after) = rest.split_at(index);
        let tail = after.get(9..).unwrap_or("");
        let line_digits = tail.len() - tail.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let column = tail
            .get(line_digits..)
            .and_then(|t| t.strip_prefix(" column "));
        match column {
            Some(column) if line_digits > 0 => {
                let digits = column.len()
                    - column
                        .trim_start_matches(|c: char| c.is_ascii_digit())
                        .len();
                out.push_str(before);
                rest = column.get(digits..).unwrap_or("");
            }
            _ => {
                out.push_str(before);
                out.push_str(" at line ");
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_positions_of_the_copy_are_dropped() {
        assert_eq!(
            without_position("missing field `jwks` at line 1 column 230"),
            "missing field `jwks`"
        );
        assert_eq!(without_position("plain message"), "plain message");
        assert_eq!(
            without_position("missing field `jwks` at line 1 column 23: give one"),
            "missing field `jwks`: give one"
        );
        assert_eq!(without_position("bad at line x"), "bad at line x");
    }
}
