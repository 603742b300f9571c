//! The cluster network's name resolution, for components that run on the host.
//!
//! In a kind or k3d cluster, Flux and Argo CD reach the local registry by its container name,
//! `<cluster>-local-registry:5000` — the in-cluster URL `cluster create` writes into the
//! FluxInstance and the Application. The real tier's controllers are host processes, so the tier
//! gives them `HTTP_PROXY` and `HTTPS_PROXY` pointing here: a forward proxy that
//!
//! - sends a request for a known `host:port` to the loopback address it stands for (the current
//!   test's registry);
//! - accepts what is posted to an in-cluster service that only receives (notification-controller's
//!   event receiver, which flux-operator posts to and otherwise retries for 15 s per event);
//! - stands in for a public registry over TLS (`CONNECT ghcr.io:443`, answered with the tier's
//!   certificate for it, which the components trust through `SSL_CERT_FILE`), so that what
//!   `cluster create` makes flux-operator pull from ghcr.io comes from a local registry;
//! - and answers 502 for any other host.
//!
//! Loopback addresses bypass it (Go never proxies them), so an object that names
//! `127.0.0.1:PORT` directly still works.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::support::wire::{self, Framing, Head};

const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// flux-operator's event receiver (the `--events-addr` of the Flux it installs).
pub const NOTIFICATION_CONTROLLER: &str =
    "notification-controller.flux-system.svc.cluster.local.:80";

/// Where requests for one `host:port` go.
#[derive(Debug, Clone)]
enum Route {
    /// To this `127.0.0.1:PORT`, over plain HTTP.
    Forward(String),
    /// Answered `202 Accepted` here (a receiver whose answer nobody reads).
    Accept,
    /// `CONNECT` is answered, TLS terminated with the tier's certificate, and the requests inside
    /// go to this `127.0.0.1:PORT` over plain HTTP.
    Tls(String),
}

type Routes = Arc<Mutex<HashMap<String, Route>>>;

/// The proxy, its routes changed by each test.
pub struct ClusterNetwork {
    port: u16,
    routes: Routes,
}

impl ClusterNetwork {
    /// Starts the proxy; `tls` is the certificate chain and PKCS#8 key it presents for the
    /// public hosts it stands in for.
    pub fn start(tls_cert_der: Vec<u8>, tls_key_der: Vec<u8>) -> io::Result<ClusterNetwork> {
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(tls_cert_der)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(tls_key_der)),
        )
        .map_err(io::Error::other)?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let routes: Routes = Arc::default();
        let shared = Arc::clone(&routes);
        std::thread::Builder::new()
            .name("real-tier-network".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    let routes = Arc::clone(&shared);
                    let config = Arc::clone(&config);
                    std::thread::spawn(move || {
                        let _ = serve(client, &routes, config);
                    });
                }
            })?;
        Ok(ClusterNetwork { port, routes })
    }

    /// `http://127.0.0.1:PORT`, the value of the components' `HTTP_PROXY` and `HTTPS_PROXY`.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set(&self, name: &str, route: Route) {
        self.routes
            .lock()
            .expect("the routes lock is never poisoned")
            .insert(name.to_string(), route);
    }

    /// Sends requests for `name` (`kind-local-registry:5000`) to `target` (`127.0.0.1:PORT`).
    pub fn route(&self, name: &str, target: &str) {
        self.set(name, Route::Forward(target.to_string()));
    }

    /// Answers every request for `name` with `202 Accepted`.
    pub fn accept(&self, name: &str) {
        self.set(name, Route::Accept);
    }

    /// Stands in for `name` (`ghcr.io:443`) over TLS, serving it from `target` (`127.0.0.1:PORT`).
    pub fn tls_route(&self, name: &str, target: &str) {
        self.set(name, Route::Tls(target.to_string()));
    }

    /// Forgets the routes tests set (the tier's own receivers and public hosts stay).
    pub fn clear(&self) {
        self.routes
            .lock()
            .expect("the routes lock is never poisoned")
            .retain(|_, route| !matches!(route, Route::Forward(_)));
    }

    fn lookup(routes: &Mutex<HashMap<String, Route>>, authority: &str) -> Option<Route> {
        routes
            .lock()
            .expect("the routes lock is never poisoned")
            .get(authority)
            .cloned()
    }
}

/// Serves one client connection.
fn serve(
    client: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    tls: Arc<rustls::ServerConfig>,
) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client);
    let Some(head) = wire::read_head(&mut reader)? else {
        return Ok(());
    };
    let (method, target, _) = head.request_parts()?;
    if !method.eq_ignore_ascii_case("CONNECT") {
        return serve_requests(reader, Some(head), |target| {
            let (authority, path) = split_absolute(target)?;
            Some((ClusterNetwork::lookup(routes, &authority), authority, path))
        });
    }
    let authority = target.to_ascii_lowercase();
    let Some(Route::Tls(upstream)) = ClusterNetwork::lookup(routes, &authority) else {
        return reply(
            reader.get_mut(),
            502,
            &format!("{authority} is not on the real tier's cluster network"),
        );
    };
    // The client starts TLS only after this answer, so nothing else is buffered yet.
    let mut tcp = reader.into_inner();
    tcp.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    tcp.flush()?;
    let connection = rustls::ServerConnection::new(tls).map_err(io::Error::other)?;
    let stream = rustls::StreamOwned::new(connection, tcp);
    let route = Route::Forward(upstream);
    serve_requests(BufReader::new(stream), None, |path| {
        path.starts_with('/')
            .then(|| (Some(route.clone()), authority.clone(), path.to_string()))
    })
}

/// Forwards each request on one connection (`first` already read) to its route, on a fresh
/// upstream connection per request. `resolve` maps a request target to (route, authority,
/// origin-form path), or `None` for a target it cannot take.
fn serve_requests<S: Read + Write>(
    mut reader: BufReader<S>,
    mut first: Option<Head>,
    resolve: impl Fn(&str) -> Option<(Option<Route>, String, String)>,
) -> io::Result<()> {
    loop {
        let head = match first.take() {
            Some(head) => head,
            None => match wire::read_head(&mut reader)? {
                Some(head) => head,
                None => return Ok(()),
            },
        };
        let (method, target, version) = head.request_parts()?;
        let framing = wire::request_framing(&head)?;
        let Some((route, authority, path)) = resolve(&target) else {
            return reply(
                reader.get_mut(),
                400,
                "a forward proxy needs an absolute http:// URL",
            );
        };
        let upstream = match route {
            Some(Route::Forward(addr)) => addr,
            Some(Route::Accept) => {
                wire::discard_body(&mut reader, framing)?;
                reply(reader.get_mut(), 202, "accepted")?;
                return Ok(());
            }
            Some(Route::Tls(_)) | None => {
                return reply(
                    reader.get_mut(),
                    502,
                    &format!("{authority} is not on the real tier's cluster network"),
                );
            }
        };
        if !forward(
            &mut reader,
            head,
            &method,
            &path,
            &version,
            framing,
            &upstream,
        )? {
            return Ok(());
        }
    }
}

/// Sends one request upstream and its response back; `false` when the client connection must
/// end after it.
fn forward<S: Read + Write>(
    reader: &mut BufReader<S>,
    mut head: Head,
    method: &str,
    path: &str,
    version: &str,
    framing: Framing,
    upstream: &str,
) -> io::Result<bool> {
    let Ok(upstream) = TcpStream::connect(upstream) else {
        reply(reader.get_mut(), 502, &format!("{upstream} refused"))?;
        return Ok(false);
    };
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    let client_close = head.wants_close();
    head.start_line = format!("{method} {path} {version}");
    head.remove_header("proxy-connection");
    head.set_header("Connection", "close");
    let mut up_writer = upstream.try_clone()?;
    head.write_to(&mut up_writer)?;
    wire::copy_body(reader, &mut up_writer, framing)?;
    up_writer.flush()?;

    let mut up_reader = BufReader::new(upstream);
    let Some(mut response) = wire::read_head(&mut up_reader)? else {
        reply(
            reader.get_mut(),
            502,
            "the upstream closed without answering",
        )?;
        return Ok(false);
    };
    let status = response.status()?;
    let response_framing = wire::response_framing(method, status, &response)?;
    let close = client_close || response_framing == Framing::UntilClose;
    response.remove_header("connection");
    if close {
        response.set_header("Connection", "close");
    }
    let writer = reader.get_mut();
    response.write_to(writer)?;
    wire::copy_body(&mut up_reader, writer, response_framing)?;
    writer.flush()?;
    Ok(!close)
}

/// `http://host:port/path` → (`host:port`, `/path`); the port defaults to 80.
fn split_absolute(target: &str) -> Option<(String, String)> {
    let rest = target.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((authority.to_ascii_lowercase(), path.to_string()))
}

/// A short plain-text answer that ends the connection.
fn reply(writer: &mut impl Write, status: u16, message: &str) -> io::Result<()> {
    let body = format!("{message}\n");
    let mut head = Head::new(format!("HTTP/1.1 {status} {}", wire::reason(status)));
    head.set_header("Content-Type", "text/plain");
    head.set_header("Content-Length", body.len().to_string());
    head.set_header("Connection", "close");
    head.write_to(writer)?;
    writer.write_all(body.as_bytes())?;
    writer.flush()
}
