//! `ksail cluster init` (cluster.md#cluster-init): the flags in, `cluster::init` plans and writes.

use crate::cli::InitArgs;
use crate::cluster::init::{self, Connection};
use crate::commands::{Context, Outcome};
use crate::config::FlagOverrides;
use crate::error::Failure;

pub async fn run(ctx: &Context, args: InitArgs) -> Outcome {
    Outcome {
        command: "cluster init",
        result: write_project(ctx, &args),
        json: None,
    }
}

fn write_project(ctx: &Context, args: &InitArgs) -> Result<(), Failure> {
    let flags = FlagOverrides {
        name: args.name.clone(),
        distribution: args.distribution.clone(),
        distribution_config: args.distribution_config.clone(),
        gitops_engine: args.gitops_engine.clone(),
        local_registry: args.local_registry.clone(),
        source_directory: args.source_directory.clone(),
        kustomization_file: args.kustomization_file.clone(),
        ..FlagOverrides::default()
    };
    let connection = Connection {
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
    };
    let plan = init::plan(&flags, &connection, &ctx.env.cwd)?;
    init::write(
        &plan,
        &args.output,
        &ctx.env.cwd,
        args.force,
        ctx.reporter(),
    )?;
    ctx.printer
        .result(&format!("initialized project in {}", args.output));
    Ok(())
}
