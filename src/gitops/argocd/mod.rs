//! Argo CD (reconcile.md "Argo CD"): the objects ksail reads and writes, the readiness rules for
//! an Application, and the driver that refreshes and syncs Applications and follows them.
//!
//! - [`resources`]: every group, version, name and annotation ksail uses;
//! - [`objects`]: the Application as ksail reads it (typed, every field optional);
//! - [`readiness`]: the pure verdicts (tables in `readiness_tests.rs`);
//! - [`driver`]: one attempt — list, watch, refresh, sync, evaluate.

pub mod driver;
pub mod objects;
pub mod readiness;
pub mod resources;

pub use objects::Application;
pub use readiness::{
    ApplicationContext, application_verdict, expected_revision_matches, is_gated,
    operation_fingerprint,
};
