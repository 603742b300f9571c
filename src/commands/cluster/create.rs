//! `ksail cluster create` (cluster.md "cluster create"): settings in, create the cluster
//! (`crate::cluster::create`), print the final line.

use crate::cli::CreateArgs;
use crate::cluster;
use crate::commands::{Context, Outcome};
use crate::error::Failure;
use crate::settings::cluster::{ClusterFlags, cluster_settings};

pub const COMMAND: &str = "cluster create";

pub async fn run(ctx: &Context, args: CreateArgs) -> Outcome {
    let result = tokio::select! {
        result = create(ctx, args) => result,
        () = ctx.cancel.cancelled() => Err(Failure::interrupted()),
    };
    Outcome {
        command: COMMAND,
        result,
        json: None,
    }
}

async fn create(ctx: &Context, args: CreateArgs) -> Result<(), Failure> {
    let settings = cluster_settings(
        ctx,
        ClusterFlags {
            name: args.name,
            distribution: args.distribution,
            distribution_config: args.distribution_config,
            gitops_engine: args.gitops_engine,
            local_registry: args.local_registry,
            insecure: args.insecure,
            timeout: args.timeout,
        },
    )?;
    let line = cluster::create::create(ctx, &settings).await?;
    ctx.printer.result(&line);
    Ok(())
}
