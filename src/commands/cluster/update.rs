//! `ksail cluster update` (cluster.md "cluster update"): settings in, compare and repair
//! (`crate::cluster::update`).

use crate::cli::UpdateArgs;
use crate::cluster;
use crate::commands::{Context, Outcome};
use crate::error::Failure;
use crate::settings::cluster::{ClusterFlags, cluster_settings};

pub const COMMAND: &str = "cluster update";

pub async fn run(ctx: &Context, args: UpdateArgs) -> Outcome {
    let result = tokio::select! {
        result = update(ctx, args) => result,
        () = ctx.cancel.cancelled() => Err(Failure::interrupted()),
    };
    Outcome {
        command: COMMAND,
        result,
        json: None,
    }
}

async fn update(ctx: &Context, args: UpdateArgs) -> Result<(), Failure> {
    let settings = cluster_settings(
        ctx,
        ClusterFlags {
            name: args.name,
            insecure: args.insecure,
            timeout: args.timeout,
            ..ClusterFlags::default()
        },
    )?;
    cluster::update::update(ctx, &settings, args.dry_run).await
}
