//! What every command gets: the process inputs, the printer, the global settings and the
//! cancellation token. Built once in `main`; domain modules and `settings` read it, none of them
//! imports `commands`.

use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::output::Printer;
use crate::process::ProcessEnv;
use crate::progress::Reporter;

pub struct Context {
    pub env: ProcessEnv,
    pub printer: Printer,
    pub global: GlobalSettings,
    /// Cancelled on the first SIGINT or SIGTERM. Commands with cleanup duties watch it, finish
    /// them and return an interrupted outcome (cli.md#signals).
    pub cancel: CancellationToken,
}

impl Context {
    /// Where domain code reports progress: the printer, seen through [`Reporter`].
    pub fn reporter(&self) -> &dyn Reporter {
        &self.printer
    }
}

/// The flags accepted anywhere on the command line that commands read (cli.md#global-flags);
/// `--verbose`, `--quiet` and `--no-color` configure the printer instead.
#[derive(Debug, Clone, Default)]
pub struct GlobalSettings {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<String>,
    /// `--context`.
    pub context: Option<String>,
}
