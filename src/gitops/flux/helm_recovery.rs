//! HelmRelease recovery (reconcile.md#helmrelease-recovery): once per Flux attempt, before
//! reconciliation is requested, every stuck HelmRelease is suspended, the helm-controller is
//! watched until it has seen the suspension, and the release is resumed, so that the controller
//! starts a fresh install or upgrade.
//!
//! This module owns the detection rules ([`detect`]), the batch reset, and the resume guard
//! ([`guard`]) that makes sure a release ksail suspended is resumed on every path out: success,
//! error, cancellation (signal or attempt deadline) and panic unwinding. Recovery never fails the
//! command; every problem becomes a warning line. It must not touch anything but
//! `spec.suspend` of stuck HelmReleases.

mod detect;
mod guard;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::resources::{
    FORCE_AT_ANNOTATION, REQUESTED_AT_ANNOTATION, RESET_AT_ANNOTATION,
    SUSPENDED_FOR_RESET_ANNOTATION,
};
use crate::env_vars::test_only;
use crate::error::Failure;
use crate::process::ProcessEnv;
use crate::progress::Reporter;
use crate::retry::test_knob;

pub use detect::stuck_reason;
use guard::{ResumeGuard, ResumeOutcome};

/// Bound on each non-watch request (reconcile.md#kubernetes-connection).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Suspend patches in flight at once.
const SUSPENDS_IN_FLIGHT: usize = 8;

/// How long recovery may wait for the controller, and how long resuming may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryBounds {
    /// Wait for the controller to handle the reset requests (10 s).
    pub reset_wait: Duration,
    /// Total wait for the controller to observe the suspensions (10 s).
    pub observe: Duration,
    /// Budget for all resume patches, independent of the attempt deadline (30 s).
    pub resume_budget: Duration,
}

impl Default for RecoveryBounds {
    fn default() -> Self {
        RecoveryBounds {
            reset_wait: Duration::from_secs(10),
            observe: Duration::from_secs(10),
            resume_budget: Duration::from_secs(30),
        }
    }
}

impl RecoveryBounds {
    /// The defaults, with the test-only overrides `KSAIL_TEST_SUSPEND_OBSERVE_MS` and
    /// `KSAIL_TEST_RESUME_BUDGET_MS` applied. An invalid value is a usage error naming the variable.
    pub fn from_env(env: &ProcessEnv) -> Result<RecoveryBounds, Failure> {
        let mut bounds = RecoveryBounds::default();
        if let Some(ms) = test_knob(env, test_only::SUSPEND_OBSERVE_MS, 0, 600_000)? {
            tracing::debug!(
                "helm recovery: {} = {ms} (test-only override)",
                test_only::SUSPEND_OBSERVE_MS
            );
            bounds.observe = Duration::from_millis(ms);
        }
        if let Some(ms) = test_knob(env, test_only::RESET_WAIT_MS, 0, 600_000)? {
            tracing::debug!(
                "helm recovery: {} = {ms} (test-only override)",
                test_only::RESET_WAIT_MS
            );
            bounds.reset_wait = Duration::from_millis(ms);
        }
        // A zero budget could never resume anything, so the smallest budget is 1 ms.
        if let Some(ms) = test_knob(env, test_only::RESUME_BUDGET_MS, 1, 600_000)? {
            tracing::debug!(
                "helm recovery: {} = {ms} (test-only override)",
                test_only::RESUME_BUDGET_MS
            );
            bounds.resume_budget = Duration::from_millis(ms);
        }
        Ok(bounds)
    }
}

/// What happened to one stuck release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetResult {
    /// helm-controller handled ksail's reset request (`status.lastHandledResetAt`): nothing was
    /// suspended.
    Reset,
    /// Reset the old way (suspend, observed, resume), for a controller that did not handle the
    /// reset request in time.
    Resumed,
    /// The server rejected the suspend patch; the release was left alone.
    SuspendFailed,
    /// The release may still be suspended; the user was told to run `flux resume`.
    ResumeFailed,
}

impl ResetResult {
    /// The `result` member of a JSON `helmReleaseResets` entry.
    pub fn json_name(self) -> &'static str {
        match self {
            ResetResult::Reset => "reset",
            ResetResult::Resumed => "resumed",
            ResetResult::SuspendFailed => "suspendFailed",
            ResetResult::ResumeFailed => "resumeFailed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmReleaseReset {
    pub namespace: String,
    pub name: String,
    /// The `Stalled` or `Ready` reason that made the release stuck.
    pub reason: String,
    pub result: ResetResult,
}

impl HelmReleaseReset {
    /// One entry of the JSON `helmReleaseResets` array.
    pub fn to_json(&self) -> Value {
        json!({
            "namespace": self.namespace,
            "name": self.name,
            "reason": self.reason,
            "result": self.result.json_name(),
        })
    }
}

/// The releases this attempt tried to reset, sorted by `namespace/name`. Releases that were
/// stuck but never suspended because recovery was cancelled first are not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub resets: Vec<HelmReleaseReset>,
}

impl RecoveryReport {
    /// Releases reset either way (reset request handled, or suspended and resumed).
    pub fn resumed(&self) -> usize {
        self.resets
            .iter()
            .filter(|r| matches!(r.result, ResetResult::Reset | ResetResult::Resumed))
            .count()
    }

    /// Releases that could not be reset (suspend or resume failed).
    pub fn failed(&self) -> usize {
        self.resets.len() - self.resumed()
    }

    /// The JSON `helmReleaseResets` array.
    #[cfg(test)]
    pub fn to_json(&self) -> Value {
        Value::Array(self.resets.iter().map(HelmReleaseReset::to_json).collect())
    }

    /// `reset 2 stuck HelmReleases` or `reset 2 stuck HelmReleases, 1 could not be reset`.
    pub fn summary(&self) -> String {
        let resumed = self.resumed();
        let noun = if resumed == 1 {
            "HelmRelease"
        } else {
            "HelmReleases"
        };
        match self.failed() {
            0 => format!("reset {resumed} stuck {noun}"),
            failed => format!("reset {resumed} stuck {noun}, {failed} could not be reset"),
        }
    }
}

/// A HelmRelease's namespace and name. Ordered by the string `namespace/name`, as the spec sorts
/// the batch (which differs from ordering the pair when a namespace contains `-` or `.`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReleaseKey {
    pub namespace: String,
    pub name: String,
}

impl ReleaseKey {
    fn of(object: &DynamicObject) -> ReleaseKey {
        ReleaseKey {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

impl Ord for ReleaseKey {
    fn cmp(&self, other: &Self) -> Ordering {
        let joined = |k: &ReleaseKey| {
            k.namespace
                .bytes()
                .chain(std::iter::once(b'/'))
                .chain(k.name.bytes())
                .collect::<Vec<u8>>()
        };
        joined(self).cmp(&joined(other))
    }
}

impl PartialOrd for ReleaseKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// How a request to the API server failed, classified by type (never by message text).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestFailure {
    /// The object no longer exists.
    #[error("{0}")]
    NotFound(String),
    /// A definitive `4xx` answer: the request was not applied and retrying will not help.
    #[error("{0}")]
    Rejected(String),
    /// A `5xx`, `408`, `429` or transport error: the outcome is unknown and a retry may work.
    #[error("{0}")]
    Transient(String),
    #[error("no answer within {}", crate::duration::format_go(*.0))]
    TimedOut(Duration),
}

impl RequestFailure {
    fn from_kube(error: &kube::Error) -> RequestFailure {
        match error {
            kube::Error::Api(status) => {
                let reason = if status.message.is_empty() {
                    format!("{} {}", status.code, status.reason)
                } else {
                    format!("{} {}: {}", status.code, status.reason, status.message)
                };
                match status.code {
                    404 => RequestFailure::NotFound(reason),
                    408 | 429 => RequestFailure::Transient(reason),
                    400..=499 => RequestFailure::Rejected(reason),
                    _ => RequestFailure::Transient(reason),
                }
            }
            other => RequestFailure::Transient(chain(other)),
        }
    }
}

/// An error and its sources as one line, skipping sources whose text is already included.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// Run a request under the per-request timeout and classify its failure.
async fn bounded<T>(
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, RequestFailure> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(RequestFailure::from_kube(&error)),
        Err(_) => Err(RequestFailure::TimedOut(REQUEST_TIMEOUT)),
    }
}

/// The suspend (with ksail's mark) or the resume (removing it) of one release.
fn suspend_patch(suspend: bool) -> Patch<Value> {
    let mark = if suspend { json!("true") } else { Value::Null };
    Patch::Merge(json!({
        "metadata": {"annotations": {SUSPENDED_FOR_RESET_ANNOTATION: mark}},
        "spec": {"suspend": suspend},
    }))
}

/// Releases that carry ksail's mark and are still suspended: an earlier run was stopped between
/// its suspend and its resume.
fn left_suspended(listed: &[DynamicObject]) -> Vec<ReleaseKey> {
    let mut keys: Vec<ReleaseKey> = listed
        .iter()
        .filter(|object| {
            object
                .data
                .pointer("/spec/suspend")
                .and_then(Value::as_bool)
                == Some(true)
                && object
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(SUSPENDED_FOR_RESET_ANNOTATION))
        })
        .map(ReleaseKey::of)
        .collect();
    keys.sort();
    keys
}

/// Resume what an earlier run left suspended, and say so. A release the user suspended has no
/// mark and is never touched.
async fn resume_left_suspended(
    client: &kube::Client,
    resource: &ApiResource,
    listed: &[DynamicObject],
    out: &dyn Reporter,
) {
    for key in left_suspended(listed) {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &key.namespace, resource);
        match bounded(api.patch(&key.name, &PatchParams::default(), &suspend_patch(false))).await {
            Ok(_) => out.warn(&format!(
                "helmrelease {key}: resumed; an earlier ksail run was stopped while it held it suspended for a reset"
            )),
            Err(failure) => out.warn(&format!(
                "helmrelease {key}: an earlier ksail run left it suspended and it could not be resumed ({failure}); run: flux resume helmrelease {} -n {}",
                key.name, key.namespace
            )),
        }
    }
}

/// Reset every stuck HelmRelease once (reconcile.md#reset). `helm_release` is `None` when the
/// `helm.toolkit.fluxcd.io/v2` API is not served; recovery is then skipped silently. When `cancel`
/// fires (signal or attempt deadline), no further suspend is sent, everything already suspended
/// is resumed within the resume budget, and the report is returned.
pub async fn recover(
    client: &kube::Client,
    helm_release: Option<&ApiResource>,
    out: &dyn Reporter,
    bounds: RecoveryBounds,
    token: &str,
    cancel: &CancellationToken,
) -> RecoveryReport {
    let Some(resource) = helm_release else {
        tracing::debug!("helm recovery: helm.toolkit.fluxcd.io/v2 is not served; skipped");
        return RecoveryReport::default();
    };
    if cancel.is_cancelled() {
        return RecoveryReport::default();
    }
    let all: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let listed = match bounded(all.list(&ListParams::default())).await {
        Ok(list) => list.items,
        Err(failure) => {
            out.warn(&format!(
                "could not check for stuck HelmReleases: {failure}"
            ));
            return RecoveryReport::default();
        }
    };
    resume_left_suspended(client, resource, &listed, out).await;
    let stuck = find_stuck(&listed);
    if cancel.is_cancelled() {
        return RecoveryReport::default();
    }
    if stuck.is_empty() {
        tracing::debug!("helm recovery: no stuck HelmReleases");
        return RecoveryReport::default();
    }
    for (key, reason) in &stuck {
        out.info(&format!("helmrelease {key}: stuck ({reason}), resetting"));
    }

    // helm-controller's own reset request first: nothing is suspended, so nothing can be left
    // suspended. Only what it does not handle in time is reset the old way.
    let handled = request_resets(client, resource, &stuck, token, bounds.reset_wait, cancel).await;
    let (done, stuck): (Vec<_>, Vec<_>) = stuck
        .into_iter()
        .partition(|(key, _)| handled.contains(key));
    let mut report = RecoveryReport {
        resets: done
            .into_iter()
            .map(|(key, reason)| HelmReleaseReset {
                namespace: key.namespace,
                name: key.name,
                reason,
                result: ResetResult::Reset,
            })
            .collect(),
    };
    if stuck.is_empty() || cancel.is_cancelled() {
        if !report.resets.is_empty() {
            out.info(&report.summary());
        }
        return report;
    }
    for (key, _) in &stuck {
        out.info(&format!(
            "helmrelease {key}: the controller did not handle the reset request; suspending and resuming it"
        ));
    }

    let guard = ResumeGuard::new(client.clone(), resource.clone(), bounds.resume_budget, out);
    let suspends = suspend_all(&guard, &stuck, cancel).await;
    let pending: BTreeMap<ReleaseKey, i64> = suspends
        .iter()
        .filter_map(|(key, outcome)| match outcome {
            SuspendOutcome::Suspended {
                generation: Some(g),
            } => Some((key.clone(), *g)),
            _ => None,
        })
        .collect();
    observe(client, resource, pending, bounds.observe, cancel).await;
    let resumes = guard.resume_all().await;

    report
        .resets
        .extend(build_report(stuck, &suspends, &resumes).resets);
    report.resets.sort_by(|a, b| {
        let key = |r: &HelmReleaseReset| ReleaseKey {
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        };
        key(a).cmp(&key(b))
    });
    if !report.resets.is_empty() {
        out.info(&report.summary());
    }
    report
}

/// The merge patch of a reset request (helm-controller `api/v2/annotations.go`): `resetAt`
/// resets the failure counters when it equals `requestedAt`, and `forceAt` makes the controller
/// release again even when it finds the release in sync.
fn reset_patch(token: &str) -> Patch<Value> {
    Patch::Merge(json!({"metadata": {"annotations": {
        REQUESTED_AT_ANNOTATION: token,
        RESET_AT_ANNOTATION: token,
        FORCE_AT_ANNOTATION: token,
    }}}))
}

/// Ask helm-controller to reset each stuck release, and wait (by watching, at most `bound`) for
/// `status.lastHandledResetAt` to show it was handled. Returns the releases that were.
async fn request_resets(
    client: &kube::Client,
    resource: &ApiResource,
    stuck: &[(ReleaseKey, String)],
    token: &str,
    bound: Duration,
    cancel: &CancellationToken,
) -> BTreeSet<ReleaseKey> {
    let mut sent = BTreeSet::new();
    for (key, _) in stuck {
        if cancel.is_cancelled() {
            break;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &key.namespace, resource);
        match bounded(api.patch(&key.name, &PatchParams::default(), &reset_patch(token))).await {
            Ok(_) => {
                sent.insert(key.clone());
            }
            Err(failure) => {
                tracing::debug!("helm recovery: reset request for {key} failed: {failure}");
            }
        }
    }
    let mut handled = BTreeSet::new();
    let wait = watch_until(client, resource, &sent, &mut handled, |_, object| {
        object
            .data
            .pointer("/status/lastHandledResetAt")
            .and_then(Value::as_str)
            == Some(token)
    });
    tokio::select! {
        _ = tokio::time::timeout(bound, wait) => {}
        () = cancel.cancelled() => {}
    }
    handled
}

/// One entry per release a suspend was sent for, in batch order. Pure, so that the mapping from
/// suspend and resume outcomes to results is in one place.
fn build_report(
    stuck: Vec<(ReleaseKey, String)>,
    suspends: &BTreeMap<ReleaseKey, SuspendOutcome>,
    resumes: &BTreeMap<ReleaseKey, ResumeOutcome>,
) -> RecoveryReport {
    let resets = stuck
        .into_iter()
        .filter_map(|(key, reason)| {
            let result = match suspends.get(&key)? {
                SuspendOutcome::NotSent => return None,
                SuspendOutcome::Rejected => ResetResult::SuspendFailed,
                SuspendOutcome::Suspended { .. } | SuspendOutcome::Unknown => {
                    match resumes.get(&key) {
                        Some(ResumeOutcome::Resumed | ResumeOutcome::Gone) => ResetResult::Resumed,
                        Some(ResumeOutcome::Failed(_)) | None => ResetResult::ResumeFailed,
                    }
                }
            };
            Some(HelmReleaseReset {
                namespace: key.namespace,
                name: key.name,
                reason,
                result,
            })
        })
        .collect();
    RecoveryReport { resets }
}

/// The stuck releases and their reasons, sorted by `namespace/name`.
fn find_stuck(objects: &[DynamicObject]) -> Vec<(ReleaseKey, String)> {
    let mut stuck: Vec<(ReleaseKey, String)> = objects
        .iter()
        .filter_map(|object| Some((ReleaseKey::of(object), stuck_reason(&object.data)?)))
        .collect();
    stuck.sort_by(|a, b| a.0.cmp(&b.0));
    stuck
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SuspendOutcome {
    /// Cancelled before the patch was sent; the release was not touched.
    NotSent,
    /// The server applied the patch; the controller is done once it observes `generation`.
    Suspended { generation: Option<i64> },
    /// The server refused; the release is not in the guard.
    Rejected,
    /// The patch may or may not have been applied; the release stays in the guard.
    Unknown,
}

/// Suspend each release, at most [`SUSPENDS_IN_FLIGHT`] at a time. A release enters the guard
/// before its patch is sent, so that an interruption at any later point resumes it. Patches
/// already in flight when `cancel` fires are allowed to finish: dropping one could let it reach
/// the server after the resume and leave the release suspended.
async fn suspend_all(
    guard: &ResumeGuard<'_>,
    stuck: &[(ReleaseKey, String)],
    cancel: &CancellationToken,
) -> BTreeMap<ReleaseKey, SuspendOutcome> {
    futures_util::stream::iter(stuck)
        .map(|(key, _)| async move {
            if cancel.is_cancelled() {
                return (key.clone(), SuspendOutcome::NotSent);
            }
            guard.hold(key);
            let api: Api<DynamicObject> =
                Api::namespaced_with(guard.client().clone(), &key.namespace, guard.resource());
            let outcome = match bounded(api.patch(&key.name, &PatchParams::default(), &suspend_patch(true))).await {
                Ok(object) => SuspendOutcome::Suspended {
                    generation: object.metadata.generation,
                },
                Err(RequestFailure::Rejected(reason) | RequestFailure::NotFound(reason)) => {
                    guard.release(key);
                    guard
                        .output()
                        .warn(&format!("helmrelease {key}: could not suspend ({reason}); skipped"));
                    SuspendOutcome::Rejected
                }
                Err(failure) => {
                    tracing::debug!("helm recovery: suspend {key}: outcome unknown ({failure}); it will be resumed");
                    SuspendOutcome::Unknown
                }
            };
            (key.clone(), outcome)
        })
        .buffer_unordered(SUSPENDS_IN_FLIGHT)
        .collect()
        .await
}

/// Wait, by watching, until the controller has observed each suspension
/// (`status.observedGeneration >= generation`), for at most `bound` in total, or until `cancel`
/// fires. Reaching the bound is not an error: the releases are resumed either way.
async fn observe(
    client: &kube::Client,
    resource: &ApiResource,
    pending: BTreeMap<ReleaseKey, i64>,
    bound: Duration,
    cancel: &CancellationToken,
) {
    if pending.is_empty() {
        return;
    }
    let keys: BTreeSet<ReleaseKey> = pending.keys().cloned().collect();
    let mut reached = BTreeSet::new();
    let wait = watch_until(client, resource, &keys, &mut reached, |key, object| {
        let observed = object
            .data
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        matches!((pending.get(key), observed), (Some(&wanted), Some(seen)) if seen >= wanted)
    });
    tokio::select! {
        outcome = tokio::time::timeout(bound, wait) => {
            if outcome.is_err() {
                tracing::debug!(
                    "helm recovery: the controller did not observe every suspension within {}; resuming anyway",
                    crate::duration::format_go(bound)
                );
            }
        }
        () = cancel.cancelled() => {
            tracing::debug!("helm recovery: interrupted while waiting for the controller; resuming");
        }
    }
}

/// Watch the releases until `test` holds for each of `pending`, adding each to `reached` as it
/// does (a deleted release counts as reached: there is nothing left to wait for).
async fn watch_until(
    client: &kube::Client,
    resource: &ApiResource,
    pending: &BTreeSet<ReleaseKey>,
    reached: &mut BTreeSet<ReleaseKey>,
    test: impl Fn(&ReleaseKey, &DynamicObject) -> bool,
) {
    if pending.is_empty() {
        return;
    }
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    let events = watcher(api, watcher::Config::default()).default_backoff();
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                let key = ReleaseKey::of(&object);
                if pending.contains(&key) && test(&key, &object) {
                    reached.insert(key);
                }
            }
            Ok(watcher::Event::Delete(object)) => {
                reached.insert(ReleaseKey::of(&object));
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
            Err(error) => tracing::debug!("helm recovery: watch helmreleases: {error}"),
        }
        if pending.iter().all(|key| reached.contains(key)) {
            return;
        }
    }
}
