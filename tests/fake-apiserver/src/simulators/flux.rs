//! Flux source-controller (OCIRepository, GitRepository) and kustomize-controller stand-ins.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{
    DigestResolver, KUSTOMIZE_GROUP, Pending, SOURCE_GROUP, Script, condition_state, fixed_digest,
    flux_needs_reconcile, generation, key_of, normalize_digest, remove_condition, requested_at,
    set_condition, suspended,
};
use crate::cluster::{Cluster, Simulator};
use crate::store::{EventKind, WriteEvent};
use crate::util::{now_rfc3339, str_at};

const SOURCE_PLURALS: [&str; 2] = ["ocirepositories", "gitrepositories"];

/// What the source controller does with the next request for an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceOutcome {
    /// Resolve the tag (resolver or fixed digest) and become `Ready=True` `Succeeded`.
    Ready,
    /// Serve this digest instead of the resolved one (`sha256:<hex>` or bare hex).
    Digest(String),
    /// `Ready=False` with this reason and message.
    NotReady { reason: String, message: String },
    /// `Stalled=True` (and `Ready=False`) with this reason and message.
    Stalled { reason: String, message: String },
    /// Never handle the request (no status change at all).
    Never,
}

struct SourceInner {
    resolver: Option<DigestResolver>,
    script: Script<SourceOutcome>,
    pending: Pending,
    handled: Vec<String>,
}

/// Flux source-controller: on create, a new generation or a new `requestedAt`, sets
/// `status.artifact.revision` to `<tag>@sha256:<digest>`, `lastHandledReconcileAt`,
/// `observedGeneration` and `Ready=True` (`Succeeded`), or a scripted failure.
pub struct FluxSource {
    delay_ms: u64,
    inner: Mutex<SourceInner>,
}

impl FluxSource {
    /// A source controller that handles each request after `delay_ms`, serving `digest`.
    pub fn new(delay_ms: u64, digest: &str) -> Arc<Self> {
        Self::with_resolver(delay_ms, fixed_digest(digest))
    }

    /// A source controller whose digest comes from `resolver` (may do a real registry `HEAD`).
    pub fn with_resolver(delay_ms: u64, resolver: DigestResolver) -> Arc<Self> {
        Arc::new(Self {
            delay_ms,
            inner: Mutex::new(SourceInner {
                resolver: Some(resolver),
                script: Script::new(SourceOutcome::Ready),
                pending: Pending::default(),
                handled: Vec::new(),
            }),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, SourceInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serve a different digest from now on (for example after a push).
    pub fn set_digest(&self, digest: &str) {
        self.inner().resolver = Some(fixed_digest(digest));
    }

    pub fn set_resolver(&self, resolver: DigestResolver) {
        self.inner().resolver = Some(resolver);
    }

    /// Outcomes for `"<namespace>/<name>"`, one per handled request; the last one stays.
    pub fn script(&self, key: &str, outcomes: Vec<SourceOutcome>) {
        self.inner().script.set(key, outcomes);
    }

    pub fn set_outcome(&self, key: &str, outcome: SourceOutcome) {
        self.script(key, vec![outcome]);
    }

    pub fn set_default(&self, outcome: SourceOutcome) {
        self.inner().script.set_default(outcome);
    }

    /// `"<namespace>/<name>"` of every handled request, in order.
    pub fn handled(&self) -> Vec<String> {
        self.inner().handled.clone()
    }

    fn schedule(self: &Arc<Self>, cluster: &Cluster, plural: &'static str, key: String) {
        if !self.inner().pending.start(&key) {
            return;
        }
        let this = self.clone();
        cluster.after_blocking(self.delay_ms, move |c| {
            this.reconcile(c, plural, &key);
            if this.inner().pending.finish(&key) {
                this.schedule(c, plural, key);
            }
        });
    }

    fn reconcile(&self, cluster: &Cluster, plural: &str, key: &str) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(obj) = cluster.get(SOURCE_GROUP, plural, ns, name) else {
            return;
        };
        if suspended(&obj) || !flux_needs_reconcile(&obj) {
            return;
        }
        let (outcome, resolver) = {
            let mut inner = self.inner();
            inner.handled.push(key.to_string());
            (inner.script.next(key), inner.resolver.clone())
        };
        let gen_ = generation(&obj);
        let request = requested_at(&obj);
        let common = |status: &mut Value| {
            if let Some(r) = &request {
                status["lastHandledReconcileAt"] = json!(r);
            }
            remove_condition(status, "Reconciling");
        };
        let digest = match &outcome {
            SourceOutcome::Never => return,
            SourceOutcome::Digest(d) => Some(normalize_digest(d)),
            SourceOutcome::Ready => resolver.and_then(|r| r(&obj)).map(|d| normalize_digest(&d)),
            _ => None,
        };
        let failure = match (&outcome, &digest) {
            (SourceOutcome::NotReady { reason, message }, _) => {
                Some((false, reason.clone(), message.clone()))
            }
            (SourceOutcome::Stalled { reason, message }, _) => {
                Some((true, reason.clone(), message.clone()))
            }
            (_, None) => Some((
                false,
                "OCIArtifactPullFailed".to_string(),
                format!(
                    "failed to determine artifact digest: {} not found",
                    source_ref(&obj, plural)
                ),
            )),
            _ => None,
        };
        cluster.update_status(SOURCE_GROUP, plural, ns, name, |status| {
            common(status);
            match (&failure, &digest) {
                (Some((stalled, reason, message)), _) => {
                    // source-controller (`internal/reconcile` `ComputeReconcileResult`) moves
                    // `status.observedGeneration` on success and stall only; a plain failure
                    // shows the generation only in the conditions.
                    if *stalled {
                        status["observedGeneration"] = json!(gen_);
                        set_condition(status, "Stalled", "True", reason, message);
                    } else {
                        remove_condition(status, "Stalled");
                    }
                    set_condition(status, "Ready", "False", reason, message);
                }
                (None, Some(digest)) => {
                    let revision = format!("{}@{digest}", source_ref(&obj, plural));
                    let hex = digest.split(':').nth(1).unwrap_or(digest);
                    status["artifact"] = json!({
                        "revision": revision,
                        "digest": digest,
                        "path": format!("{plural}/{ns}/{name}/{hex}.tar.gz"),
                        "url": format!("http://source-controller.flux-system.svc.cluster.local./{plural}/{ns}/{name}/{hex}.tar.gz"),
                        "lastUpdateTime": now_rfc3339(),
                    });
                    status["url"] = json!(format!("http://source-controller.flux-system.svc.cluster.local./{plural}/{ns}/{name}/latest.tar.gz"));
                    status["observedGeneration"] = json!(gen_);
                    remove_condition(status, "Stalled");
                    let message = format!("stored artifact for digest '{revision}'");
                    set_condition(status, "ArtifactInStorage", "True", "Succeeded", &message);
                    set_condition(status, "Ready", "True", "Succeeded", &message);
                }
                (None, None) => {}
            }
            match &failure {
                Some((true, ..)) => stamp_conditions(status, gen_, &["Ready", "Stalled"]),
                _ => stamp_conditions(status, gen_, &["Ready", "ArtifactInStorage"]),
            }
        });
    }
}

/// The tag (OCI) or branch (Git) part of a revision.
fn source_ref(obj: &Value, plural: &str) -> String {
    if plural == "gitrepositories" {
        str_at(obj, "/spec/ref/branch")
            .unwrap_or("main")
            .to_string()
    } else {
        str_at(obj, "/spec/ref/tag").unwrap_or("latest").to_string()
    }
}

impl Simulator for Arc<FluxSource> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if ev.resource.group != SOURCE_GROUP || ev.kind == EventKind::Deleted {
            return;
        }
        let Some(plural) = SOURCE_PLURALS.iter().find(|p| **p == ev.resource.plural) else {
            return;
        };
        if flux_needs_reconcile(&ev.object) && !suspended(&ev.object) {
            self.schedule(cluster, plural, key_of(&ev.object));
        }
    }
}

/// What the kustomize controller does with the next reconcile of an object (once its
/// dependencies are ready and its source has an artifact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KsOutcome {
    /// `Ready=True` with `lastAppliedRevision` = the source revision.
    Ready,
    /// `Ready=False` with this reason and message (`lastAttemptedRevision` set).
    Failed { reason: String, message: String },
    /// `Stalled=True` and `Ready=False`.
    Stalled { reason: String, message: String },
    /// `Reconciling=True` / `Ready=Unknown` `Progressing` first, then `Ready` after this many ms.
    Slow(u64),
    /// Never handle the request.
    Never,
}

/// A side effect of a successful apply: a parent Kustomization creating or pruning children.
#[derive(Clone, Debug, PartialEq)]
pub enum ChildAction {
    /// Create or update this object (any served type).
    Apply(Value),
    /// Delete a Kustomization.
    Delete { namespace: String, name: String },
}

struct KsInner {
    script: Script<KsOutcome>,
    children: std::collections::HashMap<String, Vec<ChildAction>>,
    pending: Pending,
    handled: Vec<String>,
    /// Keys whose last reconcile ended in a requeued wait (dependency or artifact).
    requeue: std::collections::HashSet<String>,
    /// Keys whose requeue timer fired: reconciled whatever their state.
    forced: std::collections::HashSet<String>,
    /// kustomize-controller's `--requeue-dependency` (30 s by default).
    requeue_ms: u64,
}

/// Flux kustomize-controller: on create, a new generation, a new `requestedAt` or a new source
/// revision, waits for `dependsOn` (`Ready=False` `DependencyNotReady`), then applies the
/// scripted outcome, setting `lastAttemptedRevision`, `lastAppliedRevision`,
/// `lastHandledReconcileAt` and `observedGeneration`. Like the real controller (v1.9
/// `kustomization_manager.go` watches sources, not dependencies; `Reconcile` returns
/// `RequeueAfter: DependencyRequeueInterval`), a dependency or artifact wait is looked at again
/// only after the requeue interval, not when the dependency changes.
pub struct FluxKustomization {
    delay_ms: u64,
    inner: Mutex<KsInner>,
}

impl FluxKustomization {
    pub fn new(delay_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            delay_ms,
            inner: Mutex::new(KsInner {
                script: Script::new(KsOutcome::Ready),
                children: Default::default(),
                pending: Pending::default(),
                handled: Vec::new(),
                requeue: Default::default(),
                forced: Default::default(),
                requeue_ms: 30_000,
            }),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, KsInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `--requeue-dependency` interval (30 s unless set).
    pub fn set_requeue_dependency_ms(&self, ms: u64) {
        self.inner().requeue_ms = ms;
    }

    pub fn script(&self, key: &str, outcomes: Vec<KsOutcome>) {
        self.inner().script.set(key, outcomes);
    }

    pub fn set_outcome(&self, key: &str, outcome: KsOutcome) {
        self.script(key, vec![outcome]);
    }

    pub fn set_default(&self, outcome: KsOutcome) {
        self.inner().script.set_default(outcome);
    }

    /// What applying `"<namespace>/<name>"` does to other objects, every time it becomes ready.
    pub fn on_ready(&self, key: &str, actions: Vec<ChildAction>) {
        self.inner().children.insert(key.to_string(), actions);
    }

    /// `"<namespace>/<name>"` of every reconcile that took an outcome, in order.
    pub fn handled(&self) -> Vec<String> {
        self.inner().handled.clone()
    }

    fn schedule(self: &Arc<Self>, cluster: &Cluster, key: String) {
        if !self.inner().pending.start(&key) {
            return;
        }
        let this = self.clone();
        cluster.after(self.delay_ms, move |c| this.run(c, key));
    }

    /// One reconcile; a slow outcome keeps the key pending until it finishes.
    fn run(self: Arc<Self>, cluster: &Cluster, key: String) {
        let outcome = self.reconcile(cluster, &key);
        let requeue = {
            let mut inner = self.inner();
            inner.requeue.remove(&key).then_some(inner.requeue_ms)
        };
        if let Some(ms) = requeue {
            let (this, key) = (self.clone(), key.clone());
            cluster.after(ms, move |c| {
                this.inner().forced.insert(key.clone());
                this.schedule(c, key);
            });
        }
        match outcome {
            Some(ms) => {
                let this = self.clone();
                cluster.after(ms, move |c| {
                    this.finish_ready(c, &key);
                    this.done(c, key);
                });
            }
            None => self.done(cluster, key),
        }
    }

    fn done(self: &Arc<Self>, cluster: &Cluster, key: String) {
        if self.inner().pending.finish(&key) {
            self.schedule(cluster, key);
        }
    }

    /// Returns a delay when the outcome is slow.
    fn reconcile(&self, cluster: &Cluster, key: &str) -> Option<u64> {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let obj = cluster.get(KUSTOMIZE_GROUP, "kustomizations", ns, name)?;
        let forced = self.inner().forced.remove(key);
        if suspended(&obj) || !(forced || should_reconcile(cluster, &obj)) {
            return None;
        }
        // A controller that never handles the object writes nothing at all, not even the
        // dependency or artifact waits below.
        if self.inner().script.peek(key) == KsOutcome::Never {
            return None;
        }
        let gen_ = generation(&obj);
        let request = requested_at(&obj);
        // kustomize-controller's `finalizeStatus` records the request whatever the outcome,
        // but moves `status.observedGeneration` only when Ready=True; every condition it sets
        // carries the generation (fluxcd/pkg `runtime/conditions` `Set`).
        // A stall is final for the generation: it is recorded as observed, and its condition
        // stamped too.
        let handled = move |status: &mut Value, stalled: bool| {
            if let Some(r) = &request {
                status["lastHandledReconcileAt"] = json!(r);
            }
            if stalled {
                status["observedGeneration"] = json!(gen_);
                stamp_conditions(status, gen_, &["Ready", "Stalled"]);
            } else {
                stamp_conditions(status, gen_, &["Ready"]);
            }
        };
        if let Some(dep) = first_unready_dependency(cluster, &obj) {
            cluster.update_status(KUSTOMIZE_GROUP, "kustomizations", ns, name, |s| {
                set_condition(
                    s,
                    "Ready",
                    "False",
                    "DependencyNotReady",
                    &format!("dependency '{dep}' is not ready"),
                );
                handled(s, false);
            });
            self.inner().requeue.insert(key.to_string());
            return None;
        }
        let Some(revision) = source_revision(cluster, &obj) else {
            // The source has no artifact: requeued (the request counts as handled). Re-run when
            // the source changes.
            cluster.update_status(KUSTOMIZE_GROUP, "kustomizations", ns, name, |s| {
                set_condition(
                    s,
                    "Ready",
                    "False",
                    "ArtifactFailed",
                    "Source artifact not found, retrying in 30s",
                );
                handled(s, false);
            });
            self.inner().requeue.insert(key.to_string());
            return None;
        };
        let outcome = {
            let mut inner = self.inner();
            inner.handled.push(key.to_string());
            inner.script.next(key)
        };
        match outcome {
            KsOutcome::Never => None,
            KsOutcome::Ready => {
                self.finish_ready(cluster, key);
                None
            }
            KsOutcome::Failed { reason, message } => {
                // The waits the real controller requeues after `--requeue-dependency`.
                if reason == "ArtifactFailed" || reason == "DependencyNotReady" {
                    self.inner().requeue.insert(key.to_string());
                }
                write_failure(cluster, key, false, &reason, &message, &revision, handled);
                None
            }
            KsOutcome::Stalled { reason, message } => {
                write_failure(cluster, key, true, &reason, &message, &revision, handled);
                None
            }
            KsOutcome::Slow(ms) => {
                cluster.update_status(KUSTOMIZE_GROUP, "kustomizations", ns, name, |s| {
                    s["lastAttemptedRevision"] = json!(revision);
                    set_condition(
                        s,
                        "Reconciling",
                        "True",
                        "Progressing",
                        &format!("Building manifests for revision {revision}"),
                    );
                    set_condition(
                        s,
                        "Ready",
                        "Unknown",
                        "Progressing",
                        "Reconciliation in progress",
                    );
                });
                Some(ms)
            }
        }
    }

    /// Marks the object applied at its source's current revision and runs its child actions.
    fn finish_ready(&self, cluster: &Cluster, key: &str) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(obj) = cluster.get(KUSTOMIZE_GROUP, "kustomizations", ns, name) else {
            return;
        };
        let Some(revision) = source_revision(cluster, &obj) else {
            return;
        };
        let gen_ = generation(&obj);
        let request = requested_at(&obj);
        cluster.update_status(KUSTOMIZE_GROUP, "kustomizations", ns, name, |s| {
            s["observedGeneration"] = json!(gen_);
            if let Some(r) = &request {
                s["lastHandledReconcileAt"] = json!(r);
            }
            s["lastAttemptedRevision"] = json!(revision);
            s["lastAppliedRevision"] = json!(revision);
            remove_condition(s, "Reconciling");
            remove_condition(s, "Stalled");
            set_condition(
                s,
                "Ready",
                "True",
                "ReconciliationSucceeded",
                &format!("Applied revision: {revision}"),
            );
            stamp_conditions(s, gen_, &["Ready"]);
        });
        let actions = self.inner().children.get(key).cloned().unwrap_or_default();
        for action in actions {
            match action {
                ChildAction::Apply(obj) => {
                    let _ = cluster.apply(obj);
                }
                ChildAction::Delete { namespace, name } => {
                    cluster.delete(KUSTOMIZE_GROUP, "kustomizations", &namespace, &name);
                }
            }
        }
    }
}

/// Writes a failed (or stalled) status for the attempted revision.
fn write_failure(
    cluster: &Cluster,
    key: &str,
    stalled: bool,
    reason: &str,
    message: &str,
    revision: &str,
    handled: impl FnOnce(&mut Value, bool),
) {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    cluster.update_status(KUSTOMIZE_GROUP, "kustomizations", ns, name, |s| {
        s["lastAttemptedRevision"] = json!(revision);
        remove_condition(s, "Reconciling");
        if stalled {
            set_condition(s, "Stalled", "True", reason, message);
        } else {
            remove_condition(s, "Stalled");
        }
        set_condition(s, "Ready", "False", reason, message);
        handled(s, stalled);
    });
}

/// Stamps the conditions of `types` with the generation they were written for, as fluxcd/pkg's
/// `conditions.Set` does for each condition a reconcile sets. Conditions of other types keep
/// the generation they had: an old `Stalled` left behind says nothing about the new spec.
fn stamp_conditions(status: &mut Value, generation: i64, types: &[&str]) {
    if let Some(conditions) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        for condition in conditions {
            let written = condition
                .get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| types.contains(&t));
            if written {
                condition["observedGeneration"] = json!(generation);
            }
        }
    }
}

/// Something for the controller to do: a request, a new generation, a new source revision, or a
/// dependency wait to re-evaluate.
fn should_reconcile(cluster: &Cluster, obj: &Value) -> bool {
    if flux_needs_reconcile(obj) {
        return true;
    }
    let attempted = obj
        .pointer("/status/lastAttemptedRevision")
        .and_then(Value::as_str);
    source_revision(cluster, obj).is_some_and(|r| Some(r.as_str()) != attempted)
}

fn source_of(obj: &Value) -> Option<(String, String, String)> {
    let kind = str_at(obj, "/spec/sourceRef/kind")?;
    let name = str_at(obj, "/spec/sourceRef/name")?;
    let ns = str_at(obj, "/spec/sourceRef/namespace")
        .unwrap_or_else(|| crate::util::namespace_of(obj))
        .to_string();
    let plural = match kind {
        "OCIRepository" => "ocirepositories",
        "GitRepository" => "gitrepositories",
        "Bucket" => "buckets",
        _ => return None,
    };
    Some((plural.to_string(), ns, name.to_string()))
}

fn source_revision(cluster: &Cluster, obj: &Value) -> Option<String> {
    let (plural, ns, name) = source_of(obj)?;
    let src = cluster.get(SOURCE_GROUP, &plural, &ns, &name)?;
    str_at(&src, "/status/artifact/revision").map(str::to_string)
}

fn dependencies(obj: &Value) -> Vec<String> {
    let own_ns = crate::util::namespace_of(obj);
    obj.pointer("/spec/dependsOn")
        .and_then(Value::as_array)
        .map(|deps| {
            deps.iter()
                .filter_map(|d| {
                    let name = d.get("name")?.as_str()?;
                    let ns = d.get("namespace").and_then(Value::as_str).unwrap_or(own_ns);
                    Some(format!("{ns}/{name}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn first_unready_dependency(cluster: &Cluster, obj: &Value) -> Option<String> {
    dependencies(obj).into_iter().find(|dep| {
        let (ns, name) = dep.split_once('/').unwrap_or(("", dep));
        match cluster.get(KUSTOMIZE_GROUP, "kustomizations", ns, name) {
            Some(d) => {
                !(matches!(condition_state(&d, "Ready"), Some(("True", _)))
                    && super::observed_generation(&d) == Some(generation(&d)))
            }
            None => true,
        }
    })
}

impl Simulator for Arc<FluxKustomization> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if ev.is(KUSTOMIZE_GROUP, "kustomizations") {
            if ev.kind != EventKind::Deleted
                && !suspended(&ev.object)
                && should_reconcile(cluster, &ev.object)
            {
                self.schedule(cluster, key_of(&ev.object));
            }
            return;
        }
        if ev.resource.group == SOURCE_GROUP && ev.kind != EventKind::Deleted {
            let source = (ev.resource.plural.clone(), key_of(&ev.object));
            // kustomize-controller watches sources (`kustomization_manager.go`): a new artifact
            // revision enqueues every Kustomization that uses the source, and an enqueued
            // reconcile runs in full.
            let revision = |object: &serde_json::Value| {
                str_at(object, "/status/artifact/revision").map(str::to_string)
            };
            let new_artifact = revision(&ev.object).is_some()
                && ev.old.as_ref().and_then(revision) != revision(&ev.object);
            for k in cluster.list(KUSTOMIZE_GROUP, "kustomizations") {
                let refers =
                    source_of(&k).is_some_and(|(p, ns, n)| (p, format!("{ns}/{n}")) == source);
                if !refers || suspended(&k) {
                    continue;
                }
                if new_artifact {
                    self.inner().forced.insert(key_of(&k));
                }
                if new_artifact || should_reconcile(cluster, &k) {
                    self.schedule(cluster, key_of(&k));
                }
            }
        }
    }
}
