//! Argo CD application-controller stand-in: refresh annotation and sync operations.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{ARGO_GROUP, DigestResolver, Pending, Script, fixed_digest, key_of, normalize_digest};
use crate::cluster::{Cluster, Simulator};
use crate::store::{EventKind, WriteEvent};
use crate::util::now_rfc3339;

const REFRESH: &str = "argocd.argoproj.io/refresh";

/// The application state after a refresh (automated policy) or a successful operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppOutcome {
    SyncedHealthy,
    OutOfSync,
    /// Synced, health `Degraded` with this message.
    Degraded(String),
    /// Synced, health `Progressing`.
    Progressing,
    /// A `ComparisonError` condition with this message; sync status `Unknown`.
    ComparisonError(String),
}

/// How a sync operation ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperationOutcome {
    Succeeded,
    /// Phase `Failed` with this message.
    Failed(String),
    /// Stays `Running` forever.
    Never,
    /// Fails every attempt with this message while the controller retries: phase stays
    /// `Running`, `retryCount` grows by one every `operation_ms`, the message ends in
    /// `Retrying attempt #N at <time>.` (argo-cd v3.6 `controller/appcontroller.go`
    /// `processRequestedAppOperation`; an automated sync retries five times by default).
    Retrying(String),
}

struct Inner {
    resolver: DigestResolver,
    app: Script<AppOutcome>,
    operation: Script<OperationOutcome>,
    pending: Pending,
    handled_refreshes: Vec<String>,
    handled_operations: Vec<String>,
    /// Applications whose operation this simulator runs now.
    running: std::collections::HashSet<String>,
}

/// On the refresh annotation (after `refresh_delay_ms`): removes it, sets `status.reconciledAt`,
/// resolves `targetRevision` into `status.sync.revision` (multi-source: `revisions`), and with an
/// automated policy starts the automated sync the real controller would (see `refresh`); the
/// scripted [`AppOutcome`] applies to an Application found in sync, and a scripted
/// `ComparisonError` ends the refresh. On `.operation` (any policy): sets
/// `operationState` `Running` with `startedAt`, then after `operation_ms` `Succeeded` (state from
/// the [`AppOutcome`]) or `Failed`, with `finishedAt` and a `reconciledAt` not before it, and only
/// then clears `.operation` — the real controller keeps it while the operation runs and clears it
/// when the operation completes (argo-cd v3.6 `controller/appcontroller.go`
/// `setOperationState`). Times are RFC 3339 to the second, as the real ones are.
pub struct ArgoCd {
    refresh_delay_ms: u64,
    operation_ms: u64,
    inner: Mutex<Inner>,
}

impl ArgoCd {
    pub fn new(refresh_delay_ms: u64, operation_ms: u64, digest: &str) -> Arc<Self> {
        Arc::new(Self {
            refresh_delay_ms,
            operation_ms,
            inner: Mutex::new(Inner {
                resolver: fixed_digest(digest),
                app: Script::new(AppOutcome::SyncedHealthy),
                operation: Script::new(OperationOutcome::Succeeded),
                pending: Pending::default(),
                handled_refreshes: Vec::new(),
                handled_operations: Vec::new(),
                running: std::collections::HashSet::new(),
            }),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_digest(&self, digest: &str) {
        self.inner().resolver = fixed_digest(digest);
    }

    pub fn set_resolver(&self, resolver: DigestResolver) {
        self.inner().resolver = resolver;
    }

    /// Application outcomes for `"<namespace>/<name>"`, one per refresh or operation.
    pub fn script_app(&self, key: &str, outcomes: Vec<AppOutcome>) {
        self.inner().app.set(key, outcomes);
    }

    pub fn script_operation(&self, key: &str, outcomes: Vec<OperationOutcome>) {
        self.inner().operation.set(key, outcomes);
    }

    pub fn handled_refreshes(&self) -> Vec<String> {
        self.inner().handled_refreshes.clone()
    }

    pub fn handled_operations(&self) -> Vec<String> {
        self.inner().handled_operations.clone()
    }

    fn schedule(self: &Arc<Self>, cluster: &Cluster, key: String) {
        if !self.inner().pending.start(&key) {
            return;
        }
        let this = self.clone();
        cluster.after_blocking(self.refresh_delay_ms, move |c| {
            this.handle(c, &key);
            if this.inner().pending.finish(&key) {
                this.schedule(c, key);
            }
        });
    }

    fn resolve(&self, app: &Value) -> Option<String> {
        let resolver = self.inner().resolver.clone();
        resolver(app).map(|d| normalize_digest(&d))
    }

    fn handle(self: &Arc<Self>, cluster: &Cluster, key: &str) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        let Some(app) = cluster.get(ARGO_GROUP, "applications", ns, name) else {
            return;
        };
        let digest = self.resolve(&app);
        if has_refresh(&app) {
            self.refresh(cluster, key, &app, digest.as_deref());
        }
        let Some(app) = cluster.get(ARGO_GROUP, "applications", ns, name) else {
            return;
        };
        let Some(operation) = app.get("operation").filter(|o| !o.is_null()).cloned() else {
            return;
        };
        // `.operation` stays set while the operation this simulator started runs (and is
        // retried): it is not a new one.
        if !self.inner().running.insert(key.to_string()) {
            return;
        }
        self.inner().handled_operations.push(key.to_string());
        // The digest the operation asks for; a tag (or none) is resolved like `targetRevision`.
        let pinned = operation
            .pointer("/sync/revision")
            .and_then(Value::as_str)
            .filter(|revision| revision.starts_with("sha256:"))
            .map(str::to_string);
        let started = now_rfc3339();
        cluster.mutate(ARGO_GROUP, "applications", ns, name, |obj| {
            let status = crate::util::obj_mut(obj, "status");
            status.insert(
                "operationState".into(),
                json!({"operation": operation, "phase": "Running", "message": "", "startedAt": started}),
            );
        });
        let this = self.clone();
        let (ns, name, key) = (ns.to_string(), name.to_string(), key.to_string());
        cluster.after_blocking(self.operation_ms, move |c| {
            let outcome = this.inner().operation.next(&key);
            if outcome == OperationOutcome::Never {
                return;
            }
            if !matches!(outcome, OperationOutcome::Retrying(_)) {
                this.inner().running.remove(&key);
            }
            if let OperationOutcome::Retrying(message) = &outcome {
                this.retry(c, &ns, &name, message, 1);
                return;
            }
            let Some(app) = c.get(ARGO_GROUP, "applications", &ns, &name) else {
                return;
            };
            let digest = pinned.or_else(|| this.resolve(&app));
            let app_outcome = this.inner().app.next(&key);
            c.mutate(ARGO_GROUP, "applications", &ns, &name, |obj| {
                let mut status = obj.get("status").cloned().unwrap_or(json!({}));
                let finished = now_rfc3339();
                let state = &mut status["operationState"];
                state["finishedAt"] = json!(finished);
                match &outcome {
                    OperationOutcome::Failed(message) => {
                        state["phase"] = json!("Failed");
                        state["message"] = json!(message);
                        // A failed sync still has its result (argo-cd `syncResult` is set once
                        // the sync tasks ran), which `alreadyAttemptedSync` reads.
                        state["syncResult"] =
                            json!({"revision": digest, "source": app.pointer("/spec/source")});
                        status["sync"]["status"] = json!("OutOfSync");
                    }
                    _ => {
                        state["phase"] = json!("Succeeded");
                        state["message"] = json!("successfully synced (all tasks run)");
                        state["syncResult"] =
                            json!({"revision": digest, "source": app.pointer("/spec/source")});
                        set_revision(&mut status, &app, digest.as_deref());
                        apply_outcome(&mut status, &app_outcome);
                    }
                }
                status["reconciledAt"] = json!(finished);
                obj["status"] = status;
                if let Value::Object(map) = obj {
                    map.remove("operation");
                }
            });
        });
    }

    /// A refresh as argo-cd v3.6 `controller/appcontroller.go` `processAppRefreshQueueItem` does
    /// it: compare (a scripted `ComparisonError` ends there, sync status `Unknown`), then for an
    /// automated policy `autoSync` — an OutOfSync Application without an operation gets one,
    /// unless its last sync was to the same revision (`alreadyAttemptedSync`): after a failed one
    /// it gets a `SyncError` condition "Failed last sync attempt to …" and no operation. The
    /// operation is set before the status is written and the annotation removed, as there.
    /// "Synced" here means the last operation succeeded at the resolved revision.
    fn refresh(&self, cluster: &Cluster, key: &str, app: &Value, digest: Option<&str>) {
        let (ns, name) = key.split_once('/').unwrap_or(("", key));
        self.inner().handled_refreshes.push(key.to_string());
        let policy = app.pointer("/spec/syncPolicy");
        let automated = policy
            .and_then(|p| p.get("automated"))
            .is_some_and(|a| !a.is_null() && a.get("enabled") != Some(&json!(false)));
        let comparison_error = matches!(self.inner().app.peek(key), AppOutcome::ComparisonError(_));
        let last = app.pointer("/status/operationState");
        let last_revision = last
            .and_then(|s| s.pointer("/syncResult/revision"))
            .and_then(Value::as_str);
        let last_phase = last.and_then(|s| s.get("phase")).and_then(Value::as_str);
        let attempted = digest.is_some() && last_revision == digest;
        let in_sync = attempted && last_phase == Some("Succeeded");
        let idle = app.get("operation").is_none_or(Value::is_null);
        let outcome =
            (comparison_error || (automated && in_sync)).then(|| self.inner().app.next(key));
        if automated && idle && !in_sync && !attempted && !comparison_error {
            let mut sync = json!({"revision": digest});
            if let Some(prune) = policy.and_then(|p| p.pointer("/automated/prune")) {
                sync["prune"] = prune.clone();
            }
            if let Some(options) = policy.and_then(|p| p.get("syncOptions")) {
                sync["syncOptions"] = options.clone();
            }
            let retry = policy
                .and_then(|p| p.get("retry"))
                .cloned()
                .unwrap_or(json!({"limit": 5}));
            cluster.mutate(ARGO_GROUP, "applications", ns, name, |obj| {
                obj["operation"] =
                    json!({"initiatedBy": {"automated": true}, "sync": sync, "retry": retry});
            });
        }
        cluster.mutate(ARGO_GROUP, "applications", ns, name, |obj| {
            if let Some(Value::Object(a)) = obj.pointer_mut("/metadata/annotations") {
                a.remove(REFRESH);
            }
            let status = crate::util::obj_mut(obj, "status");
            status.insert("reconciledAt".into(), json!(now_rfc3339()));
            let mut status = Value::Object(std::mem::take(status));
            set_revision(&mut status, app, digest);
            match &outcome {
                Some(o) => apply_outcome(&mut status, o),
                None => {
                    let state = if in_sync { "Synced" } else { "OutOfSync" };
                    status["sync"]["status"] = json!(state);
                    if let Value::Object(map) = &mut status {
                        map.remove("conditions");
                    }
                }
            }
            if automated && idle && attempted && !in_sync && !comparison_error {
                let message = last
                    .and_then(|s| s.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                status["conditions"] = json!([{
                    "type": "SyncError",
                    "message": format!("Failed last sync attempt to [{}]: {message}", digest.unwrap_or_default()),
                    "lastTransitionTime": now_rfc3339(),
                }]);
            }
            obj["status"] = status;
        });
    }

    /// One more failed attempt of a [`OperationOutcome::Retrying`] operation; schedules the next.
    fn retry(self: &Arc<Self>, cluster: &Cluster, ns: &str, name: &str, message: &str, count: u64) {
        let finished = now_rfc3339();
        cluster.mutate(ARGO_GROUP, "applications", ns, name, |obj| {
            let mut status = obj.get("status").cloned().unwrap_or(json!({}));
            let state = &mut status["operationState"];
            state["finishedAt"] = json!(finished);
            state["retryCount"] = json!(count);
            state["message"] = json!(format!(
                "{message}. Retrying attempt #{count} at {}.",
                crate::util::rfc3339_offset(5)
            ));
            status["sync"]["status"] = json!("OutOfSync");
            status["reconciledAt"] = json!(finished);
            obj["status"] = status;
        });
        let this = self.clone();
        let (ns, name, message) = (ns.to_string(), name.to_string(), message.to_string());
        cluster.after_blocking(self.operation_ms, move |c| {
            this.retry(c, &ns, &name, &message, count + 1);
        });
    }
}

fn has_refresh(app: &Value) -> bool {
    app.pointer("/metadata/annotations")
        .and_then(|a| a.get(REFRESH))
        .is_some()
}

fn set_revision(status: &mut Value, app: &Value, digest: Option<&str>) {
    let Some(d) = digest else { return };
    if !status.get("sync").is_some_and(Value::is_object) {
        status["sync"] = json!({});
    }
    match app.pointer("/spec/sources").and_then(Value::as_array) {
        Some(sources) => status["sync"]["revisions"] = json!(vec![d; sources.len()]),
        None => status["sync"]["revision"] = json!(d),
    }
    if let Some(src) = app.pointer("/spec/source") {
        status["sync"]["comparedTo"] =
            json!({"source": src, "destination": app.pointer("/spec/destination")});
    }
}

fn apply_outcome(status: &mut Value, outcome: &AppOutcome) {
    if !status.get("sync").is_some_and(Value::is_object) {
        status["sync"] = json!({});
    }
    let (sync, health, message) = match outcome {
        AppOutcome::SyncedHealthy => ("Synced", "Healthy", None),
        AppOutcome::OutOfSync => ("OutOfSync", "Healthy", None),
        AppOutcome::Degraded(m) => ("Synced", "Degraded", Some(m.clone())),
        AppOutcome::Progressing => ("Synced", "Progressing", None),
        AppOutcome::ComparisonError(m) => ("Unknown", "Healthy", Some(m.clone())),
    };
    status["sync"]["status"] = json!(sync);
    status["health"] = match (&message, outcome) {
        (Some(m), AppOutcome::Degraded(_)) => json!({"status": health, "message": m}),
        _ => json!({"status": health}),
    };
    match outcome {
        AppOutcome::ComparisonError(m) => {
            status["conditions"] = json!([{"type": "ComparisonError", "message": m, "lastTransitionTime": now_rfc3339()}]);
        }
        _ => {
            if let Value::Object(map) = status {
                map.remove("conditions");
            }
        }
    }
}

impl Simulator for Arc<ArgoCd> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if !ev.is(ARGO_GROUP, "applications") || ev.kind == EventKind::Deleted {
            return;
        }
        let has_operation = ev.object.get("operation").is_some_and(|o| !o.is_null());
        if has_refresh(&ev.object) || has_operation {
            self.schedule(cluster, key_of(&ev.object));
        }
    }
}
