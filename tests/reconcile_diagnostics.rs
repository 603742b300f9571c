//! Failure diagnostics through the binary (reconcile.md "Failure diagnostics", testing.md
//! "Reconcile tests"): the golden Flux and Argo CD report layouts, the 5-minute event window, the
//! 20-event cap, silence when the API server cannot be probed, the shortened budget, each summary
//! line form and the JSON `diagnostics` member.
//!
//! The clusters are the fake API server with simulators; `gitOpsEngine: None` (engine detected,
//! no registry, no revision gate) keeps the runs free of a registry. Event ages vary with the
//! clock, so events are created at offsets that stay inside one age bucket for a minute (120 s
//! ago prints `2m ago` until 180 s have passed).

mod support;

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::fixtures::{self, EventTimes};
use fake_apiserver::simulators::{
    AppOutcome, ArgoCd, FluxKustomization, KsOutcome, OperationOutcome,
};
use fake_apiserver::{FakeApiServer, Route, ServerOptions, Verb};
use serde_json::{Value, json};
use support::fake_cluster::FakeCluster;
use support::{
    assert_error_line, assert_exit, describe, has_timestamp_prefix, progress_lines, stderr_lines,
    stdout_lines,
};

const DIGEST: &str = "sha256:1a2b3c4d5e6f00000000000000000000000000000000000000000000000000aa";
const CERT_MANAGER_MESSAGE: &str =
    "timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']";
const HELM_MESSAGE: &str = "Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.5.0: context deadline exceeded";

struct Cluster {
    fake: FakeCluster,
    kustomize: Option<Arc<FluxKustomization>>,
    argo: Option<Arc<ArgoCd>>,
}

impl Cluster {
    /// A Flux cluster whose sync source `flux-system/flux-system` becomes ready when asked.
    fn flux() -> Cluster {
        let (fake, kustomize) = FakeCluster::flux_detected(DIGEST);
        Cluster {
            fake,
            kustomize: Some(kustomize),
            argo: None,
        }
    }

    /// [`Cluster::flux`] with `infra/cert-manager` failing its health check.
    fn cert_manager_failing() -> Cluster {
        let c = Cluster::flux();
        c.failing(
            "infra",
            "cert-manager",
            "HealthCheckFailed",
            CERT_MANAGER_MESSAGE,
        );
        c
    }

    /// An Argo CD cluster with the Application simulator (50 ms per step).
    fn argocd() -> Cluster {
        let server = FakeApiServer::start(ServerOptions::argocd());
        let argo = ArgoCd::new(50, 50, DIGEST);
        server.add_simulator(argo.clone());
        let fake = FakeCluster::around(server);
        fake.engine("None");
        Cluster {
            fake,
            kustomize: None,
            argo: Some(argo),
        }
    }

    /// A Kustomization from the sync source with a scripted outcome.
    fn kustomization(&self, namespace: &str, name: &str, depends_on: &[&str], outcome: KsOutcome) {
        self.fake.server.put_object(fixtures::kustomization(
            namespace,
            name,
            "flux-system/flux-system",
            depends_on,
        ));
        if let Some(k) = &self.kustomize {
            k.set_outcome(&format!("{namespace}/{name}"), outcome);
        }
    }

    fn failing(&self, namespace: &str, name: &str, reason: &str, message: &str) {
        self.kustomization(
            namespace,
            name,
            &[],
            KsOutcome::Failed {
                reason: reason.into(),
                message: message.into(),
            },
        );
    }

    fn warning_event(
        &self,
        namespace: &str,
        name: &str,
        seconds_ago: i64,
        kind: &str,
        object: &str,
    ) {
        let health = ("Warning", "HealthCheckFailed");
        let about = (kind, object);
        self.put(event(
            (namespace, name),
            health,
            CERT_MANAGER_MESSAGE,
            about,
            seconds_ago,
        ));
    }

    fn put(&self, object: Value) {
        self.fake.server.put_object(object);
    }

    /// A recent (2 minutes old) warning event about the Kustomization `object`.
    fn recent_warning(&self, name: &str, object: &str) {
        self.warning_event("flux-system", name, 120, "Kustomization", object);
    }

    /// One attempt with 100 ms reset and observe waits (no helm-controller runs here) and a 3 s
    /// diagnostics budget, and `vars`.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let defaults = [
            ("KSAIL_TEST_RETRY_ATTEMPTS", "1"),
            ("KSAIL_TEST_RESET_WAIT_MS", "100"),
            ("KSAIL_TEST_SUSPEND_OBSERVE_MS", "100"),
            ("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "3000"),
        ];
        let mut cmd = self.fake.reconcile(args, &[&defaults[..], vars].concat());
        cmd.output().expect("run ksail")
    }

    /// [`Cluster::run`] that fails with exit 1.
    fn run_failed(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let output = self.run(args, vars);
        assert_exit(&output, 1);
        output
    }
}

/// An event `(namespace, name)` of `(type, reason)` about `(kind, name)`, last seen
/// `seconds_ago`.
fn event(
    (namespace, name): (&str, &str),
    (event_type, reason): (&str, &str),
    message: &str,
    (kind, object): (&str, &str),
    seconds_ago: i64,
) -> Value {
    let times = EventTimes::last_seconds_ago(seconds_ago);
    fixtures::event(
        namespace, name, event_type, reason, message, kind, object, times,
    )
}

/// The report (from `Diagnostics (…)`) through the final error line, exactly as printed.
fn report_block(output: &Output, engine: &str) -> Vec<String> {
    let lines = stderr_lines(output);
    let start = lines
        .iter()
        .position(|l| l == &format!("Diagnostics ({engine})"))
        .unwrap_or_else(|| panic!("no diagnostics report\n{}", describe(output)));
    lines[start..].to_vec()
}

/// The report through the error line is `golden`, line for line.
#[track_caller]
fn assert_report(output: &Output, engine: &str, golden: &str) {
    let expected: Vec<&str> = golden.lines().collect();
    assert_lines(&report_block(output, engine), &expected, output);
}

fn assert_lines(actual: &[String], expected: &[&str], output: &Output) {
    let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(actual, expected.as_slice(), "\n{}", describe(output));
}

/// The golden Flux failure: a Kustomization failing its health check, a dependent blocked, a
/// failing HelmRelease, a crash-looping controller pod and a warning event.
fn golden_flux_cluster() -> Cluster {
    let c = Cluster::cert_manager_failing();
    c.kustomization("apps", "podinfo", &["infra/cert-manager"], KsOutcome::Ready);
    let mut release = fixtures::helm_release(
        "podinfo",
        "podinfo",
        fixtures::HelmState::NotReady("UpgradeFailed".into()),
    );
    release["status"]["conditions"][0]["message"] = json!(HELM_MESSAGE);
    c.put(release);
    let helm_controller = "helm-controller-5d8f9c7b6-x2x4q";
    let image = "ghcr.io/fluxcd/helm-controller:v1.3.0";
    c.put(fixtures::pod_waiting(
        "flux-system",
        helm_controller,
        image,
        "CrashLoopBackOff",
        5,
    ));
    // Healthy pods and Normal events are not shown.
    let source_controller = "source-controller-6b7d9f8c4-abcde";
    c.put(fixtures::pod_running("flux-system", source_controller));
    c.put(event(
        ("flux-system", "podinfo.normal"),
        ("Normal", "ReconciliationSucceeded"),
        "Reconciliation finished",
        ("Kustomization", "podinfo"),
        60,
    ));
    c.recent_warning("cert-manager.1", "cert-manager");
    c
}

#[test]
fn diagnostics_golden_flux_report_and_summary_line() {
    let c = golden_flux_cluster();
    let output = c.run_failed(&["--timeout", "10s"], &[]);
    assert!(
        stdout_lines(&output).is_empty(),
        "stdout is empty on failure"
    );
    assert_report(
        &output,
        "Flux",
        r#"Diagnostics (Flux)
  Kustomizations
    ✗ infra/cert-manager  HealthCheckFailed · timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']
    · apps/podinfo        blocked by infra/cert-manager
  HelmReleases
    ✗ podinfo/podinfo     UpgradeFailed · Helm upgrade failed for release podinfo/podinfo with chart podinfo@6.5.0: context deadline exceeded
  Pods not ready (flux-system)
    helm-controller-5d8f9c7b6-x2x4q  CrashLoopBackOff (ghcr.io/fluxcd/helm-controller:v1.3.0, 5 restarts)
  Warning events (flux-system, last 5m)
    2m ago  Kustomization/cert-manager  HealthCheckFailed: timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']
error: reconcile failed: infra/cert-manager (HealthCheckFailed); 1 dependent blocked; see diagnostics above"#,
    );
    assert_error_line(&output, "see diagnostics above");
}

#[test]
fn diagnostics_json_member_holds_the_report_and_the_text_goes_to_stderr() {
    let c = golden_flux_cluster();
    let output = c.run_failed(&["--timeout", "10s", "--output", "json"], &[]);
    // The text report still goes to stderr, before the error line.
    let block = report_block(&output, "Flux");
    assert_eq!(block.len(), 11, "\n{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "failed");
    assert_eq!(doc["exitCode"], 1);
    // The diagnostics are in the document, not "above": the error says what to do.
    assert_eq!(
        doc["error"],
        "reconcile failed: infra/cert-manager (HealthCheckFailed); 1 dependent blocked; inspect them with kubectl describe, fix the cause and push again"
    );
    let diagnostics = &doc["diagnostics"];
    assert_eq!(diagnostics["engine"], "Flux");
    assert_eq!(diagnostics["namespace"], "flux-system");
    assert_eq!(
        diagnostics["resources"],
        json!([
            {"kind": "Kustomization", "namespace": "infra", "name": "cert-manager", "state": "failed",
             "reason": "HealthCheckFailed", "message": CERT_MANAGER_MESSAGE},
            {"kind": "Kustomization", "namespace": "apps", "name": "podinfo", "state": "blocked",
             "reason": "DependencyNotReady", "message": "blocked by infra/cert-manager"},
            {"kind": "HelmRelease", "namespace": "podinfo", "name": "podinfo", "state": "failed",
             "reason": "UpgradeFailed", "message": HELM_MESSAGE},
        ])
    );
    assert_eq!(
        diagnostics["pods"],
        json!([{"name": "helm-controller-5d8f9c7b6-x2x4q",
                "detail": "CrashLoopBackOff (ghcr.io/fluxcd/helm-controller:v1.3.0, 5 restarts)"}])
    );
    let events = diagnostics["events"].as_array().expect("events array");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["kind"], "Kustomization");
    assert_eq!(events[0]["name"], "cert-manager");
    assert_eq!(events[0]["reason"], "HealthCheckFailed");
    assert_eq!(events[0]["message"], CERT_MANAGER_MESSAGE);
    let age = events[0]["ageSeconds"].as_u64().expect("ageSeconds");
    assert!((120..180).contains(&age), "{age}");
}

#[test]
fn diagnostics_golden_argocd_report() {
    let c = Cluster::argocd();
    let app = |name: &str| {
        json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {"repoURL": "oci://kind-local-registry:5000/k8s", "targetRevision": "dev", "path": "."},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
                "syncPolicy": {"automated": {}},
            },
        })
    };
    for name in ["web", "api", "cache", "ok"] {
        c.put(app(name));
    }
    let argo = c.argo.as_ref().unwrap();
    let apply_failed = "one or more objects failed to apply:\n  Deployment.apps \"web\" is invalid";
    argo.script_operation(
        "argocd/web",
        vec![OperationOutcome::Failed(apply_failed.into())],
    );
    let warming_up = "rpc error: code = Unknown desc = repo-server is warming up";
    argo.script_app(
        "argocd/api",
        vec![AppOutcome::ComparisonError(warming_up.into())],
    );
    argo.script_app("argocd/cache", vec![AppOutcome::Progressing]);
    for pod in [
        fixtures::pod_running("argocd", "argocd-application-controller-0"),
        fixtures::pod_terminated("argocd", "argocd-dex-server-55b", 1, "Error"),
        fixtures::pod_init_waiting("argocd", "argocd-repo-server-7c9d", "PodInitializing"),
        fixtures::pod_phase("argocd", "argocd-redis-0", "Pending", Some("Unschedulable")),
        fixtures::pod_phase("argocd", "argocd-node-x", "Unknown", None),
    ] {
        c.put(pod);
    }
    c.put(event(
        ("argocd", "web.1"),
        ("Warning", "OperationFailed"),
        "Operation failed:   one or more objects failed to apply",
        ("Application", "web"),
        150,
    ));
    // An event in another namespace is not read.
    c.put(event(
        ("default", "other.1"),
        ("Warning", "BackOff"),
        "Back-off restarting failed container",
        ("Pod", "other"),
        150,
    ));

    let output = c.run_failed(&["--timeout", "2s"], &[]);
    assert_report(
        &output,
        "Argo CD",
        r#"Diagnostics (Argo CD)
  Applications
    ✗ argocd/api    ComparisonError · rpc error: code = Unknown desc = repo-server is warming up
    ✗ argocd/web    OperationState/Failed · one or more objects failed to apply: Deployment.apps "web" is invalid
    ► argocd/cache  Synced/Progressing
  Pods not ready (argocd)
    argocd-dex-server-55b    exited 1 (Error)
    argocd-node-x            Unknown
    argocd-redis-0           Pending (Unschedulable)
    argocd-repo-server-7c9d  init: PodInitializing
  Warning events (argocd, last 5m)
    2m ago  Application/web  OperationFailed: Operation failed: one or more objects failed to apply
error: reconcile failed: argocd/web (OperationState/Failed); see diagnostics above"#,
    );
}

#[test]
fn diagnostics_show_warning_events_of_the_last_5_minutes_only() {
    let c = Cluster::cert_manager_failing();
    c.recent_warning("recent", "recent");
    c.warning_event("flux-system", "old", 1800, "Kustomization", "old");
    let output = c.run_failed(&["--timeout", "10s"], &[]);
    let block = report_block(&output, "Flux");
    let events_at = block
        .iter()
        .position(|l| l == "  Warning events (flux-system, last 5m)")
        .unwrap_or_else(|| panic!("no events section\n{}", describe(&output)));
    assert_lines(
        &block[events_at + 1..block.len() - 1],
        &[
            "    2m ago  Kustomization/recent  HealthCheckFailed: timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']",
        ],
        &output,
    );
    assert!(
        !stderr_lines(&output)
            .iter()
            .any(|l| l.contains("Kustomization/old"))
    );
}

#[test]
fn diagnostics_cap_events_at_20_and_json_lists_all() {
    let c = Cluster::cert_manager_failing();
    // 25 events, 125 s to 245 s old (all "2m" to "4m", inside the window), newest first shown.
    for i in 0..25 {
        let seconds_ago = 125 + 5 * i64::from(i);
        c.warning_event(
            "flux-system",
            &format!("ev-{i:02}"),
            seconds_ago,
            "Kustomization",
            &format!("k{i:02}"),
        );
    }
    let output = c.run_failed(&["--timeout", "10s", "--output", "json"], &[]);
    let block = report_block(&output, "Flux");
    let events_at = block
        .iter()
        .position(|l| l == "  Warning events (flux-system, last 5m)")
        .unwrap_or_else(|| panic!("no events section\n{}", describe(&output)));
    let rows = &block[events_at + 1..block.len() - 1];
    assert_eq!(
        rows.len(),
        21,
        "20 events and the rest line\n{}",
        describe(&output)
    );
    assert_eq!(rows[20], "    … and 5 more");
    // Newest first: k00 .. k19 shown, k20 .. k24 hidden.
    for (i, row) in rows[..20].iter().enumerate() {
        assert!(
            row.contains(&format!("Kustomization/k{i:02} ")),
            "row {i}: {row}"
        );
    }
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let names: Vec<&str> = doc["diagnostics"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["name"].as_str().unwrap_or_default())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("k{i:02}")).collect();
    assert_eq!(
        names,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn diagnostics_unreachable_server_prints_nothing_but_the_error_line() {
    // A kubeconfig for a server that is gone: the engine is never known, nothing is collected.
    let c = Cluster::flux();
    let FakeCluster {
        env,
        server,
        kubeconfig,
    } = c.fake;
    drop(server);
    let output = env
        .ksail(["workload", "reconcile", "--timeout", "5s"])
        .env("KUBECONFIG", &kubeconfig)
        .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
        .output()
        .expect("run ksail");
    assert_exit(&output, 1);
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "only the error line\n{}", describe(&output));
    assert_error_line(&output, "cannot reach the Kubernetes API server");
}

/// The cert-manager failure with a recent warning event, whose `/version` probe meets `fault`.
fn probe_meets(fault: impl FnOnce(&FakeApiServer, Route)) -> Cluster {
    let c = Cluster::cert_manager_failing();
    c.recent_warning("recent", "cert-manager");
    fault(&c.fake.server, Route::prefix("/version"));
    c
}

#[test]
fn diagnostics_probe_failure_omits_the_report_silently() {
    // The run itself works and fails terminally; then the API server stops answering /version.
    let c = probe_meets(|server, version| server.drop_connection(version, Verb::Any, 1000));
    let output = c.run_failed(&["--timeout", "10s"], &[]);
    let raw = stderr_lines(&output);
    // Every line but the error line is a stamped progress line: no report line, no section.
    for line in &raw[..raw.len() - 1] {
        assert!(
            has_timestamp_prefix(line),
            "unexpected line {line:?}\n{}",
            describe(&output)
        );
        assert!(
            !line.contains("Diagnostics") && !line.contains("version"),
            "{line}"
        );
    }
    let lines = progress_lines(&output);
    assert!(
        lines[lines.len() - 2]
            .starts_with("kustomization infra/cert-manager: failed: HealthCheckFailed"),
        "the last line before the error is the attempt's own\n{}",
        describe(&output)
    );
    assert_error_line(
        &output,
        "reconcile failed: infra/cert-manager (HealthCheckFailed); ",
    );
    assert!(!raw.last().unwrap().contains("see diagnostics above"));
    // Nothing was listed after the probe failed.
    let requests = c.fake.server.requests();
    let probe = requests
        .iter()
        .position(|r| r.path == "/version")
        .expect("the probe was sent");
    let after: Vec<String> = requests[probe + 1..]
        .iter()
        .filter(|r| r.path.contains("/pods") || r.path.contains("/events"))
        .map(|r| r.path.clone())
        .collect();
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn diagnostics_stalled_server_honours_the_budget() {
    // /version answers after 20 s; the budget is 300 ms.
    let c = probe_meets(|server, version| server.delay(version, Verb::Any, 20_000));
    let started = Instant::now();
    let output = c.run(
        &["--timeout", "10s"],
        &[("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "300")],
    );
    let ended = Instant::now();
    let elapsed = ended - started;
    assert_exit(&output, 1);
    assert!(elapsed < Duration::from_secs(6), "the run took {elapsed:?}");
    // The run ends about 300 ms after the probe was sent, not when /version would answer.
    let requests = c.fake.server.requests();
    let probe = requests
        .iter()
        .find(|r| r.path == "/version")
        .expect("the probe was sent");
    let after_probe = ended.duration_since(probe.at);
    assert!(
        after_probe >= Duration::from_millis(280) && after_probe < Duration::from_millis(1500),
        "the run ended {after_probe:?} after the probe; the budget is 300 ms"
    );
    let lines = stderr_lines(&output);
    assert!(
        !lines.iter().any(|l| l.starts_with("Diagnostics")),
        "{}",
        describe(&output)
    );
    assert_error_line(
        &output,
        "reconcile failed: infra/cert-manager (HealthCheckFailed)",
    );
}

#[test]
fn diagnostics_summary_line_for_several_root_failures() {
    let c = Cluster::cert_manager_failing();
    c.failing(
        "apps",
        "web",
        "BuildFailed",
        "kustomize build failed: missing resource",
    );
    let output = c.run_failed(&["--timeout", "10s"], &[]);
    assert_report(
        &output,
        "Flux",
        r#"Diagnostics (Flux)
  Kustomizations
    ✗ apps/web            BuildFailed · kustomize build failed: missing resource
    ✗ infra/cert-manager  HealthCheckFailed · timeout waiting for: [Deployment/cert-manager/cert-manager status: 'InProgress']
error: reconcile failed: 2 resources not ready (apps/web, infra/cert-manager); see diagnostics above"#,
    );
}

#[test]
fn diagnostics_summary_line_for_one_root_without_dependents() {
    let c = Cluster::cert_manager_failing();
    let output = c.run_failed(&["--timeout", "10s"], &[]);
    let lines = stderr_lines(&output);
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "error: reconcile failed: infra/cert-manager (HealthCheckFailed); see diagnostics above"
        ),
        "{}",
        describe(&output)
    );
}

#[test]
fn diagnostics_summary_line_for_a_timeout() {
    let c = Cluster::flux();
    // Progressing for a minute: a `►` row, and the attempt times out.
    c.kustomization("apps", "slow", &[], KsOutcome::Slow(60_000));
    let output = c.run(&["--timeout", "1s"], &[("KSAIL_TEST_RETRY_ATTEMPTS", "2")]);
    assert_exit(&output, 3);
    assert_report(
        &output,
        "Flux",
        r#"Diagnostics (Flux)
  Kustomizations
    ► apps/slow  Progressing · Reconciliation in progress
error: reconcile timed out after 1s (2 attempts): 1 of 2 objects not ready (apps/slow); see diagnostics above"#,
    );
}
