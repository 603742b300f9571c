//! The client against the fake API server: it connects, kube's retry is off, and transport
//! failures are classified from real errors.

use std::path::PathBuf;
use std::time::Duration;

use fake_apiserver::{FakeApiServer, Route, ServerOptions, Verb};

use super::*;
use crate::error::FailureClass;

fn target(kubeconfig: PathBuf, context: Option<&str>) -> KubeTarget {
    KubeTarget {
        kubeconfig: vec![kubeconfig],
        kubeconfig_source: "--kubeconfig".to_string(),
        context: context.map(str::to_string),
        derived_context: None,
    }
}

/// A kubeconfig with one context `ctx` pointing at `server`.
fn kubeconfig_for(dir: &std::path::Path, server: &str) -> PathBuf {
    let path = dir.join("config");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\nusers:\n- name: u\n  user: {{}}\ncontexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\ncurrent-context: ctx\n"
    );
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

/// A fake API server, the directory of its kubeconfig (with `contexts`), and the path of that
/// kubeconfig.
fn server_with_kubeconfig(contexts: &[&str]) -> (FakeApiServer, tempfile::TempDir, PathBuf) {
    let server = FakeApiServer::start(ServerOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config");
    server
        .write_kubeconfig(&path, contexts, None)
        .expect("kubeconfig");
    (server, dir, path)
}

/// A fake API server and a client connected to it through the context `kind-kind`.
async fn connected() -> (FakeApiServer, tempfile::TempDir, Cluster) {
    let (server, dir, path) = server_with_kubeconfig(&["kind-kind"]);
    let cluster = connect(&target(path, None)).await.expect("connect");
    (server, dir, cluster)
}

/// `GET /version` through `cluster`, which must fail (`expected` says why).
async fn version_error(cluster: &Cluster, expected: &str) -> K8sError {
    with_timeout(cluster.client.apiserver_version())
        .await
        .expect_err(expected)
}

#[tokio::test]
async fn a_client_built_from_the_kubeconfig_answers_version() {
    let (server, _dir, path) = server_with_kubeconfig(&["kind-kind", "other"]);

    let cluster = connect(&target(path, Some("other")))
        .await
        .expect("connect");
    let version = with_timeout(cluster.client.apiserver_version())
        .await
        .expect("version");

    assert_eq!(version.git_version, "v1.33.1");
    assert_eq!(cluster.context, "other");
    assert_eq!(cluster.server, server.url());
}

#[tokio::test]
async fn kube_does_not_retry_on_its_own() {
    let (server, _dir, cluster) = connected().await;
    server.clear_requests();
    server.fail_next(Route::Any, Verb::Discovery, 503, 1);

    let error = version_error(&cluster, "the 503 reaches the caller").await;

    assert_eq!(error.status_code(), Some(503));
    assert!(error.is_retryable());
    let requests: Vec<_> = server
        .requests()
        .into_iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert_eq!(requests, ["GET /version"]);
}

#[tokio::test]
async fn an_unknown_context_fails_before_any_request() {
    let (server, _dir, path) = server_with_kubeconfig(&["kind-kind"]);
    server.clear_requests();

    let failure = connect(&target(path, Some("nope")))
        .await
        .expect_err("unknown context");

    assert_eq!(failure.class, FailureClass::Usage);
    assert!(
        failure
            .message
            .starts_with("unknown kubeconfig context \"nope\""),
        "{}",
        failure.message
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_retryable_and_reads_as_unreachable() {
    // Bind and release a port so that nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("https://127.0.0.1:{port}/");
    let cluster = connect(&target(kubeconfig_for(dir.path(), &url), None))
        .await
        .expect("connect sends nothing");

    let error = version_error(&cluster, "nothing listens").await;

    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);
    assert!(error.is_retryable());
    assert!(error.is_unreachable());
    assert_eq!(
        unreachable_message(&cluster.server, &cluster.context, &error.reason()),
        format!(
            "cannot reach the Kubernetes API server at https://127.0.0.1:{port} (context ctx): connection refused"
        )
    );
}

#[tokio::test]
async fn a_dropped_connection_is_retryable() {
    let (server, _dir, cluster) = connected().await;
    server.drop_connection(Route::Any, Verb::Discovery, 1);

    let error = version_error(&cluster, "dropped").await;

    assert!(error.is_retryable(), "{:?}", error.kind());
    assert!(error.is_unreachable());
}

#[tokio::test]
async fn an_unresolvable_host_is_a_retryable_connect_failure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = kubeconfig_for(dir.path(), "http://ksail-test.invalid:6443");
    let cluster = connect(&target(path, None)).await.expect("connect");

    let error = version_error(&cluster, "cannot resolve").await;

    assert!(
        matches!(error.kind(), ErrorKind::Connect { .. }),
        "{:?}",
        error.kind()
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn a_slow_answer_hits_the_request_bound() {
    let (server, _dir, cluster) = connected().await;
    server.delay(Route::Any, Verb::Discovery, 2_000);

    let error = with_timeout_of(
        Duration::from_millis(100),
        cluster.client.apiserver_version(),
    )
    .await
    .expect_err("too slow");

    assert!(matches!(error, K8sError::Timeout(_)));
    assert!(error.is_retryable());
    assert_eq!(error.reason(), "no answer within 100ms");
}

#[tokio::test]
async fn a_401_is_not_retryable() {
    let (server, _dir, cluster) = connected().await;
    server.unauthorized_all();

    let error = version_error(&cluster, "401").await;

    assert_eq!(error.status_code(), Some(401));
    assert!(!error.is_retryable());
    assert!(!error.is_unreachable());
}

#[tokio::test]
async fn a_retry_after_header_reaches_the_error() {
    let (server, _dir, cluster) = connected().await;
    server.fail_next_retry_after(Route::Any, Verb::Discovery, 429, 1, 4);

    let error = version_error(&cluster, "429").await;

    assert_eq!(error.status_code(), Some(429));
    assert!(error.is_retryable());
    assert_eq!(
        crate::retry::Retryable::retry_after(&error),
        Some(Duration::from_secs(4))
    );
    // Responses without the header are left alone.
    server.fail_next(Route::Any, Verb::Discovery, 503, 1);
    let error = version_error(&cluster, "503").await;
    assert_eq!(crate::retry::Retryable::retry_after(&error), None);
    assert_eq!(error.reason(), "503 Service Unavailable: injected fault");
}
