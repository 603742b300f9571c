//! The retry policy shared by `workload push` and `workload reconcile` (reconcile.md#retry):
//! at most 3 attempts, back-off 5 s then 10 s (capped at 30 s, raised to a `Retry-After`), one
//! warning line per retry. Whether an error is worth retrying is decided by the error's type
//! through [`Retryable`], never by matching message text.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use tokio_util::sync::CancellationToken;

use crate::duration::format_go;
use crate::env_vars::test_only;
use crate::error::Failure;
use crate::process::ProcessEnv;
use crate::progress::Reporter;

/// An error that knows whether another attempt could succeed.
pub trait Retryable {
    fn is_retryable(&self) -> bool;

    /// A server-requested delay (`Retry-After` on a 429 or 503).
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The short reason shown in the retry warning and the final error line.
    fn reason(&self) -> String;
}

/// What went wrong below HTTP, decided from the error chain's types — rustls errors, I/O error
/// kinds, hyper's and hyper-util's flags, reqwest's timeout — never from message text. The one
/// classification of transport failures, shared by the API server client (`k8s::error`) and the
/// registry client (`registry::error`), which map it into their own error kinds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    ConnectionRefused,
    /// Reset or aborted, a broken pipe, a socket no longer connected, or a request canceled by a
    /// dying connection.
    ConnectionReset,
    /// A connect, read or TLS handshake timeout.
    Timeout,
    /// The response or stream ended early.
    UnexpectedEof,
    /// Connecting failed another way: an unreachable host or network, or a failed DNS lookup
    /// inside the connector. `detail` is the innermost error's text.
    Unreachable {
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
}

impl Transport {
    /// The transport failure in `root`'s source chain, if any. Precedence: TLS (a certificate
    /// problem stays one inside a connect error), then I/O kinds, then hyper's flags, then
    /// "connect failed" flags.
    pub fn classify(root: &(dyn std::error::Error + 'static)) -> Option<Transport> {
        let nodes = crate::error::error_chain(root);
        for node in &nodes {
            if let Some(tls) = node.downcast_ref::<rustls::Error>() {
                let detail = tls.to_string();
                return Some(match tls {
                    rustls::Error::InvalidCertificate(_) => Transport::TlsVerification { detail },
                    _ => Transport::TlsOther { detail },
                });
            }
        }
        for node in &nodes {
            if let Some(io_error) = node.downcast_ref::<std::io::Error>()
                && let Some(kind) = Transport::of_io_kind(io_error.kind(), io_error)
            {
                return Some(kind);
            }
        }
        for node in &nodes {
            if let Some(hyper_error) = node.downcast_ref::<hyper::Error>() {
                if hyper_error.is_incomplete_message() {
                    return Some(Transport::UnexpectedEof);
                }
                if hyper_error.is_timeout() {
                    return Some(Transport::Timeout);
                }
                if hyper_error.is_canceled() {
                    return Some(Transport::ConnectionReset);
                }
            }
            if let Some(reqwest_error) = node.downcast_ref::<reqwest::Error>()
                && reqwest_error.is_timeout()
            {
                return Some(Transport::Timeout);
            }
        }
        for node in &nodes {
            let connect_failed = node
                .downcast_ref::<hyper_util::client::legacy::Error>()
                .is_some_and(hyper_util::client::legacy::Error::is_connect)
                || node
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(reqwest::Error::is_connect);
            if connect_failed {
                // The innermost error says what happened ("failed to lookup address
                // information: …"); the connectors' own text is just "client error (Connect)".
                let detail = nodes
                    .last()
                    .map(|error| crate::error::one_line(&error.to_string()))
                    .unwrap_or_default();
                return Some(Transport::Unreachable { detail });
            }
        }
        None
    }

    /// The classification of an I/O error kind, or `None` for kinds that are not transport
    /// failures (a permission problem, invalid data).
    pub fn of_io_kind(
        kind: std::io::ErrorKind,
        error: &dyn std::fmt::Display,
    ) -> Option<Transport> {
        use std::io::ErrorKind as Kind;
        Some(match kind {
            Kind::ConnectionRefused => Transport::ConnectionRefused,
            Kind::ConnectionReset
            | Kind::ConnectionAborted
            | Kind::BrokenPipe
            | Kind::NotConnected => Transport::ConnectionReset,
            Kind::TimedOut => Transport::Timeout,
            Kind::UnexpectedEof => Transport::UnexpectedEof,
            Kind::HostUnreachable | Kind::NetworkUnreachable | Kind::NetworkDown => {
                Transport::Unreachable {
                    detail: error.to_string(),
                }
            }
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_secs(5),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The default policy, with the test-only overrides applied. Returns the policy and the `-v`
    /// lines that say which override is in effect.
    pub fn from_env(env: &ProcessEnv) -> Result<(RetryPolicy, Vec<String>), Failure> {
        let mut policy = RetryPolicy::default();
        let mut notes = Vec::new();
        if let Some(attempts) = test_knob(env, test_only::RETRY_ATTEMPTS, 1, 10)? {
            policy.attempts = attempts as u32;
            notes.push(format!(
                "retry: {} = {attempts} (test-only override)",
                test_only::RETRY_ATTEMPTS
            ));
        }
        if let Some(ms) = test_knob(env, test_only::RETRY_BASE_MS, 0, 600_000)? {
            policy.base = Duration::from_millis(ms);
            notes.push(format!(
                "retry: {} = {ms} (test-only override)",
                test_only::RETRY_BASE_MS
            ));
        }
        if let Some(ms) = test_knob(env, test_only::RETRY_CAP_MS, 0, 600_000)? {
            policy.cap = Duration::from_millis(ms);
            notes.push(format!(
                "retry: {} = {ms} (test-only override)",
                test_only::RETRY_CAP_MS
            ));
        }
        Ok((policy, notes))
    }

    /// The back-off between attempts: `base`, doubling, at most `cap`, no jitter; backon
    /// computes the delays from it.
    pub fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base)
            .with_factor(2.0)
            .with_max_delay(self.cap)
            .with_max_times(self.attempts.max(1) as usize - 1)
    }

    /// A computed delay raised to a server's `Retry-After`, but never above the cap.
    pub fn honour_retry_after(
        &self,
        computed: Duration,
        retry_after: Option<Duration>,
    ) -> Duration {
        retry_after.map_or(computed, |after| computed.max(after.min(self.cap)))
    }
}

/// Parse a numeric test-only knob; an invalid value is a usage error naming the variable.
pub fn test_knob(env: &ProcessEnv, name: &str, min: u64, max: u64) -> Result<Option<u64>, Failure> {
    let Some(raw) = env.var(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<u64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(Some(value)),
        _ => Err(Failure::usage(format!(
            "environment variable {name}: invalid value {raw:?} (expected an integer from {min} to {max}); fix or unset it"
        ))),
    }
}

/// The last error of a run, and how many attempts were made.
#[derive(Debug)]
pub struct Exhausted<E> {
    pub error: E,
    pub attempts: u32,
}

impl<E: Retryable> Exhausted<E> {
    /// True when the run ended because every attempt failed with a retryable error, so the error
    /// line says "after N attempts".
    pub fn ran_out(&self) -> bool {
        self.attempts > 1 && self.error.is_retryable()
    }
}

/// Run `attempt` (called with the 1-based attempt number) until it succeeds, fails with a
/// non-retryable error, or the policy's attempts are used up. Prints one warning per retry:
/// `attempt 1/3 failed, retrying in 5s: <reason>`. A cancelled `cancel` cuts a back-off short;
/// the next attempt is then expected to notice the cancellation and return at once.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    reporter: &dyn Reporter,
    cancel: Option<&CancellationToken>,
    mut attempt: F,
) -> Result<T, Exhausted<E>>
where
    E: Retryable,
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let started = AtomicU32::new(0);
    let total = policy.attempts.max(1);
    let cancel = cancel.cloned();
    let backoff = policy.backoff();
    let result = (|| {
        let n = started.fetch_add(1, Ordering::SeqCst) + 1;
        attempt(n)
    })
    .retry(backoff)
    .sleep(move |delay| {
        let cancel = cancel.clone();
        async move {
            match cancel {
                Some(cancel) => {
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = cancel.cancelled() => {}
                    }
                }
                None => tokio::time::sleep(delay).await,
            }
        }
    })
    .when(|error: &E| error.is_retryable())
    .adjust(|error: &E, delay| {
        delay.map(|computed| policy.honour_retry_after(computed, error.retry_after()))
    })
    .notify(|error: &E, delay| {
        let n = started.load(Ordering::SeqCst);
        reporter.warn(&format!(
            "attempt {n}/{total} failed, retrying in {}: {}",
            format_go(delay),
            error.reason()
        ));
    })
    .await;
    result.map_err(|error| Exhausted {
        error,
        attempts: started.load(Ordering::SeqCst),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Recorder;
    use std::path::PathBuf;

    #[derive(Debug, PartialEq)]
    struct Flaky {
        retryable: bool,
    }

    impl Retryable for Flaky {
        fn is_retryable(&self) -> bool {
            self.retryable
        }
        fn reason(&self) -> String {
            "503 Service Unavailable".into()
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        }
    }

    #[test]
    fn one_transport_classification_for_every_client() {
        use std::io::{Error, ErrorKind as Kind};
        let unreachable = |text: &str| Transport::Unreachable {
            detail: text.to_string(),
        };
        let cases = [
            (Kind::ConnectionRefused, Some(Transport::ConnectionRefused)),
            (Kind::ConnectionReset, Some(Transport::ConnectionReset)),
            (Kind::ConnectionAborted, Some(Transport::ConnectionReset)),
            (Kind::BrokenPipe, Some(Transport::ConnectionReset)),
            (Kind::NotConnected, Some(Transport::ConnectionReset)),
            (Kind::TimedOut, Some(Transport::Timeout)),
            (Kind::UnexpectedEof, Some(Transport::UnexpectedEof)),
            (Kind::HostUnreachable, Some(unreachable("boom"))),
            (Kind::NetworkUnreachable, Some(unreachable("boom"))),
            (Kind::PermissionDenied, None),
            (Kind::InvalidData, None),
        ];
        for (kind, expected) in cases {
            let error = Error::new(kind, "boom");
            assert_eq!(Transport::classify(&error), expected, "{kind:?}");
            // Wrapped, as the clients see it.
            let wrapped = Error::other(error);
            assert_eq!(Transport::classify(&wrapped), expected, "wrapped {kind:?}");
        }
    }

    #[test]
    fn delays_follow_the_policy_table() {
        use backon::BackoffBuilder as _;
        let secs = Duration::from_secs;
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.backoff().build().collect::<Vec<_>>(),
            [secs(5), secs(10)],
            "3 attempts: 5 s, then 10 s"
        );
        let longer = RetryPolicy {
            attempts: 6,
            ..policy
        };
        assert_eq!(
            longer.backoff().build().collect::<Vec<_>>(),
            [secs(5), secs(10), secs(20), secs(30), secs(30)],
            "doubling, capped at 30 s"
        );
        // Retry-After raises the delay but never past the cap.
        assert_eq!(policy.honour_retry_after(secs(5), Some(secs(8))), secs(8));
        assert_eq!(policy.honour_retry_after(secs(5), Some(secs(90))), secs(30));
        assert_eq!(policy.honour_retry_after(secs(10), Some(secs(1))), secs(10));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let reporter = Recorder::default();
        let result = retry(&fast(), &reporter, None, |n| async move {
            if n < 3 {
                Err(Flaky { retryable: true })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        let lines = reporter.lines();
        assert_eq!(lines.len(), 2, "one warning per failed attempt: {lines:?}");
        assert!(
            lines[0].starts_with("warning: attempt 1/"),
            "the warning counts attempts: {lines:?}"
        );
    }

    /// A permanent error stops after one attempt; a retryable one runs out of the three.
    #[tokio::test]
    async fn permanent_errors_stop_after_one_attempt_and_attempts_are_bounded() {
        for (retryable, attempts) in [(false, 1), (true, 3)] {
            let reporter = Recorder::default();
            let result: Result<(), _> = retry(&fast(), &reporter, None, |_| async move {
                Err(Flaky { retryable })
            })
            .await;
            let exhausted = result.unwrap_err();
            assert_eq!(exhausted.attempts, attempts, "retryable: {retryable}");
            assert_eq!(exhausted.ran_out(), retryable, "retryable: {retryable}");
        }
    }

    #[test]
    fn test_knobs_are_validated() {
        let env = ProcessEnv::fixed(&[(test_only::RETRY_ATTEMPTS, "0")], PathBuf::from("/"));
        let err = RetryPolicy::from_env(&env).unwrap_err();
        assert_eq!(err.class, crate::error::FailureClass::Usage);
        assert!(err.message.contains("KSAIL_TEST_RETRY_ATTEMPTS"));
        let env = ProcessEnv::fixed(
            &[
                (test_only::RETRY_ATTEMPTS, "5"),
                (test_only::RETRY_BASE_MS, "10"),
            ],
            PathBuf::from("/"),
        );
        let (policy, notes) = RetryPolicy::from_env(&env).unwrap();
        assert_eq!(policy.attempts, 5);
        assert_eq!(policy.base, Duration::from_millis(10));
        assert_eq!(notes.len(), 2);
    }
}
