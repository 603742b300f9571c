//! The pure half of the provider: the argv of every `kind`, `k3d` and `docker` call, and the
//! reading of what they print. Nothing here starts a process, so all of it is unit-tested.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;

use super::{ContainerInfo, Distribution, NETWORK_LABEL, REGISTRY_IMAGE, REGISTRY_LABEL, Tool};
use crate::cluster::mirrors::{MIRROR_LABEL, Mirror};
use crate::resolve::IN_CLUSTER_REGISTRY_PORT;

/// How much of a failing child's stderr an error carries (cluster.md "Child process failures").
pub const STDERR_TAIL_LINES: usize = 20;

/// One child-process call: the tool and its arguments (without the program name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub tool: Tool,
    pub args: Vec<String>,
}

impl Call {
    fn new<S: AsRef<str>>(tool: Tool, args: &[S]) -> Call {
        Call {
            tool,
            args: args.iter().map(|arg| arg.as_ref().to_string()).collect(),
        }
    }

    /// The command as a user would type it (`kind delete cluster --name kind`), quoted for `sh`
    /// where needed, for messages.
    pub fn display(&self) -> String {
        std::iter::once(self.tool.program())
            .chain(self.args.iter().map(String::as_str))
            .map(shell_word)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Quote a word for `sh` only when it needs it, so messages stay readable.
pub fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:@+=,%[]".contains(c));
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

/// `kind get clusters` / `k3d cluster list -o json`.
pub fn list_clusters_call(distribution: Distribution) -> Call {
    match distribution {
        Distribution::Vanilla => Call::new(Tool::Kind, &["get", "clusters"]),
        Distribution::K3s => Call::new(Tool::K3d, &["cluster", "list", "-o", "json"]),
    }
}

/// `kind create cluster --name <n> --config <p>` / `k3d cluster create <n> --config <p>
/// [--registry-config <r>]` (k3d's flag wins over the file's `registries.config`).
pub fn create_cluster_call(
    distribution: Distribution,
    name: &str,
    config: &Path,
    registry_config: Option<&Path>,
) -> Call {
    let config = config.to_string_lossy();
    match distribution {
        Distribution::Vanilla => Call::new(
            Tool::Kind,
            &["create", "cluster", "--name", name, "--config", &config],
        ),
        Distribution::K3s => {
            let mut args = vec!["cluster", "create", name, "--config", &config];
            let registry_config = registry_config.map(Path::to_string_lossy);
            if let Some(path) = &registry_config {
                args.extend(["--registry-config", path]);
            }
            Call::new(Tool::K3d, &args)
        }
    }
}

/// `kind export kubeconfig --name <n>` / `k3d kubeconfig merge <n> --kubeconfig-merge-default`:
/// the cluster's context written again into the kubeconfig in `KUBECONFIG`.
pub fn export_kubeconfig_call(distribution: Distribution, name: &str) -> Call {
    match distribution {
        Distribution::Vanilla => Call::new(Tool::Kind, &["export", "kubeconfig", "--name", name]),
        Distribution::K3s => Call::new(
            Tool::K3d,
            &["kubeconfig", "merge", name, "--kubeconfig-merge-default"],
        ),
    }
}

/// `docker network inspect <n>`.
pub fn inspect_network_call(network: &str) -> Call {
    Call::new(Tool::Docker, &["network", "inspect", network])
}

/// `docker network create --label io.ksail.network=<cluster> <n>`.
pub fn create_network_call(network: &str, cluster: &str) -> Call {
    let label = format!("{NETWORK_LABEL}={cluster}");
    Call::new(
        Tool::Docker,
        &["network", "create", "--label", &label, network],
    )
}

pub fn disconnect_network_call(network: &str, container: &str) -> Call {
    Call::new(Tool::Docker, &["network", "disconnect", network, container])
}

pub fn remove_network_call(network: &str) -> Call {
    Call::new(Tool::Docker, &["network", "rm", network])
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectedNetwork {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    containers: Option<BTreeMap<String, NetworkMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkMember {
    name: String,
}

/// What `docker network inspect` says of one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub labels: BTreeMap<String, String>,
    /// The names of the containers attached to it, sorted.
    pub members: Vec<String>,
}

/// The network `docker network inspect` printed (`None` for an empty answer).
pub fn parse_network(stdout: &str) -> Result<Option<NetworkInfo>, String> {
    let networks: Vec<InspectedNetwork> = parse_json_array(stdout)?;
    Ok(networks.into_iter().next().map(|network| {
        let mut members: Vec<String> = network
            .containers
            .unwrap_or_default()
            .into_values()
            .map(|member| member.name)
            .collect();
        members.sort();
        NetworkInfo {
            labels: network.labels.unwrap_or_default(),
            members,
        }
    }))
}

/// Docker's answer for a network that does not exist (`network <n> not found`, older CLIs
/// `No such network`).
pub fn is_no_such_network(stderr: &str) -> bool {
    let text = stderr.to_ascii_lowercase();
    text.contains("no such network") || (text.contains("network") && text.contains("not found"))
}

/// `kind delete cluster --name <n>` / `k3d cluster delete <n>`.
pub fn delete_cluster_call(distribution: Distribution, name: &str) -> Call {
    match distribution {
        Distribution::Vanilla => Call::new(Tool::Kind, &["delete", "cluster", "--name", name]),
        Distribution::K3s => Call::new(Tool::K3d, &["cluster", "delete", name]),
    }
}

/// `kind get nodes --name <n>` / `k3d node list -o json` (filtered by cluster afterwards).
pub fn nodes_call(distribution: Distribution, name: &str) -> Call {
    match distribution {
        Distribution::Vanilla => Call::new(Tool::Kind, &["get", "nodes", "--name", name]),
        Distribution::K3s => Call::new(Tool::K3d, &["node", "list", "-o", "json"]),
    }
}

pub fn docker_info_call() -> Call {
    Call::new(Tool::Docker, &["info"])
}

pub fn inspect_call(container: &str) -> Call {
    Call::new(Tool::Docker, &["inspect", container])
}

/// `-p 127.0.0.1:<port>:5000`, with brackets for an IPv6 address (`[::1]:<port>:5000`).
pub fn publish_spec(host_ip: IpAddr, port: u16) -> String {
    match host_ip {
        IpAddr::V4(ip) => format!("{ip}:{port}:{IN_CLUSTER_REGISTRY_PORT}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}:{IN_CLUSTER_REGISTRY_PORT}"),
    }
}

/// `docker run -d --name <registry> --restart unless-stopped -p <ip>:<port>:5000
/// --label io.ksail.registry=<cluster> registry:3` (cluster.md step 1).
pub fn run_registry_call(container: &str, cluster: &str, host_ip: IpAddr, port: u16) -> Call {
    let publish = publish_spec(host_ip, port);
    let label = format!("{REGISTRY_LABEL}={cluster}");
    Call::new(
        Tool::Docker,
        &[
            "run",
            "-d",
            "--name",
            container,
            "--restart",
            "unless-stopped",
            "-p",
            &publish,
            "--label",
            &label,
            REGISTRY_IMAGE,
        ],
    )
}

/// `docker run -d --name <mirror> --restart unless-stopped --label io.ksail.mirror=<host> -e
/// REGISTRY_PROXY_REMOTEURL=<upstream> -v <volume>:/var/lib/registry registry:3`: a pull-through
/// cache, reachable only in the cluster networks it joins.
pub fn run_mirror_call(mirror: &Mirror) -> Call {
    let label = format!("{MIRROR_LABEL}={}", mirror.host);
    let proxy = format!("REGISTRY_PROXY_REMOTEURL={}", mirror.upstream);
    let volume = format!("{}:/var/lib/registry", mirror.volume());
    Call::new(
        Tool::Docker,
        &[
            "run",
            "-d",
            "--name",
            &mirror.container(),
            "--restart",
            "unless-stopped",
            "--label",
            &label,
            "-e",
            &proxy,
            "-v",
            &volume,
            REGISTRY_IMAGE,
        ],
    )
}

pub fn start_call(container: &str) -> Call {
    Call::new(Tool::Docker, &["start", container])
}

pub fn connect_network_call(network: &str, container: &str) -> Call {
    Call::new(Tool::Docker, &["network", "connect", network, container])
}

pub fn remove_call(container: &str) -> Call {
    Call::new(Tool::Docker, &["rm", "--force", "--volumes", container])
}

/// `docker exec -i <node> sh -c 'mkdir -p <dir> && cat > <path>'`; the content goes on stdin,
/// so it never needs quoting.
pub fn write_file_call(node: &str, path: &str) -> Call {
    let dir = match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    };
    let script = format!("mkdir -p {} && cat > {}", shell_word(dir), shell_word(path));
    Call::new(Tool::Docker, &["exec", "-i", node, "sh", "-c", &script])
}

/// `docker exec <node> cat <path>`.
pub fn read_file_call(node: &str, path: &str) -> Call {
    Call::new(Tool::Docker, &["exec", node, "cat", path])
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct K3dNode {
    name: String,
    #[serde(default, rename = "runtimeLabels")]
    runtime_labels: BTreeMap<String, String>,
}

/// The label k3d puts on every node of a cluster.
const K3D_CLUSTER_LABEL: &str = "k3d.cluster";

/// Cluster names from `kind get clusters` (one per line; "No kind clusters found." goes to
/// stderr) or `k3d cluster list -o json`.
pub fn parse_cluster_names(
    distribution: Distribution,
    stdout: &str,
) -> Result<Vec<String>, String> {
    match distribution {
        Distribution::Vanilla => Ok(lines(stdout)),
        Distribution::K3s => {
            let clusters: Vec<Named> = parse_json_array(stdout)?;
            Ok(clusters.into_iter().map(|cluster| cluster.name).collect())
        }
    }
}

/// Node container names from `kind get nodes --name <n>`, or from `k3d node list -o json`
/// restricted to the nodes labelled with `cluster`.
pub fn parse_node_names(
    distribution: Distribution,
    cluster: &str,
    stdout: &str,
) -> Result<Vec<String>, String> {
    match distribution {
        Distribution::Vanilla => Ok(lines(stdout)),
        Distribution::K3s => {
            let nodes: Vec<K3dNode> = parse_json_array(stdout)?;
            Ok(nodes
                .into_iter()
                .filter(|node| {
                    node.runtime_labels
                        .get(K3D_CLUSTER_LABEL)
                        .map(String::as_str)
                        == Some(cluster)
                })
                .map(|node| node.name)
                .collect())
        }
    }
}

fn lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

/// An empty output counts as an empty list (k3d prints nothing at all in some versions).
fn parse_json_array<T: serde::de::DeserializeOwned>(stdout: &str) -> Result<Vec<T>, String> {
    let text = stdout.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    serde_json::from_str(text).map_err(|error| format!("expected a JSON list: {error}"))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Inspected {
    state: Option<InspectedState>,
    config: Option<InspectedConfig>,
    host_config: Option<InspectedHostConfig>,
    network_settings: Option<InspectedNetworks>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectedState {
    running: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectedConfig {
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectedHostConfig {
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct PortBinding {
    host_ip: String,
    host_port: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct InspectedNetworks {
    networks: Option<BTreeMap<String, serde_json::Value>>,
}

/// The container from `docker inspect <name>` output. `None` for an empty list or an object that
/// is not a container (an image or volume of the same name has no `State`).
pub fn parse_inspect(stdout: &str) -> Result<Option<ContainerInfo>, String> {
    let objects: Vec<Inspected> = parse_json_array(stdout)?;
    let Some(object) = objects.into_iter().next() else {
        return Ok(None);
    };
    let Some(state) = object.state else {
        return Ok(None);
    };
    let bindings = object
        .host_config
        .and_then(|host| host.port_bindings)
        .unwrap_or_default();
    // The registry's own port first; any other published port otherwise.
    let registry_port = format!("{IN_CLUSTER_REGISTRY_PORT}/tcp");
    let binding = bindings
        .get(&registry_port)
        .into_iter()
        .chain(bindings.values())
        .flatten()
        .flatten()
        .next();
    let host_port = match binding {
        Some(binding) if !binding.host_port.is_empty() => Some(
            binding
                .host_port
                .parse::<u16>()
                .map_err(|_| format!("invalid host port {:?}", binding.host_port))?,
        ),
        _ => None,
    };
    Ok(Some(ContainerInfo {
        running: state.running,
        labels: object
            .config
            .and_then(|config| config.labels)
            .unwrap_or_default(),
        host_ip: binding
            .map(|binding| binding.host_ip.clone())
            .filter(|ip| !ip.is_empty()),
        host_port,
        networks: object
            .network_settings
            .and_then(|settings| settings.networks)
            .map(|networks| networks.into_keys().collect())
            .unwrap_or_default(),
    }))
}

/// Docker's "that object does not exist" answers (`docker inspect`, `docker container …`).
pub fn is_no_such_container(stderr: &str) -> bool {
    let text = stderr.to_ascii_lowercase();
    text.contains("no such object") || text.contains("no such container")
}

/// `cat`'s answer for a missing file.
pub fn is_no_such_file(stderr: &str) -> bool {
    stderr.contains("No such file or directory")
}

/// The last `max` non-empty lines of a child's stderr, oldest first.
pub fn stderr_tail(stderr: &str, max: usize) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(max)..].join("\n")
}

/// The `<reason>` of "docker info failed: <reason>": docker's last stderr line without its own
/// `ERROR:` prefix, else the exit status.
pub fn docker_unavailable_reason(stderr: &str, status: &str) -> String {
    let last = stderr_tail(stderr, 1);
    let last = last.trim();
    let reason = ["ERROR: ", "Error: ", "error: "]
        .iter()
        .find_map(|prefix| last.strip_prefix(prefix))
        .unwrap_or(last)
        .trim();
    if reason.is_empty() {
        status.to_string()
    } else {
        reason.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn argv(call: &Call) -> String {
        call.display()
    }

    #[test]
    fn cluster_calls_per_distribution() {
        let config = Path::new("/work/kind.yaml");
        for (call, expected) in [
            (
                list_clusters_call(Distribution::Vanilla),
                "kind get clusters",
            ),
            (
                list_clusters_call(Distribution::K3s),
                "k3d cluster list -o json",
            ),
            (
                create_cluster_call(Distribution::Vanilla, "kind", config, None),
                "kind create cluster --name kind --config /work/kind.yaml",
            ),
            (
                create_cluster_call(Distribution::K3s, "dev", Path::new("k3d.yaml"), None),
                "k3d cluster create dev --config k3d.yaml",
            ),
            (
                create_cluster_call(
                    Distribution::K3s,
                    "dev",
                    Path::new("k3d.yaml"),
                    Some(Path::new("/tmp/registries.yaml")),
                ),
                "k3d cluster create dev --config k3d.yaml --registry-config /tmp/registries.yaml",
            ),
            (
                export_kubeconfig_call(Distribution::Vanilla, "kind"),
                "kind export kubeconfig --name kind",
            ),
            (
                export_kubeconfig_call(Distribution::K3s, "dev"),
                "k3d kubeconfig merge dev --kubeconfig-merge-default",
            ),
            (
                create_network_call("k3d-dev", "dev"),
                "docker network create --label io.ksail.network=dev k3d-dev",
            ),
            (
                delete_cluster_call(Distribution::Vanilla, "kind"),
                "kind delete cluster --name kind",
            ),
            (
                delete_cluster_call(Distribution::K3s, "dev"),
                "k3d cluster delete dev",
            ),
            (
                nodes_call(Distribution::Vanilla, "kind"),
                "kind get nodes --name kind",
            ),
            (
                nodes_call(Distribution::K3s, "dev"),
                "k3d node list -o json",
            ),
        ] {
            assert_eq!(argv(&call), expected);
        }
    }

    #[test]
    fn docker_calls() {
        for (call, expected) in [
            (docker_info_call(), "docker info"),
            (
                inspect_call("kind-local-registry"),
                "docker inspect kind-local-registry",
            ),
            (
                run_registry_call(
                    "kind-local-registry",
                    "kind",
                    IpAddr::V4(Ipv4Addr::LOCALHOST),
                    5050,
                ),
                "docker run -d --name kind-local-registry --restart unless-stopped -p 127.0.0.1:5050:5000 --label io.ksail.registry=kind registry:3",
            ),
            (
                run_registry_call(
                    "dev-local-registry",
                    "dev",
                    IpAddr::V6(Ipv6Addr::LOCALHOST),
                    5051,
                ),
                "docker run -d --name dev-local-registry --restart unless-stopped -p [::1]:5051:5000 --label io.ksail.registry=dev registry:3",
            ),
            (start_call("r"), "docker start r"),
            (
                connect_network_call("k3d-dev", "dev-local-registry"),
                "docker network connect k3d-dev dev-local-registry",
            ),
            (
                remove_call("kind-local-registry"),
                "docker rm --force --volumes kind-local-registry",
            ),
            (
                read_file_call("kind-control-plane", "/etc/x/hosts.toml"),
                "docker exec kind-control-plane cat /etc/x/hosts.toml",
            ),
        ] {
            assert_eq!(argv(&call), expected);
        }
    }

    #[test]
    fn write_file_puts_the_path_in_one_sh_script() {
        let call = write_file_call(
            "kind-control-plane",
            "/etc/containerd/certs.d/localhost:5050/hosts.toml",
        );
        assert_eq!(
            call.args,
            [
                "exec",
                "-i",
                "kind-control-plane",
                "sh",
                "-c",
                "mkdir -p /etc/containerd/certs.d/localhost:5050 && cat > /etc/containerd/certs.d/localhost:5050/hosts.toml"
            ]
        );
        // A path that needs quoting is quoted inside the script.
        let call = write_file_call("n", "/tmp/a b/c");
        assert_eq!(call.args[5], "mkdir -p '/tmp/a b' && cat > '/tmp/a b/c'");
        assert_eq!(
            call.display(),
            r#"docker exec -i n sh -c 'mkdir -p '\''/tmp/a b'\'' && cat > '\''/tmp/a b/c'\'''"#
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("kind-local-registry"), "kind-local-registry");
        assert_eq!(shell_word("[::1]:5050:5000"), "[::1]:5050:5000");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
    }

    #[test]
    fn cluster_names_from_kind_and_k3d() {
        assert_eq!(
            parse_cluster_names(Distribution::Vanilla, "kind\n  dev \n\n").unwrap(),
            ["kind", "dev"]
        );
        assert!(
            parse_cluster_names(Distribution::Vanilla, "")
                .unwrap()
                .is_empty()
        );
        let k3d = r#"[{"name":"dev","serversCount":1,"nodes":[{"name":"k3d-dev-server-0"}]},{"name":"lab"}]"#;
        assert_eq!(
            parse_cluster_names(Distribution::K3s, k3d).unwrap(),
            ["dev", "lab"]
        );
        assert!(
            parse_cluster_names(Distribution::K3s, "  ")
                .unwrap()
                .is_empty()
        );
        assert!(
            parse_cluster_names(Distribution::K3s, "[]")
                .unwrap()
                .is_empty()
        );
        let error = parse_cluster_names(Distribution::K3s, "not json").unwrap_err();
        assert!(error.contains("expected a JSON list"), "{error}");
    }

    #[test]
    fn node_names_from_kind_and_k3d() {
        assert_eq!(
            parse_node_names(
                Distribution::Vanilla,
                "kind",
                "kind-control-plane\nkind-worker\n"
            )
            .unwrap(),
            ["kind-control-plane", "kind-worker"]
        );
        let k3d = r#"[
            {"name":"k3d-dev-server-0","role":"server","runtimeLabels":{"k3d.cluster":"dev"}},
            {"name":"k3d-lab-server-0","role":"server","runtimeLabels":{"k3d.cluster":"lab"}},
            {"name":"k3d-dev-serverlb","role":"loadbalancer","runtimeLabels":{"k3d.cluster":"dev"}}
        ]"#;
        assert_eq!(
            parse_node_names(Distribution::K3s, "dev", k3d).unwrap(),
            ["k3d-dev-server-0", "k3d-dev-serverlb"]
        );
    }

    const RUNNING_REGISTRY: &str = r#"[{
        "Id": "abc",
        "Name": "/kind-local-registry",
        "State": {"Status": "running", "Running": true},
        "Config": {"Image": "registry:3", "Labels": {"io.ksail.registry": "kind"}},
        "HostConfig": {"PortBindings": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5050"}]}},
        "NetworkSettings": {"Networks": {"bridge": {}, "kind": {"IPAddress": "172.18.0.3"}}}
    }]"#;

    #[test]
    fn inspect_reads_state_labels_port_and_networks() {
        let info = parse_inspect(RUNNING_REGISTRY)
            .unwrap()
            .expect("a container");
        assert_eq!(
            info,
            ContainerInfo {
                running: true,
                labels: BTreeMap::from([("io.ksail.registry".into(), "kind".into())]),
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(5050),
                networks: vec!["bridge".into(), "kind".into()],
            }
        );
        assert!(info.is_ksail_registry());
    }

    #[test]
    fn inspect_of_a_stopped_unlabelled_container_without_ports() {
        let stopped = r#"[{"State":{"Running":false},"Config":{"Labels":null},
            "HostConfig":{"PortBindings":{}},"NetworkSettings":{"Networks":null}}]"#;
        let info = parse_inspect(stopped).unwrap().expect("a container");
        assert!(!info.running);
        assert!(info.labels.is_empty());
        assert!(!info.is_ksail_registry());
        assert_eq!((info.host_ip, info.host_port), (None, None));
        assert!(info.networks.is_empty());
    }

    #[test]
    fn inspect_takes_any_published_port_when_5000_is_not_published() {
        let other = r#"[{"State":{"Running":true},
            "HostConfig":{"PortBindings":{"80/tcp":null,"8080/tcp":[{"HostIp":"","HostPort":"9000"}]}}}]"#;
        let info = parse_inspect(other).unwrap().expect("a container");
        assert_eq!((info.host_ip, info.host_port), (None, Some(9000)));
    }

    #[test]
    fn inspect_of_nothing_or_a_non_container_is_none() {
        assert_eq!(parse_inspect("[]").unwrap(), None);
        assert_eq!(parse_inspect("").unwrap(), None);
        assert_eq!(
            parse_inspect(r#"[{"Id":"sha256:1","RepoTags":["x"]}]"#).unwrap(),
            None
        );
        assert!(parse_inspect("{").is_err());
        assert!(
            parse_inspect(
                r#"[{"State":{"Running":true},"HostConfig":{"PortBindings":{"5000/tcp":[{"HostIp":"","HostPort":"x"}]}}}]"#
            )
            .is_err()
        );
    }

    #[test]
    fn missing_objects_are_recognised() {
        assert!(is_no_such_container(
            "Error: No such object: kind-local-registry\n"
        ));
        assert!(is_no_such_container(
            "Error response from daemon: No such container: x"
        ));
        assert!(!is_no_such_container(
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock."
        ));
        assert!(is_no_such_file("cat: /x: No such file or directory"));
    }

    #[test]
    fn stderr_tail_keeps_the_last_non_empty_lines() {
        let stderr: String = (1..=30).map(|i| format!("line {i}\n\n")).collect();
        let tail = stderr_tail(&stderr, STDERR_TAIL_LINES);
        let lines: Vec<&str> = tail.lines().collect();
        assert_eq!(lines.len(), 20);
        assert_eq!(lines[0], "line 11");
        assert_eq!(lines[19], "line 30");
        assert_eq!(stderr_tail("", 20), "");
    }

    #[test]
    fn docker_reason_is_the_last_stderr_line() {
        assert_eq!(
            docker_unavailable_reason(
                "Client:\n Version: 27\nERROR: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n",
                "exit status 1"
            ),
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
        );
        assert_eq!(
            docker_unavailable_reason("\n", "exit status 1"),
            "exit status 1"
        );
    }
}
