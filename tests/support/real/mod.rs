//! The real tier (docs/testing.md "Real tier"): a real etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok, plus either Flux's source-, kustomize- and
//! helm-controller with flux-operator, or Argo CD's application controller and repo-server with
//! redis — all local processes on loopback ports, built from their Go modules by
//! `tests/real/build.sh` (versions: `tests/real/versions.env`).
//!
//! One control plane per test binary, started on first use. `ksail workload reconcile` watches
//! every Kustomization (or Application) in the cluster, so tests cannot share it at the same time:
//! [`RealCluster::lab`] hands out the cluster one test at a time, after deleting what the previous
//! test left, together with a fresh [`TestEnv`] whose `KUBECONFIG` points at it and a fresh
//! registry.
//!
//! Nothing here skips: a component that cannot be built or started fails the test with its name
//! and the end of its log.

pub mod charts;
pub mod components;
pub mod network;
pub mod pki;
pub mod process;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fake_tools::{FakeCluster, FakeContainer, FakeState, FakeTools};
use super::{Registry, RegistryKind, TestEnv};

pub use components::Engine;

/// How long a test waits for the cluster to reach a state it arranged (not a product timing).
pub const SETTLE: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(100);

/// The label every namespace a test creates carries, so the next test's reset finds it.
pub const TEST_LABEL: &str = "ksail-real-test";
/// The namespace the tests' artifacts deploy into (labelled for the next test's reset).
pub const APPS: &str = "real-apps";

/// A source file holding namespace [`APPS`] and ConfigMap `name` with `data.value: <value>`.
pub fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {APPS}\n  labels:\n    {TEST_LABEL}: \"true\"\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {APPS}\ndata:\n  value: \"{value}\"\n"
    )
}

/// `count` ConfigMaps `large-<i>` in the apps namespace, each with a `value` of `bytes` varied
/// text, as one multi-document file, and the value each must end up with. Four of 100 kB span
/// several of the layer's 128 KiB deflate blocks (src/artifact/gzip.rs), so a cluster that serves
/// them served every block. Each stays under the 256 kB that Argo CD's client-side apply can
/// keep in its last-applied annotation.
pub fn large_configmaps(count: usize, bytes: usize) -> (String, Vec<(String, String)>) {
    let mut manifests = String::new();
    let mut expected = Vec::new();
    for index in 0..count {
        let mut value = String::with_capacity(bytes + 32);
        let mut n = index as u64;
        while value.len() < bytes {
            n = n
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            value.push_str(&format!("{:x} ", n >> 24));
        }
        let name = format!("large-{index}");
        manifests.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {APPS}\ndata:\n  value: \"{value}\"\n"
        ));
        expected.push((name, value));
    }
    (manifests, expected)
}

/// The sync objects a Flux bootstrap makes without flux-operator: OCIRepository and Kustomization
/// `flux-system/flux-system` following `k8s:dev` in the test's registry. The intervals are long,
/// so that only ksail's request makes Flux look again within a test.
pub fn plain_flux_sync(registry: &str) -> String {
    plain_flux_sync_at(registry, "./")
}

/// [`plain_flux_sync`] with the root Kustomization applying `path` of the artifact (the tests
/// that add Kustomizations of their own keep the root to `./base`).
pub fn plain_flux_sync_at(registry: &str, path: &str) -> String {
    format!(
        r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  url: oci://{registry}/k8s
  ref:
    tag: dev
  insecure: true
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 10m
  path: {path}
  prune: true
  wait: true
  timeout: 30s
  sourceRef:
    kind: OCIRepository
    name: flux-system
"#
    )
}

/// The links of the dependency chain a test and the benchmark build: each a Kustomization in
/// flux-system applying `./<link>` of the sync artifact, each depending on the one before.
pub const CHAIN: [&str; 5] = ["chain-1", "chain-2", "chain-3", "chain-4", "chain-5"];

/// The Kustomizations of `links`, each depending on the previous one (`wait: true`, so a link is
/// Ready only when what it applied is).
pub fn dependency_chain(links: &[&str]) -> String {
    let mut documents = Vec::new();
    for (index, link) in links.iter().enumerate() {
        let depends = match index {
            0 => String::new(),
            _ => format!("  dependsOn:\n    - name: {}\n", links[index - 1]),
        };
        documents.push(format!(
            "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {link}
  namespace: flux-system
spec:
  interval: 10m
  path: ./{link}
  prune: true
  wait: true
  sourceRef:
    kind: OCIRepository
    name: flux-system
{depends}"
        ));
    }
    documents.join("---\n")
}

/// Prints a ksail run (shown when the test fails) and returns its output.
fn show(args: &[&str], output: Output) -> Output {
    eprintln!(
        "$ ksail {}\n(exit {:?})\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

pub use super::output::assert_exit;

/// A running control plane with one engine.
pub struct RealCluster {
    pub engine: Engine,
    /// Where `tests/real/build.sh` put the binaries, CRDs and install manifests.
    pub components: PathBuf,
    /// The tier's own directory: PKI, kubeconfig, data and one log per component.
    pub root: PathBuf,
    pub kubeconfig: PathBuf,
    /// The CA and admin certificate the kubeconfig names.
    pub pki: pki::Pki,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// The component processes, for failure messages.
    processes: Mutex<Vec<process::Process>>,
    /// Ports and paths the engine's components were given.
    pub ports: components::Ports,
    /// Resolves in-cluster names (`kind-local-registry:5000`) for the engine's components.
    pub network: network::ClusterNetwork,
    serial: Mutex<()>,
}

/// The in-cluster name of the local registry of cluster `kind` (resolution.md "sync.url"), which
/// the cluster network sends to the current test's registry.
pub const IN_CLUSTER_REGISTRY: &str = "kind-local-registry:5000";

static FLUX: OnceLock<RealCluster> = OnceLock::new();
static ARGOCD: OnceLock<RealCluster> = OnceLock::new();

/// The Flux cluster of this test binary (started on first use; panics naming what failed).
pub fn flux() -> &'static RealCluster {
    FLUX.get_or_init(|| RealCluster::start(Engine::Flux))
}

/// The Argo CD cluster of this test binary.
pub fn argocd() -> &'static RealCluster {
    ARGOCD.get_or_init(|| RealCluster::start(Engine::ArgoCd))
}

/// Runs `tests/real/build.sh` (a no-op on a warm cache) and returns the directory it prints.
pub fn components_dir() -> PathBuf {
    build_components(&[])
}

/// The component directory with the benchmarks' reference peers (`bin/flux`) built too.
pub fn components_dir_with_peers() -> PathBuf {
    build_components(&["--peers"])
}

fn build_components(args: &[&str]) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/build.sh");
    let output = Command::new("bash")
        .arg(&script)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}): the real tier's components could not be built; its messages above name the component",
        script.display(),
        output.status
    );
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(
        Path::new(&dir).join("complete").is_file(),
        "{} printed {dir:?}, which is not a complete component directory",
        script.display()
    );
    PathBuf::from(dir)
}

impl RealCluster {
    fn start(engine: Engine) -> RealCluster {
        let components = components_dir();
        let root = tempfile::Builder::new()
            .prefix(&format!("ksail-real-{}-", engine.label()))
            .tempdir()
            .expect("create the real tier's directory")
            .keep();
        process::remove_at_exit(root.clone());
        let pki = pki::write(&root.join("pki"))
            .unwrap_or_else(|e| panic!("the real tier's PKI could not be written: {e}"));
        let network =
            network::ClusterNetwork::start(pki.public_cert_der.clone(), pki.public_key_der.clone())
                .unwrap_or_else(|e| panic!("the real tier's cluster network did not start: {e}"));
        network.accept(network::NOTIFICATION_CONTROLLER);
        match components::start(engine, &components, &root, pki, &network) {
            Ok(started) => RealCluster {
                engine,
                components,
                root,
                kubeconfig: started.kubeconfig,
                pki: started.pki,
                server: started.server,
                processes: Mutex::new(started.processes),
                ports: started.ports,
                network,
                serial: Mutex::new(()),
            },
            Err(failure) => panic!("the real {} tier did not start: {failure}", engine.label()),
        }
    }

    /// A binary of the component set (`kubectl`, `kustomize`, …).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.components.join("bin").join(name)
    }

    /// A file under the component set's `share/` (install manifests, …).
    pub fn share(&self, rel: &str) -> PathBuf {
        self.components.join("share").join(rel)
    }

    /// The cluster for one test: waits for the previous test to finish, checks every component is
    /// still running, deletes what earlier tests left, and gives a fresh environment and registry.
    pub fn lab(&'static self) -> Lab {
        let guard = self
            .serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.assert_running();
        components::reset(self);
        let env = TestEnv::new();
        let registry = Registry::start(RegistryKind::Plain)
            .unwrap_or_else(|e| panic!("the test registry did not start: {e}"));
        self.network.clear();
        self.network
            .route(IN_CLUSTER_REGISTRY, &registry.host_port());
        Lab {
            cluster: self,
            env,
            registry,
            _serial: guard,
        }
    }

    /// Panics naming any component that exited, with the end of its log.
    pub fn assert_running(&self) {
        let mut processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        for process in processes.iter_mut() {
            if let Some(status) = process.exited() {
                panic!(
                    "real-tier component {} exited ({status}); the end of its log ({}):\n{}",
                    process.name,
                    process.log.display(),
                    process.log_tail(40)
                );
            }
        }
    }

    /// The end of every component's log, for a failing test's message.
    pub fn logs(&self, lines: usize) -> String {
        let processes = self.processes.lock().unwrap_or_else(|p| p.into_inner());
        processes
            .iter()
            .map(|p| {
                format!(
                    "--- {} ({})\n{}",
                    p.name,
                    p.log.display(),
                    p.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `kubectl <args>` against this cluster.
    pub fn kubectl_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = Command::new(self.bin("kubectl"));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG");
        command
    }

    /// `kubectl <args>` with `stdin`; returns the whole output.
    pub fn kubectl_output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.kubectl_command(args);
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run kubectl");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .expect("piped stdin")
                .write_all(text.as_bytes())
                .expect("write kubectl's stdin");
        }
        child.wait_with_output().expect("wait for kubectl")
    }

    /// `kubectl <args>`, which must succeed; returns stdout.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let output = self.kubectl_output(args, None);
        assert!(
            output.status.success(),
            "kubectl {} failed ({}):\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Server-side applies YAML or JSON documents (field manager `ksail-test`).
    pub fn apply(&self, documents: &str) {
        let args = [
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=ksail-test",
            "-f",
            "-",
        ];
        let output = self.kubectl_output(&args, Some(documents));
        assert!(
            output.status.success(),
            "kubectl apply failed ({}):\n{}\nof:\n{documents}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The object as JSON, or `None` when it does not exist. `resource` is a kubectl resource
    /// name (`kustomizations.kustomize.toolkit.fluxcd.io`, `configmap`, …).
    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", resource, name, "-o", "json", "--ignore-not-found"];
        if let Some(namespace) = namespace {
            args.extend(["-n", namespace]);
        }
        let text = self.kubectl(&args);
        if text.trim().is_empty() {
            return None;
        }
        Some(serde_json::from_str(&text).expect("kubectl -o json prints JSON"))
    }

    /// Polls `probe` every 100 ms until it returns `Some`, or panics after `within` with what it
    /// waited for, the last value seen and the end of every component's log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        mut probe: impl FnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            let last = match probe() {
                Ok(value) => return value,
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                panic!(
                    "waited {within:?} for {what}; last seen: {last}\ncomponent logs:\n{}",
                    self.logs(15)
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the object's condition `type_` has status `status`.
    pub fn wait_condition(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        type_: &str,
        status: &str,
    ) -> Value {
        self.wait_condition_field(resource, namespace, name, type_, "status", status)
    }

    /// Waits until the object's condition `type_` has `field` (`status`, `reason`) = `value`;
    /// returns the object.
    pub fn wait_condition_field(
        &self,
        resource: &str,
        namespace: &str,
        name: &str,
        type_: &str,
        field: &str,
        value: &str,
    ) -> Value {
        self.wait_for(
            &format!("{resource} {namespace}/{name} to have {type_} {field}={value}"),
            SETTLE,
            || {
                let object = self
                    .get(resource, Some(namespace), name)
                    .ok_or_else(|| "not found".to_string())?;
                match condition(&object, type_) {
                    Some(c) if c[field] == value => Ok(object),
                    Some(c) => Err(c.to_string()),
                    None => Err(format!("no {type_} condition: {}", object["status"])),
                }
            },
        )
    }
}

/// The condition of `type_` in `status.conditions`.
pub fn condition<'a>(object: &'a Value, type_: &str) -> Option<&'a Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// `cluster update` succeeded and found nothing to change.
pub fn assert_no_changes(update: &Output) {
    assert_exit(update, 0);
    assert_eq!(
        String::from_utf8_lossy(&update.stdout).trim(),
        "No changes detected"
    );
}

/// One test's hold on the cluster (see [`RealCluster::lab`]).
pub struct Lab {
    pub cluster: &'static RealCluster,
    pub env: TestEnv,
    pub registry: Registry,
    _serial: MutexGuard<'static, ()>,
}

impl Lab {
    /// `ksail <args>` in this test's environment, with `KUBECONFIG` pointing at the cluster.
    pub fn ksail<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut command = self.env.ksail(args);
        command.env("KUBECONFIG", &self.cluster.kubeconfig);
        command
    }

    /// Runs ksail and returns its output, printing both streams (shown when the test fails).
    pub fn run(&self, args: &[&str]) -> Output {
        show(args, self.ksail(args).output().expect("run ksail"))
    }

    /// `ksail workload push` (of `work/k8s` to this test's registry, `k8s:dev`), which must
    /// succeed; returns the pushed manifest digest (`sha256:…`).
    pub fn push(&self) -> String {
        self.push_args(&[])
    }

    /// `ksail workload push <args>`; returns the digest on its `pushed`/`unchanged` line.
    pub fn push_args(&self, args: &[&str]) -> String {
        let mut full = vec!["workload", "push"];
        full.extend_from_slice(args);
        let output = self.run(&full);
        assert_exit(&output, 0);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let at = stdout
            .find("@sha256:")
            .unwrap_or_else(|| panic!("no digest in push's stdout: {stdout}"));
        stdout[at + 1..at + 1 + 71].to_string()
    }

    /// The `data.value` of ConfigMap `<APPS>/<name>`, if it exists.
    pub fn configmap_value(&self, name: &str) -> Option<String> {
        self.cluster
            .get("configmap", Some(APPS), name)
            .map(|cm| cm["data"]["value"].as_str().unwrap_or_default().to_string())
    }

    /// A namespace for this test, labelled so that the next test's reset deletes it.
    pub fn namespace(&self, name: &str) {
        self.cluster.apply(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {TEST_LABEL}: \"true\"\n"
        ));
    }

    /// Writes `ksail.yaml` for `engine` with this test's registry as the local registry.
    pub fn write_config(&self, engine: &str) {
        self.env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: {engine}\n    localRegistry:\n      registry: {}\n",
                self.registry.host_port()
            ),
        );
    }

    /// The first push of most tests: `ksail.yaml` for `engine` and ConfigMap `app` = `one`;
    /// returns the pushed digest.
    /// `ksail workload watch <args>` against this cluster, running.
    pub fn watch(&self, args: &[&str]) -> super::watch::Running {
        let mut full = vec!["workload", "watch"];
        full.extend_from_slice(args);
        let mut command = self.env.ksail_process(full);
        command.env("KUBECONFIG", &self.cluster.kubeconfig);
        super::watch::Running::start(command)
    }

    /// With the engine serving the first push: `workload watch` brings the cluster to the tree,
    /// then an edit of ConfigMap `app` is pushed, reconciled and served; Ctrl-C exits 0.
    pub fn assert_watch_follows_an_edit(&self) {
        let round = std::time::Duration::from_secs(120);
        let watch = self.watch(&[]);
        let first = watch.next_line(round);
        assert!(
            first.starts_with("watch: round 1: start → ") && first.contains(" ready ("),
            "{first}"
        );
        self.write("k8s/app.yaml", &configmap("app", "watched"));
        let second = watch.next_line(round);
        assert!(
            second.starts_with("watch: round 2: k8s/app.yaml → pushed sha256:")
                && second.contains(" ready ("),
            "{second}"
        );
        assert_eq!(self.configmap_value("app").as_deref(), Some("watched"));
        let (code, stderr, _) = watch.interrupt();
        assert_eq!(code, Some(0), "{stderr}");
    }

    pub fn first_push(&self, engine: &str) -> String {
        self.write_config(engine);
        self.write("k8s/app.yaml", &configmap("app", "one"));
        self.push()
    }

    /// Adds [`large_configmaps`] (four of 100 kB, several deflate blocks) to the tree, and before
    /// them in tar order 300 kB of noise, whose blocks the layer stores instead of deflating
    /// (src/artifact/gzip.rs), then pushes it; returns the digest and the value each ConfigMap
    /// must end up with. The engines read only the YAML, but they extract the whole layer: the
    /// ConfigMaps arrive only if every stored and deflated block decodes.
    pub fn push_several_deflate_blocks(&self) -> (String, Vec<(String, String)>) {
        let (manifests, expected) = large_configmaps(4, 100_000);
        assert!(
            manifests.len() > 3 * 128 * 1024,
            "the tree spans several blocks"
        );
        self.env
            .write("k8s/large-data.bin", super::push::noise(300_000));
        self.write("k8s/large.yaml", &manifests);
        (self.push(), expected)
    }

    /// Every ConfigMap `<APPS>/<name>` has its `value`.
    pub fn assert_configmaps(&self, expected: Vec<(String, String)>) {
        for (name, value) in expected {
            assert!(self.configmap_value(&name) == Some(value), "{name} differs");
        }
    }

    /// Applies [`plain_flux_sync_at`] (this test's registry, `path` of the artifact) and waits
    /// until the sync Kustomization `flux-system/flux-system` is Ready: Flux serves the pushed
    /// tree on its own.
    pub fn bootstrap_plain_flux_at(&self, path: &str) {
        self.cluster
            .apply(&plain_flux_sync_at(&self.registry.host_port(), path));
        self.cluster.wait_condition(
            "kustomizations.kustomize.toolkit.fluxcd.io",
            "flux-system",
            "flux-system",
            "Ready",
            "True",
        );
    }

    /// Pushes the same tree as tag `old` for the cluster to follow instead of `ksail.yaml`'s
    /// `dev`: tag drift. Returns the digest.
    pub fn push_as_old(&self) -> String {
        self.push_args(&[&format!("oci://{}/k8s:old", self.registry.host_port())])
    }

    /// Writes a manifest file under `work/` (the source tree `workload push` packs).
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        self.env.write(rel, text)
    }

    /// What fake `kind` and `docker` know for the cluster commands: `kind create cluster` writes
    /// this real cluster into the kubeconfig, and the registry container `kind-local-registry`
    /// runs, publishing this test's registry, as `cluster create` leaves it.
    pub fn fake_state(&self) -> FakeState {
        self.fake_state_of("kind")
    }

    /// [`Lab::fake_state`] for cluster `cluster` (`k3d-default`): its registry container
    /// `<cluster>-local-registry`, which the cluster network also resolves from now on.
    pub fn fake_state_of(&self, cluster: &str) -> FakeState {
        let pki = &self.cluster.pki;
        let container = format!("{cluster}-local-registry");
        self.cluster
            .network
            .route(&format!("{container}:5000"), &self.registry.host_port());
        let mut state = FakeState::new()
            .with_kubeconfig_server(&self.cluster.server)
            .with_container(
                &container,
                FakeContainer::registry(Some(cluster), "127.0.0.1", self.registry.port()),
            );
        state.kubeconfig_certificate_authority = Some(pki.ca_cert.display().to_string());
        state.kubeconfig_client_certificate = Some((
            pki.admin_cert.display().to_string(),
            pki.admin_key.display().to_string(),
        ));
        state
    }

    /// Fake `kind` and `docker` (first on ksail's `PATH`) for `cluster create`: no cluster exists
    /// yet.
    pub fn fake_tools_before_create(&self) -> FakeTools {
        FakeTools::install(&self.env, self.fake_state())
    }

    /// Fake `kind` and `docker` (first on ksail's `PATH`) for a cluster `kind` that exists.
    pub fn fake_tools(&self) -> FakeTools {
        FakeTools::install(
            &self.env,
            self.fake_state().with_cluster(FakeCluster::kind("kind")),
        )
    }

    /// `ksail <args>` with its own kubeconfig file (`<tmp>/kubeconfig`, which fake `kind` writes
    /// and removes contexts in) and the engine install manifests of the pinned versions.
    pub fn run_cluster_command(&self, args: &[&str]) -> Output {
        let output = self
            .env
            .ksail(args)
            .env("KUBECONFIG", self.own_kubeconfig())
            .env(
                "KSAIL_FLUX_OPERATOR_MANIFEST",
                self.cluster.share("install/flux-operator.yaml"),
            )
            .env(
                "KSAIL_ARGOCD_MANIFEST",
                self.cluster.share("install/argocd.yaml"),
            )
            .output()
            .expect("run ksail");
        show(args, output)
    }

    /// `cluster init` for `engine` with this test's registry, then a source tree whose
    /// kustomization lists ConfigMap `app` = `one`.
    pub fn init_project(&self, engine: &str) {
        self.init_project_with(engine, &[]);
    }

    /// [`Lab::init_project`] with more `cluster init` flags (`--distribution K3s`).
    pub fn init_project_with(&self, engine: &str, flags: &[&str]) {
        let registry = self.registry.host_port();
        let init = self.run_cluster_command(
            &[&super::cluster_init_args(engine, &registry)[..], flags].concat(),
        );
        assert_exit(&init, 0);
        self.write("k8s/app.yaml", &configmap("app", "one"));
        self.write(
            "k8s/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - app.yaml\n",
        );
    }

    /// The middle of the cluster loop, after `cluster create`: the engine's install manifest
    /// made `namespace/deployment` available and the first push (`app` = `one`) is served; then
    /// `app` = `two` is pushed and `workload reconcile` succeeds. Returns the second digest.
    pub fn created_then_push_and_reconcile(&self, namespace: &str, deployment: &str) -> String {
        let installed = self
            .cluster
            .get("deployment", Some(namespace), deployment)
            .expect("the install manifest's Deployment exists");
        assert_eq!(installed["status"]["availableReplicas"], 1);
        assert_eq!(self.configmap_value("app").as_deref(), Some("one"));

        self.write("k8s/app.yaml", &configmap("app", "two"));
        let second = self.push_args(&[]);
        let reconcile = self.run_cluster_command(&["workload", "reconcile", "--timeout", "50s"]);
        assert_exit(&reconcile, 0);
        assert_eq!(self.configmap_value("app").as_deref(), Some("two"));
        second
    }

    /// `cluster update` (against the lab's cluster, with fake tools installed) repairs a
    /// workload tag `old` back to `dev` in place.
    pub fn update_repairs_the_tag(&self) {
        let output = self.run(&["cluster", "update"]);
        assert_exit(&output, 0);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("workload tag: old → dev (repaired in place)"),
            "{stdout}"
        );
    }

    /// Renames the source directory to `apps/` in ksail.yaml (ConfigMap `app` = `three` in it)
    /// and pushes it: the push goes to repository `apps`, which the cluster does not follow yet.
    /// Returns the pushed digest.
    pub fn push_from_a_renamed_source_directory(&self) -> String {
        self.write("apps/app.yaml", &configmap("app", "three"));
        let config = fs::read_to_string(self.env.work().join("ksail.yaml")).expect("ksail.yaml");
        let config = match config.split_once("  workload:\n") {
            Some((before, after)) => {
                format!("{before}  workload:\n    sourceDirectory: apps\n{after}")
            }
            None => format!("{config}  workload:\n    sourceDirectory: apps\n"),
        };
        self.write("ksail.yaml", &config);
        self.push()
    }

    /// `cluster update` turns the sync object from repository `k8s` to `apps`, and says only that.
    pub fn update_turns_the_sync_to_apps(&self) {
        let update = self.run_cluster_command(&["cluster", "update"]);
        assert_exit(&update, 0);
        assert_eq!(
            String::from_utf8_lossy(&update.stdout).trim(),
            format!(
                "workload url: oci://{IN_CLUSTER_REGISTRY}/k8s → oci://{IN_CLUSTER_REGISTRY}/apps (repaired in place)"
            )
        );
    }

    /// The end of the cluster loop: `cluster update` finds nothing to change, `cluster delete`
    /// removes the cluster's kubeconfig context.
    pub fn update_then_delete(&self) {
        assert_no_changes(&self.run_cluster_command(&["cluster", "update"]));
        let delete = self.run_cluster_command(&["cluster", "delete"]);
        assert_exit(&delete, 0);
        let kubeconfig = fs::read_to_string(self.own_kubeconfig()).unwrap_or_default();
        assert!(
            !kubeconfig.contains("\"kind-kind\"") && !kubeconfig.contains("\"k3d-"),
            "delete removed the cluster's context: {kubeconfig}"
        );
    }

    /// The kubeconfig file of [`Lab::run_cluster_command`].
    pub fn own_kubeconfig(&self) -> PathBuf {
        self.env.root().join("kubeconfig")
    }

    /// Removes a file under `work/`.
    pub fn remove(&self, rel: &str) {
        fs::remove_file(self.env.work().join(rel)).expect("remove a source file");
    }
}
