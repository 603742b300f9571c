//! The wait steps of create and update, each bounded by its own deadline of `--timeout`
//! (exceeding it exits 3): bounded polling for what has nothing to watch (registry, API server,
//! engine install), and [`until_watched`] for the engine's objects (engine ready), which judges
//! them whenever a watch reports a change.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use kube::api::ApiResource;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{Failure, FailureClass};
use crate::gitops::attempt::Watches;
use crate::gitops::watch::{self, Update};
use crate::k8s::K8sError;

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

/// The latest state of watched objects: `(kind, name)` → object.
#[derive(Debug, Default)]
pub struct Seen(BTreeMap<(String, String), Value>);

impl Seen {
    /// The object of `kind` named `name`, if it exists.
    pub fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.0.get(&(kind.to_string(), name.to_string()))
    }

    /// Seen objects as a watch of each kind would list them.
    #[cfg(test)]
    pub fn listed(objects: Vec<(&str, Value)>) -> Self {
        let mut seen = Seen::default();
        for (kind, object) in objects {
            seen.apply(kind, Update::Upsert(object))
                .expect("an upsert always applies");
        }
        seen
    }

    fn apply(&mut self, kind: &str, update: Update) -> Result<(), K8sError> {
        let key = |object: &Value| {
            let name = object.pointer("/metadata/name").and_then(Value::as_str);
            (kind.to_string(), name.unwrap_or_default().to_string())
        };
        match update {
            Update::Snapshot(objects) => {
                self.0.retain(|(seen_kind, _), _| seen_kind != kind);
                for object in objects {
                    self.0.insert(key(&object), object);
                }
            }
            Update::Upsert(object) => {
                self.0.insert(key(&object), object);
            }
            Update::Deleted(object) => {
                self.0.remove(&key(&object));
            }
            Update::ListFailed(error) => return Err(error),
        }
        Ok(())
    }
}

/// Watch `resources` (each in its namespace) and judge what is seen with `look` once every kind
/// has been listed and again after each change, until it is ready or `deadline` passes. Returns
/// the value and how many looks it took (1: ready at once). A failed list is `cannot_list`'s
/// failure for that kind; the watch would retry it, but an engine that was just installed and
/// answered a moment ago should be readable, so it ends the wait (as a failed GET did).
pub async fn until_watched<T>(
    deadline: Instant,
    client: &kube::Client,
    resources: &[(ApiResource, &str)],
    cannot_list: impl Fn(&str, K8sError) -> Failure,
    mut look: impl FnMut(&Seen) -> Result<Poll<T>, Failure>,
) -> Result<(T, u32), WaitError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _watches = Watches(
        resources
            .iter()
            .map(|(resource, namespace)| {
                watch::spawn_namespaced(client.clone(), resource.clone(), namespace, tx.clone())
            })
            .collect(),
    );
    drop(tx);
    let mut seen = Seen::default();
    let mut listed = std::collections::BTreeSet::new();
    let mut looks = 0;
    let mut status = "no object listed yet".to_string();
    loop {
        let received = tokio::select! {
            received = rx.recv() => received,
            () = tokio::time::sleep_until(deadline) => return Err(WaitError::TimedOut(status)),
        };
        let Some((kind, update)) = received else {
            return Err(WaitError::TimedOut(status));
        };
        if matches!(update, Update::Snapshot(_)) {
            listed.insert(kind.clone());
        }
        seen.apply(&kind, update)
            .map_err(|error| WaitError::Failed(cannot_list(&kind, error)))?;
        if listed.len() < resources.len() {
            continue;
        }
        looks += 1;
        match look(&seen).map_err(WaitError::Failed)? {
            Poll::Ready(value) => return Ok((value, looks)),
            Poll::Pending(now) => status = now,
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
