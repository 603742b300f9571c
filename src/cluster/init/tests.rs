//! `plan`: flag validation and the files it yields (cluster.md#cluster-init).

use super::*;
use crate::cluster::scaffold::SCHEMA_URL;
use crate::error::FailureClass;

fn args() -> FlagOverrides {
    FlagOverrides::default()
}

/// Init flags from `(flag, value)` pairs, as the command line gives them.
fn flags(pairs: &[(&str, &str)]) -> FlagOverrides {
    let mut flags = args();
    for (flag, value) in pairs {
        let value = Some(value.to_string());
        match *flag {
            "--name" => flags.name = value,
            "--distribution" => flags.distribution = value,
            "--distribution-config" => flags.distribution_config = value,
            "--gitops-engine" => flags.gitops_engine = value,
            "--local-registry" => flags.local_registry = value,
            "--source-directory" => flags.source_directory = value,
            "--kustomization-file" => flags.kustomization_file = value,
            other => panic!("no init flag {other}"),
        }
    }
    flags
}

/// The plan for the flags `pairs`, which must be valid.
fn valid_plan(pairs: &[(&str, &str)]) -> InitPlan {
    plan_of(&flags(pairs)).expect("valid")
}

fn plan_of(args: &FlagOverrides) -> Result<InitPlan, Failure> {
    plan(args, &Connection::default(), Path::new("/work"))
}

fn paths(plan: &InitPlan) -> Vec<String> {
    plan.files
        .iter()
        .map(|file| file.path.display().to_string())
        .collect()
}

fn usage_error(args: &FlagOverrides) -> String {
    let failure = plan_of(args).expect_err("invalid flags");
    assert_eq!(failure.class, FailureClass::Usage, "{}", failure.message);
    failure.message
}

#[test]
fn default_plan_writes_three_files_in_table_order() {
    let plan = plan_of(&args()).expect("valid");
    assert_eq!(
        paths(&plan),
        ["ksail.yaml", "kind.yaml", "k8s/kustomization.yaml"]
    );
    assert_eq!(
        plan.files[0].content,
        format!(
            "# yaml-language-server: $schema={SCHEMA_URL}\napiVersion: ksail.io/v1alpha1\nkind: Cluster\n"
        )
    );
    assert_eq!(
        plan.files[1].content,
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: kind\ncontainerdConfigPatches:\n  - |-\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"/etc/containerd/certs.d\"\n"
    );
}

#[test]
fn an_engine_implies_the_default_local_registry() {
    let plan = valid_plan(&[("--gitops-engine", "flux")]);
    assert!(
        plan.files[0].content.ends_with(
            "    gitOpsEngine: Flux\n    localRegistry:\n      registry: localhost:5050\n"
        ),
        "{}",
        plan.files[0].content
    );
    assert!(plan.files[1].content.contains("containerdConfigPatches"));
}

#[test]
fn an_external_registry_gets_no_mirror() {
    let plan = valid_plan(&[
        ("--distribution", "K3s"),
        (
            "--local-registry",
            "ci:${GHCR_TOKEN}@ghcr.io/acme/manifests",
        ),
    ]);
    assert_eq!(paths(&plan)[1], "k3d.yaml");
    assert!(!plan.files[1].content.contains("registries"));
    assert!(
        plan.files[0]
            .content
            .contains("      registry: ci:${GHCR_TOKEN}@ghcr.io/acme/manifests\n")
    );
}

/// ksail.yaml is committed: a literal password becomes `${KSAIL_REGISTRY_PASSWORD}`; a password
/// written only as references stays as written.
#[test]
fn a_literal_password_is_replaced_by_a_reference() {
    let replaced = "${KSAIL_REGISTRY_PASSWORD}";
    for (given, written, variable) in [
        (
            "ci:hunter2@ghcr.io/acme:v1",
            format!("ci:{replaced}@ghcr.io/acme:v1"),
            Some(KSAIL_REGISTRY_PASSWORD),
        ),
        // Any literal part goes with the whole password.
        (
            "ci:hunter${X}@ghcr.io",
            format!("ci:{replaced}@ghcr.io"),
            Some(KSAIL_REGISTRY_PASSWORD),
        ),
        (
            "ci:$TOKEN@ghcr.io",
            format!("ci:{replaced}@ghcr.io"),
            Some(KSAIL_REGISTRY_PASSWORD),
        ),
        ("ci:${TOKEN}@ghcr.io", "ci:${TOKEN}@ghcr.io".into(), None),
        (
            "ci:${A}${B:-x}@ghcr.io",
            "ci:${A}${B:-x}@ghcr.io".into(),
            None,
        ),
        (
            "${USER_NAME}:${TOKEN}@ghcr.io",
            "${USER_NAME}:${TOKEN}@ghcr.io".into(),
            None,
        ),
        ("ci@ghcr.io", "ci@ghcr.io".into(), None),
        ("localhost:5050", "localhost:5050".into(), None),
    ] {
        let plan = valid_plan(&[("--local-registry", given)]);
        let ksail_yaml = &plan.files[0].content;
        assert!(
            ksail_yaml.contains(&format!("      registry: {written}\n")),
            "{given}: {ksail_yaml}"
        );
        assert!(!ksail_yaml.contains("hunter"), "{given}: {ksail_yaml}");
        assert_eq!(plan.password_variable, variable, "{given}");
    }
}

#[test]
fn the_password_notice_needs_a_written_ksail_yaml() {
    let plan = valid_plan(&[("--local-registry", "ci:hunter2@ghcr.io")]);
    let outcome = |kind, action| FileOutcome {
        kind,
        path: String::new(),
        action,
    };
    for (action, notice) in [
        (FileAction::Created, true),
        (FileAction::Overwrote, true),
        (FileAction::Skipped, false),
    ] {
        let outcomes = [
            outcome(FileKind::KsailYaml, action),
            outcome(FileKind::DistributionConfig, FileAction::Created),
        ];
        let text = plan.password_notice(&outcomes);
        assert_eq!(text.is_some(), notice, "{action:?}");
        if let Some(text) = text {
            assert!(text.contains("set KSAIL_REGISTRY_PASSWORD"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
    // Before any file was handled (a failed write), nothing is said.
    assert_eq!(plan.password_notice(&[]), None);
    let no_password = valid_plan(&[("--local-registry", "ci@ghcr.io")]);
    assert_eq!(
        no_password.password_notice(&[outcome(FileKind::KsailYaml, FileAction::Created)]),
        None
    );
}

#[test]
fn k3s_mirror_uses_the_default_cluster_name_without_a_name() {
    let plan = valid_plan(&[("--distribution", "K3s"), ("--local-registry", "localhost")]);
    let k3d = &plan.files[1].content;
    assert!(k3d.contains("  name: k3d-default\n"), "{k3d}");
    assert!(k3d.contains("      \"localhost:5050\":\n"), "{k3d}");
    assert!(
        k3d.contains("          - http://k3d-default-local-registry:5000\n"),
        "{k3d}"
    );
    // Written as given, not normalised.
    assert!(
        plan.files[0]
            .content
            .contains("      registry: localhost\n")
    );
}

#[test]
fn a_placeholder_host_is_kept_and_decides_the_mirror_from_its_default() {
    let plan = valid_plan(&[("--local-registry", "${REGISTRY:-localhost:5051}")]);
    assert!(
        plan.files[0]
            .content
            .contains("      registry: ${REGISTRY:-localhost:5051}\n")
    );
    assert!(plan.files[1].content.contains("containerdConfigPatches"));
}

#[test]
fn paths_and_kustomization_file() {
    let plan = valid_plan(&[
        ("--distribution-config", "clusters/kind.yaml"),
        ("--source-directory", "./deploy/"),
        ("--kustomization-file", "./overlays/dev/"),
    ]);
    assert_eq!(
        paths(&plan),
        [
            "ksail.yaml",
            "clusters/kind.yaml",
            "./deploy/overlays/dev/kustomization.yaml"
        ]
    );
    let body: Vec<&str> = plan.files[0].content.lines().skip(3).collect();
    assert_eq!(
        body,
        [
            "spec:",
            "  cluster:",
            "    distributionConfig: clusters/kind.yaml",
            "  workload:",
            "    sourceDirectory: ./deploy/",
            "    kustomizationFile: overlays/dev",
        ]
    );
}

#[test]
fn each_path_names_the_flag_that_chose_it() {
    let flags_of = |plan: &InitPlan| -> Vec<Option<&str>> {
        let mut flags: Vec<_> = plan.files.iter().map(|file| file.flag).collect();
        flags.push(plan.source_flag);
        flags
    };
    assert_eq!(flags_of(&valid_plan(&[])), [None, None, None, None]);
    let plan = valid_plan(&[
        ("--distribution-config", "clusters/kind.yaml"),
        ("--source-directory", "deploy"),
    ]);
    assert_eq!(
        flags_of(&plan),
        [
            None,
            Some("--distribution-config"),
            Some("--source-directory"),
            Some("--source-directory"),
        ]
    );
    assert_eq!(plan.source_directory, Path::new("deploy"));
    let plan = valid_plan(&[("--kustomization-file", "overlays/dev")]);
    assert_eq!(
        flags_of(&plan),
        [None, None, Some("--kustomization-file"), None]
    );
}

#[test]
fn default_paths_written_differently_are_still_defaults() {
    let plan = valid_plan(&[
        ("--distribution-config", "./kind.yaml"),
        ("--source-directory", "k8s/"),
    ]);
    assert!(!plan.files[0].content.contains("spec:"));
}

#[test]
fn connection_flags_are_written() {
    let connection = Connection {
        kubeconfig: Some("/tmp/kubeconfig".into()),
        context: Some("kind-dev".into()),
    };
    let plan = plan(&args(), &connection, Path::new("/work")).expect("valid");
    let body: Vec<&str> = plan.files[0].content.lines().skip(3).collect();
    assert_eq!(
        body,
        [
            "spec:",
            "  cluster:",
            "    connection:",
            "      kubeconfig: /tmp/kubeconfig",
            "      context: kind-dev",
        ]
    );
}

#[test]
fn invalid_flags_are_usage_errors() {
    let long_name = "a".repeat(64);
    // (flag, value, what the message says after `flag <flag>: `)
    let cases = [
        ("--name", "Bad_Name", "invalid metadata.name \"Bad_Name\""),
        ("--name", &long_name, "invalid metadata.name"),
        (
            "--distribution",
            "Talos",
            "distribution Talos is not supported by ksail cluster commands; supported: Vanilla, K3s",
        ),
        ("--distribution", "minikube", "unknown value \"minikube\""),
        ("--gitops-engine", "Fluxx", "unknown value \"Fluxx\""),
        (
            "--local-registry",
            "oci://localhost:5050",
            "a registry string has no scheme",
        ),
        (
            "--local-registry",
            "u:${PASS@localhost",
            "\"${\" at character 3 has no closing",
        ),
        (
            "--kustomization-file",
            "../up",
            "\"../up\" has a '..' component",
        ),
        (
            "--distribution-config",
            "./ksail.yaml",
            "./ksail.yaml is also the path of ksail.yaml",
        ),
    ];
    for (flag, value, says) in cases {
        let message = usage_error(&flags(&[(flag, value)]));
        let expected = format!("flag {flag}: {says}");
        assert!(message.starts_with(&expected), "{flag} {value}: {message}");
    }
}

#[test]
fn shown_paths_carry_the_directory_prefix() {
    assert_eq!(shown_path(".", Path::new("ksail.yaml")), "ksail.yaml");
    assert_eq!(shown_path("./", Path::new("ksail.yaml")), "ksail.yaml");
    assert_eq!(shown_path("proj", Path::new("k8s/a")), "proj/k8s/a");
    assert_eq!(shown_path("proj", Path::new("/abs/k.yaml")), "/abs/k.yaml");
}

/// Decide and carry out, as `write` does for each file.
fn write_one(path: &Path, kind: FileKind, content: &str, force: bool) -> FileAction {
    let action = decide(path, kind, force);
    write_file(path, content, action).unwrap_or_else(|_| panic!("write {content}"));
    action
}

#[test]
fn write_file_creates_skips_and_overwrites() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("a/b/file.yaml");
    let write = |content: &str, force: bool| write_one(&path, FileKind::KsailYaml, content, force);
    assert_eq!(write("one\n", false), FileAction::Created);
    assert_eq!(write("two\n", false), FileAction::Skipped);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\n");
    assert_eq!(write("three\n", true), FileAction::Overwrote);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "three\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        let umask_free = |wanted: u32, got: u32| got & !wanted == 0;
        assert!(umask_free(0o644, mode(&path)));
        assert!(umask_free(0o755, mode(&dir.path().join("a"))));
    }
}

#[test]
fn an_existing_kustomization_is_kept_with_and_without_force() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("k8s/kustomization.yaml");
    let write =
        |content: &str, force: bool| write_one(&path, FileKind::Kustomization, content, force);
    assert_eq!(write("one\n", false), FileAction::Created);
    assert_eq!(write("two\n", false), FileAction::Kept);
    assert_eq!(write("three\n", true), FileAction::Kept);
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\n");
}
