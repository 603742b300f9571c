//! Pure readiness evaluation for `workload reconcile` (reconcile.md "Flux" and "Argo CD"): which
//! Kustomizations are tracked, when a Flux source, a Kustomization or an Argo CD Application is
//! complete, waiting or failed, which dependents a failure blocks, and the timeout message.
//!
//! Everything here works on the object JSON as the API server returns it (`serde_json::Value`)
//! and on plain values the caller supplies (the run's token, the expected digest `D`). There is
//! no IO and no clock: the watch loops in `gitops::flux` / `gitops::argocd` feed every event in
//! and act on the verdict. Keeping the rules here lets them be tested as tables.

mod argocd;
mod classify;
mod dependencies;
mod flux;
mod revision;
mod text;
mod timeout;
mod view;

pub use argocd::{
    ApplicationContext, REFRESH_ANNOTATION, application_verdict, is_gated, operation_fingerprint,
};
pub use classify::{Classification, Excludes, classify, unmatched_exclude_warning};
pub use dependencies::{blocked_by, dependency_edges};
pub use flux::{
    KustomizationContext, SourceState, SourceVerdict, Verdict, digest_mismatch_failure,
    kustomization_verdict, source_verdict,
};
pub use revision::short_revision;
pub use timeout::timeout_message;
pub use view::{FluxKind, FluxObject, ObjectKey};

use crate::error::Failure;

/// What can be wrong with the input this module is given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadinessError {
    #[error(
        "invalid --exclude value {entry:?}: expected <name> or <namespace>/<name>; pass one Kustomization per entry, for example --exclude apps/podinfo"
    )]
    InvalidExclude { entry: String },
    #[error(
        "cannot read a Flux object: {kind:?} is not a Kustomization, OCIRepository, GitRepository or Bucket; this is a bug in ksail, please report it"
    )]
    // Only FluxObject::parse (used by the tests) reads the kind; ksail uses parse_as.
    #[cfg_attr(not(test), allow(dead_code))]
    UnknownKind { kind: String },
    #[error(
        "cannot read a Flux {kind}: metadata.name is missing; this is a bug in ksail or the API server, please report it"
    )]
    MissingName { kind: String },
}

impl From<ReadinessError> for Failure {
    fn from(error: ReadinessError) -> Self {
        match error {
            ReadinessError::InvalidExclude { .. } => Failure::usage(error.to_string()),
            ReadinessError::UnknownKind { .. } | ReadinessError::MissingName { .. } => {
                Failure::failed(error.to_string())
            }
        }
    }
}
