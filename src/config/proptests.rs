//! Property tests: whatever `ksail.yaml` holds, loading it and building the effective settings
//! return (`crate::fuzzing::ksail_config`). Generated files put every known key, unknown keys and
//! ksail (Go) keys at their place with values of every YAML type, `${VAR}` references and
//! malformed ones, so the walker, the type checks, the expansion and the value rules all run.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::keys::KEYS;
use crate::fuzzing::ksail_config;

/// A mapping of keys to scalars (already rendered) or further mappings.
#[derive(Debug, Default)]
struct Mapping(BTreeMap<String, Entry>);

#[derive(Debug)]
enum Entry {
    Scalar(String),
    Mapping(Mapping),
}

impl Mapping {
    /// Set the dotted `path` to `value`, replacing a scalar that stands in the way.
    fn set(&mut self, path: &str, value: String) {
        let (head, rest) = match path.split_once('.') {
            Some((head, rest)) => (head, Some(rest)),
            None => (path, None),
        };
        match rest {
            None => {
                self.0.insert(head.to_string(), Entry::Scalar(value));
            }
            Some(rest) => {
                let entry = self
                    .0
                    .entry(head.to_string())
                    .or_insert_with(|| Entry::Mapping(Mapping::default()));
                if let Entry::Scalar(_) = entry {
                    *entry = Entry::Mapping(Mapping::default());
                }
                if let Entry::Mapping(mapping) = entry {
                    mapping.set(rest, value);
                }
            }
        }
    }

    fn render(&self, indent: usize, out: &mut String) {
        for (key, entry) in &self.0 {
            out.push_str(&" ".repeat(indent));
            out.push_str(key);
            match entry {
                Entry::Scalar(value) => {
                    out.push_str(": ");
                    out.push_str(value);
                    out.push('\n');
                }
                Entry::Mapping(mapping) => {
                    out.push_str(":\n");
                    mapping.render(indent + 2, out);
                }
            }
        }
    }
}

/// A key path: one ksail acts on, a ksail (Go) one, or an unknown one.
fn key_path() -> impl Strategy<Value = String> {
    let known: Vec<String> = KEYS.iter().map(|spec| spec.path.to_string()).collect();
    prop_oneof![
        6 => prop::sample::select(known),
        1 => prop::sample::select(vec![
            "spec.cluster.provider".to_string(),
            "spec.workload.flux.verify".to_string(),
            "spec.cluster.connection.timeout".to_string(),
        ]),
        1 => "spec\\.[a-z]{1,8}(\\.[a-zA-Z]{1,8}){0,2}",
    ]
}

/// A rendered YAML value of any type, leaning towards what the value rules look at.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "~",
            "true",
            "false",
            "1",
            "0",
            "3.5",
            "-7",
            "yes",
            "\"\"",
            "[]",
            "{}",
            "[a, b]",
            "{k: v}",
            "Flux",
            "argocd",
            "None",
            "K3s",
            "vanilla",
            "5m",
            "1h30m",
            "300",
            "1.5s",
            "${TAG}",
            "${UNSET}",
            "${UNSET:-x}",
            "${EMPTY:=d}",
            "${",
            "${1BAD}",
            "${A:?x}",
            "localhost:5050",
            "ci:${TAG}@ghcr.io/acme/app:v1",
            "oci://x",
            "my-cluster",
            "-bad-",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9:/@._${}-]{0,40}",
        any::<String>().prop_map(|text| format!("{text:?}")),
    ]
}

/// A ksail.yaml with the envelope (sometimes broken) and generated keys.
fn ksail_yaml() -> impl Strategy<Value = String> {
    let envelope = prop_oneof![
        4 => Just("apiVersion: ksail.io/v1alpha1\nkind: Cluster\n".to_string()),
        1 => Just("apiVersion: ksail.io/v1\nkind: Cluster\n".to_string()),
        1 => Just("kind: Cluster\n".to_string()),
        1 => Just(String::new()),
    ];
    (
        envelope,
        prop::collection::vec((key_path(), value()), 0..12),
    )
        .prop_map(|(envelope, entries)| {
            let mut mapping = Mapping::default();
            for (path, value) in entries {
                mapping.set(&path, value);
            }
            let mut text = envelope;
            mapping.render(0, &mut text);
            text
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_text_loads_or_fails(source in ".{0,400}") {
        ksail_config(source.as_bytes());
    }

    #[test]
    fn generated_files_load_or_fail(source in ksail_yaml()) {
        ksail_config(source.as_bytes());
    }

    #[test]
    fn loaded_values_point_into_the_file(source in ksail_yaml()) {
        // Every message about a value names its file:line:col: the line is one of the file's.
        if let Ok(loaded) = super::parse_source(&source, "ksail.yaml", &|_| None) {
            let lines = source.lines().count();
            for value in loaded.values.values() {
                prop_assert!(value.pos.line >= 1 && value.pos.line <= lines, "{:?}", value.pos);
            }
        }
    }
}
