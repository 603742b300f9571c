//! Repository names derived from a source directory (resolution.md "Repository"): the base name
//! of the path as written, sanitised into one OCI path component. Only the base name is used so
//! that the name does not depend on where a checkout lives.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// Repository used when sanitising leaves nothing: with a short hash of the text appended
/// ([`sanitise`]), bare only for the empty text.
pub const FALLBACK_REPOSITORY: &str = "ksail-workloads";

/// Bytes of the SHA-256 of the text that tell fallback repositories apart (8 hex digits).
const FALLBACK_HASH_BYTES: usize = 4;

/// Longest repository name `sanitise` produces, in bytes (a DNS label's limit).
const MAX_REPOSITORY_LEN: usize = 63;

/// Turn any text into a lower-case `[a-z0-9-]` name of at most 63 bytes. Text with nothing
/// usable (`___`, `日本`) gets [`FALLBACK_REPOSITORY`] and a short hash of itself
/// (`ksail-workloads-bda25155`), so that two such source directories do not push to one
/// repository; the name is the same on every run and machine.
pub fn sanitise(text: &str) -> String {
    let mut name = String::with_capacity(text.len());
    for c in text.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let mut name = name.trim_matches('-').to_string();
    // Only ASCII is left, so any byte index is a char boundary.
    name.truncate(MAX_REPOSITORY_LEN);
    let name = name.trim_end_matches('-');
    if !name.is_empty() {
        name.to_string()
    } else if text.is_empty() {
        // The root directory: there is only one, and no name to tell apart.
        FALLBACK_REPOSITORY.to_string()
    } else {
        let digest = Sha256::digest(text.as_bytes());
        let hash = crate::artifact::pack::hex(&digest[..FALLBACK_HASH_BYTES]);
        format!("{FALLBACK_REPOSITORY}-{hash}")
    }
}

/// The last component of a source directory as written. Paths that name a directory only
/// relative to something (`.`, `..`, `a/..`, the root) use the last component of their canonical
/// absolute path, resolved against `base_dir` (config.md "Relative paths"); for the root that is
/// the empty string.
///
/// This is the one place `resolve` touches the file system: it canonicalises such paths, and
/// falls back to a purely lexical normalisation when the path does not exist.
pub fn source_basename(path_as_written: &str, base_dir: &Path) -> String {
    let trimmed = path_as_written.trim_end_matches(is_separator);
    let relative_only = trimmed.is_empty()
        || matches!(trimmed, "." | "..")
        || trimmed.ends_with("/.")
        || trimmed.ends_with("/..")
        || (cfg!(windows) && (trimmed.ends_with("\\.") || trimmed.ends_with("\\..")));
    if !relative_only {
        let start = trimmed.rfind(is_separator).map_or(0, |index| index + 1);
        return trimmed[start..].to_string();
    }
    // `trimmed` is empty for the root ("/"); keep the original so it stays absolute.
    let written = if trimmed.is_empty() {
        path_as_written
    } else {
        trimmed
    };
    let joined = base_dir.join(written);
    let canonical = std::fs::canonicalize(&joined).unwrap_or_else(|_| lexical_normalise(&joined));
    canonical
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_separator(c: char) -> bool {
    c == '/' || (cfg!(windows) && c == '\\')
}

/// Resolve `.` and `..` without touching the file system (`..` at the root stays at the root).
pub fn lexical_normalise(path: &Path) -> PathBuf {
    let mut normalised = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                normalised.pop();
            }
            other => normalised.push(other.as_os_str()),
        }
    }
    normalised
}

#[cfg(test)]
mod tests {
    use super::*;

    /// resolution.md "Repository" table: input path → repository.
    #[test]
    fn repository_table() {
        let base = Path::new("/home/u/demo-app");
        let long_a = "a".repeat(70);
        let long_b = format!("x-{}", "b".repeat(70));
        let expected_a = "a".repeat(63);
        let expected_b = format!("x-{}", "b".repeat(61));
        let rows: &[(&str, &str)] = &[
            ("k8s", "k8s"),
            ("k8s/", "k8s"),
            ("./manifests", "manifests"),
            (".github/fixtures/reconcile-test", "reconcile-test"),
            ("deploy/Prod Manifests", "prod-manifests"),
            ("/srv/gitops/My_Workloads", "my-workloads"),
            (".hidden", "hidden"),
            ("Ünïcode", "n-code"),
            ("___", "ksail-workloads-bda25155"),
            (".", "demo-app"),
            (&long_a, &expected_a),
            (&long_b, &expected_b),
        ];
        assert_eq!(rows.len(), 12);
        for (input, expected) in rows {
            assert_eq!(
                sanitise(&source_basename(input, base)),
                *expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn relative_only_paths_use_the_canonical_directory() {
        let base = Path::new("/home/u/demo-app");
        assert_eq!(source_basename("..", base), "u");
        assert_eq!(source_basename("k8s/..", base), "demo-app");
        assert_eq!(source_basename("k8s/../", base), "demo-app");
        assert_eq!(source_basename("./", base), "demo-app");
        assert_eq!(source_basename("/", base), "");
        assert_eq!(source_basename("/srv/app/.", base), "app");
        assert_eq!(sanitise(&source_basename("/", base)), FALLBACK_REPOSITORY);
    }

    #[test]
    fn canonical_path_follows_the_real_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = dir.path().join("Real Project");
        std::fs::create_dir_all(project.join("k8s")).expect("mkdir");
        assert_eq!(source_basename(".", &project), "Real Project");
        assert_eq!(source_basename("k8s/..", &project), "Real Project");
    }

    /// Names with nothing usable used to share `ksail-workloads`, so their pushes overwrote each
    /// other's artifact.
    #[test]
    fn unusable_names_get_distinct_stable_fallbacks() {
        assert_eq!(sanitise("___"), "ksail-workloads-bda25155");
        assert_eq!(sanitise("日本"), "ksail-workloads-cf2abf0c");
        assert_eq!(sanitise("-"), sanitise("-"));
        assert_ne!(sanitise("-"), sanitise("--"));
        assert_eq!(sanitise(""), FALLBACK_REPOSITORY);
        for text in ["___", "日本", "Ünï", "---"] {
            let name = sanitise(text);
            assert!(name.len() <= MAX_REPOSITORY_LEN, "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name}"
            );
        }
    }

    #[test]
    fn sanitise_truncation_does_not_leave_a_trailing_dash() {
        let input = format!("{}-{}", "a".repeat(62), "b".repeat(5));
        assert_eq!(sanitise(&input), "a".repeat(62));
    }
}
