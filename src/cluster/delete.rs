//! Deleting a cluster (cluster.md#cluster-delete): the cluster, then its local registry container
//! if ksail made it. Deleting something that does not exist is not an error, so the command can
//! run twice in a row; there is no prompt, and external registries are never touched.

use std::ffi::OsString;
use std::path::PathBuf;

use super::provider::{Distribution, Provider, ProviderError, REGISTRY_LABEL};
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
    let step = reporter.step(&format!("cluster {cluster}: deleting"));
    let deleted: Result<bool, ProviderError> = async {
        if !provider.cluster_exists(cluster).await? {
            return Ok(false);
        }
        provider.delete_cluster(cluster).await.map(|()| true)
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
            return Err(error.into());
        }
    }
    remove_registry(
        &provider,
        reporter,
        &resolve::local_registry_container(cluster),
    )
    .await
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
