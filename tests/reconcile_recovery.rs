//! HelmRelease recovery through the binary (reconcile.md "HelmRelease recovery", testing.md
//! "Reconcile tests"): detection, the suspend → observed → resume order, the observe bound, a
//! failing resume, SIGINT during the observe wait, and the JSON `helmReleaseResets` member.
//!
//! Every test runs the real `ksail workload reconcile` against the fake API server with the Flux
//! types, a Flux source and kustomize simulator (so the rest of the run succeeds) and
//! `simulators::HelmReleaseSim`. `gitOpsEngine: None` keeps the run free of a registry: the
//! engine is detected, and there is no revision gate.
#![allow(unsafe_code)] // signals and getrusage are libc calls; denied everywhere else

mod support;

use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::fixtures::{self, HelmState};
use fake_apiserver::simulators::HelmReleaseSim;
use fake_apiserver::{FakeApiServer, LoggedRequest, Route, Verb};
use serde_json::{Value, json};
use support::fake_cluster::{FakeCluster, MERGE_PATCH};
use support::output::wait_bounded;
use support::{assert_exit, describe, progress_lines, stderr_lines, stdout_lines};

const DIGEST: &str = "sha256:1a2b3c4d5e6f00000000000000000000000000000000000000000000000000aa";
const HELM_PREFIX: &str = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/";
const KUSTOMIZE_PREFIX: &str = "/apis/kustomize.toolkit.fluxcd.io";
/// One attempt, and a short wait for reset requests (the fixture's controller ignores them
/// unless a test says otherwise).
const ONE_ATTEMPT: [(&str, &str); 2] = [
    ("KSAIL_TEST_RETRY_ATTEMPTS", "1"),
    ("KSAIL_TEST_RESET_WAIT_MS", "100"),
];

/// A fake Flux cluster whose sync source and root Kustomization become ready when asked, plus
/// the HelmRelease simulator (observing after `observe_ms`, ready 0 ms after resume).
struct Fixture {
    cluster: FakeCluster,
    helm: Arc<HelmReleaseSim>,
}

impl Fixture {
    /// These tests pin the suspend → resume fallback: a controller without reset requests
    /// (before Flux 2.2). [`Fixture::handling_resets`] plays a current one.
    fn new(observe_ms: u64) -> Fixture {
        let fixture = Fixture::handling_resets(observe_ms);
        fixture.helm.ignore_resets();
        fixture
    }

    /// A helm-controller that handles reset requests, as every one since Flux 2.2.
    fn handling_resets(observe_ms: u64) -> Fixture {
        let (cluster, _) = FakeCluster::flux_detected(DIGEST);
        cluster.server.put_object(fixtures::kustomization(
            "flux-system",
            "flux-system",
            "flux-system",
            &[],
        ));
        let helm = HelmReleaseSim::new(observe_ms, 0);
        cluster.server.add_simulator(helm.clone());
        Fixture { cluster, helm }
    }

    fn put_release(&self, namespace: &str, name: &str, state: HelmState) {
        self.cluster
            .server
            .put_object(fixtures::helm_release(namespace, name, state));
    }

    fn not_ready(&self, namespace: &str, name: &str, reason: &str) {
        self.put_release(namespace, name, HelmState::NotReady(reason.into()));
    }

    fn stalled(&self, namespace: &str, name: &str, reason: &str) {
        self.put_release(namespace, name, HelmState::Stalled(reason.into()));
    }

    /// `ksail workload reconcile --timeout 10s <extra>` against this cluster, one attempt.
    fn process(&self, extra: &[&str], vars: &[(&str, &str)]) -> std::process::Command {
        let args = [&["--timeout", "10s"][..], extra].concat();
        self.cluster
            .reconcile_process(&args, &[&ONE_ATTEMPT[..], vars].concat())
    }

    fn run(&self, extra: &[&str], vars: &[(&str, &str)]) -> Output {
        let args = [&["--timeout", "10s"][..], extra].concat();
        let mut cmd = self
            .cluster
            .reconcile(&args, &[&ONE_ATTEMPT[..], vars].concat());
        cmd.output().expect("run ksail")
    }

    /// PATCH requests to HelmReleases, as `(ns/name, body)`, in arrival order.
    fn helm_patches(&self) -> Vec<(String, Value)> {
        helm_patches(&self.cluster.server.requests())
    }
}

/// The bodies of the patches of `key` (`ns/name`), in order.
fn bodies_of<'a>(patches: &'a [(String, Value)], key: &str) -> Vec<&'a Value> {
    patches
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, b)| b)
        .collect()
}

/// The suspend and resume PATCHes (the reset requests before them, annotations only, are left
/// out: see [`reset_requests`]).
fn helm_patches(requests: &[LoggedRequest]) -> Vec<(String, Value)> {
    all_helm_patches(requests)
        .into_iter()
        .filter(|(_, body)| body.get("spec").is_some())
        .collect()
}

/// The reset requests (annotations only) sent to HelmReleases.
fn reset_requests(requests: &[LoggedRequest]) -> Vec<(String, Value)> {
    all_helm_patches(requests)
        .into_iter()
        .filter(|(_, body)| body.get("spec").is_none())
        .collect()
}

fn all_helm_patches(requests: &[LoggedRequest]) -> Vec<(String, Value)> {
    requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with(HELM_PREFIX))
        .map(|r| (release_of(&r.path), r.body_json().unwrap_or(Value::Null)))
        .collect()
}

/// `/apis/helm.toolkit.fluxcd.io/v2/namespaces/<ns>/helmreleases/<name>` → `<ns>/<name>`.
fn release_of(path: &str) -> String {
    let rest = path.trim_start_matches(HELM_PREFIX);
    let parts: Vec<&str> = rest.split('/').collect();
    format!("{}/{}", parts[0], parts.get(2).copied().unwrap_or(""))
}

/// The mark ksail sets while it holds a release suspended for a reset.
const SUSPENDED_FOR_RESET: &str = "ksail.devantler.tech/suspended-for-reset";

fn suspend_body() -> Value {
    json!({"metadata": {"annotations": {SUSPENDED_FOR_RESET: "true"}}, "spec": {"suspend": true}})
}

fn resume_body() -> Value {
    json!({"metadata": {"annotations": {SUSPENDED_FOR_RESET: null}}, "spec": {"suspend": false}})
}

fn position(lines: &[String], wanted: &str) -> usize {
    lines.iter().position(|l| l == wanted).unwrap_or_else(|| {
        panic!(
            "missing stderr line {wanted:?}\nstderr:\n{}",
            lines.join("\n")
        )
    })
}

/// A condition `{type, status, reason, "message": "m"}`.
fn condition(kind: &str, status: &str, reason: &str) -> Value {
    json!({"type": kind, "status": status, "reason": reason, "message": "m"})
}

/// A HelmRelease with explicit conditions (for cases the fixture does not build).
fn release_with(namespace: &str, name: &str, suspend: bool, conditions: Value) -> Value {
    let mut obj = fixtures::helm_release(namespace, name, HelmState::Ready);
    obj["status"]["conditions"] = conditions;
    if suspend {
        obj["spec"]["suspend"] = json!(true);
    }
    obj
}

#[test]
fn recovery_detection_resets_each_stuck_reason_and_skips_the_rest() {
    let fx = Fixture::new(0);
    let stuck_ready = [
        ("apps", "install", "InstallFailed"),
        ("apps", "upgrade", "UpgradeFailed"),
        ("apps", "test", "TestFailed"),
        ("apps", "rollback", "RollbackFailed"),
        ("apps", "uninstall", "UninstallFailed"),
        ("apps", "reconcile", "ReconciliationFailed"),
        ("apps", "getlast", "GetLastReleaseFailed"),
    ];
    for (ns, name, reason) in stuck_ready {
        fx.put_release(ns, name, HelmState::NotReady(reason.into()));
    }
    // Stalled=True with any reason, including one no list names.
    let stalled = [
        ("infra", "retries", "RetriesExceeded"),
        ("infra", "norollback", "MissingRollbackTarget"),
        ("infra", "novel", "SomeFutureReason"),
    ];
    for (ns, name, reason) in stalled {
        fx.put_release(ns, name, HelmState::Stalled(reason.into()));
    }
    // Not stuck: transient dependency waits, suspended, ready, other reasons, no conditions.
    for (name, reason) in [
        ("dep", "DependencyNotReady"),
        ("progressing", "Progressing"),
        ("artifact", "ArtifactFailed"),
    ] {
        fx.put_release("skip", name, HelmState::NotReady(reason.into()));
    }
    fx.put_release("skip", "ready", HelmState::Ready);
    let retries_exceeded = condition("Stalled", "True", "RetriesExceeded");
    for (name, suspend, conditions) in [
        (
            "dep-stalled",
            false,
            json!([
                retries_exceeded,
                condition("Ready", "False", "DependencyNotReady")
            ]),
        ),
        (
            "suspended",
            true,
            json!([
                retries_exceeded,
                condition("Ready", "False", "UpgradeFailed")
            ]),
        ),
        ("noconds", false, json!([])),
        (
            "stalled-false",
            false,
            json!([condition("Stalled", "False", "RetriesExceeded")]),
        ),
    ] {
        let release = release_with("skip", name, suspend, conditions);
        fx.cluster.server.put_object(release);
    }

    let output = fx.run(&[], &[("KSAIL_TEST_SUSPEND_OBSERVE_MS", "3000")]);
    assert_exit(&output, 0);

    let mut expected: Vec<(String, String)> = stuck_ready
        .iter()
        .chain(stalled.iter())
        .map(|(ns, name, reason)| (format!("{ns}/{name}"), reason.to_string()))
        .collect();
    expected.sort();

    // Every stuck release got exactly one suspend, then one resume; nothing else was patched.
    let patches = fx.helm_patches();
    for (key, _) in &expected {
        let bodies = bodies_of(&patches, key);
        assert_eq!(
            bodies,
            vec![&suspend_body(), &resume_body()],
            "patches of {key}"
        );
    }
    let patched: std::collections::BTreeSet<&String> = patches.iter().map(|(k, _)| k).collect();
    assert_eq!(
        patched,
        expected.iter().map(|(k, _)| k).collect(),
        "only stuck releases are patched"
    );
    for request in fx.cluster.server.requests() {
        if request.method == "PATCH" && request.path.starts_with(HELM_PREFIX) {
            assert_eq!(request.content_type.as_deref(), Some(MERGE_PATCH));
        }
    }

    // One "stuck" line per release, in namespace/name order, each before its "resumed" line.
    let lines = progress_lines(&output);
    let stuck_lines: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("helmrelease ") && l.ends_with(", resetting"))
        .collect();
    let wanted: Vec<String> = expected
        .iter()
        .map(|(key, reason)| format!("helmrelease {key}: stuck ({reason}), resetting"))
        .collect();
    assert_eq!(
        stuck_lines,
        wanted.iter().collect::<Vec<_>>(),
        "stderr:\n{}",
        lines.join("\n")
    );
    for (key, reason) in &expected {
        let stuck = position(
            &lines,
            &format!("helmrelease {key}: stuck ({reason}), resetting"),
        );
        let resumed = position(&lines, &format!("helmrelease {key}: resumed"));
        assert!(stuck < resumed);
    }
    let summary = position(&lines, "reset 10 stuck HelmReleases");
    assert!(position(&lines, "helmrelease infra/retries: resumed") < summary);
    assert!(!lines.iter().any(|l| l.contains("helmrelease skip/")));
    let stdout = stdout_lines(&output);
    assert_eq!(stdout.len(), 1, "{}", describe(&output));
    assert!(
        stdout[0].starts_with("reconciled Flux: 1 Kustomization ready (revision not checked) in "),
        "{}",
        stdout[0]
    );
    // The controller stand-in saw suspend before resume for each one.
    for (key, _) in &expected {
        let order: Vec<String> = fx
            .helm
            .order_strings()
            .into_iter()
            .filter(|s| s.ends_with(&format!(" {key}")))
            .collect();
        assert_eq!(
            order,
            vec![format!("suspend {key}"), format!("resume {key}")]
        );
    }
}

#[test]
fn recovery_suspends_waits_for_observation_then_resumes_before_any_kustomize_request() {
    // The controller observes the suspension after 400 ms; the bound is far away (5 s), so the
    // resume time shows that ksail waited for the observation, not for the bound.
    let fx = Fixture::new(400);
    fx.not_ready("podinfo", "podinfo", "UpgradeFailed");
    fx.stalled("apps", "web", "RetriesExceeded");

    let started = Instant::now();
    let output = fx.run(&[], &[("KSAIL_TEST_SUSPEND_OBSERVE_MS", "5000")]);
    assert_exit(&output, 0);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    let requests = fx.cluster.server.requests();
    let is_patch = |r: &LoggedRequest, key: &str, body: &Value| {
        r.method == "PATCH"
            && r.path.starts_with(HELM_PREFIX)
            && release_of(&r.path) == key
            && r.body_json().as_ref() == Some(body)
    };
    let index = |key: &str, body: &Value| {
        requests
            .iter()
            .position(|r| is_patch(r, key, body))
            .unwrap_or_else(|| panic!("no {body} patch for {key}"))
    };
    let mut last_resume = 0;
    for key in ["apps/web", "podinfo/podinfo"] {
        let (suspend, resume) = (index(key, &suspend_body()), index(key, &resume_body()));
        assert!(suspend < resume, "{key}: suspend must precede resume");
        let waited = requests[resume].at.duration_since(requests[suspend].at);
        assert!(
            waited >= Duration::from_millis(350) && waited < Duration::from_millis(3000),
            "{key}: resumed {waited:?} after the suspend; expected after the observation (400 ms)"
        );
        last_resume = last_resume.max(resume);
    }
    // All suspends go out before the first resume (one batch).
    let first_resume = requests
        .iter()
        .position(|r| r.method == "PATCH" && r.body_json() == Some(resume_body()))
        .unwrap();
    let last_suspend = requests
        .iter()
        .rposition(|r| r.method == "PATCH" && r.body_json() == Some(suspend_body()))
        .unwrap();
    assert!(last_suspend < first_resume);
    // Recovery is the first change and precedes every request under the kustomize group.
    let before: Vec<String> = requests[..last_resume]
        .iter()
        .filter(|r| r.path.starts_with(KUSTOMIZE_PREFIX))
        .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
        .collect();
    assert!(
        before.is_empty(),
        "requests under {KUSTOMIZE_PREFIX} before recovery ended: {before:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.starts_with(KUSTOMIZE_PREFIX)),
        "the run never reached the Kustomizations"
    );
    // The first writes are the reset requests (which this controller ignores), then a suspend.
    let first_write = requests
        .iter()
        .position(|r| {
            r.is_write()
                && !(r.path.starts_with(HELM_PREFIX)
                    && r.body_json().is_some_and(|body| body.get("spec").is_none()))
        })
        .unwrap();
    assert!(
        is_patch(&requests[first_write], "apps/web", &suspend_body())
            || is_patch(&requests[first_write], "podinfo/podinfo", &suspend_body()),
        "the first write after the reset requests must be a suspend: {:?}",
        requests[first_write].path
    );
    assert_eq!(
        fx.helm.order_strings()[..2]
            .iter()
            .filter(|s| s.starts_with("suspend"))
            .count(),
        2
    );

    let lines = progress_lines(&output);
    let stuck_web = position(
        &lines,
        "helmrelease apps/web: stuck (RetriesExceeded), resetting",
    );
    let stuck_podinfo = position(
        &lines,
        "helmrelease podinfo/podinfo: stuck (UpgradeFailed), resetting",
    );
    let resumed_web = position(&lines, "helmrelease apps/web: resumed");
    let resumed_podinfo = position(&lines, "helmrelease podinfo/podinfo: resumed");
    let summary = position(&lines, "reset 2 stuck HelmReleases");
    assert!(stuck_web < stuck_podinfo && stuck_podinfo < resumed_web);
    assert!(resumed_web < resumed_podinfo && resumed_podinfo < summary);
}

#[test]
fn recovery_with_a_controller_that_never_observes_honours_the_bound_and_resumes() {
    let fx = Fixture::new(0);
    fx.stalled("apps", "web", "RetriesExceeded");
    fx.helm.never_observe("apps/web");

    let started = Instant::now();
    let output = fx.run(&[], &[("KSAIL_TEST_SUSPEND_OBSERVE_MS", "300")]);
    let elapsed = started.elapsed();
    assert_exit(&output, 0);
    assert!(elapsed < Duration::from_secs(5), "the run took {elapsed:?}");

    let requests = fx.cluster.server.requests();
    let suspend = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.body_json() == Some(suspend_body()))
        .expect("a suspend patch");
    let resume = requests
        .iter()
        .find(|r| r.method == "PATCH" && r.body_json() == Some(resume_body()))
        .expect("a resume patch after the bound");
    let waited = resume.at.duration_since(suspend.at);
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_millis(2500),
        "resume came {waited:?} after the suspend; the bound is 300 ms"
    );
    assert_eq!(
        fx.helm.order_strings(),
        vec!["suspend apps/web", "resume apps/web"]
    );
    let lines = progress_lines(&output);
    position(&lines, "helmrelease apps/web: resumed");
    position(&lines, "reset 1 stuck HelmRelease");
}

/// Waits (polling the request log, 10 ms steps) for the first suspend PATCH.
fn wait_for_suspend(server: &FakeApiServer, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !server
        .requests()
        .iter()
        .any(|r| r.method == "PATCH" && r.body_json() == Some(suspend_body()))
    {
        assert!(Instant::now() < deadline, "the suspend PATCH never arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn spawn(fx: &Fixture, extra: &[&str], vars: &[(&str, &str)]) -> std::process::Child {
    fx.process(extra, vars)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ksail")
}

/// `apps/web` stuck (UpgradeFailed) and never observed: the observe wait (1.5 s here) leaves time
/// to break the resume only. Once the suspend has arrived, every further PATCH of the release
/// gets `status`; the run still exits 0.
fn run_with_failing_resume(
    extra: &[&str],
    vars: &[(&str, &str)],
    status: u16,
) -> (Fixture, Output) {
    let fx = Fixture::new(0);
    fx.not_ready("apps", "web", "UpgradeFailed");
    fx.helm.never_observe("apps/web");
    let mut child = spawn(&fx, extra, vars);
    wait_for_suspend(&fx.cluster.server, Duration::from_secs(10));
    let release = Route::object("helmreleases", Some("apps"), "web");
    fx.cluster
        .server
        .fail_next(release, Verb::Patch, status, 100);
    let output = wait_bounded(&mut child, Duration::from_secs(30));
    assert_exit(&output, 0);
    (fx, output)
}

#[test]
fn recovery_failing_resume_warns_with_the_flux_command_and_keeps_exit_0() {
    let vars = [
        ("KSAIL_TEST_SUSPEND_OBSERVE_MS", "1500"),
        ("KSAIL_TEST_RESUME_BUDGET_MS", "5000"),
    ];
    let (fx, output) = run_with_failing_resume(&[], &vars, 500);

    let patches = fx.helm_patches();
    assert_eq!(patches[0], ("apps/web".to_string(), suspend_body()));
    let resumes = patches.iter().filter(|(_, b)| *b == resume_body()).count();
    assert_eq!(resumes, 3, "a failing resume is tried 3 times: {patches:?}");

    let lines = progress_lines(&output);
    let warning = lines
        .iter()
        .find(|l| l.starts_with("warning: helmrelease apps/web: could not resume ("))
        .unwrap_or_else(|| panic!("no resume warning\n{}", describe(&output)));
    assert!(
        warning.ends_with("); it is still suspended; run: flux resume helmrelease web -n apps"),
        "{warning}"
    );
    assert!(
        warning.contains("500"),
        "the reason names the answer: {warning}"
    );
    assert!(!lines.iter().any(|l| l == "helmrelease apps/web: resumed"));
    position(&lines, "reset 0 stuck HelmReleases, 1 could not be reset");
    assert!(
        stdout_lines(&output)[0].starts_with("reconciled Flux: 1 Kustomization ready"),
        "{}",
        describe(&output)
    );
}

/// A current helm-controller handles ksail's reset request: the stuck release is retried
/// without being suspended; the JSON document says `reset`.
#[test]
fn a_stuck_release_is_reset_through_the_controllers_reset_request() {
    let fx = Fixture::handling_resets(0);
    fx.stalled("apps", "web", "RetriesExceeded");

    let output = fx.run(&["--output", "json"], &[]);

    assert_exit(&output, 0);
    assert!(fx.helm_patches().is_empty(), "no suspend or resume");
    let patches = reset_requests(&fx.cluster.server.requests());
    let bodies = bodies_of(&patches, "apps/web");
    assert_eq!(bodies.len(), 1, "one reset request: {bodies:?}");
    let token = bodies[0]["metadata"]["annotations"]["reconcile.fluxcd.io/resetAt"]
        .as_str()
        .expect("a resetAt token");
    assert_eq!(
        bodies[0],
        &json!({"metadata": {"annotations": {
            "reconcile.fluxcd.io/requestedAt": token,
            "reconcile.fluxcd.io/resetAt": token,
            "reconcile.fluxcd.io/forceAt": token,
        }}})
    );
    assert_eq!(fx.helm.order_strings(), ["reset apps/web"]);
    let document: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(
        document["helmReleaseResets"],
        json!([{"namespace": "apps", "name": "web", "reason": "RetriesExceeded", "result": "reset"}])
    );
}

/// A run killed between suspend and resume (`kill -9`, a CI job's timeout) leaves the release
/// suspended with ksail's mark. The next run resumes it and says so; a release the user
/// suspended (no mark) is left alone.
#[test]
fn a_release_an_earlier_run_left_suspended_is_resumed_and_reported() {
    let fx = Fixture::new(0);
    let mut left = fixtures::helm_release("apps", "web", HelmState::Ready);
    left["spec"]["suspend"] = json!(true);
    left["metadata"]["annotations"] = json!({SUSPENDED_FOR_RESET: "true"});
    fx.cluster.server.put_object(left);
    let mut users = fixtures::helm_release("apps", "paused", HelmState::Ready);
    users["spec"]["suspend"] = json!(true);
    fx.cluster.server.put_object(users);

    let output = fx.run(&[], &[]);

    assert_exit(&output, 0);
    assert!(
        stderr_lines(&output).iter().any(|line| line.ends_with(
            "warning: helmrelease apps/web: resumed; an earlier ksail run was stopped while it held it suspended for a reset"
        )),
        "{}",
        describe(&output)
    );
    let patches = fx.helm_patches();
    assert_eq!(bodies_of(&patches, "apps/web"), vec![&resume_body()]);
    assert!(bodies_of(&patches, "apps/paused").is_empty(), "{patches:?}");
    let web = fx
        .cluster
        .server
        .get_object("helm.toolkit.fluxcd.io", "helmreleases", "apps", "web")
        .expect("apps/web exists");
    assert_eq!(web["spec"]["suspend"], json!(false));
    assert_eq!(
        web["metadata"]["annotations"].get(SUSPENDED_FOR_RESET),
        None
    );
}

#[test]
fn recovery_sigint_during_the_observe_wait_resumes_and_exits_130() {
    let fx = Fixture::new(0);
    fx.stalled("apps", "web", "RetriesExceeded");
    fx.not_ready("podinfo", "podinfo", "InstallFailed");
    fx.helm.never_observe("apps/web");
    fx.helm.never_observe("podinfo/podinfo");

    let mut child = spawn(&fx, &[], &[("KSAIL_TEST_SUSPEND_OBSERVE_MS", "60000")]);
    wait_for_suspend(&fx.cluster.server, Duration::from_secs(10));
    // Both suspends are sent together; give the second one a moment to land as well.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fx.helm_patches().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let signalled = Instant::now();
    // SAFETY: kill only sends a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert_eq!(rc, 0);
    let output = wait_bounded(&mut child, Duration::from_secs(30));
    assert_exit(&output, 130);
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "the observe wait was not cut short: {:?}",
        signalled.elapsed()
    );

    let patches = fx.helm_patches();
    for key in ["apps/web", "podinfo/podinfo"] {
        let bodies = bodies_of(&patches, key);
        assert_eq!(
            bodies,
            vec![&suspend_body(), &resume_body()],
            "{key}\n{}",
            describe(&output)
        );
    }
    let requests = fx.cluster.server.requests();
    assert!(
        !requests
            .iter()
            .any(|r| r.path.starts_with(KUSTOMIZE_PREFIX)),
        "nothing after recovery may run after a signal"
    );
    let lines = progress_lines(&output);
    position(&lines, "helmrelease apps/web: resumed");
    position(&lines, "helmrelease podinfo/podinfo: resumed");
    assert_eq!(lines.last().map(String::as_str), Some("error: interrupted"));
    assert!(!lines.iter().any(|l| l.starts_with("Diagnostics")));
}

#[test]
fn recovery_json_lists_helm_release_resets() {
    let fx = Fixture::new(0);
    fx.not_ready("podinfo", "podinfo", "UpgradeFailed");
    fx.stalled("apps", "web", "MissingRollbackTarget");
    fx.not_ready("apps", "dep", "DependencyNotReady");

    let output = fx.run(
        &["--output", "json"],
        &[("KSAIL_TEST_SUSPEND_OBSERVE_MS", "3000")],
    );
    assert_exit(&output, 0);
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(doc["status"], "succeeded");
    assert_eq!(doc["exitCode"], 0);
    assert_eq!(
        doc["helmReleaseResets"],
        json!([
            {"namespace": "apps", "name": "web", "reason": "MissingRollbackTarget", "result": "resumed"},
            {"namespace": "podinfo", "name": "podinfo", "reason": "UpgradeFailed", "result": "resumed"}
        ])
    );
    // The progress lines still go to stderr.
    let lines = progress_lines(&output);
    position(&lines, "reset 2 stuck HelmReleases");
}

#[test]
fn recovery_json_reports_a_failed_resume() {
    let vars = [("KSAIL_TEST_SUSPEND_OBSERVE_MS", "1500")];
    let (_, output) = run_with_failing_resume(&["--output", "json"], &vars, 503);
    let doc: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(
        doc["helmReleaseResets"],
        json!([{"namespace": "apps", "name": "web", "reason": "UpgradeFailed", "result": "resumeFailed"}])
    );
}
