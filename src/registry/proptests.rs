//! Property tests of the two parsers of registry input: the docker `config.json` reader and the
//! `WWW-Authenticate` parser. Whatever arrives, they return (`crate::fuzzing`); generated
//! configs never put a value from the file (but a helper's name) into a warning, and generated
//! challenges come back with their parameters.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::{Value as Json, json};

use super::challenge::parse_challenges;
use super::docker_config::lookup_in;
use crate::fuzzing::{docker_config, www_authenticate};

/// Every value in generated configs contains this, so a warning that quotes one is caught.
const SECRET: &str = "s3cr3t";

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        "[a-z]{0,6}".prop_map(|text| Json::from(format!("{SECRET}{text}"))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|map| Json::Object(map.into_iter().collect())),
        ]
    })
}

/// A credential helper name (the one value a warning may quote), or a value of another type.
fn helper_name() -> impl Strategy<Value = Json> {
    prop_oneof![
        3 => "[a-z]{0,6}".prop_map(Json::from),
        1 => Just(Json::Null),
        1 => any::<i64>().prop_map(Json::from),
        1 => Just(json!(["a"])),
    ]
}

/// An `auths` entry: the fields docker writes, with right and wrong types and contents.
fn auth_entry() -> impl Strategy<Value = Json> {
    let auth = prop_oneof![
        ("[a-z]{0,4}", "[a-z]{0,4}").prop_map(|(user, rest)| {
            let plain = format!("{user}:{SECRET}{rest}");
            Json::from(base64::engine::general_purpose::STANDARD.encode(plain))
        }),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|mut bytes| {
            bytes.extend_from_slice(SECRET.as_bytes());
            Json::from(base64::engine::general_purpose::STANDARD.encode(bytes))
        }),
        "[a-zA-Z0-9+/=]{0,12}".prop_map(|text| Json::from(format!("{SECRET}{text}"))),
        json_value(),
    ];
    let field = prop::sample::select(vec![
        "auth",
        "username",
        "password",
        "identitytoken",
        "registrytoken",
        "email",
    ]);
    prop::collection::vec((field, prop_oneof![auth, json_value()]), 0..4).prop_map(|fields| {
        Json::Object(
            fields
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        )
    })
}

/// A `config.json` for the hosts the lookups ask about, and others.
fn docker_config_json() -> impl Strategy<Value = Json> {
    let server = prop::sample::select(vec![
        "ghcr.io",
        "https://ghcr.io",
        "http://ghcr.io",
        "docker.io",
        "https://index.docker.io/v1/",
        "localhost:5050",
        "other.example",
    ]);
    let auths = prop::collection::btree_map(server.clone(), auth_entry(), 0..4).prop_map(
        |map: BTreeMap<&str, Json>| {
            Json::Object(map.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        },
    );
    let helpers = prop::collection::btree_map(server, helper_name(), 0..3)
        .prop_map(|map| Json::Object(map.into_iter().map(|(k, v)| (k.to_string(), v)).collect()));
    (
        prop::option::of(auths),
        prop::option::of(helper_name()),
        prop::option::of(helpers),
    )
        .prop_map(|(auths, store, helpers)| {
            let mut config = json!({});
            for (name, value) in [
                ("auths", auths),
                ("credsStore", store),
                ("credHelpers", helpers),
            ] {
                if let Some(value) = value {
                    config[name] = value;
                }
            }
            config
        })
}

/// `Scheme name=value, name="quoted value", …` with the parameters it must yield.
fn challenge() -> impl Strategy<Value = (String, String, BTreeMap<String, String>)> {
    let scheme = prop::sample::select(vec!["Bearer", "Basic", "bearer", "Digest"]);
    let params = prop::collection::btree_map(
        "[a-zA-Z]{1,8}",
        prop_oneof!["[a-zA-Z0-9:/._-]{0,20}", ".{0,20}"],
        0..5,
    );
    (scheme, params).prop_map(|(scheme, params)| {
        let rendered: Vec<String> = params
            .iter()
            .map(|(name, value)| {
                let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
                format!("{name}=\"{escaped}\"")
            })
            .collect();
        let header = format!("{scheme} {}", rendered.join(", "));
        let expected = params
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        (header, scheme.to_ascii_lowercase(), expected)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_docker_config_or_a_warning(data in prop::collection::vec(any::<u8>(), 0..300)) {
        docker_config(&data);
    }

    #[test]
    fn docker_config_warnings_never_quote_the_file(config in docker_config_json()) {
        let text = config.to_string();
        docker_config(text.as_bytes());
        for host in ["ghcr.io", "docker.io", "localhost:5050"] {
            let lookup = lookup_in(text.as_bytes(), Path::new("config.json"), host, "");
            for warning in &lookup.warnings {
                prop_assert!(!warning.contains(SECRET), "{warning}\n{text}");
            }
        }
    }

    #[test]
    fn any_header_parses_into_challenges(header in ".{0,300}") {
        www_authenticate(header.as_bytes());
    }

    #[test]
    fn generated_challenges_come_back_with_their_parameters(
        (header, scheme, params) in challenge()
    ) {
        www_authenticate(header.as_bytes());
        let challenges = parse_challenges(&header);
        prop_assert_eq!(challenges.len(), 1, "{}", header);
        prop_assert_eq!(&challenges[0].scheme, &scheme);
        let parsed: BTreeMap<String, String> = challenges[0].params.clone().into_iter().collect();
        prop_assert_eq!(parsed, params);
    }
}
