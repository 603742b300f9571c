//! `ksail cluster create` and `ksail cluster update` through the real binary (cluster.md
//! "cluster create", "cluster update"; testing.md "Cluster tests", B19), against the fake
//! kind/k3d/docker, the fake API server with its controller simulators, small engine manifests
//! served from files (`KSAIL_*_MANIFEST`) and the real registry for the initial artifact.
//!
//! The registry container is pre-seeded in the fake docker state as ksail would have created it
//! (labelled, running, publishing the real registry's port), so the fake `docker run` never runs
//! and the readiness probe and push reach the real registry.

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use fake_apiserver::simulators::{
    ArgoCd, FluxKustomization, FluxOperator, FluxSource, KsOutcome, SourceOutcome, Workloads,
};
use fake_apiserver::{FakeApiServer, LoggedRequest, ServerOptions};
use serde_json::{Value, json};
use support::fake_tools::{FakeCluster, FakeContainer, FakeState, FakeTools};
use support::{
    Action, FaultScript, Proxy, Registry, TestEnv, assert_error_line, assert_exit, assert_success,
    describe, http, progress_lines, stderr_lines, stderr_text, stdout_lines,
};

const REGISTRY: &str = "kind-local-registry";
const FLUX_GROUP: &str = "fluxcd.controlplane.io";
const MERGE_PATCH: &str = "application/merge-patch+json";

const FLUX_OPERATOR_MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: flux-system
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: fluxinstances.fluxcd.controlplane.io
spec:
  group: fluxcd.controlplane.io
  names:
    kind: FluxInstance
    listKind: FluxInstanceList
    plural: fluxinstances
    singular: fluxinstance
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      subresources:
        status: {}
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: flux-operator
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: flux-operator
spec:
  replicas: 1
  selector:
    matchLabels:
      app: flux-operator
  template:
    metadata:
      labels:
        app: flux-operator
    spec:
      serviceAccountName: flux-operator
      containers:
        - name: manager
          image: ghcr.io/controlplaneio-fluxcd/flux-operator:v0.58.1
"#;

const ARGOCD_MANIFEST: &str = r#"apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-server
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: argocd-server
spec:
  replicas: 1
  selector:
    matchLabels:
      app: argocd-server
  template:
    metadata:
      labels:
        app: argocd-server
    spec:
      containers:
        - name: server
          image: quay.io/argoproj/argocd:v3.6.2
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: argocd-application-controller
spec:
  replicas: 1
  serviceName: argocd-application-controller
  selector:
    matchLabels:
      app: argocd-application-controller
  template:
    metadata:
      labels:
        app: argocd-application-controller
    spec:
      containers:
        - name: controller
          image: quay.io/argoproj/argocd:v3.6.2
"#;

/// The manifest digest of `k8s:<tag>` in the real registry, as a source controller resolves it.
fn registry_resolver(registry: &Registry) -> fake_apiserver::simulators::DigestResolver {
    let host = registry.host_port();
    Arc::new(move |object: &Value| {
        let tag = object
            .pointer("/spec/ref/tag")
            .or_else(|| object.pointer("/spec/source/targetRevision"))
            .and_then(Value::as_str)?
            .to_string();
        let (status, _, digest) = http::fetch_manifest(&host, "k8s", &tag);
        (status == 200).then_some(digest).flatten()
    })
}

/// A [`Rig`] (`flux` or `argocd`) around a registry started as [`require_registry!`] does.
macro_rules! rig {
    ($engine:ident) => {
        Rig::$engine(require_registry!())
    };
}

/// One fake cluster world: fakes, fake API server, the real registry and a project.
struct Rig {
    env: TestEnv,
    server: FakeApiServer,
    tools: FakeTools,
    registry: Registry,
}

impl Rig {
    fn flux(registry: Registry) -> Rig {
        let source = FluxSource::with_resolver(0, registry_resolver(&registry));
        Rig::flux_with(registry, ServerOptions::flux(), source, "Flux")
    }

    /// Flux simulators on a server started with `options`, `engine` in ksail.yaml.
    fn flux_with(
        registry: Registry,
        options: ServerOptions,
        source: Arc<FluxSource>,
        engine: &str,
    ) -> Rig {
        let kustomize = FluxKustomization::new(0);
        Rig::flux_with_kustomize(
            registry,
            options,
            source,
            kustomize,
            engine,
            FluxOperator::new(0),
        )
    }

    /// [`Rig::flux_with`] with this kustomize controller (for scripted outcomes) and this
    /// flux-operator (a slow or a stopped one).
    fn flux_with_kustomize(
        registry: Registry,
        options: ServerOptions,
        source: Arc<FluxSource>,
        kustomize: Arc<FluxKustomization>,
        engine: &str,
        operator: Arc<FluxOperator>,
    ) -> Rig {
        let server = FakeApiServer::start(options);
        server.add_simulator(Workloads::new(0));
        server.add_simulator(operator);
        server.add_simulator(source);
        server.add_simulator(kustomize);
        Rig::with_server(registry, server, engine)
    }

    fn argocd(registry: Registry) -> Rig {
        let server = FakeApiServer::start(ServerOptions::argocd());
        server.add_simulator(Workloads::new(0));
        let argo = ArgoCd::new(0, 0, "sha256:0");
        argo.set_resolver(registry_resolver(&registry));
        server.add_simulator(argo);
        Rig::with_server(registry, server, "ArgoCD")
    }

    fn with_server(registry: Registry, server: FakeApiServer, engine: &str) -> Rig {
        let env = TestEnv::new();
        let state = FakeState::new()
            .with_kubeconfig_server(&server.url())
            .with_container(
                REGISTRY,
                FakeContainer::registry(Some("kind"), "127.0.0.1", registry.port()),
            );
        let tools = FakeTools::install(&env, state);
        env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: {engine}\n    mirrorRegistries: none\n    localRegistry:\n      registry: 127.0.0.1:{}\n",
                registry.port()
            ),
        );
        env.write("flux-operator.yaml", FLUX_OPERATOR_MANIFEST);
        env.write("argocd.yaml", ARGOCD_MANIFEST);
        Rig {
            env,
            server,
            tools,
            registry,
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.env.home().join(".kube").join("config")
    }

    fn ksail(&self, args: &[&str]) -> Output {
        self.ksail_with(args, &[])
    }

    /// [`Rig::ksail`] with more environment variables.
    fn ksail_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.env
            .ksail(args)
            .env(
                "KSAIL_FLUX_OPERATOR_MANIFEST",
                self.env.work().join("flux-operator.yaml"),
            )
            .env("KSAIL_ARGOCD_MANIFEST", self.env.work().join("argocd.yaml"))
            .envs(vars.iter().copied())
            .output()
            .expect("run ksail")
    }

    fn create(&self) -> Output {
        let output = self.ksail(&["cluster", "create", "--timeout", "20s"]);
        assert_success(&output);
        output
    }

    /// The object the server must hold.
    fn object(&self, group: &str, resource: &str, namespace: &str, name: &str) -> Value {
        self.server
            .get_object(group, resource, namespace, name)
            .unwrap_or_else(|| panic!("no {resource} {namespace}/{name}"))
    }

    /// Deletes the FluxInstance `flux-system/flux`, which must exist.
    fn delete_flux_instance(&self) {
        assert!(
            self.server
                .delete_object(FLUX_GROUP, "fluxinstances", "flux-system", "flux"),
            "no FluxInstance to delete"
        );
    }

    /// The FluxInstance `flux-system/flux`, if the server holds it.
    fn flux_instance(&self) -> Option<Value> {
        self.server
            .get_object(FLUX_GROUP, "fluxinstances", "flux-system", "flux")
    }

    /// Sets the workload tag to `v2`, runs `cluster update`, checks that it reports the tag
    /// repaired in place with one merge patch, and returns that write.
    fn update_repairs_the_tag(&self) -> (LoggedRequest, Output) {
        set_tag(self, "v2");
        self.server.clear_requests();
        let output = self.ksail(&["cluster", "update"]);
        assert_success(&output);
        assert_stdout(&output, &["workload tag: dev → v2 (repaired in place)"]);
        let mut writes = self.writes();
        assert_eq!(writes.len(), 1, "one merge patch: {writes:?}");
        assert_eq!(writes[0].method, "PATCH");
        assert_eq!(writes[0].content_type.as_deref(), Some(MERGE_PATCH));
        (writes.remove(0), output)
    }

    /// `cluster update` succeeds and prints only `No changes detected`.
    fn update_finds_no_changes(&self) {
        let output = self.ksail(&["cluster", "update"]);
        assert_success(&output);
        assert_stdout(&output, &["No changes detected"]);
    }

    /// The merge patches among [`Rig::writes`], in order.
    fn merge_patches(&self) -> impl Iterator<Item = LoggedRequest> {
        self.writes()
            .into_iter()
            .filter(|w| w.content_type.as_deref() == Some(MERGE_PATCH))
    }

    fn writes(&self) -> Vec<LoggedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(LoggedRequest::is_write)
            .collect()
    }
}

/// Stdout is exactly `lines`.
#[track_caller]
fn assert_stdout(output: &Output, lines: &[&str]) {
    assert_eq!(stdout_lines(output), lines);
}

fn step_lines(output: &Output) -> Vec<String> {
    progress_lines(output)
        .into_iter()
        .filter(|line| line.starts_with("✓ ") || line.starts_with("– ") || line.starts_with("✗ "))
        .collect()
}

#[test]
fn create_vanilla_flux_runs_the_golden_argv_sequence_and_applies_the_flux_instance() {
    let rig = rig!(flux);
    let port = rig.registry.port();
    rig.env.write(
        "kind.yaml",
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: kind\n",
    );

    let output = rig.create();

    let kind_yaml = rig.env.work().join("kind.yaml");
    let hosts = [
        format!("/etc/containerd/certs.d/localhost:{port}/hosts.toml"),
        "/etc/containerd/certs.d/kind-local-registry:5000/hosts.toml".to_string(),
    ];
    let mut expected = vec![
        "docker info".to_string(),
        format!("docker inspect {REGISTRY}"),
        "kind get clusters".to_string(),
        format!(
            "kind create cluster --name kind --config {}",
            kind_yaml.display()
        ),
        // The ownership mark `cluster delete` checks.
        "kind get nodes --name kind".to_string(),
        "docker exec kind-control-plane cat /etc/ksail/cluster".to_string(),
        "docker exec -i kind-control-plane sh -c mkdir -p /etc/ksail && cat > /etc/ksail/cluster"
            .to_string(),
        format!("docker inspect {REGISTRY}"),
        format!("docker network connect kind {REGISTRY}"),
        "kind get nodes --name kind".to_string(),
    ];
    for path in &hosts {
        expected.push(format!("docker exec kind-control-plane cat {path}"));
        let dir = path.trim_end_matches("/hosts.toml");
        expected.push(format!(
            "docker exec -i kind-control-plane sh -c mkdir -p {dir} && cat > {path}"
        ));
    }
    let lines = rig.unquoted_calls();
    assert_eq!(
        lines,
        expected,
        "stderr:\n{}",
        progress_lines(&output).join("\n")
    );
    let create_call = &rig.tools.calls()[3];
    assert_eq!(
        create_call.kubeconfig.as_deref(),
        Some(rig.kubeconfig().to_str().unwrap())
    );
    let node = &rig.tools.state().containers["kind-control-plane"];
    assert_eq!(
        node.files[&hosts[0]],
        "[host.\"http://kind-local-registry:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    );

    // The FluxInstance golden, with the insecure patch of a local (HTTP) registry.
    let instance = rig.flux_instance().expect("the FluxInstance exists");
    assert_eq!(
        instance["spec"],
        json!({
            "distribution": {
                "version": "2.x",
                "registry": "ghcr.io/fluxcd",
                "artifact": "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:v0.58.1",
            },
            "sync": {
                "kind": "OCIRepository",
                "url": "oci://kind-local-registry:5000/k8s",
                "ref": "dev",
                "path": "./",
                "provider": "generic",
                "interval": "1m",
            },
            "kustomize": {"patches": [{
                "target": {"kind": "OCIRepository", "name": "flux-system"},
                "patch": "- op: add\n  path: /spec/insecure\n  value: true\n",
            }]},
        })
    );

    // Server-side apply with ksail's field manager, forced, CRDs before the rest.
    let applies = rig.server.applies();
    assert!(!applies.is_empty());
    assert!(
        applies
            .iter()
            .all(|apply| apply.field_manager == "ksail" && apply.force)
    );
    let crd = applies
        .iter()
        .position(|a| a.resource == "customresourcedefinitions")
        .expect("the CRD is applied");
    let deployment = applies
        .iter()
        .position(|a| a.resource == "deployments")
        .expect("the Deployment is applied");
    assert!(crd < deployment);
    assert_eq!(applies[deployment].namespace, "flux-system");

    // The empty artifact was pushed to the sync tag.
    let (status, _, digest) = http::fetch_manifest(&rig.registry.host_port(), "k8s", "dev");
    assert_eq!(status, 200);
    let digest = digest.expect("a digest");

    let steps = step_lines(&output);
    let url = format!("oci://127.0.0.1:{port}/k8s:dev");
    let expected_steps = [
        format!("– registry {REGISTRY}: running on 127.0.0.1:{port}"),
        "– mirror registries: skipped (none configured)".to_string(),
        "✓ cluster kind: created".to_string(),
        format!("✓ registry {REGISTRY}: connected to network kind"),
        "✓ registry mirror: configured on 1 node".to_string(),
        "✓ api server: ready (v1.33.1)".to_string(),
        "✓ registry hosting: kube-public/local-registry-hosting applied".to_string(),
        format!("✓ artifact {url}: pushed {}", &digest[..19]),
        "✓ flux-operator 0.58.1: installed".to_string(),
        "✓ FluxInstance flux-system/flux: applied".to_string(),
        "✓ Flux: ready, syncing oci://kind-local-registry:5000/k8s:dev".to_string(),
    ];
    assert_eq!(steps, expected_steps);
    assert_stdout(
        &output,
        &["cluster kind created (Flux, oci://kind-local-registry:5000/k8s:dev)"],
    );
}

#[test]
fn create_without_a_distribution_config_uses_generated_defaults() {
    let rig = rig!(flux);
    let output = rig.create();
    assert!(
        progress_lines(&output)
            .contains(&"kind.yaml not found; using generated defaults".to_string()),
        "{:?}",
        progress_lines(&output)
    );
    let state = rig.tools.state();
    let config = state.cluster("kind", "Vanilla").unwrap().config.clone();
    assert!(
        config
            .unwrap()
            .contains("config_path = \"/etc/containerd/certs.d\""),
        "the generated kind.yaml carries the certs.d patch"
    );
    assert!(!rig.env.work().join("kind.yaml").exists());
}

#[test]
fn create_rerun_makes_no_create_or_run_calls_and_prints_dashes() {
    let rig = rig!(flux);
    rig.create();
    let calls_before = rig.tools.calls().len();
    rig.server.clear_requests();

    let output = rig.create();

    let new_calls: Vec<String> = rig.tools.call_lines()[calls_before..].to_vec();
    assert!(
        new_calls.iter().all(|line| !line.contains(" create")
            && !line.starts_with("docker run")
            && !line.starts_with("docker exec -i")
            && !line.starts_with("docker network connect")
            && !line.starts_with("docker start")),
        "{new_calls:?}"
    );
    let steps = step_lines(&output);
    assert_eq!(steps.len(), 11, "{steps:?}");
    assert!(steps.iter().all(|line| line.starts_with("– ")), "{steps:?}");
    assert!(
        steps.contains(&format!(
            "– artifact oci://127.0.0.1:{}/k8s:dev: exists (kept)",
            rig.registry.port()
        )),
        "{steps:?}"
    );
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    assert_stdout(
        &output,
        &["cluster kind created (Flux, oci://kind-local-registry:5000/k8s:dev)"],
    );
}

#[test]
fn create_keeps_an_existing_artifact() {
    let rig = rig!(flux);
    rig.env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let pushed = rig.ksail(&["workload", "push"]);
    assert_success(&pushed);
    let (_, _, before) = http::fetch_manifest(&rig.registry.host_port(), "k8s", "dev");
    rig.env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: changed\n",
    );

    let output = rig.create();

    let (_, _, after) = http::fetch_manifest(&rig.registry.host_port(), "k8s", "dev");
    assert_eq!(before, after, "create never overwrites the tag");
    assert!(
        step_lines(&output)
            .iter()
            .any(|line| line.starts_with("– artifact ") && line.ends_with(": exists (kept)"))
    );
}

/// What a refused `cluster create` / `cluster update` prints as its last stderr line.
enum Says {
    /// The one error line ([`assert_error_line`]) contains this.
    Line(&'static str),
    /// The last stderr line passes this check.
    Last(fn(&str) -> bool),
}

/// A run refused before it creates anything, in a project without a registry.
struct Refusal {
    name: &'static str,
    state: fn() -> FakeState,
    /// Scripts or removes fake tools before the run.
    tools: fn(&FakeTools),
    ksail_yaml: Option<&'static str>,
    command: &'static str,
    code: i32,
    says: Says,
    /// The fake tool calls the run may have made.
    calls: fn(&[String]) -> bool,
    /// No file changes (the runs that call no tool write no call log).
    tree_kept: bool,
}

const TALOS: &str =
    "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    distribution: Talos\n";
const REGISTRY_5050: &str = "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    localRegistry:\n      registry: localhost:5050\n";

fn untouched(_: &FakeTools) {}

fn no_calls(calls: &[String]) -> bool {
    calls.is_empty()
}

fn only_docker_info(calls: &[String]) -> bool {
    calls == ["docker info"]
}

fn not_supported(last: &str) -> bool {
    last.contains("not supported by ksail cluster commands; supported: Vanilla, K3s")
}

fn refusals() -> Vec<Refusal> {
    vec![
        Refusal {
            name: "create fails when kind is missing",
            state: FakeState::new,
            tools: |tools| tools.uninstall("kind"),
            ksail_yaml: None,
            command: "create",
            code: 1,
            says: Says::Line(
                "error: kind is not installed or not on PATH; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            ),
            calls: only_docker_info,
            tree_kept: false,
        },
        Refusal {
            name: "create fails when docker info fails",
            state: FakeState::new,
            tools: |tools| {
                tools.script(
                    &["docker", "info"],
                    1,
                    "",
                    "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
                );
            },
            ksail_yaml: None,
            command: "create",
            code: 1,
            says: Says::Last(|last| {
                last.starts_with("error: Docker is not available: docker info failed: ")
                    && last.ends_with(
                        "; start Docker (or install it from https://docs.docker.com/get-docker/)",
                    )
            }),
            calls: only_docker_info,
            tree_kept: false,
        },
        Refusal {
            name: "create does not reuse an unlabelled container",
            state: || {
                FakeState::new()
                    .with_container(REGISTRY, FakeContainer::registry(None, "127.0.0.1", 5050))
            },
            tools: untouched,
            ksail_yaml: Some(REGISTRY_5050),
            command: "create",
            code: 1,
            says: Says::Last(|last| {
                last.starts_with(
                    "error: container kind-local-registry exists but was not created by ksail",
                )
            }),
            calls: |calls| {
                calls
                    .iter()
                    .all(|line| !line.starts_with("docker run") && !line.starts_with("docker rm"))
            },
            tree_kept: false,
        },
        Refusal {
            name: "create with a port conflict exits 1",
            state: || {
                FakeState::new().with_container(
                    REGISTRY,
                    FakeContainer::registry(Some("kind"), "127.0.0.1", 5000),
                )
            },
            tools: untouched,
            ksail_yaml: Some(REGISTRY_5050),
            command: "create",
            code: 1,
            says: Says::Line(
                "error: registry container kind-local-registry publishes port 5000, but the configured registry is localhost:5050; run ksail cluster delete, or change spec.cluster.localRegistry.registry",
            ),
            calls: |calls| calls.iter().all(|line| !line.starts_with("kind create")),
            tree_kept: false,
        },
        // B19: `spec.workload.flux.verify` stops the run before any child process starts.
        Refusal {
            name: "B19 create with flux verify exits 2 before any tool runs",
            state: FakeState::new,
            tools: untouched,
            ksail_yaml: Some(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n  workload:\n    flux:\n      verify:\n        provider: cosign\n",
            ),
            command: "create",
            code: 2,
            says: Says::Last(|last| {
                last.starts_with("error: ksail.yaml:") && last.contains("spec.workload.flux.verify")
            }),
            calls: no_calls,
            tree_kept: true,
        },
        Refusal {
            name: "create rejects another distribution",
            state: FakeState::new,
            tools: untouched,
            ksail_yaml: Some(TALOS),
            command: "create",
            code: 2,
            says: Says::Last(not_supported),
            calls: no_calls,
            tree_kept: true,
        },
        Refusal {
            name: "update rejects another distribution",
            state: FakeState::new,
            tools: untouched,
            ksail_yaml: Some(TALOS),
            command: "update",
            code: 2,
            says: Says::Last(not_supported),
            calls: no_calls,
            tree_kept: true,
        },
        Refusal {
            name: "create rejects another provider",
            state: FakeState::new,
            tools: untouched,
            ksail_yaml: Some(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    provider: Hetzner\n",
            ),
            command: "create",
            code: 2,
            says: Says::Last(|last| last.contains("Hetzner")),
            calls: no_calls,
            tree_kept: true,
        },
        Refusal {
            name: "update of a missing cluster exits 1",
            state: FakeState::new,
            tools: untouched,
            ksail_yaml: None,
            command: "update",
            code: 1,
            says: Says::Line("error: cluster kind does not exist; run ksail cluster create"),
            calls: |calls| calls.iter().all(|line| !line.contains(" create")),
            tree_kept: false,
        },
    ]
}

/// Each refusal in a fresh project: its exit code, its error, the tool calls it may have made,
/// and (where no tool runs) no file changed; a failure names its case.
#[test]
fn create_and_update_refuse_before_creating_anything() {
    for case in refusals() {
        eprintln!("case: {}", case.name);
        let env = TestEnv::new();
        let tools = FakeTools::install(&env, (case.state)());
        (case.tools)(&tools);
        if let Some(text) = case.ksail_yaml {
            env.write("ksail.yaml", text);
        }
        let before = env.tree_hash();
        let output = env
            .ksail(["cluster", case.command])
            .output()
            .expect("run ksail");
        assert_eq!(
            output.status.code(),
            Some(case.code),
            "{}: {}",
            case.name,
            String::from_utf8_lossy(&output.stderr)
        );
        match case.says {
            Says::Line(phrase) => assert_error_line(&output, phrase),
            Says::Last(check) => {
                let last = stderr_lines(&output).last().cloned().unwrap_or_default();
                assert!(check(&last), "{}: {last}", case.name);
            }
        }
        let calls = tools.call_lines();
        assert!((case.calls)(&calls), "{}: {calls:?}", case.name);
        if case.tree_kept {
            assert_eq!(env.tree_hash(), before, "{}", case.name);
        }
    }
}

#[test]
fn update_after_create_and_twice_prints_no_changes_detected() {
    let rig = rig!(flux);
    rig.create();
    rig.server.clear_requests();
    for _ in 0..2 {
        rig.update_finds_no_changes();
    }
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    let discovery = rig
        .server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/apis")
        .count();
    assert_eq!(discovery, 2, "one GET /apis per update");
}

fn set_tag(rig: &Rig, tag: &str) {
    let text = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env
        .write("ksail.yaml", format!("{text}  workload:\n    tag: {tag}\n"));
}

#[test]
fn update_repairs_a_drifted_flux_instance_tag_with_one_merge_patch() {
    let rig = rig!(flux);
    rig.create();
    // Labels a user or another tool put on the object stay.
    let mut instance = rig.flux_instance().unwrap();
    instance["metadata"]["labels"] = json!({"team": "platform"});
    rig.server.put_object(instance.clone());
    let before = rig.flux_instance().unwrap();

    let (write, output) = rig.update_repairs_the_tag();

    assert!(
        progress_lines(&output)
            .contains(&"run ksail workload reconcile to wait for the new revision".to_string())
    );
    assert_eq!(
        write.path,
        "/apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux"
    );
    assert_eq!(write.body, r#"{"spec":{"sync":{"ref":"v2"}}}"#);
    let after = rig.flux_instance().unwrap();
    assert_eq!(after["metadata"]["labels"], before["metadata"]["labels"]);
    let mut expected_spec = before["spec"].clone();
    expected_spec["sync"]["ref"] = json!("v2");
    assert_eq!(after["spec"], expected_spec);
}

#[test]
fn update_dry_run_sends_no_writes() {
    let rig = rig!(flux);
    rig.create();
    set_tag(&rig, "v2");
    rig.server.clear_requests();
    let calls_before = rig.tools.calls().len();

    let output = rig.ksail(&["cluster", "update", "--dry-run"]);

    assert_success(&output);
    assert_stdout(&output, &["workload tag: dev → v2 (dry run: not changed)"]);
    assert!(rig.writes().is_empty(), "{:?}", rig.writes());
    let new_calls = &rig.tools.call_lines()[calls_before..];
    assert!(
        new_calls
            .iter()
            .all(|line| !line.contains(" create") && !line.starts_with("docker run")),
        "{new_calls:?}"
    );
}

impl Rig {
    /// The fake tools' calls, with the shell quotes of the displayed argv removed.
    fn unquoted_calls(&self) -> Vec<String> {
        self.tools
            .call_lines()
            .into_iter()
            .map(|line| line.replace('\'', ""))
            .collect()
    }

    /// The project becomes K3s cluster `dev`, and the registry container `dev-local-registry`.
    fn k3s_dev(self) -> Rig {
        self.tools.update(|state| {
            let container = state.containers.remove(REGISTRY).unwrap();
            state.containers.insert(
                "dev-local-registry".into(),
                FakeContainer {
                    labels: [("io.ksail.registry".to_string(), "dev".to_string())].into(),
                    ..container
                },
            );
        });
        let text = std::fs::read_to_string(self.env.work().join("ksail.yaml")).unwrap();
        self.env.write(
            "ksail.yaml",
            text.replace("kind: Cluster\n", "kind: Cluster\nmetadata:\n  name: dev\n")
                .replace("  cluster:\n", "  cluster:\n    distribution: K3s\n"),
        );
        self
    }

    /// The `registries.yaml` k3s got in node `k3d-dev-server-0`.
    fn k3s_registries(&self) -> Option<String> {
        self.tools.state().containers["k3d-dev-server-0"]
            .files
            .get("/etc/rancher/k3s/registries.yaml")
            .cloned()
    }
}

impl Rig {
    /// The rig's project with the default pull-through mirrors (the rigs turn them off).
    fn with_mirrors(self) -> Rig {
        let text = std::fs::read_to_string(self.env.work().join("ksail.yaml")).unwrap();
        self.env.write(
            "ksail.yaml",
            text.replace("    mirrorRegistries: none\n", ""),
        );
        self
    }
}

const MIRRORS: [(&str, &str, &str); 4] = [
    (
        "docker.io",
        "https://registry-1.docker.io",
        "ksail-mirror-docker-io",
    ),
    ("ghcr.io", "https://ghcr.io", "ksail-mirror-ghcr-io"),
    ("quay.io", "https://quay.io", "ksail-mirror-quay-io"),
    (
        "registry.k8s.io",
        "https://registry.k8s.io",
        "ksail-mirror-registry-k8s-io",
    ),
];

/// By default four pull-through caches run, join the cluster network, and every kind node asks
/// them first; they outlive `cluster delete`, so a re-created cluster re-uses them (and their
/// cache). The local registry is published in kube-public/local-registry-hosting.
#[test]
fn create_runs_the_mirror_registries_and_delete_keeps_them() {
    let rig = rig!(flux).with_mirrors();

    let output = rig.create();

    let calls = rig.unquoted_calls();
    let state = rig.tools.state();
    let node = &state.containers["kind-control-plane"];
    for (host, upstream, container) in MIRRORS {
        assert!(
            calls.contains(&format!(
                "docker run -d --name {container} --restart unless-stopped --label io.ksail.mirror={host} -e REGISTRY_PROXY_REMOTEURL={upstream} -v {container}:/var/lib/registry registry:3"
            )),
            "{calls:?}"
        );
        assert!(
            state.containers[container]
                .networks
                .contains(&"kind".to_string())
        );
        assert_eq!(
            node.files[&format!("/etc/containerd/certs.d/{host}/hosts.toml")],
            format!(
                "server = \"{upstream}\"\n\n[host.\"http://{container}:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            )
        );
    }
    let steps = step_lines(&output);
    for line in [
        "✓ mirror registries: running (docker.io, ghcr.io, quay.io, registry.k8s.io)",
        "✓ mirror registries: connected to network kind",
    ] {
        assert!(steps.contains(&line.to_string()), "{steps:?}");
    }
    assert!(
        !describe(&output).contains("warning:"),
        "{}",
        describe(&output)
    );
    let hosting = rig.object("", "configmaps", "kube-public", "local-registry-hosting");
    let port = rig.registry.port();
    assert_eq!(
        hosting["data"]["localRegistryHosting.v1"],
        format!(
            "host: \"127.0.0.1:{port}\"\nhostFromContainerRuntime: \"kind-local-registry:5000\"\nhostFromClusterNetwork: \"kind-local-registry:5000\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n"
        )
    );

    let deleted = rig.ksail(&["cluster", "delete"]);
    assert_success(&deleted);
    let after = rig.tools.state();
    for (_, _, container) in MIRRORS {
        assert!(after.containers.contains_key(container), "{container} kept");
    }
    let before_recreate = rig.tools.calls().len();
    let recreated = rig.create();
    let new_calls = &rig.tools.call_lines()[before_recreate..];
    assert!(
        !new_calls
            .iter()
            .any(|call| call.contains("--name ksail-mirror-")),
        "no mirror is started again: {new_calls:?}"
    );
    assert!(step_lines(&recreated).contains(
        &"– mirror registries: running (docker.io, ghcr.io, quay.io, registry.k8s.io)".to_string()
    ));
}

/// K3s nodes get the mirrors in registries.yaml; delete takes them out of the cluster network
/// first, so the network ksail made is removed.
#[test]
fn k3s_nodes_use_the_mirrors_and_delete_leaves_no_network() {
    let rig = rig!(argocd).k3s_dev().with_mirrors();

    rig.create();

    let registries = rig.k3s_registries().expect("registries.yaml in the node");
    for (host, _, container) in MIRRORS {
        assert!(
            registries.contains(&format!(
                "  \"{host}\":\n    endpoint:\n      - http://{container}:5000\n"
            )),
            "{registries}"
        );
    }
    let deleted = rig.ksail(&["cluster", "delete"]);
    assert_success(&deleted);
    let after = rig.tools.state();
    assert!(
        !after.networks.contains(&"k3d-dev".to_string()),
        "{:?}",
        after.networks
    );
    assert!(after.containers.contains_key("ksail-mirror-docker-io"));
}

/// A kind config without containerd's certs.d patch makes the nodes ignore every mirror: said.
#[test]
fn a_kind_config_without_the_certs_d_patch_is_warned_about() {
    let rig = rig!(flux).with_mirrors();
    rig.env.write(
        "kind.yaml",
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: kind\n",
    );

    let output = rig.create();

    assert!(
        stderr_lines(&output).iter().any(|line| line.contains(
            "warning: node kind-control-plane: containerd does not read /etc/containerd/certs.d"
        )),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_mirror_without_a_known_upstream_is_a_usage_error() {
    let rig = rig!(flux);
    let text = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        text.replace(
            "mirrorRegistries: none",
            "mirrorRegistries: docker.io,example.com",
        ),
    );

    let output = rig.ksail(&["cluster", "create", "--timeout", "20s"]);

    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert_error_line(
        &output,
        "spec.cluster.mirrorRegistries: mirror host \"example.com\" has no known upstream; write example.com=https://<registry>",
    );
    assert!(rig.tools.calls().is_empty(), "nothing ran");
}

/// `cluster init` froze the mirror of another cluster's registry into k3d.yaml; create mirrors
/// the registry it resolved (`dev-local-registry`, this port) through `--registry-config`.
#[test]
fn k3s_nodes_mirror_the_registry_create_resolved_not_the_one_init_wrote() {
    let rig = rig!(argocd).k3s_dev();
    rig.env.write(
        "k3d.yaml",
        "apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: dev\nregistries:\n  config: |\n    mirrors:\n      \"localhost:5050\":\n        endpoint:\n          - http://k3d-default-local-registry:5000\n",
    );

    let output = rig.create();

    let port = rig.registry.port();
    assert_eq!(
        rig.k3s_registries().as_deref(),
        Some(
            format!(
                "mirrors:\n  \"127.0.0.1:{port}\":\n    endpoint:\n      - http://dev-local-registry:5000\n  \"dev-local-registry:5000\":\n    endpoint:\n      - http://dev-local-registry:5000\n"
            )
            .as_str()
        )
    );
    assert!(
        step_lines(&output).contains(&"– registry mirror: configured on 1 node".to_string()),
        "{:?}",
        step_lines(&output)
    );
}

/// k3s reads registries.yaml only when it starts: an existing cluster whose nodes mirror another
/// registry is reported with the fix, not claimed configured.
#[test]
fn k3s_create_names_an_existing_cluster_that_mirrors_another_registry() {
    let rig = rig!(argocd).k3s_dev();
    rig.tools.update(|state| {
        *state = std::mem::take(state).with_cluster(FakeCluster::k3d("dev"));
        state
            .containers
            .get_mut("k3d-dev-server-0")
            .unwrap()
            .files
            .insert(
                "/etc/rancher/k3s/registries.yaml".into(),
                "mirrors:\n  \"localhost:5050\":\n    endpoint:\n      - http://k3d-default-local-registry:5000\n".into(),
            );
    });

    let output = rig.ksail(&["cluster", "create", "--timeout", "20s"]);

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert_error_line(
        &output,
        &format!(
            "node k3d-dev-server-0 does not mirror 127.0.0.1:{} to http://dev-local-registry:5000 (its /etc/rancher/k3s/registries.yaml was written when the cluster was created, for other registries); recreate the cluster: ksail cluster delete, then ksail cluster create",
            rig.registry.port()
        ),
    );
}

/// The cluster exists but its context is not in the kubeconfig (an interrupted create, another
/// KUBECONFIG): the re-run writes the context again and finishes the job.
#[test]
fn a_re_run_restores_a_missing_kubeconfig_context() {
    for (rig, cluster, context) in [
        (rig!(flux), "kind", "kind-kind"),
        (rig!(argocd).k3s_dev(), "dev", "k3d-dev"),
    ] {
        rig.create();
        std::fs::remove_file(rig.kubeconfig()).expect("the kubeconfig create wrote");

        let output = rig.create();

        assert!(
            step_lines(&output).contains(&format!(
                "✓ cluster {cluster}: kubeconfig context {context} restored"
            )),
            "{:?}",
            step_lines(&output)
        );
        let kubeconfig = std::fs::read_to_string(rig.kubeconfig()).expect("kubeconfig written");
        assert!(kubeconfig.contains(context), "{kubeconfig}");
    }
}

/// What a finished create leaves, comparable across rigs: the fake tools' world (registry port
/// and server URL masked), the FluxInstance's spec, and whether the kubeconfig has the context.
fn end_state(rig: &Rig) -> Value {
    let mut state = rig.tools.state();
    state.scripts.clear();
    let text = serde_json::to_string(&state)
        .unwrap()
        .replace(&rig.server.url(), "SERVER")
        .replace(&rig.registry.port().to_string(), "1");
    let kubeconfig = std::fs::read_to_string(rig.kubeconfig()).unwrap_or_default();
    json!({
        "tools": serde_json::from_str::<Value>(&text).unwrap(),
        "flux": rig.flux_instance().map(|instance| instance["spec"].clone()),
        "context": kubeconfig.contains("kind-kind"),
    })
}

/// Create stops at each step in turn (a tool fails once, or the engine manifest is missing);
/// the re-run finishes the job and leaves what an uninterrupted run leaves.
#[test]
fn a_re_run_after_an_interruption_at_any_step_ends_like_an_uninterrupted_run() {
    let baseline = rig!(flux);
    baseline.create();
    let expected = end_state(&baseline);
    let steps: [(&str, Option<&[&str]>); 6] = [
        ("registry", Some(&["docker", "inspect"])),
        ("cluster", Some(&["kind", "create", "cluster"])),
        ("ownership mark", Some(&["docker", "exec", "-i"])),
        ("network", Some(&["docker", "network", "connect"])),
        ("node mirror", Some(&["kind", "get", "nodes"])),
        // The engine manifest is missing on the first run.
        ("engine", None),
    ];
    for (step, failing) in steps {
        let rig = rig!(flux);
        let manifest = rig.env.work().join("flux-operator.yaml");
        let away = manifest.with_extension("away");
        match failing {
            Some(prefix) => rig.tools.script_times(prefix, 1, "", "interrupted\n", 1),
            None => std::fs::rename(&manifest, &away).unwrap(),
        }

        let stopped = rig.ksail(&["cluster", "create", "--timeout", "20s"]);
        assert_ne!(
            stopped.status.code(),
            Some(0),
            "{step}: {}",
            describe(&stopped)
        );
        let away = rig.env.work().join("flux-operator.away");
        if away.exists() {
            std::fs::rename(&away, rig.env.work().join("flux-operator.yaml")).unwrap();
        }
        rig.create();

        assert_eq!(end_state(&rig), expected, "{step}");
    }
}

#[test]
fn create_k3s_argocd_applies_the_repository_secret_and_application() {
    let rig = rig!(argocd).k3s_dev();

    let output = rig.create();
    let lines = rig.unquoted_calls();
    // The network first, with the registry in it, so k3d writes it into CoreDNS's NodeHosts.
    assert_eq!(
        lines[..7],
        [
            "docker info",
            "docker inspect dev-local-registry",
            "docker network inspect k3d-dev",
            "docker network create --label io.ksail.network=dev k3d-dev",
            "docker inspect dev-local-registry",
            "docker network connect k3d-dev dev-local-registry",
            "k3d cluster list -o json",
        ]
    );
    assert!(
        lines[7].starts_with("k3d cluster create dev --config ")
            && lines[7].contains(" --registry-config "),
        "{lines:?}"
    );
    assert_eq!(
        lines[8..],
        [
            "k3d node list -o json",
            "docker exec k3d-dev-server-0 cat /etc/ksail/cluster",
            "docker exec -i k3d-dev-server-0 sh -c mkdir -p /etc/ksail && cat > /etc/ksail/cluster",
            "k3d node list -o json",
            "docker exec k3d-dev-server-0 cat /etc/rancher/k3s/registries.yaml",
        ]
    );
    assert_eq!(
        rig.tools.state().network_labels["k3d-dev"]["io.ksail.network"],
        "dev"
    );
    let secret = rig.object("", "secrets", "argocd", "ksail-local-registry-repo");
    assert_eq!(
        secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
        "repository"
    );
    let application = rig.object("argoproj.io", "applications", "argocd", "ksail");
    assert_eq!(
        application["spec"]["source"],
        json!({"repoURL": "oci://dev-local-registry:5000/k8s", "targetRevision": "dev", "path": "."})
    );
    assert_stdout(
        &output,
        &["cluster dev created (ArgoCD, oci://dev-local-registry:5000/k8s:dev)"],
    );
}

#[test]
fn create_then_drift_repairs_an_application_tag() {
    let rig = rig!(argocd);
    rig.create();
    let (write, _) = rig.update_repairs_the_tag();
    assert_eq!(write.body, r#"{"spec":{"source":{"targetRevision":"v2"}}}"#);
}

/// Moves the source directory to `apps/` (one ConfigMap) in ksail.yaml, with `workload` keys
/// `more` besides.
fn move_sources_to_apps(rig: &Rig, more: &str) {
    let config = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        format!("{config}  workload:\n    sourceDirectory: apps\n{more}"),
    );
    rig.env.write(
        "apps/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
}

/// A renamed source directory points pushes at another repository; the cluster still follows the
/// old one, which `workload reconcile` reports with "run ksail cluster update". `cluster update`
/// turns the sync object to the new URL with one merge patch (and re-applies the credentials
/// that name it first), then finds nothing to change.
#[test]
fn update_turns_the_sync_object_to_a_renamed_source_directory() {
    for (rig, patch_path, patch) in [
        (
            rig!(flux),
            "/apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux",
            r#"{"spec":{"sync":{"url":"oci://kind-local-registry:5000/apps"}}}"#,
        ),
        (
            rig!(argocd),
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/ksail",
            r#"{"spec":{"source":{"repoURL":"oci://kind-local-registry:5000/apps"}}}"#,
        ),
    ] {
        rig.create();
        move_sources_to_apps(&rig, "");
        rig.server.clear_requests();

        let update = rig.ksail(&["cluster", "update"]);
        assert_success(&update);
        assert_stdout(
            &update,
            &[
                "workload url: oci://kind-local-registry:5000/k8s → oci://kind-local-registry:5000/apps (repaired in place)",
            ],
        );
        let patches: Vec<_> = rig.merge_patches().map(|w| (w.path, w.body)).collect();
        assert_eq!(patches, [(patch_path.to_string(), patch.to_string())]);
        if let Some(secret) =
            rig.server
                .get_object("", "secrets", "argocd", "ksail-local-registry-repo")
        {
            assert_eq!(
                secret["stringData"]["url"], "oci://kind-local-registry:5000/apps",
                "Argo CD's repository Secret names the new URL: {secret}"
            );
        }

        rig.update_finds_no_changes();
    }
}

/// flux-operator carries a FluxInstance change into the sync source a moment later; `cluster
/// update` returns only once the OCIRepository follows the new URL and tag, so a `workload
/// reconcile` run right after it does not meet the old source (the real operator showed that
/// race). Here the operator takes 800 ms.
/// A Flux rig whose flux-operator is `operator`.
fn flux_rig_with_operator(registry: Registry, operator: Arc<FluxOperator>) -> Rig {
    let source = FluxSource::with_resolver(0, registry_resolver(&registry));
    let kustomize = FluxKustomization::new(0);
    Rig::flux_with_kustomize(
        registry,
        ServerOptions::flux(),
        source,
        kustomize,
        "Flux",
        operator,
    )
}

#[test]
fn update_returns_once_the_operator_has_carried_the_change_to_the_sync_source() {
    let rig = flux_rig_with_operator(require_registry!(), FluxOperator::new(800));
    rig.create();
    move_sources_to_apps(&rig, "    tag: v2\n");

    let update = rig.ksail(&["cluster", "update"]);

    assert_success(&update);
    assert_stdout(
        &update,
        &[
            "workload url: oci://kind-local-registry:5000/k8s → oci://kind-local-registry:5000/apps (repaired in place)",
            "workload tag: dev → v2 (repaired in place)",
        ],
    );
    let source = rig.object(
        "source.toolkit.fluxcd.io",
        "ocirepositories",
        "flux-system",
        "flux-system",
    );
    assert_eq!(
        (&source["spec"]["url"], &source["spec"]["ref"]["tag"]),
        (&json!("oci://kind-local-registry:5000/apps"), &json!("v2")),
        "the sync source followed the change before update returned"
    );
}

/// flux-operator stopped after create: update makes its change, then waits at most `--timeout`
/// for the sync source and says what it still follows and what to look at (exit 3).
#[test]
fn update_with_a_stopped_operator_times_out_naming_what_the_source_still_follows() {
    let operator = FluxOperator::new(0);
    let rig = flux_rig_with_operator(require_registry!(), operator.clone());
    rig.create();
    operator.stop();
    set_tag(&rig, "v2");

    let update = rig.ksail(&["cluster", "update", "--timeout", "1s"]);

    assert_exit(&update, 3);
    assert_stdout(&update, &["workload tag: dev → v2 (repaired in place)"]);
    assert_error_line(
        &update,
        "the FluxInstance's sync source did not become ready within 1s: OCIRepository flux-system/flux-system still follows oci://kind-local-registry:5000/k8s:dev, so flux-operator has not applied the FluxInstance yet (is it running in flux-system?); raise --timeout or check the cluster",
    );
}

/// The Flux CRDs a flux-operator install brings (the operator's own and the toolkit's), for a
/// cluster that has no Flux yet.
fn flux_crds() -> String {
    let crd = |group: &str, kind: &str, plural: &str| {
        format!(
            "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: {plural}.{group}\nspec:\n  group: {group}\n  names:\n    kind: {kind}\n    listKind: {kind}List\n    plural: {plural}\n    singular: {singular}\n  scope: Namespaced\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      subresources:\n        status: {{}}\n      schema:\n        openAPIV3Schema:\n          type: object\n          x-kubernetes-preserve-unknown-fields: true\n",
            singular = kind.to_lowercase()
        )
    };
    [
        crd(
            "source.toolkit.fluxcd.io",
            "OCIRepository",
            "ocirepositories",
        ),
        crd(
            "kustomize.toolkit.fluxcd.io",
            "Kustomization",
            "kustomizations",
        ),
    ]
    .concat()
}

#[test]
fn update_installs_a_newly_configured_engine_then_reports_no_changes() {
    let registry = require_registry!();
    let source = FluxSource::with_resolver(0, registry_resolver(&registry));
    let rig = Rig::flux_with(registry, ServerOptions::default(), source, "None");
    let created = rig.create();
    assert_stdout(&created, &["cluster kind created (no GitOps engine)"]);
    let text = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        text.replace("gitOpsEngine: None", "gitOpsEngine: Flux"),
    );
    rig.env.write(
        "flux-operator.yaml",
        format!("{FLUX_OPERATOR_MANIFEST}{}", flux_crds()),
    );

    let output = rig.ksail(&["cluster", "update", "--timeout", "20s"]);

    assert_success(&output);
    assert_stdout(&output, &["gitops engine: none → Flux (installed)"]);
    assert!(rig.flux_instance().is_some());
    rig.update_finds_no_changes();
}

/// An interrupted create can leave the engine's API served while its controller was never
/// applied: update completes the install instead of waiting on a controller that is not there.
#[test]
fn update_completes_a_half_applied_engine() {
    let rig = rig!(flux);
    rig.create();
    assert!(
        rig.server
            .delete_object("apps", "deployments", "flux-system", "flux-operator")
    );

    let output = rig.ksail(&["cluster", "update", "--timeout", "20s"]);

    assert_success(&output);
    assert_stdout(&output, &["gitops engine: incomplete → Flux (completed)"]);
    assert!(
        rig.server
            .get_object("apps", "deployments", "flux-system", "flux-operator")
            .is_some(),
        "the operator was applied again"
    );
    rig.update_finds_no_changes();
}

#[test]
fn update_recreates_a_missing_sync_object() {
    let rig = rig!(flux);
    rig.create();
    rig.delete_flux_instance();
    assert!(rig.server.delete_object(
        "source.toolkit.fluxcd.io",
        "ocirepositories",
        "flux-system",
        "flux-system"
    ));
    let output = rig.ksail(&["cluster", "update", "--timeout", "20s"]);
    assert_success(&output);
    assert_stdout(
        &output,
        &["gitops sync: missing → oci://kind-local-registry:5000/k8s:dev (created)"],
    );
    assert!(rig.flux_instance().is_some());
}

#[test]
fn create_engine_ready_timeout_exits_3() {
    let registry = require_registry!();
    let source = FluxSource::with_resolver(0, registry_resolver(&registry));
    source.set_default(SourceOutcome::Never);
    let rig = Rig::flux_with(registry, ServerOptions::flux(), source, "Flux");
    let output = rig.ksail(&["cluster", "create", "--timeout", "1s"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        progress_lines(&output).join("\n")
    );
    let last = stderr_lines(&output).last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("error: Flux did not become ready within 1s: "),
        "{last}"
    );
    assert!(step_lines(&output).contains(&"✗ engine ready: failed".to_string()));
}

/// A first artifact the sync Kustomization cannot build ends `cluster create` with the reason at
/// once (exit 1), instead of waiting out the timeout behind a FluxInstance that is not ready.
#[test]
fn create_with_a_broken_first_artifact_fails_with_the_kustomizations_reason() {
    let registry = require_registry!();
    let source = FluxSource::with_resolver(0, registry_resolver(&registry));
    let kustomize = FluxKustomization::new(0);
    kustomize.set_outcome(
        "flux-system/flux-system",
        KsOutcome::Failed {
            reason: "BuildFailed".into(),
            message: "kustomize build failed: no-such-file.yaml".into(),
        },
    );
    let rig = Rig::flux_with_kustomize(
        registry,
        ServerOptions::flux(),
        source,
        kustomize,
        "Flux",
        FluxOperator::new(0),
    );

    let output = rig.ksail(&["cluster", "create", "--timeout", "5m"]);

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(step_lines(&output).contains(&"✗ engine ready: failed".to_string()));
    assert_eq!(
        stderr_lines(&output).last().cloned().unwrap_or_default(),
        "error: Kustomization flux-system/flux-system failed: BuildFailed: kustomize build failed: no-such-file.yaml; fix the manifests, run ksail workload push, then ksail workload reconcile"
    );
}

/// The whole loop a user runs (issue: init → create → push → reconcile → update → change the tag
/// → update repairs → delete), through the real binary, for one engine.
fn full_loop(rig: &Rig, engine: &str) {
    // init writes the project: the seed command with the test registry's port substituted.
    let workdir_files = ["ksail.yaml", "kind.yaml", "k8s/kustomization.yaml"];
    for file in workdir_files {
        let _ = std::fs::remove_file(rig.env.work().join(file));
    }
    let registry = format!("127.0.0.1:{}", rig.registry.port());
    let init = rig.ksail(&support::cluster_init_args(engine, &registry));
    assert_success(&init);
    assert_stdout(
        &init,
        &[
            "created ksail.yaml",
            "created kind.yaml",
            "created k8s/kustomization.yaml",
            "initialized project in .",
        ],
    );

    let create = rig.create();
    assert_eq!(
        stdout_lines(&create).last().map(String::as_str),
        Some(
            format!("cluster kind created ({engine}, oci://kind-local-registry:5000/k8s:dev)")
                .as_str()
        )
    );

    // A workload change, pushed to the tag the cluster follows.
    rig.env.write(
        "k8s/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - cm.yaml\n",
    );
    rig.env.write(
        "k8s/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n",
    );
    let push = rig.ksail(&["workload", "push"]);
    assert_success(&push);
    let pushed = stdout_lines(&push);
    assert!(
        pushed[0].starts_with(&format!("pushed oci://{registry}/k8s:dev@sha256:")),
        "{pushed:?}"
    );
    let digest = pushed[0].rsplit_once('@').unwrap().1.to_string();

    let reconcile = rig.ksail(&["workload", "reconcile", "--timeout", "20s"]);
    assert_success(&reconcile);
    let summary = stdout_lines(&reconcile);
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert!(
        summary[0].contains(&digest),
        "reconciled at the pushed digest: {summary:?}"
    );

    rig.update_finds_no_changes();

    rig.update_repairs_the_tag();
    rig.update_finds_no_changes();

    let delete = rig.ksail(&["cluster", "delete"]);
    assert_success(&delete);
    let calls = rig.tools.call_lines();
    assert!(
        calls
            .iter()
            .any(|call| call.starts_with("kind delete cluster --name kind")),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|call| call.starts_with("docker rm --force --volumes kind-local-registry")),
        "{calls:?}"
    );
    let twice = rig.ksail(&["cluster", "delete"]);
    assert_success(&twice);
}

#[test]
fn full_loop_with_flux() {
    let rig = rig!(flux);
    rig.server
        .add_simulator(fake_apiserver::simulators::FluxKustomization::new(0));
    full_loop(&rig, "Flux");
}

#[test]
fn full_loop_with_argocd() {
    let rig = rig!(argocd);
    full_loop(&rig, "ArgoCD");
}

#[test]
fn update_repairs_an_oci_repository_tag_when_there_is_no_flux_instance() {
    let rig = rig!(flux);
    rig.create();
    // A Flux set up without the operator: only the OCIRepository carries the sync tag.
    rig.delete_flux_instance();

    let (write, _) = rig.update_repairs_the_tag();

    assert_eq!(
        write.path,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/ocirepositories/flux-system"
    );
    assert_eq!(write.body, r#"{"spec":{"ref":{"tag":"v2"}}}"#);
}

/// Flux 2.5 serves OCIRepository only at source v1beta2: update reads and patches it there.
#[test]
fn update_repairs_an_oci_repository_tag_at_the_version_flux_2_5_serves() {
    let registry = require_registry!();
    let source = FluxSource::with_resolver(0, registry_resolver(&registry));
    let rig = Rig::flux_with(registry, ServerOptions::flux_2_5(), source, "Flux");
    rig.create();
    assert!(
        rig.server
            .delete_object(FLUX_GROUP, "fluxinstances", "flux-system", "flux")
    );
    set_tag(&rig, "v2");
    rig.server.clear_requests();

    let output = rig.ksail(&["cluster", "update"]);

    assert_success(&output);
    assert_eq!(
        stdout_lines(&output),
        ["workload tag: dev → v2 (repaired in place)"]
    );
    let writes = rig.writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        writes[0].path,
        "/apis/source.toolkit.fluxcd.io/v1beta2/namespaces/flux-system/ocirepositories/flux-system"
    );
}

#[test]
fn create_with_an_external_registry_starts_no_container_and_connects_no_network() {
    let registry = require_registry!();
    // An external registry: a host name that does not look like loopback (it resolves to this
    // machine, so the real registry answers), reached over plain HTTP by opt-in.
    let Some((host, _)) = support::tls::non_loopback_looking_name() else {
        eprintln!("skipped: no non-loopback-looking host name on this machine");
        return;
    };
    let rig = Rig::flux(registry);
    rig.env.write(
        "ksail.yaml",
        format!(
            "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n    mirrorRegistries: none\n    localRegistry:\n      registry: {host}:{}/k8s\n      insecure: true\n",
            rig.registry.port()
        ),
    );

    let output = rig.create();
    let calls = rig.tools.call_lines();
    assert!(
        !calls.iter().any(
            |call| call.starts_with("docker run") || call.starts_with("docker network connect")
        ),
        "{calls:?}"
    );
    let steps = step_lines(&output);
    assert!(
        steps.iter().filter(|line| line.starts_with("– ")).count() >= 3,
        "registry, network and mirror steps are skipped: {steps:?}"
    );
    let instance = rig.flux_instance().expect("the FluxInstance is applied");
    assert_eq!(
        instance["spec"]["sync"]["url"],
        format!("oci://{host}:{}/k8s", rig.registry.port())
    );
    // Plain HTTP by opt-in, so the insecure patch is rendered for the operator.
    assert!(
        instance["spec"]["kustomize"]["patches"]
            .to_string()
            .contains("/spec/insecure"),
        "{instance}"
    );
}

/// `cluster create` with the flux-operator manifest served through a scripted proxy.
fn create_with_manifest_url(rig: &Rig, script: FaultScript) -> (Output, Proxy) {
    let proxy = Proxy::with_script(&rig.registry.host_port(), script);
    let output = rig
        .env
        .ksail(["cluster", "create", "--timeout", "20s"])
        .env(
            "KSAIL_FLUX_OPERATOR_MANIFEST",
            format!("{}/flux-operator.yaml", proxy.url()),
        )
        .output()
        .expect("run ksail");
    (output, proxy)
}

#[test]
fn a_manifest_url_that_answers_404_fails_without_retrying() {
    let rig = rig!(flux);
    let (output, proxy) = create_with_manifest_url(
        &rig,
        FaultScript::new().on_requests(.., Action::Status(404, None)),
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_error_line(&output, "cannot download the engine manifest");
    assert_error_line(&output, "404 Not Found; check the URL");
    let downloads = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path_only() == "/flux-operator.yaml")
        .count();
    assert_eq!(downloads, 1, "a 404 is final: {:?}", proxy.request_lines());
}

#[test]
fn a_manifest_url_that_answers_503_is_retried_until_it_serves() {
    let rig = rig!(flux);
    let script = FaultScript::new()
        .on_requests(1..=2, Action::Status(503, None))
        .on_request(
            3,
            Action::Respond {
                status: 200,
                headers: vec![("Content-Type".into(), "text/yaml".into())],
                body: FLUX_OPERATOR_MANIFEST.as_bytes().to_vec(),
            },
        );
    let (output, proxy) = create_with_manifest_url(&rig, script);
    assert_success(&output);
    let retries = stderr_lines(&output)
        .into_iter()
        .filter(|line| line.contains("failed, retrying in") && line.contains("503"))
        .count();
    assert_eq!(retries, 2, "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(proxy.requests().len(), 3, "{:?}", proxy.request_lines());
}

/// The public key the verification Secret holds, from `stringData` or `data`.
fn public_key_in(secret: &Value) -> Option<String> {
    if let Some(text) = secret["stringData"]["cosign.pub"].as_str() {
        return Some(text.to_string());
    }
    use base64::Engine as _;
    let data = secret["data"]["cosign.pub"].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// The password of the signing tests' keys.
const KEY_PASSWORD: &str = "signing-test-password";

impl Rig {
    /// `ksail.yaml` plus `spec.workload.signing` (`key`, and `publicKey` when given), after
    /// `workload keygen` wrote `cosign.key`/`cosign.pub` and `other.key`/`other.pub`.
    fn with_signing(self, public_key: Option<&str>) -> Rig {
        for key in ["cosign.key", "other.key"] {
            assert_success(&self.ksail_signing(&["workload", "keygen", "--key", key]));
        }
        let config = std::fs::read_to_string(self.env.work().join("ksail.yaml")).unwrap();
        let public = public_key.map_or(String::new(), |p| format!("      publicKey: {p}\n"));
        self.env.write(
            "ksail.yaml",
            format!("{config}  workload:\n    signing:\n      key: cosign.key\n{public}"),
        );
        self
    }

    /// [`Rig::ksail`] with the key password set.
    fn ksail_signing(&self, args: &[&str]) -> Output {
        self.ksail_with(args, &[("COSIGN_PASSWORD", KEY_PASSWORD)])
    }
}

#[test]
fn create_with_a_signing_key_wires_flux_verification_and_signs_the_first_artifact() {
    let rig = rig!(flux).with_signing(None);
    let output = rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]);
    assert_success(&output);
    let secret = rig.object("", "secrets", "flux-system", "ksail-cosign-public-key");
    let public = std::fs::read_to_string(rig.env.work().join("cosign.pub")).unwrap();
    let stored = public_key_in(&secret);
    assert_eq!(stored.as_deref(), Some(public.as_str()));
    let instance = rig.object(FLUX_GROUP, "fluxinstances", "flux-system", "flux");
    let patches = instance["spec"]["kustomize"]["patches"].as_array().unwrap();
    assert!(
        patches
            .iter()
            .any(|patch| patch["patch"]
                .as_str()
                .is_some_and(|text| text.contains("/spec/verify")
                    && text.contains("ksail-cosign-public-key"))),
        "{instance}"
    );
    // The first artifact carries its signature.
    let (_, _, digest) = http::fetch_manifest(&rig.registry.host_port(), "k8s", "dev");
    let tag = format!("{}.sig", digest.unwrap().replace(':', "-"));
    let (status, _, _) = http::fetch_manifest(&rig.registry.host_port(), "k8s", &tag);
    assert_eq!(status, 200, "no signature {tag}");
}

#[test]
fn create_with_a_public_key_that_does_not_match_changes_nothing() {
    let rig = rig!(flux).with_signing(Some("other.pub"));
    let output = rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]);
    assert_exit(&output, 2);
    assert_error_line(
        &output,
        "public key other.pub is not the public half of signing key cosign.key: the cluster would refuse every push; set spec.workload.signing.publicKey to the key's own .pub file",
    );
    let config = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        config.replace("publicKey: other.pub", "publicKey: gone.pub"),
    );
    let missing = rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]);
    assert_exit(&missing, 2);
    assert_error_line(
        &missing,
        "cannot read public key gone.pub (spec.workload.signing.publicKey): no such file or directory; write it with ksail workload keygen, or set spec.workload.signing.publicKey to the key's .pub file",
    );
    assert!(rig.tools.call_lines().is_empty(), "no tool was run");
    assert!(
        http::list_tags(&rig.registry.host_port(), "k8s").is_empty(),
        "nothing pushed"
    );
}

/// An artifact pushed unsigned before signing was configured is kept, and signed: otherwise the
/// verifying cluster would refuse the first artifact it sees.
#[test]
fn create_signs_a_kept_artifact_that_was_pushed_unsigned() {
    let rig = rig!(flux);
    rig.env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    assert_success(&rig.ksail(&["workload", "push"]));
    let (_, _, digest) = http::fetch_manifest(&rig.registry.host_port(), "k8s", "dev");
    let tag = format!("{}.sig", digest.expect("pushed").replace(':', "-"));
    assert!(!http::list_tags(&rig.registry.host_port(), "k8s").contains(&tag));
    let rig = rig.with_signing(None);

    let output = rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]);

    assert_success(&output);
    assert!(
        stderr_text(&output).contains(&format!("signature {tag} written")),
        "{}",
        stderr_text(&output)
    );
    assert!(http::list_tags(&rig.registry.host_port(), "k8s").contains(&tag));
}

#[test]
fn create_with_a_signing_key_under_argo_cd_signs_and_warns_that_nothing_verifies() {
    let rig = rig!(argocd).with_signing(None);
    let output = rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]);
    assert_success(&output);
    assert!(
        stderr_text(&output).contains(
            "warning: spec.workload.signing is set but Argo CD does not verify OCI signatures"
        ),
        "{}",
        stderr_text(&output)
    );
    let tags = http::list_tags(&rig.registry.host_port(), "k8s");
    assert!(tags.iter().any(|tag| tag.ends_with(".sig")), "{tags:?}");
}

/// A new key pair in `ksail.yaml` is verification drift: `cluster update` applies the new public
/// key and the FluxInstance, then finds nothing to change.
#[test]
fn update_repairs_a_rotated_signing_key_then_finds_no_changes() {
    let rig = rig!(flux).with_signing(None);
    assert_success(&rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]));
    let config = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        config.replace("key: cosign.key", "key: other.key"),
    );

    let update = rig.ksail_signing(&["cluster", "update"]);
    assert_success(&update);
    assert_stdout(
        &update,
        &[
            "signature verification: cosign with another public key → cosign other.pub (repaired in place)",
        ],
    );
    let secret = rig.object("", "secrets", "flux-system", "ksail-cosign-public-key");
    let other = std::fs::read_to_string(rig.env.work().join("other.pub")).unwrap();
    let stored = public_key_in(&secret);
    assert_eq!(stored.as_deref(), Some(other.as_str()));

    let again = rig.ksail_signing(&["cluster", "update"]);
    assert_success(&again);
    assert_stdout(&again, &["No changes detected"]);
}

/// flux-operator's manifests artifact, without the tag.
const MANIFESTS: &str = "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests";

/// Tag, Flux version, operator version (the manifests artifact) and signing key all drifted: one
/// `cluster update` repairs each (one line apiece, in that order), and the next run finds
/// nothing. Before, a run repaired only the tag and left the rest for a second run.
#[test]
fn update_repairs_every_drift_in_one_run_then_finds_no_changes() {
    let rig = rig!(flux).with_signing(None);
    assert_success(&rig.ksail_signing(&["cluster", "create", "--timeout", "20s"]));
    let config = std::fs::read_to_string(rig.env.work().join("ksail.yaml")).unwrap();
    rig.env.write(
        "ksail.yaml",
        config.replace(
            "      key: cosign.key\n",
            "      key: other.key\n    tag: v2\n    flux:\n      distributionVersion: 2.9.x\n      operatorVersion: 0.60.0\n",
        ),
    );
    rig.server.clear_requests();

    let update = rig.ksail_signing(&["cluster", "update"]);
    assert_success(&update);
    assert_stdout(
        &update,
        &[
            "workload tag: dev → v2 (repaired in place)",
            "flux distribution version: 2.x → 2.9.x (repaired in place)",
            &format!(
                "flux distribution artifact: {MANIFESTS}:v0.58.1 → {MANIFESTS}:v0.60.0 (repaired in place)"
            ),
            "signature verification: cosign with another public key → cosign other.pub (repaired in place)",
        ],
    );
    let patches: Vec<String> = rig.merge_patches().map(|w| w.body).collect();
    assert_eq!(
        patches,
        [
            r#"{"spec":{"sync":{"ref":"v2"}}}"#.to_string(),
            r#"{"spec":{"distribution":{"version":"2.9.x"}}}"#.to_string(),
            format!(r#"{{"spec":{{"distribution":{{"artifact":"{MANIFESTS}:v0.60.0"}}}}}}"#),
        ]
    );
    let instance = rig.flux_instance().unwrap();
    assert_eq!(instance["spec"]["sync"]["ref"], "v2");
    assert_eq!(instance["spec"]["distribution"]["version"], "2.9.x");
    assert_eq!(
        instance["spec"]["distribution"]["artifact"],
        format!("{MANIFESTS}:v0.60.0")
    );
    let secret = rig.object("", "secrets", "flux-system", "ksail-cosign-public-key");
    let other = std::fs::read_to_string(rig.env.work().join("other.pub")).unwrap();
    assert_eq!(public_key_in(&secret).as_deref(), Some(other.as_str()));

    let again = rig.ksail_signing(&["cluster", "update"]);
    assert_success(&again);
    assert_stdout(&again, &["No changes detected"]);
}
