//! flux-operator stand-in: renders a FluxInstance's `spec.sync` into the sync source and the root
//! Kustomization, applying `spec.kustomize.patches`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::{
    KUSTOMIZE_GROUP, OPERATOR_GROUP, SOURCE_GROUP, flux_needs_reconcile, generation, key_of,
    requested_at, set_condition, split_key,
};
use crate::cluster::{Cluster, Simulator};
use crate::patch::json_patch;
use crate::store::{EventKind, WriteEvent};
use crate::util::{namespace_of, str_at};

/// When a FluxInstance is applied (or its generation changes), after `delay_ms`: create or
/// update the sync source (`spec.sync.kind`, name `spec.sync.name` or the namespace) and the
/// Kustomization of the same name, apply `spec.kustomize.patches` (JSON patch ops in YAML or JSON)
/// to matching generated objects, then set the FluxInstance `Ready=True`.
pub struct FluxOperator {
    delay_ms: u64,
    stopped: AtomicBool,
}

impl FluxOperator {
    pub fn new(delay_ms: u64) -> Arc<Self> {
        Arc::new(Self {
            delay_ms,
            stopped: AtomicBool::new(false),
        })
    }

    /// From now on FluxInstance changes are not carried into their objects, as with an operator
    /// that crashed or was scaled to zero.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }
}

/// Applies the patches whose target matches `obj` (kind and, when given, name).
fn apply_patches(instance: &Value, mut obj: Value) -> Value {
    let kind = str_at(&obj, "/kind").unwrap_or("").to_string();
    let name = crate::util::name_of(&obj).to_string();
    let Some(patches) = instance
        .pointer("/spec/kustomize/patches")
        .and_then(Value::as_array)
    else {
        return obj;
    };
    for p in patches {
        let target_kind = str_at(p, "/target/kind");
        let target_name = str_at(p, "/target/name");
        if target_kind.is_some_and(|k| k != kind) || target_name.is_some_and(|n| n != name) {
            continue;
        }
        let ops = match p.get("patch") {
            Some(Value::String(text)) => serde_json::from_str::<Value>(text)
                .ok()
                .or_else(|| serde_saphyr::from_str::<Value>(text).ok()),
            Some(v @ Value::Array(_)) => Some(v.clone()),
            _ => None,
        };
        // A strategic-merge patch (an object) is merged; JSON patch ops are applied.
        match ops {
            Some(ops @ Value::Array(_)) => {
                if let Ok(patched) = json_patch(&obj, &ops) {
                    obj = patched;
                }
            }
            Some(merge @ Value::Object(_)) => crate::patch::merge_patch(&mut obj, &merge),
            _ => {}
        }
    }
    obj
}

/// Creates the object, or replaces its `spec` (and merges labels) keeping its status.
fn upsert(cluster: &Cluster, group: &str, plural: &str, desired: Value) {
    let ns = namespace_of(&desired).to_string();
    let name = crate::util::name_of(&desired).to_string();
    if cluster.get(group, plural, &ns, &name).is_some() {
        cluster.mutate(group, plural, &ns, &name, |obj| {
            obj["spec"] = desired["spec"].clone();
            if let Some(Value::Object(labels)) = desired.pointer("/metadata/labels") {
                let meta = crate::util::obj_mut(obj, "metadata");
                if let Value::Object(existing) = meta.entry("labels").or_insert(json!({})) {
                    for (k, v) in labels {
                        existing.insert(k.clone(), v.clone());
                    }
                }
            }
        });
    } else {
        let _ = cluster.apply(desired);
    }
}

fn reconcile(cluster: &Cluster, ns: &str, name: &str) {
    let Some(instance) = cluster.get(OPERATOR_GROUP, "fluxinstances", ns, name) else {
        return;
    };
    let gen_ = generation(&instance);
    if !flux_needs_reconcile(&instance) {
        return;
    }
    let sync = instance.pointer("/spec/sync").cloned().unwrap_or(json!({}));
    let labels = json!({"app.kubernetes.io/managed-by": "flux-operator", "fluxcd.controlplane.io/name": name});
    if let Some(url) = str_at(&sync, "/url") {
        let kind = str_at(&sync, "/kind").unwrap_or("OCIRepository");
        let sync_name = str_at(&sync, "/name").unwrap_or(ns);
        let interval = str_at(&sync, "/interval").unwrap_or("1m");
        let reference = str_at(&sync, "/ref").unwrap_or("latest");
        let (plural, mut spec) = match kind {
            "GitRepository" => (
                "gitrepositories",
                json!({"url": url, "interval": interval, "ref": {"name": reference}}),
            ),
            _ => (
                "ocirepositories",
                json!({"url": url, "interval": interval, "ref": {"tag": reference}}),
            ),
        };
        if let Some(provider) = str_at(&sync, "/provider") {
            spec["provider"] = json!(provider);
        }
        if let Some(secret) = str_at(&sync, "/pullSecret") {
            spec["secretRef"] = json!({"name": secret});
        }
        // flux-operator writes the source at the version its Flux release serves (v1beta2 for an
        // OCIRepository before Flux 2.6): the served one.
        let source_version = cluster
            .resource_type(SOURCE_GROUP, plural)
            .map_or_else(|| "v1".to_string(), |t| t.version);
        let source = json!({
            "apiVersion": format!("{SOURCE_GROUP}/{source_version}"),
            "kind": kind,
            "metadata": {"name": sync_name, "namespace": ns, "labels": labels},
            "spec": spec,
        });
        upsert(
            cluster,
            SOURCE_GROUP,
            plural,
            apply_patches(&instance, source),
        );
        let kustomization = json!({
            "apiVersion": format!("{KUSTOMIZE_GROUP}/v1"),
            "kind": "Kustomization",
            "metadata": {"name": sync_name, "namespace": ns, "labels": labels},
            "spec": {
                "interval": interval,
                "path": str_at(&sync, "/path").unwrap_or("./"),
                "prune": true,
                "sourceRef": {"kind": kind, "name": sync_name},
            },
        });
        upsert(
            cluster,
            KUSTOMIZE_GROUP,
            "kustomizations",
            apply_patches(&instance, kustomization),
        );
    }
    let request = requested_at(&instance);
    cluster.update_status(OPERATOR_GROUP, "fluxinstances", ns, name, |s| {
        s["observedGeneration"] = json!(gen_);
        if let Some(r) = &request {
            s["lastHandledReconcileAt"] = json!(r);
        }
        set_condition(
            s,
            "Ready",
            "True",
            "ReconciliationSucceeded",
            "Reconciliation finished",
        );
    });
}

impl Simulator for Arc<FluxOperator> {
    fn on_write(&self, cluster: &Cluster, ev: &WriteEvent) {
        if !ev.is(OPERATOR_GROUP, "fluxinstances")
            || ev.kind == EventKind::Deleted
            || self.stopped.load(Ordering::SeqCst)
        {
            return;
        }
        if !flux_needs_reconcile(&ev.object) {
            return;
        }
        let key = key_of(&ev.object);
        let (ns, name) = split_key(&key);
        cluster.after(self.delay_ms, move |c| reconcile(c, &ns, &name));
    }
}
