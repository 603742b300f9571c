//! The verification client: plain HTTP/1.1 over `std::net::TcpStream`.
//!
//! Tests read manifests, blobs and tags with this client, never with ksail's registry client, so a
//! bug in ksail cannot hide itself (testing.md "Independent verification"). One connection per
//! request (`Connection: close`) keeps it simple; timeouts keep a broken server from hanging a test.

use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::wire;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const IO_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_REDIRECTS: usize = 5;

/// What Distribution 2.8 needs to hand out an OCI manifest (testing.md "OCI manifests").
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        wire::header_value(&self.headers, name)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// `GET` a URL (`http://host:port/path`) or a bare `host:port/path`.
pub fn get(url: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    send("GET", url, headers, &[])
}

pub fn head(url: &str, headers: &[(&str, &str)]) -> io::Result<Response> {
    send("HEAD", url, headers, &[])
}

/// Any request. Meant for arranging state (seeding, deleting); assertions should only read.
pub fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let (host_port, path) = split_url(url)?;
    let addr = host_port.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host_port} did not resolve"),
        )
    })?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;

    let mut request = wire::Head::new(format!("{method} {path} HTTP/1.1"));
    request.set_header("Host", host_port.clone());
    request.set_header("User-Agent", "ksail-test-support");
    for (name, value) in headers {
        request.headers.push((name.to_string(), value.to_string()));
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH") {
        request.set_header("Content-Length", body.len().to_string());
    }
    request.set_header("Connection", "close");
    stream.write_all(&request.to_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut reader = BufReader::new(stream);
    // Interim responses (100 Continue) carry no body; the real one follows.
    let (head, status) = wire::read_final_head(&mut reader, "server closed without a response")?;
    let framing = wire::response_framing(method, status, &head)?;
    let body = wire::read_body(&mut reader, framing)?;
    Ok(Response {
        status,
        headers: head.headers,
        body,
    })
}

/// Splits `http://host:port/path?q` or `host:port/path?q` into (`host:port`, `/path?q`).
pub fn split_url(url: &str) -> io::Result<(String, String)> {
    if url.starts_with("https://") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the verification client speaks plain HTTP only: {url}"),
        ));
    }
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host_port, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if host_port.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no host in {url}"),
        ));
    }
    Ok((host_port.to_string(), path.to_string()))
}

/// `Authorization` value for HTTP basic auth.
pub fn basic_auth(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// `sha256:<hex>` of some bytes, the way OCI names content.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn auth_headers(auth: Option<(&str, &str)>) -> Vec<(String, String)> {
    auth.map(|(u, p)| vec![("Authorization".to_string(), basic_auth(u, p))])
        .unwrap_or_default()
}

fn as_refs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

/// `GET /v2/<repo>/manifests/<tag>` with the OCI and Docker v2 `Accept` types.
/// Returns the status, the raw body and the `Docker-Content-Digest` header.
pub fn fetch_manifest(host: &str, repo: &str, tag: &str) -> (u16, Vec<u8>, Option<String>) {
    fetch_manifest_with(host, repo, tag, None)
}

pub fn fetch_manifest_as(
    host: &str,
    repo: &str,
    tag: &str,
    user: &str,
    password: &str,
) -> (u16, Vec<u8>, Option<String>) {
    fetch_manifest_with(host, repo, tag, Some((user, password)))
}

fn fetch_manifest_with(
    host: &str,
    repo: &str,
    tag: &str,
    auth: Option<(&str, &str)>,
) -> (u16, Vec<u8>, Option<String>) {
    let url = format!("http://{host}/v2/{repo}/manifests/{tag}");
    let mut headers = auth_headers(auth);
    headers.push(("Accept".to_string(), MANIFEST_ACCEPT.to_string()));
    let response =
        get(&url, &as_refs(&headers)).unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
    let digest = response.header("docker-content-digest").map(str::to_string);
    (response.status, response.body, digest)
}

/// `GET /v2/<repo>/blobs/<digest>`, following redirects. Returns the status and the body.
pub fn fetch_blob(host: &str, repo: &str, digest: &str) -> (u16, Vec<u8>) {
    fetch_blob_with(host, repo, digest, None)
}

fn fetch_blob_with(
    host: &str,
    repo: &str,
    digest: &str,
    auth: Option<(&str, &str)>,
) -> (u16, Vec<u8>) {
    let mut url = format!("http://{host}/v2/{repo}/blobs/{digest}");
    let mut current_host = host.to_string();
    for _ in 0..=MAX_REDIRECTS {
        // Credentials go only to the registry itself, never to a redirect target.
        let headers = if current_host == host {
            auth_headers(auth)
        } else {
            Vec::new()
        };
        let response =
            get(&url, &as_refs(&headers)).unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        let location = response.header("location").map(str::to_string);
        match (response.status, location) {
            (301 | 302 | 303 | 307 | 308, Some(location)) => {
                url = if location.starts_with('/') {
                    format!("http://{current_host}{location}")
                } else {
                    location
                };
                current_host = split_url(&url)
                    .unwrap_or_else(|e| panic!("bad redirect target: {e}"))
                    .0;
            }
            (status, _) => return (status, response.body),
        }
    }
    panic!("GET blob {digest}: more than {MAX_REDIRECTS} redirects");
}

/// Tags of a repository (`GET /v2/<repo>/tags/list`); an unknown repository has none.
pub fn list_tags(host: &str, repo: &str) -> Vec<String> {
    list_tags_with(host, repo, None)
}

pub fn list_tags_as(host: &str, repo: &str, user: &str, password: &str) -> Vec<String> {
    list_tags_with(host, repo, Some((user, password)))
}

fn list_tags_with(host: &str, repo: &str, auth: Option<(&str, &str)>) -> Vec<String> {
    let url = format!("http://{host}/v2/{repo}/tags/list");
    let response = get(&url, &as_refs(&auth_headers(auth)))
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
    match response.status {
        404 => Vec::new(),
        200 => {
            let json = response.json();
            let mut tags: Vec<String> = json["tags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            tags.sort();
            tags
        }
        status => panic!("GET {url}: unexpected status {status}: {}", response.text()),
    }
}

/// One entry of a tar archive, as a standard reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarEntryInfo {
    /// The path as stored (long names and PAX paths resolved), e.g. `apps/app.yaml` or `apps/`.
    pub name: String,
    pub entry_type: tar::EntryType,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub uname: String,
    pub gname: String,
    pub mtime: u64,
    pub size: u64,
    /// Symlink or hard-link target, if any.
    pub link_name: Option<String>,
    pub data: Vec<u8>,
}

/// Decompresses a `.tar.gz` and lists its entries in archive order with the `tar` crate.
pub fn read_tar_gz(bytes: &[u8]) -> Vec<TarEntryInfo> {
    let decoder = flate2::read::GzDecoder::new(bytes);
    let mut archive = tar::Archive::new(decoder);
    let mut entries = Vec::new();
    for entry in archive.entries().expect("tar stream is readable") {
        let mut entry = entry.expect("tar entry is readable");
        let header = entry.header().clone();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let link_name = entry
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned());
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .expect("tar entry data is readable");
        entries.push(TarEntryInfo {
            name,
            entry_type: header.entry_type(),
            mode: header.mode().expect("tar header has a mode"),
            uid: header.uid().expect("tar header has a uid"),
            gid: header.gid().expect("tar header has a gid"),
            uname: String::from_utf8_lossy(header.username_bytes().unwrap_or_default())
                .into_owned(),
            gname: String::from_utf8_lossy(header.groupname_bytes().unwrap_or_default())
                .into_owned(),
            mtime: header.mtime().expect("tar header has an mtime"),
            size: header.size().expect("tar header has a size"),
            link_name,
            data,
        });
    }
    entries
}

/// The layers of an OCI image manifest body, as `(digest, media type)` pairs.
pub fn manifest_layers(manifest: &[u8]) -> Vec<(String, String)> {
    let json: serde_json::Value = serde_json::from_slice(manifest).expect("manifest is JSON");
    json["layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .map(|l| {
                    (
                        l["digest"].as_str().unwrap_or_default().to_string(),
                        l["mediaType"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Uploads a blob monolithically (`POST` then `PUT ?digest=`), for arranging registry state.
/// Returns its digest.
pub fn upload_blob(host: &str, repo: &str, bytes: &[u8], auth: Option<(&str, &str)>) -> String {
    let digest = sha256_digest(bytes);
    let headers = auth_headers(auth);
    let url = format!("http://{host}/v2/{repo}/blobs/uploads/");
    let started = send("POST", &url, &as_refs(&headers), &[])
        .unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
    assert_eq!(started.status, 202, "POST {url}: {}", started.text());
    let location = started
        .header("location")
        .unwrap_or_else(|| panic!("POST {url}: no Location"));
    let location = if location.starts_with('/') {
        format!("http://{host}{location}")
    } else {
        location.to_string()
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put_url = format!("{location}{separator}digest={digest}");
    let mut put_headers = headers.clone();
    put_headers.push(("Content-Type".into(), "application/octet-stream".into()));
    let done = send("PUT", &put_url, &as_refs(&put_headers), bytes)
        .unwrap_or_else(|e| panic!("PUT {put_url} failed: {e}"));
    assert_eq!(done.status, 201, "PUT {put_url}: {}", done.text());
    digest
}

/// Stores a manifest under a tag, for arranging registry state. Returns its digest.
pub fn put_manifest(
    host: &str,
    repo: &str,
    tag: &str,
    manifest: &[u8],
    auth: Option<(&str, &str)>,
) -> String {
    let mut headers = auth_headers(auth);
    headers.push((
        "Content-Type".into(),
        "application/vnd.oci.image.manifest.v1+json".into(),
    ));
    let url = format!("http://{host}/v2/{repo}/manifests/{tag}");
    let response = send("PUT", &url, &as_refs(&headers), manifest)
        .unwrap_or_else(|e| panic!("PUT {url} failed: {e}"));
    assert_eq!(response.status, 201, "PUT {url}: {}", response.text());
    sha256_digest(manifest)
}

/// Pushes a minimal OCI image (config `{}`, one layer of `layer` bytes, the given manifest
/// annotations) and returns the manifest digest. For tests that need content already present.
pub fn seed_image(
    host: &str,
    repo: &str,
    tag: &str,
    layer: &[u8],
    annotations: &[(&str, &str)],
    auth: Option<(&str, &str)>,
) -> String {
    let config = b"{}";
    let config_digest = upload_blob(host, repo, config, auth);
    let layer_digest = upload_blob(host, repo, layer, auth);
    let annotations: serde_json::Map<String, serde_json::Value> = annotations
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest,
            "size": layer.len(),
        }],
        "annotations": annotations,
    });
    let bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    put_manifest(host, repo, tag, &bytes, auth)
}
