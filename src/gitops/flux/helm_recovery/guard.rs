//! The resume guard (reconcile.md#interruption): every release ksail is about to suspend is held
//! here until a resume has been tried for it, so that no path out of recovery — success, error,
//! cancellation or a panic — leaves a release suspended without a resume attempt.
//!
//! Resuming runs under its own budget, independent of the attempt deadline and of cancellation:
//! it is the clean-up after those have fired.
//!
//! When the guard is dropped with releases still held (the recovery future was dropped, or a
//! panic unwinds), it resumes them synchronously, because `Drop` cannot await:
//! - on a multi-thread runtime (what `main` uses) through `block_in_place` + `Handle::block_on`,
//!   so that the runtime's other workers keep driving the client's background tasks and I/O;
//! - otherwise (a current-thread runtime, or no runtime at all) on a helper thread with its own
//!   current-thread runtime, joined before `drop` returns. This is best-effort: the client's
//!   connection tasks live on the original runtime, which cannot run while it is blocked here, so
//!   a request may only end when the resume budget does.
//!
//! Neither path can panic (no `block_in_place` outside a multi-thread runtime, no `unwrap`), so a
//! drop during unwinding never turns into an abort.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, PatchParams};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::Instant;

use super::{ReleaseKey, RequestFailure, suspend_patch};
use crate::progress::Reporter;

/// Tries per resume (reconcile.md#reset, step 5).
const RESUME_TRIES: u32 = 3;
/// Pause before try n + 1 is n × this; short, because the budget is shared by every resume.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Resume patches in flight at once.
const RESUMES_IN_FLIGHT: usize = 8;

/// How a resume ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeOutcome {
    Resumed,
    /// The release was deleted meanwhile; nothing is left suspended.
    Gone,
    /// Every try failed; the reason of the last one.
    Failed(String),
}

/// What resuming needs; cheap to clone into a helper thread.
#[derive(Clone)]
struct Resumer<'a> {
    client: kube::Client,
    resource: ApiResource,
    budget: Duration,
    out: &'a dyn Reporter,
}

pub struct ResumeGuard<'a> {
    resumer: Resumer<'a>,
    held: Mutex<BTreeSet<ReleaseKey>>,
    /// Resumes that have ended but whose line is not printed yet (lines come out in key order).
    /// A drop in between prints them instead of sending those resumes again.
    unprinted: Mutex<BTreeMap<ReleaseKey, ResumeOutcome>>,
}

impl<'a> ResumeGuard<'a> {
    pub fn new(
        client: kube::Client,
        resource: ApiResource,
        budget: Duration,
        out: &'a dyn Reporter,
    ) -> Self {
        ResumeGuard {
            resumer: Resumer {
                client,
                resource,
                budget,
                out,
            },
            held: Mutex::new(BTreeSet::new()),
            unprinted: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn client(&self) -> &kube::Client {
        &self.resumer.client
    }

    pub fn resource(&self) -> &ApiResource {
        &self.resumer.resource
    }

    pub fn output(&self) -> &'a dyn Reporter {
        self.resumer.out
    }

    /// Hold `key`: call before its suspend patch is sent.
    pub fn hold(&self, key: &ReleaseKey) {
        lock(&self.held).insert(key.clone());
    }

    /// Stop holding `key` (its suspend was rejected, or its resume has been tried).
    pub fn release(&self, key: &ReleaseKey) {
        lock(&self.held).remove(key);
    }

    /// The held releases, sorted.
    pub fn held(&self) -> Vec<ReleaseKey> {
        lock(&self.held).iter().cloned().collect()
    }

    /// Resume every held release within the budget, printing one line per release in sorted
    /// order. A release leaves the guard as soon as its outcome is known (and printed), so a
    /// drop in the middle resumes only what is left.
    pub async fn resume_all(&self) -> BTreeMap<ReleaseKey, ResumeOutcome> {
        self.resumer
            .resume(self.held(), &self.held, &self.unprinted)
            .await
    }
}

impl Drop for ResumeGuard<'_> {
    fn drop(&mut self) {
        for (key, outcome) in std::mem::take(&mut *lock(&self.unprinted)) {
            self.resumer.print(&key, &outcome);
        }
        let left = lock(&self.held).len();
        if left == 0 {
            return;
        }
        tracing::debug!(
            "helm recovery: resume guard dropped with {left} release(s) held; resuming"
        );
        match Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| {
                    handle.block_on(self.resume_all());
                });
            }
            _ => self.resume_on_helper_thread(),
        }
    }
}

impl ResumeGuard<'_> {
    fn resume_on_helper_thread(&self) {
        let resumer = self.resumer.clone();
        let (held, unprinted) = (&self.held, &self.unprinted);
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("ksail-helm-resume".into())
                .spawn_scoped(scope, move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    match runtime {
                        Ok(runtime) => {
                            let keys: Vec<ReleaseKey> = lock(held).iter().cloned().collect();
                            runtime.block_on(resumer.resume(keys, held, unprinted));
                        }
                        Err(error) => {
                            tracing::debug!(
                                "helm recovery: cannot start a runtime to resume: {error}"
                            );
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::debug!("helm recovery: cannot start a thread to resume: {error}");
            }
        });
        // Whatever could not even be tried must still reach the user.
        for key in std::mem::take(&mut *lock(&self.held)) {
            self.resumer
                .out
                .warn(&resume_failed_line(&key, "no resume could be sent"));
        }
    }
}

impl Resumer<'_> {
    async fn resume(
        &self,
        keys: Vec<ReleaseKey>,
        held: &Mutex<BTreeSet<ReleaseKey>>,
        unprinted: &Mutex<BTreeMap<ReleaseKey, ResumeOutcome>>,
    ) -> BTreeMap<ReleaseKey, ResumeOutcome> {
        if keys.is_empty() {
            return BTreeMap::new();
        }
        let deadline = Instant::now() + self.budget;
        // `buffered` runs the resumes concurrently but yields them in key order, so the lines
        // come out sorted whatever order the server answers in. A release leaves `held` as soon
        // as its resume has ended, so that a drop before its line is printed does not send it
        // again (the drop prints the line instead).
        futures_util::stream::iter(keys)
            .map(|key| async move {
                let outcome = self.resume_one(&key, deadline).await;
                lock(held).remove(&key);
                lock(unprinted).insert(key.clone(), outcome.clone());
                (key, outcome)
            })
            .buffered(RESUMES_IN_FLIGHT)
            .inspect(|(key, outcome)| {
                if lock(unprinted).remove(key).is_some() {
                    self.print(key, outcome);
                }
            })
            .collect()
            .await
    }

    fn print(&self, key: &ReleaseKey, outcome: &ResumeOutcome) {
        match outcome {
            ResumeOutcome::Resumed => self.out.info(&format!("helmrelease {key}: resumed")),
            ResumeOutcome::Gone => {
                tracing::debug!("helm recovery: {key} was deleted; nothing to resume");
            }
            ResumeOutcome::Failed(reason) => self.out.warn(&resume_failed_line(key, reason)),
        }
    }

    /// Up to [`RESUME_TRIES`] tries, all before `deadline`. A definitive `4xx` ends the tries at
    /// once; a transient failure is tried again after a short pause.
    async fn resume_one(&self, key: &ReleaseKey, deadline: Instant) -> ResumeOutcome {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &self.resource);
        let (params, patch) = (PatchParams::default(), suspend_patch(false));
        let mut last = RequestFailure::TimedOut(self.budget);
        for tried in 1..=RESUME_TRIES {
            let request = api.patch(&key.name, &params, &patch);
            match tokio::time::timeout_at(deadline, request).await {
                Ok(Ok(_)) => return ResumeOutcome::Resumed,
                Ok(Err(error)) => last = RequestFailure::from_kube(&error),
                Err(_) => {
                    return ResumeOutcome::Failed(
                        RequestFailure::TimedOut(self.budget).to_string(),
                    );
                }
            }
            match last {
                RequestFailure::NotFound(_) => return ResumeOutcome::Gone,
                RequestFailure::Rejected(_) => break,
                RequestFailure::Transient(_) | RequestFailure::TimedOut(_) => {}
            }
            tracing::debug!("helm recovery: resume {key}: try {tried} failed: {last}");
            let next = Instant::now() + RETRY_PAUSE * tried;
            if tried == RESUME_TRIES || next >= deadline {
                break;
            }
            tokio::time::sleep_until(next).await;
        }
        ResumeOutcome::Failed(last.to_string())
    }
}

fn resume_failed_line(key: &ReleaseKey, reason: &str) -> String {
    format!(
        "helmrelease {key}: could not resume ({reason}); it is still suspended; run: flux resume helmrelease {} -n {}",
        key.name, key.namespace
    )
}

/// A poisoned lock only means another thread panicked while holding it; the data itself is
/// still valid, and the guard must keep working during that very unwinding.
fn lock<T>(data: &Mutex<T>) -> MutexGuard<'_, T> {
    data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
