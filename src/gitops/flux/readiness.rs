//! Flux completion and terminal-failure rules (reconcile.md "Completion", "Terminal failures").
//!
//! Every verdict is computed from one snapshot of the object (the latest watch event) plus what
//! the caller knows about the run: the token, the expected digest `D`, and the state of the
//! Kustomization's source. The guards make sure a failure recorded for an older generation,
//! request or revision keeps the object waiting instead of failing the run.

use super::objects::{Condition, FluxKind, FluxObject};
use crate::gitops::verdict::reason_and_message;
use crate::gitops::verdict::{
    Verdict, digests_equal, parse_revision_digest, short_revision, short_revision_marked,
};

/// `Ready=False` reasons that end the wait for the sync source (once it handled this request).
/// The names are source-controller's (`api/v1` `condition_types.go`, `ocirepository_types.go`)
/// and fluxcd/pkg's `apis/meta`.
pub const SOURCE_TERMINAL_REASONS: &[&str] = &[
    "OCIArtifactPullFailed",
    "AuthenticationFailed",
    "OCIArtifactLayerOperationFailed",
    super::resources::VERIFICATION_ERROR_REASON,
    "URLInvalid",
    "InsecureConnectionsDisallowed",
];

/// `Ready=False` reasons that end the wait for a Kustomization (when every guard holds).
/// `ArtifactFailed` is not one: kustomize-controller sets it while the source has no artifact
/// yet and requeues (`Source artifact not found, retrying in …`). `DependencyNotReady` is
/// requeued too.
pub const KUSTOMIZATION_TERMINAL_REASONS: &[&str] = &[
    "BuildFailed",
    "HealthCheckFailed",
    "PruneFailed",
    "ReconciliationFailed",
    "ValidationFailed",
];

/// Terminal reasons the controller itself retries at `spec.retryInterval`: an apply can fail
/// for a moment (a conflict, a webhook or CRD not served yet). The driver re-requests the object
/// before it believes them.
pub const RETRIED_REASONS: &[&str] = &["ReconciliationFailed"];

/// The reason reported (JSON `reason`, summary line) when the sync source serves another digest.
pub const DIGEST_MISMATCH_REASON: &str = "DigestMismatch";

const WAITING_FOR_HANDLING: &str = "waiting for the controller to handle the request";
const WAITING_FOR_READY: &str = "waiting for the controller to report readiness";
const WAITING_FOR_SYNC_SOURCE: &str = "waiting for the sync source to be ready";
const WAITING_FOR_ARTIFACT: &str = "waiting for the source to store an artifact";

/// The sync source's verdict. `DigestMismatch` is not final yet: the caller looks `D` up once
/// more, evaluates again with the new `D`, and if the digest still differs turns it into a
/// failure with [`digest_mismatch_failure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceVerdict {
    Complete {
        revision: Option<String>,
    },
    Waiting {
        status: String,
    },
    Failed {
        reason: String,
        message: String,
    },
    DigestMismatch {
        /// `status.artifact.revision` as served.
        served_revision: String,
        /// Its `sha256:<hex>`, or `None` when the revision carries no digest.
        served_digest: Option<String>,
    },
}

impl SourceVerdict {
    /// The verdict for every state but `DigestMismatch`, which still needs the re-lookup.
    pub fn into_verdict(self) -> Option<Verdict> {
        match self {
            SourceVerdict::Complete { revision } => Some(Verdict::Complete { revision }),
            SourceVerdict::Waiting { status } => Some(Verdict::Waiting { status }),
            SourceVerdict::Failed { reason, message } => Some(Verdict::Failed { reason, message }),
            SourceVerdict::DigestMismatch { .. } => None,
        }
    }
}

/// Evaluate the sync source against the token and, for an OCIRepository, the expected digest.
pub fn source_verdict(
    source: &FluxObject,
    token: &str,
    expected_digest: Option<&str>,
) -> SourceVerdict {
    judge_source(source, Some(token), expected_digest)
}

/// The same rules for a source nobody asked to reconcile (`cluster create` waiting for the first
/// artifact): the controller only has to have seen the current spec.
pub fn served_verdict(source: &FluxObject, expected_digest: Option<&str>) -> SourceVerdict {
    judge_source(source, None, expected_digest)
}

fn judge_source(
    source: &FluxObject,
    token: Option<&str>,
    expected_digest: Option<&str>,
) -> SourceVerdict {
    if let Some((reason, message)) = stalled(source) {
        return SourceVerdict::Failed { reason, message };
    }
    if !token.is_none_or(|token| source.handled_request(token)) {
        return source_waiting(WAITING_FOR_HANDLING);
    }
    let Some(ready) = source.condition("Ready") else {
        return source_waiting(not_ready_yet(source));
    };
    if !source.condition_current(ready) {
        return source_waiting(WAITING_FOR_HANDLING);
    }
    if !ready.is_true() {
        if is_terminal(ready, SOURCE_TERMINAL_REASONS) {
            return SourceVerdict::Failed {
                reason: ready.reason.clone(),
                message: ready.message.clone(),
            };
        }
        return source_waiting(&condition_status(ready));
    }
    if !source.generation_observed() {
        return source_waiting(WAITING_FOR_HANDLING);
    }
    if let Some(reconciling) = true_condition(source, "Reconciling") {
        return source_waiting(&condition_status(reconciling));
    }
    let revision = source.artifact_revision.clone();
    if source.key.kind == FluxKind::OciRepository
        && let Some(expected) = expected_digest
    {
        let Some(served) = revision else {
            return source_waiting(WAITING_FOR_ARTIFACT);
        };
        if !digests_equal(&served, expected) {
            return SourceVerdict::DigestMismatch {
                served_digest: parse_revision_digest(&served),
                served_revision: served,
            };
        }
        return SourceVerdict::Complete {
            revision: Some(served),
        };
    }
    SourceVerdict::Complete { revision }
}

/// The terminal failure for a digest that still differs after the re-lookup. `expected_ref` is
/// `sync.host_ref` (`oci://localhost:5050/k8s:dev`). Both digests are shown with 12 hex
/// characters followed by `…`, enough to tell them apart at a glance.
pub fn digest_mismatch_failure(
    served_revision: &str,
    expected_ref: &str,
    expected_digest: &str,
) -> Verdict {
    Verdict::Failed {
        reason: DIGEST_MISMATCH_REASON.to_string(),
        message: format!(
            "serves {}, but {expected_ref} is {}; the cluster follows a different artifact; run ksail cluster update",
            short_revision_marked(served_revision),
            short_revision_marked(expected_digest),
        ),
    }
}

/// What the caller knows about a Kustomization's `spec.sourceRef`, from the source's latest watch
/// event. Pass `None` as [`KustomizationContext::source`] when the source does not exist or is of
/// an unknown kind: the revision gate is then skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceState {
    /// `status.artifact.revision`; `None` (no artifact yet) skips the revision gate.
    pub revision: Option<String>,
    /// The source is the run's sync source.
    pub is_sync_source: bool,
    /// The sync source's own verdict is complete (only read when `is_sync_source`).
    pub sync_source_complete: bool,
}

impl SourceState {
    pub fn of(source: &FluxObject, is_sync_source: bool, sync_source_complete: bool) -> Self {
        SourceState {
            revision: source.artifact_revision.clone(),
            is_sync_source,
            sync_source_complete,
        }
    }

    fn blocks_completion(&self) -> bool {
        self.is_sync_source && !self.sync_source_complete
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustomizationContext<'a> {
    pub token: &'a str,
    /// Created after this attempt listed Kustomizations: the token rule does not apply.
    pub created_during_attempt: bool,
    pub source: Option<SourceState>,
}

/// Evaluate a tracked Kustomization (completion rules 1–4 and the terminal table with its guards).
pub fn kustomization_verdict(
    kustomization: &FluxObject,
    context: &KustomizationContext,
) -> Verdict {
    if let Some((reason, message)) = stalled(kustomization) {
        return Verdict::Failed { reason, message };
    }
    if !(context.created_during_attempt || kustomization.handled_request(context.token)) {
        return waiting(WAITING_FOR_HANDLING);
    }
    let gate = context
        .source
        .as_ref()
        .and_then(|source| source.revision.as_deref());
    let source_pending = context
        .source
        .as_ref()
        .is_some_and(SourceState::blocks_completion);
    let Some(ready) = kustomization.condition("Ready") else {
        return waiting(not_ready_yet(kustomization));
    };
    if !kustomization.condition_current(ready) {
        return waiting(WAITING_FOR_HANDLING);
    }
    if !ready.is_true() {
        if !is_terminal(ready, KUSTOMIZATION_TERMINAL_REASONS) {
            return waiting(&condition_status(ready));
        }
        // The failure may belong to an older revision, or to an artifact the sync source is
        // about to replace: then it says nothing about this run yet.
        let attempted = kustomization.last_attempted_revision.as_deref();
        if let Some(pending) = revision_pending(gate, attempted, source_pending) {
            return pending;
        }
        return Verdict::Failed {
            reason: ready.reason.clone(),
            message: ready.message.clone(),
        };
    }
    if !kustomization.generation_observed() {
        return waiting(WAITING_FOR_HANDLING);
    }
    if let Some(reconciling) = true_condition(kustomization, "Reconciling") {
        return waiting(&condition_status(reconciling));
    }
    let applied = kustomization.last_applied_revision.as_deref();
    if let Some(pending) = revision_pending(gate, applied, source_pending) {
        return pending;
    }
    Verdict::Complete {
        revision: kustomization.last_applied_revision.clone(),
    }
}

/// `Stalled=True` (any reason) is terminal for any object. It is only believed for the current
/// generation: a stall recorded for an older spec says nothing about the new one, and
/// reconcile.md requires that a failure for an older generation never fails the run.
fn stalled(object: &FluxObject) -> Option<(String, String)> {
    let condition = true_condition(object, "Stalled")?;
    if !object.condition_current(condition) {
        return None;
    }
    let reason = if condition.reason.is_empty() {
        "Stalled".to_string()
    } else {
        condition.reason.clone()
    };
    Some((reason, condition.message.clone()))
}

fn true_condition<'a>(object: &'a FluxObject, condition_type: &str) -> Option<&'a Condition> {
    object
        .condition(condition_type)
        .filter(|condition| condition.is_true())
}

fn is_terminal(ready: &Condition, reasons: &[&str]) -> bool {
    ready.status == "False" && reasons.contains(&ready.reason.as_str())
}

/// Waiting while `revision` (the one the Kustomization applied or attempted) is not the sync
/// source's `gate`, or while the sync source is about to serve another artifact.
fn revision_pending(
    gate: Option<&str>,
    revision: Option<&str>,
    source_pending: bool,
) -> Option<Verdict> {
    if let Some(gate) = gate
        && revision != Some(gate)
    {
        return Some(waiting(&revision_wait(gate)));
    }
    source_pending.then(|| waiting(WAITING_FOR_SYNC_SOURCE))
}

fn revision_wait(revision: &str) -> String {
    format!(
        "waiting for revision {} to be applied",
        short_revision(revision)
    )
}

/// No `Ready` condition: before the first reconcile of the current spec the controller has not
/// handled anything yet; after it, it has not said how it went.
fn not_ready_yet(object: &FluxObject) -> &'static str {
    if object.generation_observed() {
        WAITING_FOR_READY
    } else {
        WAITING_FOR_HANDLING
    }
}

fn waiting(status: &str) -> Verdict {
    Verdict::Waiting {
        status: status.to_string(),
    }
}

fn source_waiting(status: &str) -> SourceVerdict {
    SourceVerdict::Waiting {
        status: status.to_string(),
    }
}

/// A condition as waiting status; one without reason and message still says what it is.
fn condition_status(condition: &Condition) -> String {
    let text = reason_and_message(&condition.reason, &condition.message);
    if text.is_empty() {
        format!("{}={}", condition.condition_type, condition.status)
    } else {
        text
    }
}

#[cfg(test)]
#[path = "readiness_tests.rs"]
mod tests;
