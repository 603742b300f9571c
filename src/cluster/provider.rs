//! Thin, typed wrappers over the `kind`, `k3d` and `docker` executables found on `PATH`
//! (cluster.md). ksail shells out instead of linking the tools, so every step can be reproduced
//! by hand: each method runs one command whose argv is built in [`parse`] and unit-tested there.
//!
//! - A missing executable gives the install hints of cluster.md "Preflight"
//!   ([`ProviderError::ToolMissing`], [`ProviderError::DockerUnavailable`]).
//! - A child that fails gives [`ProviderError::CommandFailed`], naming the command with its
//!   arguments and carrying the last 20 lines of its stderr.
//! - Every error converts into an exit-1 [`Failure`].
//!
//! This module decides nothing about *what* to do (that is the commands' job) and prints
//! nothing; it logs each command at debug level.
//!
//! ```ignore
//! let provider = Provider::new(Distribution::Vanilla, Some(first_kubeconfig));
//! provider.check_docker().await?;
//! provider.check_tool()?;
//! if !provider.cluster_exists("kind").await? {
//!     provider.create_cluster("kind", Path::new("kind.yaml")).await?;
//! }
//! match provider.inspect_container("kind-local-registry").await? {
//!     Some(info) if info.running => {}
//!     Some(_) => provider.start_container("kind-local-registry").await?,
//!     None => provider.run_registry("kind-local-registry", "kind", Ipv4Addr::LOCALHOST.into(), 5050).await?,
//! }
//! ```

mod parse;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;

use crate::cluster::mirrors::{MIRROR_LABEL, Mirror};
use crate::config::{self, ConfigError, Effective, Key};
use crate::env_vars;
use crate::error::Failure;

pub use parse::{Call, NetworkInfo, STDERR_TAIL_LINES};

/// The label that marks a registry container as ksail's; its value is the cluster name. Any
/// value counts as ownership, so containers made by ksail (Go) are recognised too.
pub const REGISTRY_LABEL: &str = "io.ksail.registry";
/// The label of a Docker network ksail created for a cluster (`k3d-<cluster>`, made before k3d
/// so the registry is a member when k3d writes CoreDNS's `NodeHosts`); its value is the cluster.
pub const NETWORK_LABEL: &str = "io.ksail.network";
/// The file in every node whose content, the cluster's name, marks the cluster as made by
/// `ksail cluster create`: `cluster delete` deletes nothing without it. kind cannot label node
/// containers, so the mark is a file, the same for both tools.
pub const OWNER_MARK_PATH: &str = "/etc/ksail/cluster";
/// The image of the local registry container.
pub const REGISTRY_IMAGE: &str = "registry:3";

const DOCKER_INSTALL_URL: &str = "https://docs.docker.com/get-docker/";

/// The executable search path (documented in `env_vars`).
pub use crate::env_vars::PATH as PATH_VAR;

/// A distribution the cluster commands can provision (cluster.md: Vanilla with kind, K3s with
/// k3d). The other `spec.cluster.distribution` values exit 2 before any tool runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Distribution {
    Vanilla,
    K3s,
}

impl Distribution {
    /// The canonical spelling, as in `ksail.yaml` and `cluster list`.
    /// What [`Distribution::as_str`] gives for each, in order.
    pub const NAMES: [&'static str; 2] = ["Vanilla", "K3s"];

    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Vanilla => "Vanilla",
            Distribution::K3s => "K3s",
        }
    }

    /// The tool that manages clusters of this distribution.
    pub fn tool(self) -> Tool {
        match self {
            Distribution::Vanilla => Tool::Kind,
            Distribution::K3s => Tool::K3d,
        }
    }

    /// The kubeconfig context the tool writes: `kind-<cluster>` or `k3d-<cluster>`.
    pub fn derived_context(self, cluster: &str) -> String {
        format!("{}-{cluster}", self.tool().program())
    }

    /// The Docker network the cluster's nodes are on: `kind`, or `k3d-<cluster>`.
    pub fn network(self, cluster: &str) -> String {
        match self {
            Distribution::Vanilla => "kind".to_string(),
            Distribution::K3s => format!("k3d-{cluster}"),
        }
    }

    /// `Some` for Vanilla and K3s.
    pub fn from_config(distribution: config::Distribution) -> Option<Distribution> {
        match distribution {
            config::Distribution::Vanilla => Some(Distribution::Vanilla),
            config::Distribution::K3s => Some(Distribution::K3s),
            _ => None,
        }
    }

    /// The effective distribution, or the exit-2 error of config.md "Keys that load but are not
    /// used", naming where the value came from.
    pub fn from_effective(effective: &Effective) -> Result<Distribution, ConfigError> {
        let sourced = &effective.distribution;
        Distribution::from_config(sourced.value).ok_or_else(|| {
            effective.value_error(
                Key::Distribution,
                &sourced.source,
                &format!(
                    "distribution {} is not supported by ksail cluster commands",
                    sourced.value
                ),
                &format!("supported: {}", Distribution::NAMES.join(", ")),
            )
        })
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An executable the provider runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Kind,
    K3d,
    Docker,
}

impl Tool {
    pub fn program(self) -> &'static str {
        match self {
            Tool::Kind => "kind",
            Tool::K3d => "k3d",
            Tool::Docker => "docker",
        }
    }

    fn install_url(self) -> &'static str {
        match self {
            Tool::Kind => "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
            Tool::K3d => "https://k3d.io/#installation",
            Tool::Docker => DOCKER_INSTALL_URL,
        }
    }
}

/// What `docker inspect <name>` says about a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerInfo {
    pub running: bool,
    pub labels: BTreeMap<String, String>,
    /// The host address of the published port; `None` when published on every address.
    pub host_ip: Option<String>,
    /// The host port that publishes container port 5000 (else the first published port).
    pub host_port: Option<u16>,
    /// The Docker networks the container is attached to.
    pub networks: Vec<String>,
}

impl ContainerInfo {
    /// The container carries [`MIRROR_LABEL`]: a mirror ksail made.
    pub fn is_ksail_mirror(&self) -> bool {
        self.labels.contains_key(MIRROR_LABEL)
    }

    /// The container carries the [`REGISTRY_LABEL`] (any value): ksail may reuse or remove it.
    pub fn is_ksail_registry(&self) -> bool {
        self.labels.contains_key(REGISTRY_LABEL)
    }
}

/// The clusters both tools know about, plus one warning per tool that failed while the other
/// answered (so a broken tool is not mistaken for "no clusters").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterListing {
    /// Sorted by name, then distribution.
    pub clusters: Vec<(String, Distribution)>,
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{tool} is not installed or not on PATH; install it: {url}", tool = tool.program(), url = tool.install_url())]
    ToolMissing { tool: Tool },
    #[error(
        "Docker is not available: docker info failed: {reason}; start Docker (or install it from {DOCKER_INSTALL_URL})"
    )]
    DockerUnavailable { reason: String },
    #[error(
        "{command} failed ({status}): {stderr_tail}; fix what {program} reports and run the ksail command again",
        program = command.split(' ').next().unwrap_or_default()
    )]
    CommandFailed {
        command: String,
        status: String,
        /// The last [`STDERR_TAIL_LINES`] lines of its stderr (or a note that it printed none).
        stderr_tail: String,
    },
    #[error("{command} could not be run: {source}; check that the executable on PATH works")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{command} printed output ksail cannot read: {reason}; check that a supported version is installed"
    )]
    UnexpectedOutput { command: String, reason: String },
    #[error("cannot list clusters: {kind}, and {k3d}")]
    ListFailed {
        kind: Box<ProviderError>,
        k3d: Box<ProviderError>,
    },
}

impl From<ProviderError> for Failure {
    fn from(error: ProviderError) -> Self {
        Failure::failed(error.to_string())
    }
}

/// A finished child.
struct Captured {
    success: bool,
    status: String,
    stdout: String,
    stderr: String,
}

/// How a call runs beyond its argv.
#[derive(Default)]
struct RunOptions<'a> {
    /// Set `KUBECONFIG` to the provider's kubeconfig (cluster create and delete).
    kubeconfig: bool,
    stdin: Option<&'a [u8]>,
}

/// Runs the tools for one distribution (and `docker`). Cheap to construct; holds no process.
#[derive(Debug, Clone)]
pub struct Provider {
    distribution: Distribution,
    kubeconfig: Option<PathBuf>,
    /// The `PATH` the executables are looked up in.
    search_path: Option<OsString>,
}

impl Provider {
    /// `kubeconfig` is the first resolved kubeconfig path: `kind`/`k3d` write the new cluster's
    /// context into it on create and remove it on delete (`KUBECONFIG` in their environment).
    /// With `None`, they inherit ksail's environment.
    pub fn new(distribution: Distribution, kubeconfig: Option<PathBuf>) -> Provider {
        Provider {
            distribution,
            kubeconfig,
            search_path: std::env::var_os(PATH_VAR),
        }
    }

    /// Look executables up in this `PATH` (the command's captured environment) instead of the
    /// process's.
    pub fn with_search_path(mut self, search_path: Option<OsString>) -> Provider {
        self.search_path = search_path;
        self
    }

    /// `docker` is on `PATH` and `docker info` succeeds.
    pub async fn check_docker(&self) -> Result<(), ProviderError> {
        let call = parse::docker_info_call();
        let captured = self.capture(&call, RunOptions::default()).await?;
        if captured.success {
            Ok(())
        } else {
            Err(ProviderError::DockerUnavailable {
                reason: parse::docker_unavailable_reason(&captured.stderr, &captured.status),
            })
        }
    }

    /// `kind` (Vanilla) or `k3d` (K3s) is on `PATH`. A lookup only: nothing is run.
    pub fn check_tool(&self) -> Result<(), ProviderError> {
        self.locate(self.distribution.tool()).map(|_| ())
    }

    /// `kind get clusters` / `k3d cluster list -o json` lists `name`.
    pub async fn cluster_exists(&self, name: &str) -> Result<bool, ProviderError> {
        Ok(self
            .cluster_names(self.distribution)
            .await?
            .iter()
            .any(|cluster| cluster == name))
    }

    /// `kind create cluster --name <n> --config <p>` / `k3d cluster create <n> --config <p>
    /// [--registry-config <r>]`.
    pub async fn create_cluster(
        &self,
        name: &str,
        config_path: &Path,
        registry_config: Option<&Path>,
    ) -> Result<(), ProviderError> {
        let call =
            parse::create_cluster_call(self.distribution, name, config_path, registry_config);
        let options = RunOptions {
            kubeconfig: true,
            ..RunOptions::default()
        };
        self.run(&call, options).await.map(drop)
    }

    /// Write the cluster's context into the kubeconfig again (`kind export kubeconfig`, `k3d
    /// kubeconfig merge`), with the same `KUBECONFIG` as create.
    pub async fn export_kubeconfig(&self, name: &str) -> Result<(), ProviderError> {
        let call = parse::export_kubeconfig_call(self.distribution, name);
        let options = RunOptions {
            kubeconfig: true,
            ..RunOptions::default()
        };
        self.run(&call, options).await.map(drop)
    }

    /// Docker network `name`: its labels and members; `None` when it does not exist.
    pub async fn inspect_network(&self, name: &str) -> Result<Option<NetworkInfo>, ProviderError> {
        let call = parse::inspect_network_call(name);
        let captured = self.capture(&call, RunOptions::default()).await?;
        if !captured.success {
            if parse::is_no_such_network(&captured.stderr) {
                return Ok(None);
            }
            return Err(failed(&call, &captured));
        }
        parse::parse_network(&captured.stdout).map_err(|reason| unexpected(&call, reason))
    }

    /// `docker network create --label io.ksail.network=<cluster> <name>`.
    pub async fn create_network(&self, name: &str, cluster: &str) -> Result<(), ProviderError> {
        self.exec(&parse::create_network_call(name, cluster)).await
    }

    /// `docker network disconnect <network> <container>`.
    pub async fn disconnect_network(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(), ProviderError> {
        self.exec(&parse::disconnect_network_call(network, container))
            .await
    }

    /// `docker network rm <name>`.
    pub async fn remove_network(&self, name: &str) -> Result<(), ProviderError> {
        self.exec(&parse::remove_network_call(name)).await
    }

    /// `kind delete cluster --name <n>` / `k3d cluster delete <n>`.
    pub async fn delete_cluster(&self, name: &str) -> Result<(), ProviderError> {
        let call = parse::delete_cluster_call(self.distribution, name);
        let options = RunOptions {
            kubeconfig: true,
            ..RunOptions::default()
        };
        self.run(&call, options).await.map(drop)
    }

    /// The clusters of both tools, whatever this provider's distribution. A tool that is not
    /// installed is skipped (debug log). When no tool answered and at least one failed, the
    /// failure is returned; a tool that failed while the other answered becomes a warning.
    pub async fn list_clusters(&self) -> Result<ClusterListing, ProviderError> {
        let kind = self.cluster_names(Distribution::Vanilla).await;
        let k3d = self.cluster_names(Distribution::K3s).await;
        combine_listings(kind, k3d)
    }

    /// The node containers of cluster `name` (`kind get nodes --name <n>`; for K3s the nodes
    /// `k3d node list -o json` labels with the cluster).
    pub async fn nodes(&self, name: &str) -> Result<Vec<String>, ProviderError> {
        let call = parse::nodes_call(self.distribution, name);
        let stdout = self.run(&call, RunOptions::default()).await?;
        parse::parse_node_names(self.distribution, name, &stdout)
            .map_err(|reason| unexpected(&call, reason))
    }

    /// `docker inspect <name>`; `None` when no container has that name.
    pub async fn inspect_container(
        &self,
        name: &str,
    ) -> Result<Option<ContainerInfo>, ProviderError> {
        let call = parse::inspect_call(name);
        let captured = self.capture(&call, RunOptions::default()).await?;
        if !captured.success {
            if parse::is_no_such_container(&captured.stderr) {
                return Ok(None);
            }
            return Err(failed(&call, &captured));
        }
        parse::parse_inspect(&captured.stdout).map_err(|reason| unexpected(&call, reason))
    }

    /// `docker run -d --name <name> --restart unless-stopped -p <host_ip>:<port>:5000 --label
    /// io.ksail.registry=<cluster> registry:3` (`[::1]:<port>:5000` for IPv6).
    pub async fn run_registry(
        &self,
        name: &str,
        cluster: &str,
        host_ip: IpAddr,
        port: u16,
    ) -> Result<(), ProviderError> {
        self.exec(&parse::run_registry_call(name, cluster, host_ip, port))
            .await
    }

    /// Start the pull-through cache `mirror` (see [`parse::run_mirror_call`]).
    pub async fn run_mirror(&self, mirror: &Mirror) -> Result<(), ProviderError> {
        self.exec(&parse::run_mirror_call(mirror)).await
    }

    /// `docker start <name>`.
    pub async fn start_container(&self, name: &str) -> Result<(), ProviderError> {
        self.exec(&parse::start_call(name)).await
    }

    /// `docker network connect <network> <container>`.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(), ProviderError> {
        self.exec(&parse::connect_network_call(network, container))
            .await
    }

    /// `docker rm --force --volumes <name>`.
    pub async fn remove_container(&self, name: &str) -> Result<(), ProviderError> {
        self.exec(&parse::remove_call(name)).await
    }

    /// `docker exec -i <node> sh -c 'mkdir -p <dir> && cat > <path>'` with `content` on stdin.
    pub async fn write_file_in_node(
        &self,
        node: &str,
        path: &str,
        content: &str,
    ) -> Result<(), ProviderError> {
        let call = parse::write_file_call(node, path);
        let options = RunOptions {
            stdin: Some(content.as_bytes()),
            ..RunOptions::default()
        };
        self.run(&call, options).await.map(drop)
    }

    /// `docker exec <node> cat <path>`; `None` when the file does not exist. For the "already
    /// configured" check of the node mirror step.
    pub async fn read_file_in_node(
        &self,
        node: &str,
        path: &str,
    ) -> Result<Option<String>, ProviderError> {
        let call = parse::read_file_call(node, path);
        let captured = self.capture(&call, RunOptions::default()).await?;
        match captured.success {
            true => Ok(Some(captured.stdout)),
            false if parse::is_no_such_file(&captured.stderr) => Ok(None),
            false => Err(failed(&call, &captured)),
        }
    }

    async fn cluster_names(
        &self,
        distribution: Distribution,
    ) -> Result<Vec<String>, ProviderError> {
        let call = parse::list_clusters_call(distribution);
        let stdout = self.run(&call, RunOptions::default()).await?;
        parse::parse_cluster_names(distribution, &stdout)
            .map_err(|reason| unexpected(&call, reason))
    }

    /// Run a call that must succeed; its stdout.
    /// Run a call for its effect only: its output is not needed.
    async fn exec(&self, call: &Call) -> Result<(), ProviderError> {
        self.run(call, RunOptions::default()).await.map(drop)
    }

    async fn run(&self, call: &Call, options: RunOptions<'_>) -> Result<String, ProviderError> {
        let captured = self.capture(call, options).await?;
        if captured.success {
            Ok(captured.stdout)
        } else {
            Err(failed(call, &captured))
        }
    }

    /// Run a call and capture its outcome, whatever its exit status.
    async fn capture(
        &self,
        call: &Call,
        options: RunOptions<'_>,
    ) -> Result<Captured, ProviderError> {
        let program = self.locate(call.tool)?;
        let shown = call.display();
        tracing::debug!("running {shown}");
        let mut command = tokio::process::Command::new(&program);
        command
            .args(&call.args)
            .stdin(if options.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // An interrupted ksail must not leave a half-finished child behind.
            .kill_on_drop(true);
        if options.kubeconfig
            && let Some(kubeconfig) = &self.kubeconfig
        {
            command.env(env_vars::KUBECONFIG, kubeconfig);
        }
        let spawn_error = |source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound => missing(call.tool),
            _ => ProviderError::Spawn {
                command: shown.clone(),
                source,
            },
        };
        let mut child = command.spawn().map_err(spawn_error)?;
        let stdin = child.stdin.take();
        let content = options.stdin.unwrap_or_default();
        let feed = async move {
            if let Some(mut stdin) = stdin {
                stdin.write_all(content).await?;
                stdin.shutdown().await?;
            }
            Ok::<(), std::io::Error>(())
        };
        let (fed, output) = tokio::join!(feed, child.wait_with_output());
        let output = output.map_err(spawn_error)?;
        // A child that exits without reading its input is judged by its exit status.
        if let Err(error) = fed {
            tracing::debug!("{shown}: writing stdin failed: {error}");
        }
        let captured = Captured {
            success: output.status.success(),
            status: match output.status.code() {
                Some(code) => format!("exit code {code}"),
                None => output.status.to_string(),
            },
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        tracing::debug!("{shown}: {}", captured.status);
        if !captured.stderr.trim().is_empty() {
            tracing::trace!("{shown} stderr: {}", captured.stderr.trim_end());
        }
        Ok(captured)
    }

    /// The executable's path on the search path.
    fn locate(&self, tool: Tool) -> Result<PathBuf, ProviderError> {
        let search_path = self.search_path.as_deref().unwrap_or_default();
        std::env::split_paths(search_path)
            .filter(|dir| !dir.as_os_str().is_empty())
            .map(|dir| dir.join(tool.program()))
            .find(|candidate| is_executable(candidate))
            .ok_or_else(|| missing(tool))
    }
}

fn missing(tool: Tool) -> ProviderError {
    match tool {
        Tool::Docker => ProviderError::DockerUnavailable {
            reason: "docker is not installed or not on PATH".to_string(),
        },
        tool => ProviderError::ToolMissing { tool },
    }
}

fn failed(call: &Call, captured: &Captured) -> ProviderError {
    let tail = parse::stderr_tail(&captured.stderr, STDERR_TAIL_LINES);
    ProviderError::CommandFailed {
        command: call.display(),
        status: captured.status.clone(),
        stderr_tail: if tail.is_empty() {
            "it printed no error output".to_string()
        } else {
            tail
        },
    }
}

fn unexpected(call: &Call, reason: String) -> ProviderError {
    ProviderError::UnexpectedOutput {
        command: call.display(),
        reason,
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}

/// Merge the two tools' answers (cluster.md "cluster list"): missing tools are skipped, a lone
/// failure next to an answer is a warning, and failures without any answer are an error.
fn combine_listings(
    kind: Result<Vec<String>, ProviderError>,
    k3d: Result<Vec<String>, ProviderError>,
) -> Result<ClusterListing, ProviderError> {
    let mut listing = ClusterListing::default();
    let mut answered = false;
    let mut failures = Vec::new();
    for (distribution, result) in [(Distribution::Vanilla, kind), (Distribution::K3s, k3d)] {
        match result {
            Ok(names) => {
                answered = true;
                listing
                    .clusters
                    .extend(names.into_iter().map(|name| (name, distribution)));
            }
            Err(ProviderError::ToolMissing { tool }) => {
                tracing::debug!(
                    "{} is not installed; skipping {distribution} clusters",
                    tool.program()
                );
            }
            Err(error) => failures.push(error),
        }
    }
    match (answered, failures.len()) {
        (false, 2) => {
            let k3d = failures.pop().map(Box::new);
            let kind = failures.pop().map(Box::new);
            if let (Some(kind), Some(k3d)) = (kind, k3d) {
                return Err(ProviderError::ListFailed { kind, k3d });
            }
        }
        (false, 1) => {
            if let Some(error) = failures.pop() {
                return Err(error);
            }
        }
        _ => {}
    }
    listing.warnings = failures.iter().map(ToString::to_string).collect();
    listing.clusters.sort();
    listing.clusters.dedup();
    Ok(listing)
}

#[cfg(test)]
mod tests;
