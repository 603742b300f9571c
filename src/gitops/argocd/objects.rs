//! The Argo CD Application as ksail reads it: the few `spec`, `operation` and `status` fields the
//! rules use, deserialized once per watch event. Every field is optional, because a new
//! Application has no status yet and that is a waiting state, not an error.
//!
//! Not kube's `Object<Spec, Status>`: an Application carries a third top-level member,
//! `operation`, whose presence the rules read, and `Object` drops it (docs/decisions.md, "Typed
//! objects").

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::Value;

/// An `argoproj.io/v1alpha1` Application.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Application {
    pub metadata: ObjectMeta,
    pub spec: ApplicationSpec,
    /// The operation requested or running; the controller removes it when the operation ends.
    /// Only its presence is read.
    pub operation: Option<Value>,
    pub status: ApplicationStatus,
}

impl Application {
    /// Read an Application from a list item, watch event or patch response.
    pub fn parse(object: &Value) -> Result<Application, serde_json::Error> {
        Application::deserialize(object)
    }

    pub fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.metadata.namespace.as_deref()
    }

    pub fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }

    pub fn has_annotation(&self, key: &str) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .is_some_and(|annotations| annotations.contains_key(key))
    }

    /// Every `repoURL`: `spec.source` and each of `spec.sources`.
    pub fn repo_urls(&self) -> impl Iterator<Item = &str> {
        self.spec
            .source
            .iter()
            .chain(self.spec.sources.iter().flatten())
            .filter_map(|source| source.repo_url.as_deref())
    }

    pub fn is_multi_source(&self) -> bool {
        self.spec
            .sources
            .as_ref()
            .is_some_and(|sources| !sources.is_empty())
    }

    pub fn sync_policy(&self) -> Option<&SyncPolicy> {
        self.spec.sync_policy.as_ref()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationSpec {
    pub source: Option<Source>,
    pub sources: Option<Vec<Source>>,
    pub sync_policy: Option<SyncPolicy>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Source {
    #[serde(rename = "repoURL")]
    pub repo_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SyncPolicy {
    /// The Application's own sync retry strategy, carried as is into ksail's sync operation.
    pub retry: Option<Value>,
    pub sync_options: Option<Vec<String>>,
    pub automated: Option<Automated>,
}

/// `spec.syncPolicy.automated`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Automated {
    pub prune: Option<bool>,
    /// `false` turns automated sync off while keeping its settings (Argo CD 3.x).
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ApplicationStatus {
    pub sync: SyncStatus,
    pub health: HealthStatus,
    pub reconciled_at: Option<String>,
    pub conditions: Option<Vec<ApplicationCondition>>,
    pub operation_state: Option<OperationState>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    pub status: Option<String>,
    pub revision: Option<String>,
    pub revisions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HealthStatus {
    pub status: Option<String>,
}

/// An entry of `status.conditions` (Argo CD's own shape: a type and a message, no status).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApplicationCondition {
    #[serde(rename = "type")]
    pub condition_type: Option<String>,
    pub message: Option<String>,
}

/// `status.operationState`, present once any operation ran.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OperationState {
    pub phase: Option<String>,
    pub message: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Failed attempts the controller has retried so far.
    pub retry_count: Option<i64>,
    pub operation: Option<Operation>,
    pub sync_result: Option<SyncResult>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Operation {
    pub sync: Option<SyncOperation>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SyncOperation {
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SyncResult {
    pub revision: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_field_is_optional() {
        let application = Application::parse(&json!({})).expect("an empty object parses");
        assert!(application.name().is_none());
        assert!(application.operation.is_none());
        assert!(application.status.operation_state.is_none());
        assert_eq!(application.repo_urls().count(), 0);
    }

    #[test]
    fn reads_the_fields_the_rules_use() {
        let application = Application::parse(&json!({
            "metadata": {"name": "web", "namespace": "argocd", "resourceVersion": "7",
                "annotations": {"argocd.argoproj.io/refresh": "normal"}},
            "spec": {"source": {"repoURL": "oci://a"}, "sources": [{"repoURL": "oci://b"}, {}],
                "syncPolicy": {"retry": {"limit": 2}, "syncOptions": ["ServerSideApply=true"]}},
            "operation": {"sync": {}},
            "status": {"sync": {"status": "Synced", "revision": "sha256:aa"},
                "health": {"status": "Healthy"},
                "operationState": {"phase": "Running", "retryCount": 1,
                    "operation": {"sync": {"revision": "sha256:bb"}}}}
        }))
        .expect("valid");
        assert_eq!(application.name(), Some("web"));
        assert_eq!(application.resource_version(), Some("7"));
        assert!(application.has_annotation("argocd.argoproj.io/refresh"));
        assert_eq!(
            application.repo_urls().collect::<Vec<_>>(),
            ["oci://a", "oci://b"]
        );
        assert!(application.is_multi_source());
        let policy = application.sync_policy().expect("syncPolicy");
        assert!(policy.retry.is_some());
        assert!(application.operation.is_some());
        let state = application.status.operation_state.expect("operationState");
        assert_eq!(state.retry_count, Some(1));
        assert_eq!(
            state
                .operation
                .and_then(|op| op.sync)
                .and_then(|s| s.revision),
            Some("sha256:bb".to_string())
        );
    }

    #[test]
    fn a_null_operation_is_no_operation() {
        let application = Application::parse(&json!({"operation": null})).expect("valid");
        assert!(application.operation.is_none());
    }
}
