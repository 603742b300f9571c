//! The limits that keep parsing linear in the input and its memory bounded, whatever the input
//! (decisions.md "YAML limits"). The tree builder measures; this module decides and words the
//! error.

/// Per-document limits. Every parse of the product uses [`Limits::DEFAULT`]; the unit and
/// property tests use smaller ones to reach each edge cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Mappings and sequences nested inside each other, counted from the document root.
    pub depth: usize,
    /// Nodes that anchors and aliases copy (an alias copies its anchor's whole subtree; an
    /// anchor is copied once to be remembered).
    pub alias_nodes: usize,
    /// Bytes of scalar text that anchors and aliases copy.
    pub alias_bytes: usize,
    /// Bytes of source text.
    pub document_bytes: usize,
    /// Nodes, aliases expanded. With `document_bytes` this bounds the memory of one document's
    /// tree (about 100 bytes a node), whose text may hold a node every two bytes.
    pub document_nodes: usize,
}

const MIB: usize = 1024 * 1024;

impl Limits {
    /// Generous for real Kubernetes manifests and ksail.yaml: the API server takes at most 3 MiB
    /// per request, and a 3 MiB CRD has a few hundred thousand nodes.
    pub const DEFAULT: Limits = Limits {
        depth: 256,
        alias_nodes: 1_000_000,
        alias_bytes: 16 * MIB,
        document_bytes: 16 * MIB,
        document_nodes: 2_000_000,
    };

    /// A collection may open at `depth` collections deep (0 at the document root).
    pub(super) fn check_depth(&self, depth: usize) -> Result<(), Limit> {
        within(depth < self.depth, Limit::Depth)
    }

    /// Anchors and aliases may copy `copied` in one document.
    pub(super) fn check_copies(&self, copied: Size) -> Result<(), Limit> {
        within(copied.nodes <= self.alias_nodes, Limit::AliasNodes)?;
        within(copied.bytes <= self.alias_bytes, Limit::AliasBytes)
    }

    /// A document may span `bytes` of source text.
    pub(super) fn check_document_bytes(&self, bytes: usize) -> Result<(), Limit> {
        within(bytes <= self.document_bytes, Limit::DocumentBytes)
    }

    /// A document may hold `nodes` nodes.
    pub(super) fn check_document_nodes(&self, nodes: usize) -> Result<(), Limit> {
        within(nodes <= self.document_nodes, Limit::DocumentNodes)
    }

    /// What was exceeded, for the problem line (the fix is [`Limit::fix`]).
    pub(super) fn message(&self, limit: Limit) -> String {
        match limit {
            Limit::Depth => format!(
                "nesting depth limit exceeded: more than {} nested mappings and sequences",
                self.depth
            ),
            Limit::AliasNodes => format!(
                "alias expansion limit exceeded: anchors and aliases copy more than {} nodes in this document",
                self.alias_nodes
            ),
            Limit::AliasBytes => format!(
                "alias expansion limit exceeded: anchors and aliases copy more than {} of text in this document",
                bytes_text(self.alias_bytes)
            ),
            Limit::DocumentBytes => format!(
                "document size limit exceeded: the document starting here is larger than {}",
                bytes_text(self.document_bytes)
            ),
            Limit::DocumentNodes => format!(
                "document size limit exceeded: the document starting here has more than {} nodes (aliases expanded)",
                self.document_nodes
            ),
        }
    }
}

fn within(ok: bool, limit: Limit) -> Result<(), Limit> {
    if ok { Ok(()) } else { Err(limit) }
}

fn bytes_text(bytes: usize) -> String {
    if bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Which limit stopped parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Depth,
    AliasNodes,
    AliasBytes,
    DocumentBytes,
    DocumentNodes,
}

impl Limit {
    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            Limit::Depth => "flatten the structure",
            Limit::AliasNodes | Limit::AliasBytes => {
                "use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)"
            }
            Limit::DocumentBytes | Limit::DocumentNodes => {
                "split it into smaller documents or files"
            }
        }
    }
}

/// Nodes and scalar bytes: the measure of a subtree, and of what a document has built so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Size {
    pub nodes: usize,
    pub bytes: usize,
}

impl Size {
    pub fn add(&mut self, other: Size) {
        self.nodes += other.nodes;
        self.bytes += other.bytes;
    }

    pub fn since(self, start: Size) -> Size {
        Size {
            nodes: self.nodes - start.nodes,
            bytes: self.bytes - start.bytes,
        }
    }
}
