//! `ksail workload watch` through the real binary (docs/watch.md): a real registry and the fake
//! API server with Flux controllers that serve whatever the registry's `k8s:dev` holds. The
//! watch runs as a child; its round lines are read as they come.

mod support;

use std::time::Duration;

use fake_apiserver::ServerOptions;
use fake_apiserver::fixtures;
use fake_apiserver::simulators::{DigestResolver, FluxKustomization, FluxSource};
use serde_json::Value;
use support::fake_cluster::FakeCluster;
use support::watch::Running;
use support::{Registry, http};

/// Long enough for a round on a loaded CI machine; the rounds themselves take milliseconds.
const ROUND: Duration = Duration::from_secs(30);

const APP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: default\ndata:\n  v: \"1\"\n";

fn app(value: &str) -> String {
    APP.replace("v: \"1\"", &format!("v: \"{value}\""))
}

/// The fake cluster, the registry its Flux follows, and a running `workload watch`.
struct Watch {
    cluster: FakeCluster,
    registry: Registry,
    running: Running,
}

/// Flux sources resolve `k8s:<tag>` in the real registry, as source-controller does.
fn registry_resolver(registry: &Registry) -> DigestResolver {
    let host = registry.host_port();
    std::sync::Arc::new(move |object: &Value| {
        let tag = object.pointer("/spec/ref/tag").and_then(Value::as_str)?;
        let (status, _, digest) = http::fetch_manifest(&host, "k8s", tag);
        (status == 200).then_some(digest).flatten()
    })
}

impl Watch {
    /// A watch of `k8s/` (holding [`APP`]) whose kustomize controller takes `reconcile_ms` per
    /// request; `extra` flags are passed on.
    fn start(reconcile_ms: u64, extra: &[&str]) -> Option<Watch> {
        let registry = support::registry::start_or_skip(support::RegistryKind::Plain, "watch")?;
        let cluster = FakeCluster::start(ServerOptions::flux(), true);
        cluster.env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: {}\n",
                registry.host_port()
            ),
        );
        let source = format!("oci://{}/k8s", registry.host_port());
        cluster.server.put_object(fixtures::oci_repository(
            "flux-system",
            "flux-system",
            &source,
            "dev",
        ));
        cluster.server.put_object(fixtures::kustomization(
            "flux-system",
            "flux-system",
            "flux-system",
            &[],
        ));
        cluster
            .server
            .add_simulator(FluxSource::with_resolver(0, registry_resolver(&registry)));
        cluster
            .server
            .add_simulator(FluxKustomization::new(reconcile_ms));
        cluster.env.write("k8s/app.yaml", APP);

        let mut args = vec!["workload", "watch"];
        args.extend_from_slice(extra);
        let mut command = cluster.env.ksail_process(&args);
        command.env("KUBECONFIG", &cluster.kubeconfig);
        Some(Watch {
            running: Running::start(command),
            cluster,
            registry,
        })
    }

    /// The next stdout line; fails the test after [`ROUND`].
    fn next_line(&self) -> String {
        self.running.next_line(ROUND)
    }

    fn assert_no_line_for(&self, quiet: Duration) {
        self.running.assert_no_line_for(quiet);
    }

    fn write(&self, path: &str, content: &str) {
        self.cluster.env.write(path, content);
    }

    /// The digest the registry's `k8s:dev` holds.
    fn tag_digest(&self) -> Option<String> {
        let (status, _, digest) = http::fetch_manifest(&self.registry.host_port(), "k8s", "dev");
        (status == 200).then_some(digest).flatten()
    }

    fn interrupt(self) -> (Option<i32>, String, Vec<String>) {
        self.running.interrupt()
    }
}

/// `watch: round N: <changed> → pushed sha256:<12>, …`: the short digest of a pushed round.
fn pushed_short_digest(line: &str) -> &str {
    line.split("→ pushed ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("not a pushed round: {line}"))
}

/// The first round brings the cluster to the tree; each saved change is pushed and reconciled;
/// invalid YAML pushes nothing and the watch goes on; Ctrl-C between rounds ends it with 0.
#[test]
fn each_saved_change_is_pushed_and_reconciled_and_invalid_yaml_is_not() {
    let Some(watch) = Watch::start(0, &[]) else {
        return;
    };
    let first = watch.next_line();
    assert!(
        first.starts_with("watch: round 1: start → pushed sha256:")
            && first.contains("objects ready"),
        "{first}"
    );
    let digest = watch.tag_digest().expect("the first round pushed");
    assert_eq!(pushed_short_digest(&first), &digest[..19]);

    watch.write("k8s/app.yaml", &app("2"));
    let second = watch.next_line();
    assert!(
        second.starts_with("watch: round 2: k8s/app.yaml → pushed sha256:"),
        "{second}"
    );
    let changed = watch.tag_digest().expect("tagged");
    assert_ne!(changed, digest);
    assert_eq!(pushed_short_digest(&second), &changed[..19]);
    assert!(second.contains("2 objects ready"), "{second}");

    watch.write("k8s/broken.yaml", "kind: [\n");
    let invalid = watch.next_line();
    assert!(
        invalid.starts_with(
            "watch: round 3: k8s/broken.yaml → nothing pushed, invalid: validation failed"
        ),
        "{invalid}"
    );
    assert_eq!(watch.tag_digest(), Some(changed), "nothing was pushed");

    watch.write(
        "k8s/broken.yaml",
        &app("3").replace("name: app", "name: fixed"),
    );
    let fixed = watch.next_line();
    assert!(
        fixed.starts_with("watch: round 4: k8s/broken.yaml → pushed"),
        "{fixed}"
    );

    let (code, stderr, _) = watch.interrupt();
    assert_eq!(code, Some(0), "a clean stop exits 0:\n{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
}

/// An editor's save is several events; a burst of saves is one round, and a save that leaves
/// the artifact as it was (an ignored file) starts none.
#[test]
fn a_burst_of_saves_is_one_round_and_ignored_files_start_none() {
    let Some(watch) = Watch::start(0, &[]) else {
        return;
    };
    watch.next_line();
    for value in 0..5 {
        watch.write("k8s/app.yaml", &app(&value.to_string()));
        watch.write(
            &format!("k8s/more-{value}.yaml"),
            &app("x").replace("name: app", &format!("name: more-{value}")),
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let round = watch.next_line();
    assert!(
        round.starts_with("watch: round 2: k8s/app.yaml and 5 more → pushed"),
        "{round}"
    );
    watch.assert_no_line_for(Duration::from_secs(1));

    watch.write("k8s/.sourceignore", "notes.txt\n");
    let ignore_file = watch.next_line();
    assert!(
        ignore_file.starts_with("watch: round 3: k8s/.sourceignore →"),
        "{ignore_file}"
    );
    watch.write("k8s/notes.txt", "not in the artifact\n");
    watch.assert_no_line_for(Duration::from_secs(1));
}

/// Saves made while a round runs start exactly one more round after it, never two at once.
#[test]
fn changes_during_a_round_start_exactly_one_more_round() {
    let Some(watch) = Watch::start(1500, &["--output", "json"]) else {
        return;
    };
    let first: Value = serde_json::from_str(&watch.next_line()).expect("a JSON round");
    assert_eq!(first["round"], 1);
    assert_eq!(first["status"], "succeeded", "{first}");

    watch.write("k8s/app.yaml", &app("2"));
    // The round now waits for the slow kustomize controller: save twice more meanwhile.
    std::thread::sleep(Duration::from_millis(600));
    watch.write("k8s/app.yaml", &app("3"));
    std::thread::sleep(Duration::from_millis(200));
    watch.write(
        "k8s/other.yaml",
        &app("4").replace("name: app", "name: other"),
    );

    let second: Value = serde_json::from_str(&watch.next_line()).unwrap();
    assert_eq!(second["round"], 2);
    assert_eq!(second["changed"], serde_json::json!(["k8s/app.yaml"]));
    let third: Value = serde_json::from_str(&watch.next_line()).unwrap();
    assert_eq!(third["round"], 3);
    assert_eq!(
        third["changed"],
        serde_json::json!(["k8s/app.yaml", "k8s/other.yaml"]),
        "both saves of the second round, in one round"
    );
    assert_eq!(third["status"], "succeeded", "{third}");
    assert_eq!(third["digest"].as_str(), watch.tag_digest().as_deref());
    watch.assert_no_line_for(Duration::from_secs(2));
}

/// Ctrl-C while a round waits for the cluster: the round stops, the watch exits 0, and under
/// `--output json` the last line is the end document.
#[test]
fn ctrl_c_mid_round_stops_cleanly() {
    let Some(watch) = Watch::start(20_000, &["--output", "json"]) else {
        return;
    };
    // The first round waits on a kustomize controller that takes 20 s.
    std::thread::sleep(Duration::from_millis(1500));
    let (code, stderr, rest) = watch.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    let end: Value = serde_json::from_str(rest.last().expect("the end document")).unwrap();
    assert_eq!(end["exitCode"], 0, "{end}");
    assert_eq!(end["status"], "succeeded", "{end}");
}

/// A source directory that does not exist is bad input: exit 2 before anything is watched or
/// pushed, with what to do.
#[test]
fn a_missing_source_directory_exits_2_before_watching() {
    let env = support::TestEnv::new();
    let output = env
        .ksail([
            "workload",
            "watch",
            "--path",
            "manifests",
            "--registry",
            "127.0.0.1:1/k8s:dev",
        ])
        .output()
        .expect("run ksail workload watch");
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        support::describe(&output)
    );
    support::assert_error_line(
        &output,
        "source directory manifests does not exist; create it or pass --path",
    );
    assert!(output.stdout.is_empty(), "no round ran");
}
