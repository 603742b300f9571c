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
    let max = limits::MAX_DEPTH;
    parse_one(&nested(max, "[", "]"));
    parse_one(&nested(max, "{a: ", "}"));
    parse_one(&block_nested(max));
    // Block and flow collections count together.
    parse_one(&mixed(max / 2, max / 2));
}

#[test]
fn nesting_deeper_than_the_limit_is_an_error_at_the_collection() {
    let max = limits::MAX_DEPTH;
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
    assert_eq!(
        err.pos,
        Pos {
            line: 1,
            column: max + 1
        }
    );
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
fn alias_bombs_stop_at_the_alias_expansion_limit() {
    // Level 5 anchors 597,871 nodes (copied once to be remembered) and copies 9 × 66,430
    // through its aliases.
    let err = parse_documents(&alias_bomb(9)).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasNodes));
    assert_eq!(err.pos, Pos { line: 6, column: 9 }, "{err}");
    assert!(
        err.message.starts_with(
            "alias expansion limit exceeded: anchors and aliases copy more than 1000000 nodes"
        ),
        "{err}"
    );
    // A few levels stay well within the budget.
    let doc = parse_one(&alias_bomb(5));
    assert!(doc.get("a4").is_some());
}

#[test]
fn aliases_of_long_text_stop_at_the_byte_budget() {
    let text = "x".repeat(1024 * 1024);
    let mut source = format!("a: &t {text}\nb:\n");
    for _ in 0..20 {
        source.push_str("- *t\n");
    }
    let err = parse_documents(&source).unwrap_err();
    assert_eq!(err.limit, Some(Limit::AliasBytes));
    // The anchor copy and fifteen aliases fit in 16 MiB; the sixteenth does not.
    assert_eq!(
        err.pos,
        Pos {
            line: 18,
            column: 3
        }
    );
}

#[test]
fn every_document_has_its_own_alias_budget() {
    let bomb = alias_bomb(5);
    parse_documents(&format!("{bomb}---\n{bomb}---\n{bomb}")).expect("each within budget");
}

#[test]
fn documents_larger_than_the_size_limit_are_errors_at_their_start() {
    let line = |i: usize| format!("k{i:07}: 0123456789012345678901234567890123456789\n");
    // Just under the limit, with the `---` line.
    let lines = limits::MAX_DOCUMENT_BYTES / line(0).len() - 1;
    let big: String = (0..lines).map(line).collect();
    let two = format!("{big}---\n{big}");
    assert_eq!(
        parse_documents(&two).expect("each within the limit").len(),
        2
    );
    let over = format!("a: 1\n---\n{big}{}{}", line(lines), line(lines + 1));
    let err = parse_documents(&over).unwrap_err();
    assert_eq!(err.limit, Some(Limit::DocumentBytes));
    assert_eq!(err.pos, Pos { line: 2, column: 1 });
    assert_eq!(
        err.message,
        "document size limit exceeded: the document starting here is larger than 16 MiB"
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
