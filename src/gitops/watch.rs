//! One list-then-watch per kind across all namespaces (reconcile.md#watching).
//!
//! Every event is forwarded at once, so completion is seen when it happens. A watch that ends or
//! expires (`410 Gone`) restarts with a fresh list; after an error the restart waits 1 s. A server
//! that refuses watches for a kind (403, 404 or 405 on `watch=true`) gets a list every 2 s
//! instead. So, while watches work, the only repeated LIST requests for a kind are the ones that
//! (re)start its watch.
//!
//! This is a small loop over `Api::list` and `Api::watch` rather than `kube_runtime::watcher`,
//! because the spec pins behaviour the runtime watcher does not have: a fresh list after a watch
//! ends (the runtime re-watches from the last version), and the polling fallback.

use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, WatchEvent, WatchParams};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::k8s::K8sError;

/// Bound on each LIST request (reconcile.md#kubernetes-connection).
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause before restarting after an error.
const ERROR_PAUSE: Duration = Duration::from_secs(1);
/// Interval of the polling fallback.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Server-side bound of one watch request; the loop restarts it with a fresh list.
const WATCH_TIMEOUT_SECONDS: u32 = 290;

/// What a watch reports, tagged with the watched kind's name.
#[derive(Debug)]
pub enum Update {
    /// The complete current set (after a list): objects missing from it were deleted.
    Snapshot(Vec<Value>),
    Upsert(Value),
    Deleted(Value),
    /// A LIST failed or got no answer within its bound; the watch retries by itself after a
    /// pause. The receiver decides whether this fails the attempt (for example when the API
    /// server stays unreachable).
    ListFailed(K8sError),
}

/// Start a list-then-watch of `resource` in all namespaces. Updates arrive as `(kind, update)`
/// until the receiver is dropped.
pub fn spawn(
    client: kube::Client,
    resource: ApiResource,
    tx: mpsc::UnboundedSender<(String, Update)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::all_with(client, &resource);
        run(api, resource.kind.clone(), tx).await;
    })
}

/// Like [`spawn`], but only in `namespace` (Argo CD considers Applications in `argocd` only, so
/// the others are never listed or watched).
pub fn spawn_namespaced(
    client: kube::Client,
    resource: ApiResource,
    namespace: &str,
    tx: mpsc::UnboundedSender<(String, Update)>,
) -> tokio::task::JoinHandle<()> {
    let namespace = namespace.to_string();
    tokio::spawn(async move {
        let api: Api<DynamicObject> = Api::namespaced_with(client, &namespace, &resource);
        run(api, resource.kind.clone(), tx).await;
    })
}

async fn run(api: Api<DynamicObject>, kind: String, tx: mpsc::UnboundedSender<(String, Update)>) {
    let send = |update: Update| tx.send((kind.clone(), update)).is_ok();
    let mut polling = false;
    loop {
        let list = match tokio::time::timeout(LIST_TIMEOUT, api.list(&ListParams::default())).await
        {
            Ok(Ok(list)) => list,
            Ok(Err(error)) => {
                tracing::debug!("list {kind}: {error}");
                // A 404 means the server does not serve this resource at all: stop watching it.
                let not_served = matches!(&error, kube::Error::Api(status) if status.code == 404);
                if !send(Update::ListFailed(K8sError::from(error))) || not_served {
                    return;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
            Err(_) => {
                tracing::debug!("list {kind}: timed out after {LIST_TIMEOUT:?}");
                if !send(Update::ListFailed(K8sError::Timeout(LIST_TIMEOUT))) {
                    return;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let version = list.metadata.resource_version.clone().unwrap_or_default();
        let objects = list.items.iter().filter_map(to_value).collect();
        if !send(Update::Snapshot(objects)) {
            return;
        }
        if polling {
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        let params = WatchParams {
            bookmarks: true,
            ..WatchParams::default()
        }
        .timeout(WATCH_TIMEOUT_SECONDS);
        let stream = match api.watch(&params, &version).await {
            Ok(stream) => stream,
            Err(kube::Error::Api(status)) if (403..=405).contains(&status.code) => {
                tracing::debug!(
                    "watch {kind}: refused ({} {}); listing every {}s instead",
                    status.code,
                    status.reason,
                    POLL_INTERVAL.as_secs()
                );
                polling = true;
                tokio::time::sleep(POLL_INTERVAL).await;
                continue;
            }
            Err(error) => {
                tracing::debug!("watch {kind}: {error}; restarting");
                tokio::time::sleep(ERROR_PAUSE).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let delivered = match event {
                Ok(WatchEvent::Added(object)) | Ok(WatchEvent::Modified(object)) => {
                    to_value(&object).is_none_or(|value| send(Update::Upsert(value)))
                }
                Ok(WatchEvent::Deleted(object)) => {
                    to_value(&object).is_none_or(|value| send(Update::Deleted(value)))
                }
                Ok(WatchEvent::Bookmark(_)) => true,
                Ok(WatchEvent::Error(status)) => {
                    tracing::debug!("watch {kind}: {} {}; relisting", status.code, status.reason);
                    if status.code != 410 {
                        tokio::time::sleep(ERROR_PAUSE).await;
                    }
                    break;
                }
                Err(error) => {
                    tracing::debug!("watch {kind}: {error}; relisting");
                    tokio::time::sleep(ERROR_PAUSE).await;
                    break;
                }
            };
            if !delivered {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn to_value(object: &DynamicObject) -> Option<Value> {
    serde_json::to_value(object).ok()
}

/// `namespace/name` of an object's JSON.
#[cfg(test)]
fn namespaced_name(object: &Value) -> (String, String) {
    let metadata = &object["metadata"];
    (
        metadata["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        metadata["name"].as_str().unwrap_or_default().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_apiserver::{FakeApiServer, ServerOptions};

    async fn client_for(server: &FakeApiServer) -> kube::Client {
        crate::k8s::test_client(&server.url())
    }

    fn config_map(name: &str, value: &str) -> Value {
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"},
            "data": {"k": value}
        })
    }

    #[tokio::test]
    async fn snapshot_then_events_with_a_single_list() {
        let server = FakeApiServer::start(ServerOptions::default());
        server.put_object(config_map("a", "1"));
        let client = client_for(&server).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let resource = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        let handle = spawn(client, resource, tx);

        let (_, first) = rx.recv().await.unwrap();
        assert!(matches!(first, Update::Snapshot(ref objects) if objects.len() == 1));
        server.put_object(config_map("b", "2"));
        let (_, second) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        match second {
            Update::Upsert(object) => assert_eq!(namespaced_name(&object).1, "b"),
            other => panic!("expected an upsert, got {other:?}"),
        }
        handle.abort();
        let lists = server
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/configmaps") && !r.is_watch())
            .count();
        assert_eq!(lists, 1, "no polling while the watch works");
    }
}
