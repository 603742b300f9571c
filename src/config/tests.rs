//! Tests for loading, validation, warnings and discovery. Precedence and provenance tests live in
//! `tests_effective.rs`.

use std::path::Path;

use super::keys::{
    DURATION_PATTERN, ENV_VAR_NAME_PATTERN, KEYS, NAME_PATTERN, TAG_PATTERN, VERSION_PATTERN,
};
use super::load::{LoadedFile, ProviderSetting, parse_source};
use super::value::{is_env_var_name, is_metadata_name, is_tag, normalise_kustomization_file};
use super::*;
use crate::error::FailureClass;
use crate::yaml::Pos;

pub(super) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

pub(super) fn parse(source: &str, pairs: &[(&str, &str)]) -> Result<LoadedFile, ConfigError> {
    parse_source(source, "ksail.yaml", &env_of(pairs))
}

fn error_text(source: &str, pairs: &[(&str, &str)]) -> String {
    parse(source, pairs)
        .expect_err("the file is invalid")
        .to_string()
}

const HEAD: &str = "apiVersion: ksail.io/v1alpha1\nkind: Cluster\n";

/// The file [`HEAD`] + `body`, loaded with the variables `pairs`; it must be valid.
fn load_valid(body: &str, pairs: &[(&str, &str)]) -> LoadedFile {
    parse(&with_head(body), pairs).expect("the file is valid")
}

fn with_head(body: &str) -> String {
    format!("{HEAD}{body}")
}

#[test]
fn key_table_is_indexed_by_key() {
    for (index, spec) in KEYS.iter().enumerate() {
        assert_eq!(spec.key as usize, index, "{}", spec.path);
        assert_eq!(Key::from_path(spec.path), Some(spec.key));
    }
}

#[test]
fn env_names_follow_the_key_path() {
    for spec in &KEYS {
        let expected = format!("KSAIL_{}", spec.path.replace('.', "_").to_uppercase());
        assert_eq!(spec.env, expected);
    }
}

#[test]
fn go_key_list_is_sorted_and_has_the_spec_examples() {
    assert!(go_keys::GO_KEY_PATHS.windows(2).all(|w| w[0] < w[1]));
    for path in [
        "spec.editor",
        "spec.cluster.cni",
        "spec.provider",
        "spec.workload.flux.verify",
        "spec.chat",
    ] {
        assert!(go_keys::is_go_key(path), "{path}");
    }
    assert!(!go_keys::is_go_key("spec.cluster.fooBar"));
}

#[test]
fn hand_written_validators_agree_with_the_schema_patterns() {
    let check = |pattern: &str, validator: &dyn Fn(&str) -> bool, samples: &[&str]| {
        let regex = regex::Regex::new(pattern).unwrap();
        for sample in samples {
            assert_eq!(
                regex.is_match(sample),
                validator(sample),
                "{pattern} vs {sample:?}"
            );
        }
    };
    let names = [
        "demo", "a", "a-1", "-a", "a-", "A", "1a", "a_b", "", "ab--c",
    ];
    check(NAME_PATTERN, &is_metadata_name, &names);
    let vars = ["GHCR_TOKEN", "_x", "x1", "1x", "a-b", "", "a b"];
    check(ENV_VAR_NAME_PATTERN, &is_env_var_name, &vars);
    let tags = [
        "v1",
        "_x",
        "1.0.0-rc.1",
        "-bad",
        ".x",
        "",
        "a:b",
        &"a".repeat(128),
        &"a".repeat(129),
    ];
    check(TAG_PATTERN, &is_tag, &tags);
    let versions = [
        "0.58.1",
        "v0.58.1",
        "1.2",
        "1.2.3-rc.1",
        "1.2.3-",
        "x1.2.3",
        "1.2.3.4",
    ];
    let version_ok =
        |text: &str| super::value::interpret(Key::FluxOperatorVersion.spec(), text).is_ok();
    check(VERSION_PATTERN, &version_ok, &versions);
    let durations = [
        "90s", "1h30m", "1.5m", ".5s", "5µs", "90", "5x", "", "1..5s", "-5s",
    ];
    // The pattern does not exclude zero; the parser does ("0s" is not in the samples).
    check(
        DURATION_PATTERN,
        &|text| crate::duration::parse(text).is_ok(),
        &durations,
    );
}

#[test]
fn golden_type_errors_name_file_line_and_column() {
    let source = "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nmetadata:\n   name: demo\nspec:\n   cluster:\n      distribution: Vanilla\n   workload:\n      validateOnPush: yes\n";
    assert_eq!(
        error_text(source, &[]),
        "ksail.yaml:9:23: spec.workload.validateOnPush: expected a boolean, found string \"yes\"; use true or false"
    );
    let source = "apiVersion: ksail.io/v1alpha1\nspec:\n  cluster:\n    gitOpsEngine: Fluxx\nkind: Cluster\n";
    assert_eq!(
        error_text(source, &[]),
        "ksail.yaml:4:19: spec.cluster.gitOpsEngine: unknown value \"Fluxx\" (expected None, Flux or ArgoCD); fix the value"
    );
}

#[test]
fn golden_syntax_error() {
    let source = with_head("spec:\n  a: 1\n  b: 2\n  c: d: e\n");
    assert_eq!(
        error_text(&source, &[]),
        "ksail.yaml:6:7: mapping values are not allowed here; fix the YAML syntax"
    );
    let duplicate = with_head("kind: Cluster\n");
    assert_eq!(
        error_text(&duplicate, &[]),
        "ksail.yaml:3:1: duplicate key \"kind\"; fix the YAML syntax"
    );
}

#[test]
fn empty_file_and_envelope_errors() {
    let empty = "ksail.yaml: file is empty; it needs at least apiVersion and kind";
    assert_eq!(error_text("", &[]), empty);
    assert_eq!(error_text("# only a comment\n", &[]), empty);
    assert_eq!(error_text("---\n", &[]), empty);
    assert_eq!(
        error_text("kind: Cluster\n", &[]),
        "ksail.yaml: missing apiVersion; add \"apiVersion: ksail.io/v1alpha1\""
    );
    assert_eq!(
        error_text("apiVersion: ksail.io/v1alpha1\nkind: cluster\n", &[]),
        "ksail.yaml:2:7: kind: unsupported value \"cluster\" (expected Cluster); set kind: Cluster"
    );
    assert!(
        error_text(&format!("{HEAD}---\n{HEAD}"), &[])
            .starts_with("ksail.yaml: found 2 YAML documents")
    );
    assert!(
        error_text("- a\n", &[]).starts_with("ksail.yaml:1:1: expected a mapping at the top level")
    );
    assert_eq!(
        error_text(&with_head("spec:\n  cluster: Vanilla\n"), &[]),
        "ksail.yaml:4:12: spec.cluster: expected a mapping, found string \"Vanilla\"; indent the keys below it, or remove it"
    );
}

/// What the error of an invalid ksail.yaml says.
#[derive(Debug)]
enum Says {
    Exactly(&'static str),
    StartsWith(&'static str),
    Contains(&'static str),
    /// It never echoes this (a secret).
    Never(&'static str),
}

use Says::{Contains, Exactly, Never, StartsWith};

/// A file body, the variables set while it loads, and what its error says.
type ErrorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], Says);

/// Each body (below [`HEAD`], with the variables `vars`) fails to load with an error that says
/// what its row expects; a failure names the body.
fn assert_errors(cases: &[ErrorCase]) {
    for (body, vars, says) in cases {
        let message = error_text(&with_head(body), vars);
        let holds = match says {
            Exactly(text) => message == *text,
            StartsWith(text) => message.starts_with(text),
            Contains(text) => message.contains(text),
            Never(text) => !message.contains(text),
        };
        assert!(holds, "{body:?}: expected {says:?}, got {message:?}");
    }
}

#[test]
fn value_rule_errors() {
    assert_errors(&[
        (
            "metadata:\n  name: Bad_Name\n",
            &[],
            StartsWith("ksail.yaml:4:9: metadata.name: invalid metadata.name \"Bad_Name\""),
        ),
        (
            "spec:\n  workload:\n    tag: -bad\n",
            &[],
            Exactly(
                "ksail.yaml:5:10: spec.workload.tag: invalid tag \"-bad\" (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'); use a tag such as v1 or dev",
            ),
        ),
        (
            "spec:\n  workload:\n    tag: 1\n",
            &[],
            Exactly(
                "ksail.yaml:5:10: spec.workload.tag: expected a string, found integer 1; quote the value",
            ),
        ),
        (
            "spec:\n  cluster:\n    connection:\n      timeout: 0s\n",
            &[],
            Exactly(
                "ksail.yaml:6:16: spec.cluster.connection.timeout: duration \"0s\" must be greater than zero; use a positive value such as 5m",
            ),
        ),
        (
            "spec:\n  cluster:\n    connection:\n      timeout: 300\n",
            &[],
            Contains("duration \"300\" has no unit"),
        ),
        (
            "spec:\n  workload:\n    sourceDirectory: \"\"\n",
            &[],
            StartsWith("ksail.yaml:5:22: spec.workload.sourceDirectory: empty value;"),
        ),
        (
            "spec:\n  workload:\n    kustomizationFile: ../up\n",
            &[],
            Contains("has a '..' component"),
        ),
        (
            "spec:\n  workload:\n    kustomizationFile: /abs\n",
            &[],
            Contains("is an absolute path"),
        ),
        (
            "spec:\n  workload:\n    flux:\n      operatorVersion: latest\n",
            &[],
            Contains("invalid version \"latest\""),
        ),
        (
            "spec:\n  cluster:\n    distribution: Kind\n",
            &[],
            Contains("(expected Vanilla, K3s, Talos, VCluster, KWOK, EKS, GKE or AKS)"),
        ),
    ]);
}

#[test]
fn credential_values_are_never_echoed() {
    let token = "spec:\n  cluster:\n    localRegistry:\n      credentials:\n        tokenEnvVar: ghp_s3cret-token\n";
    let list = "spec:\n  cluster:\n    localRegistry:\n      registry: [user, s3cret]\n";
    assert_errors(&[
        (
            token,
            &[],
            StartsWith(
                "ksail.yaml:7:22: spec.cluster.localRegistry.credentials.tokenEnvVar: invalid environment variable name",
            ),
        ),
        (token, &[], Never("s3cret")),
        (list, &[], Never("s3cret")),
        (
            "spec:\n  cluster:\n    localRegistry:\n      registry: 12345\n",
            &[],
            Contains("expected a string, found an integer;"),
        ),
    ]);
}

#[test]
fn valid_values_are_normalised() {
    let loaded = load_valid(
        "metadata:\n  name: demo\nspec:\n  cluster:\n    distribution: k3s\n    gitOpsEngine: argocd\n  workload:\n    kustomizationFile: ./overlays/dev/\n    flux:\n      operatorVersion: v0.60.0\n",
        &[],
    );
    let value = |key: Key| loaded.get(key).map(|v| v.value.clone());
    assert_eq!(value(Key::Distribution), Some(value::Val::Enum("K3s")));
    assert_eq!(value(Key::GitOpsEngine), Some(value::Val::Enum("ArgoCD")));
    assert_eq!(
        value(Key::KustomizationFile),
        Some(value::Val::Str("overlays/dev".into()))
    );
    assert_eq!(
        value(Key::FluxOperatorVersion),
        Some(value::Val::Str("0.60.0".into()))
    );
    assert_eq!(
        loaded.get(Key::MetadataName).unwrap().pos,
        Pos { line: 4, column: 9 }
    );
    assert!(loaded.warnings.is_empty());
    let engine = parse(
        &with_head("spec:\n  cluster:\n    gitOpsEngine: \"\"\n"),
        &[],
    )
    .unwrap();
    assert_eq!(
        engine.get(Key::GitOpsEngine).unwrap().value,
        value::Val::Enum("None")
    );
    let unset = parse(
        &with_head("spec:\n  workload:\n    tag: \"\"\n    kustomizationFile: ./\n"),
        &[],
    )
    .unwrap();
    assert!(unset.values.is_empty());
}

#[test]
fn kustomization_file_rules() {
    let ok = |text: &str| normalise_kustomization_file(text).unwrap();
    assert_eq!(ok("./overlays/dev/"), Some("overlays/dev".into()));
    assert_eq!(ok("apps"), Some("apps".into()));
    assert_eq!(ok("./"), None);
    assert_eq!(ok(""), None);
    for bad in [
        "../x", "a/../b", "a/..", "/abs", "\\abs", "C:\\x", "c:x", "a\\..\\b",
    ] {
        assert!(normalise_kustomization_file(bad).is_err(), "{bad}");
    }
}

#[test]
fn expansion_applies_to_listed_file_keys_only() {
    let loaded = load_valid(
        "metadata:\n  name: demo\nspec:\n  cluster:\n    connection:\n      context: ${CTX}\n  workload:\n    tag: ${TAG:-v9}\n    sourceDirectory: $HOME/k8s\n    flux:\n      distributionVersion: ${V}\n",
        &[("CTX", "kind-demo"), ("V", "2.5")],
    );
    let text = |key: Key| match &loaded.get(key).unwrap().value {
        value::Val::Str(text) => text.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text(Key::Context), "kind-demo");
    assert_eq!(loaded.get(Key::Context).unwrap().expanded_from, ["CTX"]);
    assert_eq!(text(Key::Tag), "v9");
    assert_eq!(
        text(Key::SourceDirectory),
        "$HOME/k8s",
        "$NAME stays literal"
    );
    assert_eq!(
        text(Key::FluxDistributionVersion),
        "${V}",
        "not an expanded key"
    );
    assert!(loaded.warnings.is_empty());
}

#[test]
fn golden_unset_variable_warning() {
    let loaded = load_valid(
        "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: ${GHCR_USER:-ci}:${GHCR_TOKEN}@ghcr.io/acme/app\n",
        &[],
    );
    assert_eq!(
        loaded.warnings,
        ["ksail.yaml:7:17: environment variable GHCR_TOKEN is not set; using an empty value"]
    );
    assert_eq!(
        loaded.get(Key::Registry).unwrap().value,
        value::Val::Str("ci:@ghcr.io/acme/app".into())
    );
}

#[test]
fn expansion_errors_and_notes() {
    assert_errors(&[
        (
            "spec:\n  workload:\n    tag: ${TAG\n",
            &[],
            Exactly(
                "ksail.yaml:5:10: spec.workload.tag: \"${\" at character 1 has no closing \"}\"; close the reference or remove it",
            ),
        ),
        (
            "spec:\n  workload:\n    tag: v-${1X}\n",
            &[],
            StartsWith(
                "ksail.yaml:5:10: spec.workload.tag: invalid variable reference at character 3;",
            ),
        ),
        (
            "spec:\n  workload:\n    tag: ${TAG}\n",
            &[("TAG", "-bad")],
            Exactly(
                "ksail.yaml:5:10: spec.workload.tag: invalid tag \"-bad\" (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-') (after expanding ${TAG}); use a tag such as v1 or dev",
            ),
        ),
        (
            "spec:\n  workload:\n    sourceDirectory: ${SRC}\n",
            &[],
            Contains("empty value (after expanding ${SRC});"),
        ),
    ]);
}

#[test]
fn golden_unknown_and_ignored_key_warnings() {
    let loaded = load_valid(
        "spec:\n  editor: code --wait\n  cluster:\n    distribution: Vanilla\n    csi: Default\n    cni: Cilium\n    provider: Docker\n    localRegistry:\n      registry: localhost:5050\n    fooBar: 1\n  workload:\n    flux:\n      verify:\n        provider: cosign\n  chat:\n    model: x\nmetadata:\n  labels: {}\nextra: 1\n",
        &[],
    );
    assert_eq!(
        loaded.warnings,
        [
            "ksail.yaml:12:5: unknown key spec.cluster.fooBar (ignored)",
            "ksail.yaml:20:3: unknown key metadata.labels (ignored)",
            "ksail.yaml:21:1: unknown key extra (ignored)",
            "ksail.yaml: ignoring keys that ksail does not support: spec.chat, spec.cluster.cni, spec.cluster.csi, spec.cluster.provider, spec.editor, spec.workload.flux.verify",
        ]
    );
    assert_eq!(
        loaded.flux_verify,
        Some(Pos {
            line: 16,
            column: 9
        })
    );
    assert_eq!(
        loaded.provider,
        Some(ProviderSetting {
            pos: Pos {
                line: 9,
                column: 15
            },
            value: Some("Docker".into())
        })
    );
}

#[test]
fn config_errors_are_usage_failures() {
    let failure: crate::error::Failure = parse("", &[]).unwrap_err().into();
    assert_eq!(failure.class, FailureClass::Usage);
    assert_eq!(failure.class.exit_code(), 2);
    assert_eq!(
        failure.message,
        "ksail.yaml: file is empty; it needs at least apiVersion and kind"
    );
}

#[test]
fn discovery_finds_the_nearest_ancestor() {
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("a/b/c");
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::write(root.path().join("ksail.yaml"), HEAD).unwrap();
    std::fs::write(root.path().join("a/ksail.yaml"), HEAD).unwrap();
    // A directory named ksail.yaml does not count.
    std::fs::create_dir(root.path().join("a/b/ksail.yaml")).unwrap();
    let found = discover(None, &nested).unwrap().unwrap();
    assert_eq!(found, root.path().join("a/ksail.yaml"));
    assert_eq!(display_path(&found, &nested), "../../ksail.yaml");
    assert_eq!(display_path(&found, &root.path().join("a")), "ksail.yaml");
    let loaded = load_in(&found, &nested, &env_of(&[])).unwrap();
    assert_eq!(loaded.display, "../../ksail.yaml");
    assert_eq!(loaded.dir, root.path().join("a"));
}

#[test]
fn discovery_without_a_file_is_not_an_error() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(discover(None, root.path()).unwrap(), None);
}

#[test]
fn explicit_config_must_be_an_existing_file() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("custom.yaml"), HEAD).unwrap();
    std::fs::create_dir(root.path().join("dir")).unwrap();
    let explicit = |path: &str| discover(Some(Path::new(path)), root.path());
    assert_eq!(
        explicit("custom.yaml").unwrap(),
        Some(root.path().join("custom.yaml"))
    );
    for (path, says) in [
        ("missing.yaml", "the config file does not exist"),
        ("dir", "the config file is a directory, not a file"),
    ] {
        assert_eq!(
            explicit(path).unwrap_err().to_string(),
            format!("{path}: {says}; check --config or KSAIL_CONFIG")
        );
    }
}

#[test]
fn load_reads_a_file_and_names_it_as_passed() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("ksail.yaml");
    std::fs::write(
        &path,
        with_head("spec:\n  workload:\n    validateOnPush: yes\n"),
    )
    .unwrap();
    let message = load(&path, &env_of(&[])).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:5:21: ", path.display())),
        "{message}"
    );
    let message = load_in(&path, root.path(), &env_of(&[]))
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("ksail.yaml:5:21: "), "{message}");
}
