//! The failure classes a command can end in, and the one error type that carries a user-facing
//! message across module boundaries to `main`, which is the only place that turns it into an exit
//! code and an `error:` line.
//!
//! Modules keep their own `thiserror` enums; they convert into [`Failure`] (via `From`) at the
//! point where the class (usage, operation failed, timed out) is known.

use std::fmt;

/// How a command failed. Each class maps to one exit code (cli.md#exit-codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// Operation failed: exit 1.
    Failed,
    /// Usage or configuration error: exit 2. Nothing was changed.
    Usage,
    /// A wait hit its deadline: exit 3.
    TimedOut,
    /// SIGINT or SIGTERM: exit 130.
    Interrupted,
}

impl FailureClass {
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Failed => 1,
            FailureClass::Usage => 2,
            FailureClass::TimedOut => 3,
            FailureClass::Interrupted => 130,
        }
    }

    /// The JSON `status` member for a failure of this class (cli.md#json-output---output-json).
    pub fn json_status(self) -> &'static str {
        match self {
            FailureClass::Failed | FailureClass::Interrupted => "failed",
            FailureClass::Usage => "invalid",
            FailureClass::TimedOut => "timedOut",
        }
    }
}

/// A user-facing failure: `message` is the text of the `error:` line without the prefix, in the
/// form `<what failed>: <why>; <what to do>`. It must already be free of secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        Failure {
            class,
            message: one_line(&message.into()),
        }
    }

    /// A usage or configuration error (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new(FailureClass::Usage, message)
    }

    /// An operation that failed (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Failure::new(FailureClass::Failed, message)
    }

    pub fn interrupted() -> Self {
        Failure::new(FailureClass::Interrupted, "interrupted")
    }
}

/// An error type whose every variant is a usage or configuration problem (exit 2): it becomes a
/// [`Failure`] of that class with its `Display` text as the message.
pub trait UsageError: fmt::Display {}

impl<E: UsageError> From<E> for Failure {
    fn from(error: E) -> Self {
        Failure::usage(error.to_string())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Replace every run of line breaks (and the whitespace around them) with one space, so that a
/// remote message can never split the `error:` line.
pub fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r']) {
        return text.to_string();
    }
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every error reachable from `root`, for classifying transport errors by type.
/// `io::Error::source()` skips the error it wraps (it returns the wrapped error's source), so
/// wrapped errors are reached through `get_ref()` as well.
pub fn error_chain<'a>(
    root: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    const MAX_NODES: usize = 64; // a cycle guard; real chains are a handful deep
    let mut nodes = Vec::new();
    let mut pending = vec![root];
    while let Some(error) = pending.pop() {
        if nodes.len() >= MAX_NODES {
            break;
        }
        nodes.push(error);
        if let Some(io_error) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io_error.get_ref()
        {
            pending.push(inner as &(dyn std::error::Error + 'static));
            continue;
        }
        if let Some(next) = error.source() {
            pending.push(next);
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_cli_table() {
        assert_eq!(FailureClass::Failed.exit_code(), 1);
        assert_eq!(FailureClass::Usage.exit_code(), 2);
        assert_eq!(FailureClass::TimedOut.exit_code(), 3);
        assert_eq!(FailureClass::Interrupted.exit_code(), 130);
    }

    #[test]
    fn embedded_newlines_become_spaces() {
        let failure = Failure::failed("push failed: registry said\nno\r\n  really; retry");
        assert_eq!(
            failure.message,
            "push failed: registry said no really; retry"
        );
    }
}
