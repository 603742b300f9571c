//! What one attempt of either engine's driver shares: the progress of a tracked object and how a
//! verdict settles it (with its progress line), the failure and timeout a finished attempt
//! reports, the watch tasks that end with it, and its deadline.

use std::time::{Duration, Instant};

use super::report::{AttemptError, Finished, ObjectState, RootFailure};
use super::verdict::{Verdict, collapse_whitespace, short_revision, timeout_message};
use super::watch::Update;
use crate::k8s::K8sError;
use crate::progress::Reporter;

/// One tracked object's progress within an attempt.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// The last waiting status shown (for `-v` lines and the timeout message).
    pub last_status: Option<String>,
    pub done: Option<Finished>,
}

impl Progress {
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// Record a verdict for the object `label` (`kustomization apps/web`): a final line for a
    /// complete (`<label>: <ready>, <revision> (1.2s)`) or failed object, a `-v` line when the
    /// waiting status changes.
    pub fn settle(
        &mut self,
        reporter: &dyn Reporter,
        label: &str,
        ready: &str,
        verdict: Verdict,
        after: Duration,
    ) {
        match verdict {
            Verdict::Complete { revision } => {
                reporter.info(&ready_line(label, ready, revision.as_deref(), after));
                self.done = Some(Finished {
                    state: ObjectState::Ready,
                    reason: None,
                    message: None,
                    revision,
                    after,
                });
            }
            Verdict::Failed { reason, message } => {
                let message = collapse_whitespace(&message);
                reporter.info(&failed_line(label, &reason, &message, after));
                self.done = Some(Finished {
                    state: ObjectState::Failed,
                    reason: Some(reason),
                    message: Some(message),
                    revision: None,
                    after,
                });
            }
            Verdict::Waiting { status } => {
                if self.last_status.as_deref() != Some(status.as_str()) {
                    reporter.verbose(&format!("{label}: waiting: {status}"));
                    self.last_status = Some(status);
                }
            }
        }
    }

    /// The status the timeout message quotes: the last one seen, else `fallback`.
    pub fn status_or(&self, fallback: &str) -> String {
        self.last_status
            .clone()
            .unwrap_or_else(|| fallback.to_string())
    }
}

/// `<label>: <ready>, <short revision> (1.2s)`.
pub fn ready_line(label: &str, ready: &str, revision: Option<&str>, after: Duration) -> String {
    let shown = revision
        .map(short_revision)
        .unwrap_or_else(|| "no revision".to_string());
    format!("{label}: {ready}, {shown} ({})", seconds(after))
}

/// `<label>: failed: <reason>: <message> (4.2s)`.
pub fn failed_line(label: &str, reason: &str, message: &str, after: Duration) -> String {
    format!("{label}: failed: {reason}: {message} ({})", seconds(after))
}

/// The attempt's failure from its tracked objects (`namespace/name`, progress): the roots are the
/// objects that failed themselves, blocked ones are counted; `None` when nothing failed.
pub fn failure<'a>(
    objects: impl IntoIterator<Item = (String, &'a Progress)>,
) -> Option<AttemptError> {
    let mut roots = Vec::new();
    let mut blocked = 0;
    for (name, progress) in objects {
        match progress.done.as_ref() {
            Some(done) if done.state == ObjectState::Failed => roots.push(RootFailure {
                name,
                reason: done.reason.clone().unwrap_or_default(),
                message: done.message.clone().unwrap_or_default(),
            }),
            Some(done) if done.state == ObjectState::Blocked => blocked += 1,
            _ => {}
        }
    }
    (!roots.is_empty() || blocked > 0).then_some(AttemptError::Failed { roots, blocked })
}

/// An object the deadline found unfinished: its label and status for the message, its
/// `namespace/name` for the summary line.
pub struct Unfinished {
    pub label: String,
    pub status: String,
    pub name: String,
}

/// The deadline passed with `unfinished` objects out of `total`.
pub fn timed_out(timeout: Duration, unfinished: Vec<Unfinished>, total: usize) -> AttemptError {
    let named: Vec<(String, String)> = unfinished
        .iter()
        .map(|object| (object.label.clone(), object.status.clone()))
        .collect();
    AttemptError::TimedOut {
        message: timeout_message(timeout, &named, total),
        unfinished: unfinished.into_iter().map(|object| object.name).collect(),
        total,
    }
}

/// A Kubernetes API error as an attempt error, keeping what the retry policy and the error line
/// need.
pub fn kube_error(error: K8sError) -> AttemptError {
    AttemptError::Kube {
        retryable: error.is_retryable(),
        retry_after: match error.kind() {
            crate::k8s::ErrorKind::Status { retry_after, .. } => retry_after,
            _ => None,
        },
        unreachable: error.is_unreachable(),
        reason: error.reason(),
    }
}

/// How long the API server may stay unreachable during the wait before the attempt fails (and
/// the shared retry policy decides whether another attempt starts).
pub const UNREACHABLE_LIMIT: Duration = Duration::from_secs(10);

/// Whether the API server answers the watches' relists during the wait. A watch whose server
/// went away relists every second on its own; without this the attempt would wait out its
/// whole `--timeout` in silence and then blame the controller.
#[derive(Debug, Default)]
pub struct Reachability {
    /// When the current run of failed relists began (the first is warned about at once).
    since: Option<Instant>,
}

impl Reachability {
    /// Look at one watch update: `Ok(Some(update))` to act on, `Ok(None)` for a failed relist
    /// the attempt still tolerates, `Err` when it must end. A refusal (401, 403, TLS) ends it at
    /// once; an unreachable server ends it after [`UNREACHABLE_LIMIT`]; a 404 (a kind not
    /// served) is the caller's business.
    pub fn observe(
        &mut self,
        kind: &str,
        update: Update,
        reporter: &dyn Reporter,
    ) -> Result<Option<Update>, AttemptError> {
        let error = match update {
            Update::ListFailed(error) if !error.is_not_found() => error,
            other => {
                if !matches!(other, Update::ListFailed(_)) && self.since.take().is_some() {
                    reporter.info("reconcile: the API server answers again");
                }
                return Ok(Some(other));
            }
        };
        if !error.is_retryable() {
            return Err(kube_error(error));
        }
        let since = *self.since.get_or_insert_with(|| {
            reporter.warn(&format!(
                "the API server did not answer a relist of {kind}: {}; waiting up to {}s for it",
                error.reason(),
                UNREACHABLE_LIMIT.as_secs()
            ));
            Instant::now()
        });
        if since.elapsed() >= UNREACHABLE_LIMIT {
            return Err(kube_error(error));
        }
        Ok(None)
    }
}

/// The attempt's one deadline: `timeout` after the attempt began. `reconcile` sets it; every wait
/// of the attempt (discovery, the registry lookup, HelmRelease recovery, the trigger, the watch
/// loop of either driver) ends at it, and the timeout message quotes `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: tokio::time::Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Self {
        Deadline {
            at: tokio::time::Instant::now() + timeout,
            timeout,
        }
    }

    /// The `--timeout` this deadline stands for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Completes when the deadline passes.
    pub async fn passed(&self) {
        tokio::time::sleep_until(self.at).await;
    }

    /// The output of `future`, or `None` when the deadline passes first.
    pub async fn before<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        tokio::time::timeout_at(self.at, future).await.ok()
    }

    /// Run `future` unless the deadline passes first, which is a timeout naming no object (none
    /// is tracked yet when the steps it bounds run).
    pub async fn bound<T>(&self, future: impl Future<Output = T>) -> Result<T, AttemptError> {
        tokio::time::timeout_at(self.at, future)
            .await
            .map_err(|_| AttemptError::TimedOut {
                message: timeout_message(self.timeout, &[], 0),
                unfinished: Vec::new(),
                total: 0,
            })
    }

    /// Cancel `token` when the deadline passes; the task ends with the returned guard.
    pub fn cancels(&self, token: tokio_util::sync::CancellationToken) -> Watches {
        let deadline = *self;
        Watches(vec![tokio::spawn(async move {
            deadline.passed().await;
            token.cancel();
        })])
    }
}

/// `1.2s`: the duration shown in final progress lines.
pub fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

/// The attempt's watch tasks, aborted when the attempt ends, however it ends.
pub struct Watches(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for Watches {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(1234)), "1.2s");
    }

    #[test]
    fn failures_name_the_roots_and_count_the_blocked() {
        let finished = |state| Progress {
            last_status: None,
            done: Some(Finished {
                state,
                reason: Some("HealthCheckFailed".into()),
                message: Some("timeout".into()),
                revision: None,
                after: Duration::ZERO,
            }),
        };
        let failed = finished(ObjectState::Failed);
        let blocked = finished(ObjectState::Blocked);
        let waiting = Progress::default();
        assert!(failure([("a/x".to_string(), &waiting)]).is_none());
        match failure([
            ("a/x".to_string(), &failed),
            ("a/y".to_string(), &blocked),
            ("a/z".to_string(), &waiting),
        ]) {
            Some(AttemptError::Failed { roots, blocked }) => {
                assert_eq!(roots.len(), 1);
                assert_eq!(roots[0].name, "a/x");
                assert_eq!(roots[0].reason, "HealthCheckFailed");
                assert_eq!(blocked, 1);
            }
            other => panic!("{other:?}"),
        }
    }
}
