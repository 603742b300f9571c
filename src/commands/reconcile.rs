//! `ksail workload reconcile` (reconcile.md): settings in, run (`crate::gitops::reconcile`),
//! print the success line or the JSON document.

use std::time::Instant;

use super::{Context, Outcome};
use crate::cli::ReconcileArgs;
use crate::error::Failure;
use crate::gitops::reconcile::{RunState, reconcile};
use crate::output::OutputFormat;
use crate::settings::reconcile_settings;

pub const COMMAND: &str = "workload reconcile";

pub async fn run(ctx: &Context, args: ReconcileArgs) -> Outcome {
    let started = Instant::now();
    let run = RunState::default();
    let result = match reconcile_settings(ctx, &args) {
        Ok(settings) => reconcile(ctx, &settings, &run, started).await.map(|line| {
            if let Some(line) = line
                && settings.output == OutputFormat::Text
            {
                ctx.printer.result(&line);
            }
        }),
        Err(failure) => Err(failure),
    };
    let json = args.output.is_json().then(|| run.to_json(started));
    Outcome {
        command: COMMAND,
        result,
        json,
    }
}

/// The outcome reported when a second signal (or the cleanup budget) cuts the run short.
pub fn interrupted(args: &ReconcileArgs) -> Outcome {
    Outcome {
        command: COMMAND,
        result: Err(Failure::interrupted()),
        json: args
            .output
            .is_json()
            .then(|| RunState::default().to_json(Instant::now())),
    }
}
