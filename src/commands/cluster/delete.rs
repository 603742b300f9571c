//! `ksail cluster delete` (cluster.md#cluster-delete): the cluster's name and distribution from
//! flags and config, then `cluster::delete`.

use std::ffi::OsString;

use crate::cli::DeleteArgs;
use crate::cluster::delete::{self, DeleteSettings};
use crate::cluster::provider::{Distribution, PATH_VAR};
use crate::commands::{Context, Outcome};
use crate::config::{FlagOverrides, Source};
use crate::error::Failure;
use crate::settings::load_effective_for_cluster;

pub async fn run(ctx: &Context, args: DeleteArgs) -> Outcome {
    Outcome {
        command: "cluster delete",
        result: run_delete(ctx, &args).await,
        json: None,
    }
}

async fn run_delete(ctx: &Context, args: &DeleteArgs) -> Result<(), Failure> {
    let settings = delete_settings(ctx, args)?;
    let search_path = ctx.env.var(PATH_VAR).map(OsString::from);
    delete::delete(&settings, search_path, ctx.reporter()).await
}

/// Decided from flags and config before any tool runs, so a bad input exits 2 without a child
/// process.
fn delete_settings(ctx: &Context, args: &DeleteArgs) -> Result<DeleteSettings, Failure> {
    let flags = FlagOverrides {
        name: args.name.clone(),
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
        ..FlagOverrides::default()
    };
    let effective = load_effective_for_cluster(ctx, &flags)?;
    // Without a ksail.yaml and without an explicit name, the default name (`kind`) could be
    // anyone's cluster: ksail does not guess which one to delete.
    let named = effective
        .name
        .as_ref()
        .is_some_and(|name| matches!(name.source, Source::Flag(_) | Source::Env(_)));
    if effective.config_file.is_none() && !named {
        return Err(Failure::usage(
            "cannot delete a cluster: there is no ksail.yaml here and no --name, so it is unknown which cluster is this project's; run ksail cluster delete in the project directory, or pass --name",
        ));
    }
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
