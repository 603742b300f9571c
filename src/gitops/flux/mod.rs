//! Flux (reconcile.md "Flux"): the objects ksail reads and writes, the readiness rules, and the
//! driver that requests reconciliation and follows the objects until they are done.
//!
//! - [`resources`]: every group, version, kind, name and annotation ksail uses;
//! - [`objects`]: typed views of Kustomizations and sources;
//! - [`classify`]: which Kustomizations a run tracks (suspended, excluded);
//! - [`dependencies`]: `dependsOn` edges and what a failure blocks;
//! - [`readiness`]: the pure verdicts (tables in `readiness_tests.rs`);
//! - [`driver`]: one attempt — list, watch, request, evaluate;
//! - [`helm_recovery`]: resetting stuck HelmReleases before an attempt.

pub mod classify;
pub mod dependencies;
pub mod driver;
pub mod helm_recovery;
pub mod objects;
pub mod readiness;
pub mod resources;

pub use classify::{Classification, Excludes, classify, unmatched_exclude_warning};
pub use dependencies::{blocked_by, dependency_edges};
pub use objects::{FluxKind, FluxObject, ObjectKey};
pub use readiness::{
    KustomizationContext, RETRIED_REASONS, SourceState, SourceVerdict, digest_mismatch_failure,
    kustomization_verdict, served_verdict, source_verdict,
};

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
    #[error(
        "cannot read a Flux {kind}: {detail}; the object does not match the Flux API ksail knows, please report it"
    )]
    Invalid { kind: String, detail: String },
}

impl From<ReadinessError> for Failure {
    fn from(error: ReadinessError) -> Self {
        match error {
            ReadinessError::InvalidExclude { .. } => Failure::usage(error.to_string()),
            ReadinessError::UnknownKind { .. }
            | ReadinessError::MissingName { .. }
            | ReadinessError::Invalid { .. } => Failure::failed(error.to_string()),
        }
    }
}
