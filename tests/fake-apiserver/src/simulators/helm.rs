//! Flux helm-controller stand-in for HelmRelease recovery (suspend, observe, resume, ready).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use super::{
    HELM_GROUP, generation, key_of, remove_condition, set_condition, split_key, suspended,
};
use crate::cluster::{Cluster, Simulator};
use crate::store::{EventKind, WriteEvent};

/// One reset, suspend or resume the simulator saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmAction {
    /// `"reset"`, `"suspend"`, `"resume"` or `"retry"` (a new generation).
    pub action: &'static str,
    /// `"<namespace>/<name>"`.
    pub key: String,
    pub at: Instant,
}

struct Inner {
    never_observe: HashSet<String>,
    never_ready: HashSet<String>,
    /// Play a helm-controller without reset requests (before Flux 2.2).
    ignore_resets: bool,
    order: Vec<HelmAction>,
}

/// On `spec.suspend: true` records `status.observedGeneration = generation` after
/// `observe_delay_ms` (unless told never to); on the following `suspend: false` becomes
/// `Ready=True` (`UpgradeSucceeded`, `Stalled` removed) after `ready_delay_ms`. Stuck start states
/// come from fixtures ([`crate::fixtures::helm_release`]).
pub struct HelmReleaseSim {
    observe_delay_ms: u64,
    ready_delay_ms: u64,
    inner: Mutex<Inner>,
}

impl HelmReleaseSim {
    pub fn new(observe_delay_ms: u64, ready_delay_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            observe_delay_ms,
            ready_delay_ms,
            inner: Mutex::new(Inner {
                never_observe: HashSet::new(),
                never_ready: HashSet::new(),
                ignore_resets: false,
                order: Vec::new(),
            }),
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The controller never records the observed generation of this suspended release.
    pub fn never_observe(&self, key: &str) {
        self.inner().never_observe.insert(key.to_string());
    }

    /// Play a helm-controller that does not know reset requests (before Flux 2.2): ksail's
    /// `resetAt` is never handled, so it falls back to suspend and resume.
    pub fn ignore_resets(&self) {
        self.inner().ignore_resets = true;
    }

    /// The release stays stuck after its resume (or its reset).
    pub fn never_ready(&self, key: &str) {
        self.inner().never_ready.insert(key.to_string());
    }

    /// Suspends and resumes seen so far, in order.
    pub fn order(&self) -> Vec<HelmAction> {
        self.inner().order.clone()
    }

    /// `["suspend ns/a", "resume ns/a", ...]`, for compact assertions.
    pub fn order_strings(&self) -> Vec<String> {
        self.order()
            .iter()
            .map(|a| format!("{} {}", a.action, a.key))
            .collect()
    }
}

impl HelmReleaseSim {
    /// helm-controller's reset request (`api/v2/annotations.go`): `resetAt` equal to
    /// `requestedAt` and not handled yet resets the failure counters; the controller records it
    /// in `status.lastHandledResetAt` (and the request in `lastHandledReconcileAt`), then retries
    /// the release, which becomes ready (unless told never to). Returns whether it was one.
    fn reset_requested(self: &Arc<Self>, cluster: &Cluster, ev: &WriteEvent) -> bool {
        let annotation = |name: &str| {
            ev.object
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let (Some(reset), Some(requested)) = (
            annotation("reconcile.fluxcd.io/resetAt"),
            annotation("reconcile.fluxcd.io/requestedAt"),
        ) else {
            return false;
        };
        let handled = ev
            .object
            .pointer("/status/lastHandledResetAt")
            .and_then(|v| v.as_str());
        if reset != requested || handled == Some(reset.as_str()) {
            return false;
        }
        let key = key_of(&ev.object);
        let mut inner = self.inner();
        if inner.ignore_resets {
            return false;
        }
        inner.order.push(HelmAction {
            action: "reset",
            key: key.clone(),
            at: Instant::now(),
        });
        let never_ready = inner.never_ready.contains(&key);
        drop(inner);
        let (ns, name) = split_key(&key);
        let ready_after = self.ready_delay_ms;
        cluster.after(self.observe_delay_ms, move |c| {
            c.update_status(HELM_GROUP, "helmreleases", &ns, &name, |s| {
                s["lastHandledResetAt"] = json!(reset);
                s["lastHandledReconcileAt"] = json!(reset);
            });
            if never_ready {
                return;
            }
            c.after(ready_after, move |c| upgrade_succeeded(c, &ns, &name));
        });
        true
    }
}

impl HelmReleaseSim {
    /// A new generation of a running release (the Kustomization applied a changed spec) clears
    /// the failure counters and is tried (helm-controller `internal/action/reset.go`
    /// `MustResetFailures`: the generation differs from the last attempt), so a stuck release is
    /// retried with the new configuration, which succeeds (unless told never to).
    fn spec_changed(&self, cluster: &Cluster, ev: &WriteEvent) {
        let changed = ev
            .old
            .as_ref()
            .is_some_and(|old| generation(old) != generation(&ev.object));
        if !changed || suspended(&ev.object) {
            return;
        }
        let key = key_of(&ev.object);
        let mut inner = self.inner();
        inner.order.push(HelmAction {
            action: "retry",
            key: key.clone(),
            at: Instant::now(),
        });
        if inner.never_ready.contains(&key) {
            return;
        }
        drop(inner);
        let (ns, name) = split_key(&key);
        cluster.after(self.ready_delay_ms, move |c| {
            upgrade_succeeded(c, &ns, &name)
        });
    }
}

impl Simulator for Arc<HelmReleaseSim> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if !ev.is(HELM_GROUP, "helmreleases") || ev.kind != EventKind::Modified || ev.by_simulator {
            return;
        }
        if self.reset_requested(cluster, ev) {
            return;
        }
        let was = ev.old.as_ref().is_some_and(suspended);
        let now = suspended(&ev.object);
        if was == now {
            self.spec_changed(cluster, ev);
            return;
        }
        let key = key_of(&ev.object);
        let (ns, name) = split_key(&key);
        let mut inner = self.inner();
        inner.order.push(HelmAction {
            action: if now { "suspend" } else { "resume" },
            key: key.clone(),
            at: Instant::now(),
        });
        if now {
            if inner.never_observe.contains(&key) {
                return;
            }
            cluster.after(self.observe_delay_ms, move |c| {
                let Some(obj) = c.get(HELM_GROUP, "helmreleases", &ns, &name) else {
                    return;
                };
                let g = generation(&obj);
                c.update_status(HELM_GROUP, "helmreleases", &ns, &name, |s| {
                    s["observedGeneration"] = json!(g)
                });
            });
        } else {
            if inner.never_ready.contains(&key) {
                return;
            }
            cluster.after(self.ready_delay_ms, move |c| {
                upgrade_succeeded(c, &ns, &name)
            });
        }
    }
}

/// The retried release succeeded: `Ready=True` (`UpgradeSucceeded`), `Stalled` gone. A release
/// suspended again meanwhile is left alone.
fn upgrade_succeeded(cluster: &Cluster, ns: &str, name: &str) {
    let Some(obj) = cluster.get(HELM_GROUP, "helmreleases", ns, name) else {
        return;
    };
    if suspended(&obj) {
        return;
    }
    let g = generation(&obj);
    let message = format!("Helm upgrade succeeded for release {ns}/{name}");
    cluster.update_status(HELM_GROUP, "helmreleases", ns, name, |s| {
        s["observedGeneration"] = json!(g);
        remove_condition(s, "Stalled");
        remove_condition(s, "Reconciling");
        set_condition(s, "Released", "True", "UpgradeSucceeded", &message);
        set_condition(s, "Ready", "True", "UpgradeSucceeded", &message);
    });
}
