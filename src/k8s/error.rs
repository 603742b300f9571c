//! Typed Kubernetes API errors and their classification (reconcile.md#classification).
//!
//! Retryability is decided from types only: the `Status` code the API server answered with,
//! `std::io::ErrorKind`s in the source chain, rustls errors, hyper's flags and hyper-util's
//! "connect failed" flag (which is how a DNS failure surfaces). Never from message text.

use std::fmt;
use std::time::Duration;

use crate::duration::format_go;
use crate::error::one_line;
use crate::retry::{Retryable, Transport};

/// A failed Kubernetes API call.
#[derive(Debug, thiserror::Error)]
pub enum K8sError {
    /// Anything the kube client returned: an API `Status` or a transport failure.
    #[error("{}", ErrorKind::of(.0).reason())]
    Kube(#[from] kube::Error),
    /// A non-watch request got no answer within its bound (see [`super::with_timeout`]).
    #[error("no answer from the API server within {}", format_go(*.0))]
    Timeout(Duration),
}

/// What went wrong, decided from types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The API server answered with an error status.
    Status {
        code: u16,
        /// The `Status` reason (`NotFound`, `Forbidden`), empty when the body was not a `Status`.
        reason: String,
        message: String,
        /// `details.retryAfterSeconds` of a `429`/`503`.
        retry_after: Option<Duration>,
    },
    ConnectionRefused,
    /// Connection reset or aborted, a broken pipe, or a request canceled by a dying connection.
    ConnectionReset,
    /// A connect, read or TLS handshake timeout, or ksail's own request bound.
    Timeout,
    /// The response or stream ended early.
    UnexpectedEof,
    /// Connecting failed some other way: DNS resolution, unreachable host or network.
    Connect {
        detail: String,
    },
    /// The server certificate did not verify.
    TlsVerification {
        detail: String,
    },
    /// Any other TLS failure, for example a plain-HTTP server answering a TLS handshake.
    TlsOther {
        detail: String,
    },
    /// Anything else: an undecodable response, an auth plugin failure, a request build error.
    Other {
        detail: String,
    },
}

impl K8sError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            K8sError::Kube(error) => ErrorKind::of(error),
            K8sError::Timeout(_) => ErrorKind::Timeout,
        }
    }

    /// Whether another attempt could succeed (the Classification table).
    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// The HTTP status, when the API server answered.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            K8sError::Kube(kube::Error::Api(status)) => Some(status.code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status_code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status_code() == Some(409)
    }

    /// The request never got an answer from the API server (transport, TLS or timeout): the
    /// caller reports it with [`unreachable_message`], never as "not installed" or "not found".
    pub fn is_unreachable(&self) -> bool {
        !matches!(
            self.kind(),
            ErrorKind::Status { .. } | ErrorKind::Other { .. }
        )
    }

    /// A short reason for warnings and error lines: `connection refused`,
    /// `503 Service Unavailable: etcd is down`, `i/o timeout`.
    pub fn reason(&self) -> String {
        match self {
            K8sError::Timeout(after) => format!("no answer within {}", format_go(*after)),
            K8sError::Kube(_) => self.kind().reason(),
        }
    }
}

impl Retryable for K8sError {
    fn is_retryable(&self) -> bool {
        K8sError::is_retryable(self)
    }

    fn retry_after(&self) -> Option<Duration> {
        match self.kind() {
            ErrorKind::Status { retry_after, .. } => retry_after,
            _ => None,
        }
    }

    fn reason(&self) -> String {
        K8sError::reason(self)
    }
}

/// `cannot reach the Kubernetes API server at <server> (context <ctx>): <reason>`. The caller
/// adds the `after N attempts` prefix and the hint.
pub fn unreachable_message(server: &str, context: &str, reason: &str) -> String {
    format!("cannot reach the Kubernetes API server at {server} (context {context}): {reason}")
}

impl ErrorKind {
    /// Classify a kube client error from its types.
    pub fn of(error: &kube::Error) -> ErrorKind {
        if let kube::Error::Api(status) = error {
            let retry_after = status
                .details
                .as_ref()
                .map(|details| details.retry_after_seconds)
                .filter(|seconds| *seconds > 0 && matches!(status.code, 429 | 503))
                .map(|seconds| Duration::from_secs(u64::from(seconds)));
            return ErrorKind::Status {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
                retry_after,
            };
        }
        classify_chain(error)
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            ErrorKind::Status { code, .. } => {
                *code == 408 || *code == 429 || (500..=599).contains(code)
            }
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::Timeout
            | ErrorKind::UnexpectedEof
            | ErrorKind::Connect { .. } => true,
            ErrorKind::TlsVerification { .. }
            | ErrorKind::TlsOther { .. }
            | ErrorKind::Other { .. } => false,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            ErrorKind::Status {
                code,
                reason,
                message,
                ..
            } => {
                let head = match reqwest::StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|status| status.canonical_reason())
                {
                    Some(text) => format!("{code} {text}"),
                    None if !reason.is_empty() => format!("{code} {reason}"),
                    None => format!("HTTP {code}"),
                };
                let message = one_line(message.trim());
                // kube-apiserver says only "Unauthorized": say what it means.
                if *code == 401 {
                    return format!(
                        "{head}: the API server rejected the credentials of the kubeconfig user; renew them, or choose another context with --context"
                    );
                }
                if message.is_empty() {
                    head
                } else {
                    format!("{head}: {}", shorten(&message, 200))
                }
            }
            ErrorKind::ConnectionRefused => "connection refused".to_string(),
            ErrorKind::ConnectionReset => "connection reset".to_string(),
            ErrorKind::Timeout => "i/o timeout".to_string(),
            ErrorKind::UnexpectedEof => "unexpected EOF".to_string(),
            ErrorKind::Connect { detail } | ErrorKind::Other { detail } => detail.clone(),
            ErrorKind::TlsVerification { detail } => detail.clone(),
            ErrorKind::TlsOther { detail } => format!("TLS error: {detail}"),
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

/// The shared transport classification ([`Transport::classify`]), then anything else.
fn classify_chain(error: &kube::Error) -> ErrorKind {
    match Transport::classify(error) {
        Some(Transport::ConnectionRefused) => ErrorKind::ConnectionRefused,
        Some(Transport::ConnectionReset) => ErrorKind::ConnectionReset,
        Some(Transport::Timeout) => ErrorKind::Timeout,
        Some(Transport::UnexpectedEof) => ErrorKind::UnexpectedEof,
        Some(Transport::Unreachable { detail }) => ErrorKind::Connect { detail },
        Some(Transport::TlsVerification { detail }) => ErrorKind::TlsVerification { detail },
        Some(Transport::TlsOther { detail }) => ErrorKind::TlsOther { detail },
        None => ErrorKind::Other {
            detail: one_line(&error.to_string()),
        },
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use std::io;

    fn api(code: u16, reason: &str) -> K8sError {
        K8sError::Kube(kube::Error::Api(Box::new(
            Status::failure("injected", reason).with_code(code),
        )))
    }

    fn transport(kind: io::ErrorKind) -> K8sError {
        K8sError::Kube(kube::Error::Service(Box::new(io::Error::from(kind))))
    }

    fn tls(error: rustls::Error) -> K8sError {
        K8sError::Kube(kube::Error::Service(Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            error,
        ))))
    }

    /// One row per line of reconcile.md#classification that concerns the API server.
    #[test]
    fn classification_table() {
        let rows: Vec<(&str, K8sError, bool)> = vec![
            ("HTTP 429", api(429, "TooManyRequests"), true),
            ("HTTP 500", api(500, "InternalError"), true),
            ("HTTP 502", api(502, ""), true),
            ("HTTP 503", api(503, "ServiceUnavailable"), true),
            ("HTTP 504", api(504, "Timeout"), true),
            ("HTTP 599", api(599, ""), true),
            ("HTTP 408", api(408, "Timeout"), true),
            (
                "connection refused",
                transport(io::ErrorKind::ConnectionRefused),
                true,
            ),
            (
                "connection reset",
                transport(io::ErrorKind::ConnectionReset),
                true,
            ),
            (
                "connection aborted",
                transport(io::ErrorKind::ConnectionAborted),
                true,
            ),
            ("broken pipe", transport(io::ErrorKind::BrokenPipe), true),
            ("i/o timeout", transport(io::ErrorKind::TimedOut), true),
            (
                "unexpected EOF",
                transport(io::ErrorKind::UnexpectedEof),
                true,
            ),
            (
                "unexpected EOF while reading a stream",
                K8sError::Kube(kube::Error::ReadEvents(io::Error::from(
                    io::ErrorKind::UnexpectedEof,
                ))),
                true,
            ),
            (
                "per-request bound",
                K8sError::Timeout(Duration::from_secs(30)),
                true,
            ),
            ("HTTP 401", api(401, "Unauthorized"), false),
            ("HTTP 403", api(403, "Forbidden"), false),
            ("HTTP 404", api(404, "NotFound"), false),
            ("HTTP 400", api(400, "BadRequest"), false),
            ("HTTP 409", api(409, "Conflict"), false),
            ("HTTP 422", api(422, "Invalid"), false),
            (
                "TLS certificate verification failure",
                tls(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::UnknownIssuer,
                )),
                false,
            ),
            ("other TLS failure", tls(rustls::Error::DecryptError), false),
            (
                "undecodable response",
                K8sError::Kube(kube::Error::SerdeError(
                    serde_json::from_str::<serde_json::Value>("{").expect_err("invalid JSON"),
                )),
                false,
            ),
            (
                "other I/O kind",
                transport(io::ErrorKind::PermissionDenied),
                false,
            ),
        ];
        for (row, error, retryable) in rows {
            assert_eq!(error.is_retryable(), retryable, "{row}: {:?}", error.kind());
        }
    }

    #[test]
    fn reasons_are_short_and_typed() {
        assert_eq!(
            transport(io::ErrorKind::ConnectionRefused).reason(),
            "connection refused"
        );
        assert_eq!(transport(io::ErrorKind::TimedOut).reason(), "i/o timeout");
        assert_eq!(
            K8sError::Timeout(Duration::from_secs(30)).reason(),
            "no answer within 30s"
        );
        assert_eq!(
            api(503, "ServiceUnavailable").reason(),
            "503 Service Unavailable: injected"
        );
        assert_eq!(
            tls(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
            .reason(),
            "invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn not_found_and_conflict_come_from_the_status_code() {
        assert!(api(404, "NotFound").is_not_found());
        assert!(!api(404, "NotFound").is_conflict());
        assert!(api(409, "Conflict").is_conflict());
        assert!(!transport(io::ErrorKind::ConnectionRefused).is_not_found());
        assert_eq!(api(403, "Forbidden").status_code(), Some(403));
        assert_eq!(
            K8sError::Timeout(Duration::from_secs(1)).status_code(),
            None
        );
    }

    #[test]
    fn transport_failures_read_as_unreachable_and_statuses_do_not() {
        assert!(transport(io::ErrorKind::ConnectionRefused).is_unreachable());
        assert!(K8sError::Timeout(Duration::from_secs(30)).is_unreachable());
        assert!(!api(404, "NotFound").is_unreachable());
        assert!(!api(503, "ServiceUnavailable").is_unreachable());
    }

    #[test]
    fn retry_after_comes_from_the_status_details_of_a_429_or_503() {
        let mut status = Status::failure("slow down", "TooManyRequests").with_code(429);
        status.details = Some(
            serde_json::from_value(serde_json::json!({"retryAfterSeconds": 7})).expect("details"),
        );
        let error = K8sError::Kube(kube::Error::Api(Box::new(status)));

        assert_eq!(Retryable::retry_after(&error), Some(Duration::from_secs(7)));
        assert_eq!(
            Retryable::retry_after(&api(503, "ServiceUnavailable")),
            None
        );
    }

    #[test]
    fn unreachable_message_matches_the_spec() {
        assert_eq!(
            unreachable_message("https://127.0.0.1:6443", "kind-kind", "connection refused"),
            "cannot reach the Kubernetes API server at https://127.0.0.1:6443 (context kind-kind): connection refused"
        );
    }
}
