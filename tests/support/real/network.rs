//! The cluster network's name resolution, for components that run on the host.
//!
//! In a kind or k3d cluster, Flux and Argo CD reach the local registry by its container name,
//! `<cluster>-local-registry:5000` — the in-cluster URL `cluster create` writes into the
//! FluxInstance and the Application. The real tier's controllers are host processes, so the tier
//! gives them `HTTP_PROXY` pointing here: a forward proxy that sends a request for a known
//! `host:port` to the loopback address it stands for (the current test's registry), accepts what
//! is posted to an in-cluster service that only receives (notification-controller's event
//! receiver, which flux-operator posts to and otherwise retries for 15 s per event), and answers
//! 502 for any other host. Loopback addresses bypass it (Go never proxies them), so an object that
//! names `127.0.0.1:PORT` directly still works.

use std::collections::HashMap;
use std::io::{self, BufReader, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::wire::{self, Framing, Head};

const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Where requests for one in-cluster `host:port` go.
#[derive(Debug, Clone)]
enum Route {
    /// To this `127.0.0.1:PORT`.
    Forward(String),
    /// Answered `202 Accepted` here (a receiver whose answer nobody reads).
    Accept,
}

/// The proxy: `host:port` → `127.0.0.1:PORT`, changed by each test.
pub struct ClusterNetwork {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
}

/// flux-operator's event receiver (`--events-addr` of the Flux it installs).
pub const NOTIFICATION_CONTROLLER: &str =
    "notification-controller.flux-system.svc.cluster.local.:80";

impl ClusterNetwork {
    pub fn start() -> io::Result<ClusterNetwork> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let shared = Arc::clone(&routes);
        std::thread::Builder::new()
            .name("real-tier-network".into())
            .spawn(move || {
                for client in listener.incoming().flatten() {
                    let routes = Arc::clone(&shared);
                    std::thread::spawn(move || {
                        let _ = serve(client, &routes);
                    });
                }
            })?;
        Ok(ClusterNetwork { port, routes })
    }

    /// `http://127.0.0.1:PORT`, the value of the components' `HTTP_PROXY`.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends requests for `name` (`kind-local-registry:5000`) to `target` (`127.0.0.1:PORT`).
    pub fn route(&self, name: &str, target: &str) {
        self.routes
            .lock()
            .expect("the routes lock is never poisoned")
            .insert(name.to_string(), Route::Forward(target.to_string()));
    }

    /// Answers every request for `name` with `202 Accepted`.
    pub fn accept(&self, name: &str) {
        self.routes
            .lock()
            .expect("the routes lock is never poisoned")
            .insert(name.to_string(), Route::Accept);
    }

    /// Forgets every route but the receivers (between tests).
    pub fn clear(&self) {
        self.routes
            .lock()
            .expect("the routes lock is never poisoned")
            .retain(|_, route| matches!(route, Route::Accept));
    }
}

/// Serves one client connection: each request (absolute-form, as a proxy receives it) goes to
/// its route on a fresh upstream connection, in origin-form.
fn serve(client: TcpStream, routes: &Mutex<HashMap<String, Route>>) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut writer = client;
    while let Some(mut head) = wire::read_head(&mut reader)? {
        let (method, target, version) = head.request_parts()?;
        let Some((authority, path)) = split_absolute(&target) else {
            return reply(
                &mut writer,
                400,
                "a forward proxy needs an absolute http:// URL",
            );
        };
        let route = routes
            .lock()
            .expect("the routes lock is never poisoned")
            .get(&authority)
            .cloned();
        let framing = wire::request_framing(&head)?;
        let upstream_addr = match route {
            Some(Route::Forward(addr)) => addr,
            Some(Route::Accept) => {
                wire::discard_body(&mut reader, framing)?;
                return reply(&mut writer, 202, "accepted");
            }
            None => {
                return reply(
                    &mut writer,
                    502,
                    &format!("{authority} is not on the real tier's cluster network"),
                );
            }
        };
        let Ok(upstream) = TcpStream::connect(&upstream_addr) else {
            return reply(&mut writer, 502, &format!("{upstream_addr} refused"));
        };
        upstream.set_read_timeout(Some(IO_TIMEOUT))?;
        let client_close = head.wants_close();
        head.start_line = format!("{method} {path} {version}");
        head.remove_header("proxy-connection");
        head.set_header("Connection", "close");
        let mut up_writer = upstream.try_clone()?;
        head.write_to(&mut up_writer)?;
        wire::copy_body(&mut reader, &mut up_writer, framing)?;
        up_writer.flush()?;

        let mut up_reader = BufReader::new(upstream);
        let Some(mut response) = wire::read_head(&mut up_reader)? else {
            return reply(&mut writer, 502, "the upstream closed without answering");
        };
        let status = response.status()?;
        let response_framing = wire::response_framing(&method, status, &response)?;
        let until_close = response_framing == Framing::UntilClose;
        response.remove_header("connection");
        if client_close || until_close {
            response.set_header("Connection", "close");
        }
        response.write_to(&mut writer)?;
        wire::copy_body(&mut up_reader, &mut writer, response_framing)?;
        writer.flush()?;
        if client_close || until_close {
            break;
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
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

fn reply(writer: &mut TcpStream, status: u16, message: &str) -> io::Result<()> {
    let body = format!("{message}\n");
    let mut head = Head::new(format!("HTTP/1.1 {status} {}", wire::reason(status)));
    head.set_header("Content-Type", "text/plain");
    head.set_header("Content-Length", body.len().to_string());
    head.set_header("Connection", "close");
    head.write_to(writer)?;
    writer.write_all(body.as_bytes())?;
    writer.flush()?;
    let _ = writer.shutdown(Shutdown::Both);
    Ok(())
}
