//! `ksail cluster delete` (cluster.md#cluster-delete): delete the cluster, then its local registry
//! container if ksail made it. Deleting something that does not exist is not an error, so the
//! command can run twice in a row; there is no prompt, and external registries are never touched.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::DeleteArgs;
use crate::cluster::provider::{Distribution, PATH_VAR, Provider, ProviderError, REGISTRY_LABEL};
use crate::commands::{Context, Outcome};
use crate::config::FlagOverrides;
use crate::error::Failure;
use crate::output::Printer;
use crate::resolve;
use crate::settings::load_effective_for_cluster;

pub async fn run(ctx: &Context, args: DeleteArgs) -> Outcome {
    Outcome {
        command: "cluster delete",
        result: delete(ctx, &args).await,
        json: None,
    }
}

/// What `delete` needs, decided from flags and config before any tool runs (so a bad input exits
/// 2 without a child process).
#[derive(Debug)]
struct DeleteSettings {
    cluster: String,
    distribution: Distribution,
    /// The first resolved kubeconfig file: kind/k3d remove the cluster's context from it.
    kubeconfig: Option<PathBuf>,
}

fn delete_settings(ctx: &Context, args: &DeleteArgs) -> Result<DeleteSettings, Failure> {
    let flags = FlagOverrides {
        name: args.name.clone(),
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
        ..FlagOverrides::default()
    };
    let effective = load_effective_for_cluster(ctx, &flags)?;
    let distribution = Distribution::from_effective(&effective)?;
    // `--name` reached `effective.name` through the flag overrides (validated there).
    let cluster = crate::settings::config_cluster_name(&effective)?.ok_or_else(|| {
        Failure::usage(
            "cannot delete a cluster: its name is unknown; pass --name or set metadata.name",
        )
    })?;
    Ok(DeleteSettings {
        cluster,
        distribution,
        kubeconfig: effective
            .kubeconfig
            .value
            .first()
            .map(|path| path.resolved.clone()),
    })
}

async fn delete(ctx: &Context, args: &DeleteArgs) -> Result<(), Failure> {
    let settings = delete_settings(ctx, args)?;
    let printer = &ctx.printer;
    let provider = Provider::new(settings.distribution, settings.kubeconfig.clone())
        .with_search_path(ctx.env.var(PATH_VAR).map(OsString::from));
    // The same order as create's preflight, so both commands report a missing tool alike.
    provider.check_docker().await?;
    provider.check_tool()?;

    let cluster = &settings.cluster;
    let step = printer.step(&format!("cluster {cluster}: deleting"));
    let deleted: Result<bool, ProviderError> = async {
        if !provider.cluster_exists(cluster).await? {
            return Ok(false);
        }
        provider.delete_cluster(cluster).await.map(|()| true)
    }
    .await;
    match deleted {
        Ok(true) => step.finish(&format!("✓ cluster {cluster}: deleted")),
        Ok(false) => step.finish(&format!(
            "– cluster {cluster}: not found (nothing to delete)"
        )),
        Err(error) => {
            step.finish(&format!("✗ cluster {cluster}: delete failed"));
            return Err(error.into());
        }
    }
    remove_registry(
        &provider,
        printer,
        &resolve::local_registry_container(cluster),
    )
    .await
}

/// Remove `<cluster>-local-registry` only when it carries ksail's label: a container of that name
/// that someone else made is left alone, with a warning.
async fn remove_registry(
    provider: &Provider,
    printer: &Printer,
    registry: &str,
) -> Result<(), Failure> {
    let step = printer.step(&format!("registry {registry}: removing"));
    let result: Result<Option<String>, ProviderError> = async {
        match provider.inspect_container(registry).await? {
            Some(info) if info.is_ksail_registry() => {
                provider.remove_container(registry).await?;
                Ok(Some(format!("✓ registry {registry}: removed")))
            }
            Some(_) => Ok(None),
            None => Ok(Some(format!("– registry {registry}: not found"))),
        }
    }
    .await;
    match result {
        Ok(Some(line)) => step.finish(&line),
        Ok(None) => {
            drop(step);
            printer.warn(&format!(
                "registry {registry}: the container has no {REGISTRY_LABEL} label, so ksail did not create it; leaving it in place (remove it with docker rm --force {registry} if it is yours)"
            ));
        }
        Err(error) => {
            step.finish(&format!("✗ registry {registry}: remove failed"));
            return Err(Failure::from(error));
        }
    }
    Ok(())
}
