//! Argo CD through the binary (reconcile.md "Argo CD", testing.md "Reconcile tests"): refresh
//! and sync patches, a running operation left alone, the revision gate on the matching
//! Application only, stale versus this run's failed operation, `ComparisonError` waiting until
//! the timeout, the `--exclude` warning and the success line.
//!
//! The cluster is the fake API server with the Argo CD type and `simulators::ArgoCd`; the
//! expected digest `D` comes from a real registry (`k8s:dev` seeded), configured as
//! `spec.cluster.localRegistry.registry`. With the default cluster name `kind`, `sync.url` is
//! `oci://kind-local-registry:5000/k8s`.

mod support;

use std::process::Output;
use std::sync::Arc;

use fake_apiserver::simulators::{AppOutcome, ArgoCd, OperationOutcome};
use fake_apiserver::{LoggedRequest, ServerOptions, rfc3339_offset};
use serde_json::{Value, json};
use support::fake_cluster::{FakeCluster, MERGE_PATCH};
use support::{
    Registry, assert_error_line, assert_exit, attempt_warnings, describe, progress_lines,
    stderr_text, stdout_lines,
};

const SYNC_URL: &str = "oci://kind-local-registry:5000/k8s";
/// A repository that is not the sync target.
const OTHER_URL: &str = "oci://ghcr.io/acme/other";
const APPS_PREFIX: &str = "/apis/argoproj.io/v1alpha1/namespaces/";
/// A digest that is not `D`.
const OTHER_DIGEST: &str =
    "sha256:9999999999999999999999999999999999999999999999999999999999999999";

/// A [`Fixture`] for this test, or a return from it when registry tests are skipped.
macro_rules! fixture {
    ($delay_ms:expr) => {
        match Fixture::new(&test_name!(), $delay_ms) {
            Some(fx) => fx,
            None => return,
        }
    };
}

struct Fixture {
    cluster: FakeCluster,
    argo: Arc<ArgoCd>,
    digest: String,
    _registry: Registry,
}

impl Fixture {
    /// `None` when registry tests are skipped. The simulator handles refreshes and operations
    /// after `delay_ms`, serving `D` unless told otherwise.
    fn new(test: &str, delay_ms: u64) -> Option<Fixture> {
        let registry = support::registry::start_or_skip(support::RegistryKind::Plain, test)?;
        let host = registry.host_port();
        let digest = support::http::seed_image(&host, "k8s", "dev", b"argo layer", &[], None);
        let cluster = FakeCluster::start(ServerOptions::argocd(), false);
        cluster.env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: ArgoCD\n    localRegistry:\n      registry: \"{host}\"\n"
            ),
        );
        let argo = ArgoCd::new(delay_ms, delay_ms, &digest);
        cluster.server.add_simulator(argo.clone());
        Some(Fixture {
            cluster,
            argo,
            digest,
            _registry: registry,
        })
    }

    /// One attempt with a 2 s diagnostics budget, and `vars`.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let defaults = [
            ("KSAIL_TEST_RETRY_ATTEMPTS", "1"),
            ("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "2000"),
        ];
        let mut cmd = self
            .cluster
            .reconcile(args, &[&defaults[..], vars].concat());
        cmd.output().expect("run ksail")
    }

    /// A run with a 10 s timeout that succeeds.
    fn run_ok(&self) -> Output {
        let output = self.run(&["--timeout", "10s"], &[]);
        assert_exit(&output, 0);
        output
    }

    /// An Application in `argocd` (see [`application`]).
    fn put_app(&self, name: &str, repo_url: &str, sync_policy: Option<Value>) {
        let app = application("argocd", name, repo_url, sync_policy);
        self.cluster.server.put_object(app);
    }

    /// `argocd/<name>`, automated, following the sync URL.
    fn put_automated(&self, name: &str) {
        self.put_app(name, SYNC_URL, Some(json!({"automated": {}})));
    }

    /// Application `argocd/<name>` as stored now.
    fn app(&self, name: &str) -> Value {
        self.cluster
            .server
            .get_object("argoproj.io", "applications", "argocd", name)
            .unwrap_or_else(|| panic!("Application argocd/{name} exists"))
    }

    /// PATCH bodies sent to one Application, in order.
    fn patches_of(&self, namespace: &str, name: &str) -> Vec<Value> {
        let path = format!("{APPS_PREFIX}{namespace}/applications/{name}");
        self.cluster
            .server
            .requests()
            .iter()
            .filter(|r| r.method == "PATCH" && r.path == path)
            .map(|r| {
                assert_eq!(r.content_type.as_deref(), Some(MERGE_PATCH), "{}", r.path);
                r.body_json().unwrap_or(Value::Null)
            })
            .collect()
    }
}

/// An Application in `namespace` following `repo_url` at tag `dev`.
fn application(namespace: &str, name: &str, repo_url: &str, sync_policy: Option<Value>) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "dev", "path": "."},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        },
    });
    if let Some(policy) = sync_policy {
        app["spec"]["syncPolicy"] = policy;
    }
    app
}

fn refresh_body() -> Value {
    json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
}

fn assert_success_line(output: &Output, count: usize, digest: &str) {
    let stdout = stdout_lines(output);
    assert_eq!(stdout.len(), 1, "{}", describe(output));
    let noun = if count == 1 {
        "Application"
    } else {
        "Applications"
    };
    let prefix = format!("reconciled Argo CD: {count} {noun} synced and healthy at {digest} in ");
    assert!(
        stdout[0].starts_with(&prefix) && stdout[0].ends_with('s'),
        "{:?} does not start with {prefix:?}",
        stdout[0]
    );
}

/// `--sync-manual` on an Application with a manual policy: ksail's sync is conditional on the
/// state its refresh produced and carries the policy's sync options and retry.
#[test]
fn argocd_sync_patch_is_conditional_on_the_state_read_and_copies_sync_options() {
    // A slow controller (300 ms), so ksail's sync patch lands on the state its refresh produced.
    let fx = fixture!(300);
    fx.put_app("web", SYNC_URL, Some(json!({"syncOptions": ["CreateNamespace=true", "ServerSideApply=true"], "retry": {"limit": 2}})));
    let before = fx.cluster.server.resource_version();

    let output = fx.run(&["--timeout", "10s", "--sync-manual"], &[]);

    assert_exit(&output, 0);
    // The refresh is the first write; the sync names the resourceVersion the refresh returned.
    assert_eq!(
        fx.patches_of("argocd", "web"),
        vec![
            refresh_body(),
            json!({
                "metadata": {"resourceVersion": (before + 1).to_string()},
                "operation": {
                    "initiatedBy": {"username": "ksail"},
                    // The policy's options, pinned to the pushed digest.
                    "sync": {"syncOptions": ["CreateNamespace=true", "ServerSideApply=true"], "revision": fx.digest},
                    "retry": {"limit": 2}
                }
            }),
        ]
    );
    assert_success_line(&output, 1, &fx.digest);
}

/// An automated Application whose last sync to the pushed digest failed: the controller does
/// not try that revision again by itself (argo-cd `autoSync`, `alreadyAttemptedSync`), so ksail
/// starts the sync its automated policy would — prune, sync options, retry — and says why.
#[test]
fn argocd_starts_the_sync_the_controller_does_not() {
    let fx = fixture!(50);
    let mut web = application(
        "argocd",
        "web",
        SYNC_URL,
        Some(
            json!({"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"], "retry": {"limit": 2}}),
        ),
    );
    web["status"]["operationState"] = json!({
        "phase": "Failed", "message": "namespaces \"late\" not found",
        "startedAt": "2020-01-01T00:00:00Z", "finishedAt": "2020-01-01T00:00:01Z",
        "syncResult": {"revision": fx.digest},
    });
    fx.cluster.server.put_object(web);

    let output = fx.run_ok();

    let sent = fx.patches_of("argocd", "web");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], refresh_body());
    assert_eq!(
        sent[1]["operation"],
        json!({
            "initiatedBy": {"username": "ksail"},
            "sync": {"syncOptions": ["CreateNamespace=true"], "prune": true, "revision": fx.digest},
            "retry": {"limit": 2}
        })
    );
    let said = format!(
        "application argocd/web: no automated sync started (Failed last sync attempt to [{}]: namespaces \"late\" not found); starting one",
        fx.digest
    );
    assert!(
        progress_lines(&output).contains(&said),
        "{}",
        describe(&output)
    );
    assert_success_line(&output, 1, &fx.digest);
}

#[test]
fn argocd_refreshes_every_application_and_syncs_those_the_controller_does_not() {
    let fx = fixture!(50);
    fx.put_app(
        "web",
        SYNC_URL,
        Some(json!({"automated": {}, "syncOptions": ["CreateNamespace=true"]})),
    );
    // Not automated, no sync options, another repository.
    fx.put_app("manual", OTHER_URL, None);
    // An operation is already set (someone else's sync): it is waited for, never replaced.
    let mut busy = application("argocd", "busy", SYNC_URL, Some(json!({"automated": {}})));
    busy["operation"] = json!({"initiatedBy": {"username": "alice"}, "sync": {"revision": "dev"}});
    fx.cluster.server.put_object(busy);
    // Outside `argocd`: not considered at all.
    fx.cluster.server.put_object(application(
        "team",
        "elsewhere",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));

    // `--sync-manual`: the manual Application is synced too.
    let output = fx.run(&["--timeout", "10s", "--sync-manual"], &[]);
    assert_exit(&output, 0);

    // Automated: only refreshed; the controller's automated sync, which the refresh sets off,
    // synced it with its policy.
    assert_eq!(fx.patches_of("argocd", "web"), vec![refresh_body()]);
    let web = fx.app("web");
    assert_eq!(
        web.pointer("/status/operationState/operation"),
        Some(&json!({
            "initiatedBy": {"automated": true},
            "sync": {"revision": fx.digest, "syncOptions": ["CreateNamespace=true"]},
            "retry": {"limit": 5}
        }))
    );
    let manual = fx.patches_of("argocd", "manual");
    assert_eq!(manual.len(), 2, "{manual:?}");
    assert_eq!(manual[0], refresh_body());
    // Another repository: the controller resolves its own target revision.
    assert_sync_body(&manual[1], json!({}));
    assert_eq!(fx.patches_of("argocd", "busy"), vec![refresh_body()]);
    assert!(fx.patches_of("team", "elsewhere").is_empty());
    let requests = fx.cluster.server.requests();
    let outside: Vec<String> = requests
        .iter()
        .filter(|r| r.path.contains("/namespaces/team/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    // The running operation was alice's, and it is what completed `busy`.
    let busy = fx.app("busy");
    assert_eq!(
        busy.pointer("/status/operationState/operation/initiatedBy/username"),
        Some(&json!("alice"))
    );
    assert_success_line(&output, 3, &fx.digest);
}

/// Someone chose to sync an Application by hand: without `--sync-manual` ksail leaves it alone
/// (no refresh, no sync, not waited for), says so, and reports it `excluded`.
#[test]
fn argocd_leaves_an_application_with_a_manual_policy_alone_by_default() {
    let fx = fixture!(50);
    fx.put_automated("web");
    fx.put_app("by-hand", SYNC_URL, None);

    let output = fx.run(&["--timeout", "10s", "--output", "json"], &[]);

    assert_exit(&output, 0);
    assert!(fx.patches_of("argocd", "by-hand").is_empty());
    assert_eq!(fx.patches_of("argocd", "web"), vec![refresh_body()]);
    assert!(
        progress_lines(&output).iter().any(|line| line
            == "application argocd/by-hand: manual sync policy, left alone (pass --sync-manual to sync it)"),
        "{}",
        describe(&output)
    );
    let document: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
    let by_hand = document["objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|o| o["name"] == "by-hand"))
        .cloned()
        .expect("by-hand is reported");
    assert_eq!(by_hand["state"], "excluded");
    assert_eq!(by_hand["message"], "manual sync policy");
}

/// `{"metadata":{"resourceVersion":"<rv>"},"operation":{"initiatedBy":{"username":"ksail"},"sync":<sync>}}`
/// with a numeric rv and exactly the given `sync`.
fn assert_sync_body(body: &Value, sync: Value) {
    let rv = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no resourceVersion in {body}"));
    assert!(rv.parse::<u64>().is_ok(), "{body}");
    assert_eq!(
        body,
        &json!({
            "metadata": {"resourceVersion": rv},
            "operation": {"initiatedBy": {"username": "ksail"}, "sync": sync}
        })
    );
}

#[test]
fn argocd_revision_gate_applies_to_the_matching_application_only() {
    let fx = fixture!(50);
    // `other` follows another repository, which resolves to another digest: not gated, fine.
    let digest = fx.digest.clone();
    fx.argo.set_resolver(Arc::new(move |app: &Value| {
        let url = app.pointer("/spec/source/repoURL").and_then(Value::as_str);
        Some(if url.is_some_and(|u| !u.contains("ghcr.io")) {
            digest.clone()
        } else {
            OTHER_DIGEST.to_string()
        })
    }));
    // The gate ignores host case and a trailing slash.
    fx.put_app(
        "web",
        "oci://KIND-local-registry:5000/k8s/",
        Some(json!({"automated": {}})),
    );
    fx.put_app("other", OTHER_URL, Some(json!({"automated": {}})));
    assert_success_line(&fx.run_ok(), 2, &fx.digest);
}

#[test]
fn argocd_revision_gate_holds_back_the_matching_application_at_another_digest() {
    let fx = fixture!(50);
    // Everything resolves to a digest that is not D: only the gated Application waits.
    fx.argo.set_digest(OTHER_DIGEST);
    fx.put_automated("web");
    fx.put_app("other", OTHER_URL, Some(json!({"automated": {}})));
    let output = fx.run(&["--timeout", "2s"], &[]);
    assert_exit(&output, 3);
    assert!(stdout_lines(&output).is_empty());
    assert_error_line(
        &output,
        "reconcile timed out after 2s (1 attempt): 1 of 2 objects not ready (argocd/web)",
    );
    let lines = progress_lines(&output);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("application argocd/other: synced and healthy")),
        "{}",
        describe(&output)
    );
}

/// ksail's own Application follows another repository (the source directory was renamed) and no
/// Application follows the sync URL: nothing will serve `D`, so the run fails at once with what
/// to do instead of reporting the old artifact as the push. A gated Application elsewhere keeps
/// the old rule (see `argocd_revision_gate_applies_to_the_matching_application_only`).
#[test]
fn argocd_ksail_application_on_another_repository_fails_and_names_cluster_update() {
    let fx = fixture!(50);
    fx.put_app(
        "ksail",
        "oci://kind-local-registry:5000/old",
        Some(json!({"automated": {}})),
    );
    fx.put_app("other", OTHER_URL, Some(json!({"automated": {}})));

    let output = fx.run(&["--timeout", "10s"], &[]);

    assert_exit(&output, 1);
    assert!(stdout_lines(&output).is_empty());
    let failed = format!(
        "application argocd/ksail: failed: RepositoryMismatch: follows oci://kind-local-registry:5000/old, and no Application follows the sync URL {SYNC_URL}: the cluster follows a different artifact; run ksail cluster update"
    );
    assert!(
        progress_lines(&output)
            .iter()
            .any(|l| l.starts_with(&failed)),
        "{}",
        describe(&output)
    );
    assert_error_line(
        &output,
        "reconcile failed: argocd/ksail (RepositoryMismatch); see diagnostics above",
    );
    // Nothing was refreshed or synced: the run ended before its trigger.
    assert!(fx.patches_of("argocd", "ksail").is_empty());
    assert!(fx.patches_of("argocd", "other").is_empty());
}

#[test]
fn argocd_stale_failed_operation_is_ignored() {
    let fx = fixture!(50);
    let mut app = application("argocd", "web", SYNC_URL, Some(json!({"automated": {}})));
    app["status"]["operationState"] = json!({
        "phase": "Failed",
        "message": "an old sync failed",
        "startedAt": rfc3339_offset(-3600),
        "finishedAt": rfc3339_offset(-3590),
        "operation": {"sync": {}},
    });
    fx.cluster.server.put_object(app);
    assert_success_line(&fx.run_ok(), 1, &fx.digest);
}

#[test]
fn argocd_this_runs_failed_operation_fails_fast() {
    let fx = fixture!(50);
    fx.put_automated("web");
    fx.put_automated("api");
    fx.argo.script_operation(
        "argocd/web",
        vec![OperationOutcome::Failed(
            "one or more objects failed to apply: Deployment.apps \"web\" is invalid".into(),
        )],
    );
    // Exit 1 with no attempt warning (below): the failed operation ended the run, not the 20 s
    // timeout of any of the three attempts.
    let output = fx.run(&["--timeout", "20s"], &[("KSAIL_TEST_RETRY_ATTEMPTS", "3")]);
    assert_exit(&output, 1);
    assert!(
        attempt_warnings(&output).is_empty(),
        "{}",
        describe(&output)
    );
    assert!(stdout_lines(&output).is_empty());
    assert_error_line(
        &output,
        "reconcile failed: argocd/web (OperationState/Failed); see diagnostics above",
    );
    let lines = progress_lines(&output);
    assert!(!lines.iter().any(|l| l.contains("retrying")), "not retried");
    assert!(
        lines.iter().any(|l| l == "Diagnostics (Argo CD)"),
        "{}",
        describe(&output)
    );
}

#[test]
fn argocd_comparison_error_is_not_terminal_and_times_out() {
    let fx = fixture!(50);
    fx.put_automated("web");
    fx.argo.script_app(
        "argocd/web",
        vec![AppOutcome::ComparisonError(
            "rpc error: code = Unknown desc = repo-server is warming up".into(),
        )],
    );
    let output = fx.run(&["--timeout", "2s"], &[]);
    assert_exit(&output, 3);
    assert_error_line(
        &output,
        "reconcile timed out after 2s (1 attempt): 1 of 1 object not ready (argocd/web)",
    );
    let lines = progress_lines(&output);
    assert!(
        !lines.iter().any(|l| l.contains("argocd/web: failed")),
        "{}",
        describe(&output)
    );
}

#[test]
fn argocd_exclude_prints_a_warning_and_is_ignored() {
    let fx = fixture!(50);
    fx.put_automated("web");
    let output = fx.run(&["--timeout", "10s", "--exclude", "web"], &[]);
    assert_exit(&output, 0);
    let lines = progress_lines(&output);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        vec!["warning: --exclude applies to Flux Kustomizations only; ignored"]
    );
    // The excluded name is still refreshed (and synced by its automated policy).
    assert_eq!(fx.patches_of("argocd", "web"), vec![refresh_body()]);
    assert_success_line(&output, 1, &fx.digest);
}

#[test]
fn argocd_requests_stay_in_the_argocd_namespace() {
    let fx = fixture!(50);
    fx.put_automated("web");
    fx.run_ok();
    let apps: Vec<LoggedRequest> = fx
        .cluster
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/applications"))
        .collect();
    assert!(!apps.is_empty());
    for r in apps {
        assert!(
            r.path.starts_with(&format!("{APPS_PREFIX}argocd/")),
            "{}",
            r.path
        );
    }
}

/// Application `argocd/web` under `policy`, whose sync fails every attempt with `message` while
/// the simulated controller retries it; the run's output.
fn run_retrying_sync(test: &str, policy: Value, message: &str, timeout: &str) -> Option<Output> {
    let fx = Fixture::new(test, 50)?;
    fx.cluster
        .server
        .put_object(application("argocd", "web", SYNC_URL, Some(policy)));
    fx.argo.script_operation(
        "argocd/web",
        vec![OperationOutcome::Retrying(message.into())],
    );
    Some(fx.run(&["--timeout", timeout], &[]))
}

#[test]
fn argocd_a_sync_the_controller_keeps_retrying_fails_after_two_failed_attempts() {
    // Real Argo CD leaves a failing sync `Running` while it retries (five times for an automated
    // sync); the run ends at the second failure, not when the retries run out.
    let Some(output) = run_retrying_sync(
        "argocd_retrying",
        json!({"automated": {}}),
        "one or more synchronization tasks completed unsuccessfully, reason: bad",
        "20s",
    ) else {
        return;
    };
    assert_exit(&output, 1);
    assert_error_line(
        &output,
        "reconcile failed: argocd/web (SyncFailed); see diagnostics above",
    );
    assert!(
        stderr_text(&output).contains("(failed 2 attempts; Argo CD keeps retrying)"),
        "{}",
        describe(&output)
    );
}

#[test]
fn argocd_a_sync_retried_under_the_applications_own_policy_is_waited_out() {
    let Some(output) = run_retrying_sync(
        "argocd_retrying_policy",
        json!({"automated": {}, "retry": {"limit": 10}}),
        "reason: bad",
        "2s",
    ) else {
        return;
    };
    // Dozens of failed attempts (one every 50 ms here), and still only the timeout ends the run.
    assert_exit(&output, 3);
    assert!(
        stderr_text(&output).contains("argocd/web  SyncFailed · reason: bad. Retrying attempt #"),
        "the report shows the sync Argo CD keeps retrying: {}",
        describe(&output)
    );
}
