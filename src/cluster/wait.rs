//! Bounded polling for the wait steps of create and update (registry, API server, engine
//! install, engine ready). Each step has its own deadline of `--timeout`; exceeding it exits 3.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Failure, FailureClass};

/// How often a wait step looks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// One look: done, or still waiting (with what is missing, for the timeout message).
pub enum Poll<T> {
    Ready(T),
    Pending(String),
}

/// Poll `look` until it is ready or `deadline` passes. An `Err` from `look` stops the wait at
/// once (a terminal failure); the last pending text is returned on timeout.
pub async fn until<T, F, Fut>(deadline: Instant, mut look: F) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, Failure>>,
{
    loop {
        match look().await.map_err(WaitError::Failed)? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(status) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(WaitError::TimedOut(status));
                }
                tokio::time::sleep(POLL_INTERVAL.min(deadline - now)).await;
            }
        }
    }
}

#[derive(Debug)]
pub enum WaitError {
    TimedOut(String),
    Failed(Failure),
}

/// The exit-3 failure for `what` not finishing within `timeout`, or the terminal failure as is.
pub fn timed_out(what: &str, timeout: Duration, error: &WaitError) -> Failure {
    match error {
        WaitError::Failed(failure) => failure.clone(),
        WaitError::TimedOut(status) => Failure::new(
            FailureClass::TimedOut,
            format!(
                "{what} did not become ready within {}: {status}; raise --timeout or check the cluster",
                crate::duration::format_go(timeout)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn times_out_with_the_last_status() {
        let deadline = Instant::now() + Duration::from_millis(30);
        let result: Result<(), _> =
            until(deadline, || async { Ok(Poll::Pending("not yet".into())) }).await;
        let failure = timed_out("registry", Duration::from_secs(600), &result.unwrap_err());
        assert_eq!(failure.class, FailureClass::TimedOut);
        assert_eq!(
            failure.message,
            "registry did not become ready within 10m0s: not yet; raise --timeout or check the cluster"
        );
    }

    #[tokio::test]
    async fn ready_returns_the_value() {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut n = 0;
        let value = until(deadline, || {
            n += 1;
            let done = n >= 2;
            async move {
                Ok(match done {
                    true => Poll::Ready(7),
                    false => Poll::Pending(String::new()),
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 7);
    }
}
