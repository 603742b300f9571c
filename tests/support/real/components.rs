//! How each real component is started, in order, with its readiness check; and the reset between
//! tests. Every flag is here and in docs/testing.md "Real tier", which says why.

use std::fmt;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::network::ClusterNetwork;
use super::process::{self, Process};
use super::{RealCluster, TEST_LABEL, pki};
use crate::support::http;

/// How long one component may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

pub const FLUX_NAMESPACE: &str = "flux-system";
pub const ARGOCD_NAMESPACE: &str = "argocd";
/// The context name of the kubeconfig the harness writes: the one `kind create cluster` makes for
/// the default cluster name, so cluster commands find it as they find a kind cluster's.
pub const CONTEXT: &str = "kind-kind";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Flux,
    ArgoCd,
}

impl Engine {
    pub fn label(self) -> &'static str {
        match self {
            Engine::Flux => "flux",
            Engine::ArgoCd => "argocd",
        }
    }
}

/// Addresses the components were given (tests read some of them).
#[derive(Debug, Clone, Default)]
pub struct Ports {
    pub etcd: u16,
    pub apiserver: u16,
    /// source-controller's artifact server (Flux only).
    pub artifacts: u16,
    pub repo_server: u16,
    pub redis: u16,
}

pub struct Started {
    pub pki: pki::Pki,
    pub kubeconfig: PathBuf,
    pub server: String,
    pub processes: Vec<Process>,
    pub ports: Ports,
}

/// Why the tier did not start: the step, and the end of the component's log when there is one.
#[derive(Debug)]
pub struct StartFailure(String);

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn failure(message: impl Into<String>) -> StartFailure {
    StartFailure(message.into())
}

/// A free loopback port (bound and released; the component binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

/// The start-up in progress: directories, the processes so far, and a timing line per step.
struct Boot<'a> {
    bin: PathBuf,
    components: &'a Path,
    root: &'a Path,
    processes: Vec<Process>,
    kubeconfig: PathBuf,
    /// `HTTP_PROXY` of the engine's components: the cluster network.
    proxy: String,
    /// The tier's CA, which the engine's components trust besides the system's.
    ca: PathBuf,
    timings: Vec<String>,
    started: Instant,
}

impl Boot<'_> {
    fn spawn(&mut self, name: &str, command: Command) -> Result<usize, StartFailure> {
        let log = self.root.join("logs").join(format!("{name}.log"));
        let process = process::spawn(name, command, &log)
            .map_err(|e| failure(format!("cannot start {name}: {e}")))?;
        self.processes.push(process);
        Ok(self.processes.len() - 1)
    }

    fn command(&self, binary: &str) -> Command {
        let mut command = Command::new(self.bin.join(binary));
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.root)
            // Argo CD's repo-server leaves its OCI extractions (`_argocd-repo/`) and git wrappers
            // in the temp directory; under the run's root they go with it.
            .env("TMPDIR", self.root.join("tmp"));
        command
    }

    /// A GitOps engine component: reaches registries through the cluster network, and trusts
    /// the certificate it presents for the public hosts it stands in for (Go reads
    /// `SSL_CERT_FILE`; it holds only the tier's CA, as nothing else is reachable).
    fn engine_command(&self, binary: &str) -> Command {
        let mut command = self.command(binary);
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HTTP_PROXY", &self.proxy)
            .env("HTTPS_PROXY", &self.proxy)
            .env("SSL_CERT_FILE", &self.ca);
        command
    }

    /// Polls `ready` until it holds; fails when the process exits or [`READY_WITHIN`] passes.
    fn wait_ready(
        &mut self,
        index: usize,
        mut ready: impl FnMut(&Boot) -> Result<(), String>,
    ) -> Result<(), StartFailure> {
        let t0 = Instant::now();
        loop {
            let last = match ready(self) {
                Ok(()) => break,
                Err(last) => last,
            };
            let process = &mut self.processes[index];
            if let Some(status) = process.exited() {
                return Err(failure(format!(
                    "{} exited before it was ready ({status}); the end of its log ({}):\n{}",
                    process.name,
                    process.log.display(),
                    process.log_excerpt()
                )));
            }
            if t0.elapsed() > READY_WITHIN {
                return Err(failure(format!(
                    "{} was not ready within {READY_WITHIN:?} (last: {last}); the end of its log ({}):\n{}",
                    process.name,
                    process.log.display(),
                    process.log_excerpt()
                )));
            }
            std::thread::sleep(POLL);
        }
        let name = self.processes[index].name.clone();
        self.step(&format!("{name} ready"));
        Ok(())
    }

    fn step(&mut self, what: &str) {
        self.timings.push(format!(
            "{:>6.2}s {what}",
            self.started.elapsed().as_secs_f64()
        ));
    }

    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env_remove("KUBECONFIG")
            .output()
            .map_err(|e| format!("cannot run kubectl: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
        }
    }

    fn kubectl_step(&mut self, what: &str, args: &[&str]) -> Result<String, StartFailure> {
        let out = self
            .kubectl(args)
            .map_err(|e| failure(format!("{what}: kubectl {} failed: {e}", args.join(" "))))?;
        self.step(what);
        Ok(out)
    }
}

/// `GET http://127.0.0.1:<port><path>` answers 200.
fn http_ok(port: u16, path: &str) -> Result<(), String> {
    match http::get(&format!("http://127.0.0.1:{port}{path}"), &[]) {
        Ok(response) if response.status == 200 => Ok(()),
        Ok(response) => Err(format!("status {}: {}", response.status, response.text())),
        Err(e) => Err(e.to_string()),
    }
}

/// Starts the control plane and `engine`'s components; writes `<root>/kubeconfig`.
pub fn start(
    engine: Engine,
    components: &Path,
    root: &Path,
    pki: pki::Pki,
    network: &ClusterNetwork,
) -> Result<Started, StartFailure> {
    let setup = |what: &str, e: std::io::Error| failure(format!("{what}: {e}"));
    fs::create_dir_all(root.join("logs")).map_err(|e| setup("create the log directory", e))?;
    fs::create_dir_all(root.join("tmp")).map_err(|e| setup("create the temp directory", e))?;
    let mut ports = Ports {
        etcd: free_port(),
        apiserver: free_port(),
        ..Ports::default()
    };
    let server = format!("https://127.0.0.1:{}", ports.apiserver);
    let kubeconfig = root.join("kubeconfig");
    let config = pki::kubeconfig(&pki, &server, CONTEXT);
    fs::write(
        &kubeconfig,
        serde_json::to_vec_pretty(&config).expect("JSON serialises"),
    )
    .map_err(|e| setup("write the kubeconfig", e))?;

    let mut boot = Boot {
        bin: components.join("bin"),
        components,
        root,
        processes: Vec::new(),
        kubeconfig: kubeconfig.clone(),
        proxy: network.proxy_url(),
        ca: pki.ca_cert.clone(),
        timings: Vec::new(),
        started: Instant::now(),
    };
    start_control_plane(&mut boot, &pki, &mut ports)?;
    match engine {
        Engine::Flux => start_flux(&mut boot, &mut ports, network)?,
        Engine::ArgoCd => start_argocd(&mut boot, &mut ports)?,
    }
    let timings = boot.timings.join("\n");
    let _ = fs::write(root.join("startup.txt"), &timings);
    eprintln!(
        "real {} tier up in {:.1}s ({}):\n{timings}",
        engine.label(),
        boot.started.elapsed().as_secs_f64(),
        root.display()
    );
    Ok(Started {
        pki,
        kubeconfig,
        server,
        processes: boot.processes,
        ports,
    })
}

fn start_control_plane(
    boot: &mut Boot,
    pki: &pki::Pki,
    ports: &mut Ports,
) -> Result<(), StartFailure> {
    // etcd: one member, no fsync (its data is thrown away).
    let peer = free_port();
    let client_url = format!("http://127.0.0.1:{}", ports.etcd);
    let peer_url = format!("http://127.0.0.1:{peer}");
    let mut etcd = boot.command("etcd");
    etcd.arg("--name=real")
        .arg(format!("--data-dir={}", boot.root.join("etcd").display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=real={peer_url}"))
        .arg("--unsafe-no-fsync")
        .arg("--log-level=warn");
    let index = boot.spawn("etcd", etcd)?;
    let etcd_port = ports.etcd;
    boot.wait_ready(index, |_| http_ok(etcd_port, "/health"))?;

    let path = |p: &Path| p.display().to_string();
    let mut apiserver = boot.command("kube-apiserver");
    apiserver
        .arg(format!("--etcd-servers={client_url}"))
        .arg("--bind-address=127.0.0.1")
        .arg("--advertise-address=127.0.0.1")
        .arg(format!("--secure-port={}", ports.apiserver))
        .arg(format!(
            "--cert-dir={}",
            boot.root.join("apiserver").display()
        ))
        .arg(format!("--tls-cert-file={}", path(&pki.serving_cert)))
        .arg(format!("--tls-private-key-file={}", path(&pki.serving_key)))
        .arg(format!("--client-ca-file={}", path(&pki.ca_cert)))
        .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
        .arg(format!(
            "--service-account-key-file={}",
            path(&pki.service_account_pub)
        ))
        .arg(format!(
            "--service-account-signing-key-file={}",
            path(&pki.service_account_key)
        ))
        .arg("--service-cluster-ip-range=10.0.0.0/24")
        .arg("--authorization-mode=RBAC")
        .arg("--allow-privileged=true")
        .arg("--endpoint-reconciler-type=none")
        .arg("--disable-admission-plugins=ServiceAccount")
        .arg("--profiling=false");
    let index = boot.spawn("kube-apiserver", apiserver)?;
    boot.wait_ready(index, |b| {
        b.kubectl(&["get", "--raw", "/readyz"])
            .and_then(|out| if out.trim() == "ok" { Ok(()) } else { Err(out) })
    })?;

    // Namespace deletion, garbage collection (Argo CD prunes with foreground deletion),
    // Deployment → ReplicaSet → Pod.
    let mut kcm = boot.command("kube-controller-manager");
    kcm.arg(format!("--kubeconfig={}", path(&boot.kubeconfig)))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()))
        .arg("--leader-elect=false")
        .arg(format!("--root-ca-file={}", path(&pki.ca_cert)))
        .arg(format!(
            "--service-account-private-key-file={}",
            path(&pki.service_account_key)
        ))
        .arg("--use-service-account-credentials=false")
        // A node whose heartbeat is late is marked NotReady, and its Pods with it (Deployments
        // unavailable, FluxInstance health checks stuck): kwok renews the node's Lease, and the
        // grace period keeps a busy 2-core machine from tripping it anyway.
        .arg("--node-monitor-grace-period=1h")
        .arg("--profiling=false");
    boot.spawn("kube-controller-manager", kcm)?;

    let mut scheduler = boot.command("kube-scheduler");
    scheduler
        .arg(format!("--kubeconfig={}", path(&boot.kubeconfig)))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--secure-port={}", free_port()))
        .arg("--leader-elect=false")
        .arg("--profiling=false");
    boot.spawn("kube-scheduler", scheduler)?;

    // kwok plays the kubelet: the node Ready, scheduled Pods Running and Ready at once.
    let mut kwok = boot.command("kwok");
    kwok.arg(format!("--kubeconfig={}", path(&boot.kubeconfig)))
        .arg(format!(
            "--config={}",
            boot.components.join("share/kwok-stages.yaml").display()
        ))
        .arg("--manage-all-nodes=true")
        // The kubelet's heartbeat: without it (the binary's default is none) the node turns
        // NotReady after the grace period.
        .arg("--node-lease-duration-seconds=40")
        .arg("--cidr=10.0.0.1/24")
        .arg("--node-ip=10.0.0.1")
        .arg(format!("--server-address=127.0.0.1:{}", free_port()));
    boot.spawn("kwok", kwok)?;
    let node = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": "kwok-node-0",
            "labels": {
                "kubernetes.io/hostname": "kwok-node-0",
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
        },
    });
    apply_json(boot, "create the kwok node", &node)?;
    Ok(())
}

fn apply_json(boot: &mut Boot, what: &str, object: &serde_json::Value) -> Result<(), StartFailure> {
    apply_text(boot, what, &object.to_string())
}

/// Server-side applies YAML or JSON documents as one start-up step named `what`.
fn apply_text(boot: &mut Boot, what: &str, documents: &str) -> Result<(), StartFailure> {
    let file = boot
        .root
        .join(format!("{}.yaml", what.replace([' ', ','], "-")));
    fs::write(&file, documents).map_err(|e| failure(format!("{what}: {e}")))?;
    let file = file.display().to_string();
    boot.kubectl_step(
        what,
        &[
            "apply",
            "--server-side",
            "--field-manager=ksail-test",
            "-f",
            &file,
        ],
    )?;
    Ok(())
}

/// Server-side applies every CRD in `crds/<set>` and waits until each is Established.
fn install_crds(boot: &mut Boot, set: &str) -> Result<(), StartFailure> {
    let dir = boot.components.join("crds").join(set);
    let dir = dir.display().to_string();
    boot.kubectl_step(
        &format!("apply the {set} CRDs"),
        &[
            "apply",
            "--server-side",
            "--field-manager=ksail-test",
            "-f",
            &dir,
        ],
    )?;
    // Polled rather than `kubectl wait`, which fails on a CRD whose status has no conditions yet.
    let t0 = Instant::now();
    loop {
        let listed = boot
            .kubectl(&["get", "-f", &dir, "-o", "json"])
            .map_err(|e| failure(format!("read the {set} CRDs: {e}")))?;
        let listed: serde_json::Value = serde_json::from_str(&listed)
            .map_err(|e| failure(format!("read the {set} CRDs: {e}")))?;
        let pending: Vec<String> = listed["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|crd| {
                !crd["status"]["conditions"]
                    .as_array()
                    .is_some_and(|conditions| {
                        conditions
                            .iter()
                            .any(|c| c["type"] == "Established" && c["status"] == "True")
                    })
            })
            .map(|crd| {
                crd["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect();
        if pending.is_empty() {
            break;
        }
        if t0.elapsed() > READY_WITHIN {
            return Err(failure(format!(
                "the {set} CRDs were not Established within {READY_WITHIN:?}: {}",
                pending.join(", ")
            )));
        }
        std::thread::sleep(POLL);
    }
    boot.step(&format!("the {set} CRDs established"));
    Ok(())
}

fn create_namespace(boot: &mut Boot, namespace: &str) -> Result<(), StartFailure> {
    let object = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
    });
    apply_json(boot, &format!("create namespace {namespace}"), &object)
}

/// The version of `name` in `tests/real/versions.env`.
pub fn pinned_version(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/real/versions.env");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name}=")))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{} names no {name}", path.display()))
}

/// A registry standing in for ghcr.io (through the cluster network), holding what
/// `cluster create`'s FluxInstance makes flux-operator pull: the Flux manifests of the pinned
/// operator (`controlplaneio-fluxcd/flux-operator-manifests:v<version>`, the layout of its
/// bundled `config/data`, which is what the release artifact holds).
fn start_public_registry(boot: &mut Boot, network: &ClusterNetwork) -> Result<(), StartFailure> {
    let dir = boot.root.join("public-registry");
    fs::create_dir_all(&dir).map_err(|e| failure(format!("create {}: {e}", dir.display())))?;
    let port = free_port();
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.join("data").display()
    );
    fs::write(dir.join("config.yml"), config)
        .map_err(|e| failure(format!("write the public registry's config: {e}")))?;
    let mut registry = Command::new("docker-registry");
    registry
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("serve")
        .arg(dir.join("config.yml"));
    let index = boot.spawn("public-registry", registry)?;
    boot.wait_ready(index, |_| http_ok(port, "/v2/"))?;
    let layer = tar_gz_dir(&boot.components.join("share/flux-operator-data"))
        .map_err(|e| failure(format!("pack flux-operator's manifests: {e}")))?;
    let tag = pinned_version("FLUX_OPERATOR");
    http::seed_image(
        &format!("127.0.0.1:{port}"),
        "controlplaneio-fluxcd/flux-operator-manifests",
        &tag,
        &layer,
        &[],
        None,
    );
    network.tls_route("ghcr.io:443", &format!("127.0.0.1:{port}"));
    boot.step(&format!(
        "ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:{tag} served"
    ));
    Ok(())
}

/// A gzipped tar of the directory's contents (paths relative to it).
fn tar_gz_dir(dir: &Path) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    tar.append_dir_all(".", dir)?;
    tar.into_inner()?.finish()
}

fn start_flux(
    boot: &mut Boot,
    ports: &mut Ports,
    network: &ClusterNetwork,
) -> Result<(), StartFailure> {
    start_public_registry(boot, network)?;
    install_crds(boot, "flux")?;
    install_crds(boot, "flux-operator")?;
    create_namespace(boot, FLUX_NAMESPACE)?;
    ports.artifacts = free_port();
    let artifacts = format!("127.0.0.1:{}", ports.artifacts);
    let storage = boot.root.join("source-controller");
    fs::create_dir_all(&storage)
        .map_err(|e| failure(format!("create {}: {e}", storage.display())))?;

    let controllers: [(&str, Vec<String>); 3] = [
        (
            "source-controller",
            vec![
                format!("--storage-path={}", storage.display()),
                format!("--storage-addr={artifacts}"),
                format!("--storage-adv-addr={artifacts}"),
            ],
        ),
        ("kustomize-controller", Vec::new()),
        ("helm-controller", Vec::new()),
    ];
    let mut started = Vec::new();
    for (name, extra) in controllers {
        let health = free_port();
        let mut command = boot.engine_command(name);
        command
            .env("RUNTIME_NAMESPACE", FLUX_NAMESPACE)
            .arg("--watch-all-namespaces=true")
            .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()))
            .arg(format!("--health-addr=127.0.0.1:{health}"))
            .args(extra);
        started.push((boot.spawn(name, command)?, health));
    }

    // flux-operator renders the Flux install from its bundled data (a copy: it writes there) and
    // applies it; the Deployments it makes become Available through kwok, while the controllers
    // above do the work.
    let data = boot.root.join("flux-operator-data");
    copy_dir(&boot.components.join("share/flux-operator-data"), &data)
        .map_err(|e| failure(format!("copy flux-operator's data: {e}")))?;
    let health = free_port();
    let mut operator = boot.engine_command("flux-operator");
    operator
        .env("RUNTIME_NAMESPACE", FLUX_NAMESPACE)
        .arg("--enable-leader-election=false")
        .arg(format!("--storage-path={}", data.display()))
        .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()))
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--web-server-port=0");
    started.push((boot.spawn("flux-operator", operator)?, health));

    for (index, health) in started {
        boot.wait_ready(index, |_| http_ok(health, "/readyz"))?;
    }
    Ok(())
}

fn start_argocd(boot: &mut Boot, ports: &mut Ports) -> Result<(), StartFailure> {
    install_crds(boot, "argocd")?;
    create_namespace(boot, ARGOCD_NAMESPACE)?;
    // What argocd-server and the install manifest would otherwise provide: the two labelled
    // config objects and the default AppProject.
    let config = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: argocd-cm
  namespace: argocd
  labels: {app.kubernetes.io/part-of: argocd, app.kubernetes.io/name: argocd-cm}
data:
  timeout.reconciliation: 180s
---
apiVersion: v1
kind: Secret
metadata:
  name: argocd-secret
  namespace: argocd
  labels: {app.kubernetes.io/part-of: argocd, app.kubernetes.io/name: argocd-secret}
stringData:
  server.secretkey: real-tier-not-a-secret
---
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
  namespace: argocd
spec:
  sourceRepos: ["*"]
  destinations: [{namespace: "*", server: "*"}]
  clusterResourceWhitelist: [{group: "*", kind: "*"}]
"#;
    apply_text(boot, "argocd-cm, argocd-secret, AppProject default", config)?;

    ports.redis = free_port();
    let mut redis = Command::new("redis-server");
    redis
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--port")
        .arg(ports.redis.to_string())
        .arg("--save")
        .arg("")
        .arg("--appendonly")
        .arg("no")
        .current_dir(boot.root);
    let redis_index = boot.spawn("redis-server", redis)?;
    let redis_port = ports.redis;
    boot.wait_ready(redis_index, |_| {
        std::net::TcpStream::connect(("127.0.0.1", redis_port))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;

    // The directories Argo CD's components expect in their image.
    let mut dirs = Vec::new();
    for sub in ["tls", "ssh", "gnupg", "plugins", "app"] {
        let dir = boot.root.join("argocd").join(sub);
        fs::create_dir_all(&dir).map_err(|e| failure(format!("create {}: {e}", dir.display())))?;
        dirs.push(dir);
    }
    let argocd_env = |command: &mut Command, binary_name: &str, boot: &Boot| {
        command
            .env("ARGOCD_BINARY_NAME", binary_name)
            .env("ARGOCD_FAKE_IN_CLUSTER", "true")
            .env("ARGOCD_GPG_ENABLED", "false")
            .env("ARGOCD_TLS_DATA_PATH", &dirs[0])
            .env("ARGOCD_SSH_DATA_PATH", &dirs[1])
            .env("ARGOCD_GNUPGHOME", &dirs[2])
            .env("ARGOCD_PLUGINSOCKFILEPATH", &dirs[3])
            .env("ARGOCD_EXEC_TIMEOUT", "60s")
            // Else a fixed /tmp/reposerver-ask-pass.sock (util/askpass), outside the run's root.
            .env(
                "ARGOCD_ASK_PASS_SOCK",
                boot.root.join("tmp").join("ask-pass.sock"),
            )
            // The repo-server runs `kustomize` for a kustomization.yaml: ours, first on PATH.
            .env("PATH", format!("{}:/usr/bin:/bin", boot.bin.display()))
            .current_dir(&dirs[4]);
    };

    ports.repo_server = free_port();
    let repo_metrics = free_port();
    let mut repo = boot.engine_command("argocd");
    argocd_env(&mut repo, "argocd-repo-server", boot);
    repo.arg("--address=127.0.0.1")
        .arg(format!("--port={}", ports.repo_server))
        .arg("--metrics-address=127.0.0.1")
        .arg(format!("--metrics-port={repo_metrics}"))
        .arg(format!("--redis=127.0.0.1:{}", ports.redis))
        .arg("--disable-tls")
        // Its default (an mTLS CA in the image) is refused together with --disable-tls.
        .arg("--client-ca-path=")
        .arg("--loglevel=info");
    let repo_index = boot.spawn("argocd-repo-server", repo)?;

    let controller_metrics = free_port();
    let mut controller = boot.engine_command("argocd");
    argocd_env(&mut controller, "argocd-application-controller", boot);
    controller
        .arg(format!("--kubeconfig={}", boot.kubeconfig.display()))
        .arg(format!("--namespace={ARGOCD_NAMESPACE}"))
        .arg(format!("--redis=127.0.0.1:{}", ports.redis))
        .arg(format!("--repo-server=127.0.0.1:{}", ports.repo_server))
        .arg("--repo-server-plaintext")
        .arg(format!("--metrics-port={controller_metrics}"))
        .arg("--app-resync=180")
        .arg("--loglevel=info");
    let controller_index = boot.spawn("argocd-application-controller", controller)?;

    boot.wait_ready(repo_index, |_| http_ok(repo_metrics, "/healthz"))?;
    boot.wait_ready(controller_index, |_| {
        http_ok(controller_metrics, "/healthz")
    })?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The GitOps objects every test may create, deleted before each test (all namespaces).
const FLUX_KINDS: &[&str] = &[
    "fluxinstances.fluxcd.controlplane.io",
    "kustomizations.kustomize.toolkit.fluxcd.io",
    "helmreleases.helm.toolkit.fluxcd.io",
    "ocirepositories.source.toolkit.fluxcd.io",
    "helmcharts.source.toolkit.fluxcd.io",
];
const ARGOCD_KINDS: &[&str] = &["applications.argoproj.io"];

/// Deletes what earlier tests left: the engine's objects in every namespace (waiting for their
/// finalizers), the namespaces labelled [`TEST_LABEL`], and Secrets and ConfigMaps tests made in
/// the engine's namespace.
pub fn reset(cluster: &RealCluster) {
    let kinds = match cluster.engine {
        Engine::Flux => FLUX_KINDS,
        Engine::ArgoCd => ARGOCD_KINDS,
    };
    if cluster.engine == Engine::Flux {
        // Deleting a FluxInstance uninstalls Flux, CRDs included, unless its reconciliation is
        // disabled (flux-operator internal/controller/fluxinstance_uninstaller.go): then the
        // operator only drops its finalizer, and the tier's CRDs stay.
        cluster.kubectl(&[
            "annotate",
            "fluxinstances.fluxcd.controlplane.io",
            "--all",
            "--all-namespaces",
            "--overwrite",
            "fluxcd.controlplane.io/reconcile=disabled",
        ]);
    }
    for kind in kinds {
        cluster.kubectl(&[
            "delete",
            kind,
            "--all",
            "--all-namespaces",
            "--wait=true",
            "--timeout=60s",
            "--ignore-not-found",
        ]);
    }
    cluster.kubectl(&[
        "delete",
        "namespace",
        "-l",
        &format!("{TEST_LABEL}=true"),
        "--wait=true",
        "--timeout=60s",
        "--ignore-not-found",
    ]);
    let namespace = match cluster.engine {
        Engine::Flux => FLUX_NAMESPACE,
        Engine::ArgoCd => ARGOCD_NAMESPACE,
    };
    // Events outlive the objects they are about; a new object of the same name would inherit
    // them in ksail's diagnostics report.
    cluster.kubectl(&["delete", "events", "--all", "-n", namespace]);
    for kind in ["secrets", "configmaps"] {
        cluster.kubectl(&[
            "delete",
            kind,
            "-n",
            namespace,
            "-l",
            &format!("{TEST_LABEL}=true"),
            "--ignore-not-found",
        ]);
    }
}
