//! Served resource types: what discovery lists and what the router accepts.

use std::cmp::Ordering;

/// One served group/version/resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub kind: String,
    /// Lower-case plural, the path segment (`kustomizations`).
    pub plural: String,
    pub namespaced: bool,
    /// Whether `/status` is a separate subresource (main-resource writes then ignore `.status`).
    pub status_subresource: bool,
}

impl ResourceType {
    pub fn new(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        status_subresource: bool,
    ) -> Self {
        Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            namespaced,
            status_subresource,
        }
    }

    /// `v1` for the core group, `<group>/<version>` otherwise.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn singular(&self) -> String {
        self.kind.to_lowercase()
    }
}

/// Types every cluster serves, whether or not simulators are enabled.
pub fn builtin_types() -> Vec<ResourceType> {
    let t = ResourceType::new;
    vec![
        t("", "v1", "Namespace", "namespaces", false, true),
        t("", "v1", "Pod", "pods", true, true),
        t("", "v1", "Event", "events", true, false),
        t("", "v1", "Secret", "secrets", true, false),
        t("", "v1", "ConfigMap", "configmaps", true, false),
        t("", "v1", "Service", "services", true, true),
        t("", "v1", "ServiceAccount", "serviceaccounts", true, false),
        t("apps", "v1", "Deployment", "deployments", true, true),
        t("apps", "v1", "StatefulSet", "statefulsets", true, true),
        t("apps", "v1", "DaemonSet", "daemonsets", true, true),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            true,
            false,
        ),
        t(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
        ),
        t(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
        ),
    ]
}

/// Flux types (source v1 + v1beta2, kustomize v1, helm v2, flux-operator v1).
pub fn flux_types() -> Vec<ResourceType> {
    let t = ResourceType::new;
    vec![
        t(
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "Kustomization",
            "kustomizations",
            true,
            true,
        ),
        t(
            "source.toolkit.fluxcd.io",
            "v1",
            "OCIRepository",
            "ocirepositories",
            true,
            true,
        ),
        t(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
            true,
            true,
        ),
        t(
            "helm.toolkit.fluxcd.io",
            "v2",
            "HelmRelease",
            "helmreleases",
            true,
            true,
        ),
        t(
            "fluxcd.controlplane.io",
            "v1",
            "FluxInstance",
            "fluxinstances",
            true,
            true,
        ),
    ]
}

/// Flux types as Flux 2.5 (source-controller v1.5) serves them: OCIRepository only at
/// `source.toolkit.fluxcd.io/v1beta2` (its `api/v1` has no OCIRepository until v1.6), though the
/// group's preferred version is v1; GitRepository at v1 and v1beta2.
pub fn flux_2_5_types() -> Vec<ResourceType> {
    let t = ResourceType::new;
    let mut types: Vec<ResourceType> = flux_types()
        .into_iter()
        .filter(|r| r.kind != "OCIRepository")
        .collect();
    types.push(t(
        "source.toolkit.fluxcd.io",
        "v1beta2",
        "OCIRepository",
        "ocirepositories",
        true,
        true,
    ));
    types.push(t(
        "source.toolkit.fluxcd.io",
        "v1beta2",
        "GitRepository",
        "gitrepositories",
        true,
        true,
    ));
    types
}

/// Argo CD Application.
pub fn argocd_types() -> Vec<ResourceType> {
    vec![ResourceType::new(
        "argoproj.io",
        "v1alpha1",
        "Application",
        "applications",
        true,
        false,
    )]
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first; anything
/// unparseable sorts last alphabetically. Used to pick a group's preferred version.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn key(v: &str) -> (u8, u64, u64) {
        let Some(rest) = v.strip_prefix('v') else {
            return (0, 0, 0);
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(major) = digits.parse::<u64>() else {
            return (0, 0, 0);
        };
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return (3, major, 0);
        }
        let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
            (2, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (1, n)
        } else {
            return (0, 0, 0);
        };
        (level, major, num.parse().unwrap_or(0))
    }
    key(b).cmp(&key(a)).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_priority() {
        let mut v = vec!["v1beta2", "v1alpha1", "v2", "v1", "v1beta1", "foo"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "foo"]);
    }
}
