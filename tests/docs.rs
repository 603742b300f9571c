//! The documentation stays true: every key of the JSON schema is described in
//! docs/configuration.md, and the README keeps its two set-up commands.

use std::path::PathBuf;

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

fn leaf_keys(node: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    match node.get("properties").and_then(|p| p.as_object()) {
        Some(properties) => {
            for (key, child) in properties {
                path.push(key.clone());
                leaf_keys(child, path, out);
                path.pop();
            }
        }
        None => out.push(path.join(".")),
    }
}

#[test]
fn every_schema_key_is_documented() {
    let schema: serde_json::Value =
        serde_json::from_str(&repo_file("schemas/ksail.schema.json")).unwrap();
    let mut keys = Vec::new();
    leaf_keys(&schema, &mut Vec::new(), &mut keys);
    assert!(keys.len() > 15, "the schema lost its keys: {keys:?}");
    let doc = repo_file("docs/configuration.md");
    let missing: Vec<_> = keys
        .iter()
        .filter(|key| !doc.contains(&format!("`{key}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
}

#[test]
fn readme_names_the_two_setup_commands_and_ci_runs_the_test_one() {
    let readme = repo_file("README.md");
    assert!(readme.contains("`./scripts/demo`"));
    assert!(readme.contains("`./scripts/test`"));
    let ci = repo_file(".ci/run");
    assert!(ci.contains("exec ./scripts/test"));
    assert!(!ci.contains("KSAIL_TEST_SKIP_REGISTRY"));
    assert!(repo_file("scripts/test").contains("cargo test --locked"));
}

#[test]
fn getting_started_shows_the_seed_commands_that_the_full_loop_tests_run() {
    let doc = repo_file("docs/getting-started.md");
    let block = doc
        .split("```")
        .nth(1)
        .expect("the getting-started document has a command block");
    let commands: Vec<&str> = block
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(
        commands,
        [
            "ksail cluster init --gitops-engine Flux --local-registry localhost:5050",
            "ksail cluster create",
            "ksail workload push",
            "ksail workload reconcile",
        ]
    );
    let loop_tests = repo_file("tests/cluster_create_update.rs");
    for name in ["fn full_loop_with_flux", "fn full_loop_with_argocd"] {
        assert!(loop_tests.contains(name), "the document names {name}");
    }
}

#[test]
fn every_command_has_a_reference_page() {
    let pages = [
        (
            "docs/cluster.md",
            [
                "cluster init",
                "cluster create",
                "cluster update",
                "cluster delete",
                "cluster list",
            ]
            .as_slice(),
        ),
        ("docs/push.md", ["workload push"].as_slice()),
        ("docs/reconcile.md", ["workload reconcile"].as_slice()),
    ];
    for (page, commands) in pages {
        let text = repo_file(page);
        for command in commands {
            assert!(
                text.contains(&format!("ksail {command}")),
                "{page} describes ksail {command}"
            );
        }
    }
}

#[test]
fn testing_doc_names_every_pinned_real_tier_version() {
    let doc = repo_file("docs/testing.md");
    let versions = repo_file("tests/real/versions.env");
    let pinned: Vec<&str> = versions
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| {
            value.starts_with('v') && value[1..].starts_with(|c: char| c.is_ascii_digit())
        })
        .collect();
    assert!(
        pinned.len() >= 10,
        "versions.env pins the components: {pinned:?}"
    );
    for version in pinned {
        assert!(
            doc.contains(version),
            "docs/testing.md does not name {version} from tests/real/versions.env"
        );
    }
}
