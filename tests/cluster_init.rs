//! `ksail cluster init` through the binary (cluster.md#cluster-init, testing.md "Cluster tests"):
//! the three goldens byte for byte, the created/skipped/overwrote lines, `--force`, `--directory`,
//! `--output json`, the connection flags, validation before any write (B17, B18), and the documented workflow's
//! next step: a bare `workload push` right after the seed init targets `oci://localhost:5050/k8s:dev`.

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use support::{
    TestEnv, assert_error_line, assert_success, stderr_lines, stderr_text, stdout_lines,
};

/// The editor link `cluster init` writes (config.md#json-schema); the same source constant.
const SCHEMA_URL: &str = concat!(
    "https://raw.githubusercontent.com/devantler-tech/ksail-rs/v",
    env!("CARGO_PKG_VERSION"),
    "/schemas/ksail.schema.json"
);

const KUSTOMIZATION: &str =
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n";

fn init(env: &TestEnv, args: &[&str]) -> Output {
    env.ksail(["cluster", "init"].iter().chain(args))
        .output()
        .expect("run ksail cluster init")
}

/// `ksail cluster init <args>` in a fresh project, which must succeed.
fn init_ok(args: &[&str]) -> (TestEnv, Output) {
    let env = TestEnv::new();
    let output = init(&env, args);
    assert_success(&output);
    (env, output)
}

fn read(dir: &Path, rel: &str) -> String {
    fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

fn header() -> String {
    format!(
        "# yaml-language-server: $schema={SCHEMA_URL}\napiVersion: ksail.io/v1alpha1\nkind: Cluster\n"
    )
}

/// One golden of cluster.md#cluster-init: the flags, what ksail.yaml holds below the header,
/// and the distribution config (path and content). Each also writes `KUSTOMIZATION` and
/// nothing else, and says so in four lines.
struct Golden {
    name: &'static str,
    args: &'static [&'static str],
    ksail_yaml: &'static str,
    distribution_config: (&'static str, &'static str),
}

/// The kind.yaml init writes (the same with or without a local registry).
const KIND_YAML: &str = include_str!("fixtures/init/kind.yaml");
/// The k3d.yaml init writes for cluster `dev` with local registry `localhost:5050`.
const K3D_DEV_YAML: &str = include_str!("fixtures/init/k3d-dev-local-registry.yaml");

const GOLDENS: &[Golden] = &[
    Golden {
        name: "the documented workflow example",
        args: &[
            "--gitops-engine",
            "Flux",
            "--local-registry",
            "localhost:5050",
        ],
        ksail_yaml: "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: localhost:5050\n",
        distribution_config: ("kind.yaml", KIND_YAML),
    },
    Golden {
        name: "default init",
        args: &[],
        ksail_yaml: "",
        distribution_config: (
            "kind.yaml",
            // containerd reads certs.d: the default pull-through mirrors are wired there.
            KIND_YAML,
        ),
    },
    Golden {
        name: "K3s with a local registry",
        args: &[
            "-d",
            "K3s",
            "-g",
            "ArgoCD",
            "-n",
            "dev",
            "--local-registry",
            "localhost:5050",
        ],
        ksail_yaml: "metadata:\n  name: dev\nspec:\n  cluster:\n    distribution: K3s\n    gitOpsEngine: ArgoCD\n    localRegistry:\n      registry: localhost:5050\n",
        distribution_config: ("k3d.yaml", K3D_DEV_YAML),
    },
];

/// Every path below `dir` (files and directories), relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut paths = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).expect("list a directory") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(dir).expect("below dir");
            paths.push(rel.to_string_lossy().into_owned());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
    paths.sort();
    paths
}

/// cluster.md's init goldens byte for byte; nothing else is written (no devcontainer, no
/// hosts.toml, no GitOps manifests).
#[test]
fn goldens_are_written_byte_for_byte() {
    for golden in GOLDENS {
        let (env, output) = init_ok(golden.args);
        let work = env.work();
        let (config, content) = golden.distribution_config;
        assert_eq!(
            read(&work, "ksail.yaml"),
            header() + golden.ksail_yaml,
            "{}",
            golden.name
        );
        assert_eq!(read(&work, config), content, "{}", golden.name);
        assert_eq!(
            read(&work, "k8s/kustomization.yaml"),
            KUSTOMIZATION,
            "{}",
            golden.name
        );
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            format!(
                "created ksail.yaml\ncreated {config}\ncreated k8s/kustomization.yaml\ninitialized project in .\n"
            ),
            "{}",
            golden.name
        );
        let mut expected = vec!["k8s", "k8s/kustomization.yaml", config, "ksail.yaml"];
        expected.sort_unstable();
        assert_eq!(tree(&work), expected, "{}", golden.name);
    }
}

#[test]
fn existing_files_are_skipped_byte_for_byte() {
    let env = TestEnv::new();
    let mine = "# my own file\napiVersion: ksail.io/v1alpha1\nkind: Cluster\n";
    env.write("ksail.yaml", mine);
    let path = env.work().join("ksail.yaml");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    let output = init(&env, &["-g", "Flux"]);
    assert_success(&output);
    assert_eq!(read(&env.work(), "ksail.yaml"), mine);
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a skipped file is not touched");
    assert_eq!(
        stdout_lines(&output),
        [
            "skipped ksail.yaml (exists; use --force to overwrite)",
            "created kind.yaml",
            "created k8s/kustomization.yaml",
            "initialized project in .",
        ]
    );
}

#[test]
fn a_second_init_skips_everything_and_changes_nothing() {
    let env = TestEnv::new();
    assert_success(&init(&env, &[]));
    let before = env.tree_hash();
    let output = init(&env, &["-g", "Flux"]);
    assert_success(&output);
    assert_eq!(env.tree_hash(), before);
    assert_eq!(
        stdout_lines(&output),
        [
            "skipped ksail.yaml (exists; use --force to overwrite)",
            "skipped kind.yaml (exists; use --force to overwrite)",
            "kept k8s/kustomization.yaml (exists; --force does not overwrite a kustomization: it lists your manifests)",
            "initialized project in .",
        ]
    );
}

#[test]
fn force_overwrites_ksail_yaml_and_the_distribution_config() {
    let env = TestEnv::new();
    env.write("ksail.yaml", "old\n");
    env.write("kind.yaml", "old\n");
    let output = init(&env, &["--force", "-g", "Flux"]);
    assert_success(&output);
    assert_eq!(
        stdout_lines(&output),
        [
            "overwrote ksail.yaml",
            "overwrote kind.yaml",
            "created k8s/kustomization.yaml",
            "initialized project in .",
        ]
    );
    assert_eq!(
        read(&env.work(), "ksail.yaml"),
        header()
            + "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: localhost:5050\n"
    );
    assert!(read(&env.work(), "kind.yaml").contains("containerdConfigPatches"));
    assert_eq!(read(&env.work(), "k8s/kustomization.yaml"), KUSTOMIZATION);
}

/// The kustomization lists the user's manifests: `--force` regenerates what init owns and
/// leaves it byte for byte (mode included), in the default place and below --kustomization-file.
#[test]
fn force_keeps_the_users_kustomization_byte_for_byte() {
    let mine = concat!(
        "# the apps of this cluster\n",
        "apiVersion: kustomize.config.k8s.io/v1beta1\n",
        "kind: Kustomization\n",
        "namespace: apps\n",
        "resources:\n",
        "  - podinfo.yaml\n",
        "  - ../base\n",
        "commonLabels:\n",
        "  team: platform\n",
    );
    for (args, kustomization) in [
        (vec![], "k8s/kustomization.yaml"),
        (
            vec!["-s", "deploy", "--kustomization-file", "overlays/dev"],
            "deploy/overlays/dev/kustomization.yaml",
        ),
    ] {
        let env = TestEnv::new();
        let path = env.write(kustomization, mine);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let kept_entry = |env: &TestEnv| env.tree_hash()[&format!("work/{kustomization}")].clone();
        let before = kept_entry(&env);
        let mut all = vec!["--force", "-g", "Flux"];
        all.extend(&args);
        let output = init(&env, &all);
        assert_success(&output);
        assert_eq!(read(&env.work(), kustomization), mine, "{args:?}");
        assert_eq!(kept_entry(&env), before, "{args:?}: content and mode");
        assert_eq!(
            stdout_lines(&output)[2],
            format!(
                "kept {kustomization} (exists; --force does not overwrite a kustomization: it lists your manifests)"
            ),
            "{args:?}"
        );
        assert!(read(&env.work(), "ksail.yaml").contains("gitOpsEngine: Flux"));
    }
}

#[test]
fn directory_creates_the_project_with_ordinary_modes() {
    let (env, output) = init_ok(&["--directory", "new/project", "-s", "manifests"]);
    assert_eq!(
        stdout_lines(&output),
        [
            "created new/project/ksail.yaml",
            "created new/project/kind.yaml",
            "created new/project/manifests/kustomization.yaml",
            "initialized project in new/project",
        ]
    );
    let project = env.work().join("new/project");
    assert_eq!(
        read(&project, "ksail.yaml"),
        header() + "spec:\n  workload:\n    sourceDirectory: manifests\n"
    );
    // The test process's umask may clear bits, never add them.
    let mode = |rel: &str| {
        fs::metadata(project.join(rel))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    for file in ["ksail.yaml", "kind.yaml", "manifests/kustomization.yaml"] {
        assert_eq!(mode(file) & !0o644, 0, "{file}");
        assert_eq!(mode(file) & 0o600, 0o600, "{file}");
    }
    for dir in ["", "manifests"] {
        assert_eq!(mode(dir) & !0o755, 0, "{dir}");
        assert_eq!(mode(dir) & 0o700, 0o700, "{dir}");
    }
}

/// `--output` is the result format, as for every other command: `json` is no directory name.
#[test]
fn output_json_prints_one_document_and_creates_no_json_directory() {
    let (env, output) = init_ok(&["--output", "json", "--directory", "proj"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {stdout}"));
    assert_eq!(
        document,
        serde_json::json!({
            "command": "cluster init",
            "status": "succeeded",
            "exitCode": 0,
            "error": null,
            "directory": "proj",
            "files": [
                {"path": "proj/ksail.yaml", "action": "created"},
                {"path": "proj/kind.yaml", "action": "created"},
                {"path": "proj/k8s/kustomization.yaml", "action": "created"},
            ],
        })
    );
    assert_eq!(
        tree(&env.work()),
        [
            "proj",
            "proj/k8s",
            "proj/k8s/kustomization.yaml",
            "proj/kind.yaml",
            "proj/ksail.yaml"
        ]
    );
}

#[test]
fn output_json_reports_a_bad_flag_in_the_document() {
    let env = TestEnv::new();
    let before = env.tree_hash();
    let output = init(&env, &["--output", "json", "--name", "Bad_Name"]);
    assert_eq!(output.status.code(), Some(2));
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document on stdout");
    assert_eq!(document["status"], "invalid");
    assert_eq!(document["exitCode"], 2);
    assert_eq!(document["files"], serde_json::json!([]));
    assert_error_line(&output, "flag --name: invalid metadata.name");
    assert_eq!(env.tree_hash(), before);
}

#[test]
fn kustomization_file_and_distribution_config_paths() {
    let (env, output) = init_ok(&[
        "--kustomization-file",
        "overlays/dev",
        "--distribution-config",
        "clusters/kind-dev.yaml",
    ]);
    assert_eq!(
        stdout_lines(&output),
        [
            "created ksail.yaml",
            "created clusters/kind-dev.yaml",
            "created k8s/overlays/dev/kustomization.yaml",
            "initialized project in .",
        ]
    );
    assert_eq!(
        read(&env.work(), "ksail.yaml"),
        header()
            + "spec:\n  cluster:\n    distributionConfig: clusters/kind-dev.yaml\n  workload:\n    kustomizationFile: overlays/dev\n"
    );
    assert!(!env.work().join("k8s/kustomization.yaml").exists());
}

#[test]
fn kubeconfig_and_context_are_written_to_the_connection() {
    let (env, _) = init_ok(&["--kubeconfig", "~/.kube/dev", "--context", "kind-dev"]);
    assert_eq!(
        read(&env.work(), "ksail.yaml"),
        header()
            + "spec:\n  cluster:\n    connection:\n      kubeconfig: ~/.kube/dev\n      context: kind-dev\n"
    );
}

#[test]
fn local_registry_placeholders_are_written_unexpanded() {
    let env = TestEnv::new();
    let output = env
        .ksail([
            "cluster",
            "init",
            "--local-registry",
            "ci:${GHCR_TOKEN}@ghcr.io/acme/manifests",
        ])
        .env("GHCR_TOKEN", "s3cr3t")
        .output()
        .expect("run ksail");
    assert_success(&output);
    let text = read(&env.work(), "ksail.yaml");
    assert!(
        text.ends_with("      registry: ci:${GHCR_TOKEN}@ghcr.io/acme/manifests\n"),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"));
    // The password is already a reference: nothing to replace, nothing to say.
    support::assert_no_warning(&output);
    // An external registry gets no containerd entry of its own; the certs.d patch is there for
    // the pull-through mirrors.
    let kind = read(&env.work(), "kind.yaml");
    assert!(!kind.contains("ghcr.io/acme"), "{kind}");
}

/// A literal password on the command line is not written to ksail.yaml (which gets committed):
/// the file reads it from `${KSAIL_REGISTRY_PASSWORD}`, and one line says to set that variable.
#[test]
fn a_literal_registry_password_becomes_a_variable_reference() {
    for verbosity in [None, Some("-vvv")] {
        let env = TestEnv::new();
        let mut args: Vec<&str> = verbosity.into_iter().collect();
        args.extend([
            "cluster",
            "init",
            "--local-registry",
            "ci:hunter2@127.0.0.1:9/acme/manifests",
        ]);
        let output = env.ksail(&args).output().expect("run ksail");
        assert_success(&output);
        let text = read(&env.work(), "ksail.yaml");
        assert!(
            text.ends_with(
                "      registry: ci:${KSAIL_REGISTRY_PASSWORD}@127.0.0.1:9/acme/manifests\n"
            ),
            "{text}"
        );
        support::assert_no_secret(&output, "hunter2");
        assert_eq!(
            support::timestamped_warnings(&output),
            [
                "warning: the registry password is not written to ksail.yaml; it reads ${KSAIL_REGISTRY_PASSWORD} instead: set KSAIL_REGISTRY_PASSWORD to the password before ksail cluster create or ksail workload push"
            ],
            "{verbosity:?}"
        );
        // The file works: without the variable the push stops before sending anything (exit 2,
        // naming it); with it, the credentials are complete and the push tries the registry
        // (nothing listens on port 9: exit 1).
        let push = |password: Option<&str>| {
            let mut command = env.ksail(["workload", "push"]);
            command.env("KSAIL_TEST_RETRY_ATTEMPTS", "1");
            if let Some(password) = password {
                command.env("KSAIL_REGISTRY_PASSWORD", password);
            }
            command.output().expect("run ksail workload push")
        };
        let unset = push(None);
        assert_eq!(unset.status.code(), Some(2), "{}", stderr_text(&unset));
        assert!(
            stderr_text(&unset).contains("KSAIL_REGISTRY_PASSWORD"),
            "{}",
            stderr_text(&unset)
        );
        let set = push(Some("hunter2"));
        assert_eq!(set.status.code(), Some(1), "{}", stderr_text(&set));
        support::assert_no_secret(&set, "hunter2");
    }

    // Only when ksail.yaml is written: a skipped file gets no advice about its content.
    let env = TestEnv::new();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\n",
    );
    let output = init(&env, &["--local-registry", "ci:hunter2@ghcr.io/acme"]);
    assert_success(&output);
    support::assert_no_warning(&output);
}

#[test]
fn an_existing_ksail_yaml_and_the_environment_are_not_read() {
    let env = TestEnv::new();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    distribution: K3s\n",
    );
    let output = env
        .ksail(["cluster", "init", "--directory", "fresh"])
        .env("KSAIL_SPEC_CLUSTER_GITOPSENGINE", "Flux")
        .output()
        .expect("run ksail");
    assert_success(&output);
    assert_eq!(read(&env.work().join("fresh"), "ksail.yaml"), header());
    assert!(env.work().join("fresh/kind.yaml").exists());
}

// testing.md B17: validation fails before anything is written.
#[test]
fn b17_bad_name_exits_2_and_writes_nothing() {
    let env = TestEnv::new();
    let before = env.tree_hash();
    let output = init(&env, &["--name", "Bad_Name"]);
    assert_eq!(output.status.code(), Some(2));
    assert_error_line(&output, "flag --name: invalid metadata.name \"Bad_Name\"");
    assert!(output.stdout.is_empty());
    assert_eq!(env.tree_hash(), before);

    let output = init(&env, &["--name", "Bad_Name", "--directory", "not/yet"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        !env.work().join("not").exists(),
        "the project directory was created"
    );
    assert_eq!(env.tree_hash(), before);
}

// testing.md B18.
#[test]
fn b18_talos_exits_2_and_writes_nothing() {
    let env = TestEnv::new();
    env.write("keep.txt", "x");
    let before = env.tree_hash();
    let output = init(&env, &["-d", "Talos"]);
    assert_eq!(output.status.code(), Some(2));
    assert_error_line(
        &output,
        "flag --distribution: distribution Talos is not supported by ksail cluster commands; supported: Vanilla, K3s",
    );
    assert_eq!(env.tree_hash(), before);
}

#[test]
fn other_invalid_flags_exit_2_and_write_nothing() {
    for (args, phrase) in [
        (
            vec!["--local-registry", "https://localhost:5050"],
            "flag --local-registry: a registry string has no scheme",
        ),
        (
            vec!["--kustomization-file", "/abs"],
            "flag --kustomization-file: \"/abs\" is an absolute path",
        ),
        (
            vec!["--kustomization-file", "a/../b"],
            "flag --kustomization-file: \"a/../b\" has a '..' component",
        ),
        (
            vec!["-g", "Fluxx"],
            "flag --gitops-engine: unknown value \"Fluxx\"",
        ),
        (vec!["-d", "EKS"], "distribution EKS is not supported"),
        // ksail (Go) took the project directory as `--output <dir>`: the error names its flag.
        (
            vec!["--output", "new/project"],
            "error: invalid value 'new/project' for '--output <FMT>': the result format is text or json; if new/project is the project directory, pass --directory new/project; run ksail cluster init --help for usage",
        ),
    ] {
        let env = TestEnv::new();
        let mut all = args.clone();
        all.extend(["--directory", "proj"]);
        let before = env.tree_hash();
        let output = init(&env, &all);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_error_line(&output, phrase);
        assert_eq!(stderr_lines(&output).len(), 1, "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert_eq!(env.tree_hash(), before, "{args:?}");
    }
}

// The README workflow: init, then a bare push targets the local registry the init wrote.
#[test]
fn a_bare_push_after_the_seed_init_targets_localhost_5050() {
    let env = TestEnv::new();
    assert_success(&init(
        &env,
        &[
            "--gitops-engine",
            "Flux",
            "--local-registry",
            "localhost:5050",
        ],
    ));
    let output = env
        .ksail(["workload", "push", "--output", "json"])
        .output()
        .expect("run ksail workload push");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let document: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("one JSON document on stdout ({e}): {stdout}"));
    assert_eq!(
        document["url"], "oci://localhost:5050/k8s:dev",
        "{document}"
    );
    assert_eq!(
        document["sync"],
        serde_json::json!({"url": "oci://kind-local-registry:5000/k8s", "tag": "dev"}),
        "the cluster name comes from the generated kind.yaml"
    );
}
