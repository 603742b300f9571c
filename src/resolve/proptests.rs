//! Property tests: whatever text arrives as an OCI reference, a registry string, a tag or a
//! source directory, the parsers and the resolver return, an accepted reference prints as itself,
//! and every resolved push target is a reference that parses (`crate::fuzzing::oci_reference`).
//! References built from the grammar's own pieces, broken at random, reach every rule.

use proptest::prelude::*;

use super::*;
use crate::fuzzing::oci_reference;

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9._-]{0,24}",
        prop::sample::select(vec![
            "localhost",
            "LOCALHOST",
            "registry.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "[::1]",
            "[0:0:0:0:0:0:0:1]",
            "[2001:DB8::1]",
            "[::1",
            "[zz]",
            "::1",
            "ghcr.io",
        ])
        .prop_map(str::to_string),
    ]
}

/// `[user[:password]@]host[:port][/path][:tag]`, with `oci://` or another scheme or none.
fn reference() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["oci://", "", "", "https://", "oci:/"]);
    let credentials = prop::option::of("[a-z]{0,4}(:[a-z@:$]{0,6})?@");
    let port = prop::option::of("[0-9+-]{0,6}");
    let path = prop::option::of("[a-zA-Z0-9._/-]{0,30}");
    let tag = prop::option::of(prop_oneof![
        "[A-Za-z0-9_.+-]{0,10}",
        "[a-z]{125,132}",
        Just("sha256".to_string())
    ]);
    let digest = prop::option::of("@sha256:[0-9a-f]{0,8}");
    (scheme, credentials, host(), port, path, tag, digest).prop_map(
        |(scheme, credentials, host, port, path, tag, digest)| {
            let mut text = format!("{scheme}{}{host}", credentials.unwrap_or_default());
            if let Some(port) = port {
                text.push_str(&format!(":{port}"));
            }
            if let Some(path) = path {
                text.push_str(&format!("/{path}"));
            }
            if let Some(tag) = tag {
                text.push_str(&format!(":{tag}"));
            }
            text.push_str(&digest.unwrap_or_default());
            text
        },
    )
}

/// A reference the grammar accepts, with the parts it must come back with.
fn valid_reference() -> impl Strategy<Value = (String, String, String, Option<String>)> {
    let host = "[a-z][a-z0-9-]{0,8}(\\.[a-z]{2,4}){0,2}(:[1-9][0-9]{0,3})?";
    let component = "[a-z0-9]{1,4}((\\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    let path = prop::collection::vec(component, 1..4).prop_map(|parts| parts.join("/"));
    let tag = prop::option::of("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
    (host, path, tag).prop_map(|(host, path, tag)| {
        let text = match &tag {
            Some(tag) => format!("oci://{host}/{path}:{tag}"),
            None => format!("oci://{host}/{path}"),
        };
        (text, host, path, tag)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_is_rejected(text in ".{0,200}") {
        oci_reference(text.as_bytes());
    }

    #[test]
    fn broken_references_parse_or_are_rejected(text in reference()) {
        oci_reference(text.as_bytes());
    }

    #[test]
    fn references_of_the_grammar_parse_into_their_parts(
        (text, host, path, tag) in valid_reference()
    ) {
        let parsed = parse_oci_ref(&text).map_err(|error| TestCaseError::fail(format!("{text}: {error}")))?;
        // A loopback host gets the local registry's port: not the text's own parts.
        prop_assume!(!parsed.local);
        prop_assert_eq!(parsed.host_port(), host);
        prop_assert_eq!(parsed.path, path);
        prop_assert_eq!(parsed.tag, tag);
    }

    #[test]
    fn any_source_directory_gives_a_repository_name(text in ".{0,120}") {
        let name = sanitise(&text);
        prop_assert!(name.len() <= 63);
        prop_assert!(parse_oci_ref(&format!("oci://h/{name}")).is_ok(), "{name:?}");
    }
}
