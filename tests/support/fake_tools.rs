//! Fake `kind`, `k3d` and `docker` executables (testing.md "Fake executables").
//!
//! [`FakeTools::install`] writes `tests/support/fake_tools.py` as `bin/kind`, `bin/k3d` and
//! `bin/docker` (first on the child's `PATH`), with the system `python3` as interpreter. Each
//! invocation appends `{"argv": [...], "env": {"KUBECONFIG": …}, "stdin": …}` to
//! `<tmp>/calls.jsonl` (the file [`TestEnv::calls`] reads) and answers from `<tmp>/state.json`:
//!
//! | call | behaviour |
//! |---|---|
//! | `kind get clusters`, `k3d cluster list [-o json]` | the state's clusters of that distribution |
//! | `kind get nodes --name <n>`, `k3d node list -o json` | the cluster's nodes |
//! | `kind create cluster --name <n> --config <p>`, `k3d cluster create <n> --config <p>` | adds the cluster (with the config file's content), its node containers and network (`kind` / `k3d-<n>`), and writes context `kind-<n>` / `k3d-<n>` pointing at [`FakeState::kubeconfig_server`] into the first `KUBECONFIG` file, merging (as JSON; a YAML file needs PyYAML) |
//! | `kind delete cluster --name <n>`, `k3d cluster delete <n>` | removes them (and the context); absent is fine |
//! | `docker info` | succeeds (script it to fail) |
//! | `docker inspect <names>` | docker's JSON for known containers; `Error: No such object: <n>` and exit 1 otherwise |
//! | `docker run -d --name … -p … --label … <image>` | records a running container; name conflicts and taken ports fail as docker does |
//! | `docker start`, `docker stop`, `docker rm [--force] [--volumes]` | change or remove containers |
//! | `docker network connect <net> <c>` | needs a known network; "already exists" when connected |
//! | `docker exec -i <c> sh -c '… cat > <path>'` / `docker exec <c> cat <path>` | stores stdin as the container's file / prints it |
//!
//! A scripted override ([`FakeTools::script`]) matching a prefix of the argv (program name
//! included) replaces the behaviour above with an exit code, stdout and stderr.
//!
//! Optional: with [`FakeState::start_registry`], `docker run … registry:*` also starts a real
//! `docker-registry` on the published loopback port (storage under `<tmp>/registries/<name>`), and
//! `docker rm`/`stop` stops it; dropping the [`FakeTools`] kills any that are left.
//!
//! Needs `python3` in `/usr/local/bin`, `/usr/bin` or `/bin` (only the standard library).
#![allow(unsafe_code)] // signals and process groups are libc calls; denied everywhere else

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::env::{SYSTEM_PATH, TestEnv};
use super::fakes::write_executable;

const SCRIPT: &str = include_str!("fake_tools.py");
/// The file `ksail cluster create` writes into every node to mark the cluster as its own.
pub const OWNER_MARK: &str = "/etc/ksail/cluster";
/// The executables the fake plays.
pub const TOOLS: [&str; 3] = ["kind", "k3d", "docker"];

/// What the fakes know; serialised as `<tmp>/state.json`.
/// Fields missing from the JSON take their [`Default`] values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeState {
    pub clusters: Vec<FakeCluster>,
    pub containers: BTreeMap<String, FakeContainer>,
    /// Docker networks that exist (`docker network connect` needs one).
    pub networks: Vec<String>,
    /// The labels of networks made with `docker network create --label`.
    pub network_labels: BTreeMap<String, BTreeMap<String, String>>,
    pub scripts: Vec<FakeScript>,
    /// The server URL that `kind/k3d create` write into the kubeconfig (the fake API server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_server: Option<String>,
    /// A bearer token for that kubeconfig user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_token: Option<String>,
    /// The CA file of that server, for a real API server (the real tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_certificate_authority: Option<String>,
    /// A client certificate and key file for that kubeconfig user (the real tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubeconfig_client_certificate: Option<(String, String)>,
    /// Back `registry:*` containers with a real `docker-registry` process.
    pub start_registry: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeCluster {
    pub name: String,
    /// `Vanilla` (kind) or `K3s` (k3d).
    pub distribution: String,
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The config file's content at `create` time.
    #[serde(default)]
    pub config: Option<String>,
    /// k3d found its network already there at create, and leaves it on delete.
    #[serde(default)]
    pub network_external: bool,
}

impl FakeCluster {
    /// A kind cluster with one control-plane node, as `kind create cluster` makes it.
    pub fn kind(name: &str) -> FakeCluster {
        FakeCluster::with_node(name, "Vanilla", format!("{name}-control-plane"))
    }

    /// A k3d cluster with one server node.
    pub fn k3d(name: &str) -> FakeCluster {
        FakeCluster::with_node(name, "K3s", format!("k3d-{name}-server-0"))
    }

    fn with_node(name: &str, distribution: &str, node: String) -> FakeCluster {
        FakeCluster {
            name: name.to_string(),
            distribution: distribution.to_string(),
            nodes: vec![node],
            config: None,
            network_external: false,
        }
    }

    fn network(&self) -> String {
        match self.distribution.as_str() {
            "Vanilla" => "kind".to_string(),
            _ => format!("k3d-{}", self.name),
        }
    }
}

/// A container the fake docker knows; fields missing from the JSON take their [`Default`]
/// values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FakeContainer {
    pub image: String,
    pub running: bool,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<FakePort>,
    pub networks: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// Files written with `docker exec -i … sh -c '… cat > <path>'`, by path.
    pub files: BTreeMap<String, String>,
    /// The real `docker-registry` process behind it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl FakeContainer {
    /// A running `registry:3` container publishing `host_ip:port` → 5000, labelled
    /// `io.ksail.registry=<cluster>` when `owner` is given (as ksail creates it).
    pub fn registry(owner: Option<&str>, host_ip: &str, port: u16) -> FakeContainer {
        FakeContainer {
            image: "registry:3".to_string(),
            running: true,
            labels: owner
                .map(|cluster| {
                    BTreeMap::from([("io.ksail.registry".to_string(), cluster.to_string())])
                })
                .unwrap_or_default(),
            ports: vec![FakePort {
                host_ip: host_ip.to_string(),
                host_port: port,
                container_port: 5000,
            }],
            networks: vec!["bridge".to_string()],
            restart: Some("unless-stopped".to_string()),
            ..FakeContainer::default()
        }
    }

    pub fn stopped(mut self) -> FakeContainer {
        self.running = false;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakePort {
    /// Empty for "every address".
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// Replaces the behaviour of calls whose argv starts with `argv_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeScript {
    pub argv_prefix: Vec<String>,
    pub exit: i32,
    #[serde(default)]
    pub stdout: String,
    #[serde(default)]
    pub stderr: String,
    /// How many calls it answers; `None` for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl FakeState {
    pub fn new() -> FakeState {
        FakeState::default()
    }

    /// Adds the cluster with its node containers and network, as `ksail cluster create` leaves
    /// it: every node carries ksail's ownership mark.
    pub fn with_cluster(self, cluster: FakeCluster) -> FakeState {
        let mark = format!("{}\n", cluster.name);
        self.with_nodes(cluster, Some(mark))
    }

    /// Adds a cluster someone made with kind or k3d directly: no node carries ksail's mark.
    pub fn with_foreign_cluster(self, cluster: FakeCluster) -> FakeState {
        self.with_nodes(cluster, None)
    }

    fn with_nodes(mut self, cluster: FakeCluster, mark: Option<String>) -> FakeState {
        let network = cluster.network();
        for node in &cluster.nodes {
            self.containers.insert(
                node.clone(),
                FakeContainer {
                    image: "node".to_string(),
                    running: true,
                    networks: vec![network.clone()],
                    files: mark
                        .iter()
                        .map(|mark| (OWNER_MARK.to_string(), mark.clone()))
                        .collect(),
                    ..FakeContainer::default()
                },
            );
        }
        if !self.networks.contains(&network) {
            self.networks.push(network);
        }
        self.clusters.push(cluster);
        self
    }

    pub fn with_container(mut self, name: &str, container: FakeContainer) -> FakeState {
        self.containers.insert(name.to_string(), container);
        self
    }

    pub fn with_kubeconfig_server(mut self, url: &str) -> FakeState {
        self.kubeconfig_server = Some(url.to_string());
        self
    }

    pub fn cluster(&self, name: &str, distribution: &str) -> Option<&FakeCluster> {
        self.clusters
            .iter()
            .find(|c| c.name == name && c.distribution == distribution)
    }
}

/// One logged invocation of any fake executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeCall {
    pub argv: Vec<String>,
    /// `KUBECONFIG` in the child's environment (`None` when unset).
    pub kubeconfig: Option<String>,
    /// What the fake read on stdin (`None` when it did not read it).
    pub stdin: Option<String>,
}

impl FakeCall {
    /// The argv joined with spaces (`kind delete cluster --name kind`), for golden sequences.
    pub fn line(&self) -> String {
        self.argv.join(" ")
    }
}

/// The installed fakes of one [`TestEnv`].
pub struct FakeTools {
    bin: PathBuf,
    state_path: PathBuf,
    calls_path: PathBuf,
}

impl FakeTools {
    /// Writes `bin/kind`, `bin/k3d` and `bin/docker` and the initial state.
    pub fn install(env: &TestEnv, state: FakeState) -> FakeTools {
        let python = find_python();
        let tools = FakeTools {
            bin: env.bin(),
            state_path: env.root().join("state.json"),
            calls_path: env.calls_path(),
        };
        let script = SCRIPT
            .replacen(
                "\"\"\"Fake",
                &format!("#!{}\n\"\"\"Fake", python.display()),
                1,
            )
            .replace("@STATE@", &tools.state_path.to_string_lossy())
            .replace("@CALLS@", &tools.calls_path.to_string_lossy());
        for tool in TOOLS {
            write_executable(&tools.bin.join(tool), &script)
                .unwrap_or_else(|e| panic!("write the fake {tool}: {e}"));
        }
        tools.set_state(&state);
        tools
    }

    /// Removes one fake (`"kind"`, `"k3d"` or `"docker"`), so that the tool is not installed.
    /// The system `PATH` of the harness has no kind or k3d; a real docker there would be found.
    pub fn uninstall(&self, tool: &str) {
        fs::remove_file(self.bin.join(tool))
            .unwrap_or_else(|e| panic!("remove the fake {tool}: {e}"));
    }

    pub fn state(&self) -> FakeState {
        let text = fs::read_to_string(&self.state_path)
            .unwrap_or_else(|e| panic!("read {}: {e}", self.state_path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("state.json is not a state ({e})"))
    }

    pub fn set_state(&self, state: &FakeState) {
        let tmp = self.state_path.with_extension("json.partial");
        fs::write(
            &tmp,
            serde_json::to_vec_pretty(state).expect("state serialises"),
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
        fs::rename(&tmp, &self.state_path).expect("replace state.json");
    }

    /// Change the state between runs.
    pub fn update(&self, change: impl FnOnce(&mut FakeState)) {
        let mut state = self.state();
        change(&mut state);
        self.set_state(&state);
    }

    /// Answer every call whose argv starts with `argv_prefix` (e.g. `["docker", "info"]`) with
    /// this exit code and output.
    pub fn script(&self, argv_prefix: &[&str], exit: i32, stdout: &str, stderr: &str) {
        self.push_script(argv_prefix, exit, stdout, stderr, None);
    }

    /// [`FakeTools::script`] for the next `times` matching calls only.
    pub fn script_times(
        &self,
        argv_prefix: &[&str],
        exit: i32,
        stdout: &str,
        stderr: &str,
        times: u32,
    ) {
        self.push_script(argv_prefix, exit, stdout, stderr, Some(times));
    }

    fn push_script(
        &self,
        argv_prefix: &[&str],
        exit: i32,
        stdout: &str,
        stderr: &str,
        times: Option<u32>,
    ) {
        self.update(|state| {
            state.scripts.push(FakeScript {
                argv_prefix: argv_prefix.iter().map(|s| s.to_string()).collect(),
                exit,
                stdout: stdout.to_string(),
                stderr: stderr.to_string(),
                times,
            })
        });
    }

    /// The calls of the three fakes, oldest first (credential-helper calls are left out).
    pub fn calls(&self) -> Vec<FakeCall> {
        super::fakes::read_calls(&self.calls_path)
            .into_iter()
            .map(|call| FakeCall {
                argv: call["argv"]
                    .as_array()
                    .map(|argv| {
                        argv.iter()
                            .map(|a| a.as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
                kubeconfig: call["env"]["KUBECONFIG"].as_str().map(str::to_string),
                stdin: call["stdin"].as_str().map(str::to_string),
            })
            .filter(|call| {
                call.argv
                    .first()
                    .is_some_and(|tool| TOOLS.contains(&tool.as_str()))
            })
            .collect()
    }

    /// [`FakeTools::calls`] as argv lines.
    pub fn call_lines(&self) -> Vec<String> {
        self.calls().iter().map(FakeCall::line).collect()
    }
}

impl Drop for FakeTools {
    /// Stops real registries the fakes started, so none outlives its test.
    fn drop(&mut self) {
        let Ok(text) = fs::read_to_string(&self.state_path) else {
            return;
        };
        let Ok(state) = serde_json::from_str::<FakeState>(&text) else {
            return;
        };
        for pid in state.containers.values().filter_map(|c| c.pid) {
            if let Ok(pid) = i32::try_from(pid) {
                // SAFETY: kill(2) with a pid the fake started and SIGTERM has no memory effects.
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
        }
    }
}

/// The system python3 (a shim on the developer's PATH would not survive the cleared env).
fn find_python() -> PathBuf {
    SYSTEM_PATH
        .split(':')
        .map(|dir| Path::new(dir).join("python3"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("python3 not found in {SYSTEM_PATH}: the fake kind, k3d and docker need it")
        })
}
