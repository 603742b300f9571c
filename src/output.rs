//! The `Printer`: the only way anything reaches stdout or stderr (cli.md#output-streams).
//!
//! - stdout carries results only (result lines, the JSON document, help, completion scripts);
//! - stderr carries progress, warnings, logs, reports and the final `error:` line.
//!
//! On a terminal, running steps get indicatif spinners; otherwise every event is one line with a
//! UTC timestamp prefix. Every line passes through [`redact`] first, so a secret registered with
//! [`register_secret`] can never be printed, whatever code path produced the text.

use std::io::Write;
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::progress::{Activity, Reporter, Transfer, Unseen};

/// `text` or `json` for commands that have `--output` (`cli::OutputArg` is the flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Text,
    Json,
}

const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// How the printer behaves; decided once at start-up.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrinterConfig {
    pub stderr_is_tty: bool,
    /// `--no-color` or a non-empty `NO_COLOR`.
    pub no_color: bool,
    pub quiet: bool,
    pub verbose: u8,
}

pub struct Printer {
    config: PrinterConfig,
    multi: Option<MultiProgress>,
    /// Serialises plain-mode writes so that lines from concurrent tasks never interleave.
    lock: Mutex<()>,
}

impl Printer {
    pub fn new(config: PrinterConfig) -> Self {
        let multi = config
            .stderr_is_tty
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Printer {
            config,
            multi,
            lock: Mutex::new(()),
        }
    }

    /// Whether progress is drawn with spinners (stderr is a terminal and `--quiet` is off).
    pub fn draws_spinners(&self) -> bool {
        self.multi.is_some() && !self.config.quiet
    }

    fn colour_stderr(&self) -> bool {
        self.config.stderr_is_tty && !self.config.no_color
    }

    fn paint(&self, colour: &str, text: &str) -> String {
        if self.colour_stderr() {
            format!("{colour}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    /// Write one stderr line; in plain mode with the timestamp prefix when `stamped`.
    fn stderr_line(&self, text: &str, stamped: bool) {
        let text = redact(text);
        let line = if stamped && !self.config.stderr_is_tty {
            format!("{} {text}", timestamp_now())
        } else {
            text
        };
        match &self.multi {
            // Not `MultiProgress::println`: it pads the line to the terminal width and leaves the
            // newline to auto-wrap, which garbles recordings and terminals of unknown width. A
            // finished line is written whole, with its newline; only the spinners are redrawn.
            Some(multi) => multi.suspend(|| {
                let _guard = self.lock.lock();
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }),
            None => {
                let _guard = self.lock.lock();
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    /// An informational progress line. Suppressed by `--quiet`.
    pub fn info(&self, text: &str) {
        if !self.config.quiet {
            self.stderr_line(text, true);
        }
    }

    /// A debug line shown at `-v` and above (for messages the spec wants at `-v` as plain lines).
    pub fn verbose(&self, text: &str) {
        if self.config.verbose > 0 {
            self.stderr_line(text, true);
        }
    }

    /// A `warning:` line. Never suppressed.
    pub fn warn(&self, text: &str) {
        let prefix = self.paint(YELLOW, "warning:");
        self.stderr_line(&format!("{prefix} {text}"), true);
    }

    /// A report line (validation problems, diagnostics): never suppressed, never stamped, so that
    /// `file:line:column` stays at the start of the line for editors.
    pub fn report(&self, text: &str) {
        self.stderr_line(text, false);
    }

    /// The final `error:` line. It has no timestamp, so it always starts with `error: `.
    pub fn error(&self, text: &str) {
        let prefix = self.paint(RED, "error:");
        self.stderr_line(&format!("{prefix} {}", crate::error::one_line(text)), false);
    }

    /// A result line on stdout.
    pub fn result(&self, text: &str) {
        let _guard = self.lock.lock();
        let _ = writeln!(std::io::stdout().lock(), "{}", redact(text));
    }

    /// Raw text on stdout (help, completion scripts), written as is.
    pub fn raw_stdout(&self, text: &str) {
        let _guard = self.lock.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// A running step: a spinner on a terminal, nothing until it finishes otherwise.
    pub fn step(&self, text: &str) -> Step<'_> {
        let bar = match (&self.multi, self.config.quiet) {
            (Some(multi), false) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg}")
                        .expect("static template is valid"),
                );
                bar.set_message(redact(text));
                bar.enable_steady_tick(Duration::from_millis(100));
                Some(bar)
            }
            _ => None,
        };
        Step { printer: self, bar }
    }

    /// A byte progress bar for an upload (terminal only, uploads over 1 MiB).
    pub fn byte_bar(&self, text: &str, total: u64) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        if self.config.quiet || total <= 1024 * 1024 {
            return None;
        }
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .expect("static template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(redact(text));
        Some(bar)
    }
}

/// A step started with [`Printer::step`].
pub struct Step<'a> {
    printer: &'a Printer,
    bar: Option<ProgressBar>,
}

impl Step<'_> {
    /// Change the spinner's text (terminal only).
    pub fn set_message(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(redact(text));
        }
    }

    /// Replace the spinner with its final line (a plain informational line).
    pub fn finish(self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.printer.info(text);
    }
}

impl Drop for Step<'_> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// The CLI's display of what domain code reports (see [`crate::progress`]).
impl Reporter for Printer {
    fn info(&self, line: &str) {
        Printer::info(self, line);
    }
    fn verbose(&self, line: &str) {
        Printer::verbose(self, line);
    }
    fn warn(&self, line: &str) {
        Printer::warn(self, line);
    }
    fn report(&self, line: &str) {
        Printer::report(self, line);
    }
    fn result(&self, line: &str) {
        Printer::result(self, line);
    }
    fn live(&self) -> bool {
        self.draws_spinners()
    }
    fn step(&self, label: &str) -> Box<dyn Activity + '_> {
        Box::new(Printer::step(self, label))
    }
    fn transfer(&self, label: &str, total: u64) -> Box<dyn Transfer + '_> {
        match self.byte_bar(label, total) {
            Some(bar) => Box::new(ByteBar(bar)),
            None => Box::new(Unseen),
        }
    }
}

impl Activity for Step<'_> {
    fn update(&self, text: &str) {
        self.set_message(text);
    }
}

/// An upload's byte bar; cleared when the upload ends.
struct ByteBar(ProgressBar);

impl Transfer for ByteBar {
    fn sent(&self, sent: u64) {
        self.0.set_position(sent);
    }
}

impl Drop for ByteBar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// `2026-05-01T10:00:03Z`: UTC, RFC 3339, second precision.
pub fn timestamp_now() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

pub fn format_timestamp(at: OffsetDateTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// Human-readable byte size: `18.4 KiB`, `3.1 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `1 object`, `3 objects`: a count with the noun that fits it.
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first 12 hex characters of a digest, keeping its algorithm prefix (`sha256:1a2b3c4d5e6f`).
pub fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.chars().take(12).collect(),
    }
}

static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();

/// Secrets shorter than this are not registered: replacing every occurrence of a two-letter
/// string would garble output without protecting anything meaningful.
const MIN_SECRET_LEN: usize = 4;

/// Register a value that must never be printed (a password, token or credential-helper secret).
pub fn register_secret(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let secrets = SECRETS.get_or_init(|| RwLock::new(Vec::new()));
    if let Ok(mut list) = secrets.write()
        && !list.iter().any(|s| s == secret)
    {
        list.push(secret.to_string());
        // Longest first, so that a secret containing another is replaced whole.
        list.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Replace every registered secret in `text` with `<redacted>`.
pub fn redact(text: &str) -> String {
    let Some(secrets) = SECRETS.get() else {
        return text.to_string();
    };
    let Ok(list) = secrets.read() else {
        return text.to_string();
    };
    let mut out = text.to_string();
    for secret in list.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "<redacted>");
        }
    }
    out
}

/// Set once the command's outcome is known: log lines from tasks still winding down (idle
/// connections closing) must not land after the final `error:` line.
static LOGS_CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stop writing `tracing` output (see [`LOGS_CLOSED`]).
pub fn close_logs() {
    LOGS_CLOSED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// A `tracing` writer that redacts registered secrets before anything reaches stderr.
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if LOGS_CLOSED.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(buf.len());
        }
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

/// Log timestamps in the same form as progress lines, so `-v` output keeps the line format.
pub struct LogTimer;

impl tracing_subscriber::fmt::time::FormatTime for LogTimer {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        w.write_str(&timestamp_now())
    }
}

/// Append a printed JSON document to the test suite's log (`KSAIL_TEST_JSON_LOG`), if it asks
/// for one, so that every document can be checked against its schema.
pub fn log_json_document(document: &str) {
    let Some(path) = std::env::var_os(crate::env_vars::test_only::JSON_LOG) else {
        return;
    };
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| writeln!(file, "{document}"));
    if let Err(error) = appended {
        tracing::debug!("cannot log the JSON document: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_seconds_utc() {
        let at = OffsetDateTime::from_unix_timestamp(1_777_629_603).unwrap();
        assert_eq!(format_timestamp(at), "2026-05-01T10:00:03Z");
    }

    #[test]
    fn byte_sizes_read_like_the_spec() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(18_842), "18.4 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 100_000), "3.1 MiB");
    }

    #[test]
    fn short_digests_keep_twelve_hex_characters() {
        assert_eq!(
            short_digest("sha256:1a2b3c4d5e6f7a8b9c0d"),
            "sha256:1a2b3c4d5e6f"
        );
    }

    #[test]
    fn registered_secrets_are_redacted_everywhere() {
        register_secret("s3cr3t-value");
        register_secret("pw"); // too short to register
        assert_eq!(
            redact("user ci:s3cr3t-value@ghcr.io pw"),
            "user ci:<redacted>@ghcr.io pw"
        );
    }
}
