//! `ksail cluster create` (cluster.md "cluster create"): settings in, create the cluster
//! (`crate::cluster::create`), print the final line.

use crate::cli::CreateArgs;
use crate::cluster;
use crate::commands::{Context, Outcome};
use crate::config::FlagOverrides;
use crate::error::Failure;
use crate::settings::cluster::cluster_settings;

pub async fn run(ctx: &Context, args: CreateArgs) -> Outcome {
    super::until_cancelled(ctx, "cluster create", create(ctx, args)).await
}

async fn create(ctx: &Context, args: CreateArgs) -> Result<(), Failure> {
    let settings = cluster_settings(
        ctx,
        FlagOverrides {
            name: args.name,
            distribution: args.distribution,
            distribution_config: args.distribution_config,
            gitops_engine: args.gitops_engine,
            local_registry: args.local_registry,
            insecure: args.insecure.then_some(true),
            timeout: args.timeout,
            ..FlagOverrides::default()
        },
    )?;
    let line = cluster::create::create(ctx, &settings).await?;
    ctx.printer.result(&line);
    Ok(())
}
