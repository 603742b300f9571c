//! `ksail cluster update` (being written).

use crate::cli::UpdateArgs;
use crate::commands::{Context, Outcome};
use crate::error::Failure;

pub async fn run(_ctx: &Context, _args: UpdateArgs) -> Outcome {
    Outcome {
        command: "cluster update",
        result: Err(Failure::failed("cluster update is being written")),
        json: None,
    }
}
