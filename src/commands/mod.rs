//! Commands: plain async functions that take settings and the `Printer` and return an
//! [`Outcome`]. They never exit the process; `main` does.

pub mod push;

use serde_json::{Map, Value};

use crate::cli::GlobalArgs;
use crate::error::Failure;
use crate::output::Printer;
use crate::process::ProcessEnv;

/// What every command gets: the process inputs, the printer and the global flags.
pub struct Context {
    pub env: ProcessEnv,
    pub printer: Printer,
    pub global: GlobalArgs,
}

/// How a command ended, plus its JSON members when `--output json` was requested.
#[derive(Debug)]
pub struct Outcome {
    pub command: &'static str,
    pub result: Result<(), Failure>,
    /// Command-specific members of the JSON document (artifact.md#result,
    /// reconcile.md#json); `None` in text mode.
    pub json: Option<Map<String, Value>>,
}

impl Outcome {
    /// The one JSON document for `--output json` (cli.md#json-output---output-json): the common
    /// members `command`, `status`, `exitCode`, `error`, then the command's own.
    pub fn json_document(&self) -> Option<String> {
        let members = self.json.as_ref()?;
        let mut document = Map::new();
        document.insert("command".into(), Value::from(self.command));
        let (status, code, error) = match &self.result {
            Ok(()) => (
                members
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("succeeded")
                    .to_string(),
                0,
                Value::Null,
            ),
            Err(failure) => (
                failure.class.json_status().to_string(),
                failure.class.exit_code(),
                Value::from(failure.message.clone()),
            ),
        };
        document.insert("status".into(), Value::from(status));
        document.insert("exitCode".into(), Value::from(code));
        document.insert("error".into(), error);
        for (key, value) in members {
            if !document.contains_key(key) {
                document.insert(key.clone(), value.clone());
            }
        }
        Some(serde_json::to_string(&Value::Object(document)).unwrap_or_default())
    }
}

/// Race a command against SIGINT/SIGTERM. The command future is dropped on the first signal,
/// which removes its temporary files (they are `tempfile` handles); the outcome is then
/// "interrupted" (exit 130). Commands with cleanup duties that must run to completion (HelmRelease
/// resume) handle the signal themselves before this fires.
///
/// `on_interrupt` is the outcome to report then: the command name and, with `--output json`, the
/// members as far as they are known (cli.md: one JSON document whatever the exit code).
pub async fn with_signals(
    command: impl std::future::Future<Output = Outcome>,
    on_interrupt: Outcome,
) -> Outcome {
    tokio::select! {
        outcome = command => outcome,
        () = shutdown_signal() => on_interrupt,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
