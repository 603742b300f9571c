//! Tests of the integration-test support library itself (tests/support).
//!
//! Fault actions are checked with a raw `TcpStream` client, so that what a test sees is what any
//! HTTP client would see on the wire.

mod support;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::http;
use support::wire;
use support::{Action, FaultScript, Proxy, RegistryKind, TestEnv, TlsListener};

/// An address where nothing listens: bound once, then released.
fn dead_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn connect(host_port: &str) -> TcpStream {
    let stream = TcpStream::connect(host_port).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends a bodiless request and reads the response head (the body is left on the stream).
fn raw_exchange(host_port: &str, method: &str, path: &str) -> (BufReader<TcpStream>, wire::Head) {
    let mut stream = connect(host_port);
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let head = wire::read_head(&mut reader)
        .unwrap()
        .expect("a response head");
    (reader, head)
}

fn body_of(reader: &mut BufReader<TcpStream>, method: &str, head: &wire::Head) -> Vec<u8> {
    let framing = wire::response_framing(method, head.status().unwrap(), head).unwrap();
    wire::read_body(reader, framing).unwrap()
}

// ---------------------------------------------------------------- registry

#[test]
fn registry_plain_starts_and_answers_v2() {
    let registry = require_registry!();
    let response = http::get(&format!("{}/v2/", registry.url()), &[]).unwrap();
    assert_eq!(response.status, 200);
    assert!(registry.host_port().starts_with("127.0.0.1:"));
    assert_eq!(
        http::list_tags(&registry.host_port(), "nothing/here"),
        Vec::<String>::new()
    );
    let (status, _, digest) = http::fetch_manifest(&registry.host_port(), "nothing", "dev");
    assert_eq!((status, digest), (404, None));
}

#[test]
fn registry_auth_requires_the_htpasswd_user() {
    let registry = require_registry!(RegistryKind::Auth {
        users: &[("alice", "s3cr3t")]
    });
    let url = format!("{}/v2/", registry.url());
    let anonymous = http::get(&url, &[]).unwrap();
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous
            .header("www-authenticate")
            .unwrap()
            .contains("ksail-test")
    );
    let good = http::basic_auth("alice", "s3cr3t");
    assert_eq!(
        http::get(&url, &[("Authorization", &good)]).unwrap().status,
        200
    );
    let bad = http::basic_auth("alice", "wrong");
    assert_eq!(
        http::get(&url, &[("Authorization", &bad)]).unwrap().status,
        401
    );

    let host = registry.host_port();
    let digest = http::seed_image(&host, "app", "v1", b"layer", &[], Some(("alice", "s3cr3t")));
    let (status, body, header) = http::fetch_manifest_as(&host, "app", "v1", "alice", "s3cr3t");
    assert_eq!(status, 200);
    assert_eq!(header.as_deref(), Some(digest.as_str()));
    assert_eq!(http::sha256_digest(&body), digest);
    assert_eq!(
        http::list_tags_as(&host, "app", "alice", "s3cr3t"),
        vec!["v1"]
    );
}

#[test]
fn registry_serves_back_what_was_seeded() {
    let registry = require_registry!();
    let host = registry.host_port();
    let digest = http::seed_image(
        &host,
        "team/app",
        "dev",
        b"layer-bytes",
        &[("k", "v")],
        None,
    );
    let (status, body, header) = http::fetch_manifest(&host, "team/app", "dev");
    assert_eq!(status, 200);
    assert_eq!(header.as_deref(), Some(digest.as_str()));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(json["annotations"]["k"], "v");
    let layers = http::manifest_layers(&body);
    assert_eq!(layers.len(), 1);
    assert_eq!(
        http::fetch_blob(&host, "team/app", &layers[0].0),
        (200, b"layer-bytes".to_vec())
    );
    assert_eq!(http::list_tags(&host, "team/app"), vec!["dev"]);
}

#[test]
fn registry_drop_kills_the_process_and_removes_storage() {
    let registry = require_registry!();
    let storage = registry.data_dir();
    let root = storage.parent().unwrap().to_path_buf();
    let host = registry.host_port();
    assert!(root.exists());
    drop(registry);
    assert!(!root.exists(), "{} still exists", root.display());
    assert!(http::get(&format!("http://{host}/v2/"), &[]).is_err());
}

#[test]
fn registry_missing_binary_message_is_the_prescribed_one() {
    assert_eq!(
        support::RegistryError::NotFound.to_string(),
        "docker-registry not found: install the docker-registry package, or set KSAIL_TEST_SKIP_REGISTRY=1"
    );
}

/// Runs one test of this binary in a child process with a chosen environment.
fn run_self(test: &str, env: &[(&str, &str)], remove: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // Captured mode, as under a plain `cargo test`: the skip line must get through anyway.
    cmd.args(["--exact", test, "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    cmd.output().unwrap()
}

#[test]
fn require_registry_skips_with_one_line_when_asked() {
    let output = run_self(
        "registry_plain_starts_and_answers_v2",
        &[("KSAIL_TEST_SKIP_REGISTRY", "1")],
        &[],
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let skipped: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("skipped: "))
        .collect();
    assert_eq!(
        skipped,
        vec!["skipped: registry_plain_starts_and_answers_v2: KSAIL_TEST_SKIP_REGISTRY=1"]
    );
}

#[test]
fn require_registry_fails_when_the_binary_is_missing() {
    let empty = tempfile::tempdir().unwrap();
    let output = run_self(
        "registry_plain_starts_and_answers_v2",
        &[("PATH", empty.path().to_str().unwrap())],
        &["KSAIL_TEST_SKIP_REGISTRY"],
    );
    assert!(!output.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(all.contains(support::registry::NOT_FOUND_MESSAGE), "{all}");
}

// ---------------------------------------------------------------- verification client

#[test]
fn split_url_accepts_bare_and_http_forms_only() {
    assert_eq!(
        http::split_url("127.0.0.1:5000/v2/").unwrap(),
        ("127.0.0.1:5000".to_string(), "/v2/".to_string())
    );
    assert_eq!(
        http::split_url("http://h:1").unwrap(),
        ("h:1".to_string(), "/".to_string())
    );
    assert!(http::split_url("https://h:1/v2/").is_err());
}

#[test]
fn client_decodes_chunked_responses() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        wire::read_head(&mut reader).unwrap();
        let mut stream = reader.into_inner();
        stream
            .write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n",
            )
            .unwrap();
    });
    let response = http::get(&addr, &[]).unwrap();
    server.join().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello world");
}

#[test]
fn read_tar_gz_reports_headers_as_stored() {
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_uid(0);
    dir.set_gid(0);
    dir.set_size(0);
    dir.set_mtime(0);
    builder.append_data(&mut dir, "apps/", &[][..]).unwrap();
    let mut file = tar::Header::new_ustar();
    file.set_mode(0o644);
    file.set_uid(0);
    file.set_gid(0);
    file.set_mtime(0);
    file.set_size(3);
    builder
        .append_data(&mut file, "apps/a.yaml", &b"a: 1"[..3])
        .unwrap();
    let bytes = builder.into_inner().unwrap().finish().unwrap();

    let entries = http::read_tar_gz(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["apps/", "apps/a.yaml"]);
    assert_eq!(entries[0].entry_type, tar::EntryType::Directory);
    assert_eq!(
        (entries[1].mode, entries[1].uid, entries[1].mtime),
        (0o644, 0, 0)
    );
    assert_eq!(
        (entries[1].uname.as_str(), entries[1].gname.as_str()),
        ("", "")
    );
    assert_eq!(entries[1].data, b"a: ");
}

// ---------------------------------------------------------------- recording proxy

#[test]
fn recording_proxy_records_and_rewrites_locations() {
    let (_registry, proxy) = proxied_registry!();
    let host = proxy.host_port();
    let digest = http::upload_blob(&host, "app", b"config", None);
    let (status, _) = http::fetch_blob(&host, "app", &digest);
    assert_eq!(status, 200);

    let requests = proxy.requests();
    let summary: Vec<(String, String, u16)> = requests
        .iter()
        .map(|r| (r.method.clone(), r.path_only().to_string(), r.status))
        .collect();
    assert_eq!(
        summary[0],
        ("POST".into(), "/v2/app/blobs/uploads/".into(), 202)
    );
    assert_eq!(summary[1].0, "PUT");
    assert!(summary[1].1.starts_with("/v2/app/blobs/uploads/"));
    assert_eq!(summary[1].2, 201);
    assert!(
        requests[1].path.contains(&format!("digest={digest}")),
        "{}",
        requests[1]
    );
    assert_eq!(
        summary[2],
        ("GET".into(), format!("/v2/app/blobs/{digest}"), 200)
    );
    assert_eq!(requests.len(), 3);

    proxy.clear();
    assert!(proxy.requests().is_empty());
}

#[test]
fn recording_proxy_streams_a_large_upload() {
    let registry = require_registry!();
    let proxy = Proxy::start(&registry.url());
    let blob: Vec<u8> = (0..21 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let digest = http::upload_blob(&proxy.host_port(), "big", &blob, None);
    let (status, body) = http::fetch_blob(&registry.host_port(), "big", &digest);
    assert_eq!(status, 200);
    assert_eq!(http::sha256_digest(&body), digest);
    assert!(
        proxy
            .requests()
            .iter()
            .all(|r| r.status >= 200 && r.status < 300)
    );
}

#[test]
fn recording_proxy_keeps_connections_alive_and_relays_chunked_bodies() {
    let (_registry, proxy) = proxied_registry!();
    let host = proxy.host_port();

    let started = http::send(
        "POST",
        &format!("{host}/v2/chunky/blobs/uploads/"),
        &[],
        &[],
    )
    .unwrap();
    let location = started.header("location").unwrap().to_string();
    assert!(
        location.contains(&host),
        "Location not rewritten to the proxy: {location}"
    );
    let (_, path) = http::split_url(&location).unwrap();
    let data = b"hello chunked world";
    let digest = http::sha256_digest(data);

    let mut stream = connect(&host);
    // Two requests on one connection: a chunked PUT, then a GET of the stored blob.
    write!(
        stream,
        "PUT {path}&digest={digest} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n\
         7\r\nhello c\r\nc\r\nhunked world\r\n0\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let head = wire::read_head(&mut reader).unwrap().unwrap();
    assert_eq!(head.status().unwrap(), 201);
    body_of(&mut reader, "PUT", &head);
    write!(
        stream,
        "GET /v2/chunky/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let head = wire::read_head(&mut reader).unwrap().unwrap();
    assert_eq!(head.status().unwrap(), 200);
    assert_eq!(body_of(&mut reader, "GET", &head), data);
    assert_eq!(proxy.requests().len(), 3);
}

#[test]
fn recording_proxy_fail_after_drops_later_matches_without_forwarding() {
    let (_registry, proxy) = proxied_registry!();
    let host = proxy.host_port();
    proxy.fail_after(1, |r| r.method == "GET" && r.path.contains("/tags/"));

    assert_eq!(
        http::get(&format!("{host}/v2/x/tags/list"), &[])
            .unwrap()
            .status,
        404
    );
    let err = http::get(&format!("{host}/v2/x/tags/list"), &[]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    // Other requests still pass.
    assert_eq!(http::get(&format!("{host}/v2/"), &[]).unwrap().status, 200);
    proxy.stop_failing();
    assert_eq!(
        http::get(&format!("{host}/v2/x/tags/list"), &[])
            .unwrap()
            .status,
        404
    );

    let statuses: Vec<u16> = proxy.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![404, 0, 200, 404]);
}

/// A one-connection upstream that reads one request head and then runs `respond`.
fn fake_upstream(
    respond: impl FnOnce(&mut TcpStream, &str) + Send + 'static,
) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let own = addr.clone();
    let thread = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        wire::read_head(&mut reader).unwrap();
        let mut stream = reader.into_inner();
        respond(&mut stream, &own);
    });
    (addr, thread)
}

#[test]
fn recording_proxy_relays_streamed_chunks_as_they_arrive() {
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (upstream, server) = fake_upstream(move |stream, _| {
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .unwrap();
        // The second chunk is sent only once the client has seen the first one.
        released.recv_timeout(Duration::from_secs(5)).unwrap();
        stream.write_all(b"6\r\nsecond\r\n0\r\n\r\n").unwrap();
    });
    let proxy = Proxy::start(&upstream);
    let (mut reader, head) = raw_exchange(&proxy.host_port(), "GET", "/watch");
    assert_eq!(head.status().unwrap(), 200);
    let mut line = String::new();
    while !line.contains("first") {
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
    }
    release.send(()).unwrap();
    let mut rest = String::new();
    while !rest.ends_with("0\r\n\r\n") {
        std::io::BufRead::read_line(&mut reader, &mut rest).unwrap();
    }
    assert!(rest.contains("second"));
    server.join().unwrap();
}

#[test]
fn recording_proxy_rewrites_locations_that_name_the_upstream() {
    let (upstream, server) = fake_upstream(|stream, own| {
        write!(
            stream,
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{own}/v2/next?x=1\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
    });
    let proxy = Proxy::start(&upstream);
    let (_, head) = raw_exchange(&proxy.host_port(), "GET", "/v2/");
    assert_eq!(
        head.header("location"),
        Some(format!("http://{}/v2/next?x=1", proxy.host_port()).as_str())
    );
    server.join().unwrap();
}

// ---------------------------------------------------------------- fault proxy

#[test]
fn fault_status_answers_with_a_registry_error_body() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new().on_request(1, Action::Status(503, Some(2))),
    );
    let (mut reader, head) = raw_exchange(&proxy.host_port(), "GET", "/v2/app/manifests/dev");
    assert_eq!(head.status().unwrap(), 503);
    assert_eq!(head.header("retry-after"), Some("2"));
    let body: serde_json::Value =
        serde_json::from_slice(&body_of(&mut reader, "GET", &head)).unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    assert_eq!(proxy.request_lines(), vec!["GET /v2/app/manifests/dev 503"]);
}

#[test]
fn fault_status_401_carries_a_basic_challenge_and_404_a_manifest_code() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new()
            .on_request(1, Action::Status(401, None))
            .on_request(2, Action::Status(404, None)),
    );
    let (_, head) = raw_exchange(&proxy.host_port(), "GET", "/v2/");
    assert_eq!(head.status().unwrap(), 401);
    assert!(
        head.header("www-authenticate")
            .unwrap()
            .starts_with("Basic ")
    );
    assert!(head.header("retry-after").is_none());
    let (mut reader, head) = raw_exchange(&proxy.host_port(), "GET", "/v2/a/manifests/t");
    let body: serde_json::Value =
        serde_json::from_slice(&body_of(&mut reader, "GET", &head)).unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_UNKNOWN");
}

#[test]
fn fault_numbers_requests_and_then_forwards() {
    // The upstream is dead, so a forwarded request comes back as the proxy's own 502.
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new()
            .on_requests(1..=2, Action::Status(500, None))
            .when(|r| r.method == "HEAD", 2..=2, Action::Status(429, Some(1))),
    );
    let host = proxy.host_port();
    let statuses: Vec<u16> = [("GET", "/a"), ("HEAD", "/b"), ("HEAD", "/c"), ("GET", "/d")]
        .iter()
        .map(|(m, p)| raw_exchange(&host, m, p).1.status().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 500, 429, 502]);
}

#[test]
fn fault_reset_is_seen_as_connection_reset() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new().on_request(1, Action::Reset),
    );
    let mut stream = connect(&proxy.host_port());
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    let err = stream.read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert_eq!(proxy.requests()[0].status, 0);
}

#[test]
fn fault_unexpected_eof_closes_inside_the_body() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new().on_request(1, Action::UnexpectedEof),
    );
    let (mut reader, head) = raw_exchange(&proxy.host_port(), "GET", "/v2/a/blobs/sha256:0");
    assert_eq!(head.status().unwrap(), 200);
    assert_eq!(head.header("content-length"), Some("1024"));
    let framing = wire::response_framing("GET", 200, &head).unwrap();
    let err = wire::read_body(&mut reader, framing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn fault_stall_answers_nothing_then_closes() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new().on_request(1, Action::Stall(Duration::from_millis(300))),
    );
    let mut stream = connect(&proxy.host_port());
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 64];
    let err = stream.read(&mut buf).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err:?}"
    );
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    assert_eq!(
        stream.read(&mut buf).unwrap(),
        0,
        "a stalled request gets no bytes"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn fault_redirect_loop_never_ends_and_hops_are_not_numbered() {
    let proxy = Proxy::with_script(
        &dead_upstream(),
        FaultScript::new()
            .on_request(1, Action::RedirectLoop)
            .on_request(2, Action::Status(503, None)),
    );
    let host = proxy.host_port();
    let mut path = "/v2/app/manifests/dev".to_string();
    let mut seen = Vec::new();
    for _ in 0..12 {
        let (_, head) = raw_exchange(&host, "GET", &path);
        assert_eq!(head.status().unwrap(), 302);
        path = head.header("location").unwrap().to_string();
        assert!(path.starts_with("/v2/app/manifests/dev?"), "{path}");
        assert!(!seen.contains(&path), "the query must change on every hop");
        seen.push(path.clone());
    }
    // The next fresh request is number 2.
    assert_eq!(raw_exchange(&host, "GET", "/v2/").1.status().unwrap(), 503);
    assert_eq!(proxy.requests().len(), 13);
}

// ---------------------------------------------------------------- TLS listener

fn tls_client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

fn tls_get_v2(
    addr: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<String> {
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let connection = rustls::ClientConnection::new(config, name).unwrap();
    let tcp = connect(addr);
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    tls.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut reader = BufReader::new(tls);
    let head = wire::read_head(&mut reader)?.expect("a response");
    let framing = wire::response_framing("GET", head.status()?, &head)?;
    let body = wire::read_body(&mut reader, framing)?;
    Ok(format!(
        "{} {}",
        head.start_line,
        String::from_utf8_lossy(&body)
    ))
}

fn wait_for(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn tls_listener_presents_its_self_signed_certificate() {
    let listener = TlsListener::start();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(listener.cert_der().clone()).unwrap();
    let answer = tls_get_v2(&listener.host_port(), "localhost", tls_client_config(roots)).unwrap();
    assert_eq!(answer, "HTTP/1.1 200 OK {}");
    assert_eq!(listener.stats().requests, vec!["GET /v2/"]);
}

#[test]
fn tls_listener_is_refused_by_a_client_that_does_not_trust_it() {
    let listener = TlsListener::start();
    let err = tls_get_v2(
        &listener.host_port(),
        "localhost",
        tls_client_config(rustls::RootCertStore::empty()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    assert!(wait_for(|| listener.stats().handshakes_failed == 1));
    assert!(listener.stats().requests.is_empty());
}

#[test]
fn tls_listener_counts_plain_http_on_its_port() {
    let listener = TlsListener::start();
    let response = http::get(&format!("{}/v2/", listener.host_port()), &[]).unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(listener.stats().plaintext_requests, 1);
}

#[test]
fn tls_listener_is_reachable_by_the_hostname_when_it_resolves_to_loopback() {
    let listener = TlsListener::start();
    let Some(external) = listener.external_host_port() else {
        println!("skipped: no hostname here resolves only to loopback");
        return;
    };
    let (name, _) = external.rsplit_once(':').unwrap();
    assert!(!name.eq_ignore_ascii_case("localhost") && name.parse::<std::net::IpAddr>().is_err());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(listener.cert_der().clone()).unwrap();
    let answer = tls_get_v2(&external, name, tls_client_config(roots)).unwrap();
    assert_eq!(answer, "HTTP/1.1 200 OK {}");
}

// ---------------------------------------------------------------- ksail runner and fakes

#[test]
fn test_env_isolates_and_runs_ksail() {
    let env = TestEnv::new();
    for (dir, name) in [
        (env.home(), "home"),
        (env.xdg_config(), "xdg-config"),
        (env.xdg_cache(), "xdg-cache"),
        (env.docker_config(), "docker-config"),
        (env.work(), "work"),
        (env.bin(), "bin"),
    ] {
        assert_eq!(dir, env.root().join(name));
        assert!(dir.is_dir(), "{name}");
    }
    let output = env.ksail(["--version"]).output().unwrap();
    assert!(output.status.success(), "{}", support::stderr_text(&output));
    assert!(support::stdout_text(&output).contains("ksail"));
}

#[test]
fn tree_hash_notices_every_kind_of_change() {
    let env = TestEnv::new();
    env.write("k8s/a.yaml", "a: 1\n");
    env.symlink("a.yaml", "k8s/link.yaml");
    let before = env.tree_hash();
    assert_eq!(before, env.tree_hash());
    assert!(before.contains_key("work/k8s/a.yaml"));

    env.write("k8s/a.yaml", "a: 2\n");
    assert_ne!(before, env.tree_hash());
    env.write("k8s/a.yaml", "a: 1\n");
    assert_eq!(before, env.tree_hash());
    env.mkdir("k8s/new");
    assert_ne!(before, env.tree_hash());
}

#[test]
fn fake_credential_helper_answers_get_and_logs_calls() {
    let env = TestEnv::new();
    let helper = env.fake_credential_helper(
        "fake",
        &[
            ("127.0.0.1:5000", Some(("bob", "p'a\"ss"))),
            ("other:1", None),
        ],
    );
    let run = |host: &str| {
        let mut child = Command::new(&helper)
            .arg("get")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(host.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let found = run("127.0.0.1:5000");
    assert!(found.status.success());
    let json: serde_json::Value = serde_json::from_slice(&found.stdout).unwrap();
    assert_eq!(json["ServerURL"], "127.0.0.1:5000");
    assert_eq!(json["Username"], "bob");
    assert_eq!(json["Secret"], "p'a\"ss");

    let missing = run("other:1\n");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stdout).trim(),
        support::fakes::CREDENTIALS_NOT_FOUND
    );

    let calls = env.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["argv"],
        serde_json::json!(["docker-credential-fake", "get"])
    );
    assert_eq!(calls[0]["stdin"], "127.0.0.1:5000");
    assert_eq!(calls[0]["env"]["KUBECONFIG"], serde_json::Value::Null);
    assert_eq!(calls[1]["stdin"], "other:1");
}

#[test]
fn docker_config_is_written_where_docker_config_points() {
    let env = TestEnv::new();
    let path = env.write_docker_config(&serde_json::json!({"credsStore": "fake"}));
    assert_eq!(path, env.docker_config().join("config.json"));
    let read: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(read["credsStore"], "fake");
}

// ---------------------------------------------------------------- output helpers

#[test]
fn timestamp_prefix_matcher() {
    assert!(support::has_timestamp_prefix(
        "2024-01-02T03:04:05Z pushing"
    ));
    assert!(!support::has_timestamp_prefix(
        "2024-01-02T03:04:05Zpushing"
    ));
    assert!(!support::has_timestamp_prefix(
        "2024-01-02 03:04:05Z pushing"
    ));
    assert!(!support::has_timestamp_prefix("24-01-02T03:04:05Z x"));
    assert!(!support::has_timestamp_prefix("2024-01-02T03:04:05"));
}

fn fake_output(stderr: &str) -> std::process::Output {
    let status = Command::new("true").status().unwrap();
    std::process::Output {
        status,
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
    }
}

#[test]
fn error_line_assertion() {
    support::assert_error_line(
        &fake_output("progress\nerror: it broke; fix it\n"),
        "it broke",
    );
    let two = std::panic::catch_unwind(|| {
        support::assert_error_line(&fake_output("error: one\nerror: two\n"), "two")
    });
    assert!(two.is_err());
    let not_last = std::panic::catch_unwind(|| {
        support::assert_error_line(&fake_output("error: one\nmore\n"), "one")
    });
    assert!(not_last.is_err());
}

#[test]
fn test_name_macro_names_the_test() {
    assert_eq!(test_name!(), "test_name_macro_names_the_test");
}

/// The schema check every test environment runs catches a document that breaks its contract.
#[test]
fn the_schema_check_refuses_a_document_that_breaks_its_contract() {
    use support::schemas::check_document;
    let valid = r#"{"command":"cluster list","status":"succeeded","exitCode":0,"error":null,"clusters":[]}"#;
    assert_eq!(check_document(valid), Ok(()));
    for bad in [
        r#"{"command":"cluster list","status":"succeeded","exitCode":0,"error":null,"clusters":[],"extra":1}"#,
        r#"{"command":"cluster list","status":"done","exitCode":0,"error":null}"#,
        r#"{"command":"cluster list","status":"succeeded","error":null}"#,
        r#"{"command":"workload reconcile","status":"succeeded","exitCode":0,"error":null,"objects":[{"kind":"Kustomization"}]}"#,
        r#"{"command":"no such command","status":"succeeded","exitCode":0,"error":null}"#,
        "not json",
    ] {
        assert!(check_document(bad).is_err(), "{bad}");
    }
}
