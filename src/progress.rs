//! How domain code tells the user what it is doing, without knowing how it is shown (the
//! `Reporter` pattern of uv's `uv-publish`).
//!
//! Domain modules (`publish`, `cluster`, `gitops`, `retry`, `settings`) take a `&dyn Reporter`
//! and say *what* happened: a progress line, a warning, a step that is running, bytes sent. The
//! one display, [`crate::output::Printer`], decides *how*: stamped lines or spinners, nothing
//! under `--quiet`, colour, redaction, stdout or stderr. Unit tests pass a [`Recorder`].
//! `tests/architecture.rs` checks that no domain module names the `Printer`.

/// Where domain code sends what the user sees while it works. `Sync` because watch tasks and the
/// resume guard of HelmRelease recovery report from other threads.
pub trait Reporter: Sync {
    /// A progress line (suppressed by `--quiet`).
    fn info(&self, line: &str);
    /// A detail line, shown at `-v`.
    fn verbose(&self, line: &str);
    /// A warning; `line` comes without the `warning:` prefix. Never suppressed.
    fn warn(&self, line: &str);
    /// A report line (validation problems, diagnostics): never suppressed, shown as is so that
    /// `file:line:column` stays at the start of the line.
    fn report(&self, line: &str);
    /// A result line: what the command produced (stdout).
    fn result(&self, line: &str);
    /// Whether running steps are drawn live (spinners on a terminal). When not, a step shows
    /// nothing until its final line.
    fn live(&self) -> bool;
    /// A running step labelled `label`, shown live until it is dropped (the caller reports its
    /// outcome as a line of its own).
    fn step(&self, label: &str) -> Box<dyn Activity + '_>;
    /// The byte progress of an upload of `total` bytes labelled `label`.
    fn transfer(&self, label: &str, total: u64) -> Box<dyn Transfer + '_>;
}

/// A step started with [`Reporter::step`].
pub trait Activity: Send {
    /// Change what the running step says.
    fn update(&self, text: &str);
}

/// An upload started with [`Reporter::transfer`].
pub trait Transfer: Send + Sync {
    /// `sent` bytes of the total have been sent.
    fn sent(&self, sent: u64);
}

/// A step or transfer nobody sees (used by reporters that draw nothing live).
pub struct Unseen;

impl Activity for Unseen {
    fn update(&self, _: &str) {}
}

impl Transfer for Unseen {
    fn sent(&self, _: u64) {}
}

/// A reporter that keeps every line, for unit tests: `lines()` returns them in order, warnings
/// with their `warning: ` prefix and detail lines with `verbose: `.
#[cfg(test)]
#[derive(Default)]
pub struct Recorder {
    lines: std::sync::Mutex<Vec<String>>,
    live: bool,
}

#[cfg(test)]
impl Recorder {
    /// A recorder that claims to draw steps live, as a terminal does.
    pub fn live() -> Self {
        Recorder {
            live: true,
            ..Recorder::default()
        }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("recorder lock").clone()
    }

    fn push(&self, line: String) {
        self.lines.lock().expect("recorder lock").push(line);
    }
}

#[cfg(test)]
impl Reporter for Recorder {
    fn info(&self, line: &str) {
        self.push(line.to_string());
    }
    fn verbose(&self, line: &str) {
        self.push(format!("verbose: {line}"));
    }
    fn warn(&self, line: &str) {
        self.push(format!("warning: {line}"));
    }
    fn report(&self, line: &str) {
        self.push(line.to_string());
    }
    fn result(&self, line: &str) {
        self.push(line.to_string());
    }
    fn live(&self) -> bool {
        self.live
    }
    fn step(&self, _: &str) -> Box<dyn Activity + '_> {
        Box::new(Unseen)
    }
    fn transfer(&self, _: &str, _: u64) -> Box<dyn Transfer + '_> {
        Box::new(Unseen)
    }
}
