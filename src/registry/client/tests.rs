//! Client tests against a small raw HTTP/1.1 server: one request per connection, scripted
//! replies, every request recorded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::registry::error::MAX_REDIRECTS;
use crate::registry::http::{LOOPBACK_NO_PROXY, USER_AGENT, no_proxy_list, proxies_from_env};
use crate::registry::protocol::{
    ArtifactUpload, ConfigBlob, LayerBlob, PushError, PushEvent, TagGuard, check_unchanged,
    upload_blobs, write_manifest,
};

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

enum Reply {
    Raw(Vec<u8>),
    /// Keep the connection open and never answer.
    Hang,
    /// Close with a TCP reset.
    Reset,
    /// Close without answering.
    Close,
}

fn reply(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    Reply::Raw(bytes)
}

type Handler = Arc<dyn Fn(&Recorded, u16) -> Reply + Send + Sync>;

struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn serve(handler: impl Fn(&Recorded, u16) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let handler: Handler = Arc::new(handler);
    let recorded = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let recorded = recorded.clone();
            tokio::spawn(async move {
                handle(stream, port, handler, recorded).await;
            });
        }
    });
    Server { port, requests }
}

async fn handle(
    mut stream: TcpStream,
    port: u16,
    handler: Handler,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut buffer = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let Ok(read) = stream.read(&mut chunk).await else {
            return;
        };
        if read == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; 64 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(read) => body.extend_from_slice(&chunk[..read]),
        }
    }
    let request = Recorded {
        method,
        target,
        headers,
        body,
    };
    let answer = handler(&request, port);
    recorded.lock().unwrap().push(request);
    match answer {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Reset => {
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Reply::Close => drop(stream),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(stream);
        }
    }
}

fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn client(server: &Server, credentials: Credentials) -> RegistryClient {
    init_tls();
    let source = match &credentials {
        Credentials::Anonymous => CredentialSource::Anonymous,
        _ => CredentialSource::DockerConfig,
    };
    RegistryClient::with_env(&server.host_port(), true, credentials, source, &|_| None).unwrap()
}

fn basic(user: &str, password: &str) -> Credentials {
    Credentials::Basic {
        user: user.into(),
        password: password.into(),
    }
}

fn basic_value(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

const MANIFEST: &[u8] = br#"{"schemaVersion":2}"#;

/// An anonymous client for `host_port`, with `env` as its environment.
fn anonymous_client(
    host_port: &str,
    insecure: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> RegistryClient {
    init_tls();
    RegistryClient::with_env(
        host_port,
        insecure,
        Credentials::Anonymous,
        CredentialSource::Anonymous,
        env,
    )
    .unwrap()
}

/// `GET` of the manifest `acme/app:dev` finds one.
async fn assert_manifest_found(client: &RegistryClient) {
    let manifest = client.get_manifest("acme/app", "dev").await.unwrap();
    assert!(manifest.is_some(), "no manifest acme/app:dev");
}

#[tokio::test]
async fn basic_challenge_is_retried_once_with_credentials_then_sent_up_front() {
    let expected = basic_value("ci", "pw");
    let server = serve(move |request, _| {
        if request.header("authorization") == Some(expected.as_str()) {
            reply(
                "200 OK",
                &[("Docker-Content-Digest", "sha256:abc")],
                MANIFEST,
            )
        } else {
            reply(
                "401 Unauthorized",
                &[("WWW-Authenticate", r#"Basic realm="registry""#)],
                b"",
            )
        }
    })
    .await;
    let client = client(&server, basic("ci", "pw"));
    let manifest = client
        .get_manifest("acme/app", "dev")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(manifest.bytes.as_ref(), MANIFEST);
    assert_eq!(manifest.digest_header.as_deref(), Some("sha256:abc"));
    assert!(client.blob_exists("acme/app", "sha256:x").await.unwrap());

    let requests = server.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert_eq!(requests[0].header("authorization"), None, "anonymous first");
    assert!(requests[1].header("authorization").is_some());
    assert!(
        requests[2].header("authorization").is_some(),
        "basic remembered"
    );
    assert_eq!(requests[0].header("accept"), Some(MANIFEST_ACCEPT));
    assert_eq!(requests[0].header("user-agent"), Some(USER_AGENT));
}

#[tokio::test]
async fn wrong_basic_credentials_give_a_non_retryable_401_naming_the_source() {
    let server = serve(|_, _| {
        reply(
            "401 Unauthorized",
            &[("WWW-Authenticate", r#"Basic realm="registry""#)],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password hunter2"}]}"#,
        )
    })
    .await;
    let client = client(&server, basic("ci", "hunter2"));
    let error = client.get_manifest("acme/app", "dev").await.unwrap_err();
    assert!(matches!(
        error.kind(),
        RegistryErrorKind::Status { code: 401, .. }
    ));
    assert!(!error.is_retryable());
    assert_eq!(error.reason(), "401 unauthorized");
    assert_eq!(
        error.credential_source().cloned(),
        Some(CredentialSource::DockerConfig)
    );
    let RegistryErrorKind::Status { message, .. } = error.kind() else {
        panic!("{error:?}");
    };
    assert_eq!(message.as_deref(), Some("bad password <redacted>"));
    assert!(!error.to_string().contains("hunter2"));
    assert_eq!(server.requests().len(), 2, "retried exactly once");
}

/// A registry that wants `Bearer <token>` and a token endpoint on the same server.
fn bearer_registry(token: &'static str) -> impl Fn(&Recorded, u16) -> Reply + Send + Sync {
    move |request, port| {
        if request.target.starts_with("/token") {
            let body = format!(r#"{{"token":"{token}","expires_in":300}}"#);
            return reply(
                "200 OK",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            );
        }
        if request.header("authorization") == Some(format!("Bearer {token}").as_str()) {
            return reply(
                "200 OK",
                &[("Docker-Content-Digest", "sha256:abc")],
                MANIFEST,
            );
        }
        let challenge = format!(
            r#"Bearer realm="http://127.0.0.1:{port}/token",service="test-registry",scope="repository:acme/app:pull""#
        );
        reply(
            "401 Unauthorized",
            &[("WWW-Authenticate", challenge.as_str())],
            b"",
        )
    }
}

#[tokio::test]
async fn bearer_token_is_fetched_with_basic_credentials_and_cached_per_scope() {
    let server = serve(bearer_registry("tok-1")).await;
    let client = client(&server, basic("ci", "pw"));
    assert_manifest_found(&client).await;
    assert_manifest_found(&client).await;

    let requests = server.requests();
    let targets: Vec<_> = requests.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(requests.len(), 4, "{targets:?}");
    let token_request = &requests[1];
    assert_eq!(
        token_request.target,
        "/token?service=test-registry&scope=repository%3Aacme%2Fapp%3Apull"
    );
    assert_eq!(
        token_request.header("authorization"),
        Some(basic_value("ci", "pw").as_str())
    );
    assert_eq!(requests[2].header("authorization"), Some("Bearer tok-1"));
    assert_eq!(
        requests[3].header("authorization"),
        Some("Bearer tok-1"),
        "cached"
    );
}

#[tokio::test]
async fn anonymous_bearer_token_request_sends_no_credentials() {
    let server = serve(bearer_registry("anon")).await;
    let client = client(&server, Credentials::Anonymous);
    assert_manifest_found(&client).await;
    let requests = server.requests();
    assert_eq!(requests[1].header("authorization"), None);
}

#[tokio::test]
async fn identity_token_uses_the_refresh_token_grant() {
    let server = serve(bearer_registry("tok-2")).await;
    let client = client(&server, Credentials::IdentityToken("refresh-me".into()));
    assert_manifest_found(&client).await;
    let token_request = &server.requests()[1];
    assert_eq!(token_request.method, "POST");
    let body = String::from_utf8(token_request.body.clone()).unwrap();
    assert!(body.contains("grant_type=refresh_token"), "{body}");
    assert!(body.contains("refresh_token=refresh-me"), "{body}");
    assert!(body.contains("service=test-registry"), "{body}");
}

#[tokio::test]
async fn registry_token_is_sent_as_the_bearer_token() {
    let server = serve(bearer_registry("regtok")).await;
    let client = client(&server, Credentials::RegistryToken("regtok".into()));
    assert_manifest_found(&client).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "no token endpoint call");
    assert_eq!(requests[1].header("authorization"), Some("Bearer regtok"));
}

/// A server that opens every upload session (`POST`) at `location` and answers anything else
/// with `then()`.
async fn upload_server(location: &'static str, then: fn() -> Reply) -> Server {
    serve(move |request, _| match request.method.as_str() {
        "POST" => reply("202 Accepted", &[("Location", location)], b""),
        _ => then(),
    })
    .await
}

#[tokio::test]
async fn upload_follows_a_relative_location_with_a_query_and_streams_the_file() {
    let server = upload_server("/v2/acme/app/blobs/uploads/u1?_state=abc", || {
        reply("201 Created", &[], b"")
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer.tar.gz");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let digest = sha256_digest(&content);

    let client = client(&server, Credentials::Anonymous);
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = reported.clone();
    let progress = move |sent: u64| sink.lock().unwrap().push(sent);
    let body = BlobBody::File {
        path,
        size: content.len() as u64,
    };
    client
        .upload_blob("acme/app", &digest, body, Some(&progress))
        .await
        .unwrap();

    let requests = server.requests();
    assert_eq!(requests[0].method, "POST");
    assert_eq!(requests[0].target, "/v2/acme/app/blobs/uploads/");
    assert_eq!(requests[1].method, "PUT");
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(
        requests[1].target,
        format!("/v2/acme/app/blobs/uploads/u1?_state=abc&digest=sha256%3A{hex}")
    );
    assert_eq!(requests[1].header("content-length"), Some("300000"));
    assert_eq!(requests[1].body, content);
    assert_eq!(reported.lock().unwrap().last(), Some(&300_000));
}

#[tokio::test]
async fn more_than_ten_redirects_is_the_retryable_redirect_limit() {
    let server =
        serve(|request, _| reply("302 Found", &[("Location", request.target.as_str())], b"")).await;
    let client = client(&server, Credentials::Anonymous);
    let error = client.get_manifest("acme/app", "dev").await.unwrap_err();
    assert_eq!(*error.kind(), RegistryErrorKind::RedirectLimit, "{error:?}");
    assert!(error.is_retryable());
    assert_eq!(server.requests().len(), 1 + MAX_REDIRECTS);
}

#[tokio::test]
async fn ten_redirects_are_followed() {
    let server = serve(|request, _| {
        let hops: usize = request
            .target
            .split("hop=")
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if hops == MAX_REDIRECTS {
            return reply("200 OK", &[], MANIFEST);
        }
        let next = format!("/v2/acme/app/manifests/dev?hop={}", hops + 1);
        reply(
            "307 Temporary Redirect",
            &[("Location", next.as_str())],
            b"",
        )
    })
    .await;
    let client = client(&server, Credentials::Anonymous);
    assert_manifest_found(&client).await;
}

#[tokio::test]
async fn authorization_is_not_forwarded_to_another_host() {
    let other = serve(|_, _| reply("200 OK", &[], MANIFEST)).await;
    let other_port = other.port;
    let expected = basic_value("ci", "pw");
    let server = serve(move |request, _| {
        if request.header("authorization") == Some(expected.as_str()) {
            let location = format!("http://localhost:{other_port}/v2/acme/app/manifests/dev");
            reply(
                "307 Temporary Redirect",
                &[("Location", location.as_str())],
                b"",
            )
        } else {
            reply(
                "401 Unauthorized",
                &[("WWW-Authenticate", "Basic realm=r")],
                b"",
            )
        }
    })
    .await;
    let client = client(&server, basic("ci", "pw"));
    assert_manifest_found(&client).await;
    let forwarded = other.requests();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].header("authorization"), None);
    assert_eq!(forwarded[0].header("accept"), Some(MANIFEST_ACCEPT));
}

/// A server whose every answer is broken the same way, and how the client classifies it.
struct BrokenAnswer {
    name: &'static str,
    answer: fn(&Recorded, u16) -> Reply,
    /// `GET` of the manifest, or `HEAD` of a blob.
    manifest: bool,
    kind: RegistryErrorKind,
}

#[tokio::test]
async fn broken_answers_are_classified_and_retryable() {
    let cases = [
        BrokenAnswer {
            name: "a truncated body",
            answer: |_, _| {
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"schema".to_vec())
            },
            manifest: true,
            kind: RegistryErrorKind::UnexpectedEof,
        },
        BrokenAnswer {
            name: "a connection closed without a response",
            answer: |_, _| Reply::Close,
            manifest: false,
            kind: RegistryErrorKind::UnexpectedEof,
        },
        BrokenAnswer {
            name: "a reset connection",
            answer: |_, _| Reply::Reset,
            manifest: false,
            kind: RegistryErrorKind::ConnectionReset,
        },
    ];
    for case in cases {
        let server = serve(case.answer).await;
        let client = client(&server, Credentials::Anonymous);
        let error = if case.manifest {
            client.get_manifest("acme/app", "dev").await.map(|_| ())
        } else {
            client.blob_exists("acme/app", "sha256:x").await.map(|_| ())
        }
        .unwrap_err();
        assert_eq!(*error.kind(), case.kind, "{}: {error:?}", case.name);
        assert!(error.is_retryable(), "{}", case.name);
    }
}

#[tokio::test]
async fn refused_connection_is_classified_as_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = anonymous_client(&format!("127.0.0.1:{port}"), true, &|_| None);
    let error = client.head_manifest("acme/app", "dev").await.unwrap_err();
    assert_eq!(
        *error.kind(),
        RegistryErrorKind::ConnectionRefused,
        "{error:?}"
    );
    assert_eq!(error.reason(), "connection refused");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unresolvable_host_is_a_dns_error() {
    let client = anonymous_client("ksail-test.invalid:5000", true, &|_| None);
    let error = client
        .blob_exists("acme/app", "sha256:x")
        .await
        .unwrap_err();
    assert_eq!(
        *error.kind(),
        RegistryErrorKind::Dns {
            host: "ksail-test.invalid".into()
        },
        "{error:?}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unavailable_registry_is_retryable_with_retry_after() {
    let server = serve(|_, _| reply("503 Service Unavailable", &[("Retry-After", "3")], b"")).await;
    let client = client(&server, Credentials::Anonymous);
    let error = client
        .blob_exists("acme/app", "sha256:x")
        .await
        .unwrap_err();
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(error.reason(), "503 Service Unavailable");
    assert_eq!(error.request(), "HEAD /v2/acme/app/blobs/sha256:x");
}

#[tokio::test]
async fn head_manifest_without_digest_header_hashes_the_manifest() {
    let server = serve(|_, _| reply("200 OK", &[], MANIFEST)).await;
    let client = client(&server, Credentials::Anonymous);
    let digest = client.head_manifest("acme/app", "dev").await.unwrap();
    assert_eq!(digest, Some(sha256_digest(MANIFEST)));
    let methods: Vec<_> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["HEAD", "GET"]);
}

#[tokio::test]
async fn missing_manifest_is_none() {
    let server = serve(|_, _| {
        reply(
            "404 Not Found",
            &[],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
        )
    })
    .await;
    let client = client(&server, Credentials::Anonymous);
    assert_eq!(client.get_manifest("acme/app", "dev").await.unwrap(), None);
    assert_eq!(client.head_manifest("acme/app", "dev").await.unwrap(), None);
    assert!(!client.blob_exists("acme/app", "sha256:x").await.unwrap());
}

#[test]
fn loopback_is_always_excluded_from_proxying() {
    assert_eq!(no_proxy_list(None), LOOPBACK_NO_PROXY);
    assert_eq!(
        no_proxy_list(Some(" corp.example ")),
        format!("corp.example,{LOOPBACK_NO_PROXY}")
    );
    let env = |name: &str| (name == "HTTPS_PROXY").then(|| "http://proxy.example:3128".to_string());
    assert_eq!(proxies_from_env(&env).unwrap().len(), 1);
    let bad = |name: &str| (name == "HTTP_PROXY").then(|| "::not a url::".to_string());
    let error = proxies_from_env(&bad).unwrap_err();
    assert!(!error.contains("not a url"));
}

#[tokio::test]
async fn loopback_requests_bypass_a_configured_proxy() {
    init_tls();
    // A "proxy" that would answer 502 to anything sent through it.
    let proxy = serve(|_, _| reply("502 Bad Gateway", &[], b"")).await;
    let server = serve(|_, _| reply("200 OK", &[], b"")).await;
    let proxy_url = format!("http://{}", proxy.host_port());
    let env = move |name: &str| (name == "HTTP_PROXY").then(|| proxy_url.clone());
    let client = anonymous_client(&server.host_port(), true, &env);
    assert!(client.blob_exists("acme/app", "sha256:x").await.unwrap());
    assert!(proxy.requests().is_empty());
}

// --- the push protocol against a small in-memory registry -------------------------------------

#[derive(Default)]
struct FakeRegistry {
    blobs: HashMap<String, Vec<u8>>,
    manifests: HashMap<String, Vec<u8>>,
    uploads: usize,
    /// Answer manifest PUTs with this digest instead of the real one.
    lie_about_digest: bool,
}

fn fake_registry(
    state: Arc<Mutex<FakeRegistry>>,
) -> impl Fn(&Recorded, u16) -> Reply + Send + Sync {
    move |request, _| {
        let mut state = state.lock().unwrap();
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((request.target.as_str(), ""));
        let method = request.method.as_str();
        if let Some((_, tag)) = path.split_once("/manifests/") {
            return match method {
                "PUT" => {
                    let digest = if state.lie_about_digest {
                        "sha256:0000".to_string()
                    } else {
                        sha256_digest(&request.body)
                    };
                    state
                        .manifests
                        .insert(tag.to_string(), request.body.clone());
                    reply(
                        "201 Created",
                        &[("Docker-Content-Digest", digest.as_str())],
                        b"",
                    )
                }
                _ => match state.manifests.get(tag) {
                    Some(body) => {
                        let digest = sha256_digest(body);
                        let body = if method == "HEAD" {
                            Vec::new()
                        } else {
                            body.clone()
                        };
                        reply(
                            "200 OK",
                            &[("Docker-Content-Digest", digest.as_str())],
                            &body,
                        )
                    }
                    None => reply(
                        "404 Not Found",
                        &[],
                        br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
                    ),
                },
            };
        }
        if path.ends_with("/blobs/uploads/") && method == "POST" {
            state.uploads += 1;
            let location = format!("{path}{}?_state=s", state.uploads);
            return reply("202 Accepted", &[("Location", location.as_str())], b"");
        }
        if path.contains("/blobs/uploads/") && method == "PUT" {
            let digest = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("digest="))
                .unwrap_or_default()
                .replace("%3A", ":");
            if sha256_digest(&request.body) != digest {
                return reply(
                    "400 Bad Request",
                    &[],
                    br#"{"errors":[{"code":"DIGEST_INVALID"}]}"#,
                );
            }
            state.blobs.insert(digest, request.body.clone());
            return reply("201 Created", &[], b"");
        }
        if let Some((_, digest)) = path.split_once("/blobs/") {
            return if state.blobs.contains_key(digest) {
                reply("200 OK", &[], b"")
            } else {
                reply("404 Not Found", &[], b"")
            };
        }
        reply("400 Bad Request", &[], b"")
    }
}

fn artifact(dir: &std::path::Path, revision: &str) -> ArtifactUpload {
    let layer_bytes = b"pretend this is a tar.gz".to_vec();
    let path = dir.join("layer");
    std::fs::write(&path, &layer_bytes).unwrap();
    let config = b"{}".to_vec();
    let layer_digest = sha256_digest(&layer_bytes);
    let manifest = serde_json::json!({
        "annotations": {"org.opencontainers.image.revision": revision},
        "config": {"digest": sha256_digest(&config), "mediaType": "application/vnd.cncf.flux.config.v1+json", "size": 2},
        "layers": [{"digest": layer_digest, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": layer_bytes.len()}],
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "schemaVersion": 2
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    ArtifactUpload {
        config: ConfigBlob {
            digest: sha256_digest(&config),
            bytes: Bytes::from(config),
        },
        layer: LayerBlob {
            digest: layer_digest,
            size: layer_bytes.len() as u64,
            path,
        },
        manifest_digest: sha256_digest(&manifest_bytes),
        manifest_bytes: Bytes::from(manifest_bytes),
    }
}

/// One push attempt as `workload push` makes it: the unchanged check, then the upload guarded
/// by what the check read of the tag.
async fn push_artifact(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    artifact: &ArtifactUpload,
    events: &(dyn Fn(PushEvent) + Send + Sync),
) -> Result<crate::registry::protocol::PushOutcome, PushError> {
    let revision = crate::artifact::manifest::parse_manifest_summary(&artifact.manifest_bytes)
        .and_then(|summary| summary.revision)
        .unwrap_or_default();
    let read = check_unchanged(client, repo, tag, &artifact.layer.digest, &revision).await?;
    if let Some(unchanged) = read.unchanged {
        return Ok(unchanged);
    }
    let guard = TagGuard::Expect(read.digest);
    upload_blobs(client, repo, artifact, None, events).await?;
    write_manifest(client, repo, tag, artifact, &guard, events).await
}

/// A [`FakeRegistry`] with `state`, an anonymous client for it, and a directory for the layer.
async fn fake_push_target(
    state: &Arc<Mutex<FakeRegistry>>,
) -> (Server, RegistryClient, tempfile::TempDir) {
    let server = serve(fake_registry(state.clone())).await;
    let client = client(&server, Credentials::Anonymous);
    (server, client, tempfile::tempdir().unwrap())
}

/// The push events seen so far, and the callback that records them.
fn recorder() -> (Arc<Mutex<Vec<PushEvent>>>, impl Fn(PushEvent) + Send + Sync) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |event: PushEvent| {
        sink.lock().unwrap().push(event)
    })
}

/// Pushes [`artifact`] with `revision` to `acme/app:dev`, ignoring the events.
async fn silent_push(
    client: &RegistryClient,
    dir: &std::path::Path,
    revision: &str,
) -> Result<crate::registry::protocol::PushOutcome, PushError> {
    push_artifact(client, "acme/app", "dev", &artifact(dir, revision), &|_| {}).await
}

#[tokio::test]
async fn push_uploads_blobs_then_manifest_and_a_repush_is_one_request() {
    let state = Arc::new(Mutex::new(FakeRegistry::default()));
    let (server, client, dir) = fake_push_target(&state).await;
    let upload = artifact(dir.path(), "sha256:rev1");
    let (events, record) = recorder();

    let outcome = push_artifact(&client, "acme/app", "dev", &upload, &record)
        .await
        .unwrap();
    assert!(!outcome.unchanged);
    assert_eq!(outcome.digest, upload.manifest_digest);
    let steps: Vec<_> = server
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target.split('?').next().unwrap()))
        .collect();
    let config = &upload.config.digest;
    let layer = &upload.layer.digest;
    assert_eq!(
        steps,
        [
            "GET /v2/acme/app/manifests/dev".to_string(),
            format!("HEAD /v2/acme/app/blobs/{config}"),
            "POST /v2/acme/app/blobs/uploads/".to_string(),
            "PUT /v2/acme/app/blobs/uploads/1".to_string(),
            format!("HEAD /v2/acme/app/blobs/{layer}"),
            "POST /v2/acme/app/blobs/uploads/".to_string(),
            "PUT /v2/acme/app/blobs/uploads/2".to_string(),
            "HEAD /v2/acme/app/manifests/dev".to_string(),
            "PUT /v2/acme/app/manifests/dev".to_string(),
            "HEAD /v2/acme/app/manifests/dev".to_string(),
        ]
    );
    let manifest_put = server
        .requests()
        .iter()
        .rfind(|r| r.method == "PUT")
        .unwrap()
        .clone();
    assert_eq!(
        manifest_put.header("content-type"),
        Some(OCI_MANIFEST_MEDIA_TYPE)
    );
    assert_eq!(manifest_put.body, upload.manifest_bytes.to_vec());
    let events = events.lock().unwrap().clone();
    assert_eq!(events.first(), Some(&PushEvent::UploadingConfig));
    assert!(events.contains(&PushEvent::UploadingLayer {
        size: upload.layer.size
    }));
    assert!(events.contains(&PushEvent::Uploaded(upload.layer.size)));
    assert_eq!(
        events.last(),
        Some(&PushEvent::Tagged {
            digest: upload.manifest_digest.clone()
        })
    );

    let before = server.requests().len();
    let again = push_artifact(&client, "acme/app", "dev", &upload, &|_| {})
        .await
        .unwrap();
    assert!(again.unchanged);
    assert_eq!(again.digest, upload.manifest_digest);
    assert_eq!(
        server.requests().len(),
        before + 1,
        "a no-op re-push sends one request"
    );
}

#[tokio::test]
async fn new_revision_skips_existing_blobs_and_retags() {
    let state = Arc::new(Mutex::new(FakeRegistry::default()));
    let (_server, client, dir) = fake_push_target(&state).await;
    silent_push(&client, dir.path(), "sha256:rev1")
        .await
        .unwrap();
    let (events, record) = recorder();
    let upload = artifact(dir.path(), "sha256:rev2");
    let outcome = push_artifact(&client, "acme/app", "dev", &upload, &record)
        .await
        .unwrap();
    assert!(!outcome.unchanged);
    let events = events.lock().unwrap().clone();
    assert_eq!(
        events[..2],
        [PushEvent::ConfigExists, PushEvent::LayerExists]
    );
    assert_eq!(state.lock().unwrap().uploads, 2, "no blob uploaded again");
}

#[tokio::test]
async fn differing_stored_digest_is_a_non_retryable_mismatch() {
    let state = Arc::new(Mutex::new(FakeRegistry {
        lie_about_digest: true,
        ..FakeRegistry::default()
    }));
    let (_server, client, dir) = fake_push_target(&state).await;
    let error = silent_push(&client, dir.path(), "r").await.unwrap_err();
    assert!(
        matches!(error, PushError::DigestMismatch { .. }),
        "{error:?}"
    );
    assert!(!error.is_retryable());
}

/// An HTTPS server with a self-signed certificate, run on a std thread with rustls directly.
fn self_signed_tls_server() -> u16 {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    init_tls();
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let chain = vec![CertificateDer::from(generated.cert.der().to_vec())];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        generated.signing_key.serialize_der(),
    ));
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut connection = rustls::ServerConnection::new(config.clone()).unwrap();
            while connection.is_handshaking() {
                if connection.complete_io(&mut stream).is_err() {
                    break;
                }
            }
        }
    });
    port
}

#[tokio::test]
async fn untrusted_certificate_is_a_non_retryable_verification_failure() {
    let port = self_signed_tls_server();
    let client = anonymous_client(&format!("localhost:{port}"), false, &|_| None);
    let error = client.get_manifest("acme/app", "dev").await.unwrap_err();
    assert_eq!(
        *error.kind(),
        RegistryErrorKind::TlsVerification {
            detail: "invalid peer certificate: UnknownIssuer".into()
        },
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(error.is_tls());
}

#[tokio::test]
async fn upload_without_a_response_times_out_after_the_idle_limit() {
    let server = upload_server("/v2/acme/app/blobs/uploads/u1", || Reply::Hang).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    std::fs::write(&path, b"layer bytes").unwrap();
    let mut client = client(&server, Credentials::Anonymous);
    client.idle_timeout = Duration::from_millis(300);
    let body = BlobBody::File { path, size: 11 };
    let started = std::time::Instant::now();
    let error = client
        .upload_blob("acme/app", &sha256_digest(b"layer bytes"), body, None)
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), RegistryErrorKind::Timeout, "{error:?}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.requests()[1].body, b"layer bytes");
}
