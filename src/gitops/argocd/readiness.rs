//! Argo CD Application rules (reconcile.md "Argo CD": revision gating, "Completion", "Failures").
//!
//! Only an operation that belongs to this run can fail it: a `Failed` operation left over from an
//! earlier sync is history, and `ComparisonError`/`SyncError` conditions can be transient while
//! the repo-server warms up, so both only show as waiting status.
//!
//! A sync that fails is retried by the controller while its phase stays `Running`: an automated
//! sync of an Application without `spec.syncPolicy.retry` five times with 5 s to 80 s back-off
//! (argo-cd v3.6 `controller/appcontroller.go` `autoSync`: `RetryStrategy{Limit: 5}`), so its
//! phase turns `Failed` only after about 2.5 minutes. Such an operation fails the run once it has
//! failed twice (one retry, about 5 s). With a retry policy of its own the Application asked for
//! those retries, and the run waits for the controller's verdict.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::objects::{self, Application};
use crate::gitops::verdict::{
    Verdict, collapse_whitespace, digests_equal, reason_and_message, short_revision,
};

pub use super::resources::REFRESH_ANNOTATION;

/// Conditions shown as waiting status rather than failing the run.
const ERROR_CONDITIONS: &[&str] = &["ComparisonError", "SyncError"];

/// What the caller knows about one Application in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationContext<'a> {
    /// [`operation_fingerprint`] as read before the trigger (`None` when no operation ran).
    pub recorded_operation: Option<String>,
    /// `D`, when the registry lookup found it.
    pub expected_digest: Option<&'a str>,
    /// The result of [`is_gated`] for this Application.
    pub gated: bool,
}

/// An Application is revision-gated when `spec.source.repoURL` or any `spec.sources[].repoURL`
/// is the sync URL.
pub fn is_gated(application: &Application, sync_url: &str) -> bool {
    application.repo_urls().any(|url| urls_match(url, sync_url))
}

/// URL equality ignoring the case of scheme and host and a trailing `/`. The path keeps its
/// case: registries treat repository names as case-sensitive.
pub fn urls_match(left: &str, right: &str) -> bool {
    normalize_url(left) == normalize_url(right)
}

fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{}://", scheme.to_ascii_lowercase()), rest),
        None => (String::new(), url),
    };
    let (host, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    format!("{scheme}{}{path}", host.to_ascii_lowercase())
}

/// Completion rule 6: `status.sync.revision` is `D`, or for a multi-source Application
/// `status.sync.revisions` contains it.
pub fn expected_revision_matches(application: &Application, expected_digest: &str) -> bool {
    let sync = &application.status.sync;
    if application.is_multi_source() {
        return sync
            .revisions
            .iter()
            .flatten()
            .any(|revision| digests_equal(revision, expected_digest));
    }
    sync.revision
        .as_deref()
        .is_some_and(|revision| digests_equal(revision, expected_digest))
}

/// Evaluate one Application (completion rules 1–6 and the terminal rule).
pub fn application_verdict(application: &Application, context: &ApplicationContext) -> Verdict {
    let operation = OperationState::read(application);
    if let Some(operation) = &operation
        && operation.has_failed()
        && operation.belongs_to_run(context.recorded_operation.as_deref())
    {
        let message = if operation.message.is_empty() {
            format!("sync operation {}", operation.phase)
        } else {
            operation.message.clone()
        };
        return Verdict::Failed {
            reason: format!("OperationState/{}", operation.phase),
            message,
        };
    }
    if let Some(operation) = &operation
        && let Some(verdict) = retrying_verdict(application, operation, context)
    {
        return verdict;
    }
    if application.has_annotation(REFRESH_ANNOTATION) {
        return waiting("waiting for the controller to handle the refresh".into());
    }
    if application.operation.is_some() {
        // The controller keeps `.operation` until the operation completes.
        if let Some(operation) = &operation
            && operation.phase_is("Running")
            && operation.belongs_to_run(context.recorded_operation.as_deref())
        {
            return waiting(operation.waiting_status());
        }
        return waiting("waiting for the controller to start the sync operation".into());
    }
    if let Some(status) = error_condition(application) {
        return waiting(status);
    }
    // `<sync>/<health>` first: it is what users know from the Argo CD UI and what the timeout
    // message quotes; the operation phase only explains a Synced+Healthy app that is not done.
    let status = &application.status;
    let sync = status.sync.status.as_deref().unwrap_or("Unknown");
    let health = status.health.status.as_deref().unwrap_or("Unknown");
    if sync != "Synced" || health != "Healthy" {
        return waiting(format!("{sync}/{health}"));
    }
    if let Some(operation) = &operation
        && !operation.phase_is("Succeeded")
    {
        return waiting(operation.waiting_status());
    }
    if let Some(operation) = &operation
        && !operation.compared_after_finish(status.reconciled_at.as_deref())
    {
        return waiting("waiting for the controller to compare the synced state".into());
    }
    if context.gated
        && let Some(expected) = context.expected_digest
    {
        if !expected_revision_matches(application, expected) {
            return waiting(format!(
                "waiting for revision {} to be synced",
                short_revision(expected)
            ));
        }
        return Verdict::Complete {
            revision: Some(expected.to_string()),
        };
    }
    Verdict::Complete {
        revision: status.sync.revision.clone(),
    }
}

/// Failed attempts after which a retried sync without a retry policy fails the run.
const FAILED_ATTEMPTS_WITHOUT_POLICY: u64 = 2;

/// The verdict for an operation the controller is retrying after failed attempts (`Running`
/// with `retryCount` ≥ 1), or `None` for any other operation.
fn retrying_verdict(
    application: &Application,
    operation: &OperationState,
    context: &ApplicationContext,
) -> Option<Verdict> {
    if !operation.phase_is("Running") || operation.retry_count == 0 {
        return None;
    }
    let error = operation.error_message();
    let other_revision = context.gated
        && context.expected_digest.is_some_and(|expected| {
            operation
                .revision
                .as_deref()
                .is_some_and(|revision| !digests_equal(revision, expected))
        });
    if other_revision || !operation.belongs_to_run(context.recorded_operation.as_deref()) {
        return Some(waiting(format!(
            "waiting: Argo CD retries an earlier sync that fails ({error})"
        )));
    }
    // The controller counts a failed attempt when it schedules the next one (appcontroller.go
    // `processRequestedAppOperation`: `RetryCount++`), so retryCount is the failed attempts.
    let failed_attempts = operation.retry_count;
    let has_policy = application
        .sync_policy()
        .is_some_and(|policy| policy.retry.is_some());
    if !has_policy && failed_attempts >= FAILED_ATTEMPTS_WITHOUT_POLICY {
        return Some(Verdict::Failed {
            reason: "SyncFailed".into(),
            message: format!("{error} (failed {failed_attempts} attempts; Argo CD keeps retrying)"),
        });
    }
    Some(waiting(format!(
        "sync failed, Argo CD retries (attempt #{}): {error}",
        operation.retry_count
    )))
}

fn waiting(status: String) -> Verdict {
    Verdict::Waiting { status }
}

/// The first `ComparisonError` or `SyncError` condition as `Type: message`.
fn error_condition(application: &Application) -> Option<String> {
    application
        .status
        .conditions
        .iter()
        .flatten()
        .find_map(|condition| {
            let condition_type = condition.condition_type.as_deref()?;
            ERROR_CONDITIONS.contains(&condition_type).then(|| {
                let message = condition.message.as_deref().unwrap_or_default();
                reason_and_message(condition_type, message)
            })
        })
}

/// What the rules read of `status.operationState`.
struct OperationState {
    phase: String,
    finished_at: Option<String>,
    message: String,
    fingerprint: String,
    /// Failed attempts the controller has retried so far (`retryCount`).
    retry_count: u64,
    /// The revision the operation syncs (`operation.sync.revision`).
    revision: Option<String>,
}

/// What tells one operation of an Application from the next: its start and finish time, phase
/// and synced revision. The start time alone does not: Argo CD writes it to the second, and an
/// automated sync that the refresh sets off often starts within the second of the operation
/// before it (seen on the real tier: an auto-sync that failed was taken for the earlier,
/// successful one, and the run waited out its timeout).
pub fn operation_fingerprint(application: &Application) -> Option<String> {
    let state = application.status.operation_state.as_ref()?;
    let synced = state
        .sync_result
        .as_ref()
        .and_then(|result| result.revision.as_deref());
    Some(
        [
            state.started_at.as_deref(),
            state.finished_at.as_deref(),
            state.phase.as_deref(),
            synced,
        ]
        .map(Option::unwrap_or_default)
        .join("|"),
    )
}

impl OperationState {
    fn read(application: &Application) -> Option<OperationState> {
        let state: &objects::OperationState = application.status.operation_state.as_ref()?;
        Some(OperationState {
            phase: state.phase.clone().unwrap_or_default(),
            finished_at: state.finished_at.clone().filter(|at| !at.is_empty()),
            message: state.message.clone().unwrap_or_default(),
            fingerprint: operation_fingerprint(application).unwrap_or_default(),
            retry_count: state.retry_count.unwrap_or_default().max(0).unsigned_abs(),
            revision: state
                .operation
                .as_ref()
                .and_then(|operation| operation.sync.as_ref())
                .and_then(|sync| sync.revision.clone()),
        })
    }

    /// The message without the controller's "Retrying attempt #N at <time>." suffix.
    fn error_message(&self) -> String {
        let message = match self.message.find(". Retrying attempt #") {
            Some(end) => &self.message[..end],
            None => self.message.as_str(),
        };
        collapse_whitespace(message)
    }

    fn phase_is(&self, phase: &str) -> bool {
        self.phase == phase
    }

    fn has_failed(&self) -> bool {
        self.phase_is("Failed") || self.phase_is("Error")
    }

    /// The operation is not the one ksail recorded before the trigger, or nothing was recorded.
    fn belongs_to_run(&self, recorded: Option<&str>) -> bool {
        match recorded {
            None => true,
            Some(recorded) => self.fingerprint != recorded,
        }
    }

    /// Completion rule 3 for a `Succeeded` operation: the controller compared the live state
    /// after the operation finished.
    fn compared_after_finish(&self, reconciled_at: Option<&str>) -> bool {
        let (Some(finished), Some(reconciled)) = (self.finished_at.as_deref(), reconciled_at)
        else {
            return false;
        };
        match (parse_time(reconciled), parse_time(finished)) {
            (Some(reconciled), Some(finished)) => reconciled >= finished,
            // Both are RFC 3339 UTC in practice; the text order is then the time order.
            _ => reconciled >= finished,
        }
    }

    fn waiting_status(&self) -> String {
        let phase = if self.phase.is_empty() {
            "Unknown"
        } else {
            &self.phase
        };
        let text = reason_and_message(&format!("OperationState/{phase}"), &self.message);
        if self.has_failed() {
            // Only a stale failure reaches this point; the run waits for its own operation.
            format!("{text} (earlier operation)")
        } else {
            text
        }
    }
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
