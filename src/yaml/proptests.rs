//! Property tests: whatever the input, parsing returns, every document it hands over stays within
//! the limits (`crate::fuzzing::yaml_within` checks them), and text parses the same whether it
//! is read as a string or streamed from bytes. Generated YAML (nested flow and
//! block collections, anchors, aliases, repeated keys, alias bombs) reaches the tree builder;
//! arbitrary text and edits of generated YAML reach the error paths.

use proptest::prelude::*;

use super::*;
use crate::fuzzing::yaml_within;

/// Limits small enough that generated input reaches every one of them.
const SMALL: Limits = Limits {
    depth: 6,
    alias_nodes: 200,
    alias_bytes: 2_000,
    document_bytes: 4_096,
    document_nodes: 400,
};

/// A YAML value to render; keys come from a small alphabet so that mappings repeat them.
#[derive(Debug, Clone)]
enum Tree {
    /// `[a-z0-9]*`, rendered plain (`~` when empty).
    Plain(String),
    /// Any text, rendered double-quoted.
    Quoted(String),
    Seq(Vec<Tree>),
    Map(Vec<(String, Tree)>),
    /// `&aN` on the value.
    Anchored(u8, Box<Tree>),
    /// `*aN`, which may name no anchor.
    Alias(u8),
}

fn leaf() -> impl Strategy<Value = Tree> {
    prop_oneof![
        "[a-z0-9]{0,6}".prop_map(Tree::Plain),
        any::<String>().prop_map(Tree::Quoted),
    ]
}

/// Collections of plain and quoted scalars, without anchors.
fn plain_tree() -> impl Strategy<Value = Tree> {
    leaf().prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Tree::Seq),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..6).prop_map(Tree::Map),
        ]
    })
}

/// Collections with anchors and aliases as well.
fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![3 => leaf(), 1 => (0u8..4).prop_map(Tree::Alias)];
    leaf.prop_recursive(8, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Tree::Seq),
            prop::collection::vec(("[a-c]{1,2}", inner.clone()), 0..6).prop_map(Tree::Map),
            (0u8..4, inner).prop_map(|(anchor, tree)| Tree::Anchored(anchor, Box::new(tree))),
        ]
    })
}

/// Double-quoted, with everything but printable ASCII escaped.
fn quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\U{:08X}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

fn flow(tree: &Tree) -> String {
    match tree {
        Tree::Plain(text) if text.is_empty() => "~".to_string(),
        Tree::Plain(text) => text.clone(),
        Tree::Quoted(text) => quoted(text),
        Tree::Seq(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Tree::Map(entries) => format!(
            "{{{}}}",
            entries
                .iter()
                .map(|(key, value)| format!("{key}: {}", flow(value)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Tree::Anchored(anchor, tree) => format!("&a{anchor} {}", flow(tree)),
        Tree::Alias(anchor) => format!("*a{anchor}"),
    }
}

/// What follows `key:` or `-` in block style: the value on the same line, or its lines below.
fn block(tree: &Tree, indent: usize) -> String {
    let pad = " ".repeat(indent);
    match tree {
        Tree::Seq(items) if !items.is_empty() => items
            .iter()
            .map(|item| format!("\n{pad}-{}", block(item, indent + 2)))
            .collect(),
        Tree::Map(entries) if !entries.is_empty() => entries
            .iter()
            .map(|(key, value)| format!("\n{pad}{key}:{}", block(value, indent + 2)))
            .collect(),
        Tree::Anchored(anchor, tree) => format!(" &a{anchor}{}", block(tree, indent)),
        other => format!(" {}", flow(other)),
    }
}

fn block_document(tree: &Tree) -> String {
    match tree {
        Tree::Seq(items) if !items.is_empty() => format!("{}\n", block(tree, 0).trim_start()),
        Tree::Map(entries) if !entries.is_empty() => format!("{}\n", block(tree, 0).trim_start()),
        other => format!("{}\n", flow(other)),
    }
}

/// A tree with a mapping that repeats a key.
fn has_repeated_key(tree: &Tree) -> bool {
    match tree {
        Tree::Map(entries) => {
            let mut keys: Vec<&String> = entries.iter().map(|(key, _)| key).collect();
            keys.sort();
            keys.dedup();
            keys.len() < entries.len() || entries.iter().any(|(_, value)| has_repeated_key(value))
        }
        Tree::Seq(items) => items.iter().any(has_repeated_key),
        Tree::Anchored(_, tree) => has_repeated_key(tree),
        Tree::Plain(_) | Tree::Quoted(_) | Tree::Alias(_) => false,
    }
}

/// Whether the parsed `node` is `tree` (for trees without anchors).
fn same(node: &Node, tree: &Tree) -> bool {
    match (&node.value, tree) {
        (Value::Null, Tree::Plain(text)) => text.is_empty() || text == "null",
        (Value::Scalar(scalar), Tree::Plain(text)) => scalar.plain && scalar.text == *text,
        (Value::Scalar(scalar), Tree::Quoted(text)) => !scalar.plain && scalar.text == *text,
        (Value::Sequence(items), Tree::Seq(trees)) => {
            items.len() == trees.len() && items.iter().zip(trees).all(|(n, t)| same(n, t))
        }
        (Value::Mapping(entries), Tree::Map(trees)) => {
            entries.len() == trees.len()
                && entries
                    .iter()
                    .zip(trees)
                    .all(|((key, value), (text, tree))| {
                        key.as_str() == Some(text) && same(value, tree)
                    })
        }
        _ => false,
    }
}

/// The tree's collection nesting.
fn depth(tree: &Tree) -> usize {
    match tree {
        Tree::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Tree::Map(entries) => 1 + entries.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
        Tree::Anchored(_, tree) => depth(tree),
        Tree::Plain(_) | Tree::Quoted(_) | Tree::Alias(_) => 0,
    }
}

/// Replace, insert or delete characters of `text` at the given (wrapped) positions.
fn edit(text: &str, edits: &[(usize, Option<char>)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for (at, replacement) in edits {
        let at = at % (chars.len() + 1);
        match replacement {
            Some(c) if at < chars.len() && at.is_multiple_of(2) => chars[at] = *c,
            Some(c) => chars.insert(at, *c),
            None if at < chars.len() => {
                chars.remove(at);
            }
            None => {}
        }
    }
    chars.into_iter().collect()
}

/// Characters that mean something to YAML, and some that do not.
fn yaml_char() -> impl Strategy<Value = char> {
    prop_oneof![
        prop::sample::select(
            "-:?&*!|>'\"#%@`{}[],. \n\t\r~\\0aZ9"
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ]
}

/// `levels` anchors, each a sequence of `fanout` aliases of the one before: about
/// `fanout^levels` nodes once expanded.
fn alias_bomb(levels: u32, fanout: usize) -> (String, usize) {
    let mut text = format!("a0: &a0 [{}]\n", vec!["x"; fanout].join(", "));
    let mut size = 1 + fanout;
    let mut total = 1 + 1 + size; // the root, the key, the anchored value
    for level in 1..levels {
        let aliases = vec![format!("*a{}", level - 1); fanout].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
        size = size.saturating_mul(fanout).saturating_add(1);
        total = total.saturating_add(1).saturating_add(size);
    }
    (text, total)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_text_parses_or_fails_within_the_limits(source in ".{0,600}") {
        let _ = yaml_within(&source, SMALL);
        let _ = yaml_within(&source, Limits::DEFAULT);
    }

    #[test]
    fn yaml_like_text_parses_or_fails_within_the_limits(
        source in prop::collection::vec(yaml_char(), 0..600)
    ) {
        let source: String = source.into_iter().collect();
        let _ = yaml_within(&source, SMALL);
        // The real limits, on text and streamed: both agree.
        crate::fuzzing::yaml(source.as_bytes());
    }

    #[test]
    fn any_bytes_stream_or_fail_within_the_limits(
        data in prop::collection::vec(any::<u8>(), 0..600)
    ) {
        let _ = crate::fuzzing::yaml_stream_within(&data, SMALL);
        crate::fuzzing::yaml(&data);
    }

    #[test]
    fn generated_yaml_parses_back_unless_a_key_repeats(tree in plain_tree(), block_style in any::<bool>()) {
        let source = if block_style { block_document(&tree) } else { flow(&tree) };
        let parsed = parse_within_documents(&source, Limits::DEFAULT);
        if has_repeated_key(&tree) {
            let error = parsed.expect_err("a repeated key is an error");
            prop_assert!(error.message.starts_with("duplicate key"), "{}", error.message);
        } else {
            let documents = parsed.map_err(|error| TestCaseError::fail(format!("{error}\n{source}")))?;
            prop_assert_eq!(documents.len(), 1);
            prop_assert!(same(&documents[0], &tree), "{:?}\n{}", documents[0], source);
        }
    }

    #[test]
    fn nesting_beyond_the_depth_limit_is_a_depth_error(tree in plain_tree()) {
        prop_assume!(!has_repeated_key(&tree));
        let limits = Limits { depth: 3, ..Limits::DEFAULT };
        let parsed = yaml_within(&flow(&tree), limits);
        if depth(&tree) > limits.depth {
            prop_assert_eq!(parsed.map_err(|error| error.limit), Err(Some(Limit::Depth)));
        } else {
            prop_assert_eq!(parsed, Ok(1));
        }
    }

    #[test]
    fn anchors_and_aliases_stay_within_the_limits(
        trees in prop::collection::vec(tree(), 1..4),
        block_style in any::<bool>(),
        edits in prop::collection::vec((any::<usize>(), prop::option::of(yaml_char())), 0..4),
    ) {
        let documents: Vec<String> = trees
            .iter()
            .map(|tree| if block_style { block_document(tree) } else { format!("{}\n", flow(tree)) })
            .collect();
        let source = edit(&documents.join("---\n"), &edits);
        let small = yaml_within(&source, SMALL);
        let default = yaml_within(&source, Limits::DEFAULT);
        crate::fuzzing::yaml(source.as_bytes());
        // Larger limits never turn an accepted input into an error.
        if let Ok(count) = small {
            prop_assert_eq!(default, Ok(count));
        }
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn alias_bombs_stop_at_a_limit(levels in 1u32..12, fanout in 1usize..12) {
        let (source, total) = alias_bomb(levels, fanout);
        match yaml_within(&source, SMALL) {
            Ok(_) => prop_assert!(total <= SMALL.document_nodes, "{total} nodes accepted"),
            Err(error) => {
                let stopped_by = error.limit.ok_or_else(|| TestCaseError::fail(error.message.clone()))?;
                prop_assert!(
                    matches!(
                        stopped_by,
                        Limit::AliasNodes | Limit::AliasBytes | Limit::DocumentNodes | Limit::Depth
                    ),
                    "{stopped_by:?}"
                );
            }
        }
    }
}

proptest! {
    // Each case builds up to the real limits (a million copied nodes): few cases.
    #![proptest_config(config(6))]

    #[test]
    fn alias_bombs_stop_at_the_real_limits(levels in 6u32..10, fanout in 8usize..12) {
        let (source, total) = alias_bomb(levels, fanout);
        prop_assume!(total > Limits::DEFAULT.alias_nodes);
        let error = yaml_within(&source, Limits::DEFAULT).expect_err("too many nodes");
        prop_assert_eq!(error.limit, Some(Limit::AliasNodes));
    }
}

fn parse_within_documents(source: &str, limits: Limits) -> Result<Vec<Node>, YamlError> {
    let mut documents = Vec::new();
    parse_within(source, limits, |document| documents.push(document))?;
    Ok(documents)
}
