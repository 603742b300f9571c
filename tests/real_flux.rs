//! `workload push` and `workload reconcile` against real Flux: a real kube-apiserver with
//! source-, kustomize- and helm-controller and flux-operator running as local processes
//! (docs/testing.md "Real tier"). What these tests pin is what a user of a real cluster sees.

mod support;

use serde_json::Value;
use support::real::{self, APPS, CHAIN, Lab, assert_exit, condition};
use support::{stderr_text, stdout_text};

const KUSTOMIZATION: &str = "kustomizations.kustomize.toolkit.fluxcd.io";
const OCI_REPOSITORY: &str = "ocirepositories.source.toolkit.fluxcd.io";
const HELM_RELEASE: &str = "helmreleases.helm.toolkit.fluxcd.io";
const FLUX_NAMESPACE: &str = "flux-system";
/// The revision the sync source serves (`dev@sha256:…`).
fn served_revision(lab: &Lab) -> String {
    let source = lab
        .cluster
        .get(OCI_REPOSITORY, Some(FLUX_NAMESPACE), "flux-system")
        .expect("the sync OCIRepository exists");
    source["status"]["artifact"]["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The first push (see [`Lab::first_push`]), then the plain sync objects; waits until Flux
/// serves it on its own. Returns the digest.
fn bootstrap_plain(lab: &Lab) -> String {
    let digest = lab.first_push("Flux");
    lab.bootstrap_plain_flux_at("./");
    digest
}

/// `workload watch` follows an edit through real Flux (docs/watch.md).
#[test]
fn watch_follows_an_edit_through_flux() {
    let lab = real::flux().lab();
    bootstrap_plain(&lab);
    lab.assert_watch_follows_an_edit();
}

/// Pushes what the test wrote; `workload reconcile` exits 1 (not 3: the failure is reported when
/// Flux reports it, not when the timeout runs out). Returns its stderr.
fn push_and_reconcile_fails(lab: &Lab) -> String {
    lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&output, 1);
    stderr_text(&output)
}

/// Kustomization `flux-system/<name>`, which must exist.
fn kustomization_object(lab: &Lab, name: &str) -> Value {
    lab.cluster
        .get(KUSTOMIZATION, Some(FLUX_NAMESPACE), name)
        .expect("the Kustomization exists")
}

/// Waits until Kustomization `flux-system/<name>` has Ready = `status`.
fn wait_kustomization(lab: &Lab, name: &str, status: &str) {
    lab.cluster
        .wait_condition(KUSTOMIZATION, FLUX_NAMESPACE, name, "Ready", status);
}

#[test]
fn reconcile_serves_a_new_push_through_a_plain_oci_repository() {
    let lab = real::flux().lab();
    let first = bootstrap_plain(&lab);
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));

    lab.write("k8s/app.yaml", &real::configmap("app", "two"));
    let second = lab.push();
    assert_ne!(first, second, "a changed tree gives a new digest");
    let output = lab.run(&["workload", "reconcile", "--timeout", "45s"]);

    assert_exit(&output, 0);
    let stdout = stdout_text(&output);
    assert!(
        stdout.starts_with("reconciled Flux: ") && stdout.contains(&format!("dev@{second}")),
        "the success line names the pushed digest: {stdout}"
    );
    // Exit 0 means the cluster serves what was pushed: the source's artifact and the object.
    assert_eq!(served_revision(&lab), format!("dev@{second}"));
    assert_eq!(lab.configmap_value("app").as_deref(), Some("two"));
    let ks = kustomization_object(&lab, "flux-system");
    assert_eq!(
        ks["status"]["lastAppliedRevision"],
        Value::String(format!("dev@{second}"))
    );
    assert_eq!(condition(&ks, "Ready").expect("Ready")["status"], "True");
}

/// The layer is deflated in independent 128 KiB blocks on every core (src/artifact/gzip.rs):
/// source-controller extracts a layer of several blocks whole, and every byte reaches the cluster.
#[test]
fn a_layer_of_several_deflate_blocks_is_served_whole() {
    let lab = real::flux().lab();
    bootstrap_plain(&lab);

    let (digest, expected) = lab.push_several_deflate_blocks();
    let output = lab.run(&["workload", "reconcile", "--timeout", "60s"]);

    assert_exit(&output, 0);
    assert_eq!(served_revision(&lab), format!("dev@{digest}"));
    lab.assert_configmaps(expected);
}

/// A Deployment in `real-apps` whose Pod can never be scheduled (no node has the label). After its
/// progress deadline the Deployment controller marks it `ProgressDeadlineExceeded`, which
/// kustomize-controller's health check takes as failed at once (fail-fast, its default) instead of
/// waiting out the Kustomization's timeout (never under 30 s: `GetTimeout` in its API).
const UNSCHEDULABLE_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: never-ready
  namespace: real-apps
spec:
  replicas: 1
  progressDeadlineSeconds: 1
  selector:
    matchLabels: {app: never-ready}
  template:
    metadata:
      labels: {app: never-ready}
    spec:
      nodeSelector: {ksail.test/no-such-node: \"true\"}
      containers:
        - name: app
          image: registry.invalid/never:1
";

#[test]
fn a_failing_health_check_exits_1_with_the_diagnostics_of_the_real_objects() {
    let lab = real::flux().lab();
    bootstrap_plain(&lab);

    lab.write("k8s/deployment.yaml", UNSCHEDULABLE_DEPLOYMENT);
    let stderr = push_and_reconcile_fails(&lab);
    assert!(
        stderr.contains("kustomization flux-system/flux-system")
            && stderr.contains("HealthCheckFailed"),
        "the report names the failing Kustomization and its real reason:\n{stderr}"
    );
    assert!(
        stderr.contains("never-ready"),
        "the report carries the controller's message, which names the Deployment:\n{stderr}"
    );
    assert!(
        stderr.contains("Warning") && stderr.contains("HealthCheckFailed"),
        "the report lists kustomize-controller's Warning event:\n{stderr}"
    );
}

#[test]
fn a_manifest_the_api_server_rejects_exits_1_with_the_diagnostics() {
    let lab = real::flux().lab();
    bootstrap_plain(&lab);

    // Valid YAML (push accepts it), but not a valid ConfigMap: the API server's dry run refuses it.
    lab.write(
        "k8s/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\n  namespace: real-apps\ndata:\n  - not-a-map\n",
    );
    let stderr = push_and_reconcile_fails(&lab);
    assert!(
        stderr.contains("kustomization flux-system/flux-system")
            && stderr.contains("ConfigMap/real-apps/broken"),
        "the report carries the apply error naming the object:\n{stderr}"
    );
    assert!(
        stderr.contains(
            "Kustomization/flux-system  ReconciliationFailed: ConfigMap/real-apps/broken"
        ),
        "the report lists kustomize-controller's Warning event:\n{stderr}"
    );
    // Nothing of the failed revision was applied: the good ConfigMap keeps its value.
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));
    // kustomize-controller retries apply failures itself, so ksail asked twice more (fresh
    // tokens `<run>.1`, `<run>.2`) and believed the failure only when the third request failed.
    let ks = kustomization_object(&lab, "flux-system");
    let handled = ks["status"]["lastHandledReconcileAt"]
        .as_str()
        .unwrap_or_default();
    assert!(
        handled.ends_with(".2"),
        "the controller handled ksail's second re-request: {handled:?}"
    );
}

/// A kustomization.yaml naming a file the artifact does not have: `kustomize build` fails.
const BROKEN_KUSTOMIZE: &str = "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - no-such-file.yaml
";

/// Real kustomize-controller moves `status.observedGeneration` only on success
/// (`finalizeStatus`), so a Kustomization that is new, or whose spec changed, and fails shows
/// its failure only in the Ready condition's own `observedGeneration`. The run must still end in
/// the failure, not wait for a generation that is never observed.
#[test]
fn a_new_or_changed_kustomization_that_fails_exits_1_without_waiting_out_the_timeout() {
    let lab = real::flux().lab();
    lab.write("k8s/broken/kustomization.yaml", BROKEN_KUSTOMIZE);
    bootstrap_base_and_apps(&lab);

    // `apps` changes its spec to the broken path; `fresh` is new and broken from the start.
    lab.cluster.apply(&kustomization("apps", "./broken", ""));
    lab.cluster.apply(&kustomization("fresh", "./broken", ""));
    let output = lab.run(&["workload", "reconcile", "--timeout", "40s"]);

    assert_exit(&output, 1);
    let stderr = stderr_text(&output);
    for name in ["apps", "fresh"] {
        assert!(
            stderr.contains(&format!(
                "kustomization flux-system/{name}: failed: BuildFailed"
            )),
            "{name} is reported failed with kustomize-controller's reason:\n{stderr}"
        );
    }
    assert!(
        stderr.contains("no-such-file.yaml"),
        "the report carries the controller's message:\n{stderr}"
    );
    assert!(
        !stderr.contains("attempt 1/3 failed"),
        "a terminal failure is not retried as a timeout:\n{stderr}"
    );
    // The state the verdict had to read: the spec's generation never observed in status.
    let apps = kustomization_object(&lab, "apps");
    assert_ne!(
        apps["status"]["observedGeneration"], apps["metadata"]["generation"],
        "kustomize-controller leaves status.observedGeneration behind on failure"
    );
    assert_eq!(
        condition(&apps, "Ready").expect("Ready")["observedGeneration"],
        apps["metadata"]["generation"],
        "and stamps the condition with the current generation"
    );
}

/// An OCIRepository for chart `name` in the test registry, as Flux's `chartRef` source.
fn chart_source(registry: &str, name: &str) -> String {
    format!(
        "apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {name}-chart
  namespace: real-apps
spec:
  interval: 10m
  url: oci://{registry}/charts/{name}
  ref:
    tag: 0.1.0
  insecure: true
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
"
    )
}

/// Pushes chart `name` 0.1.0 (the one [`chart_source`] points at) with one template,
/// `configmap.yaml`.
fn push_chart(registry: &str, name: &str, configmap: &str) {
    real::charts::push(
        registry,
        &format!("charts/{name}"),
        name,
        "0.1.0",
        &[("configmap.yaml", configmap)],
    );
}

/// The chart source of chart `name` and a HelmRelease `name` installing it.
fn chart_and_release(registry: &str, name: &str) -> String {
    format!(
        "{}---\n{}",
        chart_source(registry, name),
        helm_release(name, name, None)
    )
}

/// HelmRelease `<APPS>/<name>`, which must exist.
fn helm_release_object(lab: &Lab, name: &str) -> Value {
    lab.cluster
        .get(HELM_RELEASE, Some(APPS), name)
        .expect("the HelmRelease exists")
}

fn helm_release(name: &str, chart: &str, depends_on: Option<&str>) -> String {
    let depends = depends_on
        .map(|d| format!("  dependsOn:\n    - name: {d}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {name}
  namespace: real-apps
spec:
  interval: 10m
  timeout: 10s
  chartRef:
    kind: OCIRepository
    name: {chart}-chart
{depends}"
    )
}

#[test]
fn a_stuck_helm_release_is_reset_and_a_dependency_wait_is_left_alone() {
    let lab = real::flux().lab();
    let registry = lab.registry.host_port();
    // The chart installs a ConfigMap into a namespace that does not exist yet: the install fails,
    // and with no remediation retries (the default) helm-controller stops trying.
    push_chart(
        &registry,
        "stuck",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-chart\n  namespace: real-helm-target\ndata:\n  value: installed\n",
    );
    lab.write("k8s/helm.yaml", &chart_and_release(&registry, "stuck"));
    lab.first_push("Flux");
    lab.cluster.apply(&real::plain_flux_sync(&registry));
    let stuck =
        lab.cluster
            .wait_condition_field(HELM_RELEASE, APPS, "stuck", "Stalled", "status", "True");
    assert_eq!(
        condition(&stuck, "Ready").expect("Ready")["status"],
        "False"
    );
    // A release that waits for a dependency is not stuck: ksail must not touch it.
    lab.cluster
        .apply(&helm_release("waits", "stuck", Some("missing")));
    let waits = lab.cluster.wait_condition_field(
        HELM_RELEASE,
        APPS,
        "waits",
        "Ready",
        "reason",
        "DependencyNotReady",
    );

    // The cause goes away; only a reset makes helm-controller try again.
    lab.namespace("real-helm-target");
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    assert!(
        stderr_text(&output).contains("helmrelease real-apps/stuck: stuck"),
        "ksail says it resets the stuck release:\n{}",
        stderr_text(&output)
    );
    let installed = lab
        .cluster
        .get("configmap", Some("real-helm-target"), "from-chart")
        .expect("the reset release installed its chart");
    assert_eq!(installed["data"]["value"], "installed");
    let release = helm_release_object(&lab, "stuck");
    assert_eq!(
        condition(&release, "Ready").expect("Ready")["status"],
        "True"
    );
    // Real helm-controller (v1.6) handles ksail's reset request: no suspend → resume fallback.
    let reset_at = &release["metadata"]["annotations"]["reconcile.fluxcd.io/resetAt"];
    assert!(reset_at.is_string(), "ksail sent a reset request");
    assert_eq!(&release["status"]["lastHandledResetAt"], reset_at);
    assert!(
        !stderr_text(&output).contains("did not handle the reset request"),
        "no fallback to suspend → resume:\n{}",
        stderr_text(&output)
    );
    assert_ne!(
        release["spec"]["suspend"],
        Value::Bool(true),
        "left resumed"
    );
    assert_eq!(
        release["metadata"]["annotations"].get("ksail.devantler.tech/suspended-for-reset"),
        None,
        "the resume removed ksail's suspend mark"
    );
    let after = helm_release_object(&lab, "waits");
    assert_eq!(
        after["metadata"]["generation"], waits["metadata"]["generation"],
        "the waiting release was never suspended or resumed"
    );
    assert_eq!(
        condition(&after, "Ready").expect("Ready")["reason"],
        "DependencyNotReady"
    );
}

/// A stuck release whose fix comes with the push (its HelmRelease changes): the release is
/// retried with the pushed configuration. helm-controller clears the failure counters itself when
/// the generation differs from its last attempt (`internal/action/reset.go`
/// `MustResetFailures`), so the spec the Kustomization applies is tried after ksail's reset.
#[test]
fn a_stuck_helm_release_is_retried_with_the_configuration_of_the_push() {
    let lab = real::flux().lab();
    let registry = lab.registry.host_port();
    push_chart(
        &registry,
        "moves",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-moves\n  namespace: {{ .Release.Namespace }}\ndata:\n  value: installed\n",
    );
    let fixed = chart_and_release(&registry, "moves");
    // The first configuration installs into a namespace that does not exist: it fails, and
    // without remediation retries helm-controller stops trying.
    let broken = fixed.replace(
        "  timeout: 10s\n",
        "  timeout: 10s\n  targetNamespace: real-helm-missing\n",
    );
    lab.write("k8s/helm.yaml", &broken);
    lab.first_push("Flux");
    lab.cluster.apply(&real::plain_flux_sync(&registry));
    lab.cluster
        .wait_condition_field(HELM_RELEASE, APPS, "moves", "Stalled", "status", "True");

    // The push brings the fix; the cluster itself does not change.
    lab.write("k8s/helm.yaml", &fixed);
    lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    let installed = lab
        .cluster
        .get("configmap", Some(APPS), "from-moves")
        .expect("the release was installed with the pushed configuration");
    assert_eq!(installed["data"]["value"], "installed");
    let release = helm_release_object(&lab, "moves");
    assert_eq!(release["spec"].get("targetNamespace"), None);
    assert_eq!(
        condition(&release, "Ready").expect("Ready")["status"],
        "True"
    );
    assert_eq!(
        release["status"]["lastAttemptedGeneration"], release["metadata"]["generation"],
        "the last attempt used the pushed spec"
    );
}

/// A Kustomization `name` in `flux-system` applying `path` of the sync source's artifact.
fn kustomization(name: &str, path: &str, annotations: &str) -> String {
    format!(
        "apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: {name}
  namespace: flux-system
  annotations: {{{annotations}}}
spec:
  interval: 10m
  path: {path}
  prune: true
  sourceRef:
    kind: OCIRepository
    name: flux-system
"
    )
}

/// ConfigMap `app` in `./base`, which the sync Kustomization applies, and `apps` in `./apps`,
/// which Kustomization `apps` applies, pushed with whatever the test wrote before; waits until
/// both Kustomizations are ready.
fn bootstrap_base_and_apps(lab: &Lab) {
    lab.write_config("Flux");
    lab.write("k8s/base/app.yaml", &real::configmap("app", "one"));
    lab.write("k8s/apps/apps.yaml", &real::configmap("apps", "one"));
    lab.push();
    lab.bootstrap_plain_flux_at("./base");
    lab.cluster.apply(&kustomization("apps", "./apps", ""));
    wait_kustomization(lab, "apps", "True");
}

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

fn requested_at(lab: &Lab, name: &str) -> Option<String> {
    let ks = kustomization_object(lab, name);
    ks["metadata"]["annotations"][REQUESTED_AT]
        .as_str()
        .map(str::to_string)
}

#[test]
fn excluded_kustomizations_are_neither_requested_nor_waited_for() {
    let lab = real::flux().lab();
    bootstrap_base_and_apps(&lab);
    // Both point at a path the artifact does not have: they fail for as long as they exist.
    lab.cluster.apply(&kustomization("slow", "./missing", ""));
    lab.cluster.apply(&kustomization(
        "annotated",
        "./missing",
        "ksail.devantler.tech/reconcile-exclude: \"true\"",
    ));
    wait_kustomization(&lab, "slow", "False");

    lab.write("k8s/apps/apps.yaml", &real::configmap("apps", "two"));
    lab.push();
    let output = lab.run(&[
        "workload",
        "reconcile",
        "--timeout",
        "50s",
        "--exclude",
        "slow",
        "--exclude",
        "no-such-kustomization",
    ]);

    assert_exit(&output, 0);
    assert!(requested_at(&lab, "apps").is_some(), "apps was requested");
    assert!(
        requested_at(&lab, "flux-system").is_some(),
        "flux-system was requested"
    );
    assert_eq!(
        requested_at(&lab, "slow"),
        None,
        "--exclude slow: not annotated"
    );
    assert_eq!(
        requested_at(&lab, "annotated"),
        None,
        "the exclude annotation: not annotated"
    );
    assert_eq!(lab.configmap_value("apps").as_deref(), Some("two"));
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("no-such-kustomization"),
        "an --exclude that matches nothing is warned about:\n{stderr}"
    );
}

/// kustomize-controller re-checks a `DependencyNotReady` Kustomization only every
/// `--requeue-dependency` (30 s) and does not watch dependencies, so each link of a chain whose
/// dependency is still being applied costs up to 30 s. ksail asks each waiting link again as soon
/// as its dependency is ready for this run: the 5-deep chain fits a 60 s timeout that four
/// requeues (about 2 minutes) could not.
#[test]
fn a_five_deep_dependency_chain_follows_at_the_speed_of_the_cluster() {
    let lab = real::flux().lab();
    lab.write_config("Flux");
    lab.write("k8s/base/app.yaml", &real::configmap("app", "one"));
    for link in CHAIN {
        lab.write(
            &format!("k8s/{link}/cm.yaml"),
            &real::configmap(link, "one"),
        );
    }
    lab.push();
    lab.bootstrap_plain_flux_at("./base");
    lab.cluster.apply(&real::dependency_chain(&CHAIN));

    for link in CHAIN {
        lab.write(
            &format!("k8s/{link}/cm.yaml"),
            &real::configmap(link, "two"),
        );
    }
    lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "60s", "-v"]);

    assert_exit(&output, 0);
    for link in CHAIN {
        assert_eq!(lab.configmap_value(link).as_deref(), Some("two"), "{link}");
    }
    let stderr = stderr_text(&output);
    assert!(
        stderr.contains("its dependencies are ready; requesting it again now"),
        "a waiting link was woken when its dependency became ready:\n{stderr}"
    );
}

const FLUX_INSTANCE: &str = "fluxinstances.fluxcd.controlplane.io";

/// The FluxInstance `cluster create` writes for a local registry (bootstrap.rs), following tag
/// `tag`, without `distribution.artifact`: with it the operator pulls its manifests from
/// ghcr.io, which the tier cannot reach; without it, it renders the ones bundled with it.
fn flux_instance(tag: &str) -> String {
    format!(
        "apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: \"2.x\"
    registry: ghcr.io/fluxcd
  sync:
    kind: OCIRepository
    url: oci://{}/k8s
    ref: {tag}
    path: ./
    provider: generic
    interval: 10m
  kustomize:
    patches:
      - target:
          kind: OCIRepository
          name: flux-system
        patch: |
          - op: add
            path: /spec/insecure
            value: true
",
        real::IN_CLUSTER_REGISTRY
    )
}

/// Applies the FluxInstance and waits until the operator has installed Flux and the sync is
/// ready.
fn bootstrap_instance(lab: &Lab, tag: &str) {
    lab.cluster.apply(&flux_instance(tag));
    lab.cluster
        .wait_condition(FLUX_INSTANCE, FLUX_NAMESPACE, "flux", "Ready", "True");
    wait_kustomization(lab, "flux-system", "True");
}

#[test]
fn reconcile_serves_a_new_push_through_a_flux_instance() {
    let lab = real::flux().lab();
    lab.first_push("Flux");
    bootstrap_instance(&lab, "dev");
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));
    let source = lab
        .cluster
        .get(OCI_REPOSITORY, Some(FLUX_NAMESPACE), "flux-system")
        .expect("the operator made the sync source");
    assert_eq!(
        source["spec"]["url"],
        format!("oci://{}/k8s", real::IN_CLUSTER_REGISTRY),
        "the cluster reads the registry by its in-cluster name"
    );

    lab.write("k8s/app.yaml", &real::configmap("app", "two"));
    let second = lab.push();
    let output = lab.run(&["workload", "reconcile", "--timeout", "50s"]);

    assert_exit(&output, 0);
    assert!(
        stdout_text(&output).contains(&format!("dev@{second}")),
        "{}",
        stdout_text(&output)
    );
    assert_eq!(served_revision(&lab), format!("dev@{second}"));
    assert_eq!(lab.configmap_value("app").as_deref(), Some("two"));
}

#[test]
fn cluster_update_repairs_tag_drift_on_a_flux_instance_then_finds_no_changes() {
    let lab = real::flux().lab();
    let digest = lab.first_push("Flux");
    lab.push_as_old();
    bootstrap_instance(&lab, "old");
    let _tools = lab.fake_tools();

    lab.update_repairs_the_tag();
    let instance = lab
        .cluster
        .get(FLUX_INSTANCE, Some(FLUX_NAMESPACE), "flux")
        .expect("the FluxInstance exists");
    assert_eq!(instance["spec"]["sync"]["ref"], "dev");
    assert_eq!(
        instance["spec"]["kustomize"]["patches"][0]["target"]["name"], "flux-system",
        "the repair touches only the tag"
    );
    // flux-operator carries the repair into the sync source, which then serves the push.
    lab.cluster
        .wait_for("the sync source to serve dev", real::SETTLE, || {
            let revision = served_revision(&lab);
            if revision == format!("dev@{digest}") {
                Ok(())
            } else {
                Err(revision)
            }
        });

    real::assert_no_changes(&lab.run(&["cluster", "update"]));
}

#[test]
fn init_create_push_reconcile_update_delete_run_against_real_kubernetes() {
    let lab = real::flux().lab();
    let _tools = lab.fake_tools_before_create();
    lab.init_project("Flux");

    // The flux-operator install manifest of the pinned release, applied to the real API server;
    // the real operator installs Flux from the FluxInstance (its manifests come from the stand-in
    // for ghcr.io) and the real controllers serve the first push.
    let create = lab.run_cluster_command(&["cluster", "create", "--timeout", "3m"]);
    assert_exit(&create, 0);
    let instance =
        lab.cluster
            .wait_condition(FLUX_INSTANCE, FLUX_NAMESPACE, "flux", "Ready", "True");
    assert_eq!(
        instance["spec"]["distribution"]["artifact"],
        format!(
            "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:v{}",
            real::components::pinned_version("FLUX_OPERATOR").trim_start_matches('v')
        ),
        "the FluxInstance is the one cluster create makes for users"
    );
    assert!(
        instance["status"]["lastArtifactRevision"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "the operator pulled its manifests artifact: {}",
        instance["status"]
    );
    let second = lab.created_then_push_and_reconcile(FLUX_NAMESPACE, "flux-operator");
    assert_eq!(served_revision(&lab), format!("dev@{second}"));

    // A new Flux version in ksail.yaml: `cluster update` patches the FluxInstance in place and
    // the real operator rolls the distribution out.
    let config = std::fs::read_to_string(lab.env.work().join("ksail.yaml")).unwrap();
    assert!(!config.contains("workload:"), "{config}");
    lab.write(
        "ksail.yaml",
        &format!("{config}  workload:\n    flux:\n      distributionVersion: \"2.9.x\"\n"),
    );
    let update = lab.run_cluster_command(&["cluster", "update"]);
    assert_exit(&update, 0);
    assert_eq!(
        stdout_text(&update).trim(),
        "flux distribution version: 2.x → 2.9.x (repaired in place)"
    );
    lab.cluster
        .wait_for("the operator to apply Flux 2.9.x", real::SETTLE, || {
            let instance = lab
                .cluster
                .get(FLUX_INSTANCE, Some(FLUX_NAMESPACE), "flux")
                .ok_or("no FluxInstance")?;
            let status = &instance["status"];
            let applied = status["lastAppliedRevision"].as_str().unwrap_or_default();
            // Ready for the patched generation (the operator keeps it on the condition).
            let ready = real::condition(&instance, "Ready").is_some_and(|c| {
                c["status"] == "True"
                    && c["observedGeneration"] == instance["metadata"]["generation"]
            });
            if instance["spec"]["distribution"]["version"] == "2.9.x"
                && applied.starts_with("v2.9.")
                && ready
            {
                Ok(())
            } else {
                Err(status.to_string())
            }
        });

    // A renamed source directory sends pushes to another repository. Reconcile says the cluster
    // follows a different artifact and to run `cluster update`, which turns the sync to it.
    let third = lab.push_from_a_renamed_source_directory();
    let stale = lab.run_cluster_command(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&stale, 1);
    assert!(
        stderr_text(&stale)
            .contains("the cluster follows a different artifact; run ksail cluster update"),
        "{}",
        stderr_text(&stale)
    );
    lab.update_turns_the_sync_to_apps();
    let reconcile = lab.run_cluster_command(&["workload", "reconcile", "--timeout", "50s"]);
    assert_exit(&reconcile, 0);
    assert_eq!(served_revision(&lab), format!("dev@{third}"));
    assert_eq!(lab.configmap_value("app").as_deref(), Some("three"));

    lab.update_then_delete();
}

/// A first artifact that kustomize-controller cannot build: `cluster create` ends with the sync
/// Kustomization's real reason (exit 1) while the FluxInstance is still not ready, instead of
/// waiting out its timeout.
#[test]
fn create_with_a_broken_first_artifact_exits_1_with_the_kustomizations_reason() {
    let lab = real::flux().lab();
    let _tools = lab.fake_tools_before_create();
    lab.init_project("Flux");
    lab.write("k8s/kustomization.yaml", BROKEN_KUSTOMIZE);

    let create = lab.run_cluster_command(&["cluster", "create", "--timeout", "3m"]);

    assert_exit(&create, 1);
    let stderr = stderr_text(&create);
    assert!(
        stderr.contains("error: Kustomization flux-system/flux-system failed: BuildFailed: ")
            && stderr.contains("no-such-file.yaml"),
        "the error carries kustomize-controller's reason and message:\n{stderr}"
    );
}

/// The password of the key pairs the signing test writes; it must never be printed.
const SIGNING_PASSWORD: &str = "correct-horse-battery-staple";

/// `ksail <args>` for the signing test: the lab's own kubeconfig (cluster commands) and the key
/// password; `signing` adds `spec.workload.signing.key: cosign.key` through its variable.
fn run_signing(lab: &Lab, args: &[&str], signing: bool) -> std::process::Output {
    let mut command = lab.env.ksail(args);
    command
        .env("KUBECONFIG", lab.own_kubeconfig())
        .env(
            "KSAIL_FLUX_OPERATOR_MANIFEST",
            lab.cluster.share("install/flux-operator.yaml"),
        )
        .env("COSIGN_PASSWORD", SIGNING_PASSWORD);
    if signing {
        command.env("KSAIL_SPEC_WORKLOAD_SIGNING_KEY", "cosign.key");
    }
    let output = command.output().expect("run ksail");
    for stream in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(SIGNING_PASSWORD) && !text.contains("-----BEGIN"),
            "ksail {args:?} printed the password or the private key:\n{text}"
        );
    }
    eprintln!(
        "$ ksail {}\n{}{}",
        args.join(" "),
        stdout_text(&output),
        stderr_text(&output)
    );
    output
}

/// The digest on a push's `pushed`/`unchanged` line.
fn pushed_digest(output: &std::process::Output) -> String {
    assert_exit(output, 0);
    let stdout = stdout_text(output);
    let at = stdout
        .find("@sha256:")
        .expect("a digest on the result line");
    stdout[at + 1..at + 72].to_string()
}

/// `cosign verify --key <public>` of `k8s@digest` in the lab's registry, by the cosign Flux
/// links (offline: no transparency log, no TUF). Returns its exit code.
fn cosign_verify(lab: &Lab, public: &str, digest: &str) -> Option<i32> {
    let home = lab.env.root().join("cosign-home");
    std::process::Command::new(lab.cluster.bin("cosign"))
        .args([
            "verify",
            "--key",
            public,
            "--insecure-ignore-tlog=true",
            "--new-bundle-format=false",
            "--allow-http-registry",
        ])
        .arg(format!("{}/k8s@{digest}", lab.registry.host_port()))
        .current_dir(lab.env.work())
        .env_clear()
        .env("HOME", &home)
        .env("TUF_ROOT", home.join("tuf"))
        .output()
        .expect("run cosign")
        .status
        .code()
}

/// Issue 14: keygen, then `cluster create` with a signing key wires verification into the
/// FluxInstance; real source-controller marks the signed artifact verified and refuses an
/// unsigned push and one signed with another key (reconcile exits 1 with the reason and the
/// fix); signing the refused digest with the right key makes it serve. The signatures verify
/// with real cosign too. `cluster update` repairs verification drift both ways.
#[test]
fn flux_verifies_signed_pushes_and_refuses_unsigned_or_foreign_ones() {
    let lab = real::flux().lab();
    let _tools = lab.fake_tools_before_create();
    lab.init_project("Flux");
    assert_exit(&run_signing(&lab, &["workload", "keygen"], false), 0);

    let create = run_signing(&lab, &["cluster", "create", "--timeout", "3m"], true);
    assert_exit(&create, 0);
    let source = lab
        .cluster
        .get(OCI_REPOSITORY, Some(FLUX_NAMESPACE), "flux-system")
        .expect("the operator made the sync source");
    assert_eq!(
        source["spec"]["verify"],
        serde_json::json!({"provider": "cosign", "secretRef": {"name": "ksail-cosign-public-key"}})
    );
    let verified = lab.cluster.wait_condition(
        OCI_REPOSITORY,
        FLUX_NAMESPACE,
        "flux-system",
        "SourceVerified",
        "True",
    );
    let first = served_revision(&lab);
    assert!(
        condition(&verified, "SourceVerified").unwrap()["message"]
            .as_str()
            .is_some_and(|message| message.contains(first.trim_start_matches("dev@"))),
        "{verified}"
    );
    assert_eq!(
        cosign_verify(&lab, "cosign.pub", first.trim_start_matches("dev@")),
        Some(0)
    );

    // Unsigned: Flux keeps serving the first artifact and reports why.
    lab.write("k8s/app.yaml", &real::configmap("app", "two"));
    let unsigned = pushed_digest(&run_signing(&lab, &["workload", "push"], false));
    let refused = run_signing(&lab, &["workload", "reconcile", "--timeout", "50s"], false);
    assert_exit(&refused, 1);
    let stderr = stderr_text(&refused);
    assert!(
        stderr.contains("VerificationError")
            && stderr.contains("no signature the cluster trusts")
            && stderr.contains("ksail-cosign-public-key"),
        "the error names the verification failure and the fix:\n{stderr}"
    );
    assert_eq!(lab.configmap_value("app").as_deref(), Some("one"));
    assert_eq!(
        cosign_verify(&lab, "cosign.pub", &unsigned),
        Some(10),
        "no signatures"
    );

    // Signed with another key: refused the same way, and cosign agrees.
    assert_exit(
        &run_signing(&lab, &["workload", "keygen", "--key", "other.key"], false),
        0,
    );
    let foreign = run_signing(
        &lab,
        &["workload", "push", "--signing-key", "other.key"],
        false,
    );
    assert_eq!(pushed_digest(&foreign), unsigned);
    assert_exit(
        &run_signing(&lab, &["workload", "reconcile", "--timeout", "50s"], false),
        1,
    );
    assert_eq!(
        cosign_verify(&lab, "cosign.pub", &unsigned),
        Some(12),
        "no matching signatures"
    );
    assert_eq!(cosign_verify(&lab, "other.pub", &unsigned), Some(0));

    // The right key signs the digest already in the registry (nothing else to upload); Flux
    // then serves it. -vvv: not even trace logs show the password or the key.
    let signed = run_signing(
        &lab,
        &["-vvv", "workload", "push", "--output", "json"],
        true,
    );
    assert_eq!(pushed_digest_json(&signed), unsigned);
    let reconcile = run_signing(&lab, &["workload", "reconcile", "--timeout", "50s"], true);
    assert_exit(&reconcile, 0);
    assert_eq!(lab.configmap_value("app").as_deref(), Some("two"));
    assert_eq!(served_revision(&lab), format!("dev@{unsigned}"));

    // Verification drift: without a signing key, update turns it off; with it, back on.
    let off = run_signing(&lab, &["cluster", "update"], false);
    assert_exit(&off, 0);
    assert!(
        stdout_text(&off).contains("signature verification: cosign → off (repaired in place)"),
        "{}",
        stdout_text(&off)
    );
    lab.cluster
        .wait_for("the operator to drop spec.verify", real::SETTLE, || {
            let source = lab
                .cluster
                .get(OCI_REPOSITORY, Some(FLUX_NAMESPACE), "flux-system");
            match source.as_ref().map(|s| s["spec"]["verify"].clone()) {
                Some(Value::Null) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    let on = run_signing(&lab, &["cluster", "update"], true);
    assert_exit(&on, 0);
    assert!(
        stdout_text(&on)
            .contains("signature verification: off → cosign cosign.pub (repaired in place)"),
        "{}",
        stdout_text(&on)
    );
    real::assert_no_changes(&run_signing(&lab, &["cluster", "update"], true));
}

/// The digest of a `workload push --output json` document (whose signature was written now).
fn pushed_digest_json(output: &std::process::Output) -> String {
    assert_exit(output, 0);
    let document: Value = serde_json::from_str(stdout_text(output).trim()).expect("one document");
    assert_eq!(document["signature"]["reused"], false, "{document}");
    document["digest"].as_str().expect("a digest").to_string()
}
