//! Ready-made objects for seeding the fake cluster with [`FakeApiServer::put_object`]
//! (`crate::FakeApiServer::put_object`): pods in interesting states, events with chosen times,
//! Flux objects and stuck HelmReleases.

use serde_json::{Value, json};

use crate::util::now_rfc3339;

fn meta(namespace: &str, name: &str) -> Value {
    json!({"name": name, "namespace": namespace})
}

fn pod(namespace: &str, name: &str, phase: &str, status_extra: Value) -> Value {
    let mut status = json!({"phase": phase});
    crate::patch::merge_patch(&mut status, &status_extra);
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta(namespace, name),
        "spec": {"containers": [{"name": "main", "image": "example/main:1"}]},
        "status": status,
    })
}

/// A running pod with every container ready.
pub fn pod_running(namespace: &str, name: &str) -> Value {
    pod(
        namespace,
        name,
        "Running",
        json!({"containerStatuses": [{"name": "main", "image": "example/main:1", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": now_rfc3339()}}}]}),
    )
}

/// A pod whose container waits (`CrashLoopBackOff`, `ImagePullBackOff`, ...).
pub fn pod_waiting(namespace: &str, name: &str, image: &str, reason: &str, restarts: u32) -> Value {
    pod(
        namespace,
        name,
        "Running",
        json!({"containerStatuses": [{"name": "main", "image": image, "ready": false, "restartCount": restarts, "state": {"waiting": {"reason": reason, "message": format!("{reason} for {image}")}}}]}),
    )
}

/// A pod whose container terminated with `exit_code` and `reason`.
pub fn pod_terminated(namespace: &str, name: &str, exit_code: i32, reason: &str) -> Value {
    pod(
        namespace,
        name,
        "Failed",
        json!({"containerStatuses": [{"name": "main", "image": "example/main:1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": exit_code, "reason": reason}}}]}),
    )
}

/// A pending pod whose init container waits.
pub fn pod_init_waiting(namespace: &str, name: &str, reason: &str) -> Value {
    pod(
        namespace,
        name,
        "Pending",
        json!({"initContainerStatuses": [{"name": "init", "image": "example/init:1", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}]}),
    )
}

/// A pod in a phase with an optional pod-level reason and no container statuses.
pub fn pod_phase(namespace: &str, name: &str, phase: &str, reason: Option<&str>) -> Value {
    let extra = match reason {
        Some(r) => json!({"reason": r}),
        None => json!({}),
    };
    pod(namespace, name, phase, extra)
}

/// Which timestamp fields an event carries.
#[derive(Clone, Debug, Default)]
pub struct EventTimes {
    pub last_timestamp: Option<String>,
    pub event_time: Option<String>,
    pub creation_timestamp: Option<String>,
}

impl EventTimes {
    /// `lastTimestamp` this many seconds ago.
    pub fn last_seconds_ago(seconds: i64) -> Self {
        Self {
            last_timestamp: Some(crate::util::rfc3339_offset(-seconds)),
            ..Self::default()
        }
    }
}

/// A core/v1 Event about `involved_kind/involved_name` in `namespace`.
#[allow(clippy::too_many_arguments)] // one argument per Event field a diagnostics test varies
pub fn event(
    namespace: &str,
    name: &str,
    type_: &str,
    reason: &str,
    message: &str,
    involved_kind: &str,
    involved_name: &str,
    times: EventTimes,
) -> Value {
    let mut m = meta(namespace, name);
    if let Some(c) = times.creation_timestamp {
        m["creationTimestamp"] = json!(c);
    }
    let mut ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": m,
        "type": type_,
        "reason": reason,
        "message": message,
        "involvedObject": {"kind": involved_kind, "name": involved_name, "namespace": namespace},
        "source": {"component": "fake"},
        "count": 1,
    });
    if let Some(t) = times.last_timestamp {
        ev["lastTimestamp"] = json!(t);
    }
    if let Some(t) = times.event_time {
        ev["eventTime"] = json!(t);
    }
    ev
}

/// An OCIRepository (source v1) for `url` and `tag`, with no status.
pub fn oci_repository(namespace: &str, name: &str, url: &str, tag: &str) -> Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": meta(namespace, name),
        "spec": {"url": url, "ref": {"tag": tag}, "interval": "1m"},
    })
}

/// `obj` with a Flux status: observed at its generation (1 unless set), `Ready=True`, and
/// the given artifact revision (sources) or applied revision (Kustomizations).
pub fn with_ready_status(mut obj: Value, revision: &str) -> Value {
    let generation = obj
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    obj["metadata"]["generation"] = json!(generation);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let mut status = json!({
        "observedGeneration": generation,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "ready", "lastTransitionTime": now_rfc3339()}],
    });
    if kind == "Kustomization" {
        status["lastAppliedRevision"] = json!(revision);
        status["lastAttemptedRevision"] = json!(revision);
        status["conditions"][0]["reason"] = json!("ReconciliationSucceeded");
    } else {
        let digest = revision.split('@').nth(1).unwrap_or(revision);
        status["artifact"] = json!({"revision": revision, "digest": digest});
    }
    obj["status"] = status;
    obj
}

/// A Kustomization (kustomize v1) from an OCIRepository, with `dependsOn` entries
/// (`"name"` or `"namespace/name"`), and no status.
pub fn kustomization(namespace: &str, name: &str, source: &str, depends_on: &[&str]) -> Value {
    let deps: Vec<Value> = depends_on
        .iter()
        .map(|d| match d.split_once('/') {
            Some((ns, n)) => json!({"name": n, "namespace": ns}),
            None => json!({"name": d}),
        })
        .collect();
    let mut spec = json!({
        "interval": "10m",
        "path": "./",
        "prune": true,
        "sourceRef": {"kind": "OCIRepository", "name": source},
    });
    if let Some((ns, n)) = source.split_once('/') {
        spec["sourceRef"] = json!({"kind": "OCIRepository", "name": n, "namespace": ns});
    }
    if !deps.is_empty() {
        spec["dependsOn"] = json!(deps);
    }
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": meta(namespace, name),
        "spec": spec,
    })
}

/// How a HelmRelease fixture is stuck.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelmState {
    /// `Stalled=True` with this reason (`RetriesExceeded`, `MissingRollbackTarget`), `Ready=False`.
    Stalled(String),
    /// `Ready=False` with this reason (`UpgradeFailed`, `InstallFailed`, `DependencyNotReady`...).
    NotReady(String),
    /// `Ready=True`.
    Ready,
}

/// A HelmRelease (helm v2) at generation 1 and observed, in the given state.
pub fn helm_release(namespace: &str, name: &str, state: HelmState) -> Value {
    let now = now_rfc3339();
    let cond = |t: &str, s: &str, r: &str| json!({"type": t, "status": s, "reason": r, "message": format!("{r} for release {namespace}/{name}"), "lastTransitionTime": now});
    let conditions = match &state {
        HelmState::Stalled(r) => vec![cond("Stalled", "True", r), cond("Ready", "False", r)],
        HelmState::NotReady(r) => vec![cond("Ready", "False", r)],
        HelmState::Ready => vec![cond("Ready", "True", "UpgradeSucceeded")],
    };
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"interval": "5m", "chart": {"spec": {"chart": name, "sourceRef": {"kind": "HelmRepository", "name": name}}}},
        "status": {"observedGeneration": 1, "conditions": conditions},
    })
}
