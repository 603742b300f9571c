//! In-memory object storage, the global resourceVersion, watch history and the write verbs.
//!
//! Everything here runs under the server's one state lock, so each write is atomic with respect
//! to reads, watches and other writes.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::faults::FaultRule;
use crate::patch::{json_patch, merge_patch};
use crate::select::Selector;
use crate::types::ResourceType;
use crate::util::{now_rfc3339, obj_mut, status_body, str_at};
use crate::{ApplyRecord, LoggedRequest};

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";

/// Storage is version-agnostic (as in Kubernetes): one object per group/resource/namespace/name,
/// presented in whichever served version the client asks for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ObjKey {
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub name: String,
}

/// `ADDED`, `MODIFIED` or `DELETED`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Added => "ADDED",
            EventKind::Modified => "MODIFIED",
            EventKind::Deleted => "DELETED",
        }
    }
}

/// One retained change, for watches.
#[derive(Debug)]
pub(crate) struct HistEvent {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub kind: EventKind,
    pub object: Value,
}

/// An API error answered as a `kind: Status` body.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
        }
    }
    pub fn body(&self) -> Value {
        status_body(self.code, self.reason, &self.message)
    }
    fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", qualified(rt)),
        )
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    fn invalid(message: impl Into<String>) -> Self {
        Self::new(422, "Invalid", message)
    }
    fn conflict(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                qualified(rt)
            ),
        )
    }
}

/// `kustomizations.kustomize.toolkit.fluxcd.io`, or `configmaps` for the core group.
fn qualified(rt: &ResourceType) -> String {
    if rt.group.is_empty() {
        rt.plural.clone()
    } else {
        format!("{}.{}", rt.plural, rt.group)
    }
}

/// A write that happened: what watchers saw and what simulators react to.
#[derive(Clone, Debug)]
pub struct WriteEvent {
    pub kind: EventKind,
    pub resource: ResourceType,
    /// The object before the write (None on create).
    pub old: Option<Value>,
    /// The object after the write (for a delete: as it was when deleted).
    pub object: Value,
    /// Written by a simulator rather than by an API client.
    pub by_simulator: bool,
}

impl WriteEvent {
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.resource.group == group && self.resource.plural == plural
    }
}

/// How a patch body is interpreted, from its Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

pub(crate) struct State {
    pub types: Vec<ResourceType>,
    pub objects: BTreeMap<ObjKey, Value>,
    pub rv: u64,
    pub history: VecDeque<Arc<HistEvent>>,
    pub history_window: usize,
    /// The newest resourceVersion dropped from history: watches from before it get `410`.
    pub compacted_rv: u64,
    pub log: Vec<LoggedRequest>,
    pub faults: Vec<FaultRule>,
    pub unauthorized: bool,
    pub token: Option<String>,
    pub applies: Vec<ApplyRecord>,
    pub counter: u64,
    pub tx: broadcast::Sender<Arc<HistEvent>>,
}

impl State {
    pub fn new(types: Vec<ResourceType>, history_window: usize) -> Self {
        let (tx, _) = broadcast::channel(65536);
        Self {
            types,
            objects: BTreeMap::new(),
            rv: 1,
            history: VecDeque::new(),
            history_window,
            compacted_rv: 0,
            log: Vec::new(),
            faults: Vec::new(),
            unauthorized: false,
            token: None,
            applies: Vec::new(),
            counter: 0,
            tx,
        }
    }

    /// Adds or replaces a served type (same group, version and plural).
    pub fn register(&mut self, rt: ResourceType) {
        if let Some(existing) = self
            .types
            .iter_mut()
            .find(|t| t.group == rt.group && t.version == rt.version && t.plural == rt.plural)
        {
            *existing = rt;
        } else {
            self.types.push(rt);
        }
    }

    pub fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type for an object's `apiVersion` and `kind`.
    pub fn type_for(&self, api_version: &str, kind: &str) -> Option<ResourceType> {
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
            .cloned()
    }

    /// Any served version of a group/resource (the preferred one first).
    pub fn type_by_plural(&self, group: &str, plural: &str) -> Option<ResourceType> {
        let mut found: Vec<&ResourceType> = self
            .types
            .iter()
            .filter(|t| t.group == group && t.plural == plural)
            .collect();
        found.sort_by(|a, b| crate::types::compare_versions(&a.version, &b.version));
        found.first().map(|t| (*t).clone())
    }

    pub fn set_history_window(&mut self, n: usize) {
        self.history_window = n;
        self.trim_history();
    }

    fn trim_history(&mut self) {
        while self.history.len() > self.history_window {
            if let Some(ev) = self.history.pop_front() {
                self.compacted_rv = self.compacted_rv.max(ev.rv);
            }
        }
    }

    fn next_name_suffix(&mut self) -> String {
        self.counter += 1;
        // Deterministic, DNS-safe, five characters like the real generator.
        const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
        let mut n = self.counter;
        let mut s = String::new();
        for _ in 0..5 {
            s.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
            n /= ALPHABET.len() as u64;
        }
        s
    }

    fn new_uid(&mut self) -> String {
        self.counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.counter)
    }

    pub fn key(rt: &ResourceType, namespace: &str, name: &str) -> ObjKey {
        ObjKey {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// The stored object as the client's version presents it.
    pub fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut out = obj.clone();
        if let Value::Object(map) = &mut out {
            map.insert("apiVersion".into(), json!(rt.api_version()));
            map.insert("kind".into(), json!(rt.kind));
        }
        out
    }

    pub fn get(&self, rt: &ResourceType, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&Self::key(rt, namespace, name))
            .map(|o| Self::present(rt, o))
    }

    /// Objects of a type, optionally in one namespace, filtered by a selector.
    pub fn list_objects(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        sel: &Selector,
    ) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.group == rt.group && k.plural == rt.plural)
            .filter(|(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, o)| Self::present(rt, o))
            .filter(|o| sel.matches(o))
            .collect()
    }

    pub fn list(&self, rt: &ResourceType, namespace: Option<&str>, sel: &Selector) -> Value {
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": self.list_objects(rt, namespace, sel),
        })
    }

    /// Stores (or, with `None`, deletes) an object: server-managed metadata, generation, the
    /// global resourceVersion, watch history. `keep_generation` lets seeded fixtures choose it.
    pub fn commit(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        new: Option<Value>,
        keep_generation: bool,
        by_simulator: bool,
    ) -> Option<WriteEvent> {
        let key = Self::key(rt, namespace, name);
        let old = self.objects.get(&key).cloned();
        self.rv += 1;
        let rv = self.rv;
        let (kind, stored) = match new {
            None => {
                let mut gone = self.objects.remove(&key)?;
                obj_mut(&mut gone, "metadata")
                    .insert("resourceVersion".into(), json!(rv.to_string()));
                (EventKind::Deleted, gone)
            }
            Some(mut obj) => {
                let generation = match &old {
                    Some(o) => {
                        let g = o
                            .pointer("/metadata/generation")
                            .and_then(Value::as_i64)
                            .unwrap_or(1);
                        if spec_part(o) != spec_part(&obj) {
                            g + 1
                        } else {
                            g
                        }
                    }
                    None => 1,
                };
                let generation = if keep_generation {
                    obj.pointer("/metadata/generation")
                        .and_then(Value::as_i64)
                        .unwrap_or(generation)
                } else {
                    generation
                };
                let uid = match old.as_ref().and_then(|o| str_at(o, "/metadata/uid")) {
                    Some(u) => u.to_string(),
                    None => str_at(&obj, "/metadata/uid")
                        .map(str::to_string)
                        .unwrap_or_else(|| self.new_uid()),
                };
                let created = old
                    .as_ref()
                    .and_then(|o| str_at(o, "/metadata/creationTimestamp"))
                    .or_else(|| str_at(&obj, "/metadata/creationTimestamp"))
                    .map(str::to_string)
                    .unwrap_or_else(now_rfc3339);
                if let Value::Object(map) = &mut obj {
                    map.insert("apiVersion".into(), json!(rt.api_version()));
                    map.insert("kind".into(), json!(rt.kind));
                }
                let meta = obj_mut(&mut obj, "metadata");
                meta.insert("name".into(), json!(name));
                if rt.namespaced {
                    meta.insert("namespace".into(), json!(namespace));
                } else {
                    meta.remove("namespace");
                }
                meta.insert("uid".into(), json!(uid));
                meta.insert("creationTimestamp".into(), json!(created));
                meta.insert("generation".into(), json!(generation));
                meta.insert("resourceVersion".into(), json!(rv.to_string()));
                self.objects.insert(key, obj.clone());
                (
                    if old.is_some() {
                        EventKind::Modified
                    } else {
                        EventKind::Added
                    },
                    obj,
                )
            }
        };
        let hist = Arc::new(HistEvent {
            rv,
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            kind,
            object: stored.clone(),
        });
        self.history.push_back(hist.clone());
        self.trim_history();
        // No receivers is normal (no watch open).
        let _ = self.tx.send(hist);
        if rt.group == CRD_GROUP && rt.plural == CRD_PLURAL {
            self.crd_changed(kind, &stored);
        }
        Some(WriteEvent {
            kind,
            resource: rt.clone(),
            old,
            object: stored,
            by_simulator,
        })
    }

    /// A CRD serves its API once `Established=True`; deleting it stops serving and drops objects.
    fn crd_changed(&mut self, kind: EventKind, crd: &Value) {
        let types = crd_types(crd);
        if kind == EventKind::Deleted {
            for t in &types {
                self.types
                    .retain(|x| !(x.group == t.group && x.plural == t.plural));
                self.objects
                    .retain(|k, _| !(k.group == t.group && k.plural == t.plural));
            }
            return;
        }
        let established = crd
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some("Established")
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            });
        if established {
            for t in types {
                self.register(t);
            }
        }
    }

    /// POST: create with `409 AlreadyExists`.
    pub fn create(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        mut body: Value,
        dry_run: bool,
    ) -> Result<(Value, Option<WriteEvent>), ApiError> {
        check_body(rt, namespace, &body)?;
        let name = match str_at(&body, "/metadata/name").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match str_at(&body, "/metadata/generateName") {
                Some(prefix) => format!("{prefix}{}", self.next_name_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            },
        };
        if self.objects.contains_key(&Self::key(rt, namespace, &name)) {
            return Err(ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", qualified(rt)),
            ));
        }
        if rt.status_subresource
            && let Value::Object(map) = &mut body
        {
            map.remove("status");
        }
        obj_mut(&mut body, "metadata").remove("resourceVersion");
        if dry_run {
            return Ok((Self::present(rt, &body), None));
        }
        let ev = self.commit(rt, namespace, &name, Some(body), false, false);
        Ok(finish(rt, ev))
    }

    /// PUT: replace, `409 Conflict` on a stale resourceVersion.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        body: Value,
        status_only: bool,
        dry_run: bool,
    ) -> Result<(Value, Option<WriteEvent>), ApiError> {
        check_body(rt, namespace, &body)?;
        if str_at(&body, "/metadata/name").is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let old = self
            .objects
            .get(&Self::key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if let Some(rv) = str_at(&body, "/metadata/resourceVersion").filter(|r| !r.is_empty())
            && Some(rv) != str_at(&old, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(rt, name));
        }
        let new = apply_subresource_rules(rt, &old, body, status_only);
        if dry_run {
            return Ok((Self::present(rt, &new), None));
        }
        let ev = self.commit(rt, namespace, name, Some(new), false, false);
        Ok(finish(rt, ev))
    }

    /// PATCH (merge, JSON, strategic-as-merge, server-side apply).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        body: &[u8],
        status_only: bool,
        field_manager: Option<&str>,
        force: bool,
        dry_run: bool,
    ) -> Result<(Value, Option<WriteEvent>), ApiError> {
        let patch: Value = match kind {
            PatchKind::Apply => parse_apply_body(body)?,
            _ => serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("the patch body is not valid JSON: {e}"))
            })?,
        };
        let key = Self::key(rt, namespace, name);
        let old = self.objects.get(&key).cloned();
        if kind == PatchKind::Apply {
            let Some(manager) = field_manager.filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PATCH: fieldManager is required for apply requests",
                ));
            };
            check_body(rt, namespace, &patch)?;
            if str_at(&patch, "/metadata/name").is_some_and(|n| n != name) {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            self.applies.push(ApplyRecord {
                group: rt.group.clone(),
                resource: rt.plural.clone(),
                namespace: namespace.to_string(),
                name: name.to_string(),
                field_manager: manager.to_string(),
                force,
                created: old.is_none(),
            });
            if old.is_none() {
                if status_only {
                    return Err(ApiError::not_found(rt, name));
                }
                let mut obj = patch;
                if rt.status_subresource
                    && let Value::Object(map) = &mut obj
                {
                    map.remove("status");
                }
                if dry_run {
                    return Ok((Self::present(rt, &obj), None));
                }
                let ev = self.commit(rt, namespace, name, Some(obj), false, false);
                return Ok(finish(rt, ev));
            }
        }
        let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
        let mut candidate = Self::present(rt, &old);
        match kind {
            PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply => {
                merge_patch(&mut candidate, &patch)
            }
            PatchKind::Json => {
                candidate = json_patch(&candidate, &patch).map_err(ApiError::invalid)?;
            }
        }
        // A resourceVersion in the patch is a precondition, as on the real server.
        if str_at(&candidate, "/metadata/resourceVersion")
            != str_at(&old, "/metadata/resourceVersion")
        {
            return Err(ApiError::conflict(rt, name));
        }
        if str_at(&candidate, "/metadata/name") != Some(name) {
            return Err(ApiError::bad_request("the patch changes metadata.name"));
        }
        let new = apply_subresource_rules(rt, &old, candidate, status_only);
        if dry_run {
            return Ok((Self::present(rt, &new), None));
        }
        let ev = self.commit(rt, namespace, name, Some(new), false, false);
        Ok(finish(rt, ev))
    }

    pub fn delete(
        &mut self,
        rt: &ResourceType,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<(Value, Option<WriteEvent>), ApiError> {
        let old = self
            .objects
            .get(&Self::key(rt, namespace, name))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        if dry_run {
            return Ok((Self::present(rt, &old), None));
        }
        let ev = self.commit(rt, namespace, name, None, false, false);
        Ok(finish(rt, ev))
    }
}

fn finish(rt: &ResourceType, ev: Option<WriteEvent>) -> (Value, Option<WriteEvent>) {
    let obj = ev
        .as_ref()
        .map(|e| State::present(rt, &e.object))
        .unwrap_or(Value::Null);
    (obj, ev)
}

/// Everything except metadata, status and the type fields: what generation tracks.
pub(crate) fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Value::Object(map) = &mut v {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(k);
        }
    }
    v
}

/// `/status` writes change only `.status`; main-resource writes of kinds with the subresource
/// keep the stored `.status`.
fn apply_subresource_rules(
    rt: &ResourceType,
    old: &Value,
    candidate: Value,
    status_only: bool,
) -> Value {
    if status_only {
        let mut new = old.clone();
        if let Value::Object(map) = &mut new {
            match candidate.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        return new;
    }
    let mut new = candidate;
    if rt.status_subresource
        && let Value::Object(map) = &mut new
    {
        match old.get("status") {
            Some(s) => map.insert("status".into(), s.clone()),
            None => map.remove("status"),
        };
    }
    new
}

fn check_body(rt: &ResourceType, namespace: &str, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    if let Some(kind) = str_at(body, "/kind").filter(|k| *k != rt.kind) {
        return Err(ApiError::bad_request(format!(
            "the kind {kind:?} of the body does not match the resource {}",
            rt.plural
        )));
    }
    if rt.namespaced
        && let Some(ns) =
            str_at(body, "/metadata/namespace").filter(|n| !n.is_empty() && *n != namespace)
    {
        return Err(ApiError::bad_request(format!(
            "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
        )));
    }
    Ok(())
}

/// An apply body is YAML or JSON (JSON is tried first; it is what most clients send).
fn parse_apply_body(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("the apply body is neither JSON nor YAML: {e}")))
}

/// The types a CRD object describes (served versions only).
pub(crate) fn crd_types(crd: &Value) -> Vec<ResourceType> {
    let (Some(group), Some(kind), Some(plural)) = (
        str_at(crd, "/spec/group"),
        str_at(crd, "/spec/names/kind"),
        str_at(crd, "/spec/names/plural"),
    ) else {
        return Vec::new();
    };
    let namespaced = str_at(crd, "/spec/scope") != Some("Cluster");
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                .filter_map(|v| {
                    let version = v.get("name")?.as_str()?;
                    let status = v.pointer("/subresources/status").is_some();
                    Some(ResourceType::new(
                        group, version, kind, plural, namespaced, status,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A CRD object for a type, already `Established`.
pub(crate) fn crd_object(rt: &ResourceType) -> Value {
    let now = now_rfc3339();
    let mut version = json!({
        "name": rt.version,
        "served": true,
        "storage": true,
        "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
    });
    if rt.status_subresource {
        version["subresources"] = json!({"status": {}});
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", rt.plural, rt.group)},
        "spec": {
            "group": rt.group,
            "names": {"kind": rt.kind, "plural": rt.plural, "singular": rt.singular(), "listKind": format!("{}List", rt.kind)},
            "scope": if rt.namespaced { "Namespaced" } else { "Cluster" },
            "versions": [version],
        },
        "status": {
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
            ],
            "acceptedNames": {"kind": rt.kind, "plural": rt.plural},
            "storedVersions": [rt.version],
        },
    })
}
