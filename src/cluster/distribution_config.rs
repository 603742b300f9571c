//! The distribution config `cluster create` falls back to when the configured file is missing
//! (cluster.md "Missing distribution config"): the content `cluster init` would write, and the
//! containerd `hosts.toml` that step 4 writes into Kind nodes.

use crate::cluster::mirrors::Mirror;
use crate::cluster::provider::Distribution;
use crate::cluster::scaffold;
use crate::config;
use crate::resolve::IN_CLUSTER_REGISTRY_PORT;
use crate::settings::cluster::LocalRegistry;

/// `kind.yaml` / `k3d.yaml` exactly as `cluster init` generates it for this cluster and registry
/// (one generator for both commands).
pub fn generated(
    distribution: Distribution,
    cluster: &str,
    local: Option<&LocalRegistry>,
) -> String {
    let distribution = match distribution {
        Distribution::Vanilla => config::Distribution::Vanilla,
        Distribution::K3s => config::Distribution::K3s,
    };
    scaffold::distribution_config(distribution, cluster, local.map(|l| l.host_port.as_str()))
        .expect("Vanilla and K3s always have a distribution config")
}

/// `http://<registry>:5000`.
pub fn in_cluster_endpoint(container: &str) -> String {
    format!("http://{container}:{IN_CLUSTER_REGISTRY_PORT}")
}

/// What K3s nodes must mirror, `(host, endpoint)`: both names of the local registry
/// (`localhost:<port>`, `<container>:5000`) and every pull-through mirror.
fn k3s_mirror_entries(local: Option<&LocalRegistry>, mirrors: &[Mirror]) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    if let Some(local) = local {
        let endpoint = in_cluster_endpoint(&local.container);
        entries.push((local.host_port.clone(), endpoint.clone()));
        entries.push((
            format!("{}:{IN_CLUSTER_REGISTRY_PORT}", local.container),
            endpoint,
        ));
    }
    entries.extend(mirrors.iter().map(|m| (m.host.clone(), m.endpoint())));
    entries
}

/// K3s's `registries.yaml` for `create --registry-config`.
pub fn k3s_registries(local: Option<&LocalRegistry>, mirrors: &[Mirror]) -> String {
    let mut out = String::from("mirrors:\n");
    for (host, endpoint) in k3s_mirror_entries(local, mirrors) {
        out.push_str(&scaffold::k3s_mirror_entry(&host, &endpoint));
    }
    out
}

/// The first entry of [`k3s_registries`] a node's `registries.yaml` lacks, as `host to
/// endpoint`.
pub fn k3s_missing_mirror(
    registries: Option<&str>,
    local: Option<&LocalRegistry>,
    mirrors: &[Mirror],
) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Registries {
        #[serde(default)]
        mirrors: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        endpoint: Vec<String>,
    }
    let parsed = registries.and_then(|text| serde_saphyr::from_str::<Registries>(text).ok());
    k3s_mirror_entries(local, mirrors)
        .into_iter()
        .find(|(host, endpoint)| {
            !parsed.as_ref().is_some_and(|parsed| {
                parsed
                    .mirrors
                    .get(host)
                    .is_some_and(|entry| entry.endpoint.contains(endpoint))
            })
        })
        .map(|(host, endpoint)| format!("{host} to {endpoint}"))
}

/// The two `hosts.toml` files of step 4: `(path in the node, content)`.
pub fn mirror_host_files(local: &LocalRegistry) -> Vec<(String, String)> {
    let endpoint = in_cluster_endpoint(&local.container);
    let content = format!("[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n");
    [
        format!("localhost:{}", local.port),
        format!("{}:{IN_CLUSTER_REGISTRY_PORT}", local.container),
    ]
    .into_iter()
    .map(|mirror| {
        (
            format!("/etc/containerd/certs.d/{mirror}/hosts.toml"),
            content.clone(),
        )
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(cluster: &str) -> LocalRegistry {
        LocalRegistry {
            container: format!("{cluster}-local-registry"),
            bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            port: 5050,
            host_port: "localhost:5050".into(),
        }
    }

    #[test]
    fn kind_defaults_match_init() {
        assert_eq!(
            generated(Distribution::Vanilla, "kind", Some(&local("kind"))),
            "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: kind\ncontainerdConfigPatches:\n  - |-\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"/etc/containerd/certs.d\"\n"
        );
        assert_eq!(
            generated(Distribution::Vanilla, "kind", None),
            generated(Distribution::Vanilla, "kind", Some(&local("kind")))
        );
    }

    #[test]
    fn k3d_defaults_match_init() {
        assert_eq!(
            generated(Distribution::K3s, "dev", Some(&local("dev"))),
            r#"apiVersion: k3d.io/v1alpha5
kind: Simple
metadata:
  name: dev
registries:
  config: |
    mirrors:
      "localhost:5050":
        endpoint:
          - http://dev-local-registry:5000
      "dev-local-registry:5000":
        endpoint:
          - http://dev-local-registry:5000
"#
        );
    }

    /// The file create hands k3d and the check of what the nodes got agree on every entry.
    #[test]
    fn k3s_registries_and_their_check() {
        let mirrors = crate::cluster::mirrors::parse("docker.io").unwrap();
        let written = k3s_registries(Some(&local("dev")), &mirrors);
        assert_eq!(
            written,
            "mirrors:\n  \"localhost:5050\":\n    endpoint:\n      - http://dev-local-registry:5000\n  \"dev-local-registry:5000\":\n    endpoint:\n      - http://dev-local-registry:5000\n  \"docker.io\":\n    endpoint:\n      - http://ksail-mirror-docker-io:5000\n"
        );
        assert_eq!(
            k3s_missing_mirror(Some(&written), Some(&local("dev")), &mirrors),
            None
        );
        assert_eq!(
            k3s_missing_mirror(Some(&written), Some(&local("other")), &[]).as_deref(),
            Some("localhost:5050 to http://other-local-registry:5000")
        );
        assert_eq!(
            k3s_missing_mirror(None, None, &mirrors).as_deref(),
            Some("docker.io to http://ksail-mirror-docker-io:5000")
        );
    }

    #[test]
    fn mirror_files_for_both_names() {
        let files = mirror_host_files(&local("kind"));
        assert_eq!(
            files[0].0,
            "/etc/containerd/certs.d/localhost:5050/hosts.toml"
        );
        assert_eq!(
            files[1].0,
            "/etc/containerd/certs.d/kind-local-registry:5000/hosts.toml"
        );
        assert_eq!(
            files[0].1,
            "[host.\"http://kind-local-registry:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        );
    }
}
