//! The workload artifact (artifact.md): which files of the source directory are packed
//! ([`select`]), the structural check of the YAML among them ([`validate`]), the deterministic
//! tar+gzip layer ([`pack`]), the canonical OCI manifest ([`manifest`]) and its annotations read
//! from git metadata without a `git` executable ([`git`]).
//!
//! This module reads the filesystem and writes the layer to a file the caller hands in. It never
//! talks to a registry; the push protocol lives elsewhere and consumes [`Layer`] and the manifest
//! bytes.

pub mod cache;
pub mod git;
pub mod gzip;
pub mod manifest;
pub mod pack;
pub mod select;
pub mod stamps;
pub mod validate;

use std::io;

use thiserror::Error;

use crate::error::Failure;

// The module's public surface; callers (push, cluster create) import from here.
pub use git::{Annotations, annotations, annotations_without_git};
pub use manifest::manifest_bytes;
pub use pack::{check_unchanged_since_selection, pack, tree_key};
pub use select::{Selection, select};
pub use validate::{Problem, Validation, report_lines, validate};

/// Everything that can stop the artifact from being built. `Display` is the full user-facing
/// text without the `error: ` prefix.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ArtifactError {
    #[error(
        "source directory {display} does not exist; create it, or set spec.workload.sourceDirectory or --path"
    )]
    SourceMissing { display: String },

    #[error(
        "source path {display} is not a directory; point spec.workload.sourceDirectory or --path at a directory"
    )]
    SourceNotDirectory { display: String },

    #[error("cannot read {path}: {reason}; check that the current user may read it")]
    Unreadable { path: String, reason: String },

    #[error(
        "source directory {display} contains no files to push; add manifests or check .sourceignore"
    )]
    NoFiles { display: String },

    #[error("symlink {link} points to a missing file; fix or remove the link")]
    DanglingSymlink { link: String },

    #[error(
        "symlink {link} points outside the source directory (to {target}); copy the file into the source directory or remove the link"
    )]
    EscapingSymlink { link: String, target: String },

    #[error("symlink loop at {link}; remove the link")]
    SymlinkLoop { link: String },

    #[error("file name {path} is not valid UTF-8; rename it")]
    NonUtf8Name { path: String },

    #[error("invalid pattern in {file} line {line}: {reason}; fix or remove the pattern")]
    BadIgnorePattern {
        file: String,
        line: usize,
        reason: String,
    },

    /// The summary line of a failed validation (the problems themselves are printed first).
    #[error("{summary}")]
    ValidationFailed { summary: String },

    #[error("{path} changed while it was being packed; run the push again")]
    ChangedWhilePacking { path: String },

    #[error(
        "cannot write the layer to a temporary file: {reason}; check free space and permissions of the temporary directory"
    )]
    WriteLayer { reason: String },

    #[error(
        "SOURCE_DATE_EPOCH is {value:?}, which is not a non-negative integer number of seconds; unset it or set it to a Unix time such as 1700000000"
    )]
    BadSourceDateEpoch { value: String },
}

impl From<ArtifactError> for Failure {
    fn from(error: ArtifactError) -> Self {
        let message = error.to_string();
        match error {
            // The local machine failed, not the user's input: exit 1.
            ArtifactError::WriteLayer { .. } | ArtifactError::ChangedWhilePacking { .. } => {
                Failure::failed(message)
            }
            _ => Failure::usage(message),
        }
    }
}

/// `<source directory as given>/<path inside it>`, the form every message uses for a file.
pub(crate) fn display_path(display_root: &str, relative: &str) -> String {
    let root = display_root.trim_end_matches('/');
    let relative = relative.trim_end_matches('/');
    match (root.is_empty(), relative.is_empty()) {
        (_, true) => display_root.to_string(),
        (true, false) if display_root.starts_with('/') => format!("/{relative}"),
        (true, false) => relative.to_string(),
        (false, false) => format!("{root}/{relative}"),
    }
}

/// A short lower-case reason for an I/O error, without the `(os error N)` suffix, so it reads
/// naturally inside `cannot read X: <reason>; …`.
pub(crate) fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::NotFound => "no such file or directory".to_string(),
        _ => {
            let text = error.to_string();
            let text = match text.find(" (os error") {
                Some(index) => text[..index].to_string(),
                None => text,
            };
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FailureClass;

    #[test]
    fn display_paths_join_the_root_as_given() {
        assert_eq!(display_path("k8s", "apps/x.yaml"), "k8s/apps/x.yaml");
        assert_eq!(display_path("k8s/", "apps/"), "k8s/apps");
        assert_eq!(display_path("./k8s", "a"), "./k8s/a");
        assert_eq!(display_path("k8s", ""), "k8s");
        assert_eq!(display_path("/", "a"), "/a");
    }

    #[test]
    fn io_reasons_are_lower_case_without_os_error() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(io_reason(&denied), "permission denied");
        let other = io::Error::from_raw_os_error(5);
        assert_eq!(io_reason(&other), "input/output error");
    }

    #[test]
    fn failure_classes() {
        let usage: Failure = ArtifactError::NoFiles {
            display: "k8s".into(),
        }
        .into();
        assert_eq!(usage.class, FailureClass::Usage);
        assert_eq!(
            usage.message,
            "source directory k8s contains no files to push; add manifests or check .sourceignore"
        );
        let failed: Failure = ArtifactError::WriteLayer {
            reason: "no space left on device".into(),
        }
        .into();
        assert_eq!(failed.class, FailureClass::Failed);
    }
}
