//! What one reconcile attempt reports: per-object results for the progress lines, the JSON
//! `objects` member and the final summary, and the typed attempt failure that the retry policy
//! classifies (reconcile.md#classification).

use std::time::Duration;

use serde_json::{Value, json};

use super::expected::ExpectedError;
use crate::error::{Failure, FailureClass};
use crate::retry::Retryable;

/// The final state of one object (reconcile.md#json `objects[].state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectState {
    Ready,
    Failed,
    Blocked,
    TimedOut,
    Excluded,
    Suspended,
}

impl ObjectState {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectState::Ready => "ready",
            ObjectState::Failed => "failed",
            ObjectState::Blocked => "blocked",
            ObjectState::TimedOut => "timedOut",
            ObjectState::Excluded => "excluded",
            ObjectState::Suspended => "suspended",
        }
    }
}

/// One entry of the JSON `objects` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    /// `Kustomization`, `OCIRepository`, `Application`, …
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub state: ObjectState,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub revision: Option<String>,
    pub duration: Option<Duration>,
}

impl ObjectReport {
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state.as_str(),
            "reason": self.reason,
            "message": self.message,
            "revision": self.revision,
            "durationMs": self.duration.map(|d| d.as_millis() as u64),
        })
    }
}

/// A root failure: an object that failed terminally, with the dependents it blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootFailure {
    /// `ns/name`.
    pub name: String,
    pub reason: String,
    pub message: String,
}

/// Why an attempt did not succeed.
#[derive(Debug)]
pub enum AttemptError {
    /// A Kubernetes API or transport failure (retryable when transient).
    Kube {
        retryable: bool,
        retry_after: Option<Duration>,
        reason: String,
        /// `true` when the API server could not be reached at all.
        unreachable: bool,
    },
    /// The registry lookup of the expected revision failed.
    Expected(ExpectedError),
    /// Engine selection: not installed (exit 1) or both installed (exit 2). Not retryable.
    Engine(Failure),
    /// Objects failed terminally (and possibly blocked others). Not retryable.
    Failed {
        roots: Vec<RootFailure>,
        blocked: usize,
    },
    /// The per-attempt deadline passed. `message` is the `timed out after …` text.
    TimedOut {
        message: String,
        /// `ns/name` of unfinished objects, for the summary line.
        unfinished: Vec<String>,
        total: usize,
    },
    /// SIGINT or SIGTERM.
    Interrupted,
}

impl Retryable for AttemptError {
    fn is_retryable(&self) -> bool {
        match self {
            AttemptError::Kube { retryable, .. } => *retryable,
            AttemptError::Expected(error) => error.is_retryable(),
            AttemptError::TimedOut { .. } => true,
            AttemptError::Engine(_) | AttemptError::Failed { .. } | AttemptError::Interrupted => {
                false
            }
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptError::Kube { retry_after, .. } => *retry_after,
            AttemptError::Expected(error) => error.retry_after(),
            _ => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            AttemptError::Kube { reason, .. } => reason.clone(),
            AttemptError::Expected(error) => error.to_string(),
            AttemptError::Engine(failure) => failure.message.clone(),
            AttemptError::Failed { roots, .. } => roots
                .iter()
                .map(|root| format!("{} ({})", root.name, root.reason))
                .collect::<Vec<_>>()
                .join(", "),
            AttemptError::TimedOut { message, .. } => message.clone(),
            AttemptError::Interrupted => "interrupted".to_string(),
        }
    }
}

impl AttemptError {
    /// The exit class of a run that ended with this error.
    pub fn class(&self) -> FailureClass {
        match self {
            AttemptError::Engine(failure) => failure.class,
            AttemptError::TimedOut { .. } => FailureClass::TimedOut,
            AttemptError::Interrupted => FailureClass::Interrupted,
            _ => FailureClass::Failed,
        }
    }

    /// Whether diagnostics are collected after this error (reconcile.md#when): exit 1 or 3 with
    /// a known engine, and not for an unreachable server (the probe would fail anyway).
    pub fn wants_diagnostics(&self) -> bool {
        !matches!(self, AttemptError::Engine(_) | AttemptError::Interrupted)
    }
}
