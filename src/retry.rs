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
use crate::output::Printer;
use crate::process::ProcessEnv;

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

    /// The delay after failed attempt `n` (1-based): min(base × 2^(n−1), cap), raised to
    /// `retry_after` but never above the cap.
    pub fn delay_after(&self, failed_attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exponent = failed_attempt.saturating_sub(1).min(20);
        let computed = self.base.saturating_mul(1 << exponent).min(self.cap);
        retry_after.map_or(computed, |after| computed.max(after).min(self.cap))
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
    printer: &Printer,
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
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.base)
        .with_factor(2.0)
        .with_max_delay(policy.cap)
        .with_max_times(total as usize - 1);
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
        let n = started.load(Ordering::SeqCst);
        delay.map(|_| policy.delay_after(n, error.retry_after()))
    })
    .notify(|error: &E, delay| {
        let n = started.load(Ordering::SeqCst);
        printer.warn(&format!(
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
    use crate::output::PrinterConfig;
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
    fn delays_follow_the_policy_table() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay_after(1, None), Duration::from_secs(5));
        assert_eq!(policy.delay_after(2, None), Duration::from_secs(10));
        assert_eq!(policy.delay_after(5, None), Duration::from_secs(30));
        // Retry-After raises the delay but never past the cap.
        assert_eq!(
            policy.delay_after(1, Some(Duration::from_secs(8))),
            Duration::from_secs(8)
        );
        assert_eq!(
            policy.delay_after(1, Some(Duration::from_secs(90))),
            Duration::from_secs(30)
        );
        assert_eq!(
            policy.delay_after(2, Some(Duration::from_secs(1))),
            Duration::from_secs(10)
        );
    }

    #[tokio::test]
    async fn transient_errors_are_retried_until_success() {
        let printer = Printer::new(PrinterConfig::default());
        let result = retry(&fast(), &printer, None, |n| async move {
            if n < 3 {
                Err(Flaky { retryable: true })
            } else {
                Ok(n)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
    }

    #[tokio::test]
    async fn permanent_errors_stop_after_one_attempt() {
        let printer = Printer::new(PrinterConfig::default());
        let result: Result<(), _> = retry(&fast(), &printer, None, |_| async {
            Err(Flaky { retryable: false })
        })
        .await;
        let exhausted = result.unwrap_err();
        assert_eq!(exhausted.attempts, 1);
        assert!(!exhausted.ran_out());
    }

    #[tokio::test]
    async fn attempts_are_bounded() {
        let printer = Printer::new(PrinterConfig::default());
        let result: Result<(), _> = retry(&fast(), &printer, None, |_| async {
            Err(Flaky { retryable: true })
        })
        .await;
        let exhausted = result.unwrap_err();
        assert_eq!(exhausted.attempts, 3);
        assert!(exhausted.ran_out());
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
