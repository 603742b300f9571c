//! `ksail cluster list` (being written).

use crate::cli::ListArgs;
use crate::commands::{Context, Outcome};
use crate::error::Failure;

pub async fn run(_ctx: &Context, _args: ListArgs) -> Outcome {
    Outcome {
        command: "cluster list",
        result: Err(Failure::failed("cluster list is being written")),
        json: None,
    }
}
