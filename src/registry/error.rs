//! Typed registry errors and their classification (reconcile.md#classification).
//!
//! Retryability is decided from types only: HTTP status codes, `std::io::ErrorKind`s found in the
//! error's source chain, rustls certificate errors, hyper's incomplete-message flag, our own
//! [`DnsError`] and [`RedirectLimitExceeded`] markers. Never from message text.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use super::auth::CredentialSource;
use crate::retry::Transport;

/// What went wrong talking to a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryErrorKind {
    /// The registry answered with an unexpected HTTP status.
    Status {
        code: u16,
        /// The first `errors[].code` of the registry's JSON error body (`DENIED`, `UNAUTHORIZED`).
        registry_code: Option<String>,
        /// The first `errors[].message`, on one line, with secrets already removed.
        message: Option<String>,
        /// `Retry-After` of a `429` or `503`.
        retry_after: Option<Duration>,
    },
    ConnectionRefused,
    /// Connection reset or aborted, or a broken pipe.
    ConnectionReset,
    /// Connect timeout, read timeout or TLS handshake timeout.
    Timeout,
    /// The response or stream ended early.
    UnexpectedEof,
    /// The host name could not be resolved.
    Dns {
        host: String,
    },
    /// Connecting failed another way: an unreachable host or network.
    Unreachable {
        detail: String,
    },
    /// More than [`MAX_REDIRECTS`] hops.
    RedirectLimit,
    /// The server certificate did not verify (`invalid peer certificate: UnknownIssuer`).
    TlsVerification {
        detail: String,
    },
    /// Any other TLS failure, for example a plain-HTTP server answering a TLS handshake.
    TlsOther {
        detail: String,
    },
    /// A local file (the layer) could not be read.
    LocalFile {
        detail: String,
    },
    /// Anything else: a protocol violation by the registry or an unclassified transport error.
    Other {
        detail: String,
    },
}

/// The maximum number of redirect hops followed for one request (artifact.md#transport).
pub const MAX_REDIRECTS: usize = 10;

/// A failed registry request. `Display` is `<request>: <reason>`, plus the credential source for
/// `401`/`403`; it never contains a secret. Boxed: it travels through many `Result`s.
#[derive(Debug)]
pub struct RegistryError(Box<Details>);

#[derive(Debug)]
struct Details {
    kind: RegistryErrorKind,
    request: String,
    credential_source: Option<CredentialSource>,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl RegistryError {
    pub fn new(kind: RegistryErrorKind, request: impl Into<String>) -> Self {
        RegistryError(Box::new(Details {
            kind,
            request: request.into(),
            credential_source: None,
            source: None,
        }))
    }

    /// Classify a transport error (anything `reqwest` returned that is not a response).
    pub fn from_transport(request: impl Into<String>, error: reqwest::Error) -> Self {
        let kind = classify_chain(&error);
        RegistryError(Box::new(Details {
            kind,
            request: request.into(),
            credential_source: None,
            source: Some(Box::new(error)),
        }))
    }

    pub fn with_credential_source(mut self, source: CredentialSource) -> Self {
        self.0.credential_source = Some(source);
        self
    }

    pub fn kind(&self) -> &RegistryErrorKind {
        &self.0.kind
    }

    /// Method and path of the failing request (`PUT /v2/acme/app/manifests/dev`). The query is
    /// left out on purpose: upload locations carry opaque session state.
    #[cfg(test)]
    pub fn request(&self) -> &str {
        &self.0.request
    }

    /// Set for `401` and `403`: which credentials were presented (never their value).
    pub fn credential_source(&self) -> Option<&CredentialSource> {
        self.0.credential_source.as_ref()
    }

    /// Whether another attempt could succeed (the Classification table).
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// The server-requested delay of a `429` or `503`.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.0.kind {
            RegistryErrorKind::Status {
                code: 429 | 503,
                retry_after,
                ..
            } => *retry_after,
            _ => None,
        }
    }

    /// A short reason for warnings and error lines: `connection refused`,
    /// `503 Service Unavailable`, `401 unauthorized`, `invalid peer certificate: UnknownIssuer`.
    pub fn reason(&self) -> String {
        self.0.kind.reason()
    }

    /// Whether this is a TLS failure (the caller adds the `--insecure` hint).
    #[cfg(test)]
    pub fn is_tls(&self) -> bool {
        matches!(
            self.0.kind,
            RegistryErrorKind::TlsVerification { .. } | RegistryErrorKind::TlsOther { .. }
        )
    }
}

impl crate::retry::Retryable for RegistryError {
    fn is_retryable(&self) -> bool {
        RegistryError::is_retryable(self)
    }
    fn retry_after(&self) -> Option<Duration> {
        RegistryError::retry_after(self)
    }
    fn reason(&self) -> String {
        RegistryError::reason(self)
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.request, self.reason())?;
        if let Some(source) = &self.0.credential_source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl StdError for RegistryError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|error| error as &(dyn StdError + 'static))
    }
}

impl RegistryErrorKind {
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryErrorKind::Status { code, .. } => {
                *code == 408 || *code == 429 || (500..=599).contains(code)
            }
            RegistryErrorKind::ConnectionRefused
            | RegistryErrorKind::ConnectionReset
            | RegistryErrorKind::Timeout
            | RegistryErrorKind::UnexpectedEof
            | RegistryErrorKind::Dns { .. }
            | RegistryErrorKind::Unreachable { .. }
            | RegistryErrorKind::RedirectLimit => true,
            RegistryErrorKind::TlsVerification { .. }
            | RegistryErrorKind::TlsOther { .. }
            | RegistryErrorKind::LocalFile { .. }
            | RegistryErrorKind::Other { .. } => false,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            RegistryErrorKind::Status {
                code,
                registry_code,
                ..
            } => match registry_code {
                Some(registry_code) => format!("{code} {}", registry_code.to_ascii_lowercase()),
                None => {
                    let canonical = reqwest::StatusCode::from_u16(*code)
                        .ok()
                        .and_then(|status| status.canonical_reason());
                    match canonical {
                        Some(text) => format!("{code} {text}"),
                        None => format!("HTTP {code}"),
                    }
                }
            },
            RegistryErrorKind::ConnectionRefused => "connection refused".to_string(),
            RegistryErrorKind::ConnectionReset => "connection reset".to_string(),
            RegistryErrorKind::Timeout => "i/o timeout".to_string(),
            RegistryErrorKind::UnexpectedEof => "unexpected EOF".to_string(),
            RegistryErrorKind::Dns { host } => format!("cannot resolve host {host}"),
            RegistryErrorKind::Unreachable { detail } => detail.clone(),
            RegistryErrorKind::RedirectLimit => {
                format!("stopped after {MAX_REDIRECTS} redirects")
            }
            RegistryErrorKind::TlsVerification { detail } => detail.clone(),
            RegistryErrorKind::TlsOther { detail } => format!("TLS error: {detail}"),
            RegistryErrorKind::LocalFile { detail } | RegistryErrorKind::Other { detail } => {
                detail.clone()
            }
        }
    }
}

/// The error our resolver returns, so that a DNS failure is recognised by its type.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve host {host}")]
pub struct DnsError {
    pub host: String,
    #[source]
    pub source: Option<io::Error>,
}

/// The error our redirect policy returns after [`MAX_REDIRECTS`] hops.
#[derive(Debug, thiserror::Error)]
#[error("stopped after {MAX_REDIRECTS} redirects")]
pub struct RedirectLimitExceeded;

/// Classify a transport error from its types: our own markers (the resolver's DNS error, the
/// redirect limit) first, then the shared transport classification ([`Transport::classify`]).
pub fn classify_chain(root: &(dyn StdError + 'static)) -> RegistryErrorKind {
    let nodes = crate::error::error_chain(root);
    for node in &nodes {
        if let Some(dns) = node.downcast_ref::<DnsError>() {
            return RegistryErrorKind::Dns {
                host: dns.host.clone(),
            };
        }
        if node.downcast_ref::<RedirectLimitExceeded>().is_some() {
            return RegistryErrorKind::RedirectLimit;
        }
    }
    match Transport::classify(root) {
        Some(transport) => RegistryErrorKind::from(transport),
        None => RegistryErrorKind::Other {
            detail: describe_unclassified(&nodes),
        },
    }
}

impl From<Transport> for RegistryErrorKind {
    fn from(transport: Transport) -> RegistryErrorKind {
        match transport {
            Transport::ConnectionRefused => RegistryErrorKind::ConnectionRefused,
            Transport::ConnectionReset => RegistryErrorKind::ConnectionReset,
            Transport::Timeout => RegistryErrorKind::Timeout,
            Transport::UnexpectedEof => RegistryErrorKind::UnexpectedEof,
            Transport::Unreachable { detail } => RegistryErrorKind::Unreachable { detail },
            Transport::TlsVerification { detail } => RegistryErrorKind::TlsVerification { detail },
            Transport::TlsOther { detail } => RegistryErrorKind::TlsOther { detail },
        }
    }
}

/// A message for an error we could not classify: the innermost error's text. reqwest's own
/// `Display` includes the full URL (with upload session state), so it is not used.
fn describe_unclassified(nodes: &[&(dyn StdError + 'static)]) -> String {
    nodes
        .iter()
        .rev()
        .find(|node| node.downcast_ref::<reqwest::Error>().is_none())
        .map(|node| node.to_string())
        .unwrap_or_else(|| "request failed".to_string())
}

/// Replace every occurrence of each non-empty secret in `text` with `<redacted>`. Longer secrets
/// go first so that a secret containing another is removed whole.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut ordered: Vec<&str> = secrets
        .iter()
        .copied()
        .filter(|secret| !secret.is_empty())
        .collect();
    ordered.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    let mut result = text.to_string();
    for secret in ordered {
        if result.contains(secret) {
            result = result.replace(secret, "<redacted>");
        }
    }
    result
}

/// Parse `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: time::OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date =
        time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = date - now;
    Some(if delta.is_negative() {
        Duration::ZERO
    } else {
        delta.unsigned_abs()
    })
}

/// The parts of a registry's JSON error body that we show (distribution spec "Error Codes").
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RegistryErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
}

pub fn parse_error_body(body: &[u8]) -> RegistryErrorBody {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let Ok(parsed) = serde_json::from_slice::<Body>(body) else {
        return RegistryErrorBody::default();
    };
    let Some(first) = parsed.errors.into_iter().next() else {
        return RegistryErrorBody::default();
    };
    RegistryErrorBody {
        code: first.code.filter(|code| !code.is_empty()),
        message: first.message.filter(|message| !message.is_empty()),
    }
}

/// Build the kind for an error status, with the registry's message made safe to show: secrets
/// removed, one line, bounded length.
pub fn status_kind(
    code: u16,
    body: &[u8],
    retry_after: Option<Duration>,
    secrets: &[&str],
) -> RegistryErrorKind {
    const MAX_MESSAGE_CHARS: usize = 200;
    let parsed = parse_error_body(body);
    let message = parsed.message.map(|message| {
        let safe = crate::error::one_line(&redact(&message, secrets));
        safe.chars().take(MAX_MESSAGE_CHARS).collect()
    });
    let registry_code = parsed
        .code
        .map(|code| crate::error::one_line(&redact(&code, secrets)));
    RegistryErrorKind::Status {
        code,
        registry_code,
        message,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> RegistryErrorKind {
        RegistryErrorKind::Status {
            code,
            registry_code: None,
            message: None,
            retry_after: None,
        }
    }

    #[test]
    fn status_codes_follow_the_classification_table() {
        let table = [
            (408, true),
            (429, true),
            (500, true),
            (502, true),
            (503, true),
            (599, true),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
            (405, false),
            (409, false),
            (413, false),
        ];
        for (code, retryable) in table {
            assert_eq!(status(code).is_retryable(), retryable, "status {code}");
        }
    }

    #[test]
    fn io_kinds_follow_the_classification_table() {
        let table = [
            (io::ErrorKind::ConnectionRefused, Some(true)),
            (io::ErrorKind::ConnectionReset, Some(true)),
            (io::ErrorKind::ConnectionAborted, Some(true)),
            (io::ErrorKind::BrokenPipe, Some(true)),
            (io::ErrorKind::TimedOut, Some(true)),
            (io::ErrorKind::UnexpectedEof, Some(true)),
            (io::ErrorKind::PermissionDenied, None),
            (io::ErrorKind::InvalidData, None),
        ];
        for (kind, expected) in table {
            let classified = classify_chain(&io::Error::from(kind));
            match expected {
                Some(retryable) => assert_eq!(classified.is_retryable(), retryable, "{kind:?}"),
                None => assert!(
                    matches!(classified, RegistryErrorKind::Other { .. }),
                    "{kind:?}: {classified:?}"
                ),
            }
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn io_kind_is_found_deep_in_the_chain() {
        let inner = io::Error::new(io::ErrorKind::ConnectionReset, "peer reset");
        let wrapped = io::Error::other(Outer(Box::new(inner)));
        let error = Outer(Box::new(wrapped));
        assert_eq!(classify_chain(&error), RegistryErrorKind::ConnectionReset);
    }

    #[test]
    fn dns_error_is_recognised_by_type_even_inside_io_errors() {
        let dns = DnsError {
            host: "nope.invalid".into(),
            source: Some(io::Error::other("resolver said no")),
        };
        let error = Outer(Box::new(io::Error::other(dns)));
        let kind = classify_chain(&error);
        assert_eq!(
            kind,
            RegistryErrorKind::Dns {
                host: "nope.invalid".into()
            }
        );
        assert!(kind.is_retryable());
    }

    #[test]
    fn invalid_certificate_is_a_non_retryable_verification_failure() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let error = Outer(Box::new(io::Error::new(io::ErrorKind::InvalidData, tls)));
        let kind = classify_chain(&error);
        assert_eq!(
            kind,
            RegistryErrorKind::TlsVerification {
                detail: "invalid peer certificate: UnknownIssuer".into()
            }
        );
        assert!(!kind.is_retryable());
        assert_eq!(kind.reason(), "invalid peer certificate: UnknownIssuer");
    }

    #[test]
    fn other_tls_errors_are_not_retryable() {
        let tls = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        let error = io::Error::new(io::ErrorKind::InvalidData, tls);
        let kind = classify_chain(&error);
        assert!(
            matches!(kind, RegistryErrorKind::TlsOther { .. }),
            "{kind:?}"
        );
        assert!(!kind.is_retryable());
    }

    #[test]
    fn redirect_limit_is_retryable() {
        let kind = classify_chain(&Outer(Box::new(RedirectLimitExceeded)));
        assert_eq!(kind, RegistryErrorKind::RedirectLimit);
        assert!(kind.is_retryable());
    }

    #[test]
    fn message_text_never_decides_retryability() {
        let error = io::Error::other("connection refused (but really a permission problem)");
        assert!(!classify_chain(&error).is_retryable());
    }

    #[test]
    fn reasons_are_short() {
        assert_eq!(status(503).reason(), "503 Service Unavailable");
        let denied = RegistryErrorKind::Status {
            code: 403,
            registry_code: Some("DENIED".into()),
            message: Some("requested access to the resource is denied".into()),
            retry_after: None,
        };
        assert_eq!(denied.reason(), "403 denied");
        let unauthorized = status_kind(
            401,
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            None,
            &[],
        );
        assert_eq!(unauthorized.reason(), "401 unauthorized");
        assert_eq!(
            RegistryErrorKind::ConnectionRefused.reason(),
            "connection refused"
        );
    }

    #[test]
    fn retry_after_only_for_429_and_503() {
        let make = |code| {
            RegistryError::new(
                RegistryErrorKind::Status {
                    code,
                    registry_code: None,
                    message: None,
                    retry_after: Some(Duration::from_secs(7)),
                },
                "GET /v2/",
            )
        };
        assert_eq!(make(429).retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(make(503).retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(make(500).retry_after(), None);
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = time::macros::datetime!(2026-05-01 10:00:00 UTC);
        assert_eq!(parse_retry_after("12", now), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Fri, 01 May 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn redact_removes_every_secret_longest_first() {
        let text = "denied for token s3cr3t-token (prefix s3cr3t) and s3cr3t-token again";
        let redacted = redact(text, &["s3cr3t", "s3cr3t-token", ""]);
        assert_eq!(
            redacted,
            "denied for token <redacted> (prefix <redacted>) and <redacted> again"
        );
    }

    #[test]
    fn registry_messages_are_redacted_and_one_line() {
        let body =
            br#"{"errors":[{"code":"DENIED","message":"bad password hunter2\nfor user ci"}]}"#;
        let kind = status_kind(403, body, None, &["hunter2"]);
        let RegistryErrorKind::Status { message, .. } = kind else {
            panic!("not a status");
        };
        assert_eq!(
            message.as_deref(),
            Some("bad password <redacted> for user ci")
        );
    }

    #[test]
    fn display_names_the_credential_source_not_the_value() {
        let error = RegistryError::new(status(403), "PUT /v2/acme/app/manifests/dev")
            .with_credential_source(CredentialSource::CredentialHelper("desktop".into()));
        assert_eq!(
            error.to_string(),
            "PUT /v2/acme/app/manifests/dev: 403 Forbidden (credentials from docker credential helper \"desktop\")"
        );
    }
}
