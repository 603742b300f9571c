//! The JSON schema of `ksail.yaml` (config.md#json-schema), generated from the key table so that
//! it cannot drift from what the loader accepts. The checked-in copy is
//! `schemas/ksail.schema.json`; a test regenerates it (or rewrites it with `KSAIL_UPDATE_SCHEMA=1`).
//!
//! No object sets `additionalProperties: false`: ksail warns about unknown keys instead of
//! rejecting them, and editors should accept the same files.

use serde_json::{Map, Value, json};

use super::keys::{API_VERSION, DefaultValue, KEYS, KIND, KeySpec, ValueKind};

pub const TITLE: &str = "ksail configuration";

/// Descriptions of the mappings that hold keys.
const CONTAINERS: &[(&str, &str)] = &[
    ("metadata", "Metadata of the cluster."),
    ("spec", "What to create and what to deploy."),
    (
        "spec.cluster",
        "The cluster: distribution, GitOps engine, registry and connection.",
    ),
    (
        "spec.cluster.localRegistry",
        "The OCI registry that workloads are pushed to and the cluster syncs from.",
    ),
    (
        "spec.cluster.localRegistry.credentials",
        "Environment variables that hold registry tokens. They take precedence over a password in the registry string.",
    ),
    (
        "spec.cluster.connection",
        "How ksail reaches the cluster: kubeconfig, context and timeout.",
    ),
    (
        "spec.workload",
        "The GitOps workload: the source directory that becomes the OCI artifact.",
    ),
    (
        "spec.workload.flux",
        "Flux installation settings (used when gitOpsEngine is Flux).",
    ),
];

/// The schema document: pretty JSON with sorted keys and a trailing newline.
pub fn generate() -> String {
    let mut root = object(json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": TITLE,
        "description": "ksail.yaml: one cluster and its GitOps workload. Unknown keys are allowed (ksail warns about them).",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {
                "type": "string",
                "enum": [API_VERSION],
                "description": "Version of this file format.",
            },
            "kind": {
                "type": "string",
                "enum": [KIND],
                "description": "Kind of this file.",
            },
        },
    }));
    for spec in &KEYS {
        insert(&mut root, spec.path, key_schema(spec));
    }
    let mut value = Value::Object(root);
    sort_keys(&mut value);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Place `schema` at the dotted `path`, creating the intermediate object schemas.
fn insert(root: &mut Map<String, Value>, path: &str, schema: Value) {
    let mut node = root;
    let mut walked = String::new();
    let parts: Vec<&str> = path.split('.').collect();
    for (index, part) in parts.iter().enumerate() {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        let properties = node
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(properties) = properties else {
            return;
        };
        if index + 1 == parts.len() {
            properties.insert((*part).to_string(), schema);
            return;
        }
        let description = CONTAINERS
            .iter()
            .find(|(container, _)| *container == walked)
            .map_or("", |(_, description)| description);
        let child = properties
            .entry(*part)
            .or_insert_with(|| json!({"type": "object", "description": description}));
        let Value::Object(child) = child else {
            return;
        };
        node = child;
    }
}

fn key_schema(spec: &KeySpec) -> Value {
    let mut schema = Map::new();
    let json_type = match spec.kind {
        ValueKind::Bool => "boolean",
        ValueKind::String | ValueKind::Enum(_) | ValueKind::Duration => "string",
    };
    schema.insert("type".into(), json!(json_type));
    schema.insert("description".into(), json!(description(spec)));
    if let ValueKind::Enum(values) = spec.kind {
        // The canonical spellings (what editors offer), or any case of them: ksail matches enum
        // values case-insensitively, and JSON Schema patterns have no case-insensitive flag.
        schema.insert(
            "anyOf".into(),
            json!([{"enum": values}, {"pattern": any_case_pattern(values)}]),
        );
    }
    match spec.default {
        Some(DefaultValue::Str(text)) => schema.insert("default".into(), json!(text)),
        Some(DefaultValue::Bool(b)) => schema.insert("default".into(), json!(b)),
        None => None,
    };
    if let Some(pattern) = spec.pattern {
        // A value with a ${VAR} reference is only checked after expansion, so accept it here.
        let pattern = if spec.expanded {
            format!(r"{pattern}|\$\{{")
        } else {
            pattern.to_string()
        };
        schema.insert("pattern".into(), json!(pattern));
    }
    if let Some(max_length) = spec.max_length {
        schema.insert("maxLength".into(), json!(max_length));
    }
    Value::Object(schema)
}

/// `^([Nn][Oo][Nn][Ee]|…)$`: each value in any case.
fn any_case_pattern(values: &[&str]) -> String {
    let alternatives: Vec<String> = values
        .iter()
        .map(|value| {
            value
                .chars()
                .map(|c| match (c.to_ascii_uppercase(), c.to_ascii_lowercase()) {
                    (upper, lower) if upper != lower => format!("[{upper}{lower}]"),
                    _ => c.to_string(),
                })
                .collect()
        })
        .collect();
    format!("^({})$", alternatives.join("|"))
}

fn description(spec: &KeySpec) -> String {
    let mut text = spec.description.to_string();
    if matches!(spec.kind, ValueKind::Enum(_)) {
        text.push_str(" Case-insensitive.");
    }
    if spec.expanded {
        text.push_str(" Supports ${VAR} and ${VAR:-default}.");
    }
    text.push_str(&format!(" Environment variable: {}", spec.env));
    if let Some(alias) = spec.env_alias {
        text.push_str(&format!(" (alias {alias})"));
    }
    text.push('.');
    text
}

/// Sorted object keys keep the output stable even if `serde_json`'s `preserve_order` feature gets
/// enabled by another crate.
fn sort_keys(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.sort_keys();
            map.values_mut().for_each(sort_keys);
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn checked_in_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/ksail.schema.json")
    }

    #[test]
    fn checked_in_schema_matches_the_key_table() {
        let generated = generate();
        let path = checked_in_path();
        if std::env::var("KSAIL_UPDATE_SCHEMA").as_deref() == Ok("1") {
            std::fs::create_dir_all(path.parent().expect("schemas/ has a parent")).unwrap();
            std::fs::write(&path, &generated).unwrap();
            return;
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == generated,
            "schemas/ksail.schema.json is out of date; run KSAIL_UPDATE_SCHEMA=1 cargo test --bin ksail config::schema"
        );
    }

    #[test]
    fn schema_describes_every_key() {
        let schema: Value = serde_json::from_str(&generate()).unwrap();
        assert_eq!(schema["title"], TITLE);
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        for spec in &KEYS {
            let mut node = &schema;
            for part in spec.path.split('.') {
                node = &node["properties"][part];
            }
            assert!(node["type"].is_string(), "{}", spec.path);
            assert!(
                node["description"].as_str().unwrap().contains(spec.env),
                "{}",
                spec.path
            );
        }
        let cluster = &schema["properties"]["spec"]["properties"]["cluster"]["properties"];
        assert_eq!(
            cluster["gitOpsEngine"]["anyOf"],
            json!([
                {"enum": ["None", "Flux", "ArgoCD"]},
                {"pattern": "^([Nn][Oo][Nn][Ee]|[Ff][Ll][Uu][Xx]|[Aa][Rr][Gg][Oo][Cc][Dd])$"}
            ])
        );
        assert!(
            cluster["gitOpsEngine"]["description"]
                .as_str()
                .unwrap()
                .contains("Case-insensitive.")
        );
        assert_eq!(cluster["gitOpsEngine"]["default"], "None");
        let workload = &schema["properties"]["spec"]["properties"]["workload"]["properties"];
        assert_eq!(workload["validateOnPush"]["default"], true);
        assert!(workload["tag"]["pattern"].is_string());
        assert!(workload["kustomizationFile"]["pattern"].is_string());
        assert!(cluster["connection"]["properties"]["timeout"]["pattern"].is_string());
        assert!(
            cluster["localRegistry"]["properties"]["credentials"]["properties"]["tokenEnvVar"]
                ["pattern"]
                .is_string()
        );
        assert_eq!(
            schema["properties"]["metadata"]["properties"]["name"]["maxLength"],
            63
        );
        assert!(!generate().contains("additionalProperties"));
    }
}
