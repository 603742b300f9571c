//! Deleting a cluster (cluster.md#cluster-delete): the cluster — only one `cluster create` made —
//! then its local registry container if ksail made it, and for K3s the network ksail made.
//! Deleting something that does not exist is not an error, so the command can run twice in a
//! row; there is no prompt, and external registries are never touched.

use std::ffi::OsString;
use std::path::PathBuf;

use super::provider::{
    Distribution, NETWORK_LABEL, OWNER_MARK_PATH, Provider, ProviderError, REGISTRY_LABEL,
};
use super::setup::{done, failed, skipped};
use crate::error::Failure;
use crate::progress::Reporter;
use crate::resolve;

/// What deleting needs, decided from flags and config before any tool runs.
#[derive(Debug)]
pub struct DeleteSettings {
    pub cluster: String,
    pub distribution: Distribution,
    /// The first resolved kubeconfig file: kind/k3d remove the cluster's context from it.
    pub kubeconfig: Option<PathBuf>,
}

/// Delete `settings.cluster`, then its registry container. `search_path` is the `PATH` to find
/// the tools in.
pub async fn delete(
    settings: &DeleteSettings,
    search_path: Option<OsString>,
    reporter: &dyn Reporter,
) -> Result<(), Failure> {
    let provider = Provider::new(settings.distribution, settings.kubeconfig.clone())
        .with_search_path(search_path);
    // The same order as create's preflight, so both commands report a missing tool alike.
    provider.check_docker().await?;
    provider.check_tool()?;

    let cluster = &settings.cluster;
    let registry = resolve::local_registry_container(cluster);
    let network = settings.distribution.network(cluster);
    let step = reporter.step(&format!("cluster {cluster}: deleting"));
    let deleted: Result<bool, Failure> = async {
        if !provider.cluster_exists(cluster).await? {
            return Ok(false);
        }
        check_owner(&provider, settings).await?;
        if settings.distribution == Distribution::K3s {
            // k3d deletes the network it made only when no foreign container is attached.
            disconnect_ksail_containers(&provider, &network).await?;
        }
        provider.delete_cluster(cluster).await?;
        Ok(true)
    }
    .await;
    drop(step);
    match deleted {
        Ok(true) => done(reporter, &format!("cluster {cluster}: deleted")),
        Ok(false) => skipped(
            reporter,
            &format!("cluster {cluster}: not found (nothing to delete)"),
        ),
        Err(error) => {
            failed(reporter, &format!("cluster {cluster}: delete failed"));
            return Err(error);
        }
    }
    remove_registry(&provider, reporter, &registry).await?;
    if settings.distribution == Distribution::K3s {
        remove_network(&provider, reporter, &network, cluster).await?;
    }
    Ok(())
}

/// A cluster ksail did not create is not deleted: some node must carry the mark
/// `cluster create` writes (`/etc/ksail/cluster` holding the cluster's name).
async fn check_owner(provider: &Provider, settings: &DeleteSettings) -> Result<(), Failure> {
    let cluster = &settings.cluster;
    let mark = format!("{cluster}\n");
    for node in provider.nodes(cluster).await? {
        if provider
            .read_file_in_node(&node, OWNER_MARK_PATH)
            .await?
            .as_deref()
            == Some(&mark)
        {
            return Ok(());
        }
    }
    let tool = match settings.distribution {
        Distribution::Vanilla => format!("kind delete cluster --name {cluster}"),
        Distribution::K3s => format!("k3d cluster delete {cluster}"),
    };
    Err(Failure::failed(format!(
        "cluster {cluster} was not created by ksail cluster create (no node carries the mark {OWNER_MARK_PATH}), so ksail does not delete it; if it is yours to delete, run {tool}"
    )))
}

/// Take ksail's containers (the local registry, the mirrors) out of the cluster network: they
/// outlive the cluster, and k3d deletes a network it made only when nothing foreign is attached.
async fn disconnect_ksail_containers(provider: &Provider, network: &str) -> Result<(), Failure> {
    let Some(info) = provider.inspect_network(network).await? else {
        return Ok(());
    };
    for member in &info.members {
        let ours = provider
            .inspect_container(member)
            .await?
            .is_some_and(|container| container.is_ksail_registry() || container.is_ksail_mirror());
        if ours {
            provider.disconnect_network(network, member).await?;
        }
    }
    Ok(())
}

/// Remove the `k3d-<cluster>` network ksail created before k3d (k3d leaves a network it found).
async fn remove_network(
    provider: &Provider,
    reporter: &dyn Reporter,
    network: &str,
    cluster: &str,
) -> Result<(), Failure> {
    let ours = provider
        .inspect_network(network)
        .await?
        .is_some_and(|info| info.labels.get(NETWORK_LABEL).map(String::as_str) == Some(cluster));
    if !ours {
        return Ok(());
    }
    if let Err(error) = provider.remove_network(network).await {
        failed(reporter, &format!("network {network}: remove failed"));
        return Err(error.into());
    }
    done(reporter, &format!("network {network}: removed"));
    Ok(())
}

/// Remove `<cluster>-local-registry` only when it carries ksail's label: a container of that name
/// that someone else made is left alone, with a warning.
async fn remove_registry(
    provider: &Provider,
    reporter: &dyn Reporter,
    registry: &str,
) -> Result<(), Failure> {
    let step = reporter.step(&format!("registry {registry}: removing"));
    // Some(removed), or None for a container ksail did not make.
    let result: Result<Option<bool>, ProviderError> = async {
        match provider.inspect_container(registry).await? {
            Some(info) if info.is_ksail_registry() => {
                provider.remove_container(registry).await?;
                Ok(Some(true))
            }
            Some(_) => Ok(None),
            None => Ok(Some(false)),
        }
    }
    .await;
    drop(step);
    match result {
        Ok(Some(true)) => done(reporter, &format!("registry {registry}: removed")),
        Ok(Some(false)) => skipped(reporter, &format!("registry {registry}: not found")),
        Ok(None) => {
            reporter.warn(&format!(
                "registry {registry}: the container has no {REGISTRY_LABEL} label, so ksail did not create it; leaving it in place (remove it with docker rm --force {registry} if it is yours)"
            ));
        }
        Err(error) => {
            failed(reporter, &format!("registry {registry}: remove failed"));
            return Err(Failure::from(error));
        }
    }
    Ok(())
}
