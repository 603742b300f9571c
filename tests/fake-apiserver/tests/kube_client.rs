//! The fake API server against the real `kube` client: protocol, watch, faults, simulators.

use std::time::Duration;

use fake_apiserver::simulators::{FluxKustomization, FluxSource, KsOutcome, SourceOutcome};
use fake_apiserver::{FakeApiServer, Route, ServerOptions, Verb, fixtures};
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind, WatchEvent};
use kube::discovery::Discovery;
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};

const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

async fn client_for(server: &FakeApiServer, token: Option<&str>) -> (Client, tempfile_dir::Dir) {
    let dir = tempfile_dir::Dir::new();
    let path = dir.path().join("kubeconfig");
    server
        .write_kubeconfig(&path, &["fake", "other"], token)
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    (Client::try_from(config).unwrap(), dir)
}

/// A tiny unique temporary directory (no extra dependency).
mod tempfile_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};

    pub struct Dir(PathBuf);
    static N: AtomicU64 = AtomicU64::new(0);

    impl Dir {
        pub fn new() -> Self {
            let p = std::env::temp_dir().join(format!(
                "fake-apiserver-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Self(p)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
    )
    .unwrap()
}

fn kustomization_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("kustomize.toolkit.fluxcd.io", "v1", "Kustomization"),
        "kustomizations",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

fn ocirepository_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "OCIRepository"),
        "ocirepositories",
    );
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Creates the ConfigMap `name` with `data`.
async fn create_cm(api: &Api<ConfigMap>, name: &str, data: Value) {
    api.create(&PostParams::default(), &cm(name, data))
        .await
        .unwrap();
}

/// Merge-patches the ConfigMap `name` with `patch`.
async fn merge_data(api: &Api<ConfigMap>, name: &str, patch: Value) {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// The `Ready` condition of an object's status, if it has one.
fn ready_condition(object: &Value) -> Option<&Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn discovery_lists_core_and_flux_types() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let (client, _dir) = client_for(&server, None).await;
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, "v1.33.1");
    let discovery = Discovery::new(client.clone()).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    assert!(
        groups.contains(&"kustomize.toolkit.fluxcd.io".to_string()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"argoproj.io".to_string()));
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
        ))
        .unwrap();
    assert_eq!(ar.plural, "kustomizations");
    assert!(caps.subresources.iter().any(|(s, _)| s.plural == "status"));
    let (cm_ar, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"))
        .unwrap();
    assert_eq!(cm_ar.plural, "configmaps");
    // Aggregated discovery (kube-apiserver 1.30+) names every kind of every version at once.
    let aggregated = client.list_api_groups_aggregated().await.unwrap();
    let kustomize = aggregated
        .items
        .iter()
        .find(|g| {
            g.metadata.as_ref().and_then(|m| m.name.as_deref())
                == Some("kustomize.toolkit.fluxcd.io")
        })
        .expect("the kustomize group");
    let kinds: Vec<Option<&str>> = kustomize.versions[0]
        .resources
        .iter()
        .map(|r| r.response_kind.as_ref().and_then(|k| k.kind.as_deref()))
        .collect();
    assert_eq!(kustomize.versions[0].version.as_deref(), Some("v1"));
    assert_eq!(kinds, [Some("Kustomization")]);
    // Argo CD registered at runtime shows up.
    server.register_argocd();
    let discovery = Discovery::new(client).run().await.unwrap();
    assert!(discovery.has_group("argoproj.io"));
}

#[tokio::test]
async fn configmap_crud_and_errors() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let created = api
        .create(&PostParams::default(), &cm("a", json!({"k": "v"})))
        .await
        .unwrap();
    let rv1 = created.metadata.resource_version.clone().unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let err = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{err:?}"
    );

    let mut got = api.get("a").await.unwrap();
    got.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = api
        .replace("a", &PostParams::default(), &got)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );
    assert_eq!(replaced.metadata.generation, Some(2));
    // Stale resourceVersion → Conflict.
    let err = api
        .replace("a", &PostParams::default(), &got)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );

    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "b", "labels": {"app": "web"}}}))
            .unwrap(),
    )
    .await
    .unwrap();
    let list = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    let list = api
        .list(&ListParams::default().fields("metadata.name=a"))
        .await
        .unwrap();
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("a"));
    let list = api
        .list(&ListParams::default().labels("app!=web"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);

    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api.get("a").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{err:?}"
    );
    assert!(api.get_opt("a").await.unwrap().is_none());

    let log = server.requests();
    assert!(
        log.iter()
            .any(|r| r.method == "DELETE" && r.path == "/api/v1/namespaces/default/configmaps/a")
    );
    assert!(
        log.iter()
            .any(|r| r.method == "POST" && r.content_type.as_deref() == Some("application/json"))
    );
}

#[tokio::test]
async fn merge_json_and_apply_patches() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.create(
        &PostParams::default(),
        &cm("p", json!({"a": "1", "b": "2"})),
    )
    .await
    .unwrap();

    let merged = api
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"data": {"a": null, "c": "3"}, "metadata": {"annotations": {"x": "y"}}}),
            ),
        )
        .await
        .unwrap();
    let data = merged.data.unwrap();
    assert_eq!(
        (data.get("a"), data.get("c").map(String::as_str)),
        (None, Some("3"))
    );
    assert_eq!(merged.metadata.annotations.unwrap()["x"], "y");
    assert_eq!(
        merged.metadata.generation,
        Some(2),
        "data changed: generation grows"
    );

    let patch: json_patch_ops::Ops = json_patch_ops::ops(json!([
        {"op": "test", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/b", "value": "two"},
        {"op": "add", "path": "/data/d", "value": "4"}
    ]));
    let patched = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .unwrap();
    assert_eq!(patched.data.as_ref().unwrap()["b"], "two");
    assert_eq!(patched.data.as_ref().unwrap()["d"], "4");
    // A failing test op is rejected.
    let bad = json_patch_ops::ops(json!([{"op": "test", "path": "/data/b", "value": "nope"}]));
    let err = api
        .patch("p", &PatchParams::default(), &Patch::<()>::Json(bad))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 422),
        "{err:?}"
    );

    // Server-side apply: create-or-merge, fieldManager and force recorded.
    let pp = PatchParams::apply("ksail").force();
    let applied = api
        .patch("q", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "q"}, "data": {"x": "1"}})))
        .await
        .unwrap();
    assert_eq!(applied.data.unwrap()["x"], "1");
    api.patch("q", &pp, &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "q"}, "data": {"y": "2"}})))
        .await
        .unwrap();
    let q = api.get("q").await.unwrap().data.unwrap();
    assert_eq!((q["x"].as_str(), q["y"].as_str()), ("1", "2"));
    let applies = server.applies();
    assert_eq!(applies.len(), 2);
    assert!(applies[0].created && !applies[1].created);
    assert!(
        applies
            .iter()
            .all(|a| a.field_manager == "ksail" && a.force)
    );
    let log = server.requests();
    let apply = log
        .iter()
        .find(|r| r.method == "PATCH" && r.path.ends_with("/q"))
        .unwrap();
    assert_eq!(
        apply.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert_eq!(apply.query_param("fieldManager").as_deref(), Some("ksail"));

    // A resourceVersion in a merge patch is a precondition.
    let err = api
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}})),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 409),
        "{err:?}"
    );
    // Patching something missing is NotFound.
    let err = api
        .patch("missing", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err:?}"
    );
}

/// `Patch::Json` takes a json-patch operation list; build it from JSON.
mod json_patch_ops {
    pub type Ops = json_patch::Patch;
    pub fn ops(v: serde_json::Value) -> Ops {
        serde_json::from_value(v).unwrap()
    }
}

#[tokio::test]
async fn yaml_apply_body_is_accepted() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  k: v\n";
    let req = http::Request::patch(
        "/api/v1/namespaces/default/configmaps/y?fieldManager=ksail&force=true",
    )
    .header("content-type", "application/apply-patch+yaml")
    .body(body.as_bytes().to_vec())
    .unwrap();
    let created: ConfigMap = client.request(req).await.unwrap();
    assert_eq!(created.data.unwrap()["k"], "v");
}

#[tokio::test]
async fn watcher_sees_added_and_modified() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "before", json!({})).await;
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen_init = Vec::new();
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            watcher::Event::InitApply(o) => seen_init.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen_init, ["before"]);
    create_cm(&api, "w", json!({"a": "1"})).await;
    merge_data(&api, "w", json!({"data": {"a": "2"}})).await;
    let mut values = Vec::new();
    while values.len() < 2 {
        if let watcher::Event::Apply(o) =
            tokio::time::timeout(Duration::from_secs(5), stream.try_next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
        {
            values.push(o.data.unwrap()["a"].clone());
        }
    }
    assert_eq!(values, ["1", "2"]);
    // Exactly one LIST started the watch; no polling.
    let lists = server.requests().iter().filter(|r| r.is_list()).count();
    assert_eq!(lists, 1);
    assert!(server.requests().iter().any(|r| r.is_watch()));
}

#[tokio::test]
async fn raw_watch_events_bookmarks_timeout_and_410() {
    let server = FakeApiServer::start(ServerOptions {
        bookmark_interval_ms: 100,
        ..ServerOptions::default()
    });
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    create_cm(&api, "x", json!({})).await;
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut events = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    merge_data(&api, "x", json!({"data": {"a": "1"}})).await;
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let started = std::time::Instant::now();
    let mut kinds = Vec::new();
    while let Some(ev) = events.try_next().await.unwrap() {
        kinds.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        });
    }
    // timeoutSeconds=1 ended the stream.
    assert!(started.elapsed() < Duration::from_secs(3));
    let non_bookmark: Vec<_> = kinds.iter().filter(|k| **k != "BOOKMARK").collect();
    assert_eq!(non_bookmark, [&"MODIFIED", &"DELETED"]);
    assert!(kinds.contains(&"BOOKMARK"));

    // A resourceVersion older than the retained history: ERROR 410 Expired.
    server.set_history_window(0);
    let mut events = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_relists_after_410() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    server.expire_next_watches(Route::resource("configmaps"), 1);
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut errors = 0;
    let mut init_done = 0;
    while init_done < 2 {
        match stream.next().await.unwrap() {
            Ok(watcher::Event::InitDone) => init_done += 1,
            Err(_) => errors += 1,
            _ => {}
        }
    }
    assert_eq!(errors, 1);
    let lists = server.requests().iter().filter(|r| r.is_list()).count();
    assert_eq!(lists, 2, "the 410 made the watcher list again");
    create_cm(&api, "after", json!({})).await;
    loop {
        if let Ok(watcher::Event::Apply(o)) =
            tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap()
        {
            assert_eq!(o.metadata.name.as_deref(), Some("after"));
            break;
        }
    }
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let (client, _dir) = client_for(&server, None).await;
    let api = kustomization_api(&client, "apps");
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "k"},
        "spec": {"path": "./a", "sourceRef": {"kind": "OCIRepository", "name": "s"}},
        "status": {"observedGeneration": 99}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status ignored on create"
    );

    // Metadata-only change: generation stays.
    let p = api
        .patch(
            "k",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(1));
    // Status through the main resource is ignored.
    let p = api
        .patch(
            "k",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert!(p.data.get("status").is_none());
    assert_eq!(p.metadata.generation, Some(1));
    // Status through /status: written, spec untouched, generation unchanged.
    let p = api
        .patch_status(
            "k",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"observedGeneration": 1}, "spec": {"path": "./ignored"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(p.data["status"]["observedGeneration"], 1);
    assert_eq!(p.data["spec"]["path"], "./a");
    assert_eq!(p.metadata.generation, Some(1));
    // Spec change: generation + 1, status kept.
    let p = api
        .patch(
            "k",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"path": "./b"}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(2));
    assert_eq!(p.data["status"]["observedGeneration"], 1);
    let log = server.requests();
    assert!(log.iter().any(|r| r.path
        == "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/apps/kustomizations/k/status"));
}

#[tokio::test]
async fn bearer_token_is_checked_and_faults_apply() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (good, _d1) = client_for(&server, Some("s3cret")).await;
    let api: Api<ConfigMap> = Api::namespaced(good.clone(), "default");
    api.list(&ListParams::default()).await.unwrap();
    // A client without the token: 401.
    let cfg = Config::new(server.url().parse().unwrap());
    let anon: Api<ConfigMap> = Api::namespaced(Client::try_from(cfg).unwrap(), "default");
    let err = anon.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );

    server.fail_next(Route::resource("ConfigMap"), Verb::List, 500, 1);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 500 && s.reason == "InternalError"),
        "{err:?}"
    );
    api.list(&ListParams::default()).await.unwrap();
    // kube's default client retries 429/503/504 by itself (Config::default_retry).
    server.clear_requests();
    server.fail_next(Route::resource("configmaps"), Verb::List, 503, 2);
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(server.requests().iter().filter(|r| r.is_list()).count(), 3);

    server.drop_connection(Route::Any, Verb::Get, 1);
    assert!(api.get("nope").await.is_err());

    server.refuse_watches_405("configmaps");
    let err = api
        .watch(&WatchParams::default(), "0")
        .await
        .err()
        .expect("watch refused");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 405),
        "{err:?}"
    );
    api.list(&ListParams::default()).await.unwrap();

    server.clear_faults();
    server.delay(Route::Any, Verb::List, 150);
    let t = std::time::Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));

    server.clear_faults();
    server.unauthorized_all();
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );
}

#[tokio::test]
async fn hold_watches_sends_nothing() {
    let server = FakeApiServer::start(ServerOptions::default());
    let (client, _dir) = client_for(&server, None).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    server.hold_watches();
    let mut events = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    create_cm(&api, "x", json!({})).await;
    assert!(
        events.try_next().await.unwrap().is_none(),
        "held watch ends at its timeout with no events"
    );
}

#[tokio::test]
async fn flux_source_and_kustomization_reach_ready() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let source = FluxSource::new(20, DIGEST);
    let kustomizations = FluxKustomization::new(10);
    server.add_simulator(source.clone());
    server.add_simulator(kustomizations.clone());
    // Seeded state: everything ready at an older revision.
    let old = "dev@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    server.put_object(fixtures::with_ready_status(
        fixtures::oci_repository(
            "flux-system",
            "flux-system",
            "oci://registry:5000/k8s",
            "dev",
        ),
        old,
    ));
    server.put_object(fixtures::with_ready_status(
        fixtures::kustomization("flux-system", "flux-system", "flux-system", &[]),
        old,
    ));
    server.put_object(fixtures::with_ready_status(
        fixtures::kustomization(
            "apps",
            "podinfo",
            "flux-system/flux-system",
            &["flux-system/flux-system"],
        ),
        old,
    ));
    let (client, _dir) = client_for(&server, None).await;
    let token = "2026-05-01T10:00:00.123456789Z";
    let patch = Patch::Merge(
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
    );
    ocirepository_api(&client, "flux-system")
        .patch("flux-system", &PatchParams::default(), &patch)
        .await
        .unwrap();
    kustomization_api(&client, "flux-system")
        .patch("flux-system", &PatchParams::default(), &patch)
        .await
        .unwrap();
    kustomization_api(&client, "apps")
        .patch("podinfo", &PatchParams::default(), &patch)
        .await
        .unwrap();

    let want = format!("dev@{DIGEST}");
    eventually("source ready at the new revision", || {
        server
            .get_object(
                "source.toolkit.fluxcd.io",
                "ocirepositories",
                "flux-system",
                "flux-system",
            )
            .is_some_and(|o| {
                o["status"]["artifact"]["revision"] == want.as_str()
                    && o["status"]["lastHandledReconcileAt"] == token
            })
    })
    .await;
    for (ns, name) in [("flux-system", "flux-system"), ("apps", "podinfo")] {
        eventually("kustomization applied", || {
            server
                .get_object("kustomize.toolkit.fluxcd.io", "kustomizations", ns, name)
                .is_some_and(|o| {
                    o["status"]["lastAppliedRevision"] == want.as_str()
                        && o["status"]["lastHandledReconcileAt"] == token
                        && o["status"]["conditions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .await;
    }
    let src = server
        .get_object(
            "source.toolkit.fluxcd.io",
            "ocirepositories",
            "flux-system",
            "flux-system",
        )
        .unwrap();
    assert_eq!(src["status"]["observedGeneration"], 1);
    assert_eq!(ready_condition(&src).unwrap()["reason"], "Succeeded");
}

#[tokio::test]
async fn kustomization_dependencies_and_scripted_failures() {
    let server = FakeApiServer::start(ServerOptions::flux());
    let source = FluxSource::new(0, DIGEST);
    let ks = FluxKustomization::new(0);
    ks.set_requeue_dependency_ms(2_000);
    ks.set_outcome("infra/cert-manager", KsOutcome::Slow(300));
    ks.set_outcome(
        "apps/broken",
        KsOutcome::Failed {
            reason: "HealthCheckFailed".into(),
            message: "timeout".into(),
        },
    );
    source.set_outcome(
        "other/src",
        SourceOutcome::Stalled {
            reason: "URLInvalid".into(),
            message: "bad".into(),
        },
    );
    server.add_simulator(source.clone());
    server.add_simulator(ks.clone());
    // The source, three Kustomizations that follow it (podinfo after cert-manager), and a
    // source of its own for the Stalled outcome.
    let source_ref = "flux-system/flux-system";
    let objects = [
        fixtures::oci_repository("flux-system", "flux-system", "oci://r/k8s", "dev"),
        fixtures::kustomization("apps", "podinfo", source_ref, &["infra/cert-manager"]),
        fixtures::kustomization("infra", "cert-manager", source_ref, &[]),
        fixtures::kustomization("apps", "broken", source_ref, &[]),
        fixtures::oci_repository("other", "src", "oci://r/x", "dev"),
    ];
    for object in objects {
        server.apply_object(object).unwrap();
    }

    let ready_reason = |ns: &str, name: &str| {
        server
            .get_object("kustomize.toolkit.fluxcd.io", "kustomizations", ns, name)
            .and_then(|o| ready_condition(&o).cloned())
            .map(|c| c["reason"].as_str().unwrap_or("").to_string())
    };
    // In this order: each step waits for the one before.
    for (what, ns, name, reason) in [
        (
            "podinfo waits for its dependency",
            "apps",
            "podinfo",
            "DependencyNotReady",
        ),
        ("broken fails", "apps", "broken", "HealthCheckFailed"),
        (
            "cert-manager becomes ready",
            "infra",
            "cert-manager",
            "ReconciliationSucceeded",
        ),
    ] {
        eventually(what, || ready_reason(ns, name).as_deref() == Some(reason)).await;
    }
    // Like kustomize-controller, which has no watch on dependencies: the dependent looks again
    // only when its requeue interval has passed.
    assert_eq!(
        ready_reason("apps", "podinfo").as_deref(),
        Some("DependencyNotReady")
    );
    eventually("podinfo follows after its requeue", || {
        ready_reason("apps", "podinfo").as_deref() == Some("ReconciliationSucceeded")
    })
    .await;
    eventually("stalled source", || {
        server
            .get_object(
                "source.toolkit.fluxcd.io",
                "ocirepositories",
                "other",
                "src",
            )
            .is_some_and(|o| {
                o["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Stalled" && c["status"] == "True")
                })
            })
    })
    .await;
}
