//! One Flux attempt of `workload reconcile` (reconcile.md#flux): find the sync source, classify
//! every Kustomization in all namespaces, annotate the tracked ones with this run's token, then
//! follow watch events until each tracked object is complete, failed or blocked, or the attempt's
//! deadline passes.
//!
//! The rules live in `readiness` (pure); this module only moves objects from the watches into
//! those rules and acts on the verdicts.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::resources::{self, REQUESTED_AT_ANNOTATION};
use super::{
    Classification, Excludes, FluxKind, FluxObject, KustomizationContext, ObjectKey,
    RETRIED_REASONS, SourceState, SourceVerdict, blocked_by, classify, dependency_edges,
    digest_mismatch_failure, kustomization_verdict, source_verdict, unmatched_exclude_warning,
};
use crate::gitops::attempt::{
    self, Deadline, Progress, Reachability, Unfinished, Watches, failure as failure_of, kube_error,
};
use crate::gitops::expected::{Expected, Lookup};
use crate::gitops::report::{AttemptError, Finished, ObjectReport, ObjectSpinners, ObjectState};
use crate::gitops::verdict::{Verdict, collapse_whitespace, reason_and_message};
use crate::gitops::watch::{self, Update};
use crate::k8s::{K8sError, with_timeout};
use crate::output::counted;
use crate::progress::Reporter;

/// The word of a complete object's progress line (`kustomization apps/web: ready, …`).
const READY: &str = "ready";
/// The status the timeout message quotes for an object with no status seen yet.
const NOT_HANDLED: &str = "waiting for the controller to handle the request";
/// At most this many trigger patches are in flight at once.
const PATCH_CONCURRENCY: usize = 16;
/// kustomize-controller's reason for a dependency that is not ready (fluxcd/pkg `apis/meta`).
const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
/// The pauses before the re-requests after a retried failure: two, so a retried failure ends
/// the run when three handled requests of this run ended in it.
const REREQUEST_DELAYS: [std::time::Duration; 2] = [
    std::time::Duration::from_secs(1),
    std::time::Duration::from_secs(2),
];

/// The Flux APIs this attempt uses, at the versions the server prefers.
#[derive(Debug, Clone)]
pub struct FluxApis {
    pub kustomization: ApiResource,
    /// Served source kinds among OCIRepository, GitRepository and Bucket.
    pub sources: Vec<ApiResource>,
    pub flux_instance: Option<ApiResource>,
}

/// Everything one attempt needs.
pub struct FluxAttempt<'a> {
    pub client: &'a kube::Client,
    pub apis: &'a FluxApis,
    pub token: &'a str,
    pub expected: Expected,
    /// For the one re-lookup of `D` when the source serves another digest.
    pub lookup: Option<&'a Lookup>,
    pub excludes: &'a Excludes,
    pub reporter: &'a dyn Reporter,
    pub deadline: Deadline,
}

/// What the attempt saw, whatever its outcome (for the summary line and the JSON document).
#[derive(Debug, Default)]
pub struct FluxSummary {
    pub tracked: usize,
    pub excluded: usize,
    pub suspended: usize,
    /// The revision the sync source serves once complete.
    pub revision: Option<String>,
    pub objects: Vec<ObjectReport>,
    /// `ns/name` → `blocked by …`, for the diagnostics report.
    pub blocked: BTreeMap<String, String>,
    /// Namespace of the GitOps controllers (`flux-system`, or the FluxInstance's).
    pub gitops_namespace: String,
}

/// A tracked object's progress within the attempt.
#[derive(Debug, Clone)]
struct Tracked {
    /// Created during the attempt: the token rule does not apply.
    created: bool,
    /// The request this object must have handled: the run's token, or the token of the last
    /// re-request ksail sent it.
    token: String,
    /// Re-requests sent after a retried failure ([`RETRIED_REASONS`]).
    retries: u32,
    /// Tokens issued to this object after the run's own (retries and dependency wake-ups).
    rerequests: u32,
    /// When the pending re-request is due.
    rerequest_at: Option<Instant>,
    progress: Progress,
}

impl Tracked {
    /// Created during the attempt and not asked since: the token rule does not apply to it.
    fn never_asked(&self) -> bool {
        self.created && self.rerequests == 0
    }

    /// Ask this object again at `at`, under a fresh token derived from the run's.
    fn rerequest(&mut self, run_token: &str, at: Instant) {
        self.rerequests += 1;
        self.token = format!("{run_token}.{}", self.rerequests);
        self.rerequest_at = Some(at);
    }

    fn new(created: bool, token: &str) -> Self {
        Tracked {
            created,
            token: token.to_string(),
            retries: 0,
            rerequests: 0,
            rerequest_at: None,
            progress: Progress::default(),
        }
    }
}

/// The attempt's view of the cluster, fed by the watches.
struct State {
    started: Instant,
    /// The run's token, which every tracked object starts with.
    token: String,
    kustomizations: BTreeMap<ObjectKey, FluxObject>,
    sources: BTreeMap<ObjectKey, FluxObject>,
    tracked: BTreeMap<ObjectKey, Tracked>,
    skipped: BTreeMap<ObjectKey, ObjectState>,
    sync_source: Option<ObjectKey>,
    source_progress: Progress,
    relooked: bool,
}

pub async fn reconcile(attempt: FluxAttempt<'_>) -> (FluxSummary, Result<(), AttemptError>) {
    let mut summary = FluxSummary {
        gitops_namespace: resources::NAMESPACE.to_string(),
        ..FluxSummary::default()
    };
    let result = run(attempt, &mut summary).await;
    (summary, result)
}

async fn run(mut attempt: FluxAttempt<'_>, summary: &mut FluxSummary) -> Result<(), AttemptError> {
    let reporter = attempt.reporter;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut kinds: Vec<&ApiResource> = vec![&attempt.apis.kustomization];
    kinds.extend(attempt.apis.sources.iter());
    let _watches = Watches(
        kinds
            .iter()
            .map(|resource| watch::spawn(attempt.client.clone(), (*resource).clone(), tx.clone()))
            .collect(),
    );
    drop(tx);

    let instance_sync = attempt
        .deadline
        .bound(sync_from_instance(&attempt))
        .await??;
    if let Some((namespace, _)) = &instance_sync {
        summary.gitops_namespace = namespace.clone();
    }

    let mut state = State {
        started: Instant::now(),
        token: attempt.token.to_string(),
        kustomizations: BTreeMap::new(),
        sources: BTreeMap::new(),
        tracked: BTreeMap::new(),
        skipped: BTreeMap::new(),
        sync_source: None,
        source_progress: Progress::default(),
        relooked: false,
    };

    // Initial snapshots of every watched kind.
    let mut pending: HashSet<String> = kinds.iter().map(|r| r.kind.clone()).collect();
    while !pending.is_empty() {
        let Some(received) = attempt.deadline.before(rx.recv()).await else {
            return Err(timed_out(&attempt, &state, summary));
        };
        let Some((kind, update)) = received else {
            break;
        };
        match update {
            // A source kind the group does not serve (discovery lists groups, not resources)
            // simply has no objects.
            Update::ListFailed(error)
                if error.is_not_found() && kind != attempt.apis.kustomization.kind =>
            {
                pending.remove(&kind);
            }
            Update::ListFailed(error) => return Err(kube_error(error)),
            Update::Snapshot(objects) => {
                pending.remove(&kind);
                replace_kind(&mut state, &kind, &objects);
            }
            other => apply_event(&mut state, &kind, other),
        }
    }

    state.sync_source = choose_sync_source(instance_sync, &attempt.apis.sources, &state);
    classify_initial(&mut state, attempt.excludes, reporter);
    summary.tracked = state.tracked.len();
    summary.excluded = count(&state, ObjectState::Excluded);
    summary.suspended = count(&state, ObjectState::Suspended);
    reporter.info(&header_line(&state, summary));

    attempt
        .deadline
        .bound(trigger(&attempt, &mut state))
        .await??;

    // Each round evaluates only what the updates since the last round touched, after draining
    // every update already queued: a burst of events costs one pass, not one pass per event.
    let mut touched = Touched::Everything;
    let mut spinners = ObjectSpinners::new(reporter);
    let mut reachability = Reachability::default();
    loop {
        evaluate(&mut attempt, &mut state, &touched).await;
        spinners.sync(spinner_view(&state));
        if all_done(&state) {
            break;
        }
        let due = next_rerequest(&state);
        let Some(wake) = attempt.deadline.before(next_wake(&mut rx, due)).await else {
            return Err(timed_out(&attempt, &state, summary));
        };
        let (kind, update) = match wake {
            Wake::Update(Some((kind, update))) => {
                match reachability.observe(&kind, update, reporter)? {
                    Some(update) => (kind, update),
                    None => continue,
                }
            }
            Wake::Update(None) => break,
            Wake::RerequestDue => {
                attempt
                    .deadline
                    .bound(send_due_rerequests(&attempt, &mut state))
                    .await??;
                touched = Touched::Some(Default::default());
                continue;
            }
        };
        touched = apply_update(&mut state, &kind, update, attempt.excludes, reporter);
        while let Ok((kind, update)) = rx.try_recv() {
            let Some(update) = reachability.observe(&kind, update, reporter)? else {
                continue;
            };
            let more = apply_update(&mut state, &kind, update, attempt.excludes, reporter);
            touched.merge(more);
        }
    }
    fill_summary(&state, summary);
    outcome(&state)
}

/// `spec.sync` of the FluxInstance `flux-system/flux`: the sync source's namespace and
/// (kind, name), or `None` when there is no FluxInstance.
async fn sync_from_instance(
    attempt: &FluxAttempt<'_>,
) -> Result<Option<(String, ObjectKey)>, AttemptError> {
    let Some(resource) = &attempt.apis.flux_instance else {
        return Ok(None);
    };
    let (namespace, name) = (resources::NAMESPACE, resources::INSTANCE_NAME);
    let api: Api<DynamicObject> = Api::namespaced_with(attempt.client.clone(), namespace, resource);
    let instance = match with_timeout(api.get(name)).await {
        Ok(instance) => instance,
        Err(error) if error.is_not_found() => return Ok(None),
        Err(error) => return Err(kube_error(error)),
    };
    let sync = &instance.data["spec"]["sync"];
    let kind = sync["kind"]
        .as_str()
        .and_then(FluxKind::from_api_kind)
        .unwrap_or(FluxKind::OciRepository);
    let source_name = sync["name"].as_str().unwrap_or(namespace).to_string();
    Ok(Some((
        namespace.to_string(),
        ObjectKey::new(kind, namespace, &source_name),
    )))
}

fn choose_sync_source(
    instance_sync: Option<(String, ObjectKey)>,
    served: &[ApiResource],
    state: &State,
) -> Option<ObjectKey> {
    if let Some((_, key)) = instance_sync {
        return Some(key);
    }
    let (namespace, name) = (resources::NAMESPACE, resources::SYNC_NAME);
    [FluxKind::OciRepository, FluxKind::GitRepository]
        .into_iter()
        .filter(|kind| served.iter().any(|r| r.kind == kind.api_kind()))
        .map(|kind| ObjectKey::new(kind, namespace, name))
        .find(|key| state.sources.contains_key(key))
}

fn classify_initial(state: &mut State, excludes: &Excludes, reporter: &dyn Reporter) {
    if state.sync_source.is_none() {
        reporter.warn(&format!(
            "no Flux sync source found ({}/{}); waiting for Kustomizations only",
            resources::NAMESPACE,
            resources::SYNC_NAME
        ));
    }
    let keys: Vec<ObjectKey> = state.kustomizations.keys().cloned().collect();
    for key in &keys {
        admit(state, key, excludes, false);
    }
    for entry in excludes.unmatched(keys.iter()) {
        reporter.warn(&unmatched_exclude_warning(&entry));
    }
}

/// Classify one Kustomization and start tracking it when it qualifies.
fn admit(state: &mut State, key: &ObjectKey, excludes: &Excludes, created: bool) {
    let Some(object) = state.kustomizations.get(key) else {
        return;
    };
    match classify(object, excludes) {
        Classification::Tracked => {
            let tracked = Tracked::new(created, &state.token);
            state.tracked.insert(key.clone(), tracked);
        }
        Classification::Excluded => {
            state.skipped.insert(key.clone(), ObjectState::Excluded);
        }
        Classification::Suspended => {
            state.skipped.insert(key.clone(), ObjectState::Suspended);
        }
    }
}

/// After the initial list: Kustomizations that appeared are classified and tracked without the
/// token rule; tracked ones that disappeared are dropped.
fn track_new_and_drop_deleted(state: &mut State, excludes: &Excludes, reporter: &dyn Reporter) {
    let new: Vec<ObjectKey> = state
        .kustomizations
        .keys()
        .filter(|key| !state.tracked.contains_key(*key) && !state.skipped.contains_key(*key))
        .cloned()
        .collect();
    for key in new {
        admit(state, &key, excludes, true);
        tracing::debug!("{key}: created during the attempt");
    }
    let gone: Vec<ObjectKey> = state
        .tracked
        .iter()
        .filter(|(key, tracked)| {
            tracked.progress.done.is_none() && !state.kustomizations.contains_key(*key)
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in gone {
        state.tracked.remove(&key);
        reporter.info(&format!("{key}: deleted, no longer tracked"));
    }
}

/// Which tracked objects an update may have changed.
enum Touched {
    Some(std::collections::BTreeSet<ObjectKey>),
    Everything,
}

impl Touched {
    fn merge(&mut self, other: Touched) {
        match (&mut *self, other) {
            (Touched::Everything, _) => {}
            (_, Touched::Everything) => *self = Touched::Everything,
            (Touched::Some(keys), Touched::Some(more)) => keys.extend(more),
        }
    }

    fn includes(&self, key: &ObjectKey) -> bool {
        match self {
            Touched::Everything => true,
            Touched::Some(keys) => keys.contains(key),
        }
    }
}

/// Apply one watch update after the initial lists. A Kustomization event touches only that
/// object (tracking it if it is new, dropping it if it was deleted); a source event or a relist
/// touches everything, because sources gate every Kustomization that uses them.
fn apply_update(
    state: &mut State,
    kind: &str,
    update: Update,
    excludes: &Excludes,
    reporter: &dyn Reporter,
) -> Touched {
    let is_kustomization = FluxKind::from_api_kind(kind) == Some(FluxKind::Kustomization);
    match update {
        Update::ListFailed(error) => {
            tracing::debug!("relist of {kind} failed: {error}");
            Touched::Some(Default::default())
        }
        Update::Snapshot(objects) => {
            replace_kind(state, kind, &objects);
            track_new_and_drop_deleted(state, excludes, reporter);
            Touched::Everything
        }
        update if is_kustomization => {
            let key = match &update {
                Update::Upsert(object) | Update::Deleted(object) => {
                    FluxObject::parse_as(FluxKind::Kustomization, object)
                        .ok()
                        .map(|object| object.key)
                }
                _ => None,
            };
            apply_event(state, kind, update);
            let Some(key) = key else {
                return Touched::Some(Default::default());
            };
            let known = state.tracked.contains_key(&key) || state.skipped.contains_key(&key);
            if state.kustomizations.contains_key(&key) && !known {
                admit(state, &key, excludes, true);
                tracing::debug!("{key}: created during the attempt");
                // A new object may depend on one that already failed.
                return Touched::Everything;
            } else if !state.kustomizations.contains_key(&key)
                && state
                    .tracked
                    .get(&key)
                    .is_some_and(|t| t.progress.done.is_none())
            {
                state.tracked.remove(&key);
                reporter.info(&format!("{key}: deleted, no longer tracked"));
            }
            Touched::Some([key].into())
        }
        update => {
            apply_event(state, kind, update);
            Touched::Everything
        }
    }
}

fn replace_kind(state: &mut State, kind: &str, objects: &[Value]) {
    let Some(flux_kind) = FluxKind::from_api_kind(kind) else {
        return;
    };
    let parsed = objects
        .iter()
        .filter_map(|object| FluxObject::parse_as(flux_kind, object).ok())
        .map(|object| (object.key.clone(), object));
    if flux_kind == FluxKind::Kustomization {
        state.kustomizations = parsed.collect();
    } else {
        state.sources.retain(|key, _| key.kind != flux_kind);
        state.sources.extend(parsed);
    }
}

fn apply_event(state: &mut State, kind: &str, update: Update) {
    let Some(flux_kind) = FluxKind::from_api_kind(kind) else {
        return;
    };
    let map = if flux_kind == FluxKind::Kustomization {
        &mut state.kustomizations
    } else {
        &mut state.sources
    };
    match update {
        Update::Upsert(object) => {
            if let Ok(object) = FluxObject::parse_as(flux_kind, &object) {
                map.insert(object.key.clone(), object);
            }
        }
        Update::Deleted(object) => {
            if let Ok(object) = FluxObject::parse_as(flux_kind, &object) {
                map.remove(&object.key);
            }
        }
        Update::Snapshot(_) | Update::ListFailed(_) => {}
    }
}

/// Annotate the sync source, then every tracked Kustomization, with the token (at most 16 in
/// flight). Objects that already carry it are left alone; a 404 drops the object.
async fn trigger(attempt: &FluxAttempt<'_>, state: &mut State) -> Result<(), AttemptError> {
    if let Some(key) = state.sync_source.clone()
        && let Some(source) = state.sources.get(&key)
        && !carries_token(source, attempt.token)
    {
        let resource = attempt
            .apis
            .sources
            .iter()
            .find(|r| r.kind == key.kind.api_kind());
        if let Some(resource) = resource {
            match request(attempt, resource, &key, attempt.token).await {
                Ok(()) => {}
                Err(error) if error.is_not_found() => state.sync_source = None,
                Err(error) => return Err(kube_error(error)),
            }
        }
    }
    let targets: Vec<ObjectKey> = state
        .tracked
        .keys()
        .filter(|key| {
            state
                .kustomizations
                .get(*key)
                .is_some_and(|k| !carries_token(k, attempt.token))
        })
        .cloned()
        .collect();
    let results: Vec<(ObjectKey, Result<(), K8sError>)> = futures_util::stream::iter(targets)
        .map(|key| async move {
            let result = request(attempt, &attempt.apis.kustomization, &key, attempt.token).await;
            (key, result)
        })
        .buffer_unordered(PATCH_CONCURRENCY)
        .collect()
        .await;
    for (key, result) in results {
        requested(state, &key, result)?;
    }
    Ok(())
}

/// The answer to a request of a Kustomization: a 404 drops it (it was deleted meanwhile); any
/// other error ends the attempt.
fn requested(
    state: &mut State,
    key: &ObjectKey,
    result: Result<(), K8sError>,
) -> Result<(), AttemptError> {
    match result {
        Ok(()) => Ok(()),
        Err(error) if error.is_not_found() => {
            state.tracked.remove(key);
            state.kustomizations.remove(key);
            Ok(())
        }
        Err(error) => Err(kube_error(error)),
    }
}

fn carries_token(object: &FluxObject, token: &str) -> bool {
    object
        .annotations
        .get(REQUESTED_AT_ANNOTATION)
        .is_some_and(|value| value == token)
}

/// The merge patch `{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"<token>"}}}`.
pub fn request_patch(token: &str) -> Value {
    json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: token}}})
}

async fn request(
    attempt: &FluxAttempt<'_>,
    resource: &ApiResource,
    key: &ObjectKey,
    token: &str,
) -> Result<(), K8sError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(attempt.client.clone(), &key.namespace, resource);
    with_timeout(api.patch(
        &key.name,
        &PatchParams::default(),
        &Patch::Merge(request_patch(token)),
    ))
    .await
    .map(|_| ())
}

/// Evaluate the unfinished objects an update touched against their latest state and print
/// final lines.
async fn evaluate(attempt: &mut FluxAttempt<'_>, state: &mut State, touched: &Touched) {
    let reporter = attempt.reporter;
    let source_was_done = state.source_progress.done.is_some();
    evaluate_source(attempt, state).await;
    let source_complete = matches!(
        state.source_progress.done.as_ref().map(|d| d.state),
        Some(ObjectState::Ready)
    );
    // The sync source finishing changes the verdict of everything it gates.
    let everything = !source_was_done && state.source_progress.done.is_some();
    let mut failed_now = everything;
    let keys: Vec<ObjectKey> = state
        .tracked
        .iter()
        .filter(|(key, t)| t.progress.done.is_none() && (everything || touched.includes(key)))
        .map(|(key, _)| key.clone())
        .collect();
    for key in keys {
        let Some(object) = state.kustomizations.get(&key) else {
            continue;
        };
        let source = object
            .source_ref
            .as_ref()
            .and_then(|source_ref| source_ref.key())
            .and_then(|source_key| {
                let is_sync = state.sync_source.as_ref() == Some(&source_key);
                state
                    .sources
                    .get(&source_key)
                    .map(|source| SourceState::of(source, is_sync, source_complete))
            });
        let Some(tracked) = state.tracked.get(&key) else {
            continue;
        };
        let context = KustomizationContext {
            token: &tracked.token,
            // A re-request must be seen handled, even by an object created during the attempt.
            created_during_attempt: tracked.never_asked(),
            source,
        };
        let verdict = kustomization_verdict(object, &context);
        let verdict = match state.tracked.get_mut(&key) {
            Some(tracked) => tolerate_retried(tracked, &key, verdict, &state.token, reporter),
            None => verdict,
        };
        failed_now |= matches!(verdict, Verdict::Failed { .. });
        let after = state.started.elapsed();
        if let Some(tracked) = state.tracked.get_mut(&key) {
            tracked
                .progress
                .settle(reporter, &key.to_string(), READY, verdict, after);
        }
    }
    // Blocking only changes when a failure appears or the set of objects changed.
    if failed_now || matches!(touched, Touched::Everything) {
        mark_blocked(state, reporter);
    }
    wake_dependents(state, reporter);
}

/// kustomize-controller does not watch a Kustomization's dependencies: one that found a
/// dependency not ready (`DependencyNotReady`) looks again only after `--requeue-dependency` (30 s
/// by default), so every link of a `dependsOn` chain would cost up to that long. A tracked
/// Kustomization whose answer to ksail's latest request is `DependencyNotReady`, while every one
/// of its tracked dependencies is ready for this run, is asked again at once under a fresh token.
/// Checked on every pass, not only when a dependency finishes: the dependent's answer may arrive
/// after its dependency became ready (it read a stale dependency).
fn wake_dependents(state: &mut State, reporter: &dyn Reporter) {
    let is_ready = |state: &State, key: &ObjectKey| {
        state.tracked.get(key).is_none_or(|tracked| {
            tracked
                .progress
                .done
                .as_ref()
                .is_some_and(|done| done.state == ObjectState::Ready)
        })
    };
    let waiting: Vec<ObjectKey> = state
        .tracked
        .iter()
        .filter(|(_, tracked)| tracked.progress.done.is_none() && tracked.rerequest_at.is_none())
        .filter_map(|(key, tracked)| {
            let object = state.kustomizations.get(key)?;
            let answered = object.handled_request(&tracked.token) || tracked.never_asked();
            let waits_on_dependency = object
                .condition("Ready")
                .is_some_and(|ready| ready.reason == DEPENDENCY_NOT_READY);
            let has_dependencies = !object.depends_on.is_empty();
            let all_ready = object.depends_on.iter().all(|dep| is_ready(state, dep));
            (answered && waits_on_dependency && has_dependencies && all_ready).then(|| key.clone())
        })
        .collect();
    let now = Instant::now();
    for key in waiting {
        if let Some(tracked) = state.tracked.get_mut(&key) {
            tracked.rerequest(&state.token, now);
            reporter.verbose(&format!(
                "{key}: its dependencies are ready; requesting it again now"
            ));
        }
    }
}

async fn evaluate_source(attempt: &mut FluxAttempt<'_>, state: &mut State) {
    let Some(key) = state.sync_source.clone() else {
        return;
    };
    if state.source_progress.done.is_some() {
        return;
    }
    let Some(source) = state.sources.get(&key) else {
        return;
    };
    let mut verdict = source_verdict(source, attempt.token, attempt.expected.digest());
    if let SourceVerdict::DigestMismatch { .. } = &verdict
        && !state.relooked
        && let Some(lookup) = attempt.lookup
    {
        // A push may have happened meanwhile: look D up once more before failing.
        state.relooked = true;
        if let Ok(expected) = lookup.lookup(attempt.reporter).await {
            attempt.expected = expected;
            verdict = source_verdict(source, attempt.token, attempt.expected.digest());
        }
    }
    let verdict = match verdict {
        SourceVerdict::DigestMismatch {
            served_revision, ..
        } => match &attempt.expected {
            Expected::Digest { host_ref, digest } => {
                digest_mismatch_failure(&served_revision, host_ref, digest)
            }
            Expected::Unchecked => Verdict::Waiting {
                status: format!("serves {served_revision}"),
            },
        },
        other => other.into_verdict().unwrap_or(Verdict::Waiting {
            status: "waiting for the source".to_string(),
        }),
    };
    let after = state.started.elapsed();
    state
        .source_progress
        .settle(attempt.reporter, &key.to_string(), READY, verdict, after);
}

/// Before the wait is woken again: the next watch update, or a re-request falling due.
enum Wake {
    Update(Option<(String, Update)>),
    RerequestDue,
}

async fn next_wake(
    rx: &mut mpsc::UnboundedReceiver<(String, Update)>,
    due: Option<Instant>,
) -> Wake {
    let Some(due) = due else {
        return Wake::Update(rx.recv().await);
    };
    tokio::select! {
        received = rx.recv() => Wake::Update(received),
        () = tokio::time::sleep_until(due.into()) => Wake::RerequestDue,
    }
}

fn next_rerequest(state: &State) -> Option<Instant> {
    state
        .tracked
        .values()
        .filter(|tracked| tracked.progress.done.is_none())
        .filter_map(|tracked| tracked.rerequest_at)
        .min()
}

/// kustomize-controller retries an apply failure itself at `spec.retryInterval` (its
/// `Reconcile` returns `RequeueAfter: GetRetryInterval()`), so one `ReconciliationFailed` may be a
/// moment's conflict. Instead of waiting for that interval, ksail asks again, after
/// [`REREQUEST_DELAYS`], with a fresh token; the failure ends the run when every handled request
/// of this run ended in it.
fn tolerate_retried(
    tracked: &mut Tracked,
    key: &ObjectKey,
    verdict: Verdict,
    run_token: &str,
    reporter: &dyn Reporter,
) -> Verdict {
    let Verdict::Failed { reason, message } = verdict else {
        return verdict;
    };
    let Some(&delay) = REREQUEST_DELAYS.get(tracked.retries as usize) else {
        return Verdict::Failed { reason, message };
    };
    if !RETRIED_REASONS.contains(&reason.as_str()) {
        return Verdict::Failed { reason, message };
    }
    tracked.retries += 1;
    tracked.rerequest(run_token, Instant::now() + delay);
    let text = reason_and_message(&reason, &collapse_whitespace(&message));
    reporter.verbose(&format!(
        "{key}: {text}; requesting again in {}s (request {} of {})",
        delay.as_secs(),
        tracked.retries + 1,
        REREQUEST_DELAYS.len() + 1,
    ));
    Verdict::Waiting {
        status: format!("{text} (asking again)"),
    }
}

/// Send the re-requests that fell due; a 404 drops the object like the first request does.
async fn send_due_rerequests(
    attempt: &FluxAttempt<'_>,
    state: &mut State,
) -> Result<(), AttemptError> {
    let now = Instant::now();
    let due: Vec<(ObjectKey, String)> = state
        .tracked
        .iter_mut()
        .filter(|(_, tracked)| tracked.rerequest_at.is_some_and(|at| at <= now))
        .map(|(key, tracked)| {
            tracked.rerequest_at = None;
            (key.clone(), tracked.token.clone())
        })
        .collect();
    for (key, token) in due {
        let result = request(attempt, &attempt.apis.kustomization, &key, &token).await;
        requested(state, &key, result)?;
    }
    Ok(())
}

/// Dependents of failed objects (directly, transitively, or through the failed sync source)
/// stop waiting and count as failures.
fn mark_blocked(state: &mut State, reporter: &dyn Reporter) {
    let mut failed: Vec<ObjectKey> = state
        .tracked
        .iter()
        .filter(|(_, t)| {
            t.progress
                .done
                .as_ref()
                .is_some_and(|d| d.state == ObjectState::Failed)
        })
        .map(|(key, _)| key.clone())
        .collect();
    let source_failed = state
        .source_progress
        .done
        .as_ref()
        .is_some_and(|d| d.state == ObjectState::Failed);
    if source_failed && let Some(key) = &state.sync_source {
        failed.push(key.clone());
    }
    if failed.is_empty() {
        return;
    }
    let all: Vec<FluxObject> = state.kustomizations.values().cloned().collect();
    let edges = dependency_edges(&all, state.sync_source.as_ref());
    let unfinished: HashSet<ObjectKey> = state
        .tracked
        .iter()
        .filter(|(_, t)| t.progress.done.is_none())
        .map(|(key, _)| key.clone())
        .collect();
    let after = state.started.elapsed();
    for (key, blocker) in blocked_by(&failed, &edges, &unfinished) {
        let Some(tracked) = state.tracked.get_mut(&key) else {
            continue;
        };
        if tracked.progress.done.is_some() {
            continue;
        }
        let label = blocker.blocker_label();
        reporter.info(&format!("{key}: blocked by {label}"));
        tracked.progress.done = Some(Finished {
            state: ObjectState::Blocked,
            reason: None,
            message: Some(format!("blocked by {label}")),
            revision: None,
            after,
        });
    }
}

/// `(name, waiting status, finished)` of the sync source and every tracked Kustomization.
fn spinner_view(state: &State) -> impl Iterator<Item = (String, Option<&str>, bool)> {
    let source = state.sync_source.iter().map(|key| {
        let progress = &state.source_progress;
        (
            key.to_string(),
            progress.last_status.as_deref(),
            progress.done.is_some(),
        )
    });
    let tracked = state.tracked.iter().map(|(key, tracked)| {
        (
            key.to_string(),
            tracked.progress.last_status.as_deref(),
            tracked.progress.done.is_some(),
        )
    });
    source.chain(tracked)
}

fn all_done(state: &State) -> bool {
    let source_done = state.sync_source.is_none() || state.source_progress.done.is_some();
    source_done && state.tracked.values().all(|t| t.progress.done.is_some())
}

fn count(state: &State, wanted: ObjectState) -> usize {
    state.skipped.values().filter(|s| **s == wanted).count()
}

fn header_line(state: &State, summary: &FluxSummary) -> String {
    let source = match &state.sync_source {
        Some(key) => format!("source {} {}", key.kind.api_kind(), key.namespaced_name()),
        None => "no sync source".to_string(),
    };
    format!(
        "reconcile: Flux; {source}; tracking {}{}",
        counted(summary.tracked, "Kustomization", "Kustomizations"),
        skipped_note(summary)
    )
}

/// ` (1 excluded, 1 suspended)`, or nothing when none were skipped.
pub fn skipped_note(summary: &FluxSummary) -> String {
    let mut parts = Vec::new();
    if summary.excluded > 0 {
        parts.push(format!("{} excluded", summary.excluded));
    }
    if summary.suspended > 0 {
        parts.push(format!("{} suspended", summary.suspended));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}

fn fill_summary(state: &State, summary: &mut FluxSummary) {
    summary.tracked = state.tracked.len();
    summary.revision = state
        .source_progress
        .done
        .as_ref()
        .and_then(|done| done.revision.clone());
    let mut objects = Vec::new();
    if let Some(key) = &state.sync_source {
        objects.push(report(key, &state.source_progress));
    }
    for (key, tracked) in &state.tracked {
        objects.push(report(key, &tracked.progress));
        if let Some(done) = &tracked.progress.done
            && done.state == ObjectState::Blocked
        {
            summary.blocked.insert(
                key.namespaced_name(),
                done.message
                    .clone()
                    .unwrap_or_default()
                    .trim_start_matches("blocked by ")
                    .to_string(),
            );
        }
    }
    for (key, skipped) in &state.skipped {
        objects.push(ObjectReport::untracked(key.object_name(), *skipped, None));
    }
    summary.objects = objects;
}

fn report(key: &ObjectKey, progress: &Progress) -> ObjectReport {
    ObjectReport::tracked(
        key.object_name(),
        progress.done.as_ref(),
        progress.last_status.as_ref(),
    )
}

/// Success, or the failures: roots are the objects that failed themselves; blocked ones count.
fn outcome(state: &State) -> Result<(), AttemptError> {
    let failure = failure(state);
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

fn failure(state: &State) -> Option<AttemptError> {
    let source = state
        .sync_source
        .iter()
        .map(|key| (key.namespaced_name(), &state.source_progress));
    let tracked = state
        .tracked
        .iter()
        .map(|(key, tracked)| (key.namespaced_name(), &tracked.progress));
    failure_of(source.chain(tracked))
}

/// The deadline passed: a terminal failure seen meanwhile decides (not retryable); otherwise the
/// attempt timed out, naming up to five unfinished objects.
fn timed_out(attempt: &FluxAttempt<'_>, state: &State, summary: &mut FluxSummary) -> AttemptError {
    fill_summary(state, summary);
    if let Some(failure) = failure(state) {
        return failure;
    }
    let source = state
        .sync_source
        .iter()
        .map(|key| (key, &state.source_progress));
    let tracked = state
        .tracked
        .iter()
        .map(|(key, tracked)| (key, &tracked.progress));
    let unfinished: Vec<Unfinished> = source
        .chain(tracked)
        .filter(|(_, progress)| !progress.is_done())
        .map(|(key, progress)| Unfinished {
            label: key.to_string(),
            status: progress.status_or(NOT_HANDLED),
            name: key.namespaced_name(),
        })
        .collect();
    let total = state.tracked.len() + usize::from(state.sync_source.is_some());
    attempt::timed_out(attempt.deadline.timeout(), unfinished, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_patch_is_the_documented_merge_patch() {
        assert_eq!(
            serde_json::to_string(&request_patch("2026-05-01T10:00:00.123456789Z")).unwrap(),
            r#"{"metadata":{"annotations":{"reconcile.fluxcd.io/requestedAt":"2026-05-01T10:00:00.123456789Z"}}}"#
        );
    }

    #[test]
    fn skipped_counts_are_shown_only_when_present() {
        let mut summary = FluxSummary::default();
        assert_eq!(skipped_note(&summary), "");
        summary.excluded = 1;
        summary.suspended = 2;
        assert_eq!(skipped_note(&summary), " (1 excluded, 2 suspended)");
    }
}
