//! The clusters kind and k3d know about, with the state of each one's local registry container
//! (cluster.md#cluster-list). It reads no `ksail.yaml`: it lists every cluster on this machine,
//! not the configured one.

use std::ffi::OsString;

use super::provider::{ContainerInfo, Distribution, Provider};
use crate::error::Failure;
use crate::progress::Reporter;
use crate::resolve;

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    pub name: String,
    pub distribution: Distribution,
    pub registry: Option<RegistryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRow {
    pub name: String,
    pub running: bool,
    /// `localhost:5050`, as a user would address it from this machine.
    pub address: Option<String>,
    pub host_port: Option<u16>,
}

/// Every cluster kind and k3d know about, sorted by name, with its registry container if any.
/// `search_path` is the `PATH` to find the tools in.
pub async fn list(
    search_path: Option<OsString>,
    reporter: &dyn Reporter,
) -> Result<Vec<ClusterRow>, Failure> {
    // The distribution only matters for single-cluster calls; listing asks both tools.
    let provider = Provider::new(Distribution::Vanilla, None).with_search_path(search_path);
    let listing = provider.list_clusters().await?;
    for warning in &listing.warnings {
        reporter.warn(warning);
    }
    let mut rows = Vec::with_capacity(listing.clusters.len());
    for (name, distribution) in listing.clusters {
        let container = resolve::local_registry_container(&name);
        let registry = provider
            .inspect_container(&container)
            .await?
            .map(|info| registry_row(container, &info));
        rows.push(ClusterRow {
            name,
            distribution,
            registry,
        });
    }
    Ok(rows)
}

pub fn registry_row(name: String, info: &ContainerInfo) -> RegistryRow {
    RegistryRow {
        name,
        running: info.running,
        address: info
            .host_port
            .map(|port| format!("{}:{port}", display_host(info.host_ip.as_deref()))),
        host_port: info.host_port,
    }
}

/// Loopback and "every address" are shown as `localhost`, the name a push would use.
pub fn display_host(host_ip: Option<&str>) -> String {
    match host_ip {
        None | Some("" | "0.0.0.0" | "127.0.0.1" | "::") => "localhost".to_string(),
        Some(ip) if ip.contains(':') => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
    }
}
