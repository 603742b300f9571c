//! `ksail cluster …` (cluster.md): init, create, update, delete, list.

mod create;
mod delete;
mod init;
mod list;
mod update;

use super::{Context, Outcome};
use crate::cli::ClusterSubcommand;
use crate::error::Failure;

/// The JSON/command name of a cluster subcommand.
fn command_name(command: &ClusterSubcommand) -> &'static str {
    match command {
        ClusterSubcommand::Init(_) => "cluster init",
        ClusterSubcommand::Create(_) => "cluster create",
        ClusterSubcommand::Update(_) => "cluster update",
        ClusterSubcommand::Delete(_) => "cluster delete",
        ClusterSubcommand::List(_) => "cluster list",
    }
}

pub async fn run(ctx: &Context, command: ClusterSubcommand) -> Outcome {
    match command {
        ClusterSubcommand::Init(args) => init::run(ctx, args).await,
        ClusterSubcommand::Create(args) => create::run(ctx, args).await,
        ClusterSubcommand::Update(args) => update::run(ctx, args).await,
        ClusterSubcommand::Delete(args) => delete::run(ctx, args).await,
        ClusterSubcommand::List(args) => list::run(ctx, args).await,
    }
}

/// The outcome of a create or update: `work` runs until the first signal cancels `ctx.cancel`,
/// which drops it and reports the command interrupted.
async fn until_cancelled(
    ctx: &Context,
    command: &'static str,
    work: impl Future<Output = Result<(), Failure>>,
) -> Outcome {
    let result = tokio::select! {
        result = work => result,
        () = ctx.cancel.cancelled() => Err(Failure::interrupted()),
    };
    Outcome {
        command,
        result,
        json: None,
    }
}

/// The outcome reported when a second signal (or the cleanup budget) cuts the command short.
pub fn interrupted(command: &ClusterSubcommand) -> Outcome {
    let json = match command {
        ClusterSubcommand::Init(args) => args.output.is_json(),
        ClusterSubcommand::List(args) => args.output.is_json(),
        _ => false,
    };
    Outcome {
        command: command_name(command),
        result: Err(Failure::interrupted()),
        json: json.then(serde_json::Map::new),
    }
}
