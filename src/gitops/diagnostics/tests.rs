//! Pure diagnostics tests: the spec's golden layout from JSON fixtures, row rules, pod details,
//! events, message cutting, JSON form, summary lines.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

use super::content::{argocd_row, event_rows, flux_row, pod_detail};
use super::render::{clean_message, format_age};
use super::*;
use crate::gitops::Engine;

pub(super) const NOW: OffsetDateTime = datetime!(2026-05-01 10:00:00 UTC);

pub(super) fn api_resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

pub(super) fn flux_target(blocked: &[(&str, &str)]) -> Target {
    Target {
        gitops_namespace: "flux-system".to_string(),
        kinds: vec![
            (
                "Kustomizations",
                api_resource(
                    "kustomize.toolkit.fluxcd.io",
                    "v1",
                    "Kustomization",
                    "kustomizations",
                ),
            ),
            (
                "HelmReleases",
                api_resource(
                    "helm.toolkit.fluxcd.io",
                    "v2",
                    "HelmRelease",
                    "helmreleases",
                ),
            ),
            (
                "OCIRepositories",
                api_resource(
                    "source.toolkit.fluxcd.io",
                    "v1",
                    "OCIRepository",
                    "ocirepositories",
                ),
            ),
        ],
        blocked: blocked
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        failed: BTreeMap::new(),
    }
}

pub(super) fn argocd_target() -> Target {
    Target {
        gitops_namespace: "argocd".to_string(),
        kinds: vec![(
            "Applications",
            api_resource("argoproj.io", "v1alpha1", "Application", "applications"),
        )],
        blocked: BTreeMap::new(),
        failed: BTreeMap::new(),
    }
}

/// A Flux object with the given conditions (`(type, status, reason, message)`).
/// `(type, status, reason, message)` of a status condition.
type Condition<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A Flux object of `kind` at `namespace/name` with these status conditions.
fn flux_object(kind: &str, id: &str, conditions: &[Condition]) -> Value {
    let (ns, name) = id.split_once('/').expect("namespace/name");
    let conditions: Vec<Value> = conditions
        .iter()
        .map(|(t, s, r, m)| json!({"type": t, "status": s, "reason": r, "message": m}))
        .collect();
    json!({
        "kind": kind,
        "metadata": {"namespace": ns, "name": name},
        "status": {"conditions": conditions},
    })
}

/// A Flux object of `kind` at `namespace/name` whose Ready condition is
/// `(status, reason, message)`.
fn flux_ready(kind: &str, id: &str, status: &str, reason: &str, message: &str) -> Value {
    flux_object(kind, id, &[("Ready", status, reason, message)])
}

/// [`flux_ready`] for a Kustomization.
fn ks(id: &str, status: &str, reason: &str, message: &str) -> Value {
    flux_ready("Kustomization", id, status, reason, message)
}

/// The Flux report of `listed` at [`NOW`], with `blocked` as ksail's blocked objects.
fn flux_report(blocked: &[(&str, &str)], listed: Listed) -> Report {
    build_report(Engine::Flux, &flux_target(blocked), listed, NOW)
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("a UTC time formats as RFC 3339")
}

fn warning_event(seconds_ago: i64, kind: &str, name: &str, reason: &str, message: &str) -> Value {
    json!({
        "type": "Warning",
        "metadata": {"namespace": "flux-system", "name": format!("{name}.{seconds_ago}")},
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason,
        "message": message,
        "lastTimestamp": rfc3339(NOW - time::Duration::seconds(seconds_ago)),
    })
}

fn pod(name: &str, phase: &str, status: Value) -> Value {
    let mut status = status;
    status["phase"] = json!(phase);
    json!({"metadata": {"namespace": "flux-system", "name": name}, "status": status})
}

fn waiting_pod(name: &str, image: &str, reason: &str, restarts: u64) -> Value {
    pod(
        name,
        "Running",
        json!({"containerStatuses": [{"name": "main", "image": image, "ready": false, "restartCount": restarts, "state": {"waiting": {"reason": reason}}}]}),
    )
}

fn running_pod(name: &str) -> Value {
    pod(
        name,
        "Running",
        json!({"containerStatuses": [{"name": "main", "image": "x:1", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
    )
}

const CERT_MANAGER_MESSAGE: &str =
    "timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']";

fn flux_listed() -> Listed {
    Listed {
        resources: vec![
            Some(vec![
                ks(
                    "flux-system/flux-system",
                    "True",
                    "ReconciliationSucceeded",
                    "Applied",
                ),
                ks(
                    "apps/podinfo",
                    "False",
                    "DependencyNotReady",
                    "dependency 'infra/cert-manager' is not ready",
                ),
                ks(
                    "infra/cert-manager",
                    "False",
                    "HealthCheckFailed",
                    CERT_MANAGER_MESSAGE,
                ),
            ]),
            Some(vec![flux_ready(
                "HelmRelease",
                "podinfo/podinfo",
                "False",
                "UpgradeFailed",
                "Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.5.0: context deadline exceeded",
            )]),
            Some(vec![flux_ready(
                "OCIRepository",
                "flux-system/flux-system",
                "True",
                "Succeeded",
                "stored artifact",
            )]),
        ],
        pods: Some(vec![
            running_pod("source-controller-7f9d8c6b5-abcde"),
            waiting_pod(
                "helm-controller-5d8f9c7b6-x2x4q",
                "ghcr.io/fluxcd/helm-controller:v1.3.0",
                "CrashLoopBackOff",
                5,
            ),
            pod("kustomize-controller-done", "Succeeded", json!({})),
        ]),
        events: Some(vec![
            warning_event(
                120,
                "Kustomization",
                "cert-manager",
                "HealthCheckFailed",
                CERT_MANAGER_MESSAGE,
            ),
            warning_event(
                30 * 60,
                "Kustomization",
                "old",
                "BuildFailed",
                "too old to show",
            ),
            {
                let mut normal = warning_event(
                    10,
                    "Kustomization",
                    "podinfo",
                    "Progressing",
                    "normal event",
                );
                normal["type"] = json!("Normal");
                normal
            },
        ]),
    }
}

#[test]
fn flux_golden_layout_matches_the_spec_example() {
    let report = flux_report(&[("apps/podinfo", "infra/cert-manager")], flux_listed());
    let expected = [
        "Diagnostics (Flux)",
        "  Kustomizations",
        "    ✗ infra/cert-manager  HealthCheckFailed · timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']",
        "    · apps/podinfo        blocked by infra/cert-manager",
        "  HelmReleases",
        "    ✗ podinfo/podinfo     UpgradeFailed · Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.5.0: context deadline exceeded",
        "  Pods not ready (flux-system)",
        "    helm-controller-5d8f9c7b6-x2x4q  CrashLoopBackOff (ghcr.io/fluxcd/helm-controller:v1.3.0, 5 restarts)",
        "  Warning events (flux-system, last 5m)",
        "    2m ago  Kustomization/cert-manager  HealthCheckFailed: timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']",
    ];
    assert_eq!(render(&report), expected);
}

#[test]
fn flux_report_json_lists_every_row() {
    let report = flux_report(&[("apps/podinfo", "infra/cert-manager")], flux_listed());
    let doc = to_json(&report);
    assert_eq!(doc["engine"], "Flux");
    assert_eq!(doc["namespace"], "flux-system");
    assert_eq!(
        doc["resources"],
        json!([
            {"kind": "Kustomization", "namespace": "infra", "name": "cert-manager", "state": "failed", "reason": "HealthCheckFailed", "message": CERT_MANAGER_MESSAGE},
            {"kind": "Kustomization", "namespace": "apps", "name": "podinfo", "state": "blocked", "reason": "DependencyNotReady", "message": "blocked by infra/cert-manager"},
            {"kind": "HelmRelease", "namespace": "podinfo", "name": "podinfo", "state": "failed", "reason": "UpgradeFailed", "message": "Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.5.0: context deadline exceeded"},
        ])
    );
    assert_eq!(
        doc["pods"],
        json!([{"name": "helm-controller-5d8f9c7b6-x2x4q", "detail": "CrashLoopBackOff (ghcr.io/fluxcd/helm-controller:v1.3.0, 5 restarts)"}])
    );
    assert_eq!(
        doc["events"],
        json!([{"ageSeconds": 120, "kind": "Kustomization", "name": "cert-manager", "reason": "HealthCheckFailed", "message": CERT_MANAGER_MESSAGE}])
    );
}

fn application(name: &str, status: Value) -> Value {
    json!({"kind": "Application", "metadata": {"namespace": "argocd", "name": name}, "status": status})
}

#[test]
fn argocd_golden_layout() {
    let listed = Listed {
        resources: vec![Some(vec![
            application(
                "healthy",
                json!({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}),
            ),
            application(
                "web",
                json!({
                    "sync": {"status": "OutOfSync"}, "health": {"status": "Missing"},
                    "operationState": {"phase": "Failed", "message": "one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid"},
                }),
            ),
            application(
                "api",
                json!({
                    "sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
                    "conditions": [
                        {"type": "SharedResourceWarning", "message": "shared"},
                        {"type": "ComparisonError", "message": "failed to load target state: manifest unknown"},
                    ],
                }),
            ),
            application(
                "worker",
                json!({"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing", "message": "Waiting for rollout to finish"}}),
            ),
            application(
                "db",
                json!({"sync": {"status": "Synced"}, "health": {"status": "Degraded", "message": "Readiness probe   failed\n twice"}}),
            ),
            application("new", json!({})),
        ])],
        pods: Some(vec![waiting_pod(
            "argocd-repo-server-6c9d7f5b4-q8r2t",
            "quay.io/argoproj/argocd:v3.0.0",
            "ImagePullBackOff",
            0,
        )]),
        events: Some(vec![]),
    };
    let report = build_report(Engine::ArgoCd, &argocd_target(), listed, NOW);
    let expected = [
        "Diagnostics (Argo CD)",
        "  Applications",
        "    ✗ argocd/api     ComparisonError · failed to load target state: manifest unknown",
        "    ✗ argocd/db      Synced/Degraded · Readiness probe failed twice",
        "    ✗ argocd/new     Unknown/Unknown",
        "    ✗ argocd/web     OperationState/Failed · one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid",
        "    ► argocd/worker  OutOfSync/Progressing · Waiting for rollout to finish",
        "  Pods not ready (argocd)",
        "    argocd-repo-server-6c9d7f5b4-q8r2t  ImagePullBackOff (quay.io/argoproj/argocd:v3.0.0, 0 restarts)",
    ];
    assert_eq!(render(&report), expected);
    assert_eq!(to_json(&report)["engine"], "ArgoCD");
}

#[test]
fn argocd_running_operation_falls_back_to_sync_and_health() {
    let app = application(
        "web",
        json!({"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Running", "message": "in progress"}}),
    );
    let row = argocd_row("Application", &app).expect("not synced");
    assert_eq!(row.reason.as_deref(), Some("OutOfSync/Unknown"));
    assert_eq!(row.message, None);
    assert_eq!(row.state, RowState::Failed);
    let errored = application(
        "web",
        json!({"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Error", "message": "boom"}, "conditions": [{"type": "SyncError", "message": "later"}]}),
    );
    let row = argocd_row("Application", &errored).expect("not synced");
    assert_eq!(
        (row.reason.as_deref(), row.message.as_deref()),
        (Some("OperationState/Error"), Some("boom"))
    );
}

#[test]
fn a_failed_argocd_operation_names_the_objects_that_failed() {
    // The shape real Argo CD (v3.6) writes for a sync the API server refused.
    let app = application(
        "web",
        json!({
            "sync": {"status": "OutOfSync"},
            "health": {"status": "Healthy"},
            "operationState": {
                "phase": "Failed",
                "message": "one or more synchronization tasks completed unsuccessfully, reason: bad",
                "syncResult": {"resources": [
                    {"kind": "ConfigMap", "namespace": "apps", "name": "good", "status": "Synced", "message": "configmap/good created"},
                    {"kind": "ConfigMap", "namespace": "apps", "name": "broken", "status": "SyncFailed", "message": "bad"},
                    {"kind": "Job", "namespace": "apps", "name": "migrate", "hookPhase": "Failed", "message": "backoff limit"},
                    {"kind": "ClusterRole", "namespace": "", "name": "reader", "status": "SyncFailed"}
                ]}
            }
        }),
    );
    let row = argocd_row("Application", &app).expect("not synced");
    assert_eq!(row.reason.as_deref(), Some("OperationState/Failed"));
    assert_eq!(
        row.message.as_deref(),
        Some("ConfigMap/apps/broken: bad; Job/apps/migrate: backoff limit; ClusterRole/reader")
    );
    // Between retries the phase is Running; the row says what failed all the same.
    let mut retrying = app.clone();
    retrying["status"]["operationState"]["phase"] = json!("Running");
    retrying["status"]["operationState"]["retryCount"] = json!(2);
    let row = argocd_row("Application", &retrying).expect("not synced");
    assert_eq!(row.reason.as_deref(), Some("SyncFailed"));
    assert!(
        row.message
            .unwrap()
            .starts_with("ConfigMap/apps/broken: bad")
    );
}

#[test]
fn flux_rows_judge_ready_and_stalled() {
    let none = BTreeMap::new();
    const STALLED: Condition = ("Stalled", "True", "RetriesExceeded", "exhausted");
    let cases: Vec<(Value, Option<(RowState, &str)>)> = vec![
        (ks("a/ready", "True", "ReconciliationSucceeded", "ok"), None),
        (flux_object("Kustomization", "a/fresh", &[]), None),
        (
            ks(
                "a/unknown",
                "Unknown",
                "Progressing",
                "reconciliation in progress",
            ),
            Some((RowState::Progressing, "Progressing")),
        ),
        (
            ks("a/retry", "False", "ProgressingWithRetry", "retrying"),
            Some((RowState::Progressing, "ProgressingWithRetry")),
        ),
        (
            ks("a/dep", "False", "DependencyNotReady", "waiting"),
            Some((RowState::Blocked, "DependencyNotReady")),
        ),
        (
            ks("a/build", "False", "BuildFailed", "kustomize build failed"),
            Some((RowState::Failed, "BuildFailed")),
        ),
        (
            flux_object(
                "HelmRelease",
                "a/stalled-ready",
                &[("Ready", "True", "UpgradeSucceeded", "ok"), STALLED],
            ),
            Some((RowState::Failed, "RetriesExceeded")),
        ),
        (
            flux_object(
                "HelmRelease",
                "a/stalled",
                &[
                    STALLED,
                    ("Ready", "False", "UpgradeFailed", "upgrade failed"),
                ],
            ),
            Some((RowState::Failed, "UpgradeFailed")),
        ),
        (
            flux_object(
                "HelmRelease",
                "a/not-stalled",
                &[("Stalled", "False", "x", "")],
            ),
            None,
        ),
    ];
    for (obj, expected) in cases {
        let row = flux_row("Kustomization", &obj, &none);
        let got = row
            .as_ref()
            .map(|r| (r.state, r.reason.as_deref().unwrap_or_default()));
        assert_eq!(got, expected, "{obj}");
    }
}

#[test]
fn an_object_blocked_by_ksail_is_listed_even_when_ready() {
    let blocked = BTreeMap::from([(
        "apps/podinfo".to_string(),
        "ocirepository flux-system/flux-system".to_string(),
    )]);
    let obj = ks(
        "apps/podinfo",
        "True",
        "ReconciliationSucceeded",
        "old revision",
    );
    let row = flux_row("Kustomization", &obj, &blocked).expect("blocked rows are listed");
    assert_eq!(row.state, RowState::Blocked);
    assert_eq!(row.reason, None);
    assert_eq!(
        row.blocked_by.as_deref(),
        Some("ocirepository flux-system/flux-system")
    );
    // A blocked object that still reports Progressing is blocked, not progressing.
    let progressing = ks("apps/podinfo", "Unknown", "Progressing", "x");
    assert_eq!(
        flux_row("Kustomization", &progressing, &blocked).map(|r| r.state),
        Some(RowState::Blocked)
    );
}

#[test]
fn blocked_marks_apply_to_the_tracked_kind_only() {
    let listed = Listed {
        resources: vec![
            Some(vec![]),
            Some(vec![flux_ready(
                "HelmRelease",
                "apps/podinfo",
                "True",
                "UpgradeSucceeded",
                "ok",
            )]),
        ],
        ..Listed::default()
    };
    let report = flux_report(&[("apps/podinfo", "infra/x")], listed);
    assert!(report.is_empty());
    assert!(render(&report).is_empty());
}

#[test]
fn rows_are_ordered_failed_progressing_blocked_then_by_name() {
    let listed = Listed {
        resources: vec![Some(vec![
            ks("b/dep", "False", "DependencyNotReady", "m"),
            ks("z/prog", "Unknown", "Progressing", "m"),
            ks("c/fail", "False", "BuildFailed", "m"),
            ks("a/prog", "Unknown", "Progressing", "m"),
            ks("a/dep", "False", "DependencyNotReady", "m"),
            ks("b/fail", "False", "HealthCheckFailed", "m"),
            ks("a/blocked", "False", "BuildFailed", "m"),
        ])],
        ..Listed::default()
    };
    let report = flux_report(&[("a/blocked", "c/fail")], listed);
    let names: Vec<String> = report.resources[0]
        .rows
        .iter()
        .map(|r| format!("{} {}", r.state.symbol(), r.object))
        .collect();
    assert_eq!(
        names,
        [
            "✗ b/fail",
            "✗ c/fail",
            "► a/prog",
            "► z/prog",
            "· a/blocked",
            "· a/dep",
            "· b/dep"
        ]
    );
}

#[test]
fn names_are_padded_to_the_longest_plus_two() {
    let listed = Listed {
        resources: vec![
            Some(vec![ks("a/b", "False", "BuildFailed", "m")]),
            Some(vec![flux_ready(
                "HelmRelease",
                "long-namespace/long-name",
                "False",
                "InstallFailed",
                "",
            )]),
        ],
        pods: Some(vec![
            pod("p", "Pending", json!({})),
            pod("longer-pod", "Failed", json!({"reason": "Evicted"})),
        ]),
        ..Listed::default()
    };
    let lines = render(&flux_report(&[], listed));
    assert_eq!(
        lines,
        [
            "Diagnostics (Flux)",
            "  Kustomizations",
            "    ✗ a/b                       BuildFailed · m",
            "  HelmReleases",
            "    ✗ long-namespace/long-name  InstallFailed",
            "  Pods not ready (flux-system)",
            "    longer-pod  Failed (Evicted)",
            "    p           Pending",
        ]
    );
}

#[test]
fn messages_are_collapsed_trimmed_and_cut_at_120_characters() {
    assert_eq!(clean_message("  a \n\t b   c  "), "a b c");
    let exact = "x".repeat(120);
    assert_eq!(clean_message(&exact), exact);
    let long = "é".repeat(200);
    let cut = clean_message(&long);
    assert_eq!(cut.chars().count(), 120);
    assert!(cut.ends_with("é…"));
    let words = format!("{} {}", "a".repeat(118), "tail");
    assert_eq!(clean_message(&words), format!("{}…", "a".repeat(118)));

    let listed = Listed {
        resources: vec![Some(vec![ks(
            "a/b",
            "False",
            "BuildFailed",
            &"word ".repeat(40),
        )])],
        ..Listed::default()
    };
    let lines = render(&flux_report(&[], listed));
    let message = lines[2].split(" · ").nth(1).expect("reason · message");
    assert!(
        message.chars().count() <= 120 && message.ends_with('…'),
        "{message}"
    );
}

#[test]
fn pod_detail_rules_in_order() {
    let cases: Vec<(Value, Option<&str>)> = vec![
        (running_pod("ok"), None),
        (pod("done", "Succeeded", json!({})), None),
        (
            waiting_pod("crash", "img:1", "CrashLoopBackOff", 5),
            Some("CrashLoopBackOff (img:1, 5 restarts)"),
        ),
        (
            waiting_pod("once", "img:1", "CrashLoopBackOff", 1),
            Some("CrashLoopBackOff (img:1, 1 restart)"),
        ),
        (
            // Rule 1 wins over rule 2 whichever container comes first.
            pod(
                "mixed",
                "Running",
                json!({"containerStatuses": [
                    {"name": "a", "image": "a:1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}},
                    {"name": "b", "image": "b:1", "ready": false, "restartCount": 2, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
                ]}),
            ),
            Some("ImagePullBackOff (b:1, 2 restarts)"),
        ),
        (
            pod(
                "oom",
                "Failed",
                json!({"containerStatuses": [{"name": "a", "image": "a:1", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
            ),
            Some("exited 137 (OOMKilled)"),
        ),
        (
            pod(
                "init",
                "Pending",
                json!({"initContainerStatuses": [{"name": "i", "image": "i:1", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}),
            ),
            Some("init: PodInitializing"),
        ),
        (
            pod("evicted", "Failed", json!({"reason": "Evicted"})),
            Some("Failed (Evicted)"),
        ),
        (pod("pending", "Pending", json!({})), Some("Pending")),
        (
            // Running but not ready, with no waiting or terminated container: the phase.
            pod(
                "unready",
                "Running",
                json!({"containerStatuses": [{"name": "a", "image": "a:1", "ready": false, "restartCount": 0, "state": {"running": {}}}]}),
            ),
            Some("Running"),
        ),
    ];
    for (p, expected) in cases {
        assert_eq!(pod_detail(&p).as_deref(), expected, "{p}");
    }
}

#[test]
fn only_the_recent_of_two_warning_events_is_shown() {
    let events = vec![
        warning_event(30 * 60, "Kustomization", "old", "BuildFailed", "old"),
        warning_event(2 * 60, "Kustomization", "new", "BuildFailed", "new"),
    ];
    let rows = event_rows(&events, NOW);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].name.as_str(), rows[0].age_seconds), ("new", 120));
}

#[test]
fn event_time_falls_back_to_event_time_then_creation_timestamp() {
    let mut by_event_time = warning_event(0, "Kustomization", "a", "R", "m");
    by_event_time
        .as_object_mut()
        .unwrap()
        .remove("lastTimestamp");
    by_event_time["eventTime"] = json!("2026-05-01T09:59:50.123456Z");
    let mut by_creation = warning_event(0, "Kustomization", "b", "R", "m");
    by_creation.as_object_mut().unwrap().remove("lastTimestamp");
    by_creation["metadata"]["creationTimestamp"] = json!("2026-05-01T09:58:00Z");
    let mut undated = warning_event(0, "Kustomization", "c", "R", "m");
    undated.as_object_mut().unwrap().remove("lastTimestamp");
    let mut future = warning_event(0, "Kustomization", "d", "R", "m");
    future["lastTimestamp"] = json!("2026-05-01T10:00:03Z");
    let rows = event_rows(&[by_creation, undated, by_event_time, future], NOW);
    let got: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r.name.as_str(), r.age_seconds))
        .collect();
    assert_eq!(got, [("d", 0), ("a", 9), ("b", 120)]);
}

#[test]
fn more_than_twenty_events_end_in_and_n_more() {
    let events: Vec<Value> = (0..23)
        .map(|i| {
            warning_event(
                i * 10,
                "HelmRelease",
                &format!("r{i:02}"),
                "UpgradeFailed",
                "failed",
            )
        })
        .collect();
    let report = build_report(
        Engine::Flux,
        &flux_target(&[]),
        Listed {
            events: Some(events),
            ..Listed::default()
        },
        NOW,
    );
    let lines = render(&report);
    assert_eq!(lines[1], "  Warning events (flux-system, last 5m)");
    assert_eq!(lines.len(), 2 + 20 + 1);
    assert_eq!(
        lines[2],
        "    0s ago   HelmRelease/r00  UpgradeFailed: failed"
    );
    assert_eq!(
        lines[21],
        "    3m ago   HelmRelease/r19  UpgradeFailed: failed"
    );
    assert_eq!(lines[22], "    … and 3 more");
    assert_eq!(
        to_json(&report)["events"].as_array().map(Vec::len),
        Some(23)
    );
}

#[test]
fn event_ages() {
    let cases = [
        (0, "0s"),
        (59, "59s"),
        (60, "1m"),
        (299, "4m"),
        (3_599, "59m"),
        (3_600, "1h0m"),
        (7_380, "2h3m"),
    ];
    for (seconds, text) in cases {
        assert_eq!(format_age(seconds), text);
    }
}

#[test]
fn an_empty_report_renders_nothing() {
    let report = build_report(Engine::ArgoCd, &argocd_target(), Listed::default(), NOW);
    assert!(report.is_empty());
    assert!(render(&report).is_empty());
}

#[test]
fn summary_lines() {
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let several = names(&["apps/a", "apps/b", "infra/c"]);
    let timeout_names = names(&["apps/podinfo", "infra/x"]);
    let seven = names(&["a/1", "a/2", "a/3", "a/4", "a/5", "a/6", "a/7"]);
    let hint = "run ksail workload reconcile -v for details";
    let cases: Vec<(Summary<'_>, bool, &str)> = vec![
        (
            Summary::RootFailure {
                object: "infra/cert-manager",
                reason: "HealthCheckFailed",
                blocked: 1,
            },
            true,
            "reconcile failed: infra/cert-manager (HealthCheckFailed); 1 dependent blocked; see diagnostics above",
        ),
        (
            Summary::RootFailure {
                object: "infra/cert-manager",
                reason: "HealthCheckFailed",
                blocked: 2,
            },
            true,
            "reconcile failed: infra/cert-manager (HealthCheckFailed); 2 dependents blocked; see diagnostics above",
        ),
        (
            Summary::RootFailure {
                object: "argocd/web",
                reason: "OperationState/Failed",
                blocked: 0,
            },
            false,
            "reconcile failed: argocd/web (OperationState/Failed); run ksail workload reconcile -v for details",
        ),
        (
            Summary::Several { objects: &several },
            true,
            "reconcile failed: 3 resources not ready (apps/a, apps/b, infra/c); see diagnostics above",
        ),
        (
            Summary::Several { objects: &seven },
            true,
            "reconcile failed: 7 resources not ready (a/1, a/2, a/3, a/4, a/5, …); see diagnostics above",
        ),
        (
            Summary::Timeout {
                after: Duration::from_secs(300),
                attempts: 3,
                not_ready: &timeout_names,
                total: 7,
            },
            true,
            "reconcile timed out after 5m0s (3 attempts): 2 of 7 objects not ready (apps/podinfo, infra/x); see diagnostics above",
        ),
        (
            Summary::Timeout {
                after: Duration::from_secs(90),
                attempts: 1,
                not_ready: &timeout_names[..1],
                total: 1,
            },
            false,
            "reconcile timed out after 1m30s (1 attempt): 1 of 1 object not ready (apps/podinfo); run ksail workload reconcile -v for details",
        ),
    ];
    for (summary, shown, expected) in cases {
        assert_eq!(summary_line(&summary, shown, hint), expected);
    }
}

#[test]
fn budget_is_fifteen_seconds_unless_the_test_knob_is_set() {
    let cwd = std::env::temp_dir();
    let env = |vars: &[(&str, &str)]| crate::process::ProcessEnv::fixed(vars, cwd.clone());
    assert_eq!(budget_from_env(&env(&[])), Ok(Duration::from_secs(15)));
    assert_eq!(
        budget_from_env(&env(&[("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "300")])),
        Ok(Duration::from_millis(300))
    );
    let bad = budget_from_env(&env(&[("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "soon")]))
        .expect_err("not a number");
    assert_eq!(bad.class, crate::error::FailureClass::Usage);
    assert!(bad.message.contains("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS"));
}
