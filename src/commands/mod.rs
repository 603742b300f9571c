//! Commands: plain async functions that take settings and the `Printer` and return an
//! [`Outcome`]. They never exit the process; `main` does.

pub mod cluster;
pub mod completion;
pub mod keygen;
pub mod push;
pub mod reconcile;
pub mod watch;

use serde_json::{Map, Value};

use tokio_util::sync::CancellationToken;

use crate::error::Failure;

pub use crate::context::Context;

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

/// How long a command may take to finish its cleanup after the first signal.
const CLEANUP_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Run a command under SIGINT/SIGTERM handling (cli.md#signals): the first signal cancels
/// `cancel`, and the command gets up to 30 s to finish its cleanup (resume HelmReleases, remove
/// temporary files) and return; its outcome is then reported as interrupted (exit 130). A second
/// signal, or the end of the budget, stops waiting and reports `on_interrupt`.
pub async fn with_signals(
    command: impl std::future::Future<Output = Outcome>,
    on_interrupt: Outcome,
    cancel: CancellationToken,
) -> Outcome {
    // The listeners run in their own task, so that a signal is seen even while the command's
    // task is busy in synchronous code (loading a large ksail.yaml), which checks
    // `interrupt::requested()`. One set of listeners for both signals: a listener made after the
    // first signal could be woken by that same signal and cut the cleanup short (a HelmRelease
    // resumed twice).
    let (first, second) = (CancellationToken::new(), CancellationToken::new());
    let listener = tokio::spawn({
        let (first, second) = (first.clone(), second.clone());
        async move {
            let mut signals = Signals::new();
            signals.next().await;
            crate::interrupt::request();
            cancel.cancel();
            first.cancel();
            signals.next().await;
            second.cancel();
        }
    });
    let _stop_listening = AbortOnDrop(listener);
    let mut command = std::pin::pin!(command);
    tokio::select! {
        outcome = &mut command => return outcome,
        () = first.cancelled() => {}
    }
    tokio::select! {
        finished = tokio::time::timeout(CLEANUP_BUDGET, &mut command) => match finished {
            // `workload watch` runs until a signal: stopping cleanly on one is its success.
            Ok(outcome) if outcome.command == watch::COMMAND && outcome.result.is_ok() => outcome,
            Ok(mut outcome) => {
                outcome.result = Err(Failure::interrupted());
                outcome
            }
            Err(_) => on_interrupt,
        },
        () = second.cancelled() => on_interrupt,
    }
}

/// Aborts the signal listener when the command is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SIGINT and SIGTERM listeners, registered once for the whole command.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next signal received after the previous call returned.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            let interrupt = async {
                match self.interrupt.as_mut() {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match self.terminate.as_mut() {
                    Some(stream) => {
                        stream.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => {}
                () = terminate => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
