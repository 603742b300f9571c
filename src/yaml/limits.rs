//! The limits that keep parsing linear in the input and its memory bounded, whatever the input
//! (decisions.md "YAML limits"). Each is generous for real Kubernetes manifests and ksail.yaml;
//! the tree builder measures, this module decides.

/// Mappings and sequences nested inside each other, counted from the document root.
pub const MAX_DEPTH: usize = 256;
/// Nodes that anchors and aliases copy within one document (an alias copies its anchor's
/// whole subtree; an anchor is copied once to be remembered).
pub const MAX_ALIAS_NODES: usize = 1_000_000;
/// Bytes of scalar text that anchors and aliases copy within one document.
pub const MAX_ALIAS_BYTES: usize = 16 * MIB;
/// Bytes of source text in one document (the Kubernetes API server takes at most 3 MiB per
/// request).
pub const MAX_DOCUMENT_BYTES: usize = 16 * MIB;

const MIB: usize = 1024 * 1024;

/// Which limit stopped parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    Depth,
    AliasNodes,
    AliasBytes,
    DocumentBytes,
}

impl Limit {
    pub(super) fn message(self) -> String {
        match self {
            Limit::Depth => format!(
                "nesting depth limit exceeded: more than {MAX_DEPTH} nested mappings and sequences"
            ),
            Limit::AliasNodes => format!(
                "alias expansion limit exceeded: anchors and aliases copy more than {MAX_ALIAS_NODES} nodes in this document"
            ),
            Limit::AliasBytes => format!(
                "alias expansion limit exceeded: anchors and aliases copy more than {} MiB of text in this document",
                MAX_ALIAS_BYTES / MIB
            ),
            Limit::DocumentBytes => format!(
                "document size limit exceeded: the document starting here is larger than {} MiB",
                MAX_DOCUMENT_BYTES / MIB
            ),
        }
    }

    /// What to do about it.
    pub fn fix(self) -> &'static str {
        match self {
            Limit::Depth => "flatten the structure",
            Limit::AliasNodes | Limit::AliasBytes => {
                "use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)"
            }
            Limit::DocumentBytes => "split it into smaller documents or files",
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

/// What anchors and aliases have copied in one document, against [`MAX_ALIAS_NODES`] and
/// [`MAX_ALIAS_BYTES`].
#[derive(Debug, Default)]
pub(super) struct CopyBudget {
    copied: Size,
}

impl CopyBudget {
    /// Account for copying a subtree of `size`.
    pub fn charge(&mut self, size: Size) -> Result<(), Limit> {
        self.copied.add(size);
        if self.copied.nodes > MAX_ALIAS_NODES {
            return Err(Limit::AliasNodes);
        }
        if self.copied.bytes > MAX_ALIAS_BYTES {
            return Err(Limit::AliasBytes);
        }
        Ok(())
    }
}

/// A collection may open at `depth` collections deep (0 at the document root).
pub(super) fn check_depth(depth: usize) -> Result<(), Limit> {
    if depth >= MAX_DEPTH {
        return Err(Limit::Depth);
    }
    Ok(())
}

/// A document may span `bytes` of source text.
pub(super) fn check_document_bytes(bytes: usize) -> Result<(), Limit> {
    if bytes > MAX_DOCUMENT_BYTES {
        return Err(Limit::DocumentBytes);
    }
    Ok(())
}
