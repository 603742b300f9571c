//! What one reconcile attempt reports: per-object results for the progress lines, the JSON
//! `objects` member and the final summary, and the typed attempt failure that the retry policy
//! classifies (reconcile.md#classification).

use std::time::Duration;

use serde_json::{Value, json};

use super::expected::ExpectedError;
use crate::error::{Failure, FailureClass};

use crate::progress::{Activity, Reporter};
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

/// How a tracked object finished within an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub state: ObjectState,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub revision: Option<String>,
    /// Time from the start of the attempt.
    pub after: Duration,
}

/// A GitOps object as the reports name it, whichever engine it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    /// `Kustomization`, `HelmRelease`, `OCIRepository`, `Application`, …
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectName {
    pub fn new(kind: &str, namespace: &str, name: &str) -> Self {
        ObjectName {
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }
}

/// `<namespace>/<name>`, as every progress line and report row shows it.
impl std::fmt::Display for ObjectName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One entry of the JSON `objects` member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReport {
    pub object: ObjectName,
    pub state: ObjectState,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub revision: Option<String>,
    pub duration: Option<Duration>,
}

impl ObjectReport {
    /// The entry of a tracked object: its final state, or `timedOut` with its last waiting status.
    pub fn tracked(
        object: ObjectName,
        finished: Option<&Finished>,
        last_status: Option<&String>,
    ) -> ObjectReport {
        ObjectReport {
            object,
            state: finished.map_or(ObjectState::TimedOut, |f| f.state),
            reason: finished.and_then(|f| f.reason.clone()),
            // A finished object says what it finished with; only one still waiting (timed out)
            // shows what it was waiting for — a ready one never says "waiting".
            message: match finished {
                Some(finished) => finished.message.clone(),
                None => last_status.cloned(),
            },
            revision: finished.and_then(|f| f.revision.clone()),
            duration: finished.map(|f| f.after),
        }
    }

    /// The entry of an object ksail left alone (excluded, suspended, manual), with why if it says.
    pub fn untracked(
        object: ObjectName,
        state: ObjectState,
        message: Option<&str>,
    ) -> ObjectReport {
        ObjectReport {
            object,
            state,
            reason: None,
            message: message.map(str::to_string),
            revision: None,
            duration: None,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.object.kind,
            "namespace": self.object.namespace,
            "name": self.object.name,
            "state": self.state.as_str(),
            "reason": self.reason,
            "message": self.message,
            "revision": self.revision,
            "durationMs": self.duration.map(|d| d.as_millis() as u64),
        })
    }
}

/// One spinner per tracked object on a terminal (cli.md#progress), showing its current waiting
/// status; it disappears when the object finishes, and the final line (printed by the caller
/// through the reporter) takes its place. Does nothing when spinners are not drawn.
pub struct ObjectSpinners<'p> {
    reporter: &'p dyn Reporter,
    steps: std::collections::BTreeMap<String, (Box<dyn Activity + 'p>, Option<String>)>,
}

impl<'p> ObjectSpinners<'p> {
    pub fn new(reporter: &'p dyn Reporter) -> Self {
        ObjectSpinners {
            reporter,
            steps: Default::default(),
        }
    }

    /// Bring the spinners in line with the objects: `(name, waiting status, finished)`.
    pub fn sync<'a>(&mut self, objects: impl Iterator<Item = (String, Option<&'a str>, bool)>) {
        if !self.reporter.live() {
            return;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (name, status, finished) in objects {
            if finished {
                // Dropping the step clears its spinner line.
                self.steps.remove(&name);
                continue;
            }
            seen.insert(name.clone());
            let text = format!("{name}: {}", status.unwrap_or("waiting"));
            match self.steps.get_mut(&name) {
                Some((step, shown)) if shown.as_deref() != status => {
                    step.update(&text);
                    *shown = status.map(str::to_string);
                }
                Some(_) => {}
                None => {
                    let step = self.reporter.step(&text);
                    self.steps.insert(name, (step, status.map(str::to_string)));
                }
            }
        }
        self.steps.retain(|name, _| seen.contains(name));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Recorder;

    fn objects<'a>(
        items: &'a [(&'a str, Option<&'a str>, bool)],
    ) -> impl Iterator<Item = (String, Option<&'a str>, bool)> {
        items
            .iter()
            .map(|(name, status, done)| (name.to_string(), *status, *done))
    }

    #[test]
    fn a_terminal_gets_one_spinner_per_unfinished_object() {
        let reporter = Recorder::live();
        let mut spinners = ObjectSpinners::new(&reporter);
        spinners.sync(objects(&[
            ("kustomization apps/a", None, false),
            ("kustomization apps/b", Some("DependencyNotReady: x"), false),
        ]));
        assert_eq!(spinners.steps.len(), 2);
        assert_eq!(
            spinners.steps["kustomization apps/b"].1.as_deref(),
            Some("DependencyNotReady: x")
        );
        spinners.sync(objects(&[
            ("kustomization apps/a", None, true),
            ("kustomization apps/b", Some("waiting for revision"), false),
        ]));
        assert_eq!(
            spinners.steps.len(),
            1,
            "finished objects lose their spinner"
        );
        assert_eq!(
            spinners.steps["kustomization apps/b"].1.as_deref(),
            Some("waiting for revision")
        );
        spinners.sync(objects(&[]));
        assert!(
            spinners.steps.is_empty(),
            "dropped objects lose their spinner"
        );
    }

    #[test]
    fn without_a_terminal_nothing_is_drawn() {
        let reporter = Recorder::default();
        let mut spinners = ObjectSpinners::new(&reporter);
        spinners.sync(objects(&[("kustomization apps/a", None, false)]));
        assert!(spinners.steps.is_empty());
    }
}
