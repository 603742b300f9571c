//! Parsing, positions, the core schema, duplicate keys and the limits, through the public API.

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

fn nested(depth: usize, open: &str, close: &str) -> String {
    format!("{}x{}\n", open.repeat(depth), close.repeat(depth))
}

/// `depth` nested block mappings.
fn block_nested(depth: usize) -> String {
    mixed(depth, 0)
}

/// `block` nested block mappings, the innermost holding `flow` nested flow sequences.
fn mixed(block: usize, flow: usize) -> String {
    let keys: String = (0..block - 1)
        .map(|level| format!("{}k{level}:\n", " ".repeat(level)))
        .collect();
    format!(
        "{keys}{}y: {}",
        " ".repeat(block - 1),
        nested(flow, "[", "]")
    )
}

#[test]
fn nesting_up_to_the_depth_limit_parses() {
    let max = Limits::DEFAULT.depth;
    parse_one(&nested(max, "[", "]"));
    parse_one(&nested(max, "{a: ", "}"));
    parse_one(&block_nested(max));
    // Block and flow collections count together.
    parse_one(&mixed(max / 2, max / 2));
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_at_the_collection() {
    let max = Limits::DEFAULT.depth;
    for source in [
        nested(max + 1, "[", "]"),
        nested(max + 1, "{a: ", "}"),
        block_nested(max + 1),
        mixed(max / 2, max / 2 + 1),
    ] {
        let err = parse_documents(&source).unwrap_err();
        assert_eq!(err.limit, Some(Limit::Depth), "{err}");
        assert_eq!(
            err.message,
            "nesting depth limit exceeded: more than 256 nested mappings and sequences"
        );
    }
    let err = parse_documents(&nested(max + 1, "[", "]")).unwrap_err();
    let column = max + 1;
    assert_eq!(err.pos, Pos { line: 1, column });
}

#[test]
fn aliases_nest_no_deeper_than_the_depth_limit() {
    let limits = Limits {
        depth: 4,
        ..Limits::DEFAULT
    };
    // `*a` holds two collections: under two more (and the root) it stays within 4.
    let within = "a: &a [[x]]\nb: [*a]\n";
    assert_eq!(parse_within_limits(within, limits).map(|d| d.len()), Ok(1));
    let err = parse_within_limits("a: &a [[x]]\nb: [[*a]]\n", limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::Depth), "{err}");
    assert_eq!(err.pos, Pos { line: 2, column: 6 });
    // A scalar alias adds no depth.
    let scalar = "a: &a x\nb: [[[*a]]]\n";
    assert_eq!(parse_within_limits(scalar, limits).map(|d| d.len()), Ok(1));
}

/// Found by the property tests: each anchor wraps the alias of the one before in 250 sequences,
/// so 64 lines (32 KB) nested about 16,000 deep before the alias budget was spent, and cloning or
/// dropping that tree (both recurse) overflowed the stack of a 2 MiB thread. Now the first alias
/// past depth 256 is an error.
#[test]
fn aliases_of_aliases_cannot_nest_past_the_limit() {
    let wrap = 250;
    let mut source = String::from("a0: &a0 x\n");
    for level in 1..64 {
        let (open, close) = ("[".repeat(wrap), "]".repeat(wrap));
        source.push_str(&format!(
            "a{level}: &a{level} {open}*a{}{close}\n",
            level - 1
        ));
    }
    let parsed = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || parse_documents(&source).map(|d| d.len()))
        .expect("thread starts")
        .join()
        .expect("no stack overflow");
    let err = parsed.unwrap_err();
    assert_eq!(err.limit, Some(Limit::Depth), "{err}");
    assert_eq!(
        err.pos,
        Pos {
            line: 3,
            column: wrap + 9
        }
    );
}

/// Every document of `source` parsed within `limits`.
fn parse_within_limits(source: &str, limits: Limits) -> Result<Vec<Node>, YamlError> {
    let mut documents = Vec::new();
    parse_within(source, limits, |document| documents.push(document))?;
    Ok(documents)
}

/// `count` aliases of a five-node anchored list (whose anchor copy counts five too).
fn aliases_of_a_list(count: usize) -> String {
    format!(
        "a: &a [x, x, x, x]\nb: [{}]\n",
        vec!["*a"; count].join(", ")
    )
}

#[test]
fn copies_up_to_the_alias_node_limit_parse() {
    let limits = Limits {
        alias_nodes: 100,
        ..Limits::DEFAULT
    };
    // 5 + 19 × 5 = 100 nodes copied.
    parse_within_limits(&aliases_of_a_list(19), limits).expect("within the limit");
    let err = parse_within_limits(&aliases_of_a_list(20), limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasNodes));
    // The twentieth alias.
    let column = "b: [".len() + 19 * "*a, ".len() + 1;
    assert_eq!(err.pos, Pos { line: 2, column });
    assert_eq!(
        err.message,
        "alias expansion limit exceeded: anchors and aliases copy more than 100 nodes in this document"
    );
    // Each document has its own budget.
    let three = vec![aliases_of_a_list(19); 3].join("---\n");
    assert_eq!(parse_within_limits(&three, limits).map(|d| d.len()), Ok(3));
}

#[test]
fn copies_up_to_the_alias_byte_limit_parse() {
    let limits = Limits {
        alias_bytes: 60,
        ..Limits::DEFAULT
    };
    let source = |aliases: usize| format!("a: &t 0123456789\nb:\n{}", "- *t\n".repeat(aliases));
    // 10 bytes for the anchor copy and 10 for each alias.
    parse_within_limits(&source(5), limits).expect("within the limit");
    let err = parse_within_limits(&source(6), limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasBytes));
    assert_eq!(err.pos, Pos { line: 8, column: 3 });
    assert_eq!(
        err.message,
        "alias expansion limit exceeded: anchors and aliases copy more than 60 bytes of text in this document"
    );
}

#[test]
fn anchors_count_as_copies() {
    // Nested anchors copy their subtrees once each, without any alias.
    let limits = Limits {
        alias_nodes: 10,
        ..Limits::DEFAULT
    };
    let err = parse_within_limits("a: &a\n  b: &b\n    c: &c [1, 2, 3]\n", limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasNodes));
    // [1, 2, 3] is 4 nodes, `b`'s mapping 6 (copies: 10), `a`'s 8.
    assert_eq!(err.pos, Pos { line: 2, column: 3 });
}

#[test]
fn alias_bombs_stop_at_the_alias_expansion_limit() {
    // Level 5 anchors 597,871 nodes (copied once to be remembered) and copies 9 × 66,430
    // through its aliases.
    let err = parse_documents(&alias_bomb(9)).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasNodes));
    assert_eq!(err.pos, Pos { line: 6, column: 9 }, "{err}");
    // Five levels copy about 150,000 nodes: well within the limit.
    let doc = parse_one(&alias_bomb(5));
    assert!(doc.get("a4").is_some());
}

/// A "billion laughs": every level aliases the one before nine times.
fn alias_bomb(levels: usize) -> String {
    let mut source = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n".to_string();
    for level in 1..levels {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 9].join(", ");
        source.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    source
}

#[test]
fn documents_larger_than_the_size_limit_are_errors_at_their_start() {
    let limits = Limits {
        document_bytes: 100,
        ..Limits::DEFAULT
    };
    let lines =
        |count: usize| -> String { (0..count).map(|i| format!("k{i}: 0123456789\n")).collect() };
    // 90 bytes a document.
    let within = format!("{}---\n{}", lines(6), lines(6));
    assert_eq!(parse_within_limits(&within, limits).map(|d| d.len()), Ok(2));
    let err = parse_within_limits(&format!("a: 1\n---\n{}", lines(7)), limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::DocumentBytes));
    assert_eq!(err.pos, Pos { line: 2, column: 1 });
    assert_eq!(
        err.message,
        "document size limit exceeded: the document starting here is larger than 100 bytes"
    );
}

#[test]
fn documents_with_more_nodes_than_the_limit_are_errors_at_their_start() {
    let limits = Limits {
        document_nodes: 10,
        ..Limits::DEFAULT
    };
    // The sequence is a node too.
    parse_within_limits("[a, a, a, a, a, a, a, a, a]\n", limits).expect("10 nodes");
    let err =
        parse_within_limits("a: 1\n---\n[a, a, a, a, a, a, a, a, a, a]\n", limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::DocumentNodes));
    assert_eq!(err.pos, Pos { line: 2, column: 1 });
    assert_eq!(
        err.message,
        "document size limit exceeded: the document starting here has more than 10 nodes (aliases expanded)"
    );
    // Aliases count with what they expand to: 9 nodes written, 24 in the tree.
    let limits = Limits {
        document_nodes: 20,
        ..Limits::DEFAULT
    };
    let err = parse_within_limits(&aliases_of_a_list(3), limits).unwrap_err();
    assert_eq!(err.limit, Some(Limit::DocumentNodes));
}

#[test]
fn the_default_limits_and_what_to_do() {
    let lines: Vec<String> = [
        Limit::Depth,
        Limit::AliasNodes,
        Limit::AliasBytes,
        Limit::DocumentBytes,
        Limit::DocumentNodes,
    ]
    .into_iter()
    .map(|limit| format!("{}; {}", Limits::DEFAULT.message(limit), limit.fix()))
    .collect();
    assert_eq!(
        lines,
        [
            "nesting depth limit exceeded: more than 256 nested mappings and sequences; flatten the structure",
            "alias expansion limit exceeded: anchors and aliases copy more than 1000000 nodes in this document; use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)",
            "alias expansion limit exceeded: anchors and aliases copy more than 16 MiB of text in this document; use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)",
            "document size limit exceeded: the document starting here is larger than 16 MiB; split it into smaller documents or files",
            "document size limit exceeded: the document starting here has more than 2000000 nodes (aliases expanded); split it into smaller documents or files",
        ]
    );
}

#[test]
fn documents_are_handed_over_one_at_a_time() {
    let mut seen = Vec::new();
    let err = parse_each_document("a: 1\n---\nb: 2\n---\nc: [\n", |doc| {
        seen.push(
            doc.as_mapping()
                .map(|m| m[0].0.as_str().map(str::to_string)),
        );
    })
    .unwrap_err();
    assert_eq!(seen, [Some(Some("a".into())), Some(Some("b".into()))]);
    assert_eq!(err.pos.line, 5);
}

#[test]
fn null_forms() {
    let doc = parse_one("a:\nb: ~\nc: null\nd: ''\n");
    assert!(doc.get("a").unwrap().is_null());
    assert!(doc.get("b").unwrap().is_null());
    assert!(doc.get("c").unwrap().is_null());
    assert!(!doc.get("d").unwrap().is_null());
}
