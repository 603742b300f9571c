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

use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::simulators::{AppOutcome, ArgoCd, OperationOutcome};
use fake_apiserver::{FakeApiServer, LoggedRequest, ServerOptions, rfc3339_offset};
use serde_json::{Value, json};
use support::{
    Registry, TestEnv, assert_error_line, describe, progress_lines, stderr_text, stdout_lines,
};

const SYNC_URL: &str = "oci://kind-local-registry:5000/k8s";
const APPS_PREFIX: &str = "/apis/argoproj.io/v1alpha1/namespaces/";
const MERGE_PATCH: &str = "application/merge-patch+json";
/// A digest that is not `D`.
const OTHER_DIGEST: &str =
    "sha256:9999999999999999999999999999999999999999999999999999999999999999";

struct Fixture {
    env: TestEnv,
    server: FakeApiServer,
    argo: Arc<ArgoCd>,
    kubeconfig: PathBuf,
    digest: String,
    _registry: Registry,
}

impl Fixture {
    /// `None` when registry tests are skipped. The simulator handles refreshes and operations
    /// after `delay_ms`, serving `D` unless told otherwise.
    fn new(test: &str, delay_ms: u64) -> Option<Fixture> {
        let registry = support::registry::start_or_skip(support::RegistryKind::Plain, test)?;
        let digest = support::http::seed_image(
            &registry.host_port(),
            "k8s",
            "dev",
            b"argo layer",
            &[],
            None,
        );
        let env = TestEnv::new();
        env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: ArgoCD\n    localRegistry:\n      registry: \"{}\"\n",
                registry.host_port()
            ),
        );
        let server = FakeApiServer::start(ServerOptions::argocd());
        let kubeconfig = env.root().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, &["kind-kind"], None)
            .expect("write the kubeconfig");
        let argo = ArgoCd::new(delay_ms, delay_ms, &digest);
        server.add_simulator(argo.clone());
        Some(Fixture {
            env,
            server,
            argo,
            kubeconfig,
            digest,
            _registry: registry,
        })
    }

    fn run(&self, extra: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut args = vec!["workload", "reconcile"];
        args.extend_from_slice(extra);
        let mut cmd = self.env.ksail(args);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
            .env("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "2000");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.output().expect("run ksail")
    }

    /// PATCH bodies sent to one Application, in order.
    fn patches_of(&self, namespace: &str, name: &str) -> Vec<Value> {
        let path = format!("{APPS_PREFIX}{namespace}/applications/{name}");
        self.server
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
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "targetRevision": "dev", "path": "."},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": name},
        },
        "status": {"sync": {"status": "OutOfSync"}, "health": {"status": "Healthy"}},
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

#[test]
fn argocd_sync_patch_is_conditional_on_the_state_read_and_copies_sync_options() {
    // A slow controller (300 ms), so ksail's sync patch lands on the state its refresh produced.
    let Some(fx) = Fixture::new("argocd_sync_patch_exact", 300) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]})),
    ));
    let before = fx.server.resource_version();

    let output = fx.run(&["--timeout", "10s"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // The refresh is the first write; the sync names the resourceVersion the refresh returned.
    assert_eq!(
        fx.patches_of("argocd", "web"),
        vec![
            refresh_body(),
            json!({
                "metadata": {"resourceVersion": (before + 1).to_string()},
                "operation": {
                    "initiatedBy": {"username": "ksail"},
                    "sync": {"syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]}
                }
            }),
        ]
    );
    assert_success_line(&output, 1, &fx.digest);
}

#[test]
fn argocd_refreshes_every_application_and_syncs_each_without_an_operation() {
    let Some(fx) = Fixture::new("argocd_refresh_and_sync_all", 50) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}, "syncOptions": ["CreateNamespace=true"]})),
    ));
    // Not automated, no sync options, another repository.
    fx.server.put_object(application(
        "argocd",
        "manual",
        "oci://ghcr.io/acme/other",
        None,
    ));
    // An operation is already set (someone else's sync): it is waited for, never replaced.
    let mut busy = application("argocd", "busy", SYNC_URL, Some(json!({"automated": {}})));
    busy["operation"] = json!({"initiatedBy": {"username": "alice"}, "sync": {"revision": "dev"}});
    fx.server.put_object(busy);
    // Outside `argocd`: not considered at all.
    fx.server.put_object(application(
        "team",
        "elsewhere",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));

    let output = fx.run(&["--timeout", "10s"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let web = fx.patches_of("argocd", "web");
    assert_eq!(web.len(), 2, "{web:?}");
    assert_eq!(web[0], refresh_body());
    assert_sync_body(&web[1], Some(json!(["CreateNamespace=true"])));
    let manual = fx.patches_of("argocd", "manual");
    assert_eq!(manual.len(), 2, "{manual:?}");
    assert_eq!(manual[0], refresh_body());
    assert_sync_body(&manual[1], None);
    assert_eq!(fx.patches_of("argocd", "busy"), vec![refresh_body()]);
    assert!(fx.patches_of("team", "elsewhere").is_empty());
    let outside: Vec<String> = fx
        .server
        .requests()
        .iter()
        .filter(|r| r.path.contains("/namespaces/team/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
    // The running operation was alice's, and it is what completed `busy`.
    let busy = fx
        .server
        .get_object("argoproj.io", "applications", "argocd", "busy")
        .unwrap();
    assert_eq!(
        busy.pointer("/status/operationState/operation/initiatedBy/username"),
        Some(&json!("alice"))
    );
    assert_success_line(&output, 3, &fx.digest);
}

/// `{"metadata":{"resourceVersion":"<rv>"},"operation":{"initiatedBy":{"username":"ksail"},"sync":{…}}}`
/// with a numeric rv and exactly the given syncOptions.
fn assert_sync_body(body: &Value, sync_options: Option<Value>) {
    let rv = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no resourceVersion in {body}"));
    assert!(rv.parse::<u64>().is_ok(), "{body}");
    let sync = match sync_options {
        Some(options) => json!({"syncOptions": options}),
        None => json!({}),
    };
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
    let Some(fx) = Fixture::new("argocd_gate_matching_only", 50) else {
        return;
    };
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
    fx.server.put_object(application(
        "argocd",
        "web",
        "oci://KIND-local-registry:5000/k8s/",
        Some(json!({"automated": {}})),
    ));
    fx.server.put_object(application(
        "argocd",
        "other",
        "oci://ghcr.io/acme/other",
        Some(json!({"automated": {}})),
    ));
    let output = fx.run(&["--timeout", "10s"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_success_line(&output, 2, &fx.digest);
}

#[test]
fn argocd_revision_gate_holds_back_the_matching_application_at_another_digest() {
    let Some(fx) = Fixture::new("argocd_gate_mismatch", 50) else {
        return;
    };
    // Everything resolves to a digest that is not D: only the gated Application waits.
    fx.argo.set_digest(OTHER_DIGEST);
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    fx.server.put_object(application(
        "argocd",
        "other",
        "oci://ghcr.io/acme/other",
        Some(json!({"automated": {}})),
    ));
    let output = fx.run(&["--timeout", "2s"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
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

#[test]
fn argocd_stale_failed_operation_is_ignored() {
    let Some(fx) = Fixture::new("argocd_stale_failed", 50) else {
        return;
    };
    let mut app = application("argocd", "web", SYNC_URL, Some(json!({"automated": {}})));
    app["status"]["operationState"] = json!({
        "phase": "Failed",
        "message": "an old sync failed",
        "startedAt": rfc3339_offset(-3600),
        "finishedAt": rfc3339_offset(-3590),
        "operation": {"sync": {}},
    });
    fx.server.put_object(app);
    let output = fx.run(&["--timeout", "10s"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert_success_line(&output, 1, &fx.digest);
}

#[test]
fn argocd_this_runs_failed_operation_fails_fast() {
    let Some(fx) = Fixture::new("argocd_failed_fast", 50) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    fx.server.put_object(application(
        "argocd",
        "api",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    fx.argo.script_operation(
        "argocd/web",
        vec![OperationOutcome::Failed(
            "one or more objects failed to apply: Deployment.apps \"web\" is invalid".into(),
        )],
    );
    let started = Instant::now();
    let output = fx.run(&["--timeout", "20s"], &[("KSAIL_TEST_RETRY_ATTEMPTS", "3")]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a failed operation must fail fast: {:?}",
        started.elapsed()
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
    let Some(fx) = Fixture::new("argocd_comparison_error", 50) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    fx.argo.script_app(
        "argocd/web",
        vec![AppOutcome::ComparisonError(
            "rpc error: code = Unknown desc = repo-server is warming up".into(),
        )],
    );
    let output = fx.run(&["--timeout", "2s"], &[]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
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
    let Some(fx) = Fixture::new("argocd_exclude_warning", 50) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    let output = fx.run(&["--timeout", "10s", "--exclude", "web"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let lines = progress_lines(&output);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(
        warnings,
        vec!["warning: --exclude applies to Flux Kustomizations only; ignored"]
    );
    // The excluded name is still refreshed and synced.
    assert_eq!(fx.patches_of("argocd", "web").len(), 2);
    assert_success_line(&output, 1, &fx.digest);
}

#[test]
fn argocd_requests_stay_in_the_argocd_namespace() {
    let Some(fx) = Fixture::new("argocd_namespace_only", 50) else {
        return;
    };
    fx.server.put_object(application(
        "argocd",
        "web",
        SYNC_URL,
        Some(json!({"automated": {}})),
    ));
    let output = fx.run(&["--timeout", "10s"], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let apps: Vec<LoggedRequest> = fx
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
    fx.server
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
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
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
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(
        stderr_text(&output).contains("argocd/web  SyncFailed · reason: bad. Retrying attempt #"),
        "the report shows the sync Argo CD keeps retrying: {}",
        describe(&output)
    );
}
