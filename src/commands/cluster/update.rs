//! `ksail cluster update` (cluster.md "cluster update"): settings in, compare and repair
//! (`crate::cluster::update`).

use crate::cli::UpdateArgs;
use crate::cluster;
use crate::commands::{Context, Outcome};
use crate::config::FlagOverrides;
use crate::error::Failure;
use crate::settings::cluster::cluster_settings;

pub async fn run(ctx: &Context, args: UpdateArgs) -> Outcome {
    super::until_cancelled(ctx, "cluster update", update(ctx, args)).await
}

async fn update(ctx: &Context, args: UpdateArgs) -> Result<(), Failure> {
    let settings = cluster_settings(
        ctx,
        FlagOverrides {
            name: args.name,
            insecure: args.insecure.then_some(true),
            timeout: args.timeout,
            ..FlagOverrides::default()
        },
    )?;
    cluster::update::update(ctx, &settings, args.dry_run).await
}
