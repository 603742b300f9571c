//! Controller simulators: opt-in hooks that react to writes (and their own timers) the way Flux,
//! the flux-operator, Argo CD and the workload controllers would. They are deterministic: what
//! they do depends only on the writes they see and their scripts; delays are in milliseconds.
//!
//! Each simulator is created with `new(...)`, scripted through its methods, and installed with
//! [`FakeApiServer::add_simulator`](crate::FakeApiServer::add_simulator). Scripts are keyed by
//! `"<namespace>/<name>"`. A script is a queue of outcomes: each handled request takes the next
//! one, and the last one stays.

mod argocd;
mod flux;
mod helm;
mod operator;
mod workloads;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};

pub use argocd::{AppOutcome, ArgoCd, OperationOutcome};
pub use flux::{ChildAction, FluxKustomization, FluxSource, KsOutcome, SourceOutcome};
pub use helm::{HelmAction, HelmReleaseSim};
pub use operator::FluxOperator;
pub use workloads::Workloads;

use crate::util::now_rfc3339;

pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";
pub const OPERATOR_GROUP: &str = "fluxcd.controlplane.io";
pub const ARGO_GROUP: &str = "argoproj.io";
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// Resolves the digest a source serves (`sha256:<hex>`), given the source object. It may block
/// (for example a real `HEAD` to a test registry); `None` means the tag cannot be resolved.
pub type DigestResolver = Arc<dyn Fn(&Value) -> Option<String> + Send + Sync>;

/// A resolver that always answers `digest`.
pub fn fixed_digest(digest: &str) -> DigestResolver {
    let d = normalize_digest(digest);
    Arc::new(move |_| Some(d.clone()))
}

/// `sha256:<hex>` from either form.
pub fn normalize_digest(d: &str) -> String {
    if d.contains(':') {
        d.to_string()
    } else {
        format!("sha256:{d}")
    }
}

/// Per-object outcome queues with a default.
#[derive(Clone, Debug)]
pub(crate) struct Script<T: Clone> {
    per_object: HashMap<String, VecDeque<T>>,
    default: T,
}

impl<T: Clone> Script<T> {
    pub fn new(default: T) -> Self {
        Self {
            per_object: HashMap::new(),
            default,
        }
    }
    pub fn set(&mut self, key: &str, outcomes: Vec<T>) {
        if outcomes.is_empty() {
            self.per_object.remove(key);
        } else {
            self.per_object.insert(key.to_string(), outcomes.into());
        }
    }
    pub fn set_default(&mut self, outcome: T) {
        self.default = outcome;
    }
    /// The outcome the next request for `key` will take, without taking it.
    pub fn peek(&self, key: &str) -> T {
        self.per_object
            .get(key)
            .and_then(|q| q.front().cloned())
            .unwrap_or_else(|| self.default.clone())
    }

    /// The next outcome for `key`; the last one of a queue stays.
    pub fn next(&mut self, key: &str) -> T {
        match self.per_object.get_mut(key) {
            Some(q) if q.len() > 1 => q.pop_front().unwrap_or_else(|| self.default.clone()),
            Some(q) => q.front().cloned().unwrap_or_else(|| self.default.clone()),
            None => self.default.clone(),
        }
    }
}

/// Keys with an action scheduled or running, plus keys that changed meanwhile (run again after).
#[derive(Default, Debug)]
pub(crate) struct Pending {
    running: HashSet<String>,
    dirty: HashSet<String>,
}

impl Pending {
    /// True when the caller should schedule an action for `key`.
    pub fn start(&mut self, key: &str) -> bool {
        if self.running.contains(key) {
            self.dirty.insert(key.to_string());
            false
        } else {
            self.running.insert(key.to_string());
            true
        }
    }
    /// Ends the action; true when something changed meanwhile and it must run again.
    pub fn finish(&mut self, key: &str) -> bool {
        self.running.remove(key);
        self.dirty.remove(key)
    }
}

pub(crate) fn key_of(obj: &Value) -> String {
    format!(
        "{}/{}",
        crate::util::namespace_of(obj),
        crate::util::name_of(obj)
    )
}

/// The namespace and name of a [`key_of`] key, owned (for a closure that outlives the key).
pub(crate) fn split_key(key: &str) -> (String, String) {
    key.split_once('/')
        .map(|(ns, name)| (ns.to_string(), name.to_string()))
        .unwrap_or_default()
}

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

/// `(status, reason)` of a condition.
pub fn condition_state<'a>(obj: &'a Value, type_: &str) -> Option<(&'a str, &'a str)> {
    let c = condition(obj, type_)?;
    Some((
        c.get("status").and_then(Value::as_str).unwrap_or(""),
        c.get("reason").and_then(Value::as_str).unwrap_or(""),
    ))
}

/// Sets a condition on a status object, keeping `lastTransitionTime` while the status is the same
/// (so re-writing an unchanged condition changes nothing).
pub fn set_condition(status: &mut Value, type_: &str, state: &str, reason: &str, message: &str) {
    if !status.is_object() {
        *status = json!({});
    }
    if let Value::Object(map) = status {
        let list = map.entry("conditions").or_insert_with(|| json!([]));
        if !list.is_array() {
            *list = json!([]);
        }
        let Value::Array(list) = list else { return };
        let existing = list
            .iter_mut()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_));
        let time = match &existing {
            Some(c) if c.get("status").and_then(Value::as_str) == Some(state) => c
                .get("lastTransitionTime")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(now_rfc3339),
            _ => now_rfc3339(),
        };
        let new = json!({"type": type_, "status": state, "reason": reason, "message": message, "lastTransitionTime": time});
        match existing {
            Some(c) => *c = new,
            None => list.push(new),
        }
    }
}

pub fn remove_condition(status: &mut Value, type_: &str) {
    if let Some(Value::Array(list)) = status.get_mut("conditions") {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some(type_));
    }
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

pub(crate) fn observed_generation(obj: &Value) -> Option<i64> {
    obj.pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
}

pub(crate) fn requested_at(obj: &Value) -> Option<String> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(REQUESTED_AT))
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The Flux "something to do" test: a new generation or an unhandled reconcile request. A
/// generation counts as seen when `status.observedGeneration` or the Ready condition's own
/// `observedGeneration` has it: real Flux controllers move the former only on success, and do
/// not reconcile again on their own status writes (controller-runtime's
/// `GenerationChangedPredicate`), where the fake would otherwise loop on a failing object.
pub(crate) fn flux_needs_reconcile(obj: &Value) -> bool {
    let handled = obj
        .pointer("/status/lastHandledReconcileAt")
        .and_then(Value::as_str);
    let seen_by_ready = condition(obj, "Ready")
        .and_then(|ready| ready.get("observedGeneration"))
        .and_then(Value::as_i64);
    let generation = Some(generation(obj));
    (observed_generation(obj) != generation && seen_by_ready != generation)
        || requested_at(obj).is_some_and(|r| Some(r.as_str()) != handled)
}

pub(crate) fn suspended(obj: &Value) -> bool {
    obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_queue_keeps_last() {
        let mut s = Script::new(0);
        s.set("a/b", vec![1, 2]);
        assert_eq!(
            (s.next("a/b"), s.next("a/b"), s.next("a/b"), s.next("x/y")),
            (1, 2, 2, 0)
        );
    }

    #[test]
    fn condition_time_kept_when_unchanged() {
        let mut st = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "A", "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}]});
        set_condition(&mut st, "Ready", "True", "B", "m");
        assert_eq!(
            st["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(st["conditions"][0]["reason"], "B");
        set_condition(&mut st, "Ready", "False", "C", "m");
        assert_ne!(
            st["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        set_condition(&mut st, "Stalled", "True", "D", "m");
        assert_eq!(st["conditions"].as_array().unwrap().len(), 2);
        remove_condition(&mut st, "Stalled");
        assert_eq!(st["conditions"].as_array().unwrap().len(), 1);
    }
}
