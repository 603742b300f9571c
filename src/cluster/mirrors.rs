//! Pull-through mirror registries (cluster.md#mirror-registries): one `registry:3` container per
//! upstream registry, in proxy mode, shared by every cluster on the machine and kept by `cluster
//! delete`, so that a re-created cluster pulls nothing twice. The nodes' container runtime asks the
//! mirror first (kind: a `hosts.toml` per upstream host; k3s: `registries.yaml` mirrors).
//!
//! `spec.cluster.mirrorRegistries` lists them: `docker.io,ghcr.io,quay.io,registry.k8s.io` by
//! default, `host=https://upstream` for another registry, `none` for no mirrors. Pure: parsing
//! and naming only.

use crate::resolve::IN_CLUSTER_REGISTRY_PORT;

/// The mirrors when the key is unset.
pub const DEFAULT_MIRRORS: &str = "docker.io,ghcr.io,quay.io,registry.k8s.io";
/// The value that turns mirrors off.
pub const NO_MIRRORS: &str = "none";
/// The label that marks a mirror container as ksail's; its value is the upstream host.
pub const MIRROR_LABEL: &str = "io.ksail.mirror";

/// Where the registries ksail knows by name serve their API.
const KNOWN_UPSTREAMS: [(&str, &str); 4] = [
    ("docker.io", "https://registry-1.docker.io"),
    ("ghcr.io", "https://ghcr.io"),
    ("quay.io", "https://quay.io"),
    ("registry.k8s.io", "https://registry.k8s.io"),
];

/// One mirrored registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The host images name (`docker.io`).
    pub host: String,
    /// The URL the proxy pulls from (`https://registry-1.docker.io`).
    pub upstream: String,
}

impl Mirror {
    /// `ksail-mirror-docker-io`: a name without dots, so that it resolves as a plain host name.
    pub fn container(&self) -> String {
        format!("ksail-mirror-{}", self.host.replace(['.', ':'], "-"))
    }

    /// `http://ksail-mirror-docker-io:5000`, as the nodes reach it in the cluster network.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{IN_CLUSTER_REGISTRY_PORT}", self.container())
    }

    /// The `docker run` volume that keeps the cache when the container is re-created.
    pub fn volume(&self) -> String {
        self.container()
    }
}

/// Parse a `spec.cluster.mirrorRegistries` value. The error is the problem in words.
pub fn parse(text: &str) -> Result<Vec<Mirror>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case(NO_MIRRORS) {
        return Ok(Vec::new());
    }
    let mut mirrors: Vec<Mirror> = Vec::new();
    for entry in text.split(',').map(str::trim) {
        let mirror = parse_entry(entry)?;
        if mirrors.iter().any(|known| known.host == mirror.host) {
            return Err(format!("mirror host {:?} is listed twice", mirror.host));
        }
        mirrors.push(mirror);
    }
    Ok(mirrors)
}

fn parse_entry(entry: &str) -> Result<Mirror, String> {
    let (host, upstream) = match entry.split_once('=') {
        Some((host, upstream)) => (host.trim(), Some(upstream.trim())),
        None => (entry, None),
    };
    if host.is_empty() {
        return Err("empty mirror entry".to_string());
    }
    let valid_host = host
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-:".contains(c))
        && host.contains('.');
    if !valid_host {
        return Err(format!(
            "mirror host {host:?} is not a registry host (lowercase, with a dot, e.g. docker.io)"
        ));
    }
    let upstream = match upstream {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            url.trim_end_matches('/').to_string()
        }
        Some(url) => {
            return Err(format!(
                "mirror upstream {url:?} for {host} is not an http(s) URL"
            ));
        }
        None => KNOWN_UPSTREAMS
            .iter()
            .find(|(known, _)| *known == host)
            .map(|(_, url)| url.to_string())
            .ok_or_else(|| {
                format!(
                    "mirror host {host:?} has no known upstream; write {host}=https://<registry>"
                )
            })?,
    };
    Ok(Mirror {
        host: host.to_string(),
        upstream,
    })
}

/// The `hosts.toml` of a kind node for `mirror`: the mirror first, the upstream as the fallback
/// server (containerd's `certs.d` layout).
pub fn containerd_hosts(mirror: &Mirror) -> (String, String) {
    (
        format!("/etc/containerd/certs.d/{}/hosts.toml", mirror.host),
        format!(
            "server = \"{}\"\n\n[host.\"{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
            mirror.upstream,
            mirror.endpoint()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_list_names_four_registries_with_their_upstreams() {
        let mirrors = parse(DEFAULT_MIRRORS).unwrap();
        let pairs: Vec<(&str, &str, String)> = mirrors
            .iter()
            .map(|m| (m.host.as_str(), m.upstream.as_str(), m.container()))
            .collect();
        assert_eq!(
            pairs,
            [
                (
                    "docker.io",
                    "https://registry-1.docker.io",
                    "ksail-mirror-docker-io".to_string()
                ),
                (
                    "ghcr.io",
                    "https://ghcr.io",
                    "ksail-mirror-ghcr-io".to_string()
                ),
                (
                    "quay.io",
                    "https://quay.io",
                    "ksail-mirror-quay-io".to_string()
                ),
                (
                    "registry.k8s.io",
                    "https://registry.k8s.io",
                    "ksail-mirror-registry-k8s-io".to_string()
                ),
            ]
        );
    }

    #[test]
    fn entries_off_and_errors() {
        assert_eq!(parse("none").unwrap(), []);
        assert_eq!(parse(" None ").unwrap(), []);
        assert_eq!(
            parse("docker.io, mirror.gcr.io=https://mirror.gcr.io/").unwrap(),
            [
                Mirror {
                    host: "docker.io".into(),
                    upstream: "https://registry-1.docker.io".into()
                },
                Mirror {
                    host: "mirror.gcr.io".into(),
                    upstream: "https://mirror.gcr.io".into()
                },
            ]
        );
        for (text, problem) in [
            ("", "empty mirror entry"),
            ("docker.io,", "empty mirror entry"),
            (
                "docker.io,docker.io",
                "mirror host \"docker.io\" is listed twice",
            ),
            (
                "example.com",
                "mirror host \"example.com\" has no known upstream; write example.com=https://<registry>",
            ),
            (
                "Docker.io",
                "mirror host \"Docker.io\" is not a registry host (lowercase, with a dot, e.g. docker.io)",
            ),
            (
                "example.com=ftp://x",
                "mirror upstream \"ftp://x\" for example.com is not an http(s) URL",
            ),
        ] {
            assert_eq!(parse(text).unwrap_err(), problem, "{text:?}");
        }
    }

    #[test]
    fn the_kind_hosts_file_asks_the_mirror_first() {
        let mirror = &parse("ghcr.io").unwrap()[0];
        assert_eq!(
            containerd_hosts(mirror),
            (
                "/etc/containerd/certs.d/ghcr.io/hosts.toml".to_string(),
                "server = \"https://ghcr.io\"\n\n[host.\"http://ksail-mirror-ghcr-io:5000\"]\n  capabilities = [\"pull\", \"resolve\"]\n".to_string()
            )
        );
    }
}
