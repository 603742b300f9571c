//! A small position-aware YAML tree built from the event stream of `granit-parser` (the parser
//! that `serde-saphyr` uses). Config loading and manifest validation both need what serde does not
//! give them: 1-based line and column of every node, duplicate-key detection, and the YAML 1.2
//! core schema (`yes`/`on` are strings). Parsing is linear in the input, and [`limits`] bound
//! what one document may cost, so no input can make it slow or exhaust memory.
//!
//! This module owns parsing only; it knows nothing about ksail.yaml or Kubernetes objects.

mod build;
pub mod limits;
#[cfg(test)]
mod proptests;
mod stream;
#[cfg(test)]
mod tests;

use std::fmt;

use granit_parser::{ErrorKind, Event, Parser, ScanError, Span};

use build::TreeBuilder;
pub use limits::{Limit, Limits};

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A parsed YAML node with the position of its first token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// An empty node, `~` or `null` (plain, any case form the core schema allows).
    Null,
    Scalar(Scalar),
    Sequence(Vec<Node>),
    /// Entries in source order. Keys are unique (checked while parsing).
    Mapping(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scalar {
    pub text: String,
    /// Plain scalars are subject to the core schema's type resolution; quoted and block scalars
    /// are always strings.
    pub plain: bool,
}

/// What a scalar resolves to under the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum CoreValue<'a> {
    Bool(bool),
    Int(i64),
    Float,
    Str(&'a str),
}

impl Scalar {
    pub fn core_value(&self) -> CoreValue<'_> {
        if !self.plain {
            return CoreValue::Str(&self.text);
        }
        match self.text.as_str() {
            "true" | "True" | "TRUE" => CoreValue::Bool(true),
            "false" | "False" | "FALSE" => CoreValue::Bool(false),
            text => {
                if let Ok(int) = text.parse::<i64>() {
                    CoreValue::Int(int)
                } else if is_core_float(text) {
                    CoreValue::Float
                } else {
                    CoreValue::Str(text)
                }
            }
        }
    }
}

fn is_core_float(text: &str) -> bool {
    let lowered = text.to_ascii_lowercase();
    if matches!(lowered.trim_start_matches(['+', '-']), ".inf" | ".nan") {
        return true;
    }
    let bytes = text.trim_start_matches(['+', '-']);
    !bytes.is_empty()
        && bytes.chars().any(|c| c.is_ascii_digit())
        && bytes
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
        && bytes.parse::<f64>().is_ok()
}

impl Node {
    /// A short description of the node's type for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".to_string(),
            Value::Sequence(_) => "a sequence".to_string(),
            Value::Mapping(_) => "a mapping".to_string(),
            Value::Scalar(scalar) => match scalar.core_value() {
                CoreValue::Bool(b) => format!("boolean {b}"),
                CoreValue::Int(i) => format!("integer {i}"),
                CoreValue::Float => format!("number {}", scalar.text),
                CoreValue::Str(s) => format!("string {s:?}"),
            },
        }
    }

    /// The entries of a mapping node, or `None`.
    pub fn as_mapping(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Mapping(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value for `key` in a mapping node whose keys are scalars.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_mapping()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The text of a scalar node (any style), or `None`.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(scalar) => Some(&scalar.text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }
}

/// A syntax error, a duplicate key or an exceeded limit, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
    /// Set when a limit, not the syntax, stopped parsing: its fix is not "fix the syntax".
    pub limit: Option<Limit>,
}

impl YamlError {
    fn at(pos: Pos, message: String) -> Self {
        YamlError {
            pos,
            message,
            limit: None,
        }
    }

    fn limit(pos: Pos, limit: Limit, message: String) -> Self {
        YamlError {
            pos,
            message,
            limit: Some(limit),
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pos, self.message)
    }
}

impl std::error::Error for YamlError {}

impl From<ScanError> for YamlError {
    fn from(error: ScanError) -> Self {
        let marker = error.marker();
        let pos = Pos {
            line: marker.line(),
            column: marker.col() + 1,
        };
        YamlError::at(
            pos,
            error.info().lines().next().unwrap_or_default().to_string(),
        )
    }
}

/// One document of a stream: its root node (a `Null` node for an empty document).
pub type Document = Node;

/// Parse every document of `source`. Fails on the first syntax error, duplicate key or exceeded
/// limit.
pub fn parse_documents(source: &str) -> Result<Vec<Document>, YamlError> {
    let mut documents = Vec::new();
    parse_each_document(source, |document| documents.push(document))?;
    Ok(documents)
}

/// Parse `source` one document at a time, handing each to `each` as soon as it is complete, so
/// that only one document's tree is in memory. Documents before an error have been handed over.
pub fn parse_each_document(source: &str, each: impl FnMut(Document)) -> Result<(), YamlError> {
    parse_within(source, Limits::DEFAULT, each)
}

/// The parser's options for `limits`. Its own nesting limits count block and flow collections
/// separately; ours counts both, so theirs only needs to stay out of its way.
fn options(limits: Limits) -> granit_parser::Options {
    granit_parser::options! {
        block_nesting_limit: limits.depth + 1,
        flow_nesting_limit: limits.depth + 1,
    }
}

/// [`parse_each_document`] under `limits`: the unit tests, the property tests and the fuzz
/// entry points use smaller ones to reach each edge cheaply.
pub fn parse_within(
    source: &str,
    limits: Limits,
    each: impl FnMut(Document),
) -> Result<(), YamlError> {
    build_each(
        Parser::new_from_str_with_options(source, options(limits)),
        limits,
        each,
    )
}

/// Why text read by [`parse_each_document_from`] could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// Syntax, duplicate key or limit, as for [`parse_each_document`].
    Yaml(YamlError),
    /// The bytes stop being UTF-8 at this position.
    InvalidUtf8(Pos),
    /// Reading failed at this position.
    Read(Pos, String),
}

/// [`parse_each_document`] over text read from `reader`, decoded as it is read: memory holds one
/// read buffer and the current document's tree, never the whole text.
pub fn parse_each_document_from(
    reader: impl std::io::BufRead,
    each: impl FnMut(Document),
) -> Result<(), StreamError> {
    parse_from_within(reader, Limits::DEFAULT, each)
}

/// [`parse_each_document_from`] under `limits` (see [`parse_within`]).
pub fn parse_from_within(
    reader: impl std::io::BufRead,
    limits: Limits,
    each: impl FnMut(Document),
) -> Result<(), StreamError> {
    let (chars, failure) = stream::Utf8Chars::new(reader);
    let parsed = build_each(
        Parser::new_from_fallible_iter_with_options(chars, options(limits)),
        limits,
        each,
    );
    match (parsed, failure.take()) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some((pos, stream::SourceError::InvalidUtf8))) => {
            Err(StreamError::InvalidUtf8(pos))
        }
        (Err(error), Some((pos, stream::SourceError::Read))) => {
            Err(StreamError::Read(pos, error.message))
        }
        (Err(error), None) => Err(StreamError::Yaml(error)),
    }
}

/// Build a tree per document from the parser's events.
fn build_each<'input>(
    events: impl Iterator<Item = Result<(Event<'input>, Span), ScanError>>,
    limits: Limits,
    each: impl FnMut(Document),
) -> Result<(), YamlError> {
    let mut builder = TreeBuilder::new(limits, each);
    for (index, event) in events.enumerate() {
        // A signal stops a long parse early (crate::interrupt); the caller reports it.
        if index % 4096 == 4095 && crate::interrupt::requested() {
            let pos = event.as_ref().map_or_else(
                |error| YamlError::from(error.clone()).pos,
                |(_, span)| Pos::from_span(span),
            );
            return Err(YamlError::at(pos, "interrupted".to_string()));
        }
        let (event, span) = event.map_err(|error| {
            // The parser's own limit means the same as ours; it can notice first because it
            // reads ahead of the tree.
            let depth = matches!(error.kind(), ErrorKind::RecursionLimitExceeded);
            let error = YamlError::from(error);
            match depth {
                true => YamlError::limit(error.pos, Limit::Depth, limits.message(Limit::Depth)),
                false => error,
            }
        })?;
        builder.push(event, &span)?;
    }
    Ok(())
}
