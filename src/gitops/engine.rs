//! Which GitOps engine a reconcile talks to, and which API versions of its objects it uses
//! (reconcile.md#engine-selection). Both are decided from one discovery request, `GET /apis`;
//! everything after that request is pure.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::APIGroupList;
use kube::api::ApiResource;
use kube::client::APIGroupDiscoveryList;
use kube::core::discovery::v2::ACCEPT_AGGREGATED_DISCOVERY_V2;
use serde_json::Value;

use crate::config::GitOpsEngine;
use crate::error::Failure;
use crate::gitops::Engine;
use crate::k8s::{K8sError, with_timeout};

use crate::gitops::argocd::resources::{self as argocd, GROUP as ARGOCD_GROUP};
use crate::gitops::flux::resources::{self as flux, KUSTOMIZE_GROUP};
#[cfg(test)]
use crate::gitops::flux::resources::{
    HELM_GROUP, OPERATOR_GROUP as FLUX_OPERATOR_GROUP, SOURCE_GROUP,
};

/// A kind ksail reads or writes: its API group, the versions ksail accepts (in order of preference
/// when the server's preferred version is not among them), kind and plural. Each engine's
/// `resources` module defines its kinds with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub versions: &'static [&'static str],
    pub kind: &'static str,
    pub plural: &'static str,
}

impl Resource {
    /// The resource at `version`.
    pub fn at(&self, version: &str) -> ApiResource {
        ApiResource {
            api_version: format!("{}/{version}", self.group),
            group: self.group.to_string(),
            version: version.to_string(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// The resource at the version ksail prefers (the first accepted), for objects ksail writes.
    pub fn preferred(&self) -> ApiResource {
        self.at(self.versions[0])
    }

    /// `group/version` of [`Resource::preferred`], as an object's `apiVersion`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.versions[0])
    }
}

/// Flux counts as installed when this version of [`KUSTOMIZE_GROUP`] is served.
pub const FLUX_DETECTION_VERSION: &str = "v1";
/// Argo CD counts as installed when this version of [`ARGOCD_GROUP`] is served.
pub const ARGOCD_DETECTION_VERSION: &str = "v1alpha1";

/// One API group the server serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServedGroup {
    pub name: String,
    /// Served versions, in the server's order.
    pub versions: Vec<String>,
    pub preferred: Option<String>,
    /// The kinds each version serves, where discovery said so. A version missing here is taken to
    /// serve every kind of the group (its resource list could not be read).
    pub kinds: BTreeMap<String, Vec<String>>,
}

impl ServedGroup {
    /// Whether `version` serves `kind`: a group serves a kind only in some of its versions
    /// (source.toolkit.fluxcd.io serves OCIRepository at v1 only from source-controller v1.6).
    fn serves_kind(&self, version: &str, kind: &str) -> bool {
        self.versions.iter().any(|served| served == version)
            && self
                .kinds
                .get(version)
                .is_none_or(|kinds| kinds.iter().any(|k| k == kind))
    }
}

/// The `APIGroupList` of `GET /apis`, reduced to what selection needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiGroups {
    pub groups: Vec<ServedGroup>,
}

impl ApiGroups {
    pub fn from_list(list: APIGroupList) -> Self {
        let groups = list
            .groups
            .into_iter()
            .map(|group| ServedGroup {
                name: group.name,
                versions: group
                    .versions
                    .into_iter()
                    .map(|version| version.version)
                    .collect(),
                preferred: group.preferred_version.map(|preferred| preferred.version),
                kinds: BTreeMap::new(),
            })
            .collect();
        ApiGroups { groups }
    }

    /// The groups of an aggregated discovery document (`APIGroupDiscoveryList`,
    /// apidiscovery.k8s.io/v2): every group with its versions, in the server's order of
    /// preference, and the kinds each version serves.
    pub fn from_aggregated(list: &APIGroupDiscoveryList) -> Self {
        let groups = list
            .items
            .iter()
            .map(|group| {
                let versions: Vec<(String, Vec<String>)> = group
                    .versions
                    .iter()
                    .filter_map(|v| {
                        let kinds = v
                            .resources
                            .iter()
                            .filter_map(|r| r.response_kind.as_ref()?.kind.clone())
                            .collect();
                        Some((v.version.clone()?, kinds))
                    })
                    .collect();
                ServedGroup {
                    name: group
                        .metadata
                        .as_ref()
                        .and_then(|metadata| metadata.name.clone())
                        .unwrap_or_default(),
                    versions: versions
                        .iter()
                        .map(|(version, _)| version.clone())
                        .collect(),
                    preferred: versions.first().map(|(version, _)| version.clone()),
                    kinds: versions.into_iter().collect(),
                }
            })
            .collect();
        ApiGroups { groups }
    }

    pub fn group(&self, name: &str) -> Option<&ServedGroup> {
        self.groups.iter().find(|group| group.name == name)
    }

    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.group(group)
            .is_some_and(|group| group.versions.iter().any(|served| served == version))
    }

    /// The version of `resource` to use: the server's preferred version of the group when it is
    /// allowed and serves the kind, else the first allowed version (in the order given) that
    /// serves the kind. Chosen per kind, not per group.
    pub fn choose(&self, resource: &Resource) -> Option<ApiResource> {
        let served = self.group(resource.group)?;
        let usable = |version: &str| {
            resource.versions.contains(&version) && served.serves_kind(version, resource.kind)
        };
        served
            .preferred
            .iter()
            .map(String::as_str)
            .chain(resource.versions.iter().copied())
            .find(|version| usable(version))
            .map(|version| resource.at(version))
    }

    pub fn flux_served(&self) -> bool {
        self.serves(KUSTOMIZE_GROUP, FLUX_DETECTION_VERSION)
    }

    pub fn argocd_served(&self) -> bool {
        self.serves(ARGOCD_GROUP, ARGOCD_DETECTION_VERSION)
    }
}

/// The groups whose kinds ksail uses, for which the legacy path reads resource lists.
const ENGINE_RESOURCES: [&Resource; 7] = [
    &flux::KUSTOMIZATION,
    &flux::OCI_REPOSITORY,
    &flux::GIT_REPOSITORY,
    &flux::BUCKET,
    &flux::HELM_RELEASE,
    &flux::FLUX_INSTANCE,
    &argocd::APPLICATION,
];

/// Read the served API groups and the kinds of each version. One request, `GET /apis`, on a
/// server with aggregated discovery; otherwise the `APIGroupList` plus, concurrently, the
/// resource list of each served version ksail accepts for an engine kind.
pub async fn discover_apis(client: &kube::Client) -> Result<ApiGroups, K8sError> {
    let request = http::Request::get("/apis")
        // Aggregated discovery first (Kubernetes 1.30+ serves it: one request names every
        // group, version and kind), the legacy `APIGroupList` as the last alternative.
        .header(http::header::ACCEPT, ACCEPT_AGGREGATED_DISCOVERY_V2)
        .body(Vec::new())
        .map_err(|error| K8sError::Kube(kube::Error::HttpError(error)))?;
    let document: Value = match with_timeout(client.request(request)).await {
        Ok(document) => document,
        // A server that refuses the aggregated form outright.
        Err(error) if error.status_code() == Some(406) => {
            let list = with_timeout(client.list_api_groups()).await?;
            return Ok(with_resource_lists(client, ApiGroups::from_list(list)).await);
        }
        Err(error) => return Err(error),
    };
    if document.get("kind").and_then(Value::as_str) == Some("APIGroupDiscoveryList") {
        let list: APIGroupDiscoveryList = serde_json::from_value(document)
            .map_err(|error| K8sError::Kube(kube::Error::SerdeError(error)))?;
        return Ok(ApiGroups::from_aggregated(&list));
    }
    let list: APIGroupList = serde_json::from_value(document)
        .map_err(|error| K8sError::Kube(kube::Error::SerdeError(error)))?;
    Ok(with_resource_lists(client, ApiGroups::from_list(list)).await)
}

/// Fill in the kinds of each served version ksail accepts for an engine kind. A list that
/// cannot be read leaves that version unknown (taken to serve every kind), as before.
async fn with_resource_lists(client: &kube::Client, mut apis: ApiGroups) -> ApiGroups {
    let mut wanted: Vec<String> = Vec::new();
    for resource in ENGINE_RESOURCES {
        let Some(group) = apis.group(resource.group) else {
            continue;
        };
        for version in &group.versions {
            let group_version = format!("{}/{version}", resource.group);
            if resource.versions.contains(&version.as_str()) && !wanted.contains(&group_version) {
                wanted.push(group_version);
            }
        }
    }
    let lists = futures_util::future::join_all(wanted.iter().map(|group_version| async move {
        let list = with_timeout(client.list_api_group_resources(group_version)).await;
        (group_version, list)
    }))
    .await;
    for (group_version, list) in lists {
        let list = match list {
            Ok(list) => list,
            Err(error) => {
                tracing::debug!("discovery of {group_version} failed: {error}");
                continue;
            }
        };
        let Some((group, version)) = group_version.split_once('/') else {
            continue;
        };
        if let Some(served) = apis.groups.iter_mut().find(|g| g.name == group) {
            let kinds = list
                .resources
                .into_iter()
                .filter(|r| !r.name.contains('/'))
                .map(|r| r.kind)
                .collect();
            served.kinds.insert(version.to_string(), kinds);
        }
    }
    apis
}

/// The engine to use, and whether it was detected (then the caller prints
/// [`Selection::detected_line`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selection {
    pub engine: Engine,
    pub detected: bool,
}

impl Selection {
    /// `reconcile: detected Flux`, only for a detected engine.
    pub fn detected_line(&self) -> Option<String> {
        self.detected
            .then(|| format!("reconcile: detected {}", self.engine.display_name()))
    }
}

/// The exit-1 error for an engine whose API the cluster does not serve (not retryable).
pub fn not_installed(engine: Engine) -> Failure {
    Failure::failed(match engine {
        Engine::Flux => format!(
            "Flux is not installed in this cluster: the {KUSTOMIZE_GROUP} API is not served; run ksail cluster create, or install Flux"
        ),
        Engine::ArgoCd => format!(
            "Argo CD is not installed in this cluster: the {ARGOCD_GROUP} Application API is not served; run ksail cluster create, or install Argo CD"
        ),
    })
}

/// The Engine selection table. "Not installed" errors exit 1 and are not retryable; both
/// engines detected without a configured one is a configuration error (exit 2).
pub fn select_engine(configured: GitOpsEngine, apis: &ApiGroups) -> Result<Selection, Failure> {
    let (flux, argocd) = (apis.flux_served(), apis.argocd_served());
    let chosen = |engine, detected| Ok(Selection { engine, detected });
    match configured {
        GitOpsEngine::Flux if flux => chosen(Engine::Flux, false),
        GitOpsEngine::Flux => Err(not_installed(Engine::Flux)),
        GitOpsEngine::ArgoCD if argocd => chosen(Engine::ArgoCd, false),
        GitOpsEngine::ArgoCD => Err(not_installed(Engine::ArgoCd)),
        GitOpsEngine::None => match (flux, argocd) {
            (true, false) => chosen(Engine::Flux, true),
            (false, true) => chosen(Engine::ArgoCd, true),
            (true, true) => Err(Failure::usage(
                "both Flux and Argo CD are installed; set spec.cluster.gitOpsEngine to choose one",
            )),
            (false, false) => Err(Failure::failed(
                "no GitOps engine is installed in this cluster; run ksail cluster create --gitops-engine Flux, or install Flux or Argo CD",
            )),
        },
    }
}

/// The API versions in use, chosen from the same list. `None`: no allowed version is served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersions {
    pub kustomization: Option<ApiResource>,
    pub oci_repository: Option<ApiResource>,
    pub git_repository: Option<ApiResource>,
    pub bucket: Option<ApiResource>,
    pub helm_release: Option<ApiResource>,
    pub flux_instance: Option<ApiResource>,
    pub application: Option<ApiResource>,
}

pub fn choose_api_versions(apis: &ApiGroups) -> ApiVersions {
    let pick = |resource: &Resource| apis.choose(resource);
    ApiVersions {
        kustomization: pick(&flux::KUSTOMIZATION),
        oci_repository: pick(&flux::OCI_REPOSITORY),
        git_repository: pick(&flux::GIT_REPOSITORY),
        bucket: pick(&flux::BUCKET),
        helm_release: pick(&flux::HELM_RELEASE),
        flux_instance: pick(&flux::FLUX_INSTANCE),
        application: pick(&argocd::APPLICATION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureClass;

    /// A group whose preferred version is the first one listed.
    fn group(name: &str, versions: &[&str]) -> ServedGroup {
        ServedGroup {
            name: name.to_string(),
            versions: versions.iter().map(|v| (*v).to_string()).collect(),
            preferred: versions.first().map(|v| (*v).to_string()),
            kinds: BTreeMap::new(),
        }
    }

    /// The versions of one group, in the server's order of preference, each with its kinds.
    type GroupShape = &'static [(&'static str, &'static [&'static str])];

    /// An aggregated discovery document (apidiscovery.k8s.io/v2) for `groups`.
    fn aggregated(groups: &[(&str, GroupShape)]) -> APIGroupDiscoveryList {
        let items: Vec<Value> = groups
            .iter()
            .map(|(name, versions)| {
                let versions: Vec<Value> = versions
                    .iter()
                    .map(|(version, kinds)| {
                        let resources: Vec<Value> = kinds
                            .iter()
                            .map(|kind| {
                                serde_json::json!({
                                    "resource": format!("{}s", kind.to_lowercase()),
                                    "responseKind": {"group": name, "version": version, "kind": kind},
                                    "scope": "Namespaced",
                                })
                            })
                            .collect();
                        serde_json::json!({"version": version, "resources": resources, "freshness": "Current"})
                    })
                    .collect();
                serde_json::json!({"metadata": {"name": name}, "versions": versions})
            })
            .collect();
        let document = serde_json::json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "items": items,
        });
        serde_json::from_value(document).expect("a valid discovery document")
    }

    /// source.toolkit.fluxcd.io as Flux 2.5 (source-controller v1.5) serves it: OCIRepository
    /// only at v1beta2, though the group's preferred version is v1.
    const FLUX_2_5_SOURCE: GroupShape = &[
        (
            "v1",
            &["Bucket", "GitRepository", "HelmChart", "HelmRepository"],
        ),
        (
            "v1beta2",
            &[
                "Bucket",
                "GitRepository",
                "HelmChart",
                "HelmRepository",
                "OCIRepository",
            ],
        ),
    ];

    /// The same group as Flux 2.9 (source-controller v1.9) serves it: OCIRepository at v1.
    const FLUX_2_9_SOURCE: GroupShape = &[
        (
            "v1",
            &[
                "Bucket",
                "ExternalArtifact",
                "GitRepository",
                "HelmChart",
                "HelmRepository",
                "OCIRepository",
            ],
        ),
        (
            "v1beta2",
            &[
                "Bucket",
                "GitRepository",
                "HelmChart",
                "HelmRepository",
                "OCIRepository",
            ],
        ),
    ];

    #[test]
    fn versions_are_chosen_per_kind_from_discovery_documents() {
        let kustomize: (&str, &[(&str, &[&str])]) =
            (KUSTOMIZE_GROUP, &[("v1", &["Kustomization"])]);
        let flux_2_5 =
            ApiGroups::from_aggregated(&aggregated(&[kustomize, (SOURCE_GROUP, FLUX_2_5_SOURCE)]));
        // Flux 2.5: OCIRepository is not served at the group's preferred v1.
        assert_eq!(
            lines(&choose_api_versions(&flux_2_5)),
            [
                "Kustomization kustomizations kustomize.toolkit.fluxcd.io/v1",
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1beta2",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1",
                "Bucket buckets source.toolkit.fluxcd.io/v1",
            ]
        );

        let flux_2_9 =
            ApiGroups::from_aggregated(&aggregated(&[kustomize, (SOURCE_GROUP, FLUX_2_9_SOURCE)]));
        assert_eq!(
            lines(&choose_api_versions(&flux_2_9)),
            [
                "Kustomization kustomizations kustomize.toolkit.fluxcd.io/v1",
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1",
                "Bucket buckets source.toolkit.fluxcd.io/v1",
            ]
        );
        assert!(flux_2_9.flux_served() && flux_2_5.flux_served());

        // A kind no accepted version serves is not chosen at all.
        let no_oci = ApiGroups::from_aggregated(&aggregated(&[(
            SOURCE_GROUP,
            &[("v1", &["GitRepository"])],
        )]));
        assert_eq!(
            lines(&choose_api_versions(&no_oci)),
            ["GitRepository gitrepositories source.toolkit.fluxcd.io/v1"]
        );
    }

    #[test]
    fn a_version_whose_kinds_are_unknown_is_taken_to_serve_the_group() {
        // The legacy path when a resource list could not be read: group-level, as before.
        let mut source = group(SOURCE_GROUP, &["v1", "v1beta2"]);
        source
            .kinds
            .insert("v1beta2".to_string(), vec!["OCIRepository".to_string()]);
        assert_eq!(
            lines(&chosen(vec![source]))[0],
            "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1"
        );
    }

    fn apis(flux: bool, argocd: bool) -> ApiGroups {
        let mut groups = vec![group("apps", &["v1"])];
        if flux {
            groups.push(group(KUSTOMIZE_GROUP, &["v1"]));
        }
        if argocd {
            groups.push(group(ARGOCD_GROUP, &["v1alpha1"]));
        }
        ApiGroups { groups }
    }

    fn selected(engine: Engine, detected: bool) -> Result<Selection, Failure> {
        Ok(Selection { engine, detected })
    }

    /// The Engine selection table of the spec: the configured engine, whether the Flux and the
    /// Argo CD APIs are served, and the outcome, one entry per row and served combination.
    #[test]
    fn the_engine_selection_table() {
        const FLUX_NOT_INSTALLED: &str = "Flux is not installed in this cluster: the kustomize.toolkit.fluxcd.io API is not served; run ksail cluster create, or install Flux";
        const ARGOCD_NOT_INSTALLED: &str = "Argo CD is not installed in this cluster: the argoproj.io Application API is not served; run ksail cluster create, or install Argo CD";
        const BOTH_INSTALLED: &str =
            "both Flux and Argo CD are installed; set spec.cluster.gitOpsEngine to choose one";
        const NEITHER_INSTALLED: &str = "no GitOps engine is installed in this cluster; run ksail cluster create --gitops-engine Flux, or install Flux or Argo CD";
        let uses = |engine| selected(engine, false);
        let detects = |engine| selected(engine, true);
        let fails = |class, message: &str| Err(Failure::new(class, message));
        #[rustfmt::skip]
        let rows = [
            // (configured, Flux served, Argo CD served, outcome)
            (GitOpsEngine::Flux, true, false, uses(Engine::Flux)),
            (GitOpsEngine::Flux, true, true, uses(Engine::Flux)),
            (GitOpsEngine::Flux, false, false, fails(FailureClass::Failed, FLUX_NOT_INSTALLED)),
            (GitOpsEngine::Flux, false, true, fails(FailureClass::Failed, FLUX_NOT_INSTALLED)),
            (GitOpsEngine::ArgoCD, false, true, uses(Engine::ArgoCd)),
            (GitOpsEngine::ArgoCD, true, true, uses(Engine::ArgoCd)),
            (GitOpsEngine::ArgoCD, false, false, fails(FailureClass::Failed, ARGOCD_NOT_INSTALLED)),
            (GitOpsEngine::ArgoCD, true, false, fails(FailureClass::Failed, ARGOCD_NOT_INSTALLED)),
            (GitOpsEngine::None, true, false, detects(Engine::Flux)),
            (GitOpsEngine::None, false, true, detects(Engine::ArgoCd)),
            (GitOpsEngine::None, true, true, fails(FailureClass::Usage, BOTH_INSTALLED)),
            (GitOpsEngine::None, false, false, fails(FailureClass::Failed, NEITHER_INSTALLED)),
        ];
        for (configured, flux, argocd, expected) in rows {
            assert_eq!(
                select_engine(configured, &apis(flux, argocd)),
                expected,
                "configured {configured:?}, Flux served: {flux}, Argo CD served: {argocd}"
            );
        }
    }

    #[test]
    fn a_detected_engine_prints_a_detected_line() {
        for (engine, line) in [
            (Engine::Flux, "reconcile: detected Flux"),
            (Engine::ArgoCd, "reconcile: detected Argo CD"),
        ] {
            let selection = Selection {
                engine,
                detected: true,
            };
            assert_eq!(selection.detected_line().as_deref(), Some(line));
        }
    }

    #[test]
    fn a_configured_engine_prints_no_detected_line() {
        let selection = select_engine(GitOpsEngine::Flux, &apis(true, false)).expect("flux");
        assert_eq!(selection.detected_line(), None);
    }

    #[test]
    fn detection_needs_the_exact_version() {
        // An old Flux (kustomize v1beta2 only) and an Argo CD group without v1alpha1 do not count.
        let old = ApiGroups {
            groups: vec![
                group(KUSTOMIZE_GROUP, &["v1beta2"]),
                group(ARGOCD_GROUP, &["v1beta1"]),
            ],
        };
        assert!(!old.flux_served());
        assert!(!old.argocd_served());
        assert!(select_engine(GitOpsEngine::None, &old).is_err());
    }

    // The "API versions are chosen from the same list" table, one test per row.

    /// The versions chosen when the server serves exactly `groups`.
    fn chosen(groups: Vec<ServedGroup>) -> ApiVersions {
        choose_api_versions(&ApiGroups { groups })
    }

    /// Every chosen resource as `Kind plural apiVersion`, in the struct's order: a test states
    /// the whole choice, so a kind chosen by mistake fails it too.
    fn lines(versions: &ApiVersions) -> Vec<String> {
        [
            &versions.kustomization,
            &versions.oci_repository,
            &versions.git_repository,
            &versions.bucket,
            &versions.helm_release,
            &versions.flux_instance,
            &versions.application,
        ]
        .into_iter()
        .flatten()
        .map(|r| format!("{} {} {}", r.kind, r.plural, r.api_version))
        .collect()
    }

    #[test]
    fn kustomization_uses_kustomize_v1_only() {
        let served = ApiGroups {
            groups: vec![group(KUSTOMIZE_GROUP, &["v1", "v1beta2"])],
        };
        let versions = choose_api_versions(&served);
        assert_eq!(
            lines(&versions),
            ["Kustomization kustomizations kustomize.toolkit.fluxcd.io/v1"]
        );
        let kustomization = versions.kustomization.expect("served");
        assert_eq!(
            (
                kustomization.group.as_str(),
                kustomization.version.as_str(),
                kustomization.kind.as_str(),
                kustomization.plural.as_str()
            ),
            (
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations"
            )
        );

        let old = ApiGroups {
            groups: vec![group(KUSTOMIZE_GROUP, &["v1beta2"])],
        };
        assert_eq!(choose_api_versions(&old).kustomization, None);
    }

    #[test]
    fn sources_use_source_v1_else_v1beta2() {
        let v1 = chosen(vec![group(SOURCE_GROUP, &["v1", "v1beta2"])]);
        assert_eq!(
            lines(&v1),
            [
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1",
                "Bucket buckets source.toolkit.fluxcd.io/v1",
            ]
        );

        let beta = chosen(vec![group(SOURCE_GROUP, &["v1beta2", "v1beta1"])]);
        assert_eq!(
            lines(&beta),
            [
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1beta2",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1beta2",
                "Bucket buckets source.toolkit.fluxcd.io/v1beta2",
            ]
        );

        let neither = chosen(vec![group(SOURCE_GROUP, &["v1beta1"])]);
        assert!(lines(&neither).is_empty());
    }

    #[test]
    fn the_servers_preferred_version_wins_among_the_allowed_ones() {
        let mut source = group(SOURCE_GROUP, &["v1", "v1beta2"]);
        source.preferred = Some("v1beta2".to_string());
        let versions = chosen(vec![source]);
        assert_eq!(
            lines(&versions)[0],
            "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1beta2"
        );

        // A preferred version outside the allowed list falls back to the allowed order.
        let mut source = group(SOURCE_GROUP, &["v1beta1", "v1beta2", "v1"]);
        source.preferred = Some("v1beta1".to_string());
        let versions = chosen(vec![source]);
        assert_eq!(
            lines(&versions)[0],
            "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1"
        );
    }

    #[test]
    fn helm_release_uses_helm_v2_only() {
        let v2 = chosen(vec![group(HELM_GROUP, &["v2", "v2beta2"])]);
        assert_eq!(
            lines(&v2),
            ["HelmRelease helmreleases helm.toolkit.fluxcd.io/v2"]
        );
        let old = chosen(vec![group(HELM_GROUP, &["v2beta2"])]);
        assert!(lines(&old).is_empty());
    }

    #[test]
    fn flux_instance_uses_flux_operator_v1_only() {
        let v1 = chosen(vec![group(FLUX_OPERATOR_GROUP, &["v1"])]);
        assert_eq!(
            lines(&v1),
            ["FluxInstance fluxinstances fluxcd.controlplane.io/v1"]
        );
        assert!(lines(&chosen(vec![])).is_empty());
    }

    #[test]
    fn application_uses_argoproj_v1alpha1_only() {
        let served = choose_api_versions(&apis(false, true));
        assert_eq!(
            lines(&served),
            ["Application applications argoproj.io/v1alpha1"]
        );
        let other = chosen(vec![group(ARGOCD_GROUP, &["v1beta1"])]);
        assert!(lines(&other).is_empty());
    }

    // Discovery against the fake API server.

    /// A cluster handle on `server`, through a kubeconfig in the returned directory.
    async fn connected(
        server: &fake_apiserver::FakeApiServer,
    ) -> (crate::k8s::Cluster, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        server
            .write_kubeconfig(&path, &["kind-kind"], None)
            .expect("kubeconfig");
        let cluster = crate::k8s::connect(&crate::k8s::KubeTarget {
            kubeconfig: vec![path],
            kubeconfig_source: "--kubeconfig".to_string(),
            context: None,
            derived_context: None,
        })
        .await
        .expect("connect");
        (cluster, dir)
    }

    /// `METHOD /path` of every request the server received, in order.
    fn request_lines(server: &fake_apiserver::FakeApiServer) -> Vec<String> {
        server
            .requests()
            .into_iter()
            .map(|request| format!("{} {}", request.method, request.path))
            .collect()
    }

    #[tokio::test]
    async fn discovery_is_exactly_one_get_apis() {
        let server = fake_apiserver::FakeApiServer::start(fake_apiserver::ServerOptions::flux());
        let (cluster, _dir) = connected(&server).await;
        server.clear_requests();

        let apis = discover_apis(&cluster.client).await.expect("discovery");

        assert_eq!(request_lines(&server), ["GET /apis"]);
        assert!(apis.flux_served());
        assert!(!apis.argocd_served());
        assert_eq!(
            select_engine(GitOpsEngine::None, &apis),
            selected(Engine::Flux, true)
        );
        assert_eq!(
            lines(&choose_api_versions(&apis)),
            [
                "Kustomization kustomizations kustomize.toolkit.fluxcd.io/v1",
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1",
                "HelmRelease helmreleases helm.toolkit.fluxcd.io/v2",
                "FluxInstance fluxinstances fluxcd.controlplane.io/v1",
            ]
        );
    }

    /// An older server (no aggregated discovery) serving Flux 2.5's shape: the group list, then
    /// the resource list of each accepted version, read concurrently; OCIRepository at v1beta2.
    #[tokio::test]
    async fn without_aggregated_discovery_the_resource_lists_decide_per_kind() {
        use fake_apiserver::ResourceType;
        let server = fake_apiserver::FakeApiServer::start(fake_apiserver::ServerOptions {
            aggregated_discovery: false,
            ..fake_apiserver::ServerOptions::default()
        });
        for (group, version, kind, plural) in [
            (KUSTOMIZE_GROUP, "v1", "Kustomization", "kustomizations"),
            (SOURCE_GROUP, "v1", "GitRepository", "gitrepositories"),
            (SOURCE_GROUP, "v1beta2", "GitRepository", "gitrepositories"),
            (SOURCE_GROUP, "v1beta2", "OCIRepository", "ocirepositories"),
        ] {
            server.register_type(ResourceType::new(group, version, kind, plural, true, true));
        }
        let (cluster, _dir) = connected(&server).await;
        server.clear_requests();

        let apis = discover_apis(&cluster.client).await.expect("discovery");

        let mut requests = request_lines(&server);
        requests.sort();
        assert_eq!(
            requests,
            [
                "GET /apis",
                "GET /apis/kustomize.toolkit.fluxcd.io/v1",
                "GET /apis/source.toolkit.fluxcd.io/v1",
                "GET /apis/source.toolkit.fluxcd.io/v1beta2",
            ]
        );
        assert_eq!(
            lines(&choose_api_versions(&apis)),
            [
                "Kustomization kustomizations kustomize.toolkit.fluxcd.io/v1",
                "OCIRepository ocirepositories source.toolkit.fluxcd.io/v1beta2",
                "GitRepository gitrepositories source.toolkit.fluxcd.io/v1",
            ]
        );
    }

    #[tokio::test]
    async fn argocd_is_detected_from_the_served_groups() {
        let server = fake_apiserver::FakeApiServer::start(fake_apiserver::ServerOptions::argocd());
        let (cluster, _dir) = connected(&server).await;

        let apis = discover_apis(&cluster.client).await.expect("discovery");

        assert_eq!(
            select_engine(GitOpsEngine::None, &apis),
            selected(Engine::ArgoCd, true)
        );
    }

    #[tokio::test]
    async fn a_discovery_transport_error_is_a_connection_failure_not_not_installed() {
        let server = fake_apiserver::FakeApiServer::start(fake_apiserver::ServerOptions::flux());
        let (cluster, _dir) = connected(&server).await;
        server.drop_connection(
            fake_apiserver::Route::Any,
            fake_apiserver::Verb::Discovery,
            1,
        );

        let error = discover_apis(&cluster.client).await.expect_err("dropped");

        assert!(error.is_unreachable());
        assert!(error.is_retryable());
    }
}
