//! A small position-aware YAML tree built from the event stream of `granit-parser` (the parser
//! that `serde-saphyr` uses). Config loading and manifest validation both need what serde does not
//! give them: 1-based line and column of every node, duplicate-key detection, and the YAML 1.2
//! core schema (`yes`/`on` are strings).
//!
//! This module owns parsing only; it knows nothing about ksail.yaml or Kubernetes objects.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};

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

/// A syntax error, or a duplicate key, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
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
        YamlError {
            pos: Pos {
                line: marker.line(),
                column: marker.col() + 1,
            },
            message: error.info().lines().next().unwrap_or_default().to_string(),
        }
    }
}

/// One document of a stream: its root node (a `Null` node for an empty document).
pub type Document = Node;

/// Parse every document of `source`. Fails on the first syntax error or duplicate key.
pub fn parse_documents(source: &str) -> Result<Vec<Document>, YamlError> {
    let mut builder = TreeBuilder::default();
    for event in Parser::new_from_str(source) {
        let (event, span) = event?;
        builder.push(event, &span)?;
    }
    Ok(builder.documents)
}

/// Frames of the collection currently being built.
enum Frame {
    Sequence {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Mapping {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        /// [`key_hash`] of every key in `entries`: duplicate detection stays linear.
        key_hashes: HashSet<u64>,
        /// A key waiting for its value, with its [`key_hash`].
        pending_key: Option<(Node, u64)>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    hasher: RandomState,
    documents: Vec<Document>,
    document_pos: Option<Pos>,
    document_root: Option<Node>,
}

impl TreeBuilder {
    fn push(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let pos = Pos::from_span(span);
        match event {
            Event::DocumentStart(..) => {
                self.anchors.clear();
                self.document_pos = Some(pos);
                self.document_root = None;
            }
            Event::DocumentEnd => {
                let root = self.document_root.take().unwrap_or(Node {
                    value: Value::Null,
                    pos: self.document_pos.unwrap_or(pos),
                });
                self.documents.push(root);
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let value = if plain && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    })
                };
                self.finish_node(Node { value, pos }, anchor)?;
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| YamlError {
                    pos,
                    message: "unknown alias".to_string(),
                })?;
                let node = Node { pos, ..node };
                self.finish_node(node, 0)?;
            }
            Event::SequenceStart(_, anchor, _) => self.stack.push(Frame::Sequence {
                pos,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(_, anchor, _) => self.stack.push(Frame::Mapping {
                pos,
                anchor,
                entries: Vec::new(),
                key_hashes: HashSet::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Sequence { pos, anchor, items }) => (
                        Node {
                            value: Value::Sequence(items),
                            pos,
                        },
                        anchor,
                    ),
                    Some(Frame::Mapping {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            value: Value::Mapping(entries),
                            pos,
                        },
                        anchor,
                    ),
                    None => return Ok(()),
                };
                self.finish_node(node, anchor)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_node(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.document_root = Some(node),
            Some(Frame::Sequence { items, .. }) => items.push(node),
            Some(Frame::Mapping {
                entries,
                key_hashes,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    let hash = key_hash(&self.hasher, &node);
                    // Equal hashes are almost always equal keys; `same_key` decides.
                    if key_hashes.contains(&hash)
                        && entries.iter().any(|(key, _)| same_key(key, &node))
                    {
                        return Err(YamlError {
                            pos: node.pos,
                            message: format!("duplicate key {}", key_label(&node)),
                        });
                    }
                    *pending_key = Some((node, hash));
                }
                Some((key, hash)) => {
                    key_hashes.insert(hash);
                    entries.push((key, node));
                }
            },
        }
        Ok(())
    }
}

/// What [`same_key`] compares, as a hashable value: equal keys have equal forms.
#[derive(Hash)]
enum KeyForm<'a> {
    Null,
    Text(&'a str),
    Complex(&'a Value),
}

fn key_hash(hasher: &RandomState, key: &Node) -> u64 {
    let form = match &key.value {
        Value::Null => KeyForm::Null,
        Value::Scalar(scalar) => KeyForm::Text(&scalar.text),
        complex => KeyForm::Complex(complex),
    };
    hasher.hash_one(form)
}

fn same_key(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Scalar(x), Value::Scalar(y)) => x.text == y.text,
        (Value::Null, Value::Null) => true,
        (x, y) => x == y,
    }
}

fn key_label(node: &Node) -> String {
    match &node.value {
        Value::Scalar(scalar) => format!("{:?}", scalar.text),
        Value::Null => "null".to_string(),
        _ => "(complex key)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(source: &str) -> Node {
        let mut docs = parse_documents(source).expect("valid yaml");
        assert_eq!(docs.len(), 1);
        docs.remove(0)
    }

    #[test]
    fn positions_are_one_based() {
        let doc = parse_one("a: 1\nspec:\n  cluster:\n    gitOpsEngine: Fluxx\n");
        let engine = doc
            .get("spec")
            .unwrap()
            .get("cluster")
            .unwrap()
            .get("gitOpsEngine")
            .unwrap();
        assert_eq!(
            engine.pos,
            Pos {
                line: 4,
                column: 19
            }
        );
        assert_eq!(engine.as_str(), Some("Fluxx"));
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second_key() {
        let err = parse_documents("metadata: {}\nkind: X\nmetadata: {}\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 3, column: 1 });
        assert_eq!(err.message, "duplicate key \"metadata\"");
    }

    #[test]
    fn core_schema_booleans_only() {
        let doc = parse_one("a: true\nb: TRUE\nc: yes\nd: \"true\"\ne: on\n");
        let value = |k: &str| match &doc.get(k).unwrap().value {
            Value::Scalar(s) => s.core_value().clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(value("a"), CoreValue::Bool(true));
        assert_eq!(value("b"), CoreValue::Bool(true));
        assert_eq!(value("c"), CoreValue::Str("yes"));
        assert_eq!(value("d"), CoreValue::Str("true"));
        assert_eq!(value("e"), CoreValue::Str("on"));
    }

    #[test]
    fn multiple_documents_and_empty_ones() {
        let docs = parse_documents("a: 1\n---\n---\n- x\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].is_null());
        assert!(matches!(docs[2].value, Value::Sequence(_)));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse_documents("a: b: c\n").unwrap_err();
        assert_eq!(err.pos.line, 1);
        assert!(!err.message.is_empty());
    }

    #[test]
    fn aliases_resolve_to_their_anchor() {
        let doc = parse_one("a: &x {k: v}\nb: *x\n");
        assert_eq!(doc.get("b").unwrap().get("k").unwrap().as_str(), Some("v"));
    }

    #[test]
    fn duplicate_keys_compare_as_before() {
        let duplicate = |source: &str| parse_documents(source).err().map(|e| (e.pos, e.message));
        // Scalars compare by text, whatever their style.
        assert_eq!(
            duplicate("\"a\": 1\nb: 2\na: 3\n"),
            Some((
                Pos { line: 3, column: 1 },
                "duplicate key \"a\"".to_string()
            ))
        );
        assert_eq!(
            duplicate("~: 1\nnull: 2\n"),
            Some((Pos { line: 2, column: 1 }, "duplicate key null".to_string()))
        );
        // A quoted "null" is a string, not the null key.
        assert_eq!(duplicate("\"null\": 1\n~: 2\n"), None);
        // Complex keys are equal when they are the same node, as through an alias.
        assert_eq!(
            duplicate("? &k [a]\n: 1\n? *k\n: 2\n"),
            Some((
                Pos { line: 3, column: 3 },
                "duplicate key (complex key)".to_string()
            ))
        );
        assert_eq!(duplicate("? [a]\n: 1\n? [b]\n: 2\n"), None);
        // Duplicates are per mapping.
        assert_eq!(duplicate("a: {k: 1}\nb: {k: 2}\n"), None);
    }

    #[test]
    fn many_keys_in_one_mapping_parse() {
        let source: String = (0..20_000).map(|i| format!("key{i}: {i}\n")).collect();
        let doc = parse_one(&source);
        assert_eq!(doc.as_mapping().map(<[_]>::len), Some(20_000));
        let err = parse_documents(&format!("{source}key7: again\n")).unwrap_err();
        assert_eq!(err.pos.line, 20_001);
        assert_eq!(err.message, "duplicate key \"key7\"");
    }

    #[test]
    fn null_forms() {
        let doc = parse_one("a:\nb: ~\nc: null\nd: ''\n");
        assert!(doc.get("a").unwrap().is_null());
        assert!(doc.get("b").unwrap().is_null());
        assert!(doc.get("c").unwrap().is_null());
        assert!(!doc.get("d").unwrap().is_null());
    }
}
