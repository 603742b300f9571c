//! Typed views of the Flux objects ksail reads: kube's `Object` over the few `spec` and `status`
//! fields the readiness rules need ([`FluxSpec`], [`FluxStatus`]), deserialized once per watch
//! event, then flattened into a [`FluxObject`] with namespaces defaulted. Every field is
//! optional, because a freshly created object has no status yet and that is a normal waiting
//! state, not an error.

use std::collections::BTreeMap;
use std::fmt;

use kube::core::Object;
use serde::Deserialize;
use serde_json::Value;

use super::ReadinessError;
use crate::gitops::report::ObjectName;

/// The Flux kinds that the reconcile rules know. Sources of other kinds (for example
/// `HelmChart` or `ExternalArtifact`) skip the revision gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FluxKind {
    Kustomization,
    OciRepository,
    GitRepository,
    Bucket,
}

impl FluxKind {
    /// The kind as the API spells it (`OCIRepository`), matched exactly like the API does.
    pub fn from_api_kind(kind: &str) -> Option<FluxKind> {
        match kind {
            "Kustomization" => Some(FluxKind::Kustomization),
            "OCIRepository" => Some(FluxKind::OciRepository),
            "GitRepository" => Some(FluxKind::GitRepository),
            "Bucket" => Some(FluxKind::Bucket),
            _ => None,
        }
    }

    pub fn api_kind(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "Kustomization",
            FluxKind::OciRepository => "OCIRepository",
            FluxKind::GitRepository => "GitRepository",
            FluxKind::Bucket => "Bucket",
        }
    }

    /// Lower-case, as in progress lines (`ocirepository flux-system/flux-system: ready`).
    pub fn display_name(self) -> &'static str {
        match self {
            FluxKind::Kustomization => "kustomization",
            FluxKind::OciRepository => "ocirepository",
            FluxKind::GitRepository => "gitrepository",
            FluxKind::Bucket => "bucket",
        }
    }

    pub fn is_source(self) -> bool {
        !matches!(self, FluxKind::Kustomization)
    }
}

impl fmt::Display for FluxKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Identifies one Flux object across list results, watch events and dependency edges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: FluxKind,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: FluxKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    pub fn kustomization(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectKey::new(FluxKind::Kustomization, namespace, name)
    }

    /// `namespace/name`, as in diagnostics rows and the summary line.
    pub fn namespaced_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The name the reports give it.
    pub fn object_name(&self) -> ObjectName {
        ObjectName::new(self.kind.api_kind(), &self.namespace, &self.name)
    }

    /// How a blocker is named after `blocked by `: a Kustomization as `infra/cert-manager`, a
    /// source with its kind (`ocirepository flux-system/flux-system`), as in reconcile.md.
    pub fn blocker_label(&self) -> String {
        match self.kind {
            FluxKind::Kustomization => self.namespaced_name(),
            _ => self.to_string(),
        }
    }
}

/// `kustomization apps/podinfo`, the prefix of every progress line.
impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// One entry of `status.conditions`. Absent strings are empty. Not k8s-openapi's `Condition`:
/// that one requires `lastTransitionTime`, which ksail never reads, and a condition without it
/// would make the whole object unreadable (docs/decisions.md, "Typed objects").
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub condition_type: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    /// The generation the controller saw when it set this condition. Flux stamps it on every
    /// condition it writes (fluxcd/pkg `runtime/conditions` `Set`), failures included, while
    /// `status.observedGeneration` moves only on success or stall.
    #[serde(rename = "observedGeneration")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// `spec.sourceRef`, with the namespace already defaulted to the Kustomization's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRef {
    /// As written in the spec; it may name a kind ksail does not know.
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

impl SourceRef {
    /// The source's key, or `None` for a kind without a revision gate.
    pub fn key(&self) -> Option<ObjectKey> {
        let kind = FluxKind::from_api_kind(&self.kind).filter(|kind| kind.is_source())?;
        Some(ObjectKey::new(kind, &self.namespace, &self.name))
    }
}

/// The fields of a Kustomization, OCIRepository, GitRepository or Bucket that the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxObject {
    pub key: ObjectKey,
    pub generation: Option<i64>,
    pub observed_generation: Option<i64>,
    pub last_handled_reconcile_at: Option<String>,
    pub conditions: Vec<Condition>,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    /// `status.artifact.revision` (sources).
    pub artifact_revision: Option<String>,
    pub suspend: bool,
    /// `spec.dependsOn`, namespaces defaulted to the object's own.
    pub depends_on: Vec<ObjectKey>,
    pub source_ref: Option<SourceRef>,
    pub annotations: BTreeMap<String, String>,
}

impl FluxObject {
    /// Parse an object whose JSON carries its `kind`, as list items and watch events do.
    #[cfg(test)]
    pub fn parse(object: &Value) -> Result<FluxObject, ReadinessError> {
        let kind_text = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind =
            FluxKind::from_api_kind(kind_text).ok_or_else(|| ReadinessError::UnknownKind {
                kind: kind_text.to_string(),
            })?;
        FluxObject::parse_as(kind, object)
    }

    /// Parse an object whose kind the caller knows (the `kind` member is ignored).
    pub fn parse_as(kind: FluxKind, object: &Value) -> Result<FluxObject, ReadinessError> {
        let invalid = |detail: String| ReadinessError::Invalid {
            kind: kind.api_kind().to_string(),
            detail,
        };
        let typed =
            FluxResource::deserialize(object).map_err(|error| invalid(error.to_string()))?;
        let metadata = typed.metadata;
        let name = metadata
            .name
            .filter(|name| !name.is_empty())
            .ok_or_else(|| ReadinessError::MissingName {
                kind: kind.api_kind().to_string(),
            })?;
        let namespace = metadata.namespace.unwrap_or_default();
        let spec = typed.spec.unwrap_or_default();
        let status = typed.status.unwrap_or_default();
        Ok(FluxObject {
            generation: metadata.generation,
            observed_generation: status.observed_generation,
            last_handled_reconcile_at: status.last_handled_reconcile_at,
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .filter(|condition| !condition.condition_type.is_empty())
                .collect(),
            last_applied_revision: status.last_applied_revision,
            last_attempted_revision: status.last_attempted_revision,
            artifact_revision: status.artifact.and_then(|artifact| artifact.revision),
            suspend: spec.suspend == Some(true),
            depends_on: spec
                .depends_on
                .unwrap_or_default()
                .into_iter()
                .filter_map(|entry| {
                    let name = entry.name?;
                    Some(ObjectKey::kustomization(
                        or_own(entry.namespace, &namespace),
                        name,
                    ))
                })
                .collect(),
            source_ref: spec.source_ref.and_then(|source| {
                Some(SourceRef {
                    kind: source.kind?,
                    name: source.name?,
                    namespace: or_own(source.namespace, &namespace),
                })
            }),
            annotations: metadata.annotations.unwrap_or_default(),
            key: ObjectKey::new(kind, namespace, name),
        })
    }

    pub fn condition(&self, condition_type: &str) -> Option<&Condition> {
        self.conditions
            .iter()
            .find(|condition| condition.condition_type == condition_type)
    }

    /// Completion condition 1: the controller has seen the current spec.
    pub fn generation_observed(&self) -> bool {
        self.observed_generation.is_some() && self.observed_generation == self.generation
    }

    /// Whether `condition` speaks of the current spec. kustomize- and source-controller set
    /// `status.observedGeneration` only when a reconcile succeeds or stalls
    /// (kustomize-controller `finalizeStatus`, source-controller `internal/reconcile`
    /// `ComputeReconcileResult`); a failure of a new generation shows only in the condition's
    /// own `observedGeneration`.
    pub fn condition_current(&self, condition: &Condition) -> bool {
        self.generation_observed()
            || (condition.observed_generation.is_some()
                && condition.observed_generation == self.generation)
    }

    /// Completion condition 2: the controller handled the request carrying `token`.
    pub fn handled_request(&self, token: &str) -> bool {
        self.last_handled_reconcile_at.as_deref() == Some(token)
    }
}

/// A reference's namespace, defaulted to the object's own when absent or empty.
fn or_own(namespace: Option<String>, own: &str) -> String {
    namespace
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| own.to_string())
}

/// A Kustomization, OCIRepository, GitRepository or Bucket as ksail deserializes it; `spec` is
/// optional too, so that a partial object is a waiting state rather than a parse error.
pub type FluxResource = Object<Option<FluxSpec>, FluxStatus>;

/// The `spec` fields the rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FluxSpec {
    pub suspend: Option<bool>,
    pub depends_on: Option<Vec<Reference>>,
    pub source_ref: Option<Reference>,
}

/// A `dependsOn` entry or the `sourceRef`; the namespace defaults to the object's own.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reference {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// The `status` fields the rules read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct FluxStatus {
    pub observed_generation: Option<i64>,
    pub last_handled_reconcile_at: Option<String>,
    pub conditions: Option<Vec<Condition>>,
    pub last_applied_revision: Option<String>,
    pub last_attempted_revision: Option<String>,
    pub artifact: Option<Artifact>,
}

/// `status.artifact` of a source.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Artifact {
    pub revision: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_field_of_a_kustomization() {
        let object = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 3,
                "annotations": {"reconcile.fluxcd.io/requestedAt": "t1"}},
            "spec": {"suspend": true,
                "sourceRef": {"kind": "OCIRepository", "name": "flux-system", "namespace": "flux-system"},
                "dependsOn": [{"name": "cert-manager", "namespace": "infra"}, {"name": "crds"}]},
            "status": {"observedGeneration": 2, "lastHandledReconcileAt": "t0",
                "lastAppliedRevision": "dev@sha256:aa", "lastAttemptedRevision": "dev@sha256:bb",
                "conditions": [{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "boom"}]}
        });
        let view = FluxObject::parse(&object).expect("valid");
        assert_eq!(view.key, ObjectKey::kustomization("apps", "podinfo"));
        assert_eq!(view.generation, Some(3));
        assert_eq!(view.observed_generation, Some(2));
        assert_eq!(view.last_handled_reconcile_at.as_deref(), Some("t0"));
        assert_eq!(view.last_applied_revision.as_deref(), Some("dev@sha256:aa"));
        assert_eq!(
            view.last_attempted_revision.as_deref(),
            Some("dev@sha256:bb")
        );
        assert!(view.suspend);
        assert_eq!(
            view.depends_on,
            vec![
                ObjectKey::kustomization("infra", "cert-manager"),
                ObjectKey::kustomization("apps", "crds"),
            ]
        );
        let source = view.source_ref.clone().expect("sourceRef");
        assert_eq!(
            source.key(),
            Some(ObjectKey::new(
                FluxKind::OciRepository,
                "flux-system",
                "flux-system"
            ))
        );
        assert_eq!(
            view.annotations
                .get("reconcile.fluxcd.io/requestedAt")
                .map(String::as_str),
            Some("t1")
        );
        let ready = view.condition("Ready").expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "BuildFailed")
        );
        assert!(!view.generation_observed());
        assert!(!view.handled_request("t1"));
    }

    #[test]
    fn parses_a_source_and_defaults_missing_fields() {
        let object = json!({
            "kind": "OCIRepository",
            "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
            "status": {"artifact": {"revision": "dev@sha256:cc"}}
        });
        let view = FluxObject::parse(&object).expect("valid");
        assert_eq!(
            view.key.to_string(),
            "ocirepository flux-system/flux-system"
        );
        assert_eq!(view.artifact_revision.as_deref(), Some("dev@sha256:cc"));
        assert!(view.conditions.is_empty());
        assert!(!view.suspend);
        assert!(view.source_ref.is_none());
    }

    #[test]
    fn source_ref_namespace_defaults_and_unknown_kinds_have_no_key() {
        let object = json!({
            "kind": "Kustomization",
            "metadata": {"name": "a", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "ExternalArtifact", "name": "x"}}
        });
        let source = FluxObject::parse(&object)
            .expect("valid")
            .source_ref
            .expect("sourceRef");
        assert_eq!(source.namespace, "apps");
        assert_eq!(source.key(), None);
    }

    #[test]
    fn rejects_unknown_kinds_and_missing_names() {
        assert_eq!(
            FluxObject::parse(&json!({"kind": "HelmRelease", "metadata": {"name": "x"}})),
            Err(ReadinessError::UnknownKind {
                kind: "HelmRelease".into()
            })
        );
        assert!(matches!(
            FluxObject::parse(&json!({"kind": "Kustomization", "metadata": {}})),
            Err(ReadinessError::MissingName { .. })
        ));
        let view = FluxObject::parse_as(FluxKind::Bucket, &json!({"metadata": {"name": "b"}}));
        assert_eq!(view.expect("kind given").key.kind, FluxKind::Bucket);
    }

    #[test]
    fn keys_display_like_progress_lines() {
        let key = ObjectKey::kustomization("apps", "podinfo");
        assert_eq!(key.to_string(), "kustomization apps/podinfo");
        assert_eq!(key.blocker_label(), "apps/podinfo");
        let source = ObjectKey::new(FluxKind::OciRepository, "flux-system", "flux-system");
        assert_eq!(source.to_string(), "ocirepository flux-system/flux-system");
        assert_eq!(
            source.blocker_label(),
            "ocirepository flux-system/flux-system"
        );
        assert_eq!(
            ObjectKey::new(FluxKind::GitRepository, "a", "b").to_string(),
            "gitrepository a/b"
        );
    }
}
