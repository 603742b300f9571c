//! `ksail.yaml` (config.md): discovery, loading with file:line:column errors, `${VAR}` expansion,
//! the effective settings (flag > env > file > default, each value with its source) and the JSON
//! schema. Everything is driven by the key table in [`keys`].
//!
//! IO is limited to [`discover`] and [`load`]/[`load_in`] (stat and read one file); the rest is
//! pure and takes the environment as a closure, so tests never touch the process environment.
//! This module never prints: warnings are returned as lines for the printer.

mod effective;
mod expand;
mod go_keys;
mod keys;
mod load;
mod provenance;
#[cfg(test)]
pub mod schema;
mod value;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_effective;

use std::path::{Path, PathBuf};

pub use effective::{ConfigPath, Effective, FlagOverrides, Signing, Source, Sourced, effective};
pub use expand::expand;
#[cfg(test)]
pub use keys::FLUX_OPERATOR_VERSION;
pub use keys::{
    API_VERSION, DEFAULT_KUBECONFIG, DEFAULT_SIGNING_PASSWORD_ENV_VAR, DEFAULT_SOURCE_DIRECTORY,
    Distribution, GITOPS_ENGINES, GitOpsEngine, KIND, Key, override_variables,
};
#[cfg(test)]
pub use load::load;
pub use load::{LoadedFile, load_in, parse_source};

use crate::error::UsageError;
use crate::yaml::Pos;

/// The file name that discovery looks for.
pub const FILE_NAME: &str = "ksail.yaml";

/// A configuration problem. Display is the full `error:` line text without the prefix. Every
/// variant is a usage/configuration error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A problem with the file as a whole (missing, unreadable, empty, several documents, no
    /// apiVersion). `file` is the path as the user would recognise it.
    #[error("{file}: {problem}; {fix}")]
    File {
        file: String,
        problem: String,
        fix: String,
    },
    /// A YAML syntax error, a duplicate key or an exceeded YAML limit.
    #[error("{file}:{pos}: {message}; {fix}")]
    Syntax {
        file: String,
        pos: Pos,
        message: String,
        /// "fix the YAML syntax", or what to do about the limit.
        fix: &'static str,
    },
    /// A bad value. `origin` names where it came from: `ksail.yaml:9:23: spec.workload.tag`,
    /// `environment variable KSAIL_SPEC_WORKLOAD_TAG` or `flag --timeout`. `note` is empty or
    /// ` (after expanding ${NAME})`.
    #[error("{origin}: {problem}{note}; {fix}")]
    Value {
        origin: String,
        problem: String,
        note: String,
        fix: String,
    },
}

impl UsageError for ConfigError {}

/// Find the `ksail.yaml` to use (config.md#discovery). `explicit` is `--config`, else
/// `KSAIL_CONFIG` (the caller picks; an empty `KSAIL_CONFIG` should be passed as `None`). Never
/// looks at a per-user or system-wide file.
pub fn discover(explicit: Option<&Path>, cwd: &Path) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        let full = cwd.join(path);
        let problem = match std::fs::metadata(&full) {
            Ok(meta) if meta.is_dir() => "is a directory, not a file",
            Ok(_) => return Ok(Some(full)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => "does not exist",
            Err(_) => "cannot be read",
        };
        return Err(ConfigError::File {
            file: path.display().to_string(),
            problem: format!("the config file {problem}"),
            fix: "check --config or KSAIL_CONFIG".to_string(),
        });
    }
    for dir in cwd.ancestors() {
        let candidate = dir.join(FILE_NAME);
        // `metadata` follows symlinks: a link to a regular file counts as a regular file.
        if std::fs::metadata(&candidate).is_ok_and(|meta| meta.is_file()) {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// `path` as the user would recognise it from `cwd`: `ksail.yaml`, `sub/ksail.yaml`,
/// `../../ksail.yaml`, or the path itself when it is elsewhere.
pub fn display_path(path: &Path, cwd: &Path) -> String {
    if let Ok(inside) = path.strip_prefix(cwd) {
        return inside.display().to_string();
    }
    for (ups, ancestor) in cwd.ancestors().enumerate().skip(1) {
        if ancestor.parent().is_none() {
            break; // the filesystem root: an absolute path reads better than ../../../..
        }
        if let Ok(inside) = path.strip_prefix(ancestor) {
            let mut shown = PathBuf::new();
            for _ in 0..ups {
                shown.push("..");
            }
            return shown.join(inside).display().to_string();
        }
    }
    path.display().to_string()
}
