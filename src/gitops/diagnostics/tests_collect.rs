//! `collect` against the fake API server: the rows it finds, the reachability probe, and the one
//! shared deadline.

use std::time::{Duration, Instant};

use fake_apiserver::fixtures::{self, EventTimes, HelmState};
use fake_apiserver::{FakeApiServer, Route, ServerOptions, Verb};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::tests::{argocd_target, flux_target};
use super::*;
use crate::gitops::Engine;

const BUDGET: Duration = Duration::from_millis(300);
/// Slack for scheduling on a busy 2-core machine; a stalled request would take seconds.
const SLACK: Duration = Duration::from_millis(700);

fn client_for_url(url: &str) -> kube::Client {
    crate::k8s::test_client(url)
}

fn client(server: &FakeApiServer) -> kube::Client {
    client_for_url(&server.url())
}

/// [`collect`] for Flux with the default target, now, within `budget`.
async fn collect_flux(client: &kube::Client, budget: Duration) -> Option<Report> {
    collect(
        client,
        Engine::Flux,
        &flux_target(&[]),
        budget,
        OffsetDateTime::now_utc(),
    )
    .await
}

/// The collection that began at `started` ended at the budget: not before, and not much after.
fn assert_cut_off_at_the_budget(started: Instant) {
    let elapsed = started.elapsed();
    assert!(
        elapsed >= BUDGET && elapsed < BUDGET + SLACK,
        "took {elapsed:?}"
    );
}

fn with_conditions(mut obj: Value, conditions: Value) -> Value {
    obj["metadata"]["generation"] = json!(1);
    obj["status"] = json!({"observedGeneration": 1, "conditions": conditions});
    obj
}

fn seed_flux(server: &FakeApiServer) {
    let ready = json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "ok"}]);
    server.put_object(with_conditions(
        fixtures::kustomization("flux-system", "flux-system", "flux-system", &[]),
        ready.clone(),
    ));
    server.put_object(with_conditions(
        fixtures::kustomization("infra", "cert-manager", "flux-system/flux-system", &[]),
        json!([{"type": "Ready", "status": "False", "reason": "HealthCheckFailed", "message": "timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']"}]),
    ));
    server.put_object(with_conditions(
        fixtures::kustomization("apps", "podinfo", "flux-system/flux-system", &["infra/cert-manager"]),
        json!([{"type": "Ready", "status": "False", "reason": "DependencyNotReady", "message": "dependency 'infra/cert-manager' is not ready"}]),
    ));
    server.put_object(fixtures::helm_release(
        "podinfo",
        "podinfo",
        HelmState::NotReady("UpgradeFailed".to_string()),
    ));
    server.put_object(fixtures::helm_release("ok", "ok", HelmState::Ready));
    server.put_object(with_conditions(
        fixtures::oci_repository("flux-system", "flux-system", "oci://registry/k8s", "dev"),
        json!([{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored"}]),
    ));
    server.put_object(fixtures::pod_running("flux-system", "source-controller-1"));
    server.put_object(fixtures::pod_waiting(
        "flux-system",
        "helm-controller-5d8f9c7b6-x2x4q",
        "ghcr.io/fluxcd/helm-controller:v1.3.0",
        "CrashLoopBackOff",
        5,
    ));
    server.put_object(fixtures::pod_terminated("flux-system", "job-1", 1, "Error"));
    server.put_object(fixtures::pod_init_waiting(
        "flux-system",
        "notification-controller-1",
        "PodInitializing",
    ));
    // A pod elsewhere is not about the GitOps engine.
    server.put_object(fixtures::pod_phase("default", "elsewhere", "Pending", None));
    let event = |name: &str, type_: &str, involved: &str, seconds_ago: i64| {
        fixtures::event(
            "flux-system",
            name,
            type_,
            "HealthCheckFailed",
            "timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']",
            "Kustomization",
            involved,
            EventTimes::last_seconds_ago(seconds_ago),
        )
    };
    server.put_object(event("recent", "Warning", "cert-manager", 120));
    server.put_object(event("stale", "Warning", "old", 30 * 60));
    server.put_object(event("normal", "Normal", "podinfo", 10));
}

#[tokio::test]
async fn collect_returns_the_flux_rows() {
    let server = FakeApiServer::start(ServerOptions::flux());
    seed_flux(&server);
    let target = flux_target(&[("apps/podinfo", "infra/cert-manager")]);
    let report = collect(
        &client(&server),
        Engine::Flux,
        &target,
        Duration::from_secs(10),
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("a reachable server with failures gives a report");

    let rows: Vec<Vec<String>> = report
        .resources
        .iter()
        .map(|s| {
            s.rows
                .iter()
                .map(|r| format!("{} {} {}", r.state.symbol(), r.object.kind, r.object))
                .collect()
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            vec![
                "✗ Kustomization infra/cert-manager".to_string(),
                "· Kustomization apps/podinfo".to_string()
            ],
            vec!["✗ HelmRelease podinfo/podinfo".to_string()],
            vec![],
        ]
    );
    let pods: Vec<(&str, &str)> = report
        .pods
        .iter()
        .map(|p| (p.name.as_str(), p.detail.as_str()))
        .collect();
    assert_eq!(
        pods,
        [
            (
                "helm-controller-5d8f9c7b6-x2x4q",
                "CrashLoopBackOff (ghcr.io/fluxcd/helm-controller:v1.3.0, 5 restarts)"
            ),
            ("job-1", "exited 1 (Error)"),
            ("notification-controller-1", "init: PodInitializing"),
        ]
    );
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0].name, "cert-manager");
    assert!(
        (120..=125).contains(&report.events[0].age_seconds),
        "{:?}",
        report.events[0]
    );

    let lines = render(&report);
    assert_eq!(lines[0], "Diagnostics (Flux)");
    assert!(
        lines.contains(&"    · apps/podinfo        blocked by infra/cert-manager".to_string()),
        "{lines:#?}"
    );

    let requests = server.requests();
    let event_lists: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/api/v1/namespaces/flux-system/events")
        .collect();
    assert_eq!(event_lists.len(), 1);
    assert_eq!(
        event_lists[0].query_param("fieldSelector").as_deref(),
        Some("type=Warning")
    );
    assert!(
        requests.iter().any(|r| r.path == "/version"),
        "the probe comes first"
    );
    assert_eq!(requests.first().map(|r| r.path.as_str()), Some("/version"));
    assert!(
        requests.iter().all(|r| !r.is_write()),
        "diagnostics never write"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path == "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations"),
        "Flux kinds are listed in all namespaces"
    );
}

#[tokio::test]
async fn collect_lists_argocd_applications_in_the_argocd_namespace_only() {
    let server = FakeApiServer::start(ServerOptions::argocd());
    let app = |ns: &str, name: &str, status: Value| json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"namespace": ns, "name": name}, "spec": {}, "status": status});
    server.put_object(app("argocd", "web", json!({"sync": {"status": "OutOfSync"}, "health": {"status": "Progressing", "message": "rolling out"}})));
    server.put_object(app(
        "argocd",
        "ok",
        json!({"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}),
    ));
    server.put_object(app(
        "team",
        "other",
        json!({"sync": {"status": "OutOfSync"}}),
    ));
    let report = collect(
        &client(&server),
        Engine::ArgoCd,
        &argocd_target(),
        Duration::from_secs(10),
        OffsetDateTime::now_utc(),
    )
    .await
    .expect("a report");
    assert_eq!(
        render(&report),
        [
            "Diagnostics (Argo CD)",
            "  Applications",
            "    ► argocd/web  OutOfSync/Progressing · rolling out"
        ]
    );
}

#[tokio::test]
async fn nothing_to_show_is_no_report() {
    let server = FakeApiServer::start(ServerOptions::flux());
    server.put_object(fixtures::pod_running("flux-system", "source-controller-1"));
    let report = collect_flux(&client(&server), Duration::from_secs(10)).await;
    assert_eq!(report, None);
}

#[tokio::test]
async fn an_unreachable_server_gives_no_report_quickly() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let started = Instant::now();
    let report = collect_flux(
        &client_for_url(&format!("http://127.0.0.1:{port}")),
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(report, None);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unauthorized_probe_gives_no_report() {
    let server = FakeApiServer::start(ServerOptions::flux());
    seed_flux(&server);
    server.unauthorized_all();
    let report = collect_flux(&client(&server), Duration::from_secs(10)).await;
    assert_eq!(report, None);
    assert_eq!(
        server.requests().len(),
        1,
        "nothing is read after a failed probe"
    );
}

#[tokio::test]
async fn a_stalled_probe_is_cut_off_at_the_budget() {
    let server = FakeApiServer::start(ServerOptions::flux());
    seed_flux(&server);
    server.delay(Route::prefix("/version"), Verb::Any, 10_000);
    let started = Instant::now();
    let report = collect_flux(&client(&server), BUDGET).await;
    assert_eq!(report, None);
    assert_cut_off_at_the_budget(started);
}

#[tokio::test]
async fn stalled_and_failing_sections_are_omitted_and_the_rest_is_shown_by_the_deadline() {
    let server = FakeApiServer::start(ServerOptions::flux());
    seed_flux(&server);
    server.delay(Route::resource("pods"), Verb::List, 10_000);
    server.fail_next(Route::resource("helmreleases"), Verb::List, 500, 1);
    let started = Instant::now();
    let report = collect_flux(&client(&server), BUDGET)
        .await
        .expect("the sections that answered");
    assert_cut_off_at_the_budget(started);
    assert!(report.pods.is_empty(), "the stalled pod list is left out");
    assert!(
        report.resources[1].rows.is_empty(),
        "the failed HelmRelease list is left out"
    );
    assert_eq!(report.resources[0].rows.len(), 2);
    assert_eq!(report.events.len(), 1);
    let lines = render(&report);
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("Pods not ready") || l.contains("HelmReleases")),
        "{lines:#?}"
    );
}
