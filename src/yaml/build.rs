//! The tree builder: parser events in, one [`Document`] at a time out, with positions, duplicate
//! keys found through a hash of each key, and the limits of [`super::limits`] applied as it goes.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

// foldhash (hashbrown's own default), seeded per process: keys are hashed twice per entry, and
// SipHash was 2% of a push of YAML.
use foldhash::fast::RandomState;

use granit_parser::{Event, Marker, ScalarStyle, Span};

use super::limits::{Limit, Limits, Size};
use super::{Document, Node, Pos, Scalar, Value, YamlError};

/// Frames of the collection currently being built. `height` is the largest [`Anchored::height`]
/// of its children so far.
enum Frame {
    Sequence {
        pos: Pos,
        anchor: usize,
        start: Size,
        height: usize,
        items: Vec<Node>,
    },
    Mapping {
        pos: Pos,
        anchor: usize,
        start: Size,
        height: usize,
        entries: Vec<(Node, Node)>,
        /// [`key_hash`] of every key in `entries`: duplicate detection stays linear.
        key_hashes: HashSet<u64, RandomState>,
        /// A key waiting for its value, with its [`key_hash`].
        pending_key: Option<(Node, u64)>,
    },
}

/// An anchored node with its size, which an alias to it adds to the document, and its height:
/// the collections nested in it (0 for a scalar), which an alias adds to the depth where it stands.
struct Anchored {
    node: Node,
    size: Size,
    height: usize,
}

pub(super) struct TreeBuilder<F> {
    limits: Limits,
    each: F,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    hasher: RandomState,
    /// Where the current document starts (the parser starts every document with an event).
    document_pos: Pos,
    /// Byte offset of the current document's first event.
    document_offset: usize,
    document_root: Option<Node>,
    /// Everything the current document has built, copies included.
    built: Size,
    /// What anchors and aliases have copied in the current document.
    copied: Size,
}

impl<F: FnMut(Document)> TreeBuilder<F> {
    pub fn new(limits: Limits, each: F) -> Self {
        TreeBuilder {
            limits,
            each,
            stack: Vec::new(),
            anchors: HashMap::new(),
            hasher: RandomState::default(),
            document_pos: Pos { line: 1, column: 1 },
            document_offset: 0,
            document_root: None,
            built: Size::default(),
            copied: Size::default(),
        }
    }

    pub fn push(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        let pos = Pos::from_span(span);
        if let Event::DocumentStart(..) = event {
            self.anchors.clear();
            self.document_pos = pos;
            self.document_offset = byte_offset(&span.start);
            self.document_root = None;
            self.built = Size::default();
            self.copied = Size::default();
            return Ok(());
        }
        let document_bytes = byte_offset(&span.end).saturating_sub(self.document_offset);
        let checked = self.limits.check_document_bytes(document_bytes);
        self.stop_at(self.document_pos, checked)?;
        match event {
            Event::DocumentEnd => {
                let root = self.document_root.take().unwrap_or(Node {
                    value: Value::Null,
                    pos: self.document_pos,
                });
                (self.each)(root);
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let plain = matches!(style, ScalarStyle::Plain);
                let size = Size {
                    nodes: 1,
                    bytes: text.len(),
                };
                let value = if plain && matches!(text.as_ref(), "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar(Scalar {
                        text: text.into_owned(),
                        plain,
                    })
                };
                self.grow(size)?;
                self.finish_node(Node { value, pos }, anchor, size, 0)?;
            }
            Event::Alias(id) => {
                let unknown = || YamlError::at(pos, "unknown alias".to_string());
                let Anchored { size, height, .. } = *self.anchors.get(&id).ok_or_else(unknown)?;
                // A copy nests as deep as its anchor: without this check, aliases of aliases
                // would build trees deeper than the limit, and cloning or dropping them would
                // overflow the stack.
                if height > 0 {
                    let deepest = self.stack.len() + height - 1;
                    self.stop_at(pos, self.limits.check_depth(deepest))?;
                }
                self.charge_copy(size, pos)?;
                let node = Node {
                    pos,
                    ..self.anchors[&id].node.clone()
                };
                self.grow(size)?;
                self.finish_node(node, 0, size, height)?;
            }
            Event::SequenceStart(_, anchor, _) => {
                let start = self.enter_collection(pos)?;
                self.stack.push(Frame::Sequence {
                    pos,
                    anchor,
                    start,
                    height: 0,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(_, anchor, _) => {
                let start = self.enter_collection(pos)?;
                self.stack.push(Frame::Mapping {
                    pos,
                    anchor,
                    start,
                    height: 0,
                    entries: Vec::new(),
                    key_hashes: HashSet::default(),
                    pending_key: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, pos, anchor, start, height) = match self.stack.pop() {
                    Some(Frame::Sequence {
                        pos,
                        anchor,
                        start,
                        height,
                        items,
                    }) => (Value::Sequence(items), pos, anchor, start, height),
                    Some(Frame::Mapping {
                        pos,
                        anchor,
                        start,
                        height,
                        entries,
                        ..
                    }) => (Value::Mapping(entries), pos, anchor, start, height),
                    None => return Ok(()),
                };
                let size = self.built.since(start);
                self.finish_node(Node { value, pos }, anchor, size, height + 1)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Check the depth for a collection starting at `pos`, count it, and return the document's
    /// size before it (its own size is measured from there when it ends).
    fn enter_collection(&mut self, pos: Pos) -> Result<Size, YamlError> {
        self.stop_at(pos, self.limits.check_depth(self.stack.len()))?;
        let start = self.built;
        self.grow(Size { nodes: 1, bytes: 0 })?;
        Ok(start)
    }

    /// Count `size` more in the current document, against its node limit.
    fn grow(&mut self, size: Size) -> Result<(), YamlError> {
        self.built.add(size);
        let checked = self.limits.check_document_nodes(self.built.nodes);
        self.stop_at(self.document_pos, checked)
    }

    /// Account for copying a subtree of `size` (for an anchor or an alias at `pos`).
    fn charge_copy(&mut self, size: Size, pos: Pos) -> Result<(), YamlError> {
        self.copied.add(size);
        self.stop_at(pos, self.limits.check_copies(self.copied))
    }

    /// The error for an exceeded limit, reported at `pos`.
    fn stop_at(&self, pos: Pos, checked: Result<(), Limit>) -> Result<(), YamlError> {
        checked.map_err(|limit| YamlError::limit(pos, limit, self.limits.message(limit)))
    }

    /// Hand a complete node of `size` and `height` to its parent (or make it the root), and
    /// remember it under `anchor` (0: none).
    fn finish_node(
        &mut self,
        node: Node,
        anchor: usize,
        size: Size,
        height: usize,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.charge_copy(size, node.pos)?;
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    size,
                    height,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.document_root = Some(node),
            Some(Frame::Sequence {
                items,
                height: parent,
                ..
            }) => {
                *parent = (*parent).max(height);
                items.push(node);
            }
            Some(Frame::Mapping {
                entries,
                key_hashes,
                pending_key,
                height: parent,
                ..
            }) => {
                *parent = (*parent).max(height);
                match pending_key.take() {
                    None => {
                        let hash = key_hash(&self.hasher, &node);
                        // Equal hashes are almost always equal keys; `same_key` decides.
                        if key_hashes.contains(&hash)
                            && entries.iter().any(|(key, _)| same_key(key, &node))
                        {
                            return Err(YamlError::at(
                                node.pos,
                                format!("duplicate key {}", key_label(&node)),
                            ));
                        }
                        *pending_key = Some((node, hash));
                    }
                    Some((key, hash)) => {
                        key_hashes.insert(hash);
                        entries.push((key, node));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The source offset of `marker` in bytes (the parser knows it for text input; characters are
/// the fallback).
fn byte_offset(marker: &Marker) -> usize {
    marker.byte_offset().unwrap_or_else(|| marker.index())
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
