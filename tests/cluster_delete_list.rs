//! `ksail cluster delete` and `ksail cluster list` through the real binary against the fake
//! `kind`, `k3d` and `docker` (cluster.md#cluster-delete, cluster.md#cluster-list, testing.md
//! "Cluster tests").

mod support;

use std::process::Output;

use serde_json::{Value, json};
use support::fake_tools::{FakeCluster, FakeContainer, FakeState, FakeTools};
use support::{
    TestEnv, assert_error_line, assert_success, stderr_lines, stderr_text, stdout_lines,
    stdout_text,
};

const KIND_REGISTRY: &str = "kind-local-registry";
const DOCKER_DOWN: &str = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";

fn run(env: &TestEnv, args: &[&str]) -> Output {
    env.ksail(args).output().expect("run ksail")
}

/// The stderr line that ends with `text` (after the timestamp and the step symbol).
fn assert_line_ending(output: &Output, text: &str) {
    assert!(
        stderr_lines(output).iter().any(|line| line.ends_with(text)),
        "no stderr line ends with {text:?}:\n{}",
        stderr_text(output)
    );
}

/// No `docker rm` was run: the registry container is left alone.
fn assert_no_registry_removal(fakes: &FakeTools) {
    let calls = fakes.call_lines();
    assert!(
        !calls.iter().any(|line| line.starts_with("docker rm")),
        "{calls:?}"
    );
}

/// A fresh project (a ksail.yaml of defaults) with the fake tools installed over `state`.
fn with_fakes(state: FakeState) -> (TestEnv, FakeTools) {
    let env = project();
    let fakes = FakeTools::install(&env, state);
    (env, fakes)
}

/// A directory with a ksail.yaml of defaults: the project of cluster `kind`.
fn project() -> TestEnv {
    let env = TestEnv::new();
    env.write("ksail.yaml", DEFAULT_PROJECT);
    env
}

/// The calls before `kind delete cluster`: is there a cluster, and does a node carry the mark.
const KIND_OWNER_CHECK: [&str; 4] = [
    "docker info",
    "kind get clusters",
    "kind get nodes --name kind",
    "docker exec kind-control-plane cat /etc/ksail/cluster",
];

const DEFAULT_PROJECT: &str = "apiVersion: ksail.io/v1alpha1\nkind: Cluster\n";

/// Runs `ksail <args>` in a fresh project over `state`, which must succeed.
fn succeeded(state: FakeState, args: &[&str]) -> (TestEnv, FakeTools, Output) {
    let (env, fakes) = with_fakes(state);
    let output = run(&env, args);
    assert_success(&output);
    (env, fakes, output)
}

fn kind_with_registry() -> FakeState {
    FakeState::new()
        .with_cluster(FakeCluster::kind("kind"))
        .with_container(
            KIND_REGISTRY,
            FakeContainer::registry(Some("kind"), "127.0.0.1", 5050),
        )
}

// ---------------------------------------------------------------------------- cluster delete

#[test]
fn delete_runs_the_golden_argv_sequence() {
    let (env, fakes, output) = succeeded(kind_with_registry(), &["cluster", "delete"]);
    assert_eq!(
        fakes.call_lines(),
        [
            &KIND_OWNER_CHECK[..],
            &[
                "kind delete cluster --name kind",
                "docker inspect kind-local-registry",
                "docker rm --force --volumes kind-local-registry",
            ],
        ]
        .concat()
    );
    // kind gets KUBECONFIG = the first resolved kubeconfig (here the default ~/.kube/config).
    let delete_call = &fakes.calls()[4];
    let expected_kubeconfig = env.home().join(".kube/config");
    assert_eq!(
        delete_call.kubeconfig.as_deref(),
        Some(expected_kubeconfig.to_str().expect("utf-8 path"))
    );
    assert_line_ending(&output, "cluster kind: deleted");
    assert_line_ending(&output, "registry kind-local-registry: removed");
    assert_eq!(
        stdout_text(&output),
        "",
        "delete prints no result on stdout"
    );
    let state = fakes.state();
    assert!(state.clusters.is_empty());
    assert!(!state.containers.contains_key(KIND_REGISTRY));
}

#[test]
fn delete_k3s_uses_k3d_the_configured_name_and_the_kubeconfig_flag() {
    let env = TestEnv::new();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: dev\nspec:\n  cluster:\n    distribution: K3s\n",
    );
    let kubeconfig = env.write(
        "kube/config.json",
        json!({
            "apiVersion": "v1", "kind": "Config", "current-context": "k3d-dev",
            "clusters": [{"name": "k3d-dev", "cluster": {"server": "https://127.0.0.1:6443"}}],
            "users": [{"name": "k3d-dev", "user": {}}],
            "contexts": [{"name": "k3d-dev", "context": {"cluster": "k3d-dev", "user": "k3d-dev"}}],
        })
        .to_string(),
    );
    let other = env.work().join("kube/other.yaml");
    let fakes = FakeTools::install(&env, FakeState::new().with_cluster(FakeCluster::k3d("dev")));

    let list = format!("{}:{}", kubeconfig.display(), other.display());
    let output = run(&env, &["cluster", "delete", "--kubeconfig", &list]);

    assert_success(&output);
    assert_eq!(
        fakes.call_lines(),
        [
            "docker info",
            "k3d cluster list -o json",
            "k3d node list -o json",
            "docker exec k3d-dev-server-0 cat /etc/ksail/cluster",
            // ksail's containers leave the network first (here only the node is in it).
            "docker network inspect k3d-dev",
            "docker inspect k3d-dev-server-0",
            "k3d cluster delete dev",
            "docker inspect dev-local-registry",
            "docker network inspect k3d-dev",
        ]
    );
    assert_eq!(
        fakes.calls()[6].kubeconfig.as_deref(),
        kubeconfig.to_str(),
        "only the first file of the list"
    );
    assert_line_ending(&output, "cluster dev: deleted");
    assert_line_ending(&output, "registry dev-local-registry: not found");
    // k3d removed its context from that file.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).expect("kubeconfig"))
            .expect("JSON kubeconfig");
    assert_eq!(written["contexts"], json!([]));
}

#[test]
fn delete_of_an_absent_cluster_exits_0() {
    let (_env, fakes, output) =
        succeeded(FakeState::new(), &["cluster", "delete", "--name", "ghost"]);
    assert_line_ending(&output, "cluster ghost: not found (nothing to delete)");
    assert_line_ending(&output, "registry ghost-local-registry: not found");
    assert_eq!(
        fakes.call_lines(),
        [
            "docker info",
            "kind get clusters",
            "docker inspect ghost-local-registry"
        ]
    );
}

#[test]
fn delete_leaves_an_unlabelled_container_alone_with_a_warning() {
    let env = project();
    let fakes = FakeTools::install(
        &env,
        FakeState::new()
            .with_cluster(FakeCluster::kind("kind"))
            .with_container(
                KIND_REGISTRY,
                FakeContainer::registry(None, "127.0.0.1", 5050),
            ),
    );

    let output = run(&env, &["cluster", "delete"]);

    assert_success(&output);
    let warning = stderr_lines(&output)
        .into_iter()
        .find(|line| line.contains("warning: "))
        .unwrap_or_else(|| panic!("no warning:\n{}", stderr_text(&output)));
    assert!(
        warning.contains("kind-local-registry") && warning.contains("io.ksail.registry"),
        "{warning}"
    );
    assert_no_registry_removal(&fakes);
    assert!(fakes.state().containers.contains_key(KIND_REGISTRY));
}

#[test]
fn delete_twice_succeeds_both_times() {
    let (env, fakes) = with_fakes(kind_with_registry());

    let first = run(&env, &["cluster", "delete"]);
    let second = run(&env, &["cluster", "delete"]);

    assert_success(&first);
    assert_success(&second);
    assert_line_ending(&second, "cluster kind: not found (nothing to delete)");
    assert_line_ending(&second, "registry kind-local-registry: not found");
    let deletes = fakes
        .call_lines()
        .into_iter()
        .filter(|line| line.starts_with("kind delete") || line.starts_with("docker rm"))
        .count();
    assert_eq!(
        deletes, 2,
        "one cluster delete and one rm, both in the first run"
    );
}

/// What the error line of a refused run is.
enum ErrorLine {
    /// The one error line contains this ([`assert_error_line`]).
    Contains(&'static str),
    /// The last stderr line is exactly this.
    Is(String),
}

/// A `cluster delete` refused before it deletes anything.
struct Refused {
    name: &'static str,
    /// ksail.yaml below the envelope, if the case writes one.
    body: Option<&'static str>,
    args: &'static [&'static str],
    /// Scripts or removes fake tools before the run.
    tools: fn(&FakeTools),
    code: i32,
    error: ErrorLine,
    /// The tool calls the run makes; a run that calls none changes no file either.
    calls: &'static [&'static str],
}

fn refusals() -> Vec<Refused> {
    let untouched: fn(&FakeTools) = |_| {};
    vec![
        // B-style: an unsupported distribution exits 2 before any tool runs and changes nothing
        // (config.md "Keys that load but are not used").
        Refused {
            name: "distribution Talos",
            body: Some("spec:\n  cluster:\n    distribution: Talos\n"),
            args: &[],
            tools: untouched,
            code: 2,
            error: ErrorLine::Contains(
                "ksail.yaml:5:19: spec.cluster.distribution: distribution Talos is not supported by ksail cluster commands; supported: Vanilla, K3s",
            ),
            calls: &[],
        },
        // config.md "Keys that load but are not used": errors for create, update and delete.
        Refused {
            name: "flux verify",
            body: Some("spec:\n  workload:\n    flux:\n      verify:\n        provider: cosign\n"),
            args: &[],
            tools: untouched,
            code: 2,
            error: ErrorLine::Contains(
                "spec.workload.flux.verify is not supported by ksail cluster commands",
            ),
            calls: &[],
        },
        Refused {
            name: "another provider",
            body: Some("spec:\n  cluster:\n    provider: Hetzner\n"),
            args: &[],
            tools: untouched,
            code: 2,
            error: ErrorLine::Contains(
                "spec.cluster.provider: \"Hetzner\" is not supported by ksail cluster commands; supported: Docker",
            ),
            calls: &[],
        },
        // In a directory without a ksail.yaml the default name `kind` could be anyone's cluster.
        Refused {
            name: "no ksail.yaml and no --name",
            body: None,
            args: &[],
            tools: untouched,
            code: 2,
            error: ErrorLine::Contains(
                "cannot delete a cluster: there is no ksail.yaml here and no --name, so it is unknown which cluster is this project's; run ksail cluster delete in the project directory, or pass --name",
            ),
            calls: &[],
        },
        Refused {
            name: "a bad name",
            body: None,
            args: &["--name", "Bad_Name"],
            tools: untouched,
            code: 2,
            error: ErrorLine::Contains("Bad_Name"),
            calls: &[],
        },
        Refused {
            name: "kind is missing: exit 1 with the install hint",
            body: Some(""),
            args: &[],
            tools: |fakes| fakes.uninstall("kind"),
            code: 1,
            error: ErrorLine::Is(
                "error: kind is not installed or not on PATH; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation".to_string(),
            ),
            calls: &["docker info"],
        },
        Refused {
            name: "docker info fails: exit 1 with the reason",
            body: Some(""),
            args: &[],
            tools: |fakes| {
                fakes.script(&["docker", "info"], 1, "", &format!("ERROR: {DOCKER_DOWN}\n"));
            },
            code: 1,
            error: ErrorLine::Is(format!(
                "error: Docker is not available: docker info failed: {DOCKER_DOWN}; start Docker (or install it from https://docs.docker.com/get-docker/)"
            )),
            calls: &["docker info"],
        },
    ]
}

/// Each refusal in a fresh project with a kind cluster and its registry; a failure names the
/// case.
#[test]
fn refused_deletes_exit_with_their_error_before_deleting_anything() {
    for case in refusals() {
        eprintln!("case: {}", case.name);
        let env = TestEnv::new();
        if let Some(body) = case.body {
            env.write(
                "ksail.yaml",
                format!("apiVersion: ksail.io/v1alpha1\nkind: Cluster\n{body}"),
            );
        }
        let fakes = FakeTools::install(&env, kind_with_registry());
        (case.tools)(&fakes);
        let before = env.tree_hash();

        let output = run(&env, &[&["cluster", "delete"], case.args].concat());

        assert_eq!(
            output.status.code(),
            Some(case.code),
            "{}: {}",
            case.name,
            stderr_text(&output)
        );
        match &case.error {
            ErrorLine::Contains(phrase) => assert_error_line(&output, phrase),
            ErrorLine::Is(line) => {
                assert_eq!(stderr_lines(&output).last(), Some(line), "{}", case.name)
            }
        }
        assert_eq!(fakes.call_lines(), case.calls, "{}", case.name);
        if case.calls.is_empty() {
            assert_eq!(env.tree_hash(), before, "{}", case.name);
        }
        let mut after = fakes.state();
        after.scripts.clear();
        assert_eq!(after, kind_with_registry(), "{}", case.name);
    }
}

/// A cluster made with kind directly (no ksail mark in its nodes) is not deleted, not even when
/// named: the error says whose it is and how to delete it if it is yours.
#[test]
fn a_cluster_ksail_did_not_create_is_left_alone() {
    let foreign = FakeState::new()
        .with_foreign_cluster(FakeCluster::kind("kind"))
        .with_container(
            KIND_REGISTRY,
            FakeContainer::registry(Some("kind"), "127.0.0.1", 5050),
        );
    for args in [&[][..], &["--name", "kind"][..]] {
        let (env, fakes) = with_fakes(foreign.clone());

        let output = run(&env, &[&["cluster", "delete"], args].concat());

        assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
        assert_error_line(
            &output,
            "cluster kind was not created by ksail cluster create (no node carries the mark /etc/ksail/cluster), so ksail does not delete it; if it is yours to delete, run kind delete cluster --name kind",
        );
        assert_eq!(fakes.call_lines(), KIND_OWNER_CHECK);
        assert_eq!(fakes.state(), foreign, "nothing deleted");
    }
}

/// K3s: the registry leaves the `k3d-<cluster>` network before k3d deletes the cluster, and the
/// network ksail made for it is removed after: nothing is left behind.
#[test]
fn delete_k3s_leaves_no_network_behind() {
    let env = TestEnv::new();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: dev\nspec:\n  cluster:\n    distribution: K3s\n",
    );
    let mut registry = FakeContainer::registry(Some("dev"), "127.0.0.1", 5050);
    registry.networks.push("k3d-dev".into());
    let mut cluster = FakeCluster::k3d("dev");
    cluster.network_external = true;
    let mut state = FakeState::new()
        .with_cluster(cluster)
        .with_container("dev-local-registry", registry);
    state.network_labels.insert(
        "k3d-dev".into(),
        [("io.ksail.network".to_string(), "dev".to_string())].into(),
    );
    let fakes = FakeTools::install(&env, state);

    let output = run(&env, &["cluster", "delete"]);

    assert_success(&output);
    let calls = fakes.call_lines();
    let position = |line: &str| {
        calls
            .iter()
            .position(|call| call == line)
            .unwrap_or_else(|| panic!("no call {line:?} in {calls:?}"))
    };
    assert!(
        position("docker network disconnect k3d-dev dev-local-registry")
            < position("k3d cluster delete dev")
    );
    assert!(
        position("docker rm --force --volumes dev-local-registry")
            < position("docker network rm k3d-dev")
    );
    assert_line_ending(&output, "network k3d-dev: removed");
    let after = fakes.state();
    assert!(after.networks.is_empty(), "{:?}", after.networks);
    assert!(after.containers.is_empty(), "{:?}", after.containers);
}

#[test]
fn a_failing_kind_delete_names_the_command_and_its_stderr() {
    let (env, fakes) = with_fakes(kind_with_registry());
    let stderr: String = (1..=25).map(|i| format!("detail {i}\n")).collect();
    fakes.script(&["kind", "delete", "cluster"], 1, "", &stderr);

    let output = run(&env, &["cluster", "delete"]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert_error_line(
        &output,
        "kind delete cluster --name kind failed (exit code 1): detail 6 detail 7",
    );
    let last = stderr_lines(&output).last().cloned().unwrap_or_default();
    assert!(
        !last.contains("detail 5 ") && last.contains("detail 25"),
        "{last}"
    );
    assert_line_ending(&output, "cluster kind: delete failed");
    // The registry is left alone when the cluster could not be deleted.
    assert_no_registry_removal(&fakes);
}

// ------------------------------------------------------------------------------ cluster list

/// [`kind_with_registry`] and a k3d cluster `dev`.
fn two_clusters() -> FakeState {
    kind_with_registry().with_cluster(FakeCluster::k3d("dev"))
}

#[test]
fn list_prints_a_table_sorted_by_name() {
    let (_env, fakes, output) = succeeded(two_clusters(), &["cluster", "list"]);
    // The spec's golden layout; rows in name order ("sorted by name").
    assert_eq!(
        stdout_text(&output),
        "NAME         DISTRIBUTION  REGISTRY\n\
         dev          K3s           —\n\
         kind         Vanilla       kind-local-registry (running, localhost:5050)\n"
    );
    assert_eq!(
        fakes.call_lines(),
        [
            "kind get clusters",
            "k3d cluster list -o json",
            "docker inspect dev-local-registry",
            "docker inspect kind-local-registry",
        ]
    );
}

#[test]
fn list_shows_a_stopped_registry() {
    let env = TestEnv::new();
    FakeTools::install(
        &env,
        FakeState::new()
            .with_cluster(FakeCluster::kind("kind"))
            .with_container(
                KIND_REGISTRY,
                FakeContainer::registry(Some("kind"), "127.0.0.1", 5050).stopped(),
            ),
    );

    let output = run(&env, &["cluster", "list"]);

    assert_success(&output);
    assert_eq!(
        stdout_lines(&output)[1],
        "kind         Vanilla       kind-local-registry (stopped, localhost:5050)"
    );
}

#[test]
fn list_json_follows_the_spec_document() {
    let env = TestEnv::new();
    FakeTools::install(&env, two_clusters());

    let output = run(&env, &["cluster", "list", "--output", "json"]);

    assert_success(&output);
    let document: Value = serde_json::from_str(&stdout_text(&output)).expect("one JSON document");
    assert_eq!(
        document,
        json!({
            "command": "cluster list",
            "status": "succeeded",
            "exitCode": 0,
            "error": null,
            "clusters": [
                {"name": "dev", "distribution": "K3s", "registry": null},
                {"name": "kind", "distribution": "Vanilla", "registry": {
                    "name": "kind-local-registry", "state": "running", "hostPort": 5050}},
            ],
        })
    );
}

#[test]
fn list_without_clusters_says_so() {
    let env = TestEnv::new();
    FakeTools::install(&env, FakeState::new());

    let output = run(&env, &["cluster", "list"]);

    assert_success(&output);
    assert_eq!(stdout_text(&output), "No clusters found.\n");

    let json_output = run(&env, &["cluster", "list", "--output", "json"]);
    let document: Value = serde_json::from_str(&stdout_text(&json_output)).expect("JSON");
    assert_eq!(document["clusters"], json!([]));
}

#[test]
fn list_skips_a_tool_that_is_not_installed_silently() {
    let (env, fakes) = with_fakes(two_clusters());
    fakes.uninstall("k3d");

    let output = run(&env, &["cluster", "list"]);

    assert_success(&output);
    assert_eq!(
        stdout_lines(&output),
        [
            "NAME         DISTRIBUTION  REGISTRY",
            "kind         Vanilla       kind-local-registry (running, localhost:5050)",
        ]
    );
    assert_eq!(stderr_text(&output), "", "skipped silently");

    fakes.uninstall("kind");
    let neither = run(&env, &["cluster", "list"]);
    assert_success(&neither);
    assert_eq!(stdout_text(&neither), "No clusters found.\n");
}

#[test]
fn list_warns_about_a_failing_tool_when_the_other_answers() {
    let (env, fakes) = with_fakes(two_clusters());
    fakes.script(
        &["k3d", "cluster", "list"],
        1,
        "",
        "FATA[0000] runtime broke\n",
    );

    let output = run(&env, &["cluster", "list"]);

    assert_success(&output);
    assert_eq!(stdout_lines(&output).len(), 2, "{}", stdout_text(&output));
    assert!(
        stderr_lines(&output).iter().any(|line| line
            .contains("warning: k3d cluster list -o json failed")
            && line.contains("runtime broke")),
        "{}",
        stderr_text(&output)
    );
}

#[test]
fn list_fails_when_both_tools_fail() {
    let (env, fakes) = with_fakes(two_clusters());
    fakes.script(&["kind", "get", "clusters"], 1, "", "ERROR: kind broke\n");
    fakes.script(&["k3d", "cluster", "list"], 1, "", "FATA[0000] k3d broke\n");

    let output = run(&env, &["cluster", "list", "--output", "json"]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert_error_line(&output, "cannot list clusters: ");
    let document: Value = serde_json::from_str(&stdout_text(&output)).expect("one JSON document");
    assert_eq!(document["status"], "failed");
    assert_eq!(document["exitCode"], 1);
    let error = document["error"].as_str().expect("error text");
    assert!(
        error.contains("kind broke") && error.contains("k3d broke"),
        "{error}"
    );
}

// ------------------------------------------------- the fakes themselves (used by create tests)

/// Runs a fake directly, as ksail would, with `KUBECONFIG` and optional stdin.
fn fake(env: &TestEnv, argv: &[&str], kubeconfig: &str, stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env.bin().join(argv[0]))
        .args(&argv[1..])
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}", env.bin().display(), support::env::SYSTEM_PATH),
        )
        .env("HOME", env.home())
        .env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the fake");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("fake finishes")
}

#[test]
fn fake_kind_create_records_the_cluster_and_merges_the_kubeconfig() {
    let env = TestEnv::new();
    let fakes = FakeTools::install(
        &env,
        FakeState::new().with_kubeconfig_server("http://127.0.0.1:4321"),
    );
    let config = env.write("kind.yaml", "kind: Cluster\nname: kind\n");
    let kubeconfig = env.write(
        "kubeconfig",
        json!({"apiVersion": "v1", "kind": "Config", "current-context": "other",
            "clusters": [{"name": "other", "cluster": {"server": "https://other"}}],
            "users": [], "contexts": [{"name": "other", "context": {"cluster": "other"}}]})
        .to_string(),
    );
    let kc = kubeconfig.to_str().expect("utf-8");

    let create = [
        "kind",
        "create",
        "cluster",
        "--name",
        "kind",
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let created = fake(&env, &create, kc, None);
    assert!(created.status.success(), "{}", stderr_text(&created));
    let again = fake(&env, &create, kc, None);
    assert_eq!(
        again.status.code(),
        Some(1),
        "a second create fails as kind does"
    );

    let state = fakes.state();
    let cluster = state.cluster("kind", "Vanilla").expect("recorded");
    assert_eq!(
        cluster.config.as_deref(),
        Some("kind: Cluster\nname: kind\n")
    );
    assert!(state.networks.contains(&"kind".to_string()));
    assert!(state.containers["kind-control-plane"].running);
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(&kubeconfig).expect("read")).expect("JSON");
    assert_eq!(written["current-context"], "kind-kind");
    let contexts: Vec<&str> = written["contexts"]
        .as_array()
        .expect("contexts")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(contexts, ["other", "kind-kind"]);
    assert_eq!(
        written["clusters"][1]["cluster"]["server"],
        "http://127.0.0.1:4321"
    );

    let nodes = fake(&env, &["kind", "get", "nodes", "--name", "kind"], kc, None);
    assert_eq!(stdout_text(&nodes), "kind-control-plane\n");
    assert_eq!(fakes.calls()[0].kubeconfig.as_deref(), Some(kc));
}

#[test]
fn fake_docker_runs_connects_and_writes_node_files() {
    let env = TestEnv::new();
    let fakes = FakeTools::install(
        &env,
        FakeState::new().with_cluster(FakeCluster::kind("kind")),
    );
    let run_registry = [
        "docker",
        "run",
        "-d",
        "--name",
        KIND_REGISTRY,
        "--restart",
        "unless-stopped",
        "-p",
        "127.0.0.1:5050:5000",
        "--label",
        "io.ksail.registry=kind",
        "registry:3",
    ];
    assert!(fake(&env, &run_registry, "", None).status.success());
    assert_eq!(
        fake(&env, &run_registry, "", None).status.code(),
        Some(125),
        "name conflict"
    );

    let inspected = fake(&env, &["docker", "inspect", KIND_REGISTRY], "", None);
    let document: Value = serde_json::from_str(&stdout_text(&inspected)).expect("JSON");
    assert_eq!(document[0]["State"]["Running"], true);
    assert_eq!(document[0]["Config"]["Labels"]["io.ksail.registry"], "kind");
    assert_eq!(
        document[0]["HostConfig"]["PortBindings"]["5000/tcp"][0],
        json!({"HostIp": "127.0.0.1", "HostPort": "5050"})
    );
    let missing = fake(&env, &["docker", "inspect", "nope"], "", None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr_text(&missing).contains("No such object: nope"));

    let connect = ["docker", "network", "connect", "kind", KIND_REGISTRY];
    assert!(fake(&env, &connect, "", None).status.success());
    assert_eq!(
        fake(&env, &connect, "", None).status.code(),
        Some(1),
        "already connected"
    );
    let unknown = fake(
        &env,
        &["docker", "network", "connect", "k3d-x", KIND_REGISTRY],
        "",
        None,
    );
    assert_eq!(unknown.status.code(), Some(1));

    let path = "/etc/containerd/certs.d/localhost:5050/hosts.toml";
    let script = format!("mkdir -p /etc/containerd/certs.d/localhost:5050 && cat > {path}");
    let written = fake(
        &env,
        &[
            "docker",
            "exec",
            "-i",
            "kind-control-plane",
            "sh",
            "-c",
            &script,
        ],
        "",
        Some("[host]\n"),
    );
    assert!(written.status.success(), "{}", stderr_text(&written));
    let read = fake(
        &env,
        &["docker", "exec", "kind-control-plane", "cat", path],
        "",
        None,
    );
    assert_eq!(stdout_text(&read), "[host]\n");
    let state = fakes.state();
    assert_eq!(
        state.containers["kind-control-plane"].files[path],
        "[host]\n"
    );
    assert_eq!(state.containers[KIND_REGISTRY].networks, ["bridge", "kind"]);
    let exec_call = fakes
        .calls()
        .into_iter()
        .find(|call| call.argv.get(2).map(String::as_str) == Some("-i"))
        .expect("exec logged");
    assert_eq!(exec_call.stdin.as_deref(), Some("[host]\n"));

    let unsupported = fake(&env, &["docker", "pull", "x"], "", None);
    assert_eq!(unsupported.status.code(), Some(2), "unknown calls are loud");
}

/// Optional behaviour: `start_registry` backs `docker run … registry:3` with a real
/// `docker-registry`, which `docker rm` stops.
#[test]
fn fake_docker_run_can_start_a_real_registry() {
    let has_registry = support::env::SYSTEM_PATH
        .split(':')
        .any(|dir| std::path::Path::new(dir).join("docker-registry").is_file());
    if !has_registry {
        println!(
            "skipped: fake_docker_run_can_start_a_real_registry: docker-registry not installed"
        );
        return;
    }
    let env = TestEnv::new();
    let fakes = FakeTools::install(
        &env,
        FakeState {
            start_registry: true,
            ..FakeState::new()
        },
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let publish = format!("127.0.0.1:{port}:5000");
    let started = fake(
        &env,
        &[
            "docker",
            "run",
            "-d",
            "--name",
            "r",
            "-p",
            &publish,
            "registry:3",
        ],
        "",
        None,
    );
    assert!(started.status.success(), "{}", stderr_text(&started));
    assert!(fakes.state().containers["r"].pid.is_some());

    let answered = (0..100).any(|_| {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut stream| {
                use std::io::{Read as _, Write as _};
                stream.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
                let mut reply = String::new();
                stream.read_to_string(&mut reply)?;
                Ok(reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok
    });
    assert!(answered, "the registry answers GET /v2/ with 200");

    assert!(
        fake(
            &env,
            &["docker", "rm", "--force", "--volumes", "r"],
            "",
            None
        )
        .status
        .success()
    );
    let stopped = (0..100).any(|_| {
        let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        if !refused {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        refused
    });
    assert!(stopped, "docker rm stops the registry");
}
