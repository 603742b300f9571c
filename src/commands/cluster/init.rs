//! `ksail cluster init` (being written).

use crate::cli::InitArgs;
use crate::commands::{Context, Outcome};
use crate::error::Failure;

pub async fn run(_ctx: &Context, _args: InitArgs) -> Outcome {
    Outcome {
        command: "cluster init",
        result: Err(Failure::failed("cluster init is being written")),
        json: None,
    }
}
