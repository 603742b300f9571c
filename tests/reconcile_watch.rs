//! `ksail workload reconcile` against the fake API server: watching (reconcile.md "Watching"),
//! engine selection ("Engine selection"), the Kubernetes connection and kubeconfig/context
//! resolution ("Kubernetes connection", cli.md "Global flags") and the retry policy ("Retry").

mod support;

use std::net::TcpListener;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::simulators::{FluxKustomization, FluxSource, KsOutcome};
use fake_apiserver::{LoggedRequest, Route, ServerOptions, Verb, fixtures};
use support::fake_cluster::{CONTEXT, FakeCluster, KS_PATH, SHORT_BUDGETS};
use support::output::wait_bounded;
use support::{
    TestEnv, assert_error_line, assert_exit, assert_progress_line, attempt_warnings, describe,
    has_timestamp_prefix, last_stderr_line, progress_lines, stderr_lines, stdout_lines,
    warning_lines,
};

const OCI_PATH: &str = "/apis/source.toolkit.fluxcd.io/v1/ocirepositories";
const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000001";

const FLUX_NOT_INSTALLED: &str = "error: Flux is not installed in this cluster: the kustomize.toolkit.fluxcd.io API is not served; run ksail cluster create, or install Flux";
const ARGOCD_NOT_INSTALLED: &str = "error: Argo CD is not installed in this cluster: the argoproj.io Application API is not served; run ksail cluster create, or install Argo CD";
const BOTH_INSTALLED: &str =
    "error: both Flux and Argo CD are installed; set spec.cluster.gitOpsEngine to choose one";
const NONE_INSTALLED: &str = "error: no GitOps engine is installed in this cluster; run ksail cluster create --gitops-engine Flux, or install Flux or Argo CD";

cluster_rig!(
    /// The fake cluster, with the helpers of these tests.
    Rig
);

impl Rig {
    fn new(options: ServerOptions) -> Rig {
        let bucket = options.flux;
        Rig::with_bucket(options, bucket)
    }

    fn with_bucket(options: ServerOptions, bucket: bool) -> Rig {
        Rig(FakeCluster::start(options, bucket))
    }

    /// A Flux cluster with a sync source and Kustomizations whose controllers make them ready.
    fn flux() -> (Rig, Arc<FluxKustomization>) {
        Rig::flux_serving(DIGEST)
    }

    /// [`Rig::flux`] with a source controller that serves `digest`.
    fn flux_serving(digest: &str) -> (Rig, Arc<FluxKustomization>) {
        Rig::flux_setup(Rig::new(ServerOptions::flux()), digest)
    }

    fn flux_setup(rig: Rig, digest: &str) -> (Rig, Arc<FluxKustomization>) {
        rig.server.put_object(fixtures::oci_repository(
            "flux-system",
            "flux-system",
            "oci://127.0.0.1:1/k8s",
            "dev",
        ));
        for (namespace, name) in [("flux-system", "flux-system"), ("apps", "web")] {
            rig.server.put_object(fixtures::kustomization(
                namespace,
                name,
                "flux-system/flux-system",
                &[],
            ));
        }
        let source = FluxSource::new(20, digest);
        let kustomize = FluxKustomization::new(20);
        rig.server.add_simulator(source);
        rig.server.add_simulator(kustomize.clone());
        (rig, kustomize)
    }

    /// `ksail.yaml` with this engine and, optionally, a registry and a context.
    fn config(&self, engine: &str, registry: Option<&str>, context: Option<&str>) {
        let mut text = format!(
            "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: {engine}\n"
        );
        if let Some(registry) = registry {
            text.push_str(&format!("    localRegistry:\n      registry: {registry}\n"));
        }
        if let Some(context) = context {
            text.push_str(&format!("    connection:\n      context: {context}\n"));
        }
        self.env.write("ksail.yaml", text);
    }

    fn requests(&self) -> Vec<LoggedRequest> {
        self.server.requests()
    }

    fn log(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// GETs of `path` that are not watches (LISTs of a collection path).
    fn lists_of(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path && !r.is_watch())
            .count()
    }

    fn watches_of(&self, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.path == path && r.is_watch())
            .count()
    }

    fn discovery_requests(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == "/apis")
            .count()
    }
}

fn assert_reconciled(output: &Output, prefix: &str) {
    assert_exit(output, 0);
    let lines = stdout_lines(output);
    assert_eq!(lines.len(), 1, "{}", describe(output));
    assert!(lines[0].starts_with(prefix), "{}", describe(output));
}

/// One attempt warning per prefix, in order; returns the warnings.
fn assert_attempt_warnings(output: &Output, prefixes: &[&str]) -> Vec<String> {
    let warnings = attempt_warnings(output);
    assert_eq!(warnings.len(), prefixes.len(), "{}", describe(output));
    for (warning, prefix) in warnings.iter().zip(prefixes) {
        assert!(warning.starts_with(prefix), "{warnings:?}");
    }
    warnings
}

/// The error line (the last stderr line) contains `needle`.
fn assert_error_mentions(output: &Output, needle: &str) {
    let line = last_stderr_line(output);
    assert!(line.contains(needle), "{}", describe(output));
}

/// A loopback port that nothing listens on.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// A kubeconfig whose only context (current) points at `server`, with names of its own so that
/// merging it with another file changes nothing else.
fn kubeconfig_for(server: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {name}-cluster\n  cluster:\n    server: {server}\nusers:\n- name: {name}-user\n  user: {{}}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}-cluster\n    user: {name}-user\ncurrent-context: {name}\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Watching

#[test]
fn while_watches_work_nothing_is_listed_again() {
    let (rig, kustomize) = Rig::flux();
    // Keeps the attempt (and its watches) busy for a while, with events flowing.
    kustomize.set_outcome("apps/web", KsOutcome::Slow(1200));

    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    assert_eq!(rig.lists_of(KS_PATH), 1, "{}", rig.log());
    assert_eq!(rig.lists_of(OCI_PATH), 1, "{}", rig.log());
    assert_eq!(rig.watches_of(KS_PATH), 1, "{}", rig.log());
    assert_eq!(rig.watches_of(OCI_PATH), 1, "{}", rig.log());
    // No GET of single objects either: every status change arrived through the watches.
    let polled: Vec<LoggedRequest> = rig
        .requests()
        .into_iter()
        .filter(|r| {
            r.method == "GET"
                && !r.is_watch()
                && (r.path.starts_with("/apis/kustomize.toolkit.fluxcd.io/")
                    || r.path.starts_with("/apis/source.toolkit.fluxcd.io/"))
                && !r.is_list()
        })
        .collect();
    assert!(polled.is_empty(), "{polled:#?}");
}

#[test]
fn a_watch_that_expires_with_410_relists_and_continues() {
    let (rig, kustomize) = Rig::flux();
    kustomize.set_outcome("apps/web", KsOutcome::Slow(500));
    rig.server
        .expire_next_watches(Route::resource("kustomizations"), 1);
    rig.server
        .expire_next_watches(Route::resource("ocirepositories"), 1);

    let started = Instant::now();
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    assert_eq!(
        rig.lists_of(KS_PATH),
        2,
        "one list, one relist\n{}",
        rig.log()
    );
    assert_eq!(rig.watches_of(KS_PATH), 2, "{}", rig.log());
    assert_eq!(
        rig.lists_of(OCI_PATH),
        2,
        "one list, one relist\n{}",
        rig.log()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_watch_refused_with_405_falls_back_to_polling() {
    let (rig, _) = Rig::flux();
    rig.server.refuse_watches_405("kustomizations");

    let output = rig.run(&["--timeout", "20s", "-v"], &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    assert!(
        rig.lists_of(KS_PATH) >= 2,
        "completion was seen by listing again\n{}",
        rig.log()
    );
    assert_eq!(rig.watches_of(KS_PATH), 1, "no second watch: {}", rig.log());
    // The other kinds keep their watch.
    assert_eq!(rig.lists_of(OCI_PATH), 1, "{}", rig.log());
    let polling = progress_lines(&output)
        .into_iter()
        .any(|l| l.contains("refused") && l.contains("listing every 2s"));
    assert!(polling, "a debug line says so\n{}", describe(&output));
}

#[test]
fn a_source_kind_the_group_does_not_serve_is_ignored() {
    // Discovery reads groups, not resources: source.toolkit.fluxcd.io/v1 here has no Bucket.
    let (rig, _) = Rig::flux_setup(Rig::with_bucket(ServerOptions::flux(), false), DIGEST);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    let bucket_path = "/apis/source.toolkit.fluxcd.io/v1/buckets";
    assert!(rig.lists_of(bucket_path) <= 1, "{}", rig.log());
    assert_eq!(rig.watches_of(bucket_path), 0, "{}", rig.log());
}

// ---------------------------------------------------------------------------------------------
// Engine selection

/// No request but the one `GET /apis`: no discovery documents, nothing else.
fn assert_only_discovery(rig: &Rig) {
    let requests: Vec<String> = rig
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(requests, ["GET /apis"], "{}", rig.log());
}

/// Exactly one `GET /apis` and no per-group (`/apis/<g>/<v>`) or core (`/api…`) discovery.
fn assert_one_discovery(rig: &Rig) {
    assert_eq!(rig.discovery_requests(), 1, "{}", rig.log());
    let documents: Vec<String> = rig
        .requests()
        .iter()
        .filter(|r| {
            let segments: Vec<&str> = r.path.trim_matches('/').split('/').collect();
            matches!(segments.as_slice(), ["apis", _, _] | ["api"] | ["api", _])
        })
        .map(|r| r.path.clone())
        .collect();
    assert!(
        documents.is_empty(),
        "discovery documents read: {documents:?}"
    );
}

/// A run with `gitOpsEngine: <engine>` (and `registry`) against a server with `options` that
/// ksail refuses after discovery: exit `code`, the error line `expected`, no retry.
fn assert_refused(
    options: ServerOptions,
    (engine, registry): (&str, Option<&str>),
    code: i32,
    expected: &str,
) -> Output {
    let rig = Rig::new(options);
    rig.config(engine, registry, None);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_exit(&output, code);
    assert_eq!(last_stderr_line(&output), expected, "{}", describe(&output));
    assert!(attempt_warnings(&output).is_empty(), "not retryable");
    assert_only_discovery(&rig);
    output
}

/// With `gitOpsEngine: None`, the run detects `engine`, says so and succeeds with `prefix`.
fn assert_detects(rig: &Rig, engine: &str, prefix: &str) {
    rig.config("None", None, None);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(&output, prefix);
    assert_progress_line(&output, &format!("reconcile: detected {engine}"));
    assert_one_discovery(rig);
}

/// A run with `gitOpsEngine: <engine>` configured does not detect the engine.
fn assert_not_detected(output: &Output, why: &str) {
    let lines = progress_lines(output);
    let detected = lines.iter().any(|l| l.starts_with("reconcile: detected"));
    assert!(!detected, "{why}{}", describe(output));
}

#[test]
fn engine_flux_configured_and_served() {
    let (_registry, host, digest) = registry_with_dev!(b"layer");
    let (rig, _) = Rig::flux_serving(&digest);
    rig.config("Flux", Some(&host), None);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(
        &output,
        &format!("reconciled Flux: 2 Kustomizations ready at dev@{digest} in "),
    );
    assert_not_detected(&output, "a configured engine is not detected\n");
    assert_progress_line(
        &output,
        "reconcile: Flux; source OCIRepository flux-system/flux-system; tracking 2 Kustomizations",
    );
    assert_one_discovery(&rig);
}

#[test]
fn engine_flux_configured_but_not_served() {
    let served = ServerOptions::argocd();
    let output = assert_refused(served, ("Flux", Some("127.0.0.1:1")), 1, FLUX_NOT_INSTALLED);
    assert_error_line(&output, "Flux is not installed");
}

#[test]
fn engine_argocd_configured_and_served() {
    let (_registry, host, digest) = registry_with_dev!(b"layer");
    let rig = Rig::new(ServerOptions::argocd());
    rig.config("ArgoCD", Some(&host), None);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(
        &output,
        "reconciled Argo CD: 0 Applications synced and healthy at ",
    );
    assert!(
        stdout_lines(&output)[0].contains(&digest),
        "{}",
        describe(&output)
    );
    assert_not_detected(&output, "");
    assert_one_discovery(&rig);
}

#[test]
fn engine_argocd_configured_but_not_served() {
    let served = ServerOptions::flux();
    assert_refused(
        served,
        ("ArgoCD", Some("127.0.0.1:1")),
        1,
        ARGOCD_NOT_INSTALLED,
    );
}

#[test]
fn engine_none_detects_flux() {
    let (rig, _) = Rig::flux();
    let prefix = "reconciled Flux: 2 Kustomizations ready (revision not checked) in ";
    assert_detects(&rig, "Flux", prefix);
}

#[test]
fn engine_none_detects_argocd() {
    let rig = Rig::new(ServerOptions::argocd());
    let prefix = "reconciled Argo CD: 0 Applications synced and healthy ";
    assert_detects(&rig, "Argo CD", prefix);
}

#[test]
fn engine_none_with_both_served_exits_2() {
    let both = ServerOptions {
        flux: true,
        argocd: true,
        ..ServerOptions::default()
    };
    assert_refused(both, ("None", None), 2, BOTH_INSTALLED);
}

#[test]
fn engine_none_with_neither_served_exits_1() {
    assert_refused(ServerOptions::default(), ("None", None), 1, NONE_INSTALLED);
}

// ---------------------------------------------------------------------------------------------
// Retry

#[test]
fn discovery_503_twice_then_success_warns_twice() {
    let (rig, _) = Rig::flux();
    rig.server.fail_next(Route::Any, Verb::Discovery, 503, 2);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    let warnings = assert_attempt_warnings(
        &output,
        &[
            "warning: attempt 1/3 failed, retrying in 10ms: ",
            "warning: attempt 2/3 failed, retrying in 20ms: ",
        ],
    );
    assert!(warnings.iter().all(|w| w.contains("503")), "{warnings:?}");
    for line in stderr_lines(&output) {
        if line.contains("warning: attempt ") {
            assert!(has_timestamp_prefix(&line), "{line:?}");
        }
    }
    assert_eq!(rig.discovery_requests(), 3, "{}", rig.log());
    // Detection is reported once, by the attempt that got that far.
    let detected = progress_lines(&output)
        .iter()
        .filter(|l| *l == "reconcile: detected Flux")
        .count();
    assert_eq!(detected, 1, "{}", describe(&output));
}

/// The API server goes away in the middle of the wait: the first failed relist is said at once,
/// the attempt fails after 10 s of silence instead of waiting out `--timeout` (5 minutes here),
/// the retries find it still gone, and the run exits 1 naming the cause.
/// `ksail workload reconcile <args>` started, once it waits on its watches: they are open and
/// every request patch (the source and both Kustomizations) has been answered. A server that
/// goes away during the requests ends the attempt at once instead (a failed PATCH).
fn spawn_waiting(rig: &Rig, args: &[&str], vars: &[(&str, &str)]) -> std::process::Child {
    let child = rig
        .reconcile_process(args, &[&SHORT_BUDGETS[..], vars].concat())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ksail");
    let waiting = Instant::now() + Duration::from_secs(10);
    loop {
        let requests = rig.requests();
        let watching = requests.iter().any(|r| r.is_watch() && r.path == KS_PATH);
        let patched = requests.iter().filter(|r| r.method == "PATCH").count();
        if watching && patched >= 3 {
            break;
        }
        assert!(
            Instant::now() < waiting,
            "ksail never waited\n{}",
            rig.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last PATCH has arrived; give its answer a moment to reach ksail.
    std::thread::sleep(Duration::from_millis(300));
    child
}

/// A blip: the server goes away and comes back within the 10 s it is given. The attempt goes
/// on (it ends at its own 8 s timeout here, exit 3, as the controller never answers), and
/// the return is said.
#[test]
fn an_api_server_that_comes_back_in_time_does_not_end_the_attempt() {
    let (rig, kustomize) = Rig::flux();
    kustomize.set_outcome("apps/web", KsOutcome::Never);
    let mut child = spawn_waiting(
        &rig,
        &["--timeout", "8s"],
        &[("KSAIL_TEST_RETRY_ATTEMPTS", "1")],
    );

    rig.server.go_away();
    std::thread::sleep(Duration::from_secs(2));
    rig.server.come_back();
    let output = wait_bounded(&mut child, Duration::from_secs(60));

    assert_exit(&output, 3);
    assert!(
        warning_lines(&output)
            .iter()
            .any(|w| w.starts_with("warning: the API server did not answer a relist of ")),
        "{}",
        describe(&output)
    );
    assert_progress_line(&output, "reconcile: the API server answers again");
    assert!(
        !stderr_lines(&output)
            .iter()
            .any(|l| l.contains("cannot reach the Kubernetes API server")),
        "{}",
        describe(&output)
    );
}

#[test]
fn an_api_server_that_goes_away_is_said_at_once_and_ends_the_run() {
    let (rig, kustomize) = Rig::flux();
    kustomize.set_outcome("apps/web", KsOutcome::Never);
    let mut child = spawn_waiting(&rig, &["--timeout", "5m"], &[]);

    rig.server.go_away();
    let output = wait_bounded(&mut child, Duration::from_secs(60));

    assert_exit(&output, 1);
    let warnings = warning_lines(&output);
    assert!(
        warnings.iter().any(|w| w
            .starts_with("warning: the API server did not answer a relist of ")
            && w.ends_with("; waiting up to 10s for it")),
        "{}",
        describe(&output)
    );
    assert!(
        last_stderr_line(&output).contains("cannot reach the Kubernetes API server at"),
        "the error names the real cause\n{}",
        describe(&output)
    );
}

#[test]
fn unauthorized_is_not_retried() {
    let (rig, _) = Rig::flux();
    rig.server.unauthorized_all();
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_exit(&output, 1);
    assert!(
        attempt_warnings(&output).is_empty(),
        "{}",
        describe(&output)
    );
    assert_error_line(
        &output,
        "reconcile failed: 401 Unauthorized: the API server rejected the credentials of the kubeconfig user; renew them, or choose another context with --context",
    );
    assert_eq!(rig.discovery_requests(), 1, "{}", rig.log());
    assert!(
        rig.requests().iter().all(|r| !r.is_write()),
        "{}",
        rig.log()
    );
}

#[test]
fn an_unreachable_server_is_retried_three_times_without_diagnostics() {
    let env = TestEnv::new();
    let port = closed_port();
    let kubeconfig = env.root().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        kubeconfig_for(&format!("http://127.0.0.1:{port}"), CONTEXT),
    )
    .unwrap();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: None\n",
    );
    let output = env
        .ksail(["workload", "reconcile", "--timeout", "20s"])
        .env("KUBECONFIG", &kubeconfig)
        .env("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "1000")
        .output()
        .unwrap();
    assert_exit(&output, 1);
    assert_eq!(
        last_stderr_line(&output),
        format!(
            "error: reconcile failed after 3 attempts: cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context {CONTEXT}): connection refused; check --kubeconfig and --context, or start the cluster"
        ),
        "{}",
        describe(&output)
    );
    // Not a single extra stderr line: the two retry warnings, then the error line.
    let lines = progress_lines(&output);
    assert_eq!(lines.len(), 3, "{}", describe(&output));
    for (n, delay) in [(1, "10ms"), (2, "20ms")] {
        let line = &lines[n - 1];
        assert!(
            line.starts_with(&format!(
                "warning: attempt {n}/3 failed, retrying in {delay}: "
            )) && line.ends_with("connection refused"),
            "{}",
            describe(&output)
        );
    }
    assert!(stdout_lines(&output).is_empty());
}

#[test]
fn retry_after_is_honoured() {
    let (rig, _) = Rig::flux();
    rig.server
        .fail_next_retry_after(Route::Any, Verb::Discovery, 429, 1, 1);
    let started = Instant::now();
    let output = rig.run(
        &["--timeout", "20s"],
        &[("KSAIL_TEST_RETRY_CAP_MS", "2000")],
    );
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    assert_attempt_warnings(&output, &["warning: attempt 1/3 failed, retrying in 1s: "]);
    assert!(started.elapsed() >= Duration::from_secs(1));
}

// ---------------------------------------------------------------------------------------------
// Kubeconfig and context

/// `KUBECONFIG=<dead>:<live>`: the first file's context (current) points at a closed port, the
/// second file holds `kind-kind` for the fake server.
fn two_file_rig() -> (Rig, String, u16) {
    let (rig, _) = Rig::flux();
    let port = closed_port();
    let dead = rig.env.root().join("dead-kubeconfig");
    std::fs::write(
        &dead,
        kubeconfig_for(&format!("http://127.0.0.1:{port}"), "dead"),
    )
    .unwrap();
    let list = format!("{}:{}", dead.display(), rig.kubeconfig.display());
    (rig, list, port)
}

fn run_with_kubeconfig(rig: &Rig, list: &str, args: &[&str]) -> Output {
    let mut full = vec!["workload", "reconcile", "--timeout", "20s"];
    full.extend_from_slice(args);
    rig.env
        .ksail(full)
        .env("KUBECONFIG", list)
        .env("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "1000")
        .output()
        .unwrap()
}

#[test]
fn a_two_file_kubeconfig_list_is_merged_and_context_flag_selects() {
    let (rig, list, port) = two_file_rig();
    rig.config("None", None, None);

    // Without a context, the current-context of the first file applies: the dead server.
    let output = run_with_kubeconfig(&rig, &list, &[]);
    assert_exit(&output, 1);
    assert_error_mentions(
        &output,
        &format!(
            "cannot reach the Kubernetes API server at http://127.0.0.1:{port} (context dead)"
        ),
    );
    assert!(rig.requests().is_empty());

    // --context picks the context defined in the second file.
    let output = run_with_kubeconfig(&rig, &list, &["--context", CONTEXT]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");
    assert_eq!(rig.discovery_requests(), 1);
}

#[test]
fn the_configured_context_is_honoured() {
    let (rig, list, _) = two_file_rig();
    rig.config("None", None, Some(CONTEXT));
    let output = run_with_kubeconfig(&rig, &list, &[]);
    assert_reconciled(&output, "reconciled Flux: 2 Kustomizations ready ");

    // --context overrides the file.
    let output = run_with_kubeconfig(&rig, &list, &["--context", "dead"]);
    assert_exit(&output, 1);
    assert_error_mentions(&output, "(context dead)");
}

#[test]
fn the_context_must_exist_in_the_merged_kubeconfig() {
    let (rig, list, _) = two_file_rig();
    rig.config("None", None, None);
    let output = run_with_kubeconfig(&rig, &list, &["--context", "nope"]);
    assert_exit(&output, 2);
    assert_error_line(&output, "nope");
    assert!(rig.requests().is_empty());
}

#[test]
fn the_expected_revision_is_reported_once_when_attempt_1_failed_early() {
    let (_registry, host, digest) = registry_with_dev!(b"layer");
    let (rig, _) = Rig::flux_serving(&digest);
    rig.config("Flux", Some(&host), None);
    rig.server.fail_next(Route::Any, Verb::Discovery, 503, 1);
    let output = rig.run(&["--timeout", "20s"], &[]);
    assert_reconciled(
        &output,
        &format!("reconciled Flux: 2 Kustomizations ready at dev@{digest} in "),
    );
    assert_eq!(attempt_warnings(&output).len(), 1, "{}", describe(&output));
    let expected = format!("reconcile: expected revision dev@{}", &digest[..19]);
    let reported = progress_lines(&output)
        .iter()
        .filter(|l| **l == expected)
        .count();
    assert_eq!(reported, 1, "{}", describe(&output));
}
