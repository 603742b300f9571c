//! The handle simulators (and tests) use to read and write the fake cluster directly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

use crate::ServerOptions;
use crate::patch::merge_patch;
use crate::store::{State, WriteEvent};
use crate::types::ResourceType;
use crate::util::{name_of, namespace_of, str_at};

/// A controller stand-in: told about every write, it reacts by scheduling its own writes.
pub trait Simulator: Send + Sync + 'static {
    fn on_write(&self, cluster: &Cluster, event: &WriteEvent);
}

pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub sims: Mutex<Vec<Arc<dyn Simulator>>>,
    pub handle: tokio::runtime::Handle,
    pub options: ServerOptions,
    pub addr: SocketAddr,
    /// `true` while the server plays one that went away: open watches end, requests are dropped.
    pub away: tokio::sync::watch::Sender<bool>,
}

/// Direct access to the fake cluster's storage. Writes through it are not logged as requests,
/// but they bump resourceVersion, reach watchers and are seen by simulators.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) shared: Arc<Shared>,
}

impl Cluster {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge the server for everyone else.
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` after `ms` milliseconds on the server's runtime.
    pub fn after(&self, ms: u64, f: impl FnOnce(&Cluster) + Send + 'static) {
        let cluster = self.clone();
        self.shared.handle.spawn(async move {
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            f(&cluster);
        });
    }

    /// Runs a blocking `f` (for example a real registry lookup) after `ms` milliseconds.
    pub fn after_blocking(&self, ms: u64, f: impl FnOnce(&Cluster) + Send + 'static) {
        let cluster = self.clone();
        self.shared.handle.spawn(async move {
            if ms > 0 {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let _ = tokio::task::spawn_blocking(move || f(&cluster)).await;
        });
    }

    /// Tells every simulator about a write.
    pub(crate) fn dispatch(&self, event: &WriteEvent) {
        let sims: Vec<Arc<dyn Simulator>> = self
            .shared
            .sims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for sim in sims {
            sim.on_write(self, event);
        }
    }

    pub fn add_simulator(&self, sim: Arc<dyn Simulator>) {
        self.shared
            .sims
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sim);
    }

    pub fn resource_type(&self, group: &str, plural: &str) -> Option<ResourceType> {
        self.lock().type_by_plural(group, plural)
    }

    pub fn get(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let st = self.lock();
        let rt = st.type_by_plural(group, plural)?;
        st.get(&rt, namespace, name)
    }

    /// Every object of a group/resource, in all namespaces.
    pub fn list(&self, group: &str, plural: &str) -> Vec<Value> {
        let st = self.lock();
        let Some(rt) = st.type_by_plural(group, plural) else {
            return Vec::new();
        };
        st.list_objects(&rt, None, &Default::default())
    }

    /// Changes an object with `f` (no subresource rules: a controller's view). Nothing is written
    /// when `f` changes nothing. Returns the stored object.
    pub fn mutate(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        let ev = {
            let mut st = self.lock();
            let rt = st.type_by_plural(group, plural)?;
            let old = st.get(&rt, namespace, name)?;
            let mut new = old.clone();
            f(&mut new);
            if new == old {
                return Some(old);
            }
            st.commit(&rt, namespace, name, Some(new), false, true)?
        };
        let out = ev.object.clone();
        self.dispatch(&ev);
        Some(out)
    }

    /// Changes only `.status` (created as `{}` when absent) with `f`.
    pub fn update_status(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Value),
    ) -> Option<Value> {
        self.mutate(group, plural, namespace, name, |obj| {
            if let Value::Object(map) = obj {
                let status = map
                    .entry("status")
                    .or_insert_with(|| Value::Object(Default::default()));
                if !status.is_object() {
                    *status = Value::Object(Default::default());
                }
                f(status);
                if status.as_object().is_some_and(|m| m.is_empty()) {
                    map.remove("status");
                }
            }
        })
    }

    /// Creates the object, or merges it into the existing one (like server-side apply, as a
    /// controller would). The type comes from `apiVersion` and `kind`.
    pub fn apply(&self, obj: Value) -> Result<Value, String> {
        let ev = {
            let mut st = self.lock();
            let (api_version, kind) = (str_at(&obj, "/apiVersion"), str_at(&obj, "/kind"));
            let rt = st
                .type_for(api_version.unwrap_or(""), kind.unwrap_or(""))
                .ok_or_else(|| format!("type {api_version:?} {kind:?} is not served"))?;
            let (ns, name) = (namespace_of(&obj).to_string(), name_of(&obj).to_string());
            if name.is_empty() {
                return Err("object without metadata.name".into());
            }
            let new = match st.get(&rt, &ns, &name) {
                Some(mut existing) => {
                    let before = existing.clone();
                    merge_patch(&mut existing, &obj);
                    if existing == before {
                        return Ok(before);
                    }
                    existing
                }
                None => obj,
            };
            st.commit(&rt, &ns, &name, Some(new), false, true)
                .ok_or("the write did not happen")?
        };
        let out = ev.object.clone();
        self.dispatch(&ev);
        Ok(out)
    }

    /// Deletes an object; false when it did not exist.
    pub fn delete(&self, group: &str, plural: &str, namespace: &str, name: &str) -> bool {
        let ev = {
            let mut st = self.lock();
            let Some(rt) = st.type_by_plural(group, plural) else {
                return false;
            };
            if st.get(&rt, namespace, name).is_none() {
                return false;
            }
            st.commit(&rt, namespace, name, None, false, true)
        };
        match ev {
            Some(ev) => {
                self.dispatch(&ev);
                true
            }
            None => false,
        }
    }
}
