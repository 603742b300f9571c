//! An HTTP/1.1 proxy on `127.0.0.1:<free port>` in front of the registry or the fake API server.
//!
//! It records every request (method, path with query, status) in arrival order, and carries out a
//! [`FaultScript`]. Used as a [`RecordingProxy`] by the push-protocol tests and as a
//! [`FaultProxy`] by the retry tests; it is the same machine with different scripts.
//!
//! Each client connection gets a thread and stays keep-alive as long as the client wants. Each
//! forwarded request gets a fresh upstream connection (`Connection: close`), so a stale upstream
//! connection can never turn into a spurious failure. Bodies stream through; nothing is buffered
//! whole, so 20 MB+ uploads pass unchanged.

use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::faults::{self, Action, FaultScript, RequestInfo};
use super::wire::{self, Framing, Head};

const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer than any watch the fake API server holds open; only bounds how long a thread lingers
/// on a wedged upstream (the ksail child has its own 60 s timeout).
const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Larger than the default 8 KiB so that 20 MB uploads move in fewer system calls.
const BUFFER_BYTES: usize = 64 * 1024;
const STALL_SLICE: Duration = Duration::from_millis(20);
/// What an [`Action::UnexpectedEof`] response promises and what it delivers.
const EOF_PROMISED: usize = 1024;
const EOF_SENT: usize = 16;

pub type RecordingProxy = Proxy;
pub type FaultProxy = Proxy;

/// One request seen by the proxy. `status` is the status the client received, or `0` when it
/// received none (reset, stall, dropped connection, or the request is still in flight).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub status: u16,
}

impl Recorded {
    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }
}

impl std::fmt::Display for Recorded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)
    }
}

struct Shared {
    upstream: SocketAddr,
    upstream_host_port: String,
    own_host_port: String,
    records: Mutex<Vec<(u64, Recorded)>>,
    next_seq: AtomicU64,
    script: Mutex<FaultScript>,
    stopping: AtomicBool,
}

/// Sleep `duration`, or less when the proxy stops.
fn hold(shared: &Shared, duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end && !shared.stopping.load(Ordering::SeqCst) {
        std::thread::sleep(STALL_SLICE.min(end.saturating_duration_since(Instant::now())));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take every later assertion down with it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn record_arrival(&self, request: &RequestInfo) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst);
        lock(&self.records).push((
            seq,
            Recorded {
                method: request.method.clone(),
                path: request.path.clone(),
                status: 0,
            },
        ));
        seq
    }

    /// Called before the response reaches the client, so that a test reading the log after the
    /// client finished always sees the final status.
    fn record_status(&self, seq: u64, status: u16) {
        let mut records = lock(&self.records);
        if let Some((_, r)) = records.iter_mut().rev().find(|(s, _)| *s == seq) {
            r.status = status;
        }
    }
}

/// A running proxy. Dropping it stops accepting connections.
pub struct Proxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept_thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A recording proxy that forwards everything to `upstream` (`host:port` or `http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        Proxy::with_script(upstream, FaultScript::new())
    }

    /// A proxy that carries out `script` (see [`FaultScript`]).
    pub fn with_script(upstream: &str, script: FaultScript) -> Proxy {
        let upstream_host_port = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let upstream_addr = upstream_host_port
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| panic!("proxy upstream {upstream} does not resolve"));
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind a loopback port for the proxy");
        let addr = listener
            .local_addr()
            .expect("proxy listener has an address");
        let shared = Arc::new(Shared {
            upstream: upstream_addr,
            upstream_host_port,
            own_host_port: addr.to_string(),
            records: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(0),
            script: Mutex::new(script),
            stopping: AtomicBool::new(false),
        });
        let accept_shared = Arc::clone(&shared);
        let accept_thread = std::thread::Builder::new()
            .name(format!("proxy-accept-{}", addr.port()))
            .spawn(move || accept_loop(listener, accept_shared))
            .expect("spawn the proxy accept thread");
        Proxy {
            shared,
            addr,
            accept_thread: Some(accept_thread),
        }
    }

    /// `127.0.0.1:PORT` of the proxy: give this to ksail instead of the upstream's.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.records)
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Requests as `METHOD PATH STATUS` lines, handy in assertion messages.
    pub fn request_lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::to_string).collect()
    }

    /// Forgets the recorded requests (the script and its counters are kept).
    pub fn clear(&self) {
        lock(&self.shared.records).clear();
    }

    /// Replaces the script; request numbers and match counts start again from 1.
    pub fn set_script(&self, script: FaultScript) {
        *lock(&self.shared.script) = script;
    }

    /// Resets (without forwarding) every request that matches `predicate` from now on.
    pub fn fail_when(&self, predicate: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static) {
        self.fail_after(0, predicate);
    }

    /// Forwards the first `n` requests that match `predicate`, then resets every later match
    /// without forwarding it.
    pub fn fail_after(
        &self,
        n: usize,
        predicate: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static,
    ) {
        self.set_script(FaultScript::new().when(predicate, n + 1.., Action::Reset));
    }

    /// Back to forwarding everything.
    pub fn stop_failing(&self) {
        self.set_script(FaultScript::new());
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that the thread sees the flag and ends.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.accept_thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let conn_shared = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || serve_connection(stream, &conn_shared));
        if spawned.is_err() {
            // Out of threads: the dropped stream closes, which the client sees as a failure.
            continue;
        }
    }
}

/// What happens to the client connection after one exchange.
enum Next {
    KeepAlive,
    Close,
    Reset,
}

fn serve_connection(client: TcpStream, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let Ok(writer) = client.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, client);
    loop {
        let head = match wire::read_head(&mut reader) {
            Ok(Some(head)) => head,
            _ => return,
        };
        let Ok((method, path, _version)) = head.request_parts() else {
            return;
        };
        let request = RequestInfo {
            method,
            path,
            headers: head.headers.clone(),
        };
        let action = lock(&shared.script).decide(&request);
        let seq = shared.record_arrival(&request);
        let set_status = |status| shared.record_status(seq, status);
        let exchange = Exchange {
            shared,
            head: &head,
            request: &request,
            reader: &mut reader,
            writer: &writer,
            set_status: &set_status,
        };
        let next = perform(action, exchange).unwrap_or(Next::Close);
        match next {
            Next::KeepAlive => continue,
            Next::Close => {
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Next::Reset => {
                // SO_LINGER 0 turns close() into an RST, which the client reports as ECONNRESET.
                let _ = socket2::SockRef::from(&writer).set_linger(Some(Duration::ZERO));
                return;
            }
        }
    }
}

/// One request on a client connection, as the proxy handles it.
struct Exchange<'a> {
    shared: &'a Shared,
    head: &'a Head,
    request: &'a RequestInfo,
    reader: &'a mut BufReader<TcpStream>,
    writer: &'a TcpStream,
    set_status: &'a dyn Fn(u16),
}

fn perform(action: Action, ex: Exchange<'_>) -> io::Result<Next> {
    // The responses the proxy makes up itself: status, headers and body.
    let (status, headers, body) = match action {
        Action::Forward => return forward(ex),
        Action::Reset => return Ok(Next::Reset),
        Action::Stall(duration) => {
            hold(ex.shared, duration);
            return Ok(Next::Close);
        }
        Action::Delay(duration) => {
            hold(ex.shared, duration);
            return forward(ex);
        }
        Action::UnexpectedEof => {
            wire::discard_body(ex.reader, wire::request_framing(ex.head)?)?;
            (ex.set_status)(200);
            let mut out = BufWriter::new(ex.writer);
            let mut response = Head::new("HTTP/1.1 200 OK");
            response.set_header("Content-Type", "application/octet-stream");
            response.set_header("Content-Length", EOF_PROMISED.to_string());
            out.write_all(&response.to_bytes())?;
            out.write_all(&[b'x'; EOF_SENT])?;
            out.flush()?;
            // A clean FIN after a short body: the client sees an unexpected end of the body.
            return Ok(Next::Close);
        }
        Action::Status(status, retry_after) => {
            let mut headers = vec![
                (
                    "Content-Type".to_string(),
                    "application/json; charset=utf-8".to_string(),
                ),
                (
                    "Docker-Distribution-Api-Version".to_string(),
                    "registry/2.0".to_string(),
                ),
            ];
            if let Some(secs) = retry_after {
                headers.push(("Retry-After".to_string(), secs.to_string()));
            }
            if status == 401 {
                headers.push((
                    "WWW-Authenticate".to_string(),
                    "Basic realm=\"ksail-test\"".to_string(),
                ));
            }
            let body = faults::registry_error_body(status, &ex.request.path);
            (status, headers, body)
        }
        Action::Respond {
            status,
            headers,
            body,
        } => (status, headers, body),
        Action::RedirectLoop => {
            let location = faults::next_redirect_target(&ex.request.path);
            (302, vec![("Location".to_string(), location)], Vec::new())
        }
    };
    wire::discard_body(ex.reader, wire::request_framing(ex.head)?)?;
    (ex.set_status)(status);
    let close = ex.head.wants_close();
    respond(ex.writer, ex.request, status, headers, &body, close)?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}

/// Writes a complete response that the proxy makes up itself.
fn respond(
    writer: &TcpStream,
    request: &RequestInfo,
    status: u16,
    headers: Vec<(String, String)>,
    body: &[u8],
    close: bool,
) -> io::Result<()> {
    let mut response = Head::new(format!("HTTP/1.1 {status} {}", wire::reason(status)));
    response.headers = headers;
    response.set_header("Content-Length", body.len().to_string());
    if close {
        response.set_header("Connection", "close");
    }
    let mut out = BufWriter::new(writer);
    out.write_all(&response.to_bytes())?;
    if !request.method.eq_ignore_ascii_case("HEAD") {
        out.write_all(body)?;
    }
    out.flush()
}

fn forward(ex: Exchange<'_>) -> io::Result<Next> {
    let request_framing = wire::request_framing(ex.head)?;
    let mut upstream_head = ex.head.clone();
    // The proxy answers `Expect: 100-continue` itself, so that the body flows straight through
    // instead of waiting for an interim response from the upstream.
    if upstream_head.header("expect").is_some() {
        upstream_head.remove_header("Expect");
        let mut out = BufWriter::new(ex.writer);
        out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        out.flush()?;
    }
    upstream_head.remove_header("Keep-Alive");
    upstream_head.remove_header("Proxy-Connection");
    upstream_head.set_header("Connection", "close");
    // `Host` stays as the client sent it (the proxy's address), so absolute URLs that the
    // upstream builds from it already point back at the proxy.

    let upstream = match TcpStream::connect_timeout(&ex.shared.upstream, UPSTREAM_CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(e) => {
            wire::discard_body(ex.reader, request_framing)?;
            (ex.set_status)(502);
            let body = format!(
                "proxy: upstream {} unreachable: {e}",
                ex.shared.upstream_host_port
            );
            let headers = vec![("Content-Type".to_string(), "text/plain".to_string())];
            respond(
                ex.writer,
                ex.request,
                502,
                headers,
                body.as_bytes(),
                ex.head.wants_close(),
            )?;
            return Ok(if ex.head.wants_close() {
                Next::Close
            } else {
                Next::KeepAlive
            });
        }
    };
    upstream.set_nodelay(true)?;
    upstream.set_read_timeout(Some(UPSTREAM_READ_TIMEOUT))?;
    {
        let mut up = BufWriter::new(&upstream);
        up.write_all(&upstream_head.to_bytes())?;
        wire::copy_body(ex.reader, &mut up, request_framing)?;
    }

    let mut up_reader = BufReader::with_capacity(BUFFER_BYTES, &upstream);
    let (response, status) =
        wire::read_final_head(&mut up_reader, "upstream closed without a response")?;
    let response_framing = wire::response_framing(&ex.request.method, status, &response)?;
    let close = ex.head.wants_close() || response_framing == Framing::UntilClose;

    let mut relayed = response.clone();
    relayed.remove_header("Connection");
    relayed.remove_header("Keep-Alive");
    if close {
        relayed.set_header("Connection", "close");
    }
    if let Some(location) = response.header("location") {
        let upstream_prefix = format!("http://{}", ex.shared.upstream_host_port);
        if let Some(rest) = location.strip_prefix(&upstream_prefix) {
            relayed.set_header(
                "Location",
                format!("http://{}{rest}", ex.shared.own_host_port),
            );
        }
    }
    (ex.set_status)(status);
    let mut out = BufWriter::new(ex.writer);
    out.write_all(&relayed.to_bytes())?;
    wire::copy_body(&mut up_reader, &mut out, response_framing)?;
    Ok(if close { Next::Close } else { Next::KeepAlive })
}
