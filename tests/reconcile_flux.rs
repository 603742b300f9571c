//! `ksail workload reconcile` with Flux, through the real binary against the fake API server
//! (reconcile.md "Flux", "Expected revision", "Timeout and attempts", "Output"; testing.md
//! "Reconcile tests" and B02, B13, B16, X17). Where a digest is needed, the expected revision `D`
//! is a real image seeded into the real test registry.

mod support;

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_apiserver::simulators::{
    ChildAction, FluxKustomization, FluxSource, KUSTOMIZE_GROUP as KS_GROUP, KsOutcome,
    REQUESTED_AT, SourceOutcome,
};
use fake_apiserver::{Cluster, LoggedRequest, ServerOptions, Simulator, WriteEvent, fixtures};
use serde_json::{Value, json};
use support::fake_cluster::{FakeCluster, KS_PATH, MERGE_PATCH};
use support::{
    Proxy, assert_error_line, assert_exit, assert_progress_line, attempt_warnings, describe,
    last_stderr_line, progress_lines, stderr_text, stdout_lines, warning_lines,
};

const EXCLUDE_ANNOTATION: &str = "ksail.devantler.tech/reconcile-exclude";
/// Seeded status for objects that "were ready before this run".
const OLD_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000001";

cluster_rig!(
    /// The fake cluster, with the Flux helpers of these tests.
    Rig
);

impl Rig {
    fn new() -> Rig {
        Rig::with_options(ServerOptions::flux())
    }

    fn with_options(options: ServerOptions) -> Rig {
        let flux = options.flux;
        Rig(FakeCluster::start(options, flux))
    }

    /// `ksail.yaml` with Flux and, when given, the registry whose `k8s:dev` is the sync target.
    fn config(&self, registry: Option<&str>) {
        let mut text = String::from(
            "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n",
        );
        if let Some(registry) = registry {
            text.push_str(&format!("    localRegistry:\n      registry: {registry}\n"));
        }
        self.env.write("ksail.yaml", text);
    }

    fn run(&self, args: &[&str]) -> Output {
        self.0.run(args, &[])
    }

    fn run_env(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.0.run(args, vars)
    }

    /// Flux with `registry` configured, its sync source and the root Kustomization.
    fn synced(registry: &str) -> Rig {
        let rig = Rig::new();
        rig.config(Some(registry));
        rig.put_root(registry);
        rig
    }

    /// The sync source and the root Kustomization, with no registry configured (so no revision
    /// gate).
    fn unchecked() -> Rig {
        let rig = Rig::new();
        rig.put_root("127.0.0.1:1");
        rig
    }

    /// The sync source for `registry` and the root Kustomization `flux-system/flux-system`.
    fn put_root(&self, registry: &str) {
        self.put_sync_source(registry);
        self.put_ks("flux-system", "flux-system", &[]);
    }

    /// [`Rig::unchecked`] with the Kustomizations and controllers of [`Rig::start`]; returns
    /// the kustomize controller.
    fn started(kustomizations: &[(&str, &[&str])]) -> (Rig, Arc<FluxKustomization>) {
        let rig = Rig::unchecked();
        let (_, kustomize) = rig.start(kustomizations);
        (rig, kustomize)
    }

    /// Puts the Kustomizations (`ns/name`, dependencies), then starts [`Rig::controllers`]
    /// serving [`old_digest`].
    fn start(
        &self,
        kustomizations: &[(&str, &[&str])],
    ) -> (Arc<FluxSource>, Arc<FluxKustomization>) {
        for (key, depends_on) in kustomizations {
            let (namespace, name) = key.split_once('/').expect("ns/name");
            self.put_ks(namespace, name, depends_on);
        }
        self.controllers(&old_digest())
    }

    /// The standard controllers: a source controller serving `digest` and a kustomize
    /// controller, both answering after 20 ms.
    fn controllers(&self, digest: &str) -> (Arc<FluxSource>, Arc<FluxKustomization>) {
        self.controllers_after(digest, 20)
    }

    fn controllers_after(
        &self,
        digest: &str,
        delay_ms: u64,
    ) -> (Arc<FluxSource>, Arc<FluxKustomization>) {
        let source = FluxSource::new(delay_ms, digest);
        let kustomize = FluxKustomization::new(delay_ms);
        self.server.add_simulator(source.clone());
        self.server.add_simulator(kustomize.clone());
        (source, kustomize)
    }

    fn put(&self, object: Value) {
        self.server.put_object(object);
    }

    /// The sync source `flux-system/flux-system` (OCIRepository for `k8s:dev`), without status.
    fn put_sync_source(&self, registry: &str) {
        self.put(fixtures::oci_repository(
            "flux-system",
            "flux-system",
            &format!("oci://{registry}/k8s"),
            "dev",
        ));
    }

    /// A Kustomization fed by the sync source.
    fn put_ks(&self, namespace: &str, name: &str, depends_on: &[&str]) {
        self.put(ks(namespace, name, depends_on));
    }

    fn patches(&self) -> Vec<LoggedRequest> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.method == "PATCH")
            .collect()
    }

    /// `ns/name` of every Kustomization PATCH, in order.
    fn patched_kustomizations(&self) -> Vec<String> {
        self.patches()
            .iter()
            .filter_map(|r| object_of(&r.path, "kustomizations"))
            .collect()
    }

    /// The request log, one line per request, for failure messages.
    fn log(&self) -> String {
        self.server
            .requests()
            .iter()
            .map(|r| format!("{} {}?{} {}", r.method, r.path, r.query, r.body))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn object(&self, plural_group: (&str, &str), namespace: &str, name: &str) -> Value {
        self.server
            .get_object(plural_group.0, plural_group.1, namespace, name)
            .unwrap_or_else(|| panic!("{namespace}/{name} exists"))
    }
}

/// A Kustomization fed by `flux-system/flux-system`.
fn ks(namespace: &str, name: &str, depends_on: &[&str]) -> Value {
    fixtures::kustomization(namespace, name, "flux-system/flux-system", depends_on)
}

/// `Ready=False` with a terminal `reason`.
fn failed(reason: &str, message: &str) -> KsOutcome {
    KsOutcome::Failed {
        reason: reason.into(),
        message: message.into(),
    }
}

fn with_annotation(mut object: Value, key: &str, value: &str) -> Value {
    object["metadata"]["annotations"] = json!({ key: value });
    object
}

/// `ns/name` when `path` is `…/namespaces/<ns>/<plural>/<name>`.
fn object_of(path: &str, plural: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let at = segments.iter().position(|s| *s == "namespaces")?;
    match segments.get(at + 1..) {
        Some([ns, p, name]) if *p == plural => Some(format!("{ns}/{name}")),
        _ => None,
    }
}

/// A registry with `k8s:dev` seeded and a [`Rig::synced`] to it; returns
/// `(registry, host:port, digest D, rig)`.
macro_rules! synced {
    () => {{
        let (registry, host, digest) = registry_with_dev!(b"manifests v2");
        let rig = Rig::synced(&host);
        (registry, host, digest, rig)
    }};
}

/// A digest no registry serves, for runs without a revision gate.
fn old_digest() -> String {
    format!("sha256:{OLD_HEX}")
}

/// No warning mentions an attempt: the run was not retried.
#[track_caller]
fn assert_not_retried(output: &Output, message: &str) {
    let warnings = warning_lines(output);
    assert!(
        warnings.iter().all(|w| !w.contains("attempt ")),
        "{message}"
    );
}

#[track_caller]
fn assert_last_error_starts(output: &Output, prefix: &str) {
    assert!(
        last_stderr_line(output).starts_with(prefix),
        "{}",
        describe(output)
    );
}

/// The single stdout line `reconciled Flux: <middle> in <X>s`; returns `<middle>`.
fn success_middle(output: &Output) -> String {
    assert_exit(output, 0);
    let lines = stdout_lines(output);
    assert_eq!(lines.len(), 1, "one result line\n{}", describe(output));
    let line = &lines[0];
    let rest = line
        .strip_prefix("reconciled Flux: ")
        .unwrap_or_else(|| panic!("unexpected result line {line:?}"));
    let (middle, duration) = rest
        .rsplit_once(" in ")
        .unwrap_or_else(|| panic!("no duration in {line:?}"));
    assert!(is_tenths(duration), "duration {duration:?} is not <n>.<d>s");
    middle.to_string()
}

fn json_document(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e})\n{}",
            describe(output)
        )
    })
}

/// `(kind, ns/name) → state` of the JSON `objects`.
fn json_states(document: &Value) -> Vec<(String, String, String)> {
    let mut states: Vec<(String, String, String)> = document["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap_or_default().to_string(),
                format!(
                    "{}/{}",
                    o["namespace"].as_str().unwrap_or_default(),
                    o["name"].as_str().unwrap_or_default()
                ),
                o["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    states.sort();
    states
}

/// The JSON `objects` are the sync source and the root Kustomization, ready, and `others`.
fn assert_states(document: &Value, others: &[(&str, &str, &str)]) {
    let roots = [
        ("Kustomization", "flux-system/flux-system", "ready"),
        ("OCIRepository", "flux-system/flux-system", "ready"),
    ];
    let mut expected: Vec<_> = roots
        .iter()
        .chain(others)
        .map(|(kind, name, state)| triple(kind, name, state))
        .collect();
    expected.sort();
    assert_eq!(json_states(document), expected);
}

fn triple(kind: &str, name: &str, state: &str) -> (String, String, String) {
    (kind.to_string(), name.to_string(), state.to_string())
}

/// `<n>.<d>s`: whole seconds and exactly one decimal.
fn is_tenths(duration: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    match duration.strip_suffix('s').and_then(|s| s.split_once('.')) {
        Some((whole, tenth)) => digits(whole) && tenth.len() == 1 && digits(tenth),
        None => false,
    }
}

/// RFC 3339, UTC, exactly nine fractional digits: `2026-05-01T10:00:00.123456789Z`.
fn is_nano_token(token: &str) -> bool {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:dd.dddddddddZ";
    token.len() == PATTERN.len()
        && PATTERN.iter().zip(token.as_bytes()).all(|(p, b)| {
            if *p == b'd' {
                b.is_ascii_digit()
            } else {
                p == b
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Happy path

#[test]
fn happy_path_patches_source_then_every_kustomization_once_with_one_token() {
    let (_registry, _, digest, rig) = synced!();
    rig.put_ks("infra", "cert-manager", &[]);
    rig.put_ks("apps", "podinfo", &[]);
    rig.put_ks("team-b", "web", &[]);
    rig.controllers(&digest);

    let output = rig.run(&["--timeout", "20s"]);
    let middle = success_middle(&output);
    assert_eq!(middle, format!("4 Kustomizations ready at dev@{digest}"));

    let patches = rig.patches();
    assert_eq!(patches.len(), 5, "{patches:#?}");
    let first = object_of(&patches[0].path, "ocirepositories");
    assert_eq!(
        first.as_deref(),
        Some("flux-system/flux-system"),
        "the sync source is patched first: {patches:#?}"
    );
    let mut tokens = Vec::new();
    for patch in &patches {
        assert_eq!(
            patch.content_type.as_deref(),
            Some(MERGE_PATCH),
            "{patch:?}"
        );
        let body = patch.body_json().expect("a JSON body");
        let token = body["metadata"]["annotations"][REQUESTED_AT]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", patch.body))
            .to_string();
        assert_eq!(
            body,
            json!({"metadata": {"annotations": {REQUESTED_AT: token.clone()}}}),
            "exactly the documented body"
        );
        assert_eq!(
            patch.body,
            format!(
                r#"{{"metadata":{{"annotations":{{"reconcile.fluxcd.io/requestedAt":"{token}"}}}}}}"#
            )
        );
        tokens.push(token);
    }
    assert!(
        is_nano_token(&tokens[0]),
        "RFC 3339 with nanoseconds: {}",
        tokens[0]
    );
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "one token: {tokens:?}"
    );
    let mut patched = rig.patched_kustomizations();
    patched.sort();
    assert_eq!(
        patched,
        [
            "apps/podinfo",
            "flux-system/flux-system",
            "infra/cert-manager",
            "team-b/web"
        ]
    );
}

#[test]
fn happy_path_json_document() {
    let (_registry, host, digest, rig) = synced!();
    rig.put_ks("apps", "podinfo", &[]);
    rig.put(with_annotation(
        ks("apps", "skipped", &[]),
        EXCLUDE_ANNOTATION,
        "true",
    ));
    rig.controllers(&digest);

    let output = rig.run(&["--timeout", "20s", "--output", "json"]);
    assert_exit(&output, 0);
    let document = json_document(&output);
    assert_eq!(document["command"], "workload reconcile");
    assert_eq!(document["status"], "succeeded");
    assert_eq!(document["exitCode"], 0);
    assert_eq!(document["error"], Value::Null);
    assert_eq!(document["engine"], "Flux");
    assert_eq!(document["attempts"], 1);
    assert!(document["durationMs"].is_u64());
    assert_eq!(
        document["expected"],
        json!({"url": format!("oci://{host}/k8s:dev"), "digest": digest})
    );
    assert_states(
        &document,
        &[
            ("Kustomization", "apps/podinfo", "ready"),
            ("Kustomization", "apps/skipped", "excluded"),
        ],
    );
    let source = document["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "OCIRepository")
        .unwrap();
    assert_eq!(source["revision"], format!("dev@{digest}"));
    assert_eq!(document["helmReleaseResets"], json!([]));
    assert_eq!(document["diagnostics"], Value::Null);
    // A ready object says nothing about what it waited for on the way.
    for object in document["objects"].as_array().unwrap() {
        if object["state"] == "ready" {
            assert_eq!(object["message"], Value::Null, "{object}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Token

#[test]
fn a_second_attempt_does_not_patch_objects_that_already_carry_the_token() {
    let (_registry, _, digest, rig) = synced!();
    rig.put_ks("apps", "slow", &[]);
    let (_, kustomize) = rig.controllers(&digest);
    // Still progressing when attempt 1 (1.5 s) times out; ready during attempt 2.
    kustomize.set_outcome("apps/slow", KsOutcome::Slow(2200));

    let output = rig.run_env(
        &["--timeout", "1500ms", "--output", "json"],
        &[("KSAIL_TEST_RETRY_ATTEMPTS", "2")],
    );
    assert_exit(&output, 0);
    let document = json_document(&output);
    assert_eq!(document["status"], "succeeded");
    assert_eq!(document["attempts"], 2, "{}", describe(&output));
    let retry_warnings = attempt_warnings(&output);
    assert_eq!(retry_warnings.len(), 1, "{}", describe(&output));
    assert!(
        retry_warnings[0].starts_with("warning: attempt 1/2 failed, retrying in 10ms: timed out after 1.5s waiting for 1 of 3 objects: kustomization apps/slow ("),
        "{retry_warnings:?}"
    );

    // Each object was patched exactly once, in attempt 1, with the run's single token.
    let patches = rig.patches();
    let mut targets: Vec<String> = patches
        .iter()
        .map(|p| p.path.rsplit_once("/namespaces/").unwrap().1.to_string())
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            "apps/kustomizations/slow",
            "flux-system/kustomizations/flux-system",
            "flux-system/ocirepositories/flux-system",
        ],
        "{}",
        rig.log()
    );
    let bodies: std::collections::HashSet<&str> = patches.iter().map(|p| p.body.as_str()).collect();
    assert_eq!(bodies.len(), 1, "one token for the whole run: {bodies:?}");
    let kustomization_lists = rig
        .server
        .requests()
        .iter()
        .filter(|r| r.path == KS_PATH && r.is_list())
        .count();
    assert_eq!(
        kustomization_lists, 2,
        "each attempt lists Kustomizations once"
    );
    let last_patch = patches.last().unwrap().at;
    let second_list = rig
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == KS_PATH && r.is_list())
        .nth(1)
        .unwrap()
        .at;
    assert!(
        last_patch < second_list,
        "no patch in attempt 2\n{}",
        rig.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Revision gates

/// A kustomize controller for one object: on each reconcile request it writes the scripted
/// statuses, each after its delay (ms), at the current generation. In a status, the string
/// `$TOKEN` stands for the request's token.
struct ScriptedStatus {
    namespace: String,
    name: String,
    steps: Vec<(u64, Value)>,
}

impl ScriptedStatus {
    fn new(key: &str, steps: Vec<(u64, Value)>) -> ScriptedStatus {
        let (namespace, name) = key.split_once('/').expect("ns/name");
        ScriptedStatus {
            namespace: namespace.into(),
            name: name.into(),
            steps,
        }
    }
}

/// `Ready=<status>` with `reason`, handled at `handled`, at `revision`.
fn ks_status(ready: &str, reason: &str, handled: &str, revision: &str) -> Value {
    json!({
        "lastHandledReconcileAt": handled,
        "lastAttemptedRevision": revision,
        "lastAppliedRevision": revision,
        "conditions": [{
            "type": "Ready", "status": ready, "reason": reason,
            "message": format!("{reason} at {revision}"),
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }],
    })
}

impl Simulator for ScriptedStatus {
    fn on_write(&self, cluster: &Cluster, event: &WriteEvent) {
        if event.by_simulator
            || !event.is(KS_GROUP, "kustomizations")
            || event.object["metadata"]["namespace"] != self.namespace.as_str()
            || event.object["metadata"]["name"] != self.name.as_str()
        {
            return;
        }
        let Some(token) = event.object["metadata"]["annotations"][REQUESTED_AT].as_str() else {
            return;
        };
        let generation = event.object["metadata"]["generation"].as_i64().unwrap_or(1);
        let mut at = 0;
        for (delay, status) in &self.steps {
            at += delay;
            let mut status = status.clone();
            if status["lastHandledReconcileAt"] == "$TOKEN" {
                status["lastHandledReconcileAt"] = json!(token);
            }
            status["observedGeneration"] = json!(generation);
            let (namespace, name) = (self.namespace.clone(), self.name.clone());
            cluster.after(at, move |c| {
                c.update_status(KS_GROUP, "kustomizations", &namespace, &name, |s| {
                    *s = status
                });
            });
        }
    }
}

/// Runs one attempt against a sync source serving `D` and `apps/gated`, whose controller reports
/// Ready with `applied` / `handled`.
fn run_gated(host: &str, digest: &str, applied: String, handled: Option<&str>) -> Output {
    let rig = Rig::synced(host);
    rig.put_ks("apps", "gated", &[]);
    let (_, kustomize) = rig.controllers(digest);
    kustomize.set_outcome("apps/gated", KsOutcome::Never);
    rig.server.add_simulator(ScriptedStatus::new(
        "apps/gated",
        vec![(
            30,
            ks_status(
                "True",
                "ReconciliationSucceeded",
                handled.unwrap_or("$TOKEN"),
                &applied,
            ),
        )],
    ));
    rig.run_env(
        &["--timeout", "1s", "--output", "json"],
        &[("KSAIL_TEST_RETRY_ATTEMPTS", "1")],
    )
}

fn gated_object(document: &Value) -> Value {
    document["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Kustomization" && o["name"] == "gated")
        .cloned()
        .expect("apps/gated is reported")
}

#[test]
fn revision_gate_control_ready_at_the_current_revision_with_the_token_completes() {
    let (_registry, host, digest) = registry_with_dev!(b"manifests v2");
    let output = run_gated(&host, &digest, format!("dev@{digest}"), None);
    assert_exit(&output, 0);
    assert_eq!(gated_object(&json_document(&output))["state"], "ready");
}

#[test]
fn revision_gate_ready_at_the_previous_revision_does_not_complete() {
    let (_registry, host, digest) = registry_with_dev!(b"manifests v2");
    let output = run_gated(&host, &digest, format!("dev@sha256:{OLD_HEX}"), None);
    assert_exit(&output, 3);
    assert_error_line(
        &output,
        "reconcile timed out after 1s (1 attempt): 1 of 3 objects not ready (apps/gated); ",
    );
    let document = json_document(&output);
    assert_eq!(document["status"], "timedOut");
    let gated = gated_object(&document);
    assert_eq!(gated["state"], "timedOut");
    assert_eq!(
        gated["message"],
        format!("waiting for revision dev@{} to be applied", &digest[..19]),
    );
}

#[test]
fn revision_gate_ready_with_an_old_token_does_not_complete() {
    let (_registry, host, digest) = registry_with_dev!(b"manifests v2");
    let output = run_gated(
        &host,
        &digest,
        format!("dev@{digest}"),
        Some("2020-01-01T00:00:00.000000000Z"),
    );
    assert_exit(&output, 3);
    assert_error_line(
        &output,
        "reconcile timed out after 1s (1 attempt): 1 of 3 objects not ready (apps/gated); ",
    );
    assert_eq!(gated_object(&json_document(&output))["state"], "timedOut");
}

#[test]
fn a_source_serving_another_digest_fails_after_one_relookup() {
    let (_registry, host, digest) = registry_with_dev!(b"manifests v2");
    let proxy = Proxy::start(&host);
    let rig = Rig::synced(&proxy.host_port());
    let other = format!("sha256:{}", "ab".repeat(32));
    rig.controllers(&other);

    // Exit 1, not 3: the mismatch ended the run, not the 30 s timeout.
    let output = rig.run(&["--timeout", "30s"]);
    assert_exit(&output, 1);
    let expected_message = format!(
        "serves dev@sha256:abababababab…, but oci://{}/k8s:dev is {}…; the cluster follows a different artifact; run ksail cluster update",
        proxy.host_port(),
        &digest[..19]
    );
    assert!(
        progress_lines(&output).iter().any(|line| {
            line.starts_with(&format!(
            "ocirepository flux-system/flux-system: failed: DigestMismatch: {expected_message} ("
        ))
        }),
        "{}",
        describe(&output)
    );
    assert_last_error_starts(
        &output,
        "error: reconcile failed: flux-system/flux-system (DigestMismatch); 1 dependent blocked; ",
    );
    assert_progress_line(
        &output,
        "kustomization flux-system/flux-system: blocked by ocirepository flux-system/flux-system",
    );
    // The root cause is in the diagnostics report too, though the cluster calls it Ready.
    let report = stderr_text(&output);
    let section = report
        .split("  OCIRepositories")
        .nth(1)
        .unwrap_or_else(|| panic!("no OCIRepositories section:\n{report}"));
    assert!(
        section
            .lines()
            .any(|line| line.contains("✗ flux-system/flux-system")
                && line.contains("DigestMismatch")),
        "{report}"
    );
    let heads = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "HEAD" && r.path_only() == "/v2/k8s/manifests/dev")
        .count();
    assert_eq!(
        heads,
        2,
        "the lookup and exactly one re-lookup: {:?}",
        proxy.request_lines()
    );
    assert_not_retried(&output, "not retried");
}

// ---------------------------------------------------------------------------------------------
// Tracked set

#[test]
fn a_kustomization_created_during_the_attempt_is_tracked() {
    let (_registry, _, digest, rig) = synced!();
    rig.put_ks("apps", "slow", &[]);
    let (_, kustomize) = rig.controllers(&digest);
    // The root applies the new artifact, which contains a new Kustomization; apps/slow keeps the
    // attempt open meanwhile.
    kustomize.on_ready(
        "flux-system/flux-system",
        vec![ChildAction::Apply(ks("apps", "child", &[]))],
    );
    kustomize.set_outcome("apps/child", KsOutcome::Slow(300));
    kustomize.set_outcome("apps/slow", KsOutcome::Slow(600));

    let output = rig.run(&["--timeout", "20s", "--output", "json"]);
    assert_exit(&output, 0);
    let document = json_document(&output);
    assert_states(
        &document,
        &[
            ("Kustomization", "apps/child", "ready"),
            ("Kustomization", "apps/slow", "ready"),
        ],
    );
    assert!(
        progress_lines(&output)
            .iter()
            .any(|l| l.starts_with(&format!(
                "kustomization apps/child: ready, dev@{} (",
                &digest[..19]
            ))),
        "{}",
        describe(&output)
    );
    // Its first reconcile is new by definition: it is waited for without being annotated.
    assert!(
        !rig.patched_kustomizations()
            .contains(&"apps/child".to_string()),
        "{}",
        rig.log()
    );
}

#[test]
fn a_tracked_kustomization_deleted_during_the_attempt_is_dropped() {
    let (_registry, _, digest, rig) = synced!();
    rig.put_ks("apps", "web", &[]);
    rig.put_ks("apps", "old", &[]);
    let (_, kustomize) = rig.controllers(&digest);
    // The root prunes apps/old once it has applied (after the trigger patches), and apps/old
    // itself never becomes ready.
    kustomize.set_outcome("flux-system/flux-system", KsOutcome::Slow(300));
    kustomize.set_outcome("apps/old", KsOutcome::Never);
    kustomize.on_ready(
        "flux-system/flux-system",
        vec![ChildAction::Delete {
            namespace: "apps".into(),
            name: "old".into(),
        }],
    );

    let output = rig.run(&["--timeout", "20s"]);
    assert_eq!(
        success_middle(&output),
        format!("2 Kustomizations ready at dev@{digest}")
    );
    assert_progress_line(
        &output,
        "kustomization apps/old: deleted, no longer tracked",
    );
    assert!(
        rig.patched_kustomizations()
            .contains(&"apps/old".to_string())
    );
}

#[test]
fn one_kustomization_is_counted_in_the_singular() {
    let (_registry, _, digest, rig) = synced!();
    rig.controllers(&digest);

    let output = rig.run(&["--timeout", "20s"]);
    assert_exit(&output, 0);
    assert_progress_line(
        &output,
        "reconcile: Flux; source OCIRepository flux-system/flux-system; tracking 1 Kustomization",
    );
    assert_eq!(
        success_middle(&output),
        format!("1 Kustomization ready at dev@{digest}")
    );
}

#[test]
fn suspended_kustomizations_are_not_patched_and_reported_suspended() {
    let (_registry, _, digest, rig) = synced!();
    rig.put_ks("apps", "web", &[]);
    let mut paused = ks("apps", "paused", &[]);
    paused["spec"]["suspend"] = json!(true);
    rig.put(paused);
    rig.controllers(&digest);

    let output = rig.run(&["--timeout", "20s"]);
    assert_eq!(
        success_middle(&output),
        format!("2 Kustomizations ready at dev@{digest} (1 suspended)")
    );
    assert_progress_line(
        &output,
        "reconcile: Flux; source OCIRepository flux-system/flux-system; tracking 2 Kustomizations (1 suspended)",
    );
    let mut patched = rig.patched_kustomizations();
    patched.sort();
    assert_eq!(patched, ["apps/web", "flux-system/flux-system"]);

    let json_output = rig.run(&["--timeout", "20s", "--output", "json"]);
    assert_exit(&json_output, 0);
    assert!(json_states(&json_document(&json_output)).contains(&triple(
        "Kustomization",
        "apps/paused",
        "suspended"
    )));
    assert!(
        !rig.patched_kustomizations()
            .contains(&"apps/paused".to_string())
    );
}

#[test]
fn excluded_kustomizations_are_never_patched() {
    let (_registry, _, digest, rig) = synced!();
    // Annotation, trimmed and case-insensitive; anything else is tracked.
    for (name, value) in [
        ("ann-lower", "true"),
        ("ann-title", "True"),
        ("ann-spaced", " TRUE "),
        ("ann-false", "false"),
        ("ann-yes", "yes"),
    ] {
        rig.put(with_annotation(
            ks("apps", name, &[]),
            EXCLUDE_ANNOTATION,
            value,
        ));
    }
    // --exclude name (any namespace), ns/name (exactly), "a, b", repeated flags.
    rig.put_ks("apps", "by-name", &[]);
    rig.put_ks("infra", "by-name", &[]);
    rig.put_ks("team", "exact", &[]);
    rig.put_ks("other", "exact", &[]);
    rig.put_ks("apps", "list-a", &[]);
    rig.put_ks("apps", "list-b", &[]);
    rig.put_ks("apps", "rep-1", &[]);
    rig.put_ks("apps", "rep-2", &[]);
    rig.controllers(&digest);

    let output = rig.run(&[
        "--timeout",
        "20s",
        "--exclude",
        "by-name",
        "--exclude",
        "team/exact",
        "--exclude",
        "list-a, list-b",
        "--exclude",
        "rep-1",
        "--exclude=rep-2,apps-typo",
    ]);
    assert_eq!(
        success_middle(&output),
        format!("4 Kustomizations ready at dev@{digest} (10 excluded)")
    );
    assert_eq!(
        warning_lines(&output),
        ["warning: --exclude apps-typo matched no Kustomization"]
    );
    let mut patched = rig.patched_kustomizations();
    patched.sort();
    assert_eq!(
        patched,
        [
            "apps/ann-false",
            "apps/ann-yes",
            "flux-system/flux-system",
            "other/exact"
        ],
        "{}",
        rig.log()
    );
    // Flux still applies an excluded Kustomization as usual: ksail only leaves it alone.
    let untouched = rig.object((KS_GROUP, "kustomizations"), "apps", "ann-spaced");
    assert_eq!(untouched["metadata"]["annotations"].get(REQUESTED_AT), None);
}

#[test]
fn excluded_kustomizations_are_reported_excluded_in_json() {
    let rig = Rig::unchecked();
    rig.put(with_annotation(
        ks("apps", "annotated", &[]),
        EXCLUDE_ANNOTATION,
        "True",
    ));
    rig.put_ks("apps", "flagged", &[]);
    rig.controllers(&old_digest());

    let output = rig.run(&[
        "--timeout",
        "20s",
        "--output",
        "json",
        "--exclude",
        "apps/flagged",
    ]);
    assert_exit(&output, 0);
    assert_states(
        &json_document(&output),
        &[
            ("Kustomization", "apps/annotated", "excluded"),
            ("Kustomization", "apps/flagged", "excluded"),
        ],
    );
}

/// Flux 2.5 serves OCIRepository only at source v1beta2 while the group prefers v1: the version
/// is chosen per kind from discovery, so the sync source is listed, watched and gated there
/// (before, the LIST at v1 answered 404, read as "no objects", and the digest gate vanished).
#[test]
fn flux_2_5_serves_the_sync_source_at_v1beta2_and_the_digest_gate_holds() {
    let (_registry, host, digest) = registry_with_dev!(b"manifests v2");
    let rig = Rig::with_options(ServerOptions::flux_2_5());
    rig.config(Some(&host));
    let mut source = fixtures::oci_repository(
        "flux-system",
        "flux-system",
        &format!("oci://{host}/k8s"),
        "dev",
    );
    source["apiVersion"] = json!("source.toolkit.fluxcd.io/v1beta2");
    rig.put(source);
    rig.put_ks("flux-system", "flux-system", &[]);
    rig.controllers(&digest);

    let output = rig.run(&["--timeout", "20s"]);

    assert_eq!(
        success_middle(&output),
        format!("1 Kustomization ready at dev@{digest}")
    );
    let requests = rig.server.requests();
    let beta = "/apis/source.toolkit.fluxcd.io/v1beta2/ocirepositories";
    assert!(
        requests.iter().any(|r| r.path == beta && r.is_list()),
        "the sync source is listed at v1beta2\n{}",
        rig.log()
    );
    assert!(
        !requests.iter().any(|r| r
            .path
            .starts_with("/apis/source.toolkit.fluxcd.io/v1/ocirepositories")),
        "nothing asks for OCIRepository at v1\n{}",
        rig.log()
    );
}

/// kustomize-controller has no watch on dependencies: a dependent that found its dependency not
/// ready looks again only after `--requeue-dependency` (30 s, as the fake keeps it here). ksail
/// asks each waiting dependent again, under a fresh token, the moment its dependency is ready for
/// this run, so a 5-deep chain finishes inside a 20 s timeout that the requeue timer alone could
/// not meet (5 × 30 s).
#[test]
fn a_dependency_chain_is_woken_link_by_link_instead_of_waiting_for_the_requeue_timer() {
    let rig = Rig::unchecked();
    let chain = ["apps/c1", "apps/c2", "apps/c3", "apps/c4", "apps/c5"];
    rig.put_ks("apps", "c1", &[]);
    for pair in chain.windows(2) {
        let (namespace, name) = pair[1].split_once('/').expect("ns/name");
        rig.put_ks(namespace, name, &[pair[0]]);
    }
    let (_, kustomize) = rig.controllers(&old_digest());
    // Each link takes a moment, so every dependent first finds its dependency not ready.
    for key in chain {
        kustomize.set_outcome(key, KsOutcome::Slow(100));
    }

    let output = rig.run(&["--timeout", "20s", "-v"]);

    assert_exit(&output, 0);
    for key in &chain[1..] {
        assert_progress_line(
            &output,
            &format!("kustomization {key}: its dependencies are ready; requesting it again now"),
        );
        let tokens: Vec<String> = rig
            .patches()
            .iter()
            .filter(|patch| object_of(&patch.path, "kustomizations").as_deref() == Some(*key))
            .filter_map(|patch| {
                let body = patch.body_json()?;
                Some(
                    body["metadata"]["annotations"][REQUESTED_AT]
                        .as_str()?
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            tokens.len(),
            2,
            "{key}: the run's request and one wake-up: {tokens:?}"
        );
        assert_eq!(
            tokens[1],
            format!("{}.1", tokens[0]),
            "{key}: a fresh token"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Terminal failures

/// Runs against a cluster whose controllers are scripted by `script`, without a registry (no
/// revision gate), with a long timeout: a terminal failure must end the run long before it.
fn run_failing(script: impl FnOnce(&Rig, &Arc<FluxSource>, &Arc<FluxKustomization>)) -> Output {
    run_failing_on(script).0
}

/// [`run_failing`], also returning the rig (for the requests ksail sent).
fn run_failing_on(
    script: impl FnOnce(&Rig, &Arc<FluxSource>, &Arc<FluxKustomization>),
) -> (Output, Rig) {
    let rig = Rig::unchecked();
    let (source, kustomize) = rig.start(&[("apps/bad", &[])]);
    script(&rig, &source, &kustomize);
    // The callers expect exit 1: with a 60 s timeout that means the failure ended the run.
    let output = rig.run(&["--timeout", "60s"]);
    (output, rig)
}

#[test]
fn each_kustomization_terminal_reason_fails_fast() {
    // ReconciliationFailed is retried by kustomize-controller itself: ksail believes it only
    // after three requests of its own (the first and two re-requests) ended in it.
    let reasons = [
        ("BuildFailed", 1),
        ("HealthCheckFailed", 1),
        ("PruneFailed", 1),
        ("ReconciliationFailed", 3),
        ("ValidationFailed", 1),
    ];
    for (reason, requests) in reasons {
        let (output, rig) = run_failing_on(|_, _, kustomize| {
            kustomize.set_outcome(
                "apps/bad",
                failed(reason, &format!("{reason} in   apps/bad")),
            );
        });
        let sent = rig
            .patched_kustomizations()
            .iter()
            .filter(|key| *key == "apps/bad")
            .count();
        assert_eq!(
            sent,
            requests,
            "{reason}: requests ksail sent\n{}",
            rig.log()
        );
        assert_exit(&output, 1);
        assert_error_line(&output, &format!("reconcile failed: apps/bad ({reason}); "));
        assert_last_error_starts(
            &output,
            &format!("error: reconcile failed: apps/bad ({reason}); "),
        );
        assert!(
            progress_lines(&output)
                .iter()
                .any(|l| l.starts_with(&format!(
                    "kustomization apps/bad: failed: {reason}: {reason} in apps/bad ("
                ))),
            "{reason}: {}",
            describe(&output)
        );
        assert_not_retried(
            &output,
            &format!("{reason}: a terminal failure is not retried"),
        );
    }
}

/// What kustomize-controller requeues is not the end: `ArtifactFailed` (no artifact yet) is
/// waited for, and a `ReconciliationFailed` that the next request clears is not a failure.
#[test]
fn requeued_failures_that_clear_end_ready() {
    for (reason, rerequested) in [("ArtifactFailed", false), ("ReconciliationFailed", true)] {
        let rig = Rig::unchecked();
        let (_, kustomize) = rig.start(&[("apps/flaky", &[])]);
        // kustomize-controller looks at an ArtifactFailed object again after
        // `--requeue-dependency`; short here.
        kustomize.set_requeue_dependency_ms(300);
        kustomize.script(
            "apps/flaky",
            vec![failed(reason, "for a moment"), KsOutcome::Ready],
        );
        let output = rig.run(&["--timeout", "30s", "-v"]);
        assert_exit(&output, 0);
        let handled = kustomize.handled();
        assert!(
            handled.iter().filter(|key| *key == "apps/flaky").count() >= 2,
            "{reason}: the failure was reported, then cleared: {handled:?}\n{}",
            describe(&output)
        );
        let asked_again = progress_lines(&output).iter().any(|line| {
            line.starts_with("kustomization apps/flaky: ") && line.contains("requesting again")
        });
        // ksail asks again only after a ReconciliationFailed it saw for its own request; an
        // ArtifactFailed is left to the controller's requeue.
        if !rerequested {
            assert!(
                !asked_again,
                "{reason}: not re-requested\n{}",
                describe(&output)
            );
        }
    }
}

#[test]
fn stalled_with_any_reason_fails_fast() {
    let output = run_failing(|_, _, kustomize| {
        kustomize.set_outcome(
            "apps/bad",
            KsOutcome::Stalled {
                reason: "SomethingNobodyListed".into(),
                message: "stuck".into(),
            },
        );
    });
    assert_exit(&output, 1);
    assert_last_error_starts(
        &output,
        "error: reconcile failed: apps/bad (SomethingNobodyListed); ",
    );
}

#[test]
fn each_source_terminal_reason_fails_fast_and_blocks_what_it_feeds() {
    for (stalled, reason) in [
        (false, "OCIArtifactPullFailed"),
        (false, "AuthenticationFailed"),
        (false, "OCIArtifactLayerOperationFailed"),
        (false, "VerificationError"),
        (false, "URLInvalid"),
        (false, "InsecureConnectionsDisallowed"),
        (true, "AnyStallReason"),
    ] {
        let output = run_failing(|_, source, _| {
            let (reason, message) = (reason.to_string(), format!("{reason} for k8s:dev"));
            source.set_outcome(
                "flux-system/flux-system",
                if stalled {
                    SourceOutcome::Stalled { reason, message }
                } else {
                    SourceOutcome::NotReady { reason, message }
                },
            );
        });
        assert_exit(&output, 1);
        assert_last_error_starts(
            &output,
            &format!(
                "error: reconcile failed: flux-system/flux-system ({reason}); 2 dependents blocked; "
            ),
        );
        assert_progress_line(
            &output,
            "kustomization apps/bad: blocked by ocirepository flux-system/flux-system",
        );
    }
}

#[test]
fn dependency_not_ready_and_progressing_do_not_fail() {
    let (rig, kustomize) = Rig::started(&[("apps/parent", &[]), ("apps/child", &["parent"])]);
    // The parent reports this run's request as handled but still progressing for a while.
    let revision = format!("dev@sha256:{OLD_HEX}");
    kustomize.set_outcome("apps/parent", KsOutcome::Never);
    rig.server.add_simulator(ScriptedStatus::new(
        "apps/parent",
        vec![
            (30, ks_status("False", "Progressing", "$TOKEN", &revision)),
            (
                300,
                ks_status("False", "ProgressingWithRetry", "$TOKEN", &revision),
            ),
            (
                300,
                ks_status("True", "ReconciliationSucceeded", "$TOKEN", &revision),
            ),
        ],
    ));

    let output = rig.run(&["--timeout", "20s", "-v"]);
    assert_eq!(
        success_middle(&output),
        "3 Kustomizations ready (revision not checked)"
    );
    let lines = progress_lines(&output);
    for waiting in [
        "kustomization apps/child: waiting: DependencyNotReady: dependency 'apps/parent' is not ready",
        "kustomization apps/parent: waiting: Progressing: ",
        "kustomization apps/parent: waiting: ProgressingWithRetry: ",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(waiting)),
            "no line {waiting:?}\n{}",
            describe(&output)
        );
    }
}

#[test]
fn a_failure_recorded_for_an_older_request_or_generation_does_not_fail() {
    let rig = Rig::unchecked();
    let old_request = "2020-01-01T00:00:00.000000000Z";
    let mut stale_request = ks("apps", "old-request", &[]);
    stale_request["metadata"]["annotations"] = json!({ REQUESTED_AT: old_request });
    stale_request["status"] = json!({
        "observedGeneration": 1,
        "lastHandledReconcileAt": old_request,
        "lastAttemptedRevision": format!("dev@sha256:{OLD_HEX}"),
        "conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "old", "lastTransitionTime": "2020-01-01T00:00:00Z"}],
    });
    rig.put(stale_request);
    let mut stale_generation = ks("apps", "old-generation", &[]);
    stale_generation["metadata"]["generation"] = json!(2);
    stale_generation["status"] = json!({
        "observedGeneration": 1,
        "conditions": [
            {"type": "Stalled", "status": "True", "reason": "BuildFailed", "message": "old", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "old", "lastTransitionTime": "2020-01-01T00:00:00Z"},
        ],
    });
    rig.put(stale_generation);
    // The controllers take their time, so ksail sees the old failures first.
    rig.controllers_after(&old_digest(), 400);

    let output = rig.run(&["--timeout", "20s"]);
    assert_eq!(
        success_middle(&output),
        "3 Kustomizations ready (revision not checked)"
    );
}

// ---------------------------------------------------------------------------------------------
// Dependencies

#[test]
fn dependents_of_a_failure_are_blocked_directly_transitively_and_through_excluded() {
    let rig = Rig::unchecked();
    rig.put(with_annotation(
        ks("infra", "e", &["apps/a"]),
        EXCLUDE_ANNOTATION,
        "true",
    ));
    let (_, kustomize) = rig.start(&[
        ("apps/a", &[]),
        ("apps/b", &["a"]),
        ("apps/c", &["b"]),
        ("team/f", &["infra/e"]),
    ]);
    kustomize.set_outcome("apps/a", failed("BuildFailed", "kustomize build failed"));

    let output = rig.run(&["--timeout", "60s"]);
    assert_exit(&output, 1);
    for line in [
        "kustomization apps/b: blocked by apps/a",
        "kustomization apps/c: blocked by apps/a",
        "kustomization team/f: blocked by apps/a",
    ] {
        assert_progress_line(&output, line);
    }
    assert_last_error_starts(
        &output,
        "error: reconcile failed: apps/a (BuildFailed); 3 dependents blocked; ",
    );
}

#[test]
fn one_blocked_dependent_is_counted_in_the_singular() {
    let (rig, kustomize) = Rig::started(&[("apps/a", &[]), ("apps/b", &["a"])]);
    kustomize.set_outcome(
        "apps/a",
        failed(
            "HealthCheckFailed",
            "timeout waiting for: [Deployment/apps/a status: 'InProgress']",
        ),
    );

    let output = rig.run(&["--timeout", "60s"]);
    assert_exit(&output, 1);
    assert_progress_line(&output, "kustomization apps/b: blocked by apps/a");
    assert_error_line(
        &output,
        "reconcile failed: apps/a (HealthCheckFailed); 1 dependent blocked; see diagnostics above",
    );
}

// ---------------------------------------------------------------------------------------------
// Expected revision

#[test]
fn nothing_pushed_fails_with_the_push_hint() {
    let registry = require_registry!();
    let host = registry.host_port();
    let rig = Rig::synced(&host);
    rig.controllers(&old_digest());

    let output = rig.run(&["--timeout", "20s"]);
    assert_exit(&output, 1);
    assert_eq!(
        last_stderr_line(&output),
        format!(
            "error: nothing has been pushed to oci://{host}/k8s:dev; run ksail workload push first"
        ),
        "{}",
        describe(&output)
    );
    assert_error_line(&output, "nothing has been pushed");
    let not_retried = warning_lines(&output);
    assert!(not_retried.is_empty(), "not retried: {}", describe(&output));
    let patches = rig.patches();
    assert!(patches.is_empty(), "nothing is requested: {}", rig.log());
}

#[test]
fn without_a_registry_the_revision_is_not_checked() {
    let rig = Rig::unchecked();
    rig.start(&[("apps/web", &[])]);

    let output = rig.run(&["--timeout", "20s", "-v"]);
    assert_eq!(
        success_middle(&output),
        "2 Kustomizations ready (revision not checked)"
    );
    assert_progress_line(&output, "reconcile: detected Flux");
    assert!(
        progress_lines(&output)
            .iter()
            .any(|l| l.ends_with("reconcile: no registry configured; revision not checked")),
        "{}",
        describe(&output)
    );
}

// ---------------------------------------------------------------------------------------------
// Timeout

#[test]
fn the_timeout_is_per_attempt_with_three_attempts_and_exit_3() {
    let (rig, kustomize) = Rig::started(&[("apps/stuck", &[])]);
    kustomize.set_outcome("apps/stuck", KsOutcome::Never);

    let started = Instant::now();
    let output = rig.run(&["--timeout", "1s"]);
    let elapsed = started.elapsed();
    assert_exit(&output, 3);
    // A floor, not a speed target: each of the three attempts did wait its second.
    assert!(
        elapsed >= Duration::from_secs(3),
        "three attempts of 1 s each: {elapsed:?}"
    );
    assert_last_error_starts(
        &output,
        "error: reconcile timed out after 1s (3 attempts): 1 of 3 objects not ready (apps/stuck); ",
    );
    assert_error_line(&output, "(apps/stuck)");
    let retries = attempt_warnings(&output);
    assert_eq!(
        retries,
        [
            "warning: attempt 1/3 failed, retrying in 10ms: timed out after 1s waiting for 1 of 3 objects: kustomization apps/stuck (waiting for the controller to handle the request)",
            "warning: attempt 2/3 failed, retrying in 20ms: timed out after 1s waiting for 1 of 3 objects: kustomization apps/stuck (waiting for the controller to handle the request)",
        ],
        "{}",
        describe(&output)
    );
    // The attempts end where the diagnostics start (with their `/version` probe).
    let requests = rig.server.requests();
    let probe = requests
        .iter()
        .position(|r| r.path == "/version")
        .unwrap_or(requests.len());
    let lists = requests[..probe]
        .iter()
        .filter(|r| r.path == KS_PATH && r.is_list())
        .count();
    assert_eq!(lists, 3, "one list per attempt\n{}", rig.log());
}

// ---------------------------------------------------------------------------------------------
// KWOK and bad input

#[test]
fn kwok_skips_reconciliation_without_contacting_the_cluster() {
    let rig = Rig::new();
    rig.env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    distribution: KWOK\n    gitOpsEngine: Flux\n",
    );
    let output = rig.run(&["--timeout", "20s"]);
    assert_exit(&output, 0);
    assert_eq!(
        warning_lines(&output),
        ["warning: KWOK simulates GitOps controllers; reconciliation skipped"]
    );
    assert!(rig.server.requests().is_empty(), "{}", rig.log());
}

/// Exit 2, exactly one error line containing `phrase`, no request, no file changed.
fn assert_changes_nothing(rig: &Rig, args: &[&str], vars: &[(&str, &str)], phrase: &str) {
    let before = rig.env.tree_hash();
    let output = rig.run_env(args, vars);
    assert_exit(&output, 2);
    assert_error_line(&output, phrase);
    assert!(rig.server.requests().is_empty(), "{args:?}: {}", rig.log());
    assert_eq!(rig.env.tree_hash(), before, "{args:?} changed a file");
}

#[test]
fn b13_bad_timeouts_exit_2_without_a_request() {
    let rig = Rig::new();
    rig.config(None);
    for args in [
        vec!["--timeout", "0"],
        vec!["--timeout=-5s"],
        vec!["--timeout", "-5s"],
        vec!["--timeout", "5"],
    ] {
        assert_changes_nothing(&rig, &args, &[], "timeout");
    }
}

#[test]
fn b16_an_unknown_context_exits_2_naming_it() {
    let rig = Rig::new();
    rig.config(None);
    assert_changes_nothing(&rig, &["--context", "nope"], &[], "nope");
}

#[test]
fn b02_an_extra_argument_exits_2() {
    let rig = Rig::new();
    rig.config(None);
    assert_changes_nothing(&rig, &["extra"], &[], "extra");
}

#[test]
fn x17_a_bad_metadata_name_exits_2() {
    let rig = Rig::new();
    rig.config(None);
    assert_changes_nothing(
        &rig,
        &[],
        &[("KSAIL_METADATA_NAME", "Bad_Name")],
        "invalid metadata.name \"Bad_Name\"",
    );
}
