//! Every Flux and flux-operator identity ksail uses, in one place: API groups, the kinds with the
//! versions ksail accepts, the namespace and names of the objects a bootstrap makes, and the
//! annotations ksail reads or writes.

use crate::gitops::engine::Resource;

pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";
pub const OPERATOR_GROUP: &str = "fluxcd.controlplane.io";

/// Source kinds are served at `v1` since Flux 2.x, at `v1beta2` before.
const SOURCE_VERSIONS: &[&str] = &["v1", "v1beta2"];

pub const KUSTOMIZATION: Resource = Resource {
    group: KUSTOMIZE_GROUP,
    versions: &["v1"],
    kind: "Kustomization",
    plural: "kustomizations",
};
pub const OCI_REPOSITORY: Resource = Resource {
    group: SOURCE_GROUP,
    versions: SOURCE_VERSIONS,
    kind: "OCIRepository",
    plural: "ocirepositories",
};
pub const GIT_REPOSITORY: Resource = Resource {
    group: SOURCE_GROUP,
    versions: SOURCE_VERSIONS,
    kind: "GitRepository",
    plural: "gitrepositories",
};
pub const BUCKET: Resource = Resource {
    group: SOURCE_GROUP,
    versions: SOURCE_VERSIONS,
    kind: "Bucket",
    plural: "buckets",
};
pub const HELM_RELEASE: Resource = Resource {
    group: HELM_GROUP,
    versions: &["v2"],
    kind: "HelmRelease",
    plural: "helmreleases",
};
pub const FLUX_INSTANCE: Resource = Resource {
    group: OPERATOR_GROUP,
    versions: &["v1"],
    kind: "FluxInstance",
    plural: "fluxinstances",
};

/// Where Flux runs and the bootstrap objects live.
pub const NAMESPACE: &str = "flux-system";
/// flux-operator reconciles only the FluxInstance of this name.
pub const INSTANCE_NAME: &str = "flux";
/// The sync OCIRepository and Kustomization: flux-operator names them after the namespace, and a
/// bootstrap without the operator uses the same name.
pub const SYNC_NAME: &str = "flux-system";
/// The Secret (in [`NAMESPACE`]) holding the public key the sync OCIRepository verifies with
/// (docs/signing.md), and its key: source-controller tries every key ending in `.pub`.
pub const VERIFY_SECRET_NAME: &str = "ksail-cosign-public-key";
pub const VERIFY_SECRET_KEY: &str = "cosign.pub";
/// source-controller's `Ready`/`SourceVerified` reason when no signature on the artifact
/// verifies with the keys of `spec.verify` (`api/v1` `VerificationError`).
pub const VERIFICATION_ERROR_REASON: &str = "VerificationError";

/// Asks a Flux controller to reconcile now; the value is the run's token.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// helm-controller's reset request (failure counters), handled when equal to `requestedAt`.
pub const RESET_AT_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";
/// helm-controller's force request (release even when in sync), handled when equal to
/// `requestedAt`.
pub const FORCE_AT_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// `"true"` keeps a Kustomization out of `workload reconcile` (ksail's own).
pub const EXCLUDE_ANNOTATION: &str = "ksail.devantler.tech/reconcile-exclude";
/// Set on a HelmRelease while ksail holds it suspended for a reset, removed by the resume: a run
/// killed in between (`kill -9`, a CI job's timeout) leaves the mark, and the next run resumes it.
pub const SUSPENDED_FOR_RESET_ANNOTATION: &str = "ksail.devantler.tech/suspended-for-reset";
