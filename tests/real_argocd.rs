//! `workload push`, `workload reconcile` and `cluster update` against real Argo CD: a real
//! kube-apiserver with Argo CD's application controller, repo-server and redis running as local
//! processes (docs/testing.md "Real tier"). The Application and its repository Secret are the ones
//! `cluster create` writes; the repo-server reaches the registry by its in-cluster name.

mod support;

use serde_json::Value;
use support::real::{self, APPS, Lab, assert_exit};
use support::{stderr_text, stdout_text};

const APPLICATION: &str = "applications.argoproj.io";
const ARGOCD: &str = "argocd";

/// The repository Secret and Application `argocd/ksail` of `cluster create` (bootstrap.rs) for a
/// plain-HTTP local registry, following tag `tag`. The Application is the golden that
/// bootstrap.rs's unit test pins `cluster create` to.
fn bootstrap_objects(tag: &str) -> String {
    let url = format!("oci://{}/k8s", real::IN_CLUSTER_REGISTRY);
    let application = include_str!("fixtures/bootstrap/argocd-application.yaml");
    assert!(application.contains(&format!("repoURL: {url}\n")));
    format!(
        "apiVersion: v1
kind: Secret
metadata:
  name: ksail-local-registry-repo
  namespace: argocd
  labels:
    argocd.argoproj.io/secret-type: repository
    {label}: \"true\"
stringData:
  type: oci
  url: {url}
  insecureOCIForceHttp: \"true\"
---
{application}",
        label = real::TEST_LABEL,
        application =
            application.replace("targetRevision: dev\n", &format!("targetRevision: {tag}\n")),
    )
}

fn application(lab: &Lab) -> Value {
    lab.cluster
        .get(APPLICATION, Some(ARGOCD), "ksail")
        .expect("Application argocd/ksail exists")
}

/// Waits until the Application is Synced and Healthy at `digest`.
fn wait_synced(lab: &Lab, digest: &str) -> Value {
    lab.cluster.wait_for(
        &format!("Application ksail synced at {digest}"),
        real::SETTLE,
        || {
            let app = application(lab);
            let status = &app["status"];
            if status["sync"]["status"] == "Synced"
                && status["health"]["status"] == "Healthy"
                && status["sync"]["revision"] == digest
            {
                Ok(app)
            } else {
                Err(format!(
                    "sync {} at {}, health {}, conditions {}, operation {}",
                    status["sync"]["status"],
                    status["sync"]["revision"],
                    status["health"]["status"],
                    status["conditions"],
                    status["operationState"]["message"]
                ))
            }
        },
    )
}

/// Pushes the first artifact, applies the bootstrap objects and waits until Argo CD serves it.
fn bootstrap(lab: &Lab) -> String {
    let digest = lab.first_push("ArgoCD");
    lab.cluster.apply(&bootstrap_objects("dev"));
    wait_synced(lab, &digest);
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));
    digest
}

#[test]
fn reconcile_waits_until_the_application_serves_the_pushed_digest() {
    let lab = real::argocd().lab();
    let first = bootstrap(&lab);

    lab.write("k8s/app.yaml", &real::configmap("app", "two"));
    let second = lab.push();
    assert_ne!(first, second);
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    let stdout = stdout_text(&output);
    assert!(
        stdout.starts_with("reconciled Argo CD: ") && stdout.contains(&second),
        "the success line names the pushed digest: {stdout}"
    );
    // Exit 0 means Argo CD serves what was pushed.
    let app = application(&lab);
    // ksail only refreshed it: the controller's own automated sync, which the refresh set off,
    // synced the pushed digest with the Application's policy.
    let operation = &app["status"]["operationState"]["operation"];
    assert_eq!(
        operation["initiatedBy"]["automated"],
        Value::Bool(true),
        "{operation}"
    );
    assert_eq!(operation["sync"]["revision"], Value::String(second.clone()));
    assert_eq!(operation["sync"]["prune"], Value::Bool(true));
    assert_eq!(app["status"]["sync"]["revision"], Value::String(second));
    assert_eq!(app["status"]["sync"]["status"], "Synced");
    assert_eq!(lab.configmap_value("app").as_deref(), Some("two"));
}

/// The layer is deflated in independent 128 KiB blocks on every core (src/artifact/gzip.rs):
/// Argo CD's repo-server extracts a layer of several blocks whole, and every byte is applied.
#[test]
fn a_layer_of_several_deflate_blocks_is_synced_whole() {
    let lab = real::argocd().lab();
    bootstrap(&lab);

    let (digest, expected) = lab.push_several_deflate_blocks();
    let output = lab.run(&["workload", "reconcile", "--timeout", "60s"]);

    assert_exit(&output, 0);
    assert_eq!(
        application(&lab)["status"]["sync"]["revision"],
        Value::String(digest)
    );
    lab.assert_configmaps(expected);
}

/// `workload watch` follows an edit through real Argo CD (docs/watch.md).
#[test]
fn watch_follows_an_edit_through_argo_cd() {
    let lab = real::argocd().lab();
    bootstrap(&lab);
    lab.assert_watch_follows_an_edit();
}

#[test]
fn a_failing_sync_exits_1_with_the_diagnostics() {
    let lab = real::argocd().lab();
    bootstrap(&lab);

    // Valid YAML, but not a valid ConfigMap: the API server refuses it during the sync.
    lab.write(
        "k8s/broken.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: {APPS}\ndata:\n  - not-a-map\n"
        ),
    );
    lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 1);
    let stderr = stderr_text(&output);
    // The refresh sets off Argo CD's automated sync (retried five times over about 2.5 minutes);
    // ksail reports it after the second failed attempt: `SyncFailed`.
    assert!(
        stderr.contains("argocd/ksail") && stderr.contains("(SyncFailed)"),
        "the report names the Application and its failing sync:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("ConfigMap/{APPS}/broken: ConfigMap in version")),
        "the report names the object the API server refused, with its reason:\n{stderr}"
    );
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));
}

#[test]
fn cluster_update_repairs_tag_drift_on_an_application_then_finds_no_changes() {
    let lab = real::argocd().lab();
    let digest = lab.first_push("ArgoCD");
    let old = lab.push_as_old();
    lab.cluster.apply(&bootstrap_objects("old"));
    wait_synced(&lab, &old);
    let _tools = lab.fake_tools();

    lab.update_repairs_the_tag();
    let app = application(&lab);
    assert_eq!(app["spec"]["source"]["targetRevision"], "dev");
    assert_eq!(
        app["spec"]["syncPolicy"]["automated"]["prune"], true,
        "the repair touches only the tag"
    );
    let reconcile = lab.run(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&reconcile, 0);
    assert_eq!(
        application(&lab)["status"]["sync"]["revision"],
        Value::String(digest)
    );

    real::assert_no_changes(&lab.run(&["cluster", "update"]));
}

#[test]
fn init_create_push_reconcile_update_delete_run_against_real_kubernetes() {
    let lab = real::argocd().lab();
    let _tools = lab.fake_tools_before_create();
    // The scaffold's kustomization.yaml stays: the repo-server builds it with kustomize.
    lab.init_project("ArgoCD");
    create_push_reconcile(&lab);

    // A renamed source directory sends pushes to another repository: `cluster update` turns the
    // Application and its repository Secret to it, and the next reconcile serves the push.
    let third = lab.push_from_a_renamed_source_directory();
    let stale = lab.run_cluster_command(&["workload", "reconcile", "--timeout", "20s"]);
    assert_exit(&stale, 1);
    assert!(
        stderr_text(&stale).contains(&format!(
            "application argocd/ksail: failed: RepositoryMismatch: follows oci://{registry}/k8s, and no Application follows the sync URL oci://{registry}/apps: the cluster follows a different artifact; run ksail cluster update",
            registry = real::IN_CLUSTER_REGISTRY
        )),
        "{}",
        stderr_text(&stale)
    );
    lab.update_turns_the_sync_to_apps();
    let reconcile = lab.run_cluster_command(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&reconcile, 0);
    assert_eq!(
        application(&lab)["status"]["sync"]["revision"],
        Value::String(third)
    );
    assert_eq!(lab.configmap_value("app").as_deref(), Some("three"));

    lab.update_then_delete();
}

/// The same loop on K3s (fake k3d, cluster `k3d-default`): the network and registries.yaml
/// wiring, the ownership mark and the network clean-up run against the real engine.
#[test]
fn init_create_push_reconcile_update_delete_run_on_k3s() {
    let lab = real::argocd().lab();
    let _tools =
        support::fake_tools::FakeTools::install(&lab.env, lab.fake_state_of("k3d-default"));
    lab.init_project_with("ArgoCD", &["--distribution", "K3s"]);
    create_push_reconcile(&lab);
    lab.update_then_delete();
}

/// create → the first revision served; push and reconcile → the second.
fn create_push_reconcile(lab: &real::Lab) {
    // Argo CD's install manifest of the pinned release, applied to the real API server, then the
    // repository Secret and the Application, which the real controller syncs.
    let create = lab.run_cluster_command(&["cluster", "create", "--timeout", "3m"]);
    assert_exit(&create, 0);
    assert_eq!(application(lab)["status"]["sync"]["status"], "Synced");
    let second = lab.created_then_push_and_reconcile(ARGOCD, "argocd-server");
    assert_eq!(
        application(lab)["status"]["sync"]["revision"],
        Value::String(second)
    );
}

/// An Application with `automated.prune` but without `selfHeal`, as many are: the sync ksail
/// starts must prune like the automated one would (argo-cd `autoSync` carries `automated.prune`),
/// or a resource the new revision removed stays, the Application stays OutOfSync, and every run
/// times out (the controller does not auto-sync a revision that was synced already).
#[test]
fn a_removed_resource_is_pruned_when_the_application_asks_for_pruning() {
    let lab = real::argocd().lab();
    lab.write_config("ArgoCD");
    lab.write("k8s/app.yaml", &real::configmap("app", "one"));
    lab.write("k8s/extra.yaml", &real::configmap("extra", "one"));
    let first = lab.push();
    lab.cluster
        .apply(&bootstrap_objects("dev").replace("      selfHeal: true\n", ""));
    wait_synced(&lab, &first);
    assert_eq!(lab.configmap_value("extra").as_deref(), Some("one"));

    lab.remove("k8s/extra.yaml");
    let second = lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    assert_eq!(application(&lab)["status"]["sync"]["revision"], second);
    assert_eq!(
        lab.configmap_value("extra"),
        None,
        "the ConfigMap the new revision removed was pruned"
    );
    assert_eq!(application(&lab)["status"]["sync"]["status"], "Synced");
}

/// An Application `child` in argocd, automated, applying `./child` of the same artifact.
fn child_application() -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: child
  namespace: argocd
spec:
  project: default
  source:
    repoURL: oci://{}/k8s
    targetRevision: dev
    path: child
  destination:
    server: https://kubernetes.default.svc
    namespace: default
  syncPolicy:
    automated: {{}}
",
        real::IN_CLUSTER_REGISTRY
    )
}

/// App of apps: the push adds a child Application to what the parent applies. The child appears
/// during the run and is waited for too, so exit 0 means the child's own objects are served.
#[test]
fn an_application_created_during_the_run_is_waited_for() {
    let lab = real::argocd().lab();
    bootstrap(&lab);

    lab.write("k8s/child-app.yaml", &child_application());
    // The ConfigMap alone: with `real::configmap`'s Namespace document too, parent and child
    // would both manage Namespace `real-apps`, and Argo CD reports whichever synced first as
    // OutOfSync (the resource's tracking label names the other Application).
    lab.write(
        "k8s/child/cm.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: child\n  namespace: {APPS}\ndata:\n  value: \"one\"\n"
        ),
    );
    let pushed = lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("application argocd/child: created during the attempt, tracked"),
        "the child was tracked:\n{stderr}"
    );
    assert_eq!(
        lab.configmap_value("child").as_deref(),
        Some("one"),
        "the child's ConfigMap is served when reconcile exits"
    );
    let child = lab
        .cluster
        .get(APPLICATION, Some(ARGOCD), "child")
        .expect("the child Application exists");
    assert_eq!(child["status"]["sync"]["status"], "Synced");
    assert_eq!(child["status"]["sync"]["revision"], pushed);
}

/// Argo CD does not sync again by itself a revision whose last sync failed (argo-cd `autoSync`,
/// `alreadyAttemptedSync`): after the cause is fixed in the cluster, the next reconcile must start
/// the sync itself, and says why.
#[test]
fn a_revision_whose_automated_sync_failed_is_synced_by_the_next_run() {
    let lab = real::argocd().lab();
    let first = lab.first_push("ArgoCD");
    // No retries, so the failed sync ends at once.
    lab.cluster.apply(&bootstrap_objects("dev").replace(
        "      selfHeal: true\n",
        "      selfHeal: true\n    retry:\n      limit: 0\n",
    ));
    wait_synced(&lab, &first);

    // A ConfigMap in a namespace that does not exist yet: its sync fails.
    lab.write(
        "k8s/late.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: ksail-late\ndata:\n  value: \"one\"\n",
    );
    let second = lab.push();
    let failed = lab.run(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&failed, 1);

    lab.namespace("ksail-late");
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains(&format!(
            "application argocd/ksail: no automated sync started (Failed last sync attempt to [{second}]"
        )) && stderr.contains("; starting one"),
        "ksail says why it syncs:\n{stderr}"
    );
    // The last operation may be a self-heal the controller runs after ksail's sync: the line
    // above is what says ksail started one.
    let app = application(&lab);
    assert_eq!(app["status"]["sync"]["revision"], Value::String(second));
    assert!(
        lab.cluster
            .get("configmap", Some("ksail-late"), "late")
            .is_some(),
        "the ConfigMap of the failed revision is served"
    );
}
