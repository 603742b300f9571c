//! `ksail cluster create` (being written).

use crate::cli::CreateArgs;
use crate::commands::{Context, Outcome};
use crate::error::Failure;

pub async fn run(_ctx: &Context, _args: CreateArgs) -> Outcome {
    Outcome {
        command: "cluster create",
        result: Err(Failure::failed("cluster create is being written")),
        json: None,
    }
}
