//! Engine installation (cluster.md "Engine installation"): fetch the pinned upstream install
//! manifest (or the `KSAIL_*_MANIFEST` override) at run time, parse it as multi-document YAML,
//! and server-side apply it — CRDs first, then, once they are Established, the rest in file
//! order — and wait until its Deployments and StatefulSets are available.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::setup::read_failure;
use super::wait::{self, Poll};
use crate::config::GitOpsEngine;
use crate::error::Failure;
use crate::k8s::{K8sError, with_timeout};
use crate::progress::Reporter;
use crate::registry::{self, RegistryErrorKind};
use crate::retry::{self, RetryPolicy};

/// Overrides the Argo CD manifest source with a file path or URL.
pub use crate::env_vars::KSAIL_ARGOCD_MANIFEST as ARGOCD_MANIFEST_ENV;
/// Overrides the flux-operator manifest source with a file path or URL (air-gapped mirrors,
/// tests).
pub use crate::env_vars::KSAIL_FLUX_OPERATOR_MANIFEST as FLUX_OPERATOR_MANIFEST_ENV;
/// `{version}` is `spec.workload.flux.operatorVersion` (without `v`).
pub const FLUX_OPERATOR_MANIFEST_URL: &str = "https://github.com/controlplaneio-fluxcd/flux-operator/releases/download/v{version}/install.yaml";
/// `{version}` is [`ARGOCD_VERSION`]; must be ≥ 3.1 for OCI sources.
pub const ARGOCD_MANIFEST_URL: &str =
    "https://raw.githubusercontent.com/argoproj/argo-cd/v{version}/manifests/install.yaml";
pub const ARGOCD_VERSION: &str = "3.6.2";

pub const FIELD_MANAGER: &str = "ksail";
const CRD_KIND: &str = "CustomResourceDefinition";

/// Where the install manifest comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for ManifestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestSource::File(path) => write!(f, "{}", path.display()),
            ManifestSource::Url(url) => f.write_str(url),
        }
    }
}

/// One engine's installation: what the progress line names and where its objects go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInstall {
    /// `flux-operator 0.58.1` or `argo-cd v3.6.2`.
    pub label: String,
    pub source: ManifestSource,
    /// The namespace given to namespaced objects without one.
    pub namespace: &'static str,
}

/// The install for `engine` (`None` for no engine). `override_source` is the value of the
/// engine's `KSAIL_*_MANIFEST` variable; `cwd` resolves a relative file path.
pub fn engine_install(
    engine: GitOpsEngine,
    operator_version: &str,
    override_source: Option<String>,
    cwd: &std::path::Path,
) -> Option<EngineInstall> {
    let (label, template, version, namespace) = match engine {
        GitOpsEngine::None => return None,
        GitOpsEngine::Flux => (
            format!("flux-operator {operator_version}"),
            FLUX_OPERATOR_MANIFEST_URL,
            operator_version,
            crate::gitops::flux::resources::NAMESPACE,
        ),
        GitOpsEngine::ArgoCD => (
            format!("argo-cd v{ARGOCD_VERSION}"),
            ARGOCD_MANIFEST_URL,
            ARGOCD_VERSION,
            crate::gitops::argocd::resources::NAMESPACE,
        ),
    };
    let source = match override_source {
        Some(text) if text.starts_with("http://") || text.starts_with("https://") => {
            ManifestSource::Url(text)
        }
        Some(path) => ManifestSource::File(cwd.join(path)),
        None => ManifestSource::Url(template.replace("{version}", version)),
    };
    Some(EngineInstall {
        label,
        source,
        namespace,
    })
}

/// Read the manifest text. A failure exits 1 and names the path or URL.
pub async fn fetch(
    source: &ManifestSource,
    policy: &RetryPolicy,
    reporter: &dyn Reporter,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Failure> {
    match source {
        ManifestSource::File(path) => tokio::fs::read_to_string(path).await.map_err(|error| {
            Failure::failed(format!(
                "cannot read the engine manifest {}: {}; check {FLUX_OPERATOR_MANIFEST_ENV} / {ARGOCD_MANIFEST_ENV}",
                path.display(),
                crate::artifact::io_reason(&error)
            ))
        }),
        ManifestSource::Url(url) => {
            // The registry client's settings and classification: 404 and TLS failures are
            // final, 5xx and transport failures are retried.
            retry::retry(policy, reporter, None, |_| registry::http::get_text(url, env))
                .await
                .map_err(|exhausted| {
                    let check = match exhausted.error.kind() {
                        RegistryErrorKind::Status { code, .. } if *code < 500 => "check the URL",
                        _ => "check the network",
                    };
                    Failure::failed(format!(
                        "cannot download the engine manifest {url}: {}; {check}, or point {FLUX_OPERATOR_MANIFEST_ENV} / {ARGOCD_MANIFEST_ENV} at a local copy",
                        exhausted.error.reason()
                    ))
                })
        }
    }
}

/// The objects of a multi-document YAML manifest, in file order; empty documents are dropped.
pub fn parse_objects(text: &str, source: &ManifestSource) -> Result<Vec<Value>, Failure> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|error| {
        Failure::failed(format!(
            "the engine manifest {source} is not valid YAML: {}; check the file or URL",
            crate::error::one_line(&error.to_string())
        ))
    })?;
    let mut objects = Vec::new();
    for document in documents {
        match document {
            Value::Null => {}
            Value::Object(_)
                if document.get("kind").and_then(Value::as_str).is_some()
                    && document.get("apiVersion").and_then(Value::as_str).is_some() =>
            {
                // A `List` document carries its objects in `items`.
                if document["kind"] == "List" {
                    let items = document.get("items").and_then(Value::as_array);
                    objects.extend(items.into_iter().flatten().cloned());
                } else {
                    objects.push(document);
                }
            }
            _ => {
                return Err(Failure::failed(format!(
                    "the engine manifest {source} holds a document that is not a Kubernetes object; check the file or URL"
                )));
            }
        }
    }
    Ok(objects)
}

/// CRDs first, then the rest in file order (cluster.md "Apply").
pub fn split_crds(objects: Vec<Value>) -> (Vec<Value>, Vec<Value>) {
    objects
        .into_iter()
        .partition(|object| kind_of(object) == CRD_KIND)
}

fn kind_of(object: &Value) -> &str {
    object.get("kind").and_then(Value::as_str).unwrap_or("")
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn namespace_of(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|namespace| !namespace.is_empty())
}

/// Server-side applies objects of any kind, finding each kind's resource by discovery once.
pub struct Applier {
    client: kube::Client,
    resources: HashMap<(String, String), (ApiResource, bool)>,
}

impl Applier {
    pub fn new(client: kube::Client) -> Self {
        Applier {
            client,
            resources: HashMap::new(),
        }
    }

    /// Apply `object` (`fieldManager=ksail`, `force=true`). A namespaced object without a
    /// namespace gets `default_namespace`. Returns the namespace it was applied in.
    pub async fn apply(
        &mut self,
        mut object: Value,
        default_namespace: &str,
    ) -> Result<Option<String>, Failure> {
        let (resource, namespaced) = self.resource_for(&object).await?;
        let name = name_of(&object).to_string();
        let namespace = match (namespaced, namespace_of(&object)) {
            (false, _) => None,
            (true, Some(namespace)) => Some(namespace.to_string()),
            (true, None) => {
                object["metadata"]["namespace"] = json!(default_namespace);
                Some(default_namespace.to_string())
            }
        };
        let api: Api<DynamicObject> = match &namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let params = PatchParams::apply(FIELD_MANAGER).force();
        with_timeout(api.patch(&name, &params, &Patch::Apply(&object)))
            .await
            .map_err(|error| {
                Failure::failed(format!(
                    "server-side apply of {} {} failed: {}; check the cluster and run ksail cluster create again",
                    resource.kind,
                    qualified(namespace.as_deref(), &name),
                    error.reason()
                ))
            })?;
        Ok(namespace)
    }

    /// The live object `object` names, `Ok(None)` when absent.
    pub async fn get(&mut self, object: &Value, namespace: &str) -> Result<Option<Value>, Failure> {
        let (resource, namespaced) = self.resource_for(object).await?;
        let name = name_of(object);
        let api: Api<DynamicObject> = match namespaced {
            true => Api::namespaced_with(self.client.clone(), namespace, &resource),
            false => Api::all_with(self.client.clone(), &resource),
        };
        let live = with_timeout(api.get_opt(name)).await.map_err(|error| {
            let what = qualified(namespaced.then_some(namespace), name);
            read_failure(&format!("{} {what}", resource.kind), error)
        })?;
        Ok(live.and_then(|live| serde_json::to_value(live).ok()))
    }

    async fn resource_for(&mut self, object: &Value) -> Result<(ApiResource, bool), Failure> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = kind_of(object);
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.resources.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|error| {
                Failure::failed(format!(
                    "the API server does not serve {api_version} {kind}: {}; check that the cluster runs a supported Kubernetes version",
                    K8sError::from(error).reason()
                ))
            })?;
        let found = (resource, capabilities.scope == Scope::Namespaced);
        self.resources.insert(key, found.clone());
        Ok(found)
    }
}

fn qualified(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.to_string(),
    }
}

/// Whether the manifest's CRDs are Established and its workloads available already (a re-run
/// after a complete install).
pub async fn already_installed(client: &kube::Client, objects: &[Value], namespace: &str) -> bool {
    for object in objects {
        let ready = match kind_of(object) {
            CRD_KIND => crd_established(client, name_of(object)).await,
            "Deployment" | "StatefulSet" => {
                let ns = namespace_of(object).unwrap_or(namespace);
                workload_available(client, kind_of(object), ns, name_of(object)).await
            }
            _ => Ok(true),
        };
        if !matches!(ready, Ok(true)) {
            return false;
        }
    }
    true
}

/// Apply the manifest: the default namespace (when the manifest lacks it), the CRDs, wait for
/// them to be Established, then the rest in file order; then wait for the workloads.
pub async fn install(
    client: &kube::Client,
    objects: Vec<Value>,
    install: &EngineInstall,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), Failure> {
    let mut applier = Applier::new(client.clone());
    let has_namespace = objects
        .iter()
        .any(|o| kind_of(o) == "Namespace" && name_of(o) == install.namespace);
    if !has_namespace {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": install.namespace}});
        applier.apply(namespace, install.namespace).await?;
    }
    let (crds, rest) = split_crds(objects);
    for crd in &crds {
        applier.apply(crd.clone(), install.namespace).await?;
    }
    for crd in &crds {
        let name = name_of(crd).to_string();
        wait::until(deadline, || async {
            Ok(match crd_established(client, &name).await {
                Ok(true) => Poll::Ready(()),
                _ => Poll::Pending(format!("CRD {name} is not Established")),
            })
        })
        .await
        .map_err(|pending| wait::timed_out(&install.label, timeout, &pending))?;
    }
    let mut workloads = Vec::new();
    for object in rest {
        let kind = kind_of(&object).to_string();
        let name = name_of(&object).to_string();
        let namespace = applier.apply(object, install.namespace).await?;
        if matches!(kind.as_str(), "Deployment" | "StatefulSet") {
            workloads.push((kind, namespace.unwrap_or_default(), name));
        }
    }
    for (kind, namespace, name) in &workloads {
        wait::until(deadline, || async {
            Ok(
                match workload_available(client, kind, namespace, name).await {
                    Ok(true) => Poll::Ready(()),
                    _ => Poll::Pending(format!("{kind} {namespace}/{name} is not available")),
                },
            )
        })
        .await
        .map_err(|pending| wait::timed_out(&install.label, timeout, &pending))?;
    }
    Ok(())
}

async fn get_json(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, K8sError> {
    let api: Api<DynamicObject> = match namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let object = with_timeout(api.get_opt(name)).await?;
    Ok(object.and_then(|object| serde_json::to_value(object).ok()))
}

fn condition_true(object: &Value, condition_type: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == condition_type && c["status"] == "True")
}

async fn crd_established(client: &kube::Client, name: &str) -> Result<bool, K8sError> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apiextensions.k8s.io", "v1", CRD_KIND),
        "customresourcedefinitions",
    );
    let crd = get_json(client, &resource, None, name).await?;
    Ok(crd.is_some_and(|crd| condition_true(&crd, "Established")))
}

/// A Deployment is available when its `Available` condition is true and enough replicas are
/// available; a StatefulSet when enough replicas are ready.
async fn workload_available(
    client: &kube::Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<bool, K8sError> {
    let plural = if kind == "StatefulSet" {
        "statefulsets"
    } else {
        "deployments"
    };
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", kind), plural);
    let Some(object) = get_json(client, &resource, Some(namespace), name).await? else {
        return Ok(false);
    };
    let count = |pointer: &str| object.pointer(pointer).and_then(Value::as_i64);
    let wanted = count("/spec/replicas").unwrap_or(1);
    Ok(match kind {
        "StatefulSet" => count("/status/readyReplicas").unwrap_or(0) >= wanted,
        _ => {
            condition_true(&object, "Available")
                && count("/status/availableReplicas").unwrap_or(0) >= wanted
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cluster create` installs by default is what the real tier runs
    /// (`tests/real/versions.env`), so the shipped defaults are the versions the tests pin.
    #[test]
    fn default_engine_versions_are_the_real_tiers() {
        let pins = include_str!("../../tests/real/versions.env");
        let pin = |name: &str| {
            pins.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix("=v"))
                .unwrap_or_else(|| panic!("versions.env pins no {name}"))
        };
        assert_eq!(pin("ARGOCD"), ARGOCD_VERSION);
        assert_eq!(pin("FLUX_OPERATOR"), crate::config::FLUX_OPERATOR_VERSION);
    }

    #[test]
    fn sources_from_env_or_template() {
        let cwd = std::path::Path::new("/work");
        let flux = engine_install(GitOpsEngine::Flux, "0.58.1", None, cwd).unwrap();
        assert_eq!(flux.label, "flux-operator 0.58.1");
        assert_eq!(
            flux.source,
            ManifestSource::Url(
                "https://github.com/controlplaneio-fluxcd/flux-operator/releases/download/v0.58.1/install.yaml".into()
            )
        );
        assert_eq!(flux.namespace, "flux-system");
        let argo = engine_install(GitOpsEngine::ArgoCD, "0.58.1", None, cwd).unwrap();
        assert_eq!(
            argo.source,
            ManifestSource::Url(
                "https://raw.githubusercontent.com/argoproj/argo-cd/v3.6.2/manifests/install.yaml"
                    .into()
            )
        );
        assert_eq!(argo.namespace, "argocd");
        let local = engine_install(GitOpsEngine::Flux, "1.0.0", Some("m.yaml".into()), cwd);
        assert_eq!(
            local.unwrap().source,
            ManifestSource::File(PathBuf::from("/work/m.yaml"))
        );
        let mirror = engine_install(GitOpsEngine::Flux, "1", Some("http://x/m".into()), cwd);
        assert_eq!(
            mirror.unwrap().source,
            ManifestSource::Url("http://x/m".into())
        );
        assert!(engine_install(GitOpsEngine::None, "1", None, cwd).is_none());
    }

    #[test]
    fn multi_document_manifests_parse_in_order_with_crds_first() {
        let source = ManifestSource::File("m.yaml".into());
        let text = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: flux-system\n---\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: a.b\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: op\n";
        let objects = parse_objects(text, &source).unwrap();
        assert_eq!(objects.len(), 3);
        let (crds, rest) = split_crds(objects);
        assert_eq!(crds.len(), 1);
        let kinds: Vec<&str> = rest.iter().map(kind_of).collect();
        assert_eq!(kinds, ["Namespace", "Deployment"]);
    }

    #[test]
    fn bad_manifests_name_the_source() {
        let source = ManifestSource::Url("https://example.test/install.yaml".into());
        let error = parse_objects("a: [", &source).unwrap_err();
        assert!(
            error.message.contains("https://example.test/install.yaml"),
            "{}",
            error.message
        );
        let error = parse_objects("- 1\n", &source).unwrap_err();
        assert!(error.message.contains("not a Kubernetes object"));
    }
}
