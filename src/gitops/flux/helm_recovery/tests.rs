//! Recovery against the fake API server with the HelmRelease simulator.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::fixtures::{HelmState, helm_release};
use fake_apiserver::simulators::HelmReleaseSim;
use fake_apiserver::{FakeApiServer, LoggedRequest, Route, ServerOptions, Verb};
use kube::api::ApiResource;
use kube::core::GroupVersionKind;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// The reset request token of these runs.
const TOKEN: &str = "2026-12-05T01:00:00.000000001Z";

use super::guard::ResumeGuard;
use super::*;

type Captured = crate::progress::Recorder;

struct Harness {
    server: FakeApiServer,
    sim: Arc<HelmReleaseSim>,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

/// A Flux fake server with the helm-controller simulator (observing a suspension after
/// `observe_ms`) and a client configured like ksail's (no built-in retries).
async fn harness(observe_ms: u64) -> Harness {
    let h = harness_handling_resets(observe_ms).await;
    // Most tests pin the suspend → resume fallback: a controller without reset requests.
    h.sim.ignore_resets();
    h
}

/// [`harness`] with a helm-controller that handles reset requests, as every one since Flux 2.2.
async fn harness_handling_resets(observe_ms: u64) -> Harness {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = FakeApiServer::start(ServerOptions::flux());
    let sim = HelmReleaseSim::new(observe_ms, 20);
    server.add_simulator(sim.clone());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path, &["fake"], None).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    Harness {
        server,
        sim,
        client,
        _dir: dir,
    }
}

impl Harness {
    /// One recovery run over the served HelmRelease API with the test token.
    async fn recover(&self, out: &Captured, bounds: RecoveryBounds) -> RecoveryReport {
        self.recover_until(out, bounds, &CancellationToken::new())
            .await
    }

    /// [`Harness::recover`], cancelled by `cancel`.
    async fn recover_until(
        &self,
        out: &Captured,
        bounds: RecoveryBounds,
        cancel: &CancellationToken,
    ) -> RecoveryReport {
        recover(
            &self.client,
            Some(&helm_resource()),
            out,
            bounds,
            TOKEN,
            cancel,
        )
        .await
    }
}

fn helm_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("helm.toolkit.fluxcd.io", "v2", "HelmRelease"),
        "helmreleases",
    )
}

fn bounds(observe_ms: u64, budget_ms: u64) -> RecoveryBounds {
    RecoveryBounds {
        // The reset request is not handled by the old controller these tests play: fall back
        // quickly.
        reset_wait: Duration::from_millis(50),
        observe: Duration::from_millis(observe_ms),
        resume_budget: Duration::from_millis(budget_ms),
    }
}

fn stalled(ns: &str, name: &str) -> serde_json::Value {
    helm_release(ns, name, HelmState::Stalled("RetriesExceeded".into()))
}

fn upgrade_failed(ns: &str, name: &str) -> serde_json::Value {
    helm_release(ns, name, HelmState::NotReady("UpgradeFailed".into()))
}

fn object_path(ns: &str, name: &str) -> String {
    format!("/apis/helm.toolkit.fluxcd.io/v2/namespaces/{ns}/helmreleases/{name}")
}

/// The suspend and resume PATCHes of one release, as (`spec.suspend` sent, request). The reset
/// request before them (annotations only) is left out.
fn patches(server: &FakeApiServer, ns: &str, name: &str) -> Vec<(bool, LoggedRequest)> {
    let path = object_path(ns, name);
    server
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path == path)
        .filter_map(|r| {
            let body = r.body_json().unwrap();
            assert_eq!(
                r.content_type.as_deref(),
                Some("application/merge-patch+json")
            );
            let suspend = body["spec"]["suspend"].as_bool()?;
            Some((suspend, r))
        })
        .collect()
}

/// The `spec.suspend` values the suspend and resume PATCHes of `ns/name` sent, in order.
fn suspend_order(server: &FakeApiServer, ns: &str, name: &str) -> Vec<bool> {
    patches(server, ns, name)
        .iter()
        .map(|(suspend, _)| *suspend)
        .collect()
}

fn suspended_now(server: &FakeApiServer, ns: &str, name: &str) -> bool {
    let object = server
        .get_object("helm.toolkit.fluxcd.io", "helmreleases", ns, name)
        .unwrap();
    object
        .pointer("/spec/suspend")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
}

/// Poll the request log (test side only) until the suspend PATCH of `ns/name` is recorded.
async fn suspend_sent(server: &FakeApiServer, ns: &str, name: &str) {
    let started = Instant::now();
    while !suspend_order(server, ns, name).contains(&true) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no suspend for {ns}/{name}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn reset(ns: &str, name: &str, reason: &str, result: ResetResult) -> HelmReleaseReset {
    HelmReleaseReset {
        namespace: ns.into(),
        name: name.into(),
        reason: reason.into(),
        result,
    }
}

#[tokio::test]
async fn stuck_releases_are_suspended_observed_and_resumed_in_order() {
    let h = harness(150).await;
    h.server.put_object(stalled("podinfo", "b"));
    h.server.put_object(upgrade_failed("apps", "a"));
    h.server
        .put_object(helm_release("apps", "ready", HelmState::Ready));
    h.server.put_object(helm_release(
        "apps",
        "dep",
        HelmState::NotReady("DependencyNotReady".into()),
    ));
    let mut off = stalled("apps", "off");
    off["spec"]["suspend"] = json!(true);
    h.server.put_object(off);

    let out = Captured::default();
    let started = Instant::now();
    let report = h.recover(&out, bounds(5_000, 5_000)).await;

    // The controller observed after 150 ms; the 5 s bound was not waited out.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.resets,
        vec![
            reset("apps", "a", "UpgradeFailed", ResetResult::Resumed),
            reset("podinfo", "b", "RetriesExceeded", ResetResult::Resumed),
        ]
    );
    assert_eq!(
        out.lines(),
        vec![
            "helmrelease apps/a: stuck (UpgradeFailed), resetting",
            "helmrelease podinfo/b: stuck (RetriesExceeded), resetting",
            "helmrelease apps/a: the controller did not handle the reset request; suspending and resuming it",
            "helmrelease podinfo/b: the controller did not handle the reset request; suspending and resuming it",
            "helmrelease apps/a: resumed",
            "helmrelease podinfo/b: resumed",
            "reset 2 stuck HelmReleases",
        ]
    );
    for (ns, name) in [("apps", "a"), ("podinfo", "b")] {
        let sent = patches(&h.server, ns, name);
        let order: Vec<bool> = sent.iter().map(|(suspend, _)| *suspend).collect();
        assert_eq!(order, vec![true, false], "{ns}/{name}");
        // The resume waited for the controller to record the suspended generation.
        let waited = sent[1].1.at.duration_since(sent[0].1.at);
        assert!(
            waited >= Duration::from_millis(150),
            "{ns}/{name} resumed after {waited:?}"
        );
        assert!(!suspended_now(&h.server, ns, name));
    }
    for name in ["ready", "dep", "off"] {
        assert!(
            patches(&h.server, "apps", name).is_empty(),
            "{name} was touched"
        );
    }
    let order: Vec<(&str, String)> = h
        .sim
        .order()
        .iter()
        .map(|a| (a.action, a.key.clone()))
        .collect();
    assert_eq!(order.len(), 4);
    assert_eq!(order.iter().filter(|(a, _)| *a == "suspend").count(), 2);
    assert!(order[2..].iter().all(|(a, _)| *a == "resume"));

    // The waits used watches: the only LISTs are detection and the start of the two watches
    // (for the reset request, then for the suspensions).
    let requests = h.server.requests();
    let helm_lists = requests
        .iter()
        .filter(|r| r.is_list() && r.path.ends_with("/helmreleases"))
        .count();
    assert_eq!(helm_lists, 3);
    assert!(
        requests
            .iter()
            .any(|r| r.is_watch() && r.path.ends_with("/helmreleases"))
    );
}

#[tokio::test]
async fn a_controller_that_never_observes_is_waited_for_only_up_to_the_bound() {
    let h = harness(10).await;
    h.server.put_object(stalled("apps", "a"));
    h.sim.never_observe("apps/a");
    let out = Captured::default();
    let started = Instant::now();
    let report = h.recover(&out, bounds(200, 2_000)).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_eq!(suspend_order(&h.server, "apps", "a"), vec![true, false]);
    let sent = patches(&h.server, "apps", "a");
    assert!(sent[1].1.at.duration_since(sent[0].1.at) >= Duration::from_millis(200));
    assert_eq!(
        report.resets,
        vec![reset("apps", "a", "RetriesExceeded", ResetResult::Resumed)]
    );
    assert!(!suspended_now(&h.server, "apps", "a"));
}

#[tokio::test]
async fn a_failing_resume_names_the_release_and_the_flux_command() {
    let h = harness(300).await;
    h.server.put_object(stalled("apps", "a"));
    let out = Captured::default();
    let cancel = CancellationToken::new();
    let recovery = h.recover_until(&out, bounds(2_000, 3_000), &cancel);
    // Break the resume only: the fault goes in after the suspend, while the controller observes.
    let inject = async {
        suspend_sent(&h.server, "apps", "a").await;
        h.server.fail_next(
            Route::object("helmreleases", Some("apps"), "a"),
            Verb::Patch,
            500,
            3,
        );
    };
    let (report, ()) = tokio::join!(recovery, inject);

    assert_eq!(
        report.resets,
        vec![reset(
            "apps",
            "a",
            "RetriesExceeded",
            ResetResult::ResumeFailed
        )]
    );
    assert_eq!(
        suspend_order(&h.server, "apps", "a"),
        vec![true, false, false, false],
        "three resume tries"
    );
    assert_eq!(
        out.lines(),
        vec![
            "helmrelease apps/a: stuck (RetriesExceeded), resetting",
            "helmrelease apps/a: the controller did not handle the reset request; suspending and resuming it",
            "warning: helmrelease apps/a: could not resume (500 InternalError: injected fault); it is still suspended; run: flux resume helmrelease a -n apps",
            "reset 0 stuck HelmReleases, 1 could not be reset",
        ]
    );
    assert!(suspended_now(&h.server, "apps", "a"));
}

#[tokio::test]
async fn cancelling_during_the_observe_wait_still_resumes() {
    let h = harness(10).await;
    h.server.put_object(stalled("apps", "a"));
    h.sim.never_observe("apps/a");
    let out = Captured::default();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let recovery = h.recover_until(&out, bounds(10_000, 2_000), &cancel);
    let interrupt = async {
        suspend_sent(&h.server, "apps", "a").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    };
    let (report, ()) = tokio::join!(recovery, interrupt);

    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.resets,
        vec![reset("apps", "a", "RetriesExceeded", ResetResult::Resumed)]
    );
    assert_eq!(suspend_order(&h.server, "apps", "a"), vec![true, false]);
    assert!(!suspended_now(&h.server, "apps", "a"));
}

#[tokio::test]
async fn a_cancelled_token_sends_no_suspend() {
    let h = harness(10).await;
    h.server.put_object(stalled("apps", "a"));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let out = Captured::default();
    let report = h.recover_until(&out, bounds(200, 200), &cancel).await;
    assert!(report.resets.is_empty());
    assert!(h.server.requests().iter().all(|r| !r.is_write()));
}

#[tokio::test]
async fn a_rejected_suspend_is_skipped_and_never_resumed() {
    let h = harness(20).await;
    h.server.put_object(stalled("apps", "a"));
    h.server.put_object(upgrade_failed("apps", "b"));
    // The reset request and then the suspend are refused.
    h.server.fail_next(
        Route::object("helmreleases", Some("apps"), "b"),
        Verb::Patch,
        403,
        2,
    );
    let out = Captured::default();
    let report = h.recover(&out, bounds(2_000, 2_000)).await;

    assert_eq!(
        report.resets,
        vec![
            reset("apps", "a", "RetriesExceeded", ResetResult::Resumed),
            reset("apps", "b", "UpgradeFailed", ResetResult::SuspendFailed),
        ]
    );
    assert_eq!(
        suspend_order(&h.server, "apps", "b"),
        vec![true],
        "only the rejected suspend, no resume"
    );
    assert_eq!(
        out.lines(),
        vec![
            "helmrelease apps/a: stuck (RetriesExceeded), resetting",
            "helmrelease apps/b: stuck (UpgradeFailed), resetting",
            "helmrelease apps/a: the controller did not handle the reset request; suspending and resuming it",
            "helmrelease apps/b: the controller did not handle the reset request; suspending and resuming it",
            "warning: helmrelease apps/b: could not suspend (403 Forbidden: injected fault); skipped",
            "helmrelease apps/a: resumed",
            "reset 1 stuck HelmRelease, 1 could not be reset",
        ]
    );
}

#[tokio::test]
async fn a_suspend_with_unknown_outcome_is_still_resumed() {
    let h = harness(20).await;
    h.server.put_object(stalled("apps", "a"));
    h.server.drop_connection(
        Route::object("helmreleases", Some("apps"), "a"),
        Verb::Patch,
        1,
    );
    let out = Captured::default();
    let report = h.recover(&out, bounds(500, 2_000)).await;
    assert_eq!(
        report.resets,
        vec![reset("apps", "a", "RetriesExceeded", ResetResult::Resumed)]
    );
    let sent = patches(&h.server, "apps", "a");
    assert_eq!(sent.last().map(|p| p.0), Some(false));
    assert!(!suspended_now(&h.server, "apps", "a"));
}

/// A LIST that fails, or never answers within the 30 s request timeout, gives one warning;
/// recovery then goes on without touching anything.
#[tokio::test]
async fn a_failed_or_unanswered_list_warns_and_changes_nothing() {
    for unanswered in [false, true] {
        let h = harness(20).await;
        h.server.put_object(stalled("apps", "a"));
        let reason = if unanswered {
            h.server
                .delay(Route::resource("helmreleases"), Verb::List, 60_000);
            // On the paused clock the 30 s pass at once, when the runtime has nothing else to do.
            tokio::time::pause();
            "no answer within 30s"
        } else {
            h.server
                .fail_next(Route::resource("helmreleases"), Verb::List, 500, 1);
            "500 InternalError: injected fault"
        };
        let out = Captured::default();
        let report = h.recover(&out, bounds(200, 200)).await;
        assert!(report.resets.is_empty());
        assert_eq!(
            out.lines(),
            vec![format!(
                "warning: could not check for stuck HelmReleases: {reason}"
            )]
        );
        assert!(h.server.requests().iter().all(|r| !r.is_write()));
    }
}

#[tokio::test]
async fn nothing_stuck_or_api_not_served_sends_nothing() {
    let h = harness(20).await;
    h.server
        .put_object(helm_release("apps", "ready", HelmState::Ready));
    let out = Captured::default();
    let cancel = CancellationToken::new();
    let report = recover(&h.client, None, &out, bounds(200, 200), TOKEN, &cancel).await;
    assert!(report.resets.is_empty());
    assert!(h.server.requests().is_empty());
    let report = h.recover_until(&out, bounds(200, 200), &cancel).await;
    assert!(report.resets.is_empty());
    assert!(out.lines().is_empty());
    assert!(h.server.requests().iter().all(|r| !r.is_write()));
}

/// `apps/a` suspended on the server, as recovery leaves it before resuming.
fn suspended_release(h: &Harness) {
    let mut object = stalled("apps", "a");
    object["spec"]["suspend"] = json!(true);
    h.server.put_object(object);
}

/// A resume guard (2 s budget) holding the suspended `apps/a`.
fn guard_holding_a(client: kube::Client, out: &dyn Reporter) -> ResumeGuard<'_> {
    let guard = ResumeGuard::new(client, helm_resource(), Duration::from_secs(2), out);
    guard.hold(&ReleaseKey {
        namespace: "apps".into(),
        name: "a".into(),
    });
    guard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_resumes_what_it_holds() {
    let h = harness(20).await;
    suspended_release(&h);
    let out = Captured::default();
    drop(guard_holding_a(h.client.clone(), &out));
    assert!(!suspended_now(&h.server, "apps", "a"));
    assert_eq!(out.lines(), vec!["helmrelease apps/a: resumed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_unwinding_through_the_guard_resumes() {
    let h = harness(20).await;
    suspended_release(&h);
    let out: &'static Captured = Box::leak(Box::default());
    let client = h.client.clone();
    let task = tokio::spawn(async move {
        let _guard = guard_holding_a(client, out);
        panic!("boom while a release is suspended");
    });
    assert!(task.await.unwrap_err().is_panic());
    assert!(!suspended_now(&h.server, "apps", "a"));
    assert_eq!(out.lines(), vec!["helmrelease apps/a: resumed"]);
}

/// Lines come out in key order, so a resume that ends while an earlier one still runs waits for
/// its line. A guard dropped then prints that line instead of sending the resume again, and
/// resumes what it still holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_dropped_before_a_finished_resume_is_printed_prints_it_without_resending() {
    let h = harness(20).await;
    let key = |name: &str| ReleaseKey {
        namespace: "apps".into(),
        name: name.into(),
    };
    let out = Captured::default();
    let guard = ResumeGuard::new(
        h.client.clone(),
        helm_resource(),
        Duration::from_secs(5),
        &out,
    );
    for name in ["a", "b"] {
        let mut object = stalled("apps", name);
        object["spec"]["suspend"] = json!(true);
        h.server.put_object(object);
        guard.hold(&key(name));
    }
    // apps/a, first in key order, answers its resumes late; apps/b at once.
    h.server.delay(
        Route::Object {
            resource: "helmreleases".into(),
            namespace: Some("apps".into()),
            name: "a".into(),
        },
        Verb::Patch,
        300,
    );

    // Both run in this one task, so the wait sees the guard between two of its steps.
    tokio::select! {
        _ = guard.resume_all() => panic!("apps/a's resume answered before apps/b's"),
        _ = async {
            while guard.held() != [key("a")] {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }
    assert!(out.lines().is_empty(), "apps/b's line waits for apps/a's");
    drop(guard);

    assert_eq!(
        out.lines(),
        vec!["helmrelease apps/b: resumed", "helmrelease apps/a: resumed"]
    );
    assert_eq!(
        suspend_order(&h.server, "apps", "b"),
        [false],
        "apps/b was resumed once"
    );
    assert!(!suspended_now(&h.server, "apps", "a"));
    assert!(!suspended_now(&h.server, "apps", "b"));
}

#[test]
fn a_guard_dropped_outside_a_runtime_resumes_on_a_helper_thread() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let h = runtime.block_on(harness(20));
    suspended_release(&h);
    let out = Captured::default();
    // The runtime that created the client keeps running on its worker, as in `main`.
    drop(guard_holding_a(h.client.clone(), &out));
    assert!(!suspended_now(&h.server, "apps", "a"));
    assert_eq!(out.lines(), vec!["helmrelease apps/a: resumed"]);
}

#[test]
fn keys_sort_by_the_joined_namespace_and_name() {
    let key = |ns: &str, name: &str| ReleaseKey {
        namespace: ns.into(),
        name: name.into(),
    };
    // '-' sorts before '/', so "a-b/x" comes before "a/x"; the pair order would say otherwise.
    let mut keys = vec![key("a", "x"), key("a-b", "x"), key("a", "w")];
    keys.sort();
    assert_eq!(keys, vec![key("a-b", "x"), key("a", "w"), key("a", "x")]);
}

#[test]
fn summary_and_json() {
    let report = RecoveryReport {
        resets: vec![
            reset("apps", "a", "RetriesExceeded", ResetResult::Resumed),
            reset("apps", "b", "UpgradeFailed", ResetResult::Resumed),
        ],
    };
    assert_eq!(report.summary(), "reset 2 stuck HelmReleases");
    let mut failed = report.clone();
    failed
        .resets
        .push(reset("apps", "c", "TestFailed", ResetResult::ResumeFailed));
    assert_eq!(
        failed.summary(),
        "reset 2 stuck HelmReleases, 1 could not be reset"
    );
    assert_eq!(
        failed.to_json()[2],
        json!({"namespace": "apps", "name": "c", "reason": "TestFailed", "result": "resumeFailed"})
    );
    assert_eq!(ResetResult::SuspendFailed.json_name(), "suspendFailed");
}

#[test]
fn bounds_come_from_the_test_only_variables() {
    let env = ProcessEnv::fixed(&[], PathBuf::from("/"));
    assert_eq!(
        RecoveryBounds::from_env(&env).unwrap(),
        RecoveryBounds::default()
    );
    assert_eq!(
        RecoveryBounds::default(),
        RecoveryBounds {
            reset_wait: Duration::from_secs(10),
            ..bounds(10_000, 30_000)
        }
    );
    let env = ProcessEnv::fixed(
        &[
            (test_only::RESET_WAIT_MS, "50"),
            (test_only::SUSPEND_OBSERVE_MS, "200"),
            (test_only::RESUME_BUDGET_MS, "300"),
        ],
        PathBuf::from("/"),
    );
    assert_eq!(RecoveryBounds::from_env(&env).unwrap(), bounds(200, 300));
    let env = ProcessEnv::fixed(&[(test_only::RESUME_BUDGET_MS, "soon")], PathBuf::from("/"));
    let error = RecoveryBounds::from_env(&env).unwrap_err();
    assert_eq!(error.class, crate::error::FailureClass::Usage);
    assert!(error.message.contains("KSAIL_TEST_RESUME_BUDGET_MS"));
}

/// helm-controller handles the reset request (`resetAt` = `requestedAt`, `forceAt` too): the
/// release is retried without ever being suspended, so nothing can be left suspended.
#[tokio::test]
async fn a_controller_that_handles_reset_requests_is_never_suspended() {
    let h = harness_handling_resets(50).await;
    h.server.put_object(stalled("apps", "a"));
    let out = Captured::default();

    let bounds = RecoveryBounds {
        reset_wait: Duration::from_secs(5),
        ..bounds(5_000, 5_000)
    };
    let report = h.recover(&out, bounds).await;

    assert_eq!(
        report.resets,
        vec![reset("apps", "a", "RetriesExceeded", ResetResult::Reset)]
    );
    assert_eq!(report.to_json()[0]["result"], "reset");
    assert_eq!(
        out.lines(),
        vec![
            "helmrelease apps/a: stuck (RetriesExceeded), resetting",
            "reset 1 stuck HelmRelease",
        ]
    );
    assert!(
        patches(&h.server, "apps", "a").is_empty(),
        "no suspend or resume"
    );
    let bodies: Vec<serde_json::Value> = h
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.path == object_path("apps", "a"))
        .filter_map(LoggedRequest::body_json)
        .collect();
    assert_eq!(
        bodies,
        vec![json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": TOKEN,
            "reconcile.fluxcd.io/resetAt": TOKEN,
            "reconcile.fluxcd.io/forceAt": TOKEN,
        }}})]
    );
    let release = h
        .server
        .get_object("helm.toolkit.fluxcd.io", "helmreleases", "apps", "a")
        .unwrap();
    assert_eq!(release["status"]["lastHandledResetAt"], TOKEN);
    assert!(!suspended_now(&h.server, "apps", "a"));
}
