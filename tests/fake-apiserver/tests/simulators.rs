//! HelmRelease, flux-operator, Argo CD and workload simulators, fixtures, and use from sync tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use fake_apiserver::fixtures::{self, EventTimes, HelmState};
use fake_apiserver::simulators::{
    AppOutcome, ArgoCd, FluxOperator, FluxSource, HelmReleaseSim, OperationOutcome, Workloads,
    condition_state,
};
use fake_apiserver::{FakeApiServer, ServerOptions};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

/// A minimal blocking HTTP/1.1 client, so these tests need no async runtime (as sync tests of
/// the `ksail` binary would not).
fn http(
    server: &FakeApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, Value) {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // Fixed-length bodies only (non-watch answers are not chunked).
    (code, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn merge(server: &FakeApiServer, path: &str, patch: Value) -> (u16, Value) {
    http(
        server,
        "PATCH",
        path,
        "application/merge-patch+json",
        &patch.to_string(),
    )
}

fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..250 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}

fn ready(obj: &Value) -> bool {
    matches!(condition_state(obj, "Ready"), Some(("True", _)))
}

#[test]
fn helm_release_suspend_observe_resume() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let helm = HelmReleaseSim::new(10, 30);
    helm.never_observe("podinfo/slow");
    server.add_simulator(helm.clone());
    server.put_object(fixtures::helm_release(
        "podinfo",
        "podinfo",
        HelmState::Stalled("RetriesExceeded".into()),
    ));
    server.put_object(fixtures::helm_release(
        "podinfo",
        "slow",
        HelmState::NotReady("UpgradeFailed".into()),
    ));
    let path =
        |n: &str| format!("/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/{n}");
    let get = |n: &str| {
        server
            .get_object("helm.toolkit.fluxcd.io", "helmreleases", "podinfo", n)
            .unwrap()
    };

    let (code, body) = merge(
        &server,
        &path("podinfo"),
        json!({"spec": {"suspend": true}}),
    );
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["generation"], 2);
    merge(&server, &path("slow"), json!({"spec": {"suspend": true}}));
    eventually("observedGeneration recorded", || {
        get("podinfo")["status"]["observedGeneration"] == 2
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        get("slow")["status"]["observedGeneration"],
        1,
        "configured never to observe"
    );

    merge(
        &server,
        &path("podinfo"),
        json!({"spec": {"suspend": false}}),
    );
    merge(&server, &path("slow"), json!({"spec": {"suspend": false}}));
    eventually("ready after resume", || {
        ready(&get("podinfo")) && ready(&get("slow"))
    });
    assert!(condition_state(&get("podinfo"), "Stalled").is_none());
    assert_eq!(
        helm.order_strings(),
        [
            "suspend podinfo/podinfo",
            "suspend podinfo/slow",
            "resume podinfo/podinfo",
            "resume podinfo/slow"
        ]
    );
}

/// A changed spec (what a Kustomization applying a new artifact does) retries a stuck release,
/// as helm-controller's `MustResetFailures` does; an annotation-only change does not.
#[test]
fn helm_release_retried_on_a_new_generation() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let helm = HelmReleaseSim::new(10, 30);
    server.add_simulator(helm.clone());
    server.put_object(fixtures::helm_release(
        "podinfo",
        "podinfo",
        HelmState::Stalled("RetriesExceeded".into()),
    ));
    let path = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/podinfo/helmreleases/podinfo";
    let get = || {
        server
            .get_object(
                "helm.toolkit.fluxcd.io",
                "helmreleases",
                "podinfo",
                "podinfo",
            )
            .unwrap()
    };

    merge(
        &server,
        path,
        json!({"metadata": {"annotations": {"note": "x"}}}),
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(!ready(&get()), "no new generation, no retry");

    let (code, body) = merge(&server, path, json!({"spec": {"targetNamespace": "apps"}}));
    assert_eq!(code, 200);
    assert_eq!(body["metadata"]["generation"], 2);
    eventually("ready after the new generation", || ready(&get()));
    assert_eq!(get()["status"]["observedGeneration"], 2);
    assert_eq!(helm.order_strings(), ["retry podinfo/podinfo"]);
}

#[test]
fn flux_operator_renders_sync_objects() {
    let server = FakeApiServer::start(ServerOptions::flux());
    server.add_simulator(FluxOperator::new(0));
    server.add_simulator(FluxSource::new(0, DIGEST));
    let instance = json!({
        "apiVersion": "fluxcd.controlplane.io/v1",
        "kind": "FluxInstance",
        "metadata": {"name": "flux", "namespace": "flux-system"},
        "spec": {
            "distribution": {"version": "2.x", "registry": "ghcr.io/fluxcd"},
            "sync": {"kind": "OCIRepository", "url": "oci://kind-local-registry:5000/k8s", "ref": "dev", "path": "./", "provider": "generic", "interval": "1m"},
            "kustomize": {"patches": [{"target": {"kind": "OCIRepository", "name": "flux-system"}, "patch": "- op: add\n  path: /spec/insecure\n  value: true\n"}]}
        }
    });
    let (code, _) = http(
        &server,
        "PATCH",
        "/apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux?fieldManager=ksail&force=true",
        "application/apply-patch+yaml",
        &instance.to_string(),
    );
    assert_eq!(code, 201);
    let source = || {
        server.get_object(
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            "flux-system",
            "flux-system",
        )
    };
    eventually("instance ready and source served", || {
        server
            .get_object(
                "fluxcd.controlplane.io",
                "fluxinstances",
                "flux-system",
                "flux",
            )
            .is_some_and(|i| ready(&i))
            && source().is_some_and(|s| ready(&s))
    });
    let s = source().unwrap();
    assert_eq!(s["spec"]["insecure"], true);
    assert_eq!(s["spec"]["ref"]["tag"], "dev");
    assert_eq!(s["status"]["artifact"]["revision"], format!("dev@{DIGEST}"));
    let k = server
        .get_object(
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            "flux-system",
            "flux-system",
        )
        .unwrap();
    assert_eq!(k["spec"]["sourceRef"]["kind"], "OCIRepository");

    // Tag drift repair through the FluxInstance reaches the OCIRepository.
    merge(
        &server,
        "/apis/fluxcd.controlplane.io/v1/namespaces/flux-system/fluxinstances/flux",
        json!({"spec": {"sync": {"ref": "prod"}}}),
    );
    eventually("source follows the new tag", || {
        source().is_some_and(|s| {
            s["status"]["artifact"]["revision"] == format!("prod@{DIGEST}").as_str()
        })
    });
    assert_eq!(source().unwrap()["spec"]["insecure"], true);
}

#[test]
fn argocd_refresh_and_operation() {
    let server = FakeApiServer::start(ServerOptions::argocd());
    let argo = ArgoCd::new(0, 30, DIGEST);
    argo.script_operation(
        "argocd/bad",
        vec![OperationOutcome::Failed(
            "one or more objects failed to apply".into(),
        )],
    );
    argo.script_app(
        "argocd/degraded",
        vec![AppOutcome::Degraded(
            "Deployment web: progress deadline".into(),
        )],
    );
    server.add_simulator(argo.clone());
    for name in ["ksail", "bad", "degraded"] {
        server.put_object(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {"project": "default", "source": {"repoURL": "oci://r:5000/k8s", "targetRevision": "dev", "path": "."},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                     "syncPolicy": {"automated": {"prune": true, "selfHeal": true}}}
        }));
    }
    let path = |n: &str| format!("/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/{n}");
    let get = |n: &str| {
        server
            .get_object("argoproj.io", "applications", "argocd", n)
            .unwrap()
    };
    // A refresh of an automated Application that is OutOfSync starts the controller's own
    // automated sync (argo-cd autoSync): no manual operation is needed.
    for name in ["ksail", "bad", "degraded"] {
        merge(
            &server,
            &path(name),
            json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}),
        );
    }
    let done = |n: &str| {
        let a = get(n);
        let phase = a["status"]["operationState"]["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        (phase == "Succeeded" || phase == "Failed") && a.get("operation").is_none()
    };
    eventually("operations finished", || {
        done("ksail") && done("bad") && done("degraded")
    });
    let a = get("ksail");
    assert!(
        a["metadata"]["annotations"]
            .get("argocd.argoproj.io/refresh")
            .is_none()
    );
    assert_eq!(a["status"]["sync"]["status"], "Synced");
    assert_eq!(a["status"]["health"]["status"], "Healthy");
    assert_eq!(a["status"]["sync"]["revision"], DIGEST);
    assert!(
        a["status"]["reconciledAt"].as_str().unwrap()
            >= a["status"]["operationState"]["finishedAt"]
                .as_str()
                .unwrap()
    );
    assert!(a["status"]["operationState"]["startedAt"].is_string());
    assert_eq!(
        a["status"]["operationState"]["operation"],
        json!({"initiatedBy": {"automated": true}, "sync": {"revision": DIGEST, "prune": true}, "retry": {"limit": 5}})
    );
    let b = get("bad");
    assert_eq!(b["status"]["operationState"]["phase"], "Failed");
    assert_eq!(
        b["status"]["operationState"]["message"],
        "one or more objects failed to apply"
    );
    assert_eq!(get("degraded")["status"]["health"]["status"], "Degraded");
}

#[test]
fn workloads_establish_crds_and_make_deployments_available() {
    let server = FakeApiServer::start(ServerOptions::default());
    server.add_simulator(Workloads::new(0));
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}
    });
    let (code, _) = http(
        &server,
        "PATCH",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com?fieldManager=ksail&force=true",
        "application/apply-patch+yaml",
        &crd.to_string(),
    );
    assert_eq!(code, 201);
    eventually("CRD established and served", || {
        http(
            &server,
            "GET",
            "/apis/example.com/v1",
            "application/json",
            "",
        )
        .0 == 200
    });
    let (code, _) = http(
        &server,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        "application/json",
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
            .to_string(),
    );
    assert_eq!(code, 201);
    let (_, groups) = http(&server, "GET", "/apis", "application/json", "");
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com")
    );

    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "flux-operator", "namespace": "flux-system"},
                        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}, "template": {}}});
    let (code, _) = http(
        &server,
        "POST",
        "/apis/apps/v1/namespaces/flux-system/deployments",
        "application/json",
        &deploy.to_string(),
    );
    assert_eq!(code, 201);
    eventually("deployment available", || {
        server
            .get_object("apps", "deployments", "flux-system", "flux-operator")
            .is_some_and(|d| {
                d["status"]["availableReplicas"] == 2
                    && matches!(condition_state(&d, "Available"), Some(("True", _)))
            })
    });
}

#[test]
fn fixtures_pods_and_events_with_selectors() {
    let server = FakeApiServer::start(ServerOptions::default());
    // One pod of each state, then a Warning and a Normal event about Kustomizations: the
    // Warning last seen two minutes ago, the Normal one without times.
    let kustomization_event =
        |name: &str, type_: &str, reason: &str, message: &str, about: &str| {
            let times = if type_ == "Warning" {
                EventTimes::last_seconds_ago(120)
            } else {
                EventTimes::default()
            };
            let kind = "Kustomization";
            fixtures::event(
                "flux-system",
                name,
                type_,
                reason,
                message,
                kind,
                about,
                times,
            )
        };
    let objects = [
        fixtures::pod_waiting(
            "flux-system",
            "helm-controller-x",
            "ghcr.io/fluxcd/helm-controller:v1.3.0",
            "CrashLoopBackOff",
            5,
        ),
        fixtures::pod_terminated("flux-system", "job-y", 1, "Error"),
        fixtures::pod_init_waiting("flux-system", "init-z", "PodInitializing"),
        fixtures::pod_running("flux-system", "ok"),
        kustomization_event(
            "e1",
            "Warning",
            "HealthCheckFailed",
            "timeout",
            "cert-manager",
        ),
        kustomization_event("e2", "Normal", "Progressing", "ok", "apps"),
    ];
    for object in objects {
        server.put_object(object);
    }
    let (code, pods) = http(
        &server,
        "GET",
        "/api/v1/namespaces/flux-system/pods",
        "application/json",
        "",
    );
    assert_eq!(code, 200);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 4);
    let waiting = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "helm-controller-x")
        .unwrap();
    assert_eq!(
        waiting["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CrashLoopBackOff"
    );
    assert_eq!(waiting["status"]["containerStatuses"][0]["restartCount"], 5);
    let (_, events) = http(
        &server,
        "GET",
        "/api/v1/namespaces/flux-system/events?fieldSelector=type%3DWarning",
        "application/json",
        "",
    );
    let events = events["items"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0]["lastTimestamp"].is_string());
    // Requests are logged with their query.
    let log = server.requests();
    assert_eq!(
        log.last().unwrap().query_param("fieldSelector").as_deref(),
        Some("type=Warning")
    );
    assert!(log.iter().all(|r| !r.is_write()));
    assert!(log[0].is_list());
}

#[test]
fn kubeconfig_text_has_contexts_and_token() {
    let server = FakeApiServer::start(ServerOptions::default());
    let text = server.kubeconfig_yaml(&["kind-kind", "k3d-dev"], Some("t0k"));
    assert!(text.contains(&format!("server: {}", server.url())));
    assert!(text.contains("- name: kind-kind") && text.contains("- name: k3d-dev"));
    assert!(text.contains("current-context: kind-kind"));
    assert!(text.contains("token: \"t0k\""));
    // Without a written token, no auth is required.
    assert_eq!(
        http(&server, "GET", "/version", "application/json", "").0,
        200
    );
}

#[test]
fn kustomization_children_are_created_and_pruned() {
    use fake_apiserver::simulators::{ChildAction, FluxKustomization};
    let server = FakeApiServer::start(ServerOptions::flux());
    let ks = FluxKustomization::new(0);
    ks.on_ready(
        "flux-system/flux-system",
        vec![
            ChildAction::Apply(fixtures::kustomization(
                "apps",
                "child",
                "flux-system/flux-system",
                &[],
            )),
            ChildAction::Delete {
                namespace: "apps".into(),
                name: "old".into(),
            },
        ],
    );
    server.add_simulator(FluxSource::new(0, DIGEST));
    server.add_simulator(ks.clone());
    server.put_object(fixtures::with_ready_status(
        fixtures::kustomization("apps", "old", "flux-system/flux-system", &[]),
        "dev@sha256:00",
    ));
    server
        .apply_object(fixtures::oci_repository(
            "flux-system",
            "flux-system",
            "oci://r/k8s",
            "dev",
        ))
        .unwrap();
    server
        .apply_object(fixtures::kustomization(
            "flux-system",
            "flux-system",
            "flux-system",
            &[],
        ))
        .unwrap();
    let get = |ns: &str, n: &str| {
        server.get_object("kustomize.toolkit.fluxcd.io", "kustomizations", ns, n)
    };
    eventually("child created and ready", || {
        get("apps", "child").is_some_and(|c| ready(&c))
    });
    assert!(get("apps", "old").is_none(), "pruned");
    assert!(ks.handled().contains(&"apps/child".to_string()));
}
