//! Every Argo CD identity ksail uses, in one place: the API group and the Application kind, the
//! namespace ksail reads, the names of the objects a bootstrap makes, and the annotations and
//! labels ksail reads or writes.

use crate::gitops::engine::Resource;

pub const GROUP: &str = "argoproj.io";

pub const APPLICATION: Resource = Resource {
    group: GROUP,
    versions: &["v1alpha1"],
    kind: "Application",
    plural: "applications",
};

/// The only namespace whose Applications ksail considers, and where the bootstrap objects live.
pub const NAMESPACE: &str = "argocd";
/// The Application `cluster create` makes.
pub const APPLICATION_NAME: &str = "ksail";
/// The repository Secret `cluster create` makes for the registry.
pub const REPOSITORY_SECRET_NAME: &str = "ksail-local-registry-repo";
/// Marks a Secret as an Argo CD repository.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";

/// Set by ksail to ask for a refresh; the controller removes it once handled.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
