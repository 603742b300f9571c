//! `ksail cluster delete` (being written).

use crate::cli::DeleteArgs;
use crate::commands::{Context, Outcome};
use crate::error::Failure;

pub async fn run(_ctx: &Context, _args: DeleteArgs) -> Outcome {
    Outcome {
        command: "cluster delete",
        result: Err(Failure::failed("cluster delete is being written")),
        json: None,
    }
}
