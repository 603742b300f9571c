//! Workload controllers: CRDs become `Established` (and served); Deployments, StatefulSets and
//! DaemonSets become available.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::{condition_state, generation, key_of, observed_generation, set_condition, split_key};
use crate::cluster::{Cluster, Simulator};
use crate::store::{EventKind, WriteEvent};

const CRD_GROUP: &str = "apiextensions.k8s.io";

/// After `delay_ms`, CRDs get `NamesAccepted` and `Established` (which makes the server serve
/// them) and workloads report all replicas ready and available, unless held back by name.
pub struct Workloads {
    delay_ms: u64,
    never_ready: Mutex<HashSet<String>>,
}

impl Workloads {
    pub fn new(delay_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            delay_ms,
            never_ready: Mutex::new(HashSet::new()),
        })
    }

    /// Keep this object (`"<namespace>/<name>"`, or `"/<name>"` for a CRD) from becoming ready.
    pub fn never_ready(&self, key: &str) {
        self.never_ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
    }

    fn held(&self, key: &str) -> bool {
        self.never_ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }
}

fn workload_status(plural: &str, obj: &Value, status: &mut Value) {
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    status["observedGeneration"] = json!(generation(obj));
    match plural {
        "daemonsets" => {
            for k in [
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
                "numberAvailable",
                "updatedNumberScheduled",
            ] {
                status[k] = json!(1);
            }
        }
        _ => {
            for k in [
                "replicas",
                "readyReplicas",
                "availableReplicas",
                "updatedReplicas",
            ] {
                status[k] = json!(replicas);
            }
            if plural == "statefulsets" {
                status["currentReplicas"] = json!(replicas);
                status["currentRevision"] = json!(format!("{}-1", crate::util::name_of(obj)));
                status["updateRevision"] = json!(format!("{}-1", crate::util::name_of(obj)));
            } else {
                set_condition(
                    status,
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                );
                set_condition(
                    status,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    "ReplicaSet has successfully progressed.",
                );
            }
        }
    }
}

impl Simulator for Arc<Workloads> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if ev.kind == EventKind::Deleted {
            return;
        }
        let key = key_of(&ev.object);
        if self.held(&key) {
            return;
        }
        let (ns, name) = split_key(&key);
        if ev.is(CRD_GROUP, "customresourcedefinitions") {
            if matches!(
                condition_state(&ev.object, "Established"),
                Some(("True", _))
            ) {
                return;
            }
            cluster.after(self.delay_ms, move |c| {
                // The closure runs under the state lock: read what it needs first.
                let Some(crd) = c_get_names(&name, c) else {
                    return;
                };
                c.update_status(CRD_GROUP, "customresourcedefinitions", "", &name, |s| {
                    s["acceptedNames"] = crd.0;
                    s["storedVersions"] = crd.1;
                    set_condition(
                        s,
                        "NamesAccepted",
                        "True",
                        "NoConflicts",
                        "no conflicts found",
                    );
                    set_condition(
                        s,
                        "Established",
                        "True",
                        "InitialNamesAccepted",
                        "the initial names have been accepted",
                    );
                });
            });
            return;
        }
        if ev.resource.group == "apps"
            && matches!(
                ev.resource.plural.as_str(),
                "deployments" | "statefulsets" | "daemonsets"
            )
            && observed_generation(&ev.object) != Some(generation(&ev.object))
        {
            let plural = ev.resource.plural.clone();
            cluster.after(self.delay_ms, move |c| {
                let Some(obj) = c.get("apps", &plural, &ns, &name) else {
                    return;
                };
                c.update_status("apps", &plural, &ns, &name, |s| {
                    workload_status(&plural, &obj, s)
                });
            });
        }
    }
}

/// `(acceptedNames, storedVersions)` of a CRD.
fn c_get_names(name: &str, c: &Cluster) -> Option<(Value, Value)> {
    let crd = c.get(CRD_GROUP, "customresourcedefinitions", "", name)?;
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").cloned())
                .collect()
        })
        .unwrap_or_default();
    Some((names, Value::Array(stored)))
}
