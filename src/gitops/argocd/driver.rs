//! One Argo CD attempt of `workload reconcile` (reconcile.md#argo-cd): list every Application in
//! `argocd`, record each one's last operation start, refresh every one and start a sync operation
//! where none is set, then follow watch events until each Application is complete or failed, or
//! the attempt's deadline passes.
//!
//! The rules live in `readiness` (pure); this module only moves Applications from the watch into
//! those rules and acts on the verdicts. Argo CD has no dependencies between Applications, so
//! nothing is ever blocked here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::readiness::REFRESH_ANNOTATION;
use super::{
    Application, ApplicationContext, application_verdict, expected_revision_matches, is_gated,
    operation_fingerprint,
};
use crate::gitops::attempt::{
    self, Deadline, Progress, Reachability, Unfinished, Watches, failure as failure_of, kube_error,
};
#[cfg(test)]
use crate::gitops::attempt::{failed_line, ready_line};
use crate::gitops::expected::Expected;
use crate::gitops::report::{AttemptError, ObjectName, ObjectReport, ObjectSpinners, ObjectState};
use crate::gitops::verdict::{Verdict, collapse_whitespace, short_revision, timeout_message};
use crate::gitops::watch::{self, Update};
use crate::k8s::{K8sError, with_timeout};
use crate::output::counted;
use crate::progress::Reporter;

use super::resources::{APPLICATION, APPLICATION_NAME, NAMESPACE};
/// The kind in object reports.
const KIND: &str = APPLICATION.kind;
/// What a normal refresh asks for: re-resolve the source (an OCI tag) and compare again.
const REFRESH_KIND: &str = "normal";
/// The word of a complete Application's progress line.
const READY: &str = "synced and healthy";
/// `operation.initiatedBy.username` of the syncs ksail starts.
const SYNC_USER: &str = "ksail";
/// At most this many Applications are being patched at once.
const PATCH_CONCURRENCY: usize = 16;
/// Conflicts tolerated on one Application's sync patch. Each one means a writer (normally the
/// controller handling the refresh) changed it meanwhile; re-reading settles that quickly, so a
/// longer streak means something keeps rewriting it and the attempt reports the conflict.
const MAX_SYNC_CONFLICTS: usize = 5;
/// The reason of an `argocd/ksail` that follows another repository than the sync URL.
const REPOSITORY_MISMATCH_REASON: &str = "RepositoryMismatch";
/// Status shown for an Application whose trigger has not been answered yet.
const NOT_REQUESTED: &str = "refresh not requested yet";

/// Everything one attempt needs.
pub struct ArgoAttempt<'a> {
    pub client: &'a kube::Client,
    /// `argoproj.io/v1alpha1` applications.
    pub application: &'a ApiResource,
    /// `D`, or no revision gate.
    pub expected: Expected,
    /// `sync.url`: Applications with this repoURL are revision-gated. `None` gates nothing.
    pub sync_url: Option<&'a str>,
    /// `--sync-manual`: sync Applications whose policy is manual too.
    pub sync_manual: bool,
    pub reporter: &'a dyn Reporter,
    pub deadline: Deadline,
}

/// What the attempt saw, whatever its outcome (for the summary line and the JSON document).
#[derive(Debug, Default)]
pub struct ArgoSummary {
    /// Applications tracked at the end (deleted ones are no longer counted).
    pub applications: usize,
    /// `D`, when it is known and every revision-gated Application completed at it.
    pub revision: Option<String>,
    pub objects: Vec<ObjectReport>,
}

/// One tracked Application's progress within the attempt.
#[derive(Debug, Clone)]
struct Tracked {
    /// The newest accepted state.
    object: Application,
    /// `status.operationState.startedAt` before the trigger: an operation that still has it is
    /// not this run's.
    recorded_operation: Option<String>,
    /// The resourceVersion ksail's last patch produced; older states are not evaluated.
    patched_rv: Option<String>,
    /// The trigger for this Application has been answered.
    requested: bool,
    /// Refreshed only: the controller's own automated sync is expected (see [`auto_sync`]).
    awaiting_auto_sync: bool,
    progress: Progress,
    /// The revision gate applied to this Application when it finished.
    gated: bool,
}

/// The attempt's view of the Applications, fed by the watch.
struct State {
    started: Instant,
    apps: BTreeMap<String, Tracked>,
    /// Every Application name seen in this attempt, tracked or not: one not in it is new.
    seen: BTreeSet<String>,
    /// Applications with a manual sync policy, left alone (without `--sync-manual`).
    manual: BTreeSet<String>,
}

pub async fn reconcile(attempt: ArgoAttempt<'_>) -> (ArgoSummary, Result<(), AttemptError>) {
    let mut state = State {
        started: Instant::now(),
        apps: BTreeMap::new(),
        seen: BTreeSet::new(),
        manual: BTreeSet::new(),
    };
    let result = run(&attempt, &mut state).await;
    (summary(&state, attempt.expected.digest()), result)
}

async fn run(attempt: &ArgoAttempt<'_>, state: &mut State) -> Result<(), AttemptError> {
    let reporter = attempt.reporter;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _watch = Watches(vec![watch::spawn_namespaced(
        attempt.client.clone(),
        attempt.application.clone(),
        NAMESPACE,
        tx,
    )]);

    let snapshot = loop {
        let Some(received) = attempt.deadline.before(rx.recv()).await else {
            return Err(AttemptError::TimedOut {
                message: format!(
                    "{} before the Applications in {NAMESPACE} could be listed",
                    timeout_message(attempt.deadline.timeout(), &[], 0)
                ),
                unfinished: Vec::new(),
                total: 0,
            });
        };
        match received {
            Some((_, Update::Snapshot(objects))) => break objects,
            Some((_, Update::ListFailed(error))) => return Err(kube_error(error)),
            // Nothing but a snapshot can come first; anything else is not worth acting on.
            Some(_) => {}
            None => return Err(watch_ended()),
        }
    };

    state.started = Instant::now();
    for object in parse_all(snapshot).into_iter().filter(in_namespace) {
        let Some(name) = name_of(&object) else {
            continue;
        };
        state.seen.insert(name.clone());
        if !attempt.sync_manual && !is_automated(&object) {
            // Someone chose to sync this one by hand: ksail neither syncs nor waits for it.
            reporter.info(&format!(
                "{}: manual sync policy, left alone (pass --sync-manual to sync it)",
                label(&name)
            ));
            state.manual.insert(name);
            continue;
        }
        state.apps.insert(
            name,
            Tracked {
                recorded_operation: operation_fingerprint(&object),
                object,
                patched_rv: None,
                requested: false,
                awaiting_auto_sync: false,
                progress: Progress::default(),
                gated: false,
            },
        );
    }
    reporter.info(&header_line(state.apps.len()));
    if state.apps.is_empty() {
        return Ok(());
    }
    if let Some(verdict) = follows_another_repository(attempt, state)
        && let Some(ksail) = state.apps.get_mut(APPLICATION_NAME)
    {
        let after = state.started.elapsed();
        let label = label(APPLICATION_NAME);
        ksail
            .progress
            .settle(reporter, &label, READY, verdict, after);
        return outcome(state);
    }

    trigger(attempt, state).await?;

    let mut spinners = ObjectSpinners::new(reporter);
    let mut reachability = Reachability::default();
    loop {
        start_missing_syncs(attempt, state).await?;
        evaluate(attempt, state);
        spinners.sync(state.apps.iter().map(|(name, app)| {
            (
                format!("application {NAMESPACE}/{name}"),
                app.progress.last_status.as_deref(),
                app.progress.done.is_some(),
            )
        }));
        if state.apps.values().all(|app| app.progress.done.is_some()) {
            break;
        }
        let Some(received) = attempt.deadline.before(rx.recv()).await else {
            return Err(timed_out(attempt, state));
        };
        match received {
            Some((kind, update)) => {
                if let Some(update) = reachability.observe(&kind, update, reporter)? {
                    apply_update(state, update, reporter);
                }
            }
            None => return Err(watch_ended()),
        }
    }
    outcome(state)
}

/// ksail's own Application (`argocd/ksail`) follows another repository than the sync URL and no
/// tracked Application follows the sync URL: nothing in the cluster will ever serve `D`, and
/// without a gate the run would report it served once the old artifact is synced. Flux's sync
/// source reports the same situation as a digest mismatch; both say to run `cluster update`,
/// which turns the sync object to the configured URL.
fn follows_another_repository(attempt: &ArgoAttempt<'_>, state: &State) -> Option<Verdict> {
    let sync_url = attempt.sync_url?;
    // An unchecked revision has no digest to hold the Applications to.
    attempt.expected.digest()?;
    if state
        .apps
        .values()
        .any(|app| is_gated(&app.object, sync_url))
    {
        return None;
    }
    let ksail = state.apps.get(APPLICATION_NAME)?;
    let follows: Vec<&str> = ksail.object.repo_urls().collect();
    Some(Verdict::Failed {
        reason: REPOSITORY_MISMATCH_REASON.to_string(),
        message: format!(
            "follows {}, and no Application follows the sync URL {sync_url}: the cluster follows a different artifact; run ksail cluster update",
            if follows.is_empty() {
                "no repository".to_string()
            } else {
                follows.join(", ")
            }
        ),
    })
}

/// The watch task only ends when it panicked; the next attempt starts a new one.
fn watch_ended() -> AttemptError {
    AttemptError::Kube {
        retryable: true,
        retry_after: None,
        reason: "the watch of Applications ended unexpectedly".to_string(),
        unreachable: false,
    }
}

/// `reconcile: Argo CD; tracking 3 Applications`.
pub fn header_line(applications: usize) -> String {
    format!(
        "reconcile: Argo CD; tracking {}",
        counted(applications, "Application", "Applications")
    )
}

/// The merge patch that asks the controller for a normal refresh.
pub fn refresh_patch() -> Value {
    json!({"metadata": {"annotations": {REFRESH_ANNOTATION: REFRESH_KIND}}})
}

/// The merge patch that starts a sync operation, conditional on `resource_version` (the state
/// ksail read), carrying what the Application's own policy would put into its automated sync.
pub fn sync_patch(resource_version: &str, policy: &SyncRequest) -> Value {
    let mut sync = Map::new();
    if !policy.sync_options.is_empty() {
        sync.insert("syncOptions".to_string(), json!(policy.sync_options));
    }
    if policy.prune {
        sync.insert("prune".to_string(), json!(true));
    }
    if let Some(revision) = &policy.revision {
        sync.insert("revision".to_string(), json!(revision));
    }
    let mut operation = json!({"initiatedBy": {"username": SYNC_USER}, "sync": sync});
    if let Some(retry) = &policy.retry {
        operation["retry"] = retry.clone();
    }
    json!({
        "metadata": {"resourceVersion": resource_version},
        "operation": operation,
    })
}

/// What ksail's sync operation takes from `spec.syncPolicy`, so that it does what the
/// controller's automated sync would (argo-cd `controller/appcontroller.go` `autoSync`: `Prune`
/// from `automated.prune`, the policy's `syncOptions`, and its `retry` when it has one). Without
/// `prune`, a sync of a revision that removed a resource would leave it, and the controller does
/// not auto-sync a revision that was synced already: the Application stays OutOfSync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncRequest {
    pub sync_options: Vec<String>,
    pub prune: bool,
    pub retry: Option<Value>,
    /// The revision to sync: the expected digest for an Application that follows the sync
    /// artifact, else the controller resolves `targetRevision` itself.
    pub revision: Option<String>,
}

impl SyncRequest {
    fn of(application: &Application) -> Self {
        let policy = application.sync_policy();
        SyncRequest {
            sync_options: policy
                .and_then(|policy| policy.sync_options.clone())
                .unwrap_or_default(),
            prune: policy
                .and_then(|policy| policy.automated.as_ref())
                .and_then(|automated| automated.prune)
                .unwrap_or(false),
            retry: policy.and_then(|policy| policy.retry.clone()),
            revision: None,
        }
    }
}

/// What triggering one Application produced.
struct Requested {
    /// The newest state read or written on the way.
    latest: Application,
    /// The resourceVersion of ksail's last successful patch.
    patched_rv: Option<String>,
}

/// Refresh every Application, then start a sync on those without an operation (at most 16 in
/// flight). A 404 drops the Application; the deadline ends the attempt as a timeout.
async fn trigger(attempt: &ArgoAttempt<'_>, state: &mut State) -> Result<(), AttemptError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(attempt.client.clone(), NAMESPACE, attempt.application);
    // A single-source Application that follows the sync artifact is synced to exactly `D`, not
    // to whatever the tag names when the controller resolves it (another push may come between).
    let targets: Vec<(String, Option<String>, bool)> = state
        .apps
        .iter()
        .map(|(name, app)| {
            let pin = pin_of(attempt, &app.object);
            (name.clone(), pin, is_automated(&app.object))
        })
        .collect();
    let api = &api;
    let mut results = std::pin::pin!(
        futures_util::stream::iter(targets)
            .map(|(name, pin, automated)| async move {
                let result = request(api, &name, pin.as_deref(), automated).await;
                (name, result, automated)
            })
            .buffer_unordered(PATCH_CONCURRENCY)
    );
    loop {
        let Some(next) = attempt.deadline.before(results.next()).await else {
            return Err(timed_out(attempt, state));
        };
        let Some((name, result, automated)) = next else {
            return Ok(());
        };
        match result {
            Ok(requested) => {
                if let Some(app) = state.apps.get_mut(&name) {
                    app.requested = true;
                    app.awaiting_auto_sync = automated;
                    app.patched_rv = requested.patched_rv;
                    accept(app, requested.latest);
                }
            }
            Err(error) if error.is_not_found() => drop_deleted(state, &name, attempt.reporter),
            Err(error) => return Err(kube_error(error)),
        }
    }
}

/// Refresh one Application. One whose policy is automated is left to the controller's own
/// automated sync, which the refresh sets off with exactly the policy's settings; on any other
/// (`--sync-manual`) a sync is started at once.
async fn request(
    api: &Api<DynamicObject>,
    name: &str,
    pin: Option<&str>,
    automated: bool,
) -> Result<Requested, K8sError> {
    let refreshed = patch(api, name, refresh_patch()).await?;
    let refreshed_rv = resource_version(&refreshed);
    if !automated && let Some(synced) = start_sync(api, name, refreshed.clone(), pin).await? {
        return Ok(Requested {
            patched_rv: resource_version(&synced),
            latest: synced,
        });
    }
    Ok(Requested {
        latest: refreshed,
        patched_rv: refreshed_rv,
    })
}

/// Start a sync on exactly the state read, unless an operation is set (someone else's, or the
/// controller's automated sync: it is waited for instead, and `None` returned). A `409` means
/// the Application changed meanwhile: read it again and decide again.
async fn start_sync(
    api: &Api<DynamicObject>,
    name: &str,
    mut current: Application,
    pin: Option<&str>,
) -> Result<Option<Application>, K8sError> {
    let mut conflicts = 0;
    loop {
        if current.operation.is_some() {
            return Ok(None);
        }
        // A served object always has a resourceVersion; an empty one would make the patch
        // unconditional, which is still a sync on a state at least as new as the one read.
        let rv = resource_version(&current).unwrap_or_default();
        let sync = SyncRequest {
            revision: pin.map(str::to_string),
            ..SyncRequest::of(&current)
        };
        match patch(api, name, sync_patch(&rv, &sync)).await {
            Ok(synced) => return Ok(Some(synced)),
            Err(error) if error.is_conflict() && conflicts < MAX_SYNC_CONFLICTS => {
                conflicts += 1;
                tracing::debug!("application {NAMESPACE}/{name}: changed meanwhile; reading again");
                current = with_timeout(api.get(name)).await.map(to_application)?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// The revision ksail's sync names: a single-source Application that follows the sync artifact
/// is synced to exactly `D`, not to whatever the tag names when the controller resolves it
/// (another push may come between).
fn pin_of(attempt: &ArgoAttempt<'_>, application: &Application) -> Option<String> {
    let single_source = !application.is_multi_source();
    attempt
        .expected
        .digest()
        .filter(|_| single_source)
        .filter(|_| {
            attempt
                .sync_url
                .is_some_and(|url| is_gated(application, url))
        })
        .map(str::to_string)
}

/// What the controller made of the refresh of an Application left to its automated sync.
#[derive(Debug, PartialEq, Eq)]
enum AutoSync {
    /// The refresh is not handled yet, or the comparison failed and will be done again.
    Pending,
    /// An operation of this run is set or has run, or the Application was in sync already.
    Handled,
    /// The controller compared and started nothing (argo-cd `autoSync` skips a revision whose
    /// last sync failed, drift the self-heal back-off holds, a sync window, ...): why, in words.
    NotStarted(String),
}

/// Judge the refresh of an automated Application: argo-cd `processAppRefreshQueueItem` runs
/// `autoSync` (which sets `.operation`) before it writes the status and removes the refresh
/// annotation, so a state without the annotation and without a new operation means none comes.
fn auto_sync(
    application: &Application,
    recorded_operation: Option<&str>,
    pin: Option<&str>,
) -> AutoSync {
    if application.operation.is_some()
        || operation_fingerprint(application).as_deref() != recorded_operation
    {
        return AutoSync::Handled;
    }
    if application.has_annotation(REFRESH_ANNOTATION) {
        return AutoSync::Pending;
    }
    let sync = &application.status.sync;
    match sync.status.as_deref() {
        Some("OutOfSync") => {
            AutoSync::NotStarted(sync_error(application).unwrap_or_else(|| "OutOfSync".to_string()))
        }
        Some("Synced") if pin.is_some_and(|pin| !expected_revision_matches(application, pin)) => {
            AutoSync::NotStarted(format!(
                "synced at {}",
                sync.revision
                    .as_deref()
                    .map_or("another revision".into(), short_revision)
            ))
        }
        Some("Synced") => AutoSync::Handled,
        _ => AutoSync::Pending,
    }
}

/// The message of a `SyncError` condition, which is where `autoSync` says why it did not sync.
fn sync_error(application: &Application) -> Option<String> {
    application
        .status
        .conditions
        .iter()
        .flatten()
        .find(|condition| condition.condition_type.as_deref() == Some("SyncError"))
        .and_then(|condition| condition.message.as_deref())
        .map(collapse_whitespace)
}

/// Start a sync on every Application whose automated sync did not come.
async fn start_missing_syncs(
    attempt: &ArgoAttempt<'_>,
    state: &mut State,
) -> Result<(), AttemptError> {
    let mut due = Vec::new();
    for (name, app) in state
        .apps
        .iter_mut()
        .filter(|(_, app)| app.awaiting_auto_sync)
    {
        let pin = pin_of(attempt, &app.object);
        match auto_sync(
            &app.object,
            app.recorded_operation.as_deref(),
            pin.as_deref(),
        ) {
            AutoSync::Pending => {}
            AutoSync::Handled => app.awaiting_auto_sync = false,
            AutoSync::NotStarted(why) => {
                app.awaiting_auto_sync = false;
                due.push((name.clone(), app.object.clone(), pin, why));
            }
        }
    }
    if due.is_empty() {
        return Ok(());
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(attempt.client.clone(), NAMESPACE, attempt.application);
    for (name, current, pin, why) in due {
        attempt.reporter.info(&format!(
            "{}: no automated sync started ({why}); starting one",
            label(&name)
        ));
        let Some(result) = attempt
            .deadline
            .before(start_sync(&api, &name, current, pin.as_deref()))
            .await
        else {
            return Err(timed_out(attempt, state));
        };
        match result {
            Ok(Some(synced)) => {
                if let Some(app) = state.apps.get_mut(&name) {
                    app.patched_rv = resource_version(&synced);
                    accept(app, synced);
                }
            }
            Ok(None) => {}
            Err(error) if error.is_not_found() => drop_deleted(state, &name, attempt.reporter),
            Err(error) => return Err(kube_error(error)),
        }
    }
    Ok(())
}

async fn patch(api: &Api<DynamicObject>, name: &str, body: Value) -> Result<Application, K8sError> {
    with_timeout(api.patch(name, &PatchParams::default(), &Patch::Merge(body)))
        .await
        .map(to_application)
}

/// Take a newer state: never one older than ksail's last patch (it would not show the refresh
/// or sync ksail asked for) nor one older than the state already held.
fn accept(app: &mut Tracked, object: Application) {
    let rv = resource_version(&object);
    if is_older(rv.as_deref(), app.patched_rv.as_deref())
        || is_older(rv.as_deref(), resource_version(&app.object).as_deref())
    {
        return;
    }
    app.object = object;
}

/// `candidate < floor` as resourceVersions. They are numeric strings on real servers, but
/// clients must treat them as opaque, so anything unparseable is accepted rather than ignored
/// forever.
pub fn is_older(candidate: Option<&str>, floor: Option<&str>) -> bool {
    match (
        candidate.and_then(|rv| rv.parse::<u64>().ok()),
        floor.and_then(|rv| rv.parse::<u64>().ok()),
    ) {
        (Some(candidate), Some(floor)) => candidate < floor,
        _ => false,
    }
}

fn apply_update(state: &mut State, update: Update, reporter: &dyn Reporter) {
    match update {
        Update::Snapshot(objects) => {
            let objects = parse_all(objects);
            let present: BTreeSet<String> = objects
                .iter()
                .filter(|object| in_namespace(object))
                .filter_map(name_of)
                .collect();
            for object in objects {
                upsert(state, object, reporter);
            }
            let gone: Vec<String> = state
                .apps
                .iter()
                .filter(|(name, app)| app.progress.done.is_none() && !present.contains(*name))
                .map(|(name, _)| name.clone())
                .collect();
            for name in gone {
                drop_deleted(state, &name, reporter);
            }
        }
        Update::Upsert(object) => {
            if let Some(object) = parse(&object) {
                upsert(state, object, reporter);
            }
        }
        Update::Deleted(object) => {
            if let Some(object) = parse(&object)
                && in_namespace(&object)
                && let Some(name) = name_of(&object)
                && state
                    .apps
                    .get(&name)
                    .is_some_and(|app| app.progress.done.is_none())
            {
                drop_deleted(state, &name, reporter);
            }
        }
        Update::ListFailed(error) => tracing::debug!("relist of Applications failed: {error}"),
    }
}

/// A state of a tracked Application. Applications created after the initial list are not
/// tracked: the attempt tracks what it listed at its start.
fn upsert(state: &mut State, object: Application, reporter: &dyn Reporter) {
    if !in_namespace(&object) {
        return;
    }
    let Some(name) = name_of(&object) else {
        return;
    };
    if state.seen.insert(name.clone()) {
        track_created(state, name, object, reporter);
        return;
    }
    let Some(app) = state.apps.get_mut(&name) else {
        return;
    };
    if app.progress.done.is_none() {
        accept(app, object);
    }
}

/// The controller syncs it by itself: `spec.syncPolicy.automated` is set and not disabled
/// (argo-cd `pkg/apis/application/v1alpha1/types.go` `IsAutomatedSyncEnabled`).
fn is_automated(application: &Application) -> bool {
    application
        .sync_policy()
        .and_then(|policy| policy.automated.as_ref())
        .is_some_and(|automated| automated.enabled != Some(false))
}

/// An Application that appeared during the attempt — typically the child of an app-of-apps
/// whose sync created it — is waited for too, when its own policy syncs it (automated): ksail
/// neither refreshes nor syncs it, and any operation on it belongs to this run. One with a manual
/// policy would never sync on its own, so it is left alone.
fn track_created(state: &mut State, name: String, object: Application, reporter: &dyn Reporter) {
    if !is_automated(&object) {
        tracing::debug!(
            "{}: created during the attempt, manual sync policy; not tracked",
            label(&name)
        );
        return;
    }
    reporter.info(&format!(
        "{}: created during the attempt, tracked",
        label(&name)
    ));
    state.apps.insert(
        name,
        Tracked {
            recorded_operation: None,
            object,
            patched_rv: None,
            requested: true,
            awaiting_auto_sync: false,
            progress: Progress::default(),
            gated: false,
        },
    );
}

fn drop_deleted(state: &mut State, name: &str, reporter: &dyn Reporter) {
    if state.apps.remove(name).is_some() {
        reporter.info(&format!("{}: deleted, no longer tracked", label(name)));
    }
}

/// Evaluate every unfinished, requested Application against its latest accepted state.
fn evaluate(attempt: &ArgoAttempt<'_>, state: &mut State) {
    let after = state.started.elapsed();
    for (name, app) in state.apps.iter_mut() {
        if app.progress.done.is_some() || !app.requested {
            continue;
        }
        let gated = attempt
            .sync_url
            .is_some_and(|url| is_gated(&app.object, url));
        let context = ApplicationContext {
            recorded_operation: app.recorded_operation.clone(),
            expected_digest: attempt.expected.digest(),
            gated,
        };
        let verdict = application_verdict(&app.object, &context);
        app.gated = gated;
        app.progress
            .settle(attempt.reporter, &label(name), READY, verdict, after);
    }
}

/// `application argocd/<name>`, how progress lines and the timeout message name it.
fn label(name: &str) -> String {
    format!("application {NAMESPACE}/{name}")
}

fn summary(state: &State, expected_digest: Option<&str>) -> ArgoSummary {
    let all_finished = state.apps.values().all(|app| app.progress.done.is_some());
    // `D` is reported only when the gate actually applied and held everywhere it applied.
    let mut gated = state.apps.values().filter(|app| app.gated).peekable();
    let gate_held = all_finished
        && gated.peek().is_some()
        && gated.all(|app| {
            app.progress
                .done
                .as_ref()
                .is_some_and(|done| done.state == ObjectState::Ready)
        });
    ArgoSummary {
        applications: state.apps.len(),
        revision: expected_digest.filter(|_| gate_held).map(str::to_string),
        objects: state
            .apps
            .iter()
            .map(|(name, app)| report(name, app))
            .chain(state.manual.iter().map(|name| {
                ObjectReport::untracked(
                    ObjectName::new(KIND, NAMESPACE, name),
                    ObjectState::Excluded,
                    Some("manual sync policy"),
                )
            }))
            .collect(),
    }
}

fn report(name: &str, app: &Tracked) -> ObjectReport {
    ObjectReport::tracked(
        ObjectName::new(KIND, NAMESPACE, name),
        app.progress.done.as_ref(),
        app.progress.last_status.as_ref(),
    )
}

/// Success, or the Applications whose own operation failed.
fn outcome(state: &State) -> Result<(), AttemptError> {
    match failure(state) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn failure(state: &State) -> Option<AttemptError> {
    failure_of(
        state
            .apps
            .iter()
            .map(|(name, app)| (format!("{NAMESPACE}/{name}"), &app.progress)),
    )
}

/// The deadline passed: a terminal failure seen meanwhile decides (not retryable); otherwise the
/// attempt timed out, naming up to five unfinished Applications with their last status.
fn timed_out(attempt: &ArgoAttempt<'_>, state: &State) -> AttemptError {
    if let Some(failure) = failure(state) {
        return failure;
    }
    let unfinished = state
        .apps
        .iter()
        .filter(|(_, app)| !app.progress.is_done())
        .map(|(name, app)| Unfinished {
            label: label(name),
            status: status_of(app),
            name: format!("{NAMESPACE}/{name}"),
        })
        .collect();
    attempt::timed_out(attempt.deadline.timeout(), unfinished, state.apps.len())
}

fn status_of(app: &Tracked) -> String {
    match (&app.progress.last_status, app.requested) {
        (Some(status), _) => status.clone(),
        (None, true) => "waiting for the controller to handle the refresh".to_string(),
        (None, false) => NOT_REQUESTED.to_string(),
    }
}

fn in_namespace(object: &Application) -> bool {
    object.namespace() == Some(NAMESPACE)
}

fn name_of(object: &Application) -> Option<String> {
    object.name().map(str::to_string)
}

fn resource_version(object: &Application) -> Option<String> {
    object.resource_version().map(str::to_string)
}

/// An Application from a watch event; one that does not read as an Application (impossible for
/// a served object, whose schema the API server enforces) is left out with a debug line.
fn parse(object: &Value) -> Option<Application> {
    Application::parse(object)
        .inspect_err(|error| tracing::debug!("unreadable Application left out: {error}"))
        .ok()
}

fn parse_all(objects: Vec<Value>) -> Vec<Application> {
    objects.iter().filter_map(parse).collect()
}

/// A DynamicObject from a GET or PATCH as an Application. Serializing one cannot fail (it is
/// JSON already); a response that does not read as an Application becomes an empty one, which
/// only ever waits.
fn to_application(object: DynamicObject) -> Application {
    serde_json::to_value(object)
        .ok()
        .and_then(|object| parse(&object))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use fake_apiserver::simulators::{AppOutcome, ArgoCd, OperationOutcome};
    use fake_apiserver::{
        Cluster, EventKind, FakeApiServer, Route, ServerOptions, Simulator, Verb, WriteEvent,
    };

    use super::*;
    use crate::progress::Recorder;
    use std::time::Duration;

    const SYNC_URL: &str = "oci://registry.local:5000/app";
    const APP_PATH: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/";

    #[test]
    fn the_refresh_patch_is_the_documented_merge_patch() {
        assert_eq!(
            serde_json::to_string(&refresh_patch()).unwrap(),
            r#"{"metadata":{"annotations":{"argocd.argoproj.io/refresh":"normal"}}}"#
        );
    }

    #[test]
    fn the_sync_patch_carries_the_read_version_and_copies_sync_options() {
        let options = SyncRequest {
            sync_options: vec!["CreateNamespace=true".into(), "PruneLast=true".into()],
            ..SyncRequest::default()
        };
        assert_eq!(
            serde_json::to_string(&sync_patch("42", &options)).unwrap(),
            r#"{"metadata":{"resourceVersion":"42"},"operation":{"initiatedBy":{"username":"ksail"},"sync":{"syncOptions":["CreateNamespace=true","PruneLast=true"]}}}"#
        );
        assert_eq!(
            serde_json::to_string(&sync_patch("7", &SyncRequest::default())).unwrap(),
            r#"{"metadata":{"resourceVersion":"7"},"operation":{"initiatedBy":{"username":"ksail"},"sync":{}}}"#
        );
    }

    #[test]
    fn the_sync_request_follows_the_applications_policy() {
        let app = |object: Value| Application::parse(&object).expect("an Application");
        let automated = app(json!({"spec": {"syncPolicy": {
            "automated": {"prune": true},
            "syncOptions": ["A=true", "B=false"],
            "retry": {"limit": 2, "backoff": {"duration": "5s"}},
        }}}));
        let request = SyncRequest::of(&automated);
        assert_eq!(
            request,
            SyncRequest {
                sync_options: vec!["A=true".into(), "B=false".into()],
                prune: true,
                retry: Some(json!({"limit": 2, "backoff": {"duration": "5s"}})),
                revision: None,
            }
        );
        assert_eq!(
            sync_patch("3", &request)["operation"],
            json!({
                "initiatedBy": {"username": "ksail"},
                "sync": {"syncOptions": ["A=true", "B=false"], "prune": true},
                "retry": {"limit": 2, "backoff": {"duration": "5s"}},
            })
        );
        let no_prune = app(json!({"spec": {"syncPolicy": {"automated": {"selfHeal": true}}}}));
        assert_eq!(SyncRequest::of(&no_prune), SyncRequest::default());
        assert_eq!(
            SyncRequest::of(&app(json!({"spec": {}}))),
            SyncRequest::default()
        );
    }

    /// What a handled (or unhandled) refresh of an automated Application means.
    #[test]
    fn the_automated_sync_is_judged_from_the_handled_refresh() {
        let d = digest('d');
        let recorded = "2020-01-01T00:00:00Z|2020-01-01T00:00:01Z|Succeeded|sha256:old";
        let last = json!({"phase": "Succeeded", "startedAt": "2020-01-01T00:00:00Z",
            "finishedAt": "2020-01-01T00:00:01Z", "syncResult": {"revision": "sha256:old"}});
        let state = |annotated: bool, operation: bool, sync: Value, conditions: Value| {
            let mut object = json!({"metadata": {"name": "web"},
                "status": {"operationState": last, "sync": sync, "conditions": conditions}});
            if annotated {
                object["metadata"]["annotations"] = json!({REFRESH_ANNOTATION: "normal"});
            }
            if operation {
                object["operation"] = json!({"sync": {}});
            }
            Application::parse(&object).expect("an Application")
        };
        let out_of_sync = json!({"status": "OutOfSync", "revision": d});
        let failed = json!([{"type": "SyncError", "message": "Failed last  sync attempt"}]);
        let cases = [
            (
                state(true, false, out_of_sync.clone(), json!([])),
                AutoSync::Pending,
            ),
            (
                state(true, true, out_of_sync.clone(), json!([])),
                AutoSync::Handled,
            ),
            (
                state(false, true, out_of_sync.clone(), json!([])),
                AutoSync::Handled,
            ),
            (
                state(false, false, out_of_sync.clone(), failed),
                AutoSync::NotStarted("Failed last sync attempt".into()),
            ),
            (
                state(false, false, out_of_sync, json!([])),
                AutoSync::NotStarted("OutOfSync".into()),
            ),
            (
                state(
                    false,
                    false,
                    json!({"status": "Synced", "revision": d}),
                    json!([]),
                ),
                AutoSync::Handled,
            ),
            (
                state(
                    false,
                    false,
                    json!({"status": "Synced", "revision": "sha256:old"}),
                    json!([]),
                ),
                AutoSync::NotStarted("synced at sha256:old".into()),
            ),
            (
                state(false, false, json!({"status": "Unknown"}), json!([])),
                AutoSync::Pending,
            ),
        ];
        for (index, (application, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                auto_sync(&application, Some(recorded), Some(&d)),
                expected,
                "case {index}"
            );
        }
        // An operation that ran since the recording (and finished) is the automated sync.
        let mut ran = state(false, false, json!({"status": "OutOfSync"}), json!([]));
        ran.status.operation_state.as_mut().unwrap().phase = Some("Failed".into());
        assert_eq!(auto_sync(&ran, Some(recorded), None), AutoSync::Handled);
    }

    #[test]
    fn automated_means_the_policy_is_set_and_not_disabled() {
        let policy = |automated: Value| {
            Application::parse(&json!({"spec": {"syncPolicy": {"automated": automated}}}))
                .expect("an Application")
        };
        assert!(is_automated(&policy(json!({}))));
        assert!(is_automated(&policy(json!({"enabled": true}))));
        assert!(!is_automated(&policy(
            json!({"enabled": false, "prune": true})
        )));
        assert!(!is_automated(&policy(Value::Null)));
    }

    #[test]
    fn resource_versions_compare_numerically_when_both_parse() {
        assert!(is_older(Some("9"), Some("10")));
        assert!(!is_older(Some("10"), Some("10")));
        assert!(!is_older(Some("11"), Some("10")));
        assert!(!is_older(Some("abc"), Some("10")));
        assert!(!is_older(Some("9"), None));
        assert!(!is_older(None, Some("10")));
    }

    #[test]
    fn progress_lines() {
        assert_eq!(
            header_line(3),
            "reconcile: Argo CD; tracking 3 Applications"
        );
        assert_eq!(header_line(1), "reconcile: Argo CD; tracking 1 Application");
        let digest = format!("sha256:1a2b3c4d5e6f{}", "0".repeat(52));
        assert_eq!(
            ready_line(
                &label("web"),
                READY,
                Some(&digest),
                Duration::from_millis(2100)
            ),
            "application argocd/web: synced and healthy, sha256:1a2b3c4d5e6f (2.1s)"
        );
        assert_eq!(
            ready_line(&label("web"), READY, None, Duration::from_millis(50)),
            "application argocd/web: synced and healthy, no revision (0.1s)"
        );
        assert_eq!(
            failed_line(
                &label("web"),
                "OperationState/Failed",
                "one or more objects failed to apply",
                Duration::from_millis(4200)
            ),
            "application argocd/web: failed: OperationState/Failed: one or more objects failed to apply (4.2s)"
        );
    }

    fn digest(hex: char) -> String {
        format!("sha256:{}", hex.to_string().repeat(64))
    }

    fn application(name: &str, repo_url: &str, automated: bool, options: &[&str]) -> Value {
        let mut sync_policy = json!({});
        if automated {
            sync_policy["automated"] = json!({"prune": true, "selfHeal": true});
        }
        if !options.is_empty() {
            sync_policy["syncOptions"] = json!(options);
        }
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo_url, "targetRevision": "dev", "path": "."},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                "syncPolicy": sync_policy,
            },
        })
    }

    fn application_resource() -> ApiResource {
        ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        }
    }

    async fn client_for(server: &FakeApiServer) -> kube::Client {
        crate::k8s::test_client(&server.url())
    }

    fn expected(digest: &str) -> Expected {
        Expected::Digest {
            host_ref: "registry.local:5000/app:dev".into(),
            digest: digest.into(),
        }
    }

    /// One attempt with `--sync-manual` (these tests sync manual Applications as well).
    async fn attempt(
        server: &FakeApiServer,
        expected: Expected,
        timeout: Duration,
    ) -> (ArgoSummary, Result<(), AttemptError>) {
        attempt_with(server, expected, timeout, true, &Recorder::default()).await
    }

    async fn attempt_with(
        server: &FakeApiServer,
        expected: Expected,
        timeout: Duration,
        sync_manual: bool,
        reporter: &Recorder,
    ) -> (ArgoSummary, Result<(), AttemptError>) {
        let client = client_for(server).await;
        let resource = application_resource();
        reconcile(ArgoAttempt {
            client: &client,
            application: &resource,
            expected,
            sync_url: Some(SYNC_URL),
            sync_manual,
            reporter,
            deadline: Deadline::after(timeout),
        })
        .await
    }

    /// Without `--sync-manual`, an Application whose policy is manual is neither refreshed nor
    /// synced nor waited for, and is reported `excluded`.
    #[tokio::test]
    async fn an_application_with_a_manual_policy_is_left_alone_by_default() {
        let d = digest('d');
        let (server, _sim) = argocd_server(500, 50, &d);
        server.put_object(application("web", SYNC_URL, true, &[]));
        server.put_object(application("by-hand", SYNC_URL, false, &[]));

        let (summary, result) = attempt_with(
            &server,
            expected(&d),
            Duration::from_secs(20),
            false,
            &Recorder::default(),
        )
        .await;

        result.unwrap();
        assert_eq!(summary.applications, 1);
        assert!(patches(&server, "by-hand").is_empty());
        assert_eq!(state_of(&summary, "web").state, ObjectState::Ready);
        let manual = state_of(&summary, "by-hand");
        assert_eq!(manual.state, ObjectState::Excluded);
        assert_eq!(manual.message.as_deref(), Some("manual sync policy"));
    }

    /// PATCH bodies sent to one Application, in order.
    fn patches(server: &FakeApiServer, name: &str) -> Vec<Value> {
        server
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == format!("{APP_PATH}{name}"))
            .map(|r| {
                assert_eq!(
                    r.content_type.as_deref(),
                    Some("application/merge-patch+json")
                );
                r.body_json().unwrap()
            })
            .collect()
    }

    /// Methods of the requests for one Application (not lists or watches).
    /// An Argo CD fake server with the simulator (refreshes handled after `refresh_ms`, operations
    /// taking `operation_ms`) serving `digest`.
    fn argocd_server(
        refresh_ms: u64,
        operation_ms: u64,
        digest: &str,
    ) -> (FakeApiServer, std::sync::Arc<ArgoCd>) {
        let server = FakeApiServer::start(ServerOptions::argocd());
        let sim = ArgoCd::new(refresh_ms, operation_ms, digest);
        server.add_simulator(sim.clone());
        (server, sim)
    }

    /// The message, unfinished objects and total of a timed-out attempt.
    fn timed_out(result: Result<(), AttemptError>) -> (String, Vec<String>, usize) {
        match result {
            Err(AttemptError::TimedOut {
                message,
                unfinished,
                total,
            }) => (message, unfinished, total),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    fn methods(server: &FakeApiServer, name: &str) -> Vec<String> {
        server
            .requests()
            .iter()
            .filter(|r| r.path == format!("{APP_PATH}{name}"))
            .map(|r| r.method.clone())
            .collect()
    }

    /// The operation patch minus its resourceVersion (checked to be a number).
    fn operation_of(patch: &Value) -> Value {
        let rv = patch["metadata"]["resourceVersion"].as_str().unwrap();
        assert!(rv.parse::<u64>().is_ok(), "resourceVersion {rv:?}");
        assert_eq!(patch["metadata"].as_object().unwrap().len(), 1);
        patch["operation"].clone()
    }

    fn state_of<'s>(summary: &'s ArgoSummary, name: &str) -> &'s ObjectReport {
        summary
            .objects
            .iter()
            .find(|o| o.object.name == name)
            .unwrap_or_else(|| panic!("no report for {name}: {:?}", summary.objects))
    }

    /// An automated Application is only refreshed: the controller's own automated sync, set off
    /// by the refresh, syncs it with its policy. A manual one (`--sync-manual`) gets ksail's sync
    /// at once, one with an operation running gets nothing but the refresh.
    #[tokio::test]
    async fn automated_applications_are_left_to_their_own_sync_others_are_synced() {
        let d = digest('d');
        let (server, sim) = argocd_server(500, 50, &d);
        server.put_object(application(
            "web",
            SYNC_URL,
            true,
            &["CreateNamespace=true", "ServerSideApply=true"],
        ));
        server.put_object(application("api", SYNC_URL, false, &[]));
        let mut busy = application("busy", "oci://elsewhere.example/x", false, &[]);
        busy["operation"] = json!({"initiatedBy": {"username": "someone"}, "sync": {}});
        busy["status"] = json!({"operationState": {"phase": "Running", "message": "", "startedAt": "2020-01-01T00:00:00Z"}});
        server.put_object(busy);
        let mut elsewhere = application("web", SYNC_URL, true, &[]);
        elsewhere["metadata"]["namespace"] = json!("default");
        server.put_object(elsewhere);

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;

        result.unwrap();
        assert_eq!(summary.applications, 3);
        assert_eq!(summary.revision.as_deref(), Some(d.as_str()));
        for name in ["api", "busy", "web"] {
            let report = state_of(&summary, name);
            assert_eq!(report.state, ObjectState::Ready, "{report:?}");
            assert_eq!(report.object.kind, "Application");
            assert_eq!(report.object.namespace, "argocd");
        }
        assert_eq!(
            state_of(&summary, "web").revision.as_deref(),
            Some(d.as_str())
        );

        assert_eq!(patches(&server, "web"), [refresh_patch()]);
        let web = server
            .cluster()
            .get("argoproj.io", "applications", NAMESPACE, "web")
            .unwrap();
        assert_eq!(
            web["status"]["operationState"]["operation"]["initiatedBy"],
            json!({"automated": true}),
            "the controller's automated sync synced it"
        );
        // Follows the sync artifact: synced to exactly D.
        let api = patches(&server, "api");
        assert_eq!(api.len(), 2, "{api:?}");
        assert_eq!(api[0], refresh_patch());
        assert_eq!(
            operation_of(&api[1]),
            json!({"initiatedBy": {"username": "ksail"}, "sync": {"revision": d}})
        );
        assert_eq!(patches(&server, "busy"), [refresh_patch()]);
        assert!(
            !server
                .requests()
                .iter()
                .any(|r| r.path.contains("/namespaces/default/")),
            "Applications outside argocd are not touched"
        );
        let mut handled = sim.handled_operations();
        handled.sort();
        assert_eq!(handled, ["argocd/api", "argocd/busy", "argocd/web"]);
    }

    /// An automated Application whose last sync to `D` failed: the controller does not sync `D`
    /// again by itself (argo-cd `alreadyAttemptedSync`), so ksail starts the sync, with the
    /// policy's settings, and says why.
    #[tokio::test]
    async fn when_no_automated_sync_comes_ksail_starts_one() {
        let d = digest('d');
        let (server, _sim) = argocd_server(20, 30, &d);
        let mut web = application("web", SYNC_URL, true, &["CreateNamespace=true"]);
        web["status"] = json!({"operationState": {
            "phase": "Failed", "message": "namespace late not found",
            "startedAt": "2020-01-01T00:00:00Z", "finishedAt": "2020-01-01T00:00:01Z",
            "syncResult": {"revision": d},
        }});
        server.put_object(web);
        let reporter = Recorder::default();

        let (summary, result) = attempt_with(
            &server,
            expected(&d),
            Duration::from_secs(20),
            false,
            &reporter,
        )
        .await;

        result.unwrap();
        assert_eq!(state_of(&summary, "web").state, ObjectState::Ready);
        let sent = patches(&server, "web");
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(
            operation_of(&sent[1]),
            json!({"initiatedBy": {"username": "ksail"}, "sync": {"syncOptions": ["CreateNamespace=true"], "prune": true, "revision": d}})
        );
        let said = format!(
            "application argocd/web: no automated sync started (Failed last sync attempt to [{d}]: namespace late not found); starting one"
        );
        assert!(reporter.lines().contains(&said), "{:?}", reporter.lines());
    }

    /// An automated Application already synced at `D`: the refresh finds nothing to do, and
    /// neither the controller nor ksail syncs it.
    #[tokio::test]
    async fn an_application_in_sync_is_not_synced_again() {
        let d = digest('d');
        let (server, sim) = argocd_server(20, 30, &d);
        let mut web = application("web", SYNC_URL, true, &[]);
        web["status"] = json!({"operationState": {
            "phase": "Succeeded", "message": "successfully synced",
            "startedAt": "2020-01-01T00:00:00Z", "finishedAt": "2020-01-01T00:00:01Z",
            "syncResult": {"revision": d},
        }});
        server.put_object(web);

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;

        result.unwrap();
        let report = state_of(&summary, "web");
        assert_eq!(report.state, ObjectState::Ready, "{report:?}");
        assert_eq!(patches(&server, "web"), [refresh_patch()]);
        assert!(sim.handled_operations().is_empty());
    }

    #[tokio::test]
    async fn no_applications_is_success_with_none_tracked() {
        let server = FakeApiServer::start(ServerOptions::argocd());
        let (summary, result) =
            attempt(&server, expected(&digest('d')), Duration::from_secs(5)).await;
        result.unwrap();
        assert_eq!(summary.applications, 0);
        assert!(summary.objects.is_empty());
        assert_eq!(summary.revision, None);
        assert!(!server.requests().iter().any(|r| r.is_write()));
    }

    /// Changes an Application right after ksail's refresh patch is written, before the answer
    /// reaches ksail, so the operation patch carries a stale resourceVersion.
    struct ChangeAfterRefresh {
        fired: AtomicBool,
        set_operation: bool,
    }

    impl Simulator for ChangeAfterRefresh {
        fn on_write(&self, cluster: &Cluster, event: &WriteEvent) {
            if event.by_simulator
                || event.kind == EventKind::Deleted
                || !event.is("argoproj.io", "applications")
                || event.object["metadata"]["annotations"][REFRESH_ANNOTATION].is_null()
                || self.fired.swap(true, Ordering::SeqCst)
            {
                return;
            }
            let name = event.object["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string();
            let set_operation = self.set_operation;
            cluster.mutate("argoproj.io", "applications", NAMESPACE, &name, |app| {
                app["metadata"]["labels"] = json!({"changed": "meanwhile"});
                if set_operation {
                    app["operation"] = json!({"initiatedBy": {"username": "someone"}, "sync": {}});
                }
            });
        }
    }

    /// A server whose Application `web` changes between ksail's refresh and its sync patch (an
    /// operation set meanwhile too, with `set_operation`), and a simulator serving `D`.
    fn changing_web(set_operation: bool) -> (FakeApiServer, std::sync::Arc<ArgoCd>, String) {
        let server = FakeApiServer::start(ServerOptions::argocd());
        let d = digest('d');
        server.add_simulator(ChangeAfterRefresh {
            fired: AtomicBool::new(false),
            set_operation,
        });
        let sim = ArgoCd::new(500, 50, &d);
        server.add_simulator(sim.clone());
        // Manual policy (synced with `--sync-manual`): ksail's own sync patch meets the change.
        server.put_object(application("web", SYNC_URL, false, &[]));
        (server, sim, d)
    }

    #[tokio::test]
    async fn a_conflict_on_the_sync_patch_reads_again_and_retries() {
        let (server, sim, d) = changing_web(false);

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;

        result.unwrap();
        assert_eq!(summary.revision.as_deref(), Some(d.as_str()));
        assert_eq!(methods(&server, "web"), ["PATCH", "PATCH", "GET", "PATCH"]);
        let sent = patches(&server, "web");
        let rv = |patch: &Value| {
            patch["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert_eq!(operation_of(&sent[1]), operation_of(&sent[2]));
        assert!(
            rv(&sent[2]) > rv(&sent[1]),
            "the retry uses the re-read version"
        );
        assert_eq!(sim.handled_operations(), ["argocd/web"]);
    }

    #[tokio::test]
    async fn after_a_conflict_an_operation_set_meanwhile_is_waited_for() {
        let (server, sim, d) = changing_web(true);

        let (_, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;

        result.unwrap();
        assert_eq!(methods(&server, "web"), ["PATCH", "PATCH", "GET"]);
        assert_eq!(sim.handled_operations(), ["argocd/web"]);
    }

    #[tokio::test]
    async fn the_revision_gate_applies_to_the_matching_application_only() {
        let (old, d) = (digest('a'), digest('d'));
        let (server, sim) = argocd_server(20, 30, &old);
        // Host case and a trailing `/` do not matter for the gate.
        server.put_object(application(
            "web",
            "oci://Registry.Local:5000/app/",
            true,
            &[],
        ));
        server.put_object(application("other", "oci://other.example/app", true, &[]));

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(2)).await;

        let (message, unfinished, total) = timed_out(result);
        assert_eq!(
            message,
            "timed out after 2s waiting for 1 of 2 objects: application argocd/web (waiting for revision sha256:dddddddddddd to be synced)"
        );
        assert_eq!(unfinished, ["argocd/web"]);
        assert_eq!(total, 2);
        let other = state_of(&summary, "other");
        assert_eq!(other.state, ObjectState::Ready);
        assert_eq!(other.revision.as_deref(), Some(old.as_str()));
        assert_eq!(state_of(&summary, "web").state, ObjectState::TimedOut);
        assert_eq!(summary.revision, None);

        // Once the tag resolves to D, the gated Application completes at it.
        sim.set_digest(&d);
        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;
        result.unwrap();
        assert_eq!(summary.revision.as_deref(), Some(d.as_str()));
        assert_eq!(
            state_of(&summary, "web").revision.as_deref(),
            Some(d.as_str())
        );
    }

    #[tokio::test]
    async fn a_stale_failed_operation_is_ignored_and_this_runs_failure_fails_fast() {
        let d = digest('d');
        let (server, sim) = argocd_server(20, 50, &d);
        sim.script_operation(
            "argocd/new",
            vec![OperationOutcome::Failed(
                "one or more objects failed to apply".into(),
            )],
        );
        let mut old = application("old", SYNC_URL, false, &[]);
        old["status"] = json!({
            "operationState": {"phase": "Failed", "message": "stale failure", "startedAt": "2020-01-01T00:00:00Z", "finishedAt": "2020-01-01T00:00:05Z"},
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Healthy"},
        });
        server.put_object(old);
        server.put_object(application("new", SYNC_URL, false, &[]));

        // A failure, not a timeout of the 30 s attempt: the failed operation ended it.
        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(30)).await;

        match result {
            Err(AttemptError::Failed { roots, blocked }) => {
                assert_eq!(
                    roots,
                    [crate::gitops::report::RootFailure {
                        name: "argocd/new".into(),
                        reason: "OperationState/Failed".into(),
                        message: "one or more objects failed to apply".into(),
                    }]
                );
                assert_eq!(blocked, 0);
            }
            other => panic!("expected a terminal failure, got {other:?}"),
        }
        assert_eq!(state_of(&summary, "old").state, ObjectState::Ready);
        assert_eq!(state_of(&summary, "new").state, ObjectState::Failed);
        assert_eq!(summary.revision, None);
    }

    #[tokio::test]
    async fn a_comparison_error_is_not_terminal() {
        let d = digest('d');
        let (server, sim) = argocd_server(20, 30, &d);
        sim.script_app(
            "argocd/web",
            vec![AppOutcome::ComparisonError(
                "rpc error: repository not accessible".into(),
            )],
        );
        server.put_object(application("web", SYNC_URL, false, &[]));

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(2)).await;

        assert_eq!(
            timed_out(result).0,
            "timed out after 2s waiting for 1 of 1 object: application argocd/web (ComparisonError: rpc error: repository not accessible)"
        );
        let web = state_of(&summary, "web");
        assert_eq!(web.state, ObjectState::TimedOut);
        assert_eq!(
            web.message.as_deref(),
            Some("ComparisonError: rpc error: repository not accessible")
        );
    }

    #[tokio::test]
    async fn the_deadline_during_the_trigger_is_a_timeout_naming_the_applications() {
        let server = FakeApiServer::start(ServerOptions::argocd());
        server.put_object(application("web", SYNC_URL, true, &[]));
        server.delay(Route::resource("applications"), Verb::Patch, 3_000);

        let (summary, result) =
            attempt(&server, expected(&digest('d')), Duration::from_secs(1)).await;

        let (message, unfinished, total) = timed_out(result);
        assert_eq!(
            message,
            "timed out after 1s waiting for 1 of 1 object: application argocd/web (refresh not requested yet)"
        );
        assert_eq!(unfinished, ["argocd/web"]);
        assert_eq!(total, 1);
        assert_eq!(state_of(&summary, "web").state, ObjectState::TimedOut);
    }

    #[tokio::test]
    async fn a_deleted_application_is_no_longer_tracked() {
        let d = digest('d');
        let (server, sim) = argocd_server(20, 30, &d);
        sim.script_operation("argocd/gone", vec![OperationOutcome::Never]);
        server.put_object(application("web", SYNC_URL, false, &[]));
        server.put_object(application("gone", SYNC_URL, false, &[]));
        let cluster = server.cluster().clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            cluster.delete("argoproj.io", "applications", NAMESPACE, "gone");
        });

        let (summary, result) = attempt(&server, expected(&d), Duration::from_secs(20)).await;

        result.unwrap();
        assert_eq!(summary.applications, 1);
        assert_eq!(summary.objects.len(), 1);
        assert_eq!(summary.objects[0].object.name, "web");
    }
}
