//! A thin OCI distribution client on `reqwest` (artifact.md#transport, #credentials).
//!
//! It does exactly the requests the push protocol and the reconcile digest lookup need. Every
//! failure is a typed [`RegistryError`]. Transport rules: HTTPS against the OS trust store unless
//! the caller asked for plain HTTP, never a fallback between the two; at most 10 redirect hops;
//! `Authorization` only ever sent to the registry's own scheme, host and port; loopback is never
//! proxied.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION,
    RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncReadExt as _;

use super::auth::{CredentialSource, Credentials};
use super::challenge::{Challenge, parse_challenges};
use super::error::{RegistryError, RegistryErrorKind, parse_retry_after, status_kind};
use super::growing::GrowingFile;

// The media types are owned by the artifact format; the client only lists them in `Accept`.
pub use crate::artifact::manifest::{
    MANIFEST_MEDIA_TYPE as OCI_MANIFEST_MEDIA_TYPE, sha256_digest,
};
/// Distribution answers `404` for an OCI manifest unless the `Accept` header lists it.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Manifests are small; anything bigger is not ours and is not read into memory.
const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// How much of an error body is read to find the registry's error code and message.
const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;
const UPLOAD_CHUNK_BYTES: usize = 64 * 1024;
const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// A manifest as fetched: the exact bytes and the registry's digest header, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    pub bytes: Bytes,
    pub digest_header: Option<String>,
}

/// The content of a blob upload.
#[derive(Debug, Clone)]
pub enum BlobBody {
    Bytes(Bytes),
    /// Streamed from the file; `size` is sent as `Content-Length`.
    File {
        path: PathBuf,
        size: u64,
    },
}

impl BlobBody {
    pub fn size(&self) -> u64 {
        match self {
            BlobBody::Bytes(bytes) => bytes.len() as u64,
            BlobBody::File { size, .. } => *size,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Pull,
    Push,
}

/// The token scope for a repository and action; also the key of the token cache.
fn scope(repo: &str, action: Action) -> String {
    match action {
        Action::Pull => format!("repository:{repo}:pull"),
        Action::Push => format!("repository:{repo}:pull,push"),
    }
}

/// A request body that can be produced again for the retry after an auth challenge.
enum RequestBody {
    Empty,
    Bytes(Bytes),
    File {
        path: PathBuf,
        size: u64,
        sent: Arc<AtomicU64>,
    },
    /// Streamed as the file grows, without `Content-Length` (chunked).
    Growing {
        file: GrowingFile,
        sent: Arc<AtomicU64>,
    },
}

/// A response plus whether credentials were presented with it (for 401/403 messages).
struct Sent {
    response: reqwest::Response,
    authorized: bool,
}

#[derive(Default)]
struct AuthState {
    /// The registry asked for Basic once; send it up front from then on.
    basic: bool,
    /// Bearer tokens per scope, for the client's lifetime.
    bearer: HashMap<String, String>,
}

/// A client for one registry (`host[:port]`).
pub struct RegistryClient {
    http: reqwest::Client,
    /// Like `http` but without a read timeout; used for streamed uploads (see `watch_upload`).
    upload_http: reqwest::Client,
    /// How long a streamed upload may go without sending a byte or getting its response.
    idle_timeout: Duration,
    scheme: &'static str,
    host_port: String,
    credentials: Credentials,
    credential_source: CredentialSource,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("scheme", &self.scheme)
            .field("host_port", &self.host_port)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `host_port`, over plain HTTP when `plain_http`, else HTTPS, reading the
    /// proxy variables through `env`.
    pub fn with_env(
        host_port: &str,
        plain_http: bool,
        credentials: Credentials,
        credential_source: CredentialSource,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, RegistryError> {
        let builder_error = |detail: String| {
            RegistryError::new(
                RegistryErrorKind::Other { detail },
                format!("client for {host_port}"),
            )
        };
        let build = |read_timeout: Option<Duration>| {
            let mut builder =
                super::http::client_builder(plain_http, env).map_err(builder_error)?;
            if let Some(read_timeout) = read_timeout {
                builder = builder.read_timeout(read_timeout);
            }
            builder
                .build()
                .map_err(|error| builder_error(format!("cannot build the HTTP client: {error}")))
        };
        Ok(RegistryClient {
            http: build(Some(READ_TIMEOUT))?,
            // reqwest's read timeout runs from the start of the request, so a long upload would
            // hit it while still sending; file uploads are watched for inactivity instead.
            upload_http: build(None)?,
            idle_timeout: READ_TIMEOUT,
            scheme: if plain_http { "http" } else { "https" },
            host_port: host_port.to_string(),
            credentials,
            credential_source,
            auth: Mutex::new(AuthState::default()),
        })
    }

    /// `GET /v2/<repo>/manifests/<reference>`; `Ok(None)` on `404`.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let Some((name, sent)) = self.manifest(Method::GET, repo, reference).await? else {
            return Ok(None);
        };
        let digest_header = digest_header(sent.response.headers());
        let bytes = read_limited(sent.response, MAX_MANIFEST_BYTES, &name).await?;
        Ok(Some(FetchedManifest {
            bytes,
            digest_header,
        }))
    }

    /// `HEAD /v2/<repo>/manifests/<reference>`: the manifest digest, or `Ok(None)` on `404`.
    /// Without a `Docker-Content-Digest` header the manifest is fetched and hashed.
    pub async fn head_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let Some((_, sent)) = self.manifest(Method::HEAD, repo, reference).await? else {
            return Ok(None);
        };
        if let Some(digest) = digest_header(sent.response.headers()) {
            return Ok(Some(digest));
        }
        Ok(self.get_manifest(repo, reference).await?.map(|manifest| {
            manifest
                .digest_header
                .unwrap_or_else(|| sha256_digest(&manifest.bytes))
        }))
    }

    /// `method` on `/v2/<repo>/manifests/<reference>`: `Ok(None)` on `404`, the request's name
    /// and the response on success, the status error otherwise.
    async fn manifest(
        &self,
        method: Method,
        repo: &str,
        reference: &str,
    ) -> Result<Option<(String, Sent)>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"))?;
        let name = describe(&method, &url);
        let sent = self
            .send(
                method,
                url,
                &scope(repo, Action::Pull),
                manifest_accept(),
                &RequestBody::Empty,
            )
            .await?;
        match sent.response.status() {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some((name, sent))),
            _ => Err(self.status_error(&name, sent).await),
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: `true` on `200`, `false` on `404`.
    pub async fn blob_exists(&self, repo: &str, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"))?;
        let name = describe(&Method::HEAD, &url);
        let sent = self
            .send(
                Method::HEAD,
                url,
                &scope(repo, Action::Pull),
                HeaderMap::new(),
                &RequestBody::Empty,
            )
            .await?;
        match sent.response.status() {
            StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            _ => Err(self.status_error(&name, sent).await),
        }
    }

    /// Upload a blob: `POST /v2/<repo>/blobs/uploads/` (`202` + `Location`), then one monolithic
    /// `PUT <Location>&digest=<digest>` (`201`). `progress` gets the cumulative number of bytes
    /// handed to the connection.
    pub async fn upload_blob(
        &self,
        repo: &str,
        digest: &str,
        body: BlobBody,
        progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    ) -> Result<(), RegistryError> {
        let push = scope(repo, Action::Push);
        let mut put_url = self.start_upload(repo).await?;
        put_url.query_pairs_mut().append_pair("digest", digest);

        let size = body.size();
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let request_body = match body {
            BlobBody::Bytes(bytes) => RequestBody::Bytes(bytes),
            BlobBody::File { path, size } => RequestBody::File {
                path,
                size,
                sent: sent_bytes.clone(),
            },
        };
        let put_name = describe(&Method::PUT, &put_url);
        let request = self.send(Method::PUT, put_url, &push, headers, &request_body);
        let sent = match &request_body {
            RequestBody::File { .. } => {
                watch_upload(request, &sent_bytes, progress, self.idle_timeout, &put_name).await?
            }
            _ => request.await?,
        };
        if !sent.response.status().is_success() {
            return Err(self.status_error(&put_name, sent).await);
        }
        if let (Some(report), RequestBody::Bytes(_)) = (progress, &request_body) {
            report(size);
        }
        Ok(())
    }

    /// `POST /v2/<repo>/blobs/uploads/` (`202`): the session's URL from its `Location`.
    async fn start_upload(&self, repo: &str) -> Result<Url, RegistryError> {
        let start = self.url(&format!("/v2/{repo}/blobs/uploads/"))?;
        let name = describe(&Method::POST, &start);
        let response = self.push_without_body(Method::POST, start, repo).await?;
        session_location(&response, &name)
    }

    /// A request with an empty body (`Content-Length: 0`) under `repo`'s push scope that must
    /// succeed.
    async fn push_without_body(
        &self,
        method: Method,
        url: Url,
        repo: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let name = describe(&method, &url);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let push = scope(repo, Action::Push);
        let sent = self
            .send(method, url, &push, headers, &RequestBody::Empty)
            .await?;
        if !sent.response.status().is_success() {
            return Err(self.status_error(&name, sent).await);
        }
        Ok(sent.response)
    }

    /// Start a blob upload and send `file` into it as it is written: `POST`, then one `PATCH`
    /// with a chunked body and no `Content-Range` (a streamed upload, as `docker push` sends
    /// one). Returns the session's URL, which [`Self::commit_blob`] completes. Fails after the
    /// client's idle timeout without a byte sent or an answer.
    pub async fn stream_blob(&self, repo: &str, file: GrowingFile) -> Result<Url, RegistryError> {
        let session = self.start_upload(repo).await?;
        let name = describe(&Method::PATCH, &session);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let body = RequestBody::Growing {
            file,
            sent: sent_bytes.clone(),
        };
        let push = scope(repo, Action::Push);
        let request = self.send(Method::PATCH, session, &push, headers, &body);
        let sent = watch_upload(request, &sent_bytes, None, self.idle_timeout, &name).await?;
        if !sent.response.status().is_success() {
            return Err(self.status_error(&name, sent).await);
        }
        session_location(&sent.response, &name)
    }

    /// Complete an upload session whose bytes are all sent: `PUT <session>&digest=<digest>`
    /// with an empty body (`201`). The registry checks the digest against what it received.
    pub async fn commit_blob(
        &self,
        repo: &str,
        mut session: Url,
        digest: &str,
    ) -> Result<(), RegistryError> {
        session.query_pairs_mut().append_pair("digest", digest);
        self.push_without_body(Method::PUT, session, repo).await?;
        Ok(())
    }

    /// `PUT /v2/<repo>/manifests/<tag>`; returns the `Docker-Content-Digest` the registry sent.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<Option<String>, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{tag}"))?;
        let name = describe(&Method::PUT, &url);
        let mut headers = HeaderMap::new();
        let content_type = HeaderValue::from_str(media_type).map_err(|_| {
            RegistryError::new(
                RegistryErrorKind::Other {
                    detail: format!("invalid media type {media_type:?}"),
                },
                name.clone(),
            )
        })?;
        headers.insert(CONTENT_TYPE, content_type);
        let sent = self
            .send(
                Method::PUT,
                url,
                &scope(repo, Action::Push),
                headers,
                &RequestBody::Bytes(bytes),
            )
            .await?;
        if !sent.response.status().is_success() {
            return Err(self.status_error(&name, sent).await);
        }
        Ok(digest_header(sent.response.headers()))
    }

    fn url(&self, path: &str) -> Result<Url, RegistryError> {
        let text = format!("{}://{}{path}", self.scheme, self.host_port);
        Url::parse(&text).map_err(|_| {
            RegistryError::new(
                RegistryErrorKind::Other {
                    detail: format!("invalid registry URL {text}"),
                },
                path.to_string(),
            )
        })
    }

    /// Whether `url` is on the registry itself (same scheme, host and port): only then may it
    /// carry our `Authorization`.
    fn is_registry_url(&self, url: &Url) -> bool {
        self.url("/v2/").is_ok_and(|base| {
            base.scheme() == url.scheme()
                && base.host_str() == url.host_str()
                && base.port_or_known_default() == url.port_or_known_default()
        })
    }

    /// Send one request: anonymously (or with what an earlier challenge taught us), and once more
    /// with credentials if the registry answers `401` with a challenge we can meet.
    async fn send(
        &self,
        method: Method,
        url: Url,
        scope: &str,
        headers: HeaderMap,
        body: &RequestBody,
    ) -> Result<Sent, RegistryError> {
        let name = describe(&method, &url);
        let on_registry = self.is_registry_url(&url);
        let mut authorization = if on_registry {
            self.cached_authorization(scope)
        } else {
            None
        };
        let mut challenged = false;
        loop {
            let http = match body {
                RequestBody::File { .. } | RequestBody::Growing { .. } => &self.upload_http,
                _ => &self.http,
            };
            let mut builder = http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(value) = &authorization {
                builder = builder.header(AUTHORIZATION, sensitive_header(value)?);
            }
            builder = attach_body(builder, body, &name).await?;
            let response = builder
                .send()
                .await
                .map_err(|error| RegistryError::from_transport(name.clone(), error))?;
            // Method, path and status only: headers and queries may carry secrets.
            tracing::debug!(
                request = %name,
                status = response.status().as_u16(),
                authorized = authorization.is_some(),
                "registry response"
            );
            if response.status() == StatusCode::UNAUTHORIZED && on_registry && !challenged {
                challenged = true;
                let challenges = challenges_of(response.headers());
                if let Some(next) = self
                    .answer_challenge(&challenges, scope, authorization.as_deref())
                    .await?
                {
                    authorization = Some(next);
                    continue;
                }
            }
            return Ok(Sent {
                response,
                authorized: authorization.is_some(),
            });
        }
    }

    fn cached_authorization(&self, scope: &str) -> Option<String> {
        let state = self.auth.lock().ok()?;
        if state.basic
            && let Some(header) = self.basic_header()
        {
            return Some(header);
        }
        state
            .bearer
            .get(scope)
            .map(|token| format!("Bearer {token}"))
    }

    fn basic_header(&self) -> Option<String> {
        match &self.credentials {
            Credentials::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            _ => None,
        }
    }

    /// The `Authorization` value that answers a challenge, or `None` when we cannot do better
    /// than what was just sent (the `401` then stands).
    async fn answer_challenge(
        &self,
        challenges: &[Challenge],
        scope: &str,
        previous: Option<&str>,
    ) -> Result<Option<String>, RegistryError> {
        let bearer = challenges
            .iter()
            .find(|challenge| challenge.scheme == "bearer");
        let basic = challenges
            .iter()
            .any(|challenge| challenge.scheme == "basic");
        let next = if let Some(bearer) = bearer {
            let token = match &self.credentials {
                Credentials::RegistryToken(token) => token.clone(),
                _ => self.fetch_token(bearer, scope).await?,
            };
            if let Ok(mut state) = self.auth.lock() {
                state.bearer.insert(scope.to_string(), token.clone());
            }
            Some(format!("Bearer {token}"))
        } else if basic {
            let header = self.basic_header();
            if header.is_some()
                && let Ok(mut state) = self.auth.lock()
            {
                state.basic = true;
            }
            header
        } else {
            None
        };
        Ok(next.filter(|next| Some(next.as_str()) != previous))
    }

    /// Fetch a bearer token from the challenge's realm (docker token spec). Basic credentials are
    /// sent as Basic auth; an identity token uses the OAuth2 refresh-token grant; anonymous sends
    /// nothing.
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: &str,
    ) -> Result<String, RegistryError> {
        let realm_error = |detail: &str| {
            RegistryError::new(
                RegistryErrorKind::Other {
                    detail: detail.to_string(),
                },
                format!("token request for {}", self.host_port),
            )
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| realm_error("the registry sent a Bearer challenge without a realm"))?;
        let mut url = Url::parse(realm)
            .map_err(|_| realm_error("the registry sent an invalid token realm"))?;
        let scope = challenge.param("scope").unwrap_or(scope);
        let service = challenge.param("service");

        let request = match &self.credentials {
            Credentials::IdentityToken(refresh_token) => {
                // `Url`'s query serializer is the form-urlencoded encoder we need for the body.
                let mut form = Url::parse("http://form.invalid/").expect("constant URL parses");
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", scope);
                    pairs.append_pair("client_id", "ksail");
                    pairs.append_pair("refresh_token", refresh_token);
                }
                self.http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.query().unwrap_or_default().to_string())
            }
            credentials => {
                {
                    let mut query = url.query_pairs_mut();
                    if let Some(service) = service {
                        query.append_pair("service", service);
                    }
                    for scope in scope.split(' ').filter(|scope| !scope.is_empty()) {
                        query.append_pair("scope", scope);
                    }
                }
                let request = self.http.get(url.clone());
                match credentials {
                    Credentials::Basic { user, password } => {
                        request.basic_auth(user, Some(password))
                    }
                    _ => request,
                }
            }
        };
        let name = describe(&Method::GET, &url);
        let response = request
            .send()
            .await
            .map_err(|error| RegistryError::from_transport(name.clone(), error))?;
        if !response.status().is_success() {
            let authorized = !matches!(self.credentials, Credentials::Anonymous);
            return Err(self
                .status_error(
                    &name,
                    Sent {
                        response,
                        authorized,
                    },
                )
                .await);
        }
        let body = read_limited(response, MAX_ERROR_BODY_BYTES, &name).await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| realm_error("the token endpoint did not return JSON"))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| realm_error("the token endpoint returned no token"))
    }

    /// Every secret this client knows, for redacting registry messages.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = self.credentials.secrets();
        if let Ok(state) = self.auth.lock() {
            secrets.extend(state.bearer.values().cloned());
        }
        secrets
    }

    /// A typed error for a non-success response, with the registry's message (secrets removed)
    /// and, for `401`/`403`, the source of the credentials that were presented.
    async fn status_error(&self, name: &str, sent: Sent) -> RegistryError {
        let code = sent.response.status().as_u16();
        let retry_after = sent
            .response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, time::OffsetDateTime::now_utc()));
        // The body only adds detail; a failure to read it does not change the error.
        let body = read_limited(sent.response, MAX_ERROR_BODY_BYTES, name)
            .await
            .unwrap_or_default();
        let secrets = self.secrets();
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let error = RegistryError::new(status_kind(code, &body, retry_after, &secret_refs), name);
        if code == 401 || code == 403 {
            let source = if sent.authorized {
                self.credential_source.clone()
            } else {
                CredentialSource::Anonymous
            };
            return error.with_credential_source(source);
        }
        error
    }
}

/// Drive a streamed upload: report the cumulative bytes sent every [`PROGRESS_INTERVAL`], and
/// fail with an i/o timeout after `idle_timeout` without a byte sent or a response received.
async fn watch_upload(
    request: impl Future<Output = Result<Sent, RegistryError>>,
    sent_bytes: &AtomicU64,
    progress: Option<&(dyn Fn(u64) + Send + Sync)>,
    idle_timeout: Duration,
    name: &str,
) -> Result<Sent, RegistryError> {
    let mut request = std::pin::pin!(request);
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL.min(idle_timeout));
    let mut last = 0;
    let mut last_activity = tokio::time::Instant::now();
    let result = loop {
        tokio::select! {
            result = &mut request => break result,
            _ = ticker.tick() => {
                let now = sent_bytes.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    last_activity = tokio::time::Instant::now();
                    if let Some(report) = progress {
                        report(now);
                    }
                } else if last_activity.elapsed() >= idle_timeout {
                    return Err(RegistryError::new(RegistryErrorKind::Timeout, name));
                }
            }
        }
    };
    let now = sent_bytes.load(Ordering::Relaxed);
    if now != last
        && let Some(report) = progress
    {
        report(now);
    }
    result
}

async fn attach_body(
    builder: reqwest::RequestBuilder,
    body: &RequestBody,
    name: &str,
) -> Result<reqwest::RequestBuilder, RegistryError> {
    Ok(match body {
        RequestBody::Empty => builder,
        RequestBody::Bytes(bytes) => builder.body(bytes.clone()),
        RequestBody::File { path, size, sent } => {
            let file = tokio::fs::File::open(path).await.map_err(|error| {
                RegistryError::new(
                    RegistryErrorKind::LocalFile {
                        detail: format!("cannot read {}: {}", path.display(), error.kind()),
                    },
                    name,
                )
            })?;
            sent.store(0, Ordering::Relaxed);
            let counter = sent.clone();
            let stream =
                tokio_util::io::ReaderStream::with_capacity(file.take(*size), UPLOAD_CHUNK_BYTES)
                    .map(move |chunk| {
                        if let Ok(chunk) = &chunk {
                            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        chunk
                    });
            builder.body(reqwest::Body::wrap_stream(stream))
        }
        RequestBody::Growing { file, sent } => {
            sent.store(0, Ordering::Relaxed);
            let stream = file.bytes(sent.clone()).await.map_err(|error| {
                RegistryError::new(
                    RegistryErrorKind::LocalFile {
                        detail: format!("cannot read {}: {}", file.path.display(), error.kind()),
                    },
                    name,
                )
            })?;
            builder.body(reqwest::Body::wrap_stream(stream))
        }
    })
}

fn sensitive_header(value: &str) -> Result<HeaderValue, RegistryError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        RegistryError::new(
            RegistryErrorKind::Other {
                detail: "the credentials contain characters that cannot be sent in a header"
                    .to_string(),
            },
            "authorization",
        )
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn manifest_accept() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
    headers
}

fn challenges_of(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(parse_challenges)
        .collect()
}

/// The upload session a `202` names in `Location`, resolved against the response's URL (a
/// redirect may have moved us).
fn session_location(response: &reqwest::Response, name: &str) -> Result<Url, RegistryError> {
    let protocol_error = |detail: &str| {
        RegistryError::new(
            RegistryErrorKind::Other {
                detail: detail.to_string(),
            },
            name,
        )
    };
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| protocol_error("the registry started an upload but sent no Location"))?;
    response
        .url()
        .join(location)
        .map_err(|_| protocol_error("the registry sent an invalid upload Location"))
}

fn digest_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(DOCKER_CONTENT_DIGEST)
        .and_then(|value| value.to_str().ok())
        .map(|value| value.trim().to_string())
        .filter(|value| !value.is_empty())
}

/// `METHOD /path` of a request, without the query (upload locations carry session state).
fn describe(method: &Method, url: &Url) -> String {
    format!("{method} {}", url.path())
}

/// Read a response body, refusing more than `limit` bytes.
async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
    name: &str,
) -> Result<Bytes, RegistryError> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| RegistryError::from_transport(name, error))?
    {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::new(
                RegistryErrorKind::Other {
                    detail: format!("response body larger than {limit} bytes"),
                },
                name,
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests;
