//! HTTP/1.1 message framing shared by the verification client, the proxies and the TLS listener.
//!
//! Written by hand on purpose: the support code must not share an HTTP stack with ksail, so that a
//! framing bug in ksail's client cannot be hidden by the same bug in the tests.

use std::io::{self, BufRead, Read, Write};

/// Largest request or status line plus headers we accept; a guard against a runaway peer.
const MAX_HEAD_BYTES: usize = 256 * 1024;

/// The first value of the header `name` among `headers`, compared case-insensitively.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads response heads until the final one, skipping interim (1xx) responses such as
/// `100 Continue`; `(head, status)`. A peer that closes first is an `UnexpectedEof` saying
/// `closed`.
pub fn read_final_head(r: &mut impl BufRead, closed: &str) -> io::Result<(Head, u16)> {
    loop {
        let head = read_head(r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, closed.to_string()))?;
        let status = head.status()?;
        if !(100..200).contains(&status) {
            return Ok((head, status));
        }
    }
}

/// A request or response head: the start line and the header fields in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn new(start_line: impl Into<String>) -> Head {
        Head {
            start_line: start_line.into(),
            headers: Vec::new(),
        }
    }

    /// The first value of a header, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name)
    }

    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.remove_header(name);
        self.headers.push((name.to_string(), value.into()));
    }

    /// Request line `METHOD TARGET VERSION` split into its parts.
    pub fn request_parts(&self) -> io::Result<(String, String, String)> {
        let mut parts = self.start_line.split(' ');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(m), Some(t), Some(v), None) if !m.is_empty() && !t.is_empty() => {
                Ok((m.to_string(), t.to_string(), v.to_string()))
            }
            _ => Err(invalid(format!("bad request line {:?}", self.start_line))),
        }
    }

    /// Status code of a status line `HTTP/1.1 200 OK`.
    pub fn status(&self) -> io::Result<u16> {
        self.start_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {:?}", self.start_line)))
    }

    /// Whether the peer asked for the connection to end after this message.
    pub fn wants_close(&self) -> bool {
        let close_token = self
            .header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
        close_token || self.start_line.contains("HTTP/1.0")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str(&self.start_line);
        out.push_str("\r\n");
        for (n, v) in &self.headers {
            out.push_str(n);
            out.push_str(": ");
            out.push_str(v);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.to_bytes())?;
        w.flush()
    }
}

/// Reads one message head. `Ok(None)` means the peer closed cleanly before sending a byte,
/// which is how a keep-alive connection normally ends.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut total = 0usize;
    let mut start_line = None;
    let mut headers = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = r.read_until(b'\n', &mut line)?;
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("message head too large".into()));
        }
        if n == 0 {
            return if start_line.is_none() && total == 0 {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a message head",
                ))
            };
        }
        let text = String::from_utf8(line).map_err(|_| invalid("non-UTF-8 head".into()))?;
        let text = text.trim_end_matches(['\r', '\n']);
        match &start_line {
            // Empty lines before a request line are allowed (RFC 9112 section 2.2).
            None if text.is_empty() => continue,
            None => start_line = Some(text.to_string()),
            Some(_) if text.is_empty() => break,
            Some(_) => {
                let (name, value) = text
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("bad header line {text:?}")))?;
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }
    Ok(Some(Head {
        start_line: start_line.unwrap_or_default(),
        headers,
    }))
}

/// How the body following a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// HTTP/1.1 responses without a length run until the server closes the connection.
    UntilClose,
}

fn is_chunked(head: &Head) -> bool {
    head.header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
}

fn content_length(head: &Head) -> io::Result<Option<u64>> {
    head.header("content-length")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}

pub fn request_framing(head: &Head) -> io::Result<Framing> {
    if is_chunked(head) {
        return Ok(Framing::Chunked);
    }
    Ok(match content_length(head)? {
        Some(0) | None => Framing::Empty,
        Some(n) => Framing::Length(n),
    })
}

pub fn response_framing(request_method: &str, status: u16, head: &Head) -> io::Result<Framing> {
    if request_method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
    {
        return Ok(Framing::Empty);
    }
    if is_chunked(head) {
        return Ok(Framing::Chunked);
    }
    Ok(match content_length(head)? {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Copies a body from `r` to `w` byte for byte, chunk framing included, so that a proxy
/// forwards exactly what it received. Data is flushed as soon as it arrives, so that streamed
/// responses (watch events) reach the client without waiting for a buffer to fill, and large
/// bodies never sit in memory whole.
pub fn copy_body(r: &mut impl BufRead, w: &mut impl Write, framing: Framing) -> io::Result<u64> {
    let copied = match framing {
        Framing::Empty => 0,
        Framing::Length(n) => relay(r, w, Some(n))?,
        Framing::UntilClose => relay(r, w, None)?,
        Framing::Chunked => {
            let mut total = 0;
            loop {
                let line = read_line(r)?;
                w.write_all(&line)?;
                let size = chunk_size(&line)?;
                if size == 0 {
                    // Trailer fields, then the final empty line.
                    loop {
                        let trailer = read_line(r)?;
                        w.write_all(&trailer)?;
                        if trailer == b"\r\n" || trailer == b"\n" {
                            break;
                        }
                    }
                    break total;
                }
                total += relay(r, w, Some(size))?;
                let crlf = read_line(r)?;
                w.write_all(&crlf)?;
                w.flush()?;
            }
        }
    };
    w.flush()?;
    Ok(copied)
}

/// Moves `limit` bytes (or everything up to EOF) from `r` to `w`, flushing after every read.
fn relay(r: &mut impl BufRead, w: &mut impl Write, limit: Option<u64>) -> io::Result<u64> {
    let mut copied = 0u64;
    loop {
        let wanted = limit.map_or(u64::MAX, |n| n - copied);
        if wanted == 0 {
            return Ok(copied);
        }
        let available = r.fill_buf()?;
        if available.is_empty() {
            return match limit {
                None => Ok(copied),
                Some(n) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("body ended after {copied} of {n} bytes"),
                )),
            };
        }
        let take = available
            .len()
            .min(usize::try_from(wanted).unwrap_or(usize::MAX));
        w.write_all(&available[..take])?;
        w.flush()?;
        r.consume(take);
        copied += take as u64;
    }
}

/// Reads a body and returns its decoded bytes (chunk framing removed).
pub fn read_body(r: &mut impl BufRead, framing: Framing) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            copy_exact(r, &mut out, n)?;
        }
        Framing::UntilClose => {
            r.read_to_end(&mut out)?;
        }
        Framing::Chunked => loop {
            let line = read_line(r)?;
            let size = chunk_size(&line)?;
            if size == 0 {
                while !matches!(read_line(r)?.as_slice(), b"\r\n" | b"\n") {}
                break;
            }
            copy_exact(r, &mut out, size)?;
            read_line(r)?;
        },
    }
    Ok(out)
}

/// Reads and drops a body, keeping the connection usable for the next message.
pub fn discard_body(r: &mut impl BufRead, framing: Framing) -> io::Result<u64> {
    copy_body(r, &mut io::sink(), framing)
}

fn copy_exact(r: &mut impl BufRead, w: &mut impl Write, n: u64) -> io::Result<u64> {
    let copied = io::copy(&mut r.take(n), w)?;
    if copied != n {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("body ended after {copied} of {n} bytes"),
        ));
    }
    Ok(copied)
}

fn read_line(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside a chunked body",
        ));
    }
    Ok(line)
}

fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let text = String::from_utf8_lossy(line);
    let hex = text.trim().split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| invalid(format!("bad chunk size line {text:?}")))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Standard reason phrases for the statuses the support code produces.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
