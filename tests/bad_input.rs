//! Bad input through `ksail workload push` (testing.md "Bad-input tests"). Every case exits 2,
//! prints exactly one `error:` line (the last stderr line), and changes nothing: a recording
//! proxy in front of a real registry sees no request, the fake credential helper logs no call,
//! and every file of the test directory hashes the same before and after.
//!
//! Wherever a case can name a registry, it names the proxy, so that a push that should have been
//! refused would show up in the proxy's log. B01, B14, B15 and B21 are in tests/cli.rs.

mod support;

use std::process::Output;

use serde_json::json;
use support::push::{alias_bomb, nested_sequences};
use support::{
    Proxy, Registry, TestEnv, assert_case_exit, assert_error_line, assert_no_secret, stderr_lines,
    stderr_text,
};

const MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

/// One bad-input case: files to write, arguments after `workload push`, extra variables, and
/// the expected error line (exactly, or a phrase it must contain).
struct Case<'a> {
    id: &'a str,
    files: Vec<(&'a str, String)>,
    args: Vec<String>,
    vars: Vec<(&'a str, &'a str)>,
    expected: Expected,
}

impl<'a> Case<'a> {
    /// A case with no files, no arguments after `workload push` and no variables.
    fn new(id: &'a str, expected: Expected) -> Case<'a> {
        Case {
            id,
            files: vec![],
            args: vec![],
            vars: vec![],
            expected,
        }
    }

    fn files(mut self, files: Vec<(&'a str, String)>) -> Case<'a> {
        self.files = files;
        self
    }

    fn args(mut self, args: Vec<String>) -> Case<'a> {
        self.args = args;
        self
    }

    fn vars(mut self, vars: Vec<(&'a str, &'a str)>) -> Case<'a> {
        self.vars = vars;
        self
    }
}

enum Expected {
    /// The whole error line.
    Line(String),
    /// Phrases the error line contains.
    Phrases(Vec<String>),
}

fn exact(line: impl Into<String>) -> Expected {
    Expected::Line(line.into())
}

fn phrases(items: &[&str]) -> Expected {
    Expected::Phrases(items.iter().map(|s| s.to_string()).collect())
}

/// A proxy in front of a real registry; `None` when registry tests are skipped.
struct Upstream {
    proxy: Proxy,
    _registry: Registry,
}

impl Upstream {
    fn host(&self) -> String {
        self.proxy.host_port()
    }

    /// `oci://<proxy>/k8s`.
    fn reference(&self) -> String {
        format!("oci://{}/k8s", self.host())
    }
}

/// A test environment with a valid source directory and a docker config whose credential store
/// is a fake helper that would answer for the proxy, so that any lookup is logged.
fn prepared_env(upstream: &Upstream) -> TestEnv {
    let env = TestEnv::new();
    env.write("k8s/app.yaml", MANIFEST);
    let host = upstream.host();
    env.fake_credential_helper("test", &[(host.as_str(), Some(("ci", "pw")))]);
    env.write_docker_config(&json!({ "credsStore": "test" }));
    env
}

fn check(upstream: &Upstream, case: &Case<'_>) {
    let env = prepared_env(upstream);
    for (path, content) in &case.files {
        env.write(path, content);
    }
    let before = env.tree_hash();
    let mut cmd = env.ksail(["workload", "push"]);
    cmd.args(&case.args);
    for (name, value) in &case.vars {
        cmd.env(name, value);
    }
    let output: Output = cmd.output().expect("run ksail");
    let id = case.id;
    assert_case_exit(&output, 2, id);
    assert_error_line(&output, "");
    let last = stderr_lines(&output).pop().unwrap_or_default();
    match &case.expected {
        Expected::Line(line) => assert_eq!(&last, line, "{id}"),
        Expected::Phrases(items) => {
            for phrase in items {
                assert!(
                    last.contains(phrase.as_str()),
                    "{id}: {last:?} lacks {phrase:?}"
                );
            }
        }
    }
    assert!(
        output.stdout.is_empty(),
        "{id}: stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        upstream.proxy.requests().is_empty(),
        "{id}: the registry got {:?}",
        upstream.proxy.request_lines()
    );
    assert!(
        env.calls().is_empty(),
        "{id}: a fake executable was run: {:?}",
        env.calls()
    );
    assert_eq!(env.tree_hash(), before, "{id}: files changed");
}

fn upstream() -> Option<Upstream> {
    // Started by hand rather than with require_registry! so that the table helpers can share it.
    if support::registry::skip_requested() {
        eprintln!("skipped: bad_input: KSAIL_TEST_SKIP_REGISTRY=1");
        return None;
    }
    let registry = Registry::start(support::RegistryKind::Plain).unwrap_or_else(|e| panic!("{e}"));
    let proxy = Proxy::start(&registry.host_port());
    Some(Upstream {
        proxy,
        _registry: registry,
    })
}

fn config_with(body: &str) -> String {
    format!("apiVersion: ksail.io/v1alpha1\nkind: Cluster\n{body}")
}

fn run_table(cases: Vec<Case<'_>>, upstream: &Upstream) {
    for case in &cases {
        check(upstream, case);
    }
}

#[test]
fn b02_extra_positional_argument() {
    let Some(up) = upstream() else { return };
    let reference = up.reference();
    check(
        &up,
        &Case::new("B02", phrases(&["extra"])).args(vec![reference, "extra".into()]),
    );
    // Nothing but the error line, not even a progress line.
    let env = prepared_env(&up);
    let output = env
        .ksail(["workload", "push", "oci://127.0.0.1:1/k8s", "extra"])
        .output()
        .unwrap();
    assert_eq!(stderr_lines(&output).len(), 1, "{}", stderr_text(&output));
}

#[test]
fn b03_config_flag_naming_a_missing_file_or_a_directory() {
    let Some(up) = upstream() else { return };
    let reference = up.reference();
    // A valid ksail.yaml in the current directory must not be used instead.
    let fallback = (
        "ksail.yaml",
        config_with("spec:\n  cluster:\n    gitOpsEngine: Flux\n"),
    );
    // --config and KSAIL_CONFIG, each naming a missing file and a directory.
    let mut cases = Vec::new();
    for (flag_id, var_id, path, says) in [
        (
            "B03 --config missing",
            "B03 KSAIL_CONFIG missing",
            "missing.yaml",
            ["missing.yaml", "does not exist"],
        ),
        (
            "B03 --config directory",
            "B03 KSAIL_CONFIG directory",
            "conf",
            ["conf", "directory"],
        ),
    ] {
        let mut files = vec![fallback.clone()];
        if path == "conf" {
            files.push(("conf/keep", String::new()));
        }
        let flag = vec!["--config".into(), path.into(), reference.clone()];
        cases.push(
            Case::new(flag_id, phrases(&says))
                .files(files.clone())
                .args(flag),
        );
        let var = vec![("KSAIL_CONFIG", path)];
        cases.push(
            Case::new(var_id, phrases(&says))
                .files(files)
                .args(vec![reference.clone()])
                .vars(var),
        );
    }
    run_table(cases, &up);
}

/// B04–B07: a ksail.yaml that does not load; the error line names the file and, where there
/// is one, the line and column.
#[test]
fn b04_to_b07_a_ksail_yaml_that_does_not_load() {
    let Some(up) = upstream() else { return };
    let reference = up.reference();
    let rows: [(&str, String, Expected); 8] = [
        (
            "B04 YAML syntax error",
            config_with("spec:\n  workload:\n    tag: a: b\n"),
            exact(
                "error: ksail.yaml:5:11: mapping values are not allowed here; fix the YAML syntax",
            ),
        ),
        (
            "B04 an alias bomb stops at the alias expansion limit",
            config_with(&format!("x:\n{}", alias_bomb("  ", 9))),
            exact(
                "error: ksail.yaml:9:11: alias expansion limit exceeded: anchors and aliases copy more than 1000000 nodes in this document; use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)",
            ),
        ),
        (
            "B04 nesting deeper than the limit",
            config_with(&format!("x: {}\n", nested_sequences(257))),
            exact(
                "error: ksail.yaml:3:259: nesting depth limit exceeded: more than 256 nested mappings and sequences; flatten the structure",
            ),
        ),
        (
            "B05 wrong type",
            config_with("spec:\n  workload:\n    validateOnPush: \"yes\"\n"),
            exact(
                "error: ksail.yaml:5:21: spec.workload.validateOnPush: expected a boolean, found string \"yes\"; use true or false",
            ),
        ),
        (
            "B06 bad enum",
            config_with("spec:\n  cluster:\n    gitOpsEngine: Fluxx\n"),
            exact(
                "error: ksail.yaml:5:19: spec.cluster.gitOpsEngine: unknown value \"Fluxx\" (expected None, Flux or ArgoCD); fix the value",
            ),
        ),
        (
            "B07 apiVersion",
            "apiVersion: ksail.io/v1alpha2\nkind: Cluster\n".into(),
            phrases(&["ksail.yaml:1:13: apiVersion", "\"ksail.io/v1alpha2\""]),
        ),
        (
            "B07 kind",
            "apiVersion: ksail.io/v1alpha1\nkind: Clusters\n".into(),
            phrases(&["ksail.yaml:2:7: kind", "\"Clusters\""]),
        ),
        (
            "B07 empty",
            String::new(),
            exact("error: ksail.yaml: file is empty; it needs at least apiVersion and kind"),
        ),
    ];
    let cases = rows
        .into_iter()
        .map(|(id, text, expected)| {
            Case::new(id, expected)
                .files(vec![("ksail.yaml", text)])
                .args(vec![reference.clone()])
        })
        .collect();
    run_table(cases, &up);
}

/// resolution.md "Golden error cases" X01–X09: each registry string once as `--registry` and
/// once in ksail.yaml (where the error names the file position instead of the flag).
#[test]
fn b08_x01_to_x09_bad_registry_strings() {
    let Some(up) = upstream() else { return };
    let host = up.host();
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    let table: Vec<(&str, String, &str)> = vec![
        ("X01", "localhost:0".into(), "invalid port \"0\""),
        ("X02", "localhost:70000".into(), "invalid port \"70000\""),
        ("X03", "localhost:abc".into(), "invalid port \"abc\""),
        (
            "X04",
            format!("{host}/Team/App"),
            "invalid repository \"Team/App\"",
        ),
        ("X05", format!("{host}//app"), "invalid repository"),
        (
            "X06",
            format!("http://{host}"),
            "a registry string has no scheme",
        ),
        (
            "X07",
            format!("{host}/acme/app@{digest}"),
            "a digest reference (…@sha256:…) names content, not a place to push to",
        ),
        (
            "X08",
            "::1:5050".into(),
            "IPv6 addresses must be in brackets",
        ),
        ("X09", format!(":tok@{host}/x"), "password without a user"),
    ];
    let mut cases = Vec::new();
    for (id, registry, phrase) in &table {
        cases.push(
            Case::new(id, phrases(&["--registry", phrase]))
                .args(vec!["--registry".into(), registry.clone()]),
        );
        cases.push(
            Case::new(id, phrases(&["KSAIL_REGISTRY", phrase]))
                .vars(vec![("KSAIL_REGISTRY", registry.as_str())]),
        );
        let config = config_with(&format!(
            "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: \"{registry}\"\n"
        ));
        let at = "ksail.yaml:7:17: spec.cluster.localRegistry.registry";
        cases.push(Case::new(id, phrases(&[at, phrase])).files(vec![("ksail.yaml", config)]));
    }
    for case in &cases {
        check(&up, case);
    }
    // X09: the password is redacted in the message.
    let env = prepared_env(&up);
    let output = env
        .ksail(["workload", "push", "--registry", &format!(":tok@{host}/x")])
        .output()
        .unwrap();
    assert_no_secret(&output, "tok@");
}

/// An empty `--registry` names no registry: it is refused rather than silently replaced by the
/// ksail.yaml registry (which here names the proxy, so a fallback push would show up there).
#[test]
fn empty_registry_flag_is_refused_instead_of_falling_back() {
    let Some(up) = upstream() else { return };
    let host = up.host();
    let config = config_with(&format!(
        "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: \"{host}\"\n"
    ));
    let line = "error: --registry is empty: an empty registry string names no registry to push to; pass host[:port][/repository][:tag], or leave --registry out to push to spec.cluster.localRegistry.registry";
    let cases = ["", " "]
        .into_iter()
        .map(|value| {
            Case::new("empty --registry", exact(line))
                .files(vec![("ksail.yaml", config.clone())])
                .args(vec!["--registry".into(), value.into()])
        })
        .collect();
    run_table(cases, &up);
}

/// X10: a bad tag, from ksail.yaml and from the environment.
#[test]
fn b08_x10_bad_tag() {
    let Some(up) = upstream() else { return };
    let host = up.host();
    let reference = up.reference();
    let config = config_with(&format!(
        "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: \"{host}\"\n  workload:\n    tag: -bad\n"
    ));
    run_table(
        vec![
            Case::new(
                "X10 ksail.yaml",
                phrases(&["ksail.yaml:9:10: spec.workload.tag", "invalid tag \"-bad\""]),
            )
            .files(vec![("ksail.yaml", config.clone())]),
            Case::new(
                "X10 ksail.yaml with a ref that has its own tag",
                phrases(&["invalid tag \"-bad\""]),
            )
            .files(vec![("ksail.yaml", config)])
            .args(vec![format!("{reference}:ok")]),
            Case::new(
                "X10 env",
                phrases(&["KSAIL_SPEC_WORKLOAD_TAG", "invalid tag \"-bad\""]),
            )
            .args(vec![reference])
            .vars(vec![("KSAIL_SPEC_WORKLOAD_TAG", "-bad")]),
        ],
        &up,
    );
}

/// X11–X15: bad OCI references as the push argument.
#[test]
fn b08_x11_to_x15_bad_oci_references() {
    let Some(up) = upstream() else { return };
    let host = up.host();
    let table: Vec<(&str, String, &str)> = vec![
        ("X11", format!("oci://{host}"), "missing repository"),
        (
            "X12",
            format!("docker://{host}/k8s"),
            "must start with oci://",
        ),
        ("X13", format!("{host}/k8s:dev"), "must start with oci://"),
        (
            "X14",
            format!("oci://user:pw@{host}/acme/app"),
            "credentials are not accepted in an OCI reference",
        ),
        ("X15", format!("oci://{host}/k8s:"), "empty tag"),
    ];
    let cases: Vec<Case<'_>> = table
        .iter()
        .map(|(id, reference, phrase)| {
            Case::new(id, phrases(&[phrase])).args(vec![reference.clone()])
        })
        .collect();
    run_table(cases, &up);

    // X14: the message must not contain the password.
    let env = prepared_env(&up);
    let output = env
        .ksail([
            "workload",
            "push",
            &format!("oci://user:pw@{host}/acme/app"),
        ])
        .output()
        .unwrap();
    let last = stderr_lines(&output).pop().unwrap_or_default();
    assert!(!last.contains("pw"), "{last}");
}

/// X16: engine None, no registry, no ref. X17: an invalid cluster name from the environment
/// (with push, which uses the name for the sync URL).
#[test]
fn b08_x16_no_registry_and_x17_bad_metadata_name() {
    let Some(up) = upstream() else { return };
    let host = up.host();
    let no_registry = || phrases(&["no registry configured"]);
    let engine_none = config_with("spec:\n  cluster:\n    gitOpsEngine: None\n");
    let flux = config_with(&format!(
        "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: \"{host}\"\n"
    ));
    let bad_name = || phrases(&["invalid metadata.name \"Bad_Name\""]);
    let name_var = || vec![("KSAIL_METADATA_NAME", "Bad_Name")];
    run_table(
        vec![
            Case::new("X16 no file", no_registry()),
            Case::new("X16 engine None", no_registry()).files(vec![("ksail.yaml", engine_none)]),
            Case::new("X17", bad_name())
                .files(vec![("ksail.yaml", flux)])
                .vars(name_var()),
            Case::new("X17 with a ref", bad_name())
                .args(vec![up.reference()])
                .vars(name_var()),
        ],
        &up,
    );
}

/// B20: SOURCE_DATE_EPOCH must be a non-negative integer (artifact.md "Annotations").
#[test]
fn b20_source_date_epoch_that_is_not_a_number() {
    let Some(up) = upstream() else { return };
    let reference = up.reference();
    run_table(
        ["abc", "-5", "1.5"]
            .into_iter()
            .map(|value| {
                Case::new("B20", phrases(&["SOURCE_DATE_EPOCH"]))
                    .args(vec![reference.clone()])
                    .vars(vec![("SOURCE_DATE_EPOCH", value)])
            })
            .collect(),
        &up,
    );
}
