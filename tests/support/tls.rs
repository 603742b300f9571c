//! An HTTPS listener with a self-signed certificate that answers `/v2/` like a registry.
//!
//! It exists to prove that ksail refuses an untrusted certificate and never falls back to plain
//! HTTP (artifact.md "Transport"). It counts what it sees, including plain-HTTP requests that
//! arrive on its TLS port, so a test can assert that no fallback happened.
//!
//! **Addressing it by a non-loopback-looking name.** ksail decides "plain HTTP" from the host
//! *name* (resolution.md "Local": `localhost`, `*.localhost`, `127.0.0.0/8`, `[::1]`), not from
//! the address it resolves to. The machine's own hostname (`/proc/sys/kernel/hostname`, e.g.
//! `vm`) is listed in `/etc/hosts` with a loopback address (`127.0.0.1`, or `127.0.1.1` on
//! Debian). Such a name makes ksail choose HTTPS while the traffic stays on loopback, as the
//! test rules require. The listener binds every address the name resolves to, on one port, and
//! [`TlsListener::external_host_port`] returns `<hostname>:<port>`. If the hostname is missing,
//! looks local to ksail anyway, or resolves to anything that is not loopback, there is no such
//! name and `external_host_port` returns `None`: a test must then skip that case and say so.

use std::io::{self, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::wire::{self, Head};

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// First byte of a TLS handshake record; anything else on this port is not TLS.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the listener has seen so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// TCP connections accepted.
    pub connections: usize,
    /// Connections that started with plain HTTP instead of a TLS ClientHello.
    pub plaintext_requests: usize,
    /// Handshakes the client (or the server) aborted, e.g. because the certificate is untrusted.
    pub handshakes_failed: usize,
    pub handshakes_completed: usize,
    /// `METHOD PATH` of every request answered over TLS.
    pub requests: Vec<String>,
}

struct Shared {
    stopping: AtomicBool,
    stats: Mutex<TlsStats>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, TlsStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct TlsListener {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    external_name: Option<String>,
    cert_der: CertificateDer<'static>,
    threads: Vec<JoinHandle<()>>,
}

impl TlsListener {
    pub fn start() -> TlsListener {
        let name = non_loopback_looking_name();
        let (listeners, external_name) = match name
            .as_ref()
            .and_then(|(n, ips)| bind_all(ips).map(|listeners| (listeners, n.clone())))
        {
            Some((listeners, name)) => (listeners, Some(name)),
            None => (
                bind_all(&[IpAddr::V4(Ipv4Addr::LOCALHOST)])
                    .expect("bind a loopback port for the TLS listener"),
                None,
            ),
        };
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("TLS listener has an address"))
            .collect();

        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        names.extend(external_name.clone());
        let certified =
            rcgen::generate_simple_self_signed(names).expect("generate a self-signed certificate");
        let cert_der = certified.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            certified.signing_key.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .expect("the generated certificate and key fit together");
        let config = Arc::new(config);

        let shared = Arc::new(Shared {
            stopping: AtomicBool::new(false),
            stats: Mutex::new(TlsStats::default()),
        });
        let threads = listeners
            .into_iter()
            .map(|listener| {
                let shared = Arc::clone(&shared);
                let config = Arc::clone(&config);
                std::thread::Builder::new()
                    .name("tls-accept".into())
                    .spawn(move || accept_loop(listener, config, shared))
                    .expect("spawn the TLS accept thread")
            })
            .collect();
        TlsListener {
            shared,
            addrs,
            external_name,
            cert_der,
            threads,
        }
    }

    /// `IP:PORT` with a loopback IP literal. ksail treats this as local and would use HTTP.
    pub fn host_port(&self) -> String {
        self.addrs[0].to_string()
    }

    pub fn port(&self) -> u16 {
        self.addrs[0].port()
    }

    /// `<hostname>:<port>`: a name that ksail must treat as remote (HTTPS) but that resolves to
    /// loopback. `None` when this machine has no such name (see the module documentation).
    pub fn external_host_port(&self) -> Option<String> {
        self.external_name
            .as_ref()
            .map(|name| format!("{name}:{}", self.port()))
    }

    /// The certificate the listener presents (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    pub fn stats(&self) -> TlsStats {
        self.shared.stats().clone()
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        for addr in &self.addrs {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The machine's hostname and its addresses, if ksail would treat the name as remote while every
/// address it resolves to is loopback.
pub fn non_loopback_looking_name() -> Option<(String, Vec<IpAddr>)> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?
        .trim()
        .to_ascii_lowercase();
    let looks_local = name.is_empty()
        || name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<IpAddr>().is_ok();
    if looks_local {
        return None;
    }
    let mut ips: Vec<IpAddr> = (name.as_str(), 0)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    ips.sort();
    ips.dedup();
    if ips.is_empty() || !ips.iter().all(IpAddr::is_loopback) {
        return None;
    }
    Some((name, ips))
}

/// Binds every address on one shared port, or nothing.
fn bind_all(ips: &[IpAddr]) -> Option<Vec<TcpListener>> {
    let (first, rest) = ips.split_first()?;
    let first_listener = TcpListener::bind(SocketAddr::new(*first, 0)).ok()?;
    let port = first_listener.local_addr().ok()?.port();
    let mut listeners = vec![first_listener];
    for ip in rest {
        listeners.push(TcpListener::bind(SocketAddr::new(*ip, port)).ok()?);
    }
    Some(listeners)
}

fn accept_loop(listener: TcpListener, config: Arc<rustls::ServerConfig>, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let config = Arc::clone(&config);
        let shared = Arc::clone(&shared);
        let _ = std::thread::Builder::new()
            .name("tls-conn".into())
            .spawn(move || {
                let _ = serve(stream, config, &shared);
            });
    }
}

fn serve(stream: TcpStream, config: Arc<rustls::ServerConfig>, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    shared.stats().connections += 1;
    let mut first = [0u8; 1];
    if stream.peek(&mut first)? == 0 {
        return Ok(());
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        shared.stats().plaintext_requests += 1;
        // Read the request first: closing with unread bytes would reset the connection and
        // hide the answer from the client.
        let mut reader = BufReader::new(&stream);
        if let Some(head) = wire::read_head(&mut reader)? {
            wire::discard_body(&mut reader, wire::request_framing(&head)?)?;
        }
        // What Go's net/http answers on a TLS port, so the client gets a clear refusal.
        (&stream).write_all(
            b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
        )?;
        return Ok(());
    }

    let connection =
        rustls::ServerConnection::new(config).map_err(|e| io::Error::other(e.to_string()))?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    while tls.conn.is_handshaking() {
        match tls.conn.complete_io(&mut tls.sock) {
            Ok((0, 0)) | Err(_) => {
                shared.stats().handshakes_failed += 1;
                return Ok(());
            }
            Ok(_) => {}
        }
    }
    shared.stats().handshakes_completed += 1;

    let mut reader = BufReader::new(tls);
    while let Some(head) = wire::read_head(&mut reader)? {
        let (method, path, _) = head.request_parts()?;
        wire::discard_body(&mut reader, wire::request_framing(&head)?)?;
        shared.stats().requests.push(format!("{method} {path}"));
        let (status, body) = if path == "/v2/" || path == "/v2" {
            (200, b"{}".to_vec())
        } else {
            (404, super::faults::registry_error_body(404, &path))
        };
        let mut response = Head::new(format!("HTTP/1.1 {status} {}", wire::reason(status)));
        response.set_header("Content-Type", "application/json; charset=utf-8");
        response.set_header("Docker-Distribution-Api-Version", "registry/2.0");
        response.set_header("Content-Length", body.len().to_string());
        let stream = reader.get_mut();
        stream.write_all(&response.to_bytes())?;
        if !method.eq_ignore_ascii_case("HEAD") {
            stream.write_all(&body)?;
        }
        stream.flush()?;
        if head.wants_close() {
            break;
        }
    }
    let stream = reader.get_mut();
    stream.conn.send_close_notify();
    let _ = stream.flush();
    Ok(())
}
