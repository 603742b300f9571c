//! File selection (artifact.md#file-selection): walk the source directory depth-first, apply
//! Flux's default exclusions and the root `.sourceignore`, resolve symlinks to their canonical
//! targets (refusing ones that dangle, escape the root or loop), and return the sorted entries
//! that the tarball will hold.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::stamps::Stamp;
use super::{ArtifactError, display_path, io_reason};

/// Flux's default exclusions, in Flux's order; `.sourceignore` lines come after them.
pub const DEFAULT_IGNORE_PATTERNS: [&str; 12] = [
    ".git/",
    ".gitignore",
    ".gitmodules",
    ".gitattributes",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.png",
    "*.wmv",
    "*.flv",
    "*.tar.gz",
    "*.zip",
];

/// The name of the ignore file read at the source root (and only there).
pub const SOURCEIGNORE: &str = ".sourceignore";

/// The one file of the empty artifact (artifact.md#empty-artifact).
pub const EMPTY_KUSTOMIZATION: &str =
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n";

/// One tar entry to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the source root, `/`-separated; directory names end in `/`.
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    /// A file on disk. `source` is where to read it (a symlink's canonical target); `size` is
    /// its length when it was selected.
    File {
        source: PathBuf,
        size: u64,
        /// What identifies its content when it was selected ([`Stamp`]; `None` off Unix).
        stamp: Option<Stamp>,
    },
    /// A file that exists only in memory (the empty artifact's kustomization).
    // for cluster create's empty artifact (cluster.md step 6)
    Inline(Vec<u8>),
}

impl Entry {
    pub fn is_file(&self) -> bool {
        !matches!(self.kind, EntryKind::Dir)
    }
}

/// The entries of the artifact, sorted byte-wise by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub entries: Vec<Entry>,
    pub file_count: usize,
    pub total_bytes: u64,
    /// `skipping k8s/x.sock: not a regular file or directory` lines, without `warning: `.
    pub warnings: Vec<String>,
    /// The source directory as given (e.g. `k8s`), for messages about its files.
    pub source: String,
}

impl Selection {
    /// The artifact `cluster create` pushes when there is nothing to push yet.
    pub fn empty_artifact() -> Selection {
        let content = EMPTY_KUSTOMIZATION.as_bytes().to_vec();
        Selection {
            file_count: 1,
            total_bytes: content.len() as u64,
            entries: vec![Entry {
                name: "kustomization.yaml".to_string(),
                kind: EntryKind::Inline(content),
            }],
            warnings: Vec::new(),
            source: String::new(),
        }
    }
}

/// Select the files of the source directory `root`. `display_root` is the directory as the user
/// gave it (e.g. `k8s`); every message names paths through it.
pub fn select(display_root: &str, root: &Path) -> Result<Selection, ArtifactError> {
    let canonical_root = check_root(display_root, root)?;
    let ignore = load_ignore_rules(display_root, &canonical_root)?;
    let mut walker = Walker {
        display_root,
        canonical_root: &canonical_root,
        ignore: &ignore,
        entries: Vec::new(),
        warnings: Vec::new(),
        walking: vec![canonical_root.clone()],
    };
    walker.walk_dir(&canonical_root, "")?;

    let Walker {
        mut entries,
        warnings,
        ..
    } = walker;
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut file_count = 0;
    let mut total_bytes = 0;
    for entry in &entries {
        if let EntryKind::File { size, .. } = entry.kind {
            file_count += 1;
            total_bytes += size;
        }
    }
    if file_count == 0 {
        return Err(ArtifactError::NoFiles {
            display: display_root.to_string(),
        });
    }
    Ok(Selection {
        entries,
        file_count,
        total_bytes,
        warnings,
        source: display_root.to_string(),
    })
}

/// The canonical root, or the "Source directory" error that applies.
fn check_root(display_root: &str, root: &Path) -> Result<PathBuf, ArtifactError> {
    let canonical = fs::canonicalize(root).map_err(|error| match error.kind() {
        io::ErrorKind::NotFound => ArtifactError::SourceMissing {
            display: display_root.to_string(),
        },
        io::ErrorKind::NotADirectory => ArtifactError::SourceMissing {
            display: display_root.to_string(),
        },
        _ => ArtifactError::Unreadable {
            path: display_root.to_string(),
            reason: io_reason(&error),
        },
    })?;
    let metadata = fs::metadata(&canonical).map_err(|error| ArtifactError::Unreadable {
        path: display_root.to_string(),
        reason: io_reason(&error),
    })?;
    if !metadata.is_dir() {
        return Err(ArtifactError::SourceNotDirectory {
            display: display_root.to_string(),
        });
    }
    Ok(canonical)
}

/// Flux's defaults first, then the root `.sourceignore`: the matcher reports the last matching
/// pattern, so a later `!pattern` re-includes what an earlier one excluded.
fn load_ignore_rules(
    display_root: &str,
    canonical_root: &Path,
) -> Result<Gitignore, ArtifactError> {
    let file_display = display_path(display_root, SOURCEIGNORE);
    let mut builder = GitignoreBuilder::new(canonical_root);
    builder
        .case_insensitive(false)
        .map_err(|error| ArtifactError::BadIgnorePattern {
            file: file_display.clone(),
            line: 0,
            reason: error.to_string(),
        })?;
    for pattern in DEFAULT_IGNORE_PATTERNS {
        builder
            .add_line(None, pattern)
            .expect("the default ignore patterns are valid globs");
    }
    let path = canonical_root.join(SOURCEIGNORE);
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => String::new(),
        // A directory named `.sourceignore` holds no patterns; it is walked like any other.
        Err(_) if path.is_dir() => String::new(),
        Err(error) => {
            return Err(ArtifactError::Unreadable {
                path: file_display,
                reason: io_reason(&error),
            });
        }
    };
    for (index, line) in text.lines().enumerate() {
        builder
            .add_line(None, line)
            .map_err(|error| ArtifactError::BadIgnorePattern {
                file: file_display.clone(),
                line: index + 1,
                reason: error.to_string(),
            })?;
    }
    builder
        .build()
        .map_err(|error| ArtifactError::BadIgnorePattern {
            file: file_display,
            line: 0,
            reason: error.to_string(),
        })
}

struct Walker<'a> {
    display_root: &'a str,
    canonical_root: &'a Path,
    ignore: &'a Gitignore,
    entries: Vec<Entry>,
    warnings: Vec<String>,
    /// Canonical paths of the directories on the current walk path (for loop detection).
    walking: Vec<PathBuf>,
}

/// What a directory entry turned out to be, after following a symlink.
enum Resolved {
    Dir {
        canonical: PathBuf,
    },
    File {
        source: PathBuf,
        size: u64,
        stamp: Option<Stamp>,
    },
    Special,
}

impl Walker<'_> {
    /// Walk `dir` (a path on disk), whose entries are named `prefix` + name in the artifact.
    fn walk_dir(&mut self, dir: &Path, prefix: &str) -> Result<(), ArtifactError> {
        let read_error = |error: io::Error| ArtifactError::Unreadable {
            path: display_path(self.display_root, prefix),
            reason: io_reason(&error),
        };
        let mut children: Vec<(OsString, PathBuf)> = Vec::new();
        for child in fs::read_dir(dir).map_err(read_error)? {
            let child = child.map_err(read_error)?;
            children.push((child.file_name(), child.path()));
        }
        // Sorted so that, when several entries are wrong, the same one is reported every time.
        children.sort();

        for (file_name, path) in children {
            self.visit(&file_name, &path, prefix)?;
        }
        Ok(())
    }

    fn visit(
        &mut self,
        file_name: &OsString,
        path: &Path,
        prefix: &str,
    ) -> Result<(), ArtifactError> {
        let lossy_name = format!("{prefix}{}", file_name.to_string_lossy());
        let display = display_path(self.display_root, &lossy_name);
        let metadata = fs::symlink_metadata(path).map_err(|error| ArtifactError::Unreadable {
            path: display.clone(),
            reason: io_reason(&error),
        })?;
        let relative = Path::new(prefix).join(file_name);

        let resolved = if metadata.file_type().is_symlink() {
            match self.resolve_symlink(path, &relative, &display)? {
                Some(resolved) => resolved,
                None => return Ok(()),
            }
        } else if metadata.is_dir() {
            Resolved::Dir {
                canonical: self
                    .walking
                    .last()
                    .map_or_else(|| path.to_path_buf(), |parent| parent.join(file_name)),
            }
        } else if metadata.is_file() {
            Resolved::File {
                source: path.to_path_buf(),
                size: metadata.len(),
                stamp: Stamp::of(&metadata),
            }
        } else {
            Resolved::Special
        };

        let is_dir = matches!(resolved, Resolved::Dir { .. });
        if self.is_ignored(&relative, is_dir) {
            return Ok(());
        }
        let Some(name) = file_name.to_str() else {
            return Err(ArtifactError::NonUtf8Name { path: display });
        };
        let name = format!("{prefix}{name}");

        match resolved {
            Resolved::Special => {
                self.warnings.push(format!(
                    "skipping {display}: not a regular file or directory"
                ));
            }
            Resolved::File {
                source,
                size,
                stamp,
            } => self.entries.push(Entry {
                name,
                kind: EntryKind::File {
                    source,
                    size,
                    stamp,
                },
            }),
            Resolved::Dir { canonical } => {
                let dir_name = format!("{name}/");
                self.entries.push(Entry {
                    name: dir_name.clone(),
                    kind: EntryKind::Dir,
                });
                self.walking.push(canonical);
                let result = self.walk_dir(path, &dir_name);
                self.walking.pop();
                result?;
            }
        }
        Ok(())
    }

    /// Follow a symlink to its canonical target. `None` means the link is ignored.
    fn resolve_symlink(
        &self,
        path: &Path,
        relative: &Path,
        display: &str,
    ) -> Result<Option<Resolved>, ArtifactError> {
        let target_metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) => {
                // The ignore rules match the link's path; an ignored broken link is no problem.
                if self.is_ignored(relative, false) {
                    return Ok(None);
                }
                return Err(if is_loop_error(&error) {
                    ArtifactError::SymlinkLoop {
                        link: display.to_string(),
                    }
                } else if error.kind() == io::ErrorKind::NotFound {
                    ArtifactError::DanglingSymlink {
                        link: display.to_string(),
                    }
                } else {
                    ArtifactError::Unreadable {
                        path: display.to_string(),
                        reason: io_reason(&error),
                    }
                });
            }
        };
        if self.is_ignored(relative, target_metadata.is_dir()) {
            return Ok(None);
        }
        let canonical = fs::canonicalize(path).map_err(|error| ArtifactError::Unreadable {
            path: display.to_string(),
            reason: io_reason(&error),
        })?;
        if !canonical.starts_with(self.canonical_root) {
            let target = fs::read_link(path)
                .map(|target| target.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "an unreadable target".to_string());
            return Err(ArtifactError::EscapingSymlink {
                link: display.to_string(),
                target,
            });
        }
        if target_metadata.is_dir() {
            let link_parent = self.walking.last().map(PathBuf::as_path);
            let is_ancestor = link_parent.is_some_and(|parent| parent.starts_with(&canonical));
            if is_ancestor || self.walking.contains(&canonical) {
                return Err(ArtifactError::SymlinkLoop {
                    link: display.to_string(),
                });
            }
            Ok(Some(Resolved::Dir { canonical }))
        } else if target_metadata.is_file() {
            Ok(Some(Resolved::File {
                source: canonical,
                size: target_metadata.len(),
                stamp: Stamp::of(&target_metadata),
            }))
        } else {
            Ok(Some(Resolved::Special))
        }
    }

    fn is_ignored(&self, relative: &Path, is_dir: bool) -> bool {
        matches!(self.ignore.matched(relative, is_dir), Match::Ignore(_))
    }
}

/// `ELOOP`: too many levels of symbolic links.
fn is_loop_error(error: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    const ELOOP: i32 = 40;
    #[cfg(not(target_os = "linux"))]
    const ELOOP: i32 = 62;
    error.raw_os_error() == Some(ELOOP)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    pub(crate) fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn names(selection: &Selection) -> Vec<&str> {
        selection.entries.iter().map(|e| e.name.as_str()).collect()
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            write(dir.path(), file, "x");
        }
        dir
    }

    #[test]
    fn every_default_pattern_is_applied() {
        let dir = tree(&[
            "keep.yaml",
            ".git/config",
            ".gitignore",
            ".gitmodules",
            ".gitattributes",
            "a.jpg",
            "a.jpeg",
            "a.gif",
            "sub/a.png",
            "a.wmv",
            "a.flv",
            "a.tar.gz",
            "a.zip",
            "A.PNG",
        ]);
        let selection = select("k8s", dir.path()).unwrap();
        // Matching is case-sensitive, so A.PNG stays.
        assert_eq!(names(&selection), ["A.PNG", "keep.yaml", "sub/"]);
        assert_eq!(selection.file_count, 2);
        assert_eq!(selection.total_bytes, 2);
    }

    #[test]
    fn sourceignore_negation_and_last_match_wins() {
        let dir = tree(&["logo.png", "other.png", "a.yaml", "b.yaml", "notes.txt"]);
        write(
            dir.path(),
            ".sourceignore",
            "# comment\n\n!logo.png\n*.yaml\n!b.yaml\n",
        );
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(
            names(&selection),
            [".sourceignore", "b.yaml", "logo.png", "notes.txt"]
        );
    }

    #[test]
    fn directory_only_patterns_match_directories_only() {
        let dir = tree(&["build/x.yaml", "sub/build", "keep.yaml"]);
        write(dir.path(), ".sourceignore", "build/\n/.sourceignore\n");
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), ["keep.yaml", "sub/", "sub/build"]);
    }

    #[test]
    fn ignored_directory_is_not_walked_and_cannot_be_reincluded() {
        let dir = tree(&["secret/a.yaml", "secret/keep.yaml", "ok.yaml"]);
        write(dir.path(), ".sourceignore", "secret/\n!secret/keep.yaml\n");
        // A broken link inside the ignored directory would fail the walk if it were entered.
        symlink("missing", dir.path().join("secret/broken.yaml")).unwrap();
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), [".sourceignore", "ok.yaml"]);
    }

    #[test]
    fn nested_sourceignore_is_packed_not_read() {
        let dir = tree(&["sub/a.yaml", "b.yaml"]);
        write(dir.path(), "sub/.sourceignore", "*.yaml\n");
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(
            names(&selection),
            ["b.yaml", "sub/", "sub/.sourceignore", "sub/a.yaml"]
        );
    }

    #[test]
    fn anchored_and_double_star_patterns() {
        let dir = tree(&["top.yaml", "sub/top.yaml", "a/b/c/deep.txt", "a/x.txt"]);
        write(dir.path(), ".sourceignore", "/top.yaml\na/**/deep.txt\n");
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(
            names(&selection),
            [
                ".sourceignore",
                "a/",
                "a/b/",
                "a/b/c/",
                "a/x.txt",
                "sub/",
                "sub/top.yaml"
            ]
        );
    }

    #[test]
    fn entries_are_sorted_bytewise_with_directories_before_contents() {
        let dir = tree(&["a/z", "a-b", "B", "a.yaml"]);
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), ["B", "a-b", "a.yaml", "a/", "a/z"]);
    }

    #[test]
    fn source_directory_errors() {
        let dir = tree(&["file"]);
        let missing = select("k8s", &dir.path().join("nope")).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "source directory k8s does not exist; create it, or set spec.workload.sourceDirectory or --path"
        );
        let not_dir = select("k8s", &dir.path().join("file")).unwrap_err();
        assert!(
            not_dir
                .to_string()
                .starts_with("source path k8s is not a directory; "),
            "{not_dir}"
        );
        let empty = tempfile::tempdir().unwrap();
        fs::create_dir(empty.path().join("emptydir")).unwrap();
        write(empty.path(), "logo.png", "x");
        assert_eq!(
            select("k8s", empty.path()).unwrap_err().to_string(),
            "source directory k8s contains no files to push; add manifests or check .sourceignore"
        );
    }

    #[test]
    fn unreadable_directory_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&["apps/a.yaml", "b.yaml"]);
        let apps = dir.path().join("apps");
        fs::set_permissions(&apps, fs::Permissions::from_mode(0o000)).unwrap();
        if fs::read_dir(&apps).is_ok() {
            // Running as root: permissions are not enforced, nothing to test.
            fs::set_permissions(&apps, fs::Permissions::from_mode(0o755)).unwrap();
            return;
        }
        let error = select("k8s", dir.path()).unwrap_err();
        fs::set_permissions(&apps, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            error
                .to_string()
                .starts_with("cannot read k8s/apps: permission denied; "),
            "{error}"
        );
    }

    #[test]
    fn root_is_canonicalised_first() {
        let dir = tree(&["real/a.yaml"]);
        symlink("real", dir.path().join("link")).unwrap();
        let selection = select("link", &dir.path().join("link")).unwrap();
        assert_eq!(names(&selection), ["a.yaml"]);
    }

    #[test]
    fn internal_file_symlink_is_a_file_entry() {
        let dir = tree(&["base/cm.yaml"]);
        fs::write(dir.path().join("base/cm.yaml"), "content").unwrap();
        symlink("base/cm.yaml", dir.path().join("cm-link.yaml")).unwrap();
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), ["base/", "base/cm.yaml", "cm-link.yaml"]);
        let EntryKind::File { source, size, .. } = &selection.entries[2].kind else {
            panic!("expected a file entry");
        };
        assert_eq!(*size, 7);
        assert_eq!(fs::read(source).unwrap(), b"content");
    }

    #[test]
    fn internal_directory_symlink_is_walked_under_the_link_path() {
        let dir = tree(&["base/a.yaml", "base/sub/b.yaml"]);
        symlink("base", dir.path().join("overlay")).unwrap();
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(
            names(&selection),
            [
                "base/",
                "base/a.yaml",
                "base/sub/",
                "base/sub/b.yaml",
                "overlay/",
                "overlay/a.yaml",
                "overlay/sub/",
                "overlay/sub/b.yaml"
            ]
        );
    }

    #[test]
    fn escaping_symlink_is_an_error_naming_link_and_readlink_value() {
        let outer = tempfile::tempdir().unwrap();
        write(outer.path(), "secrets/prod.yaml", "s");
        write(outer.path(), "repo/k8s/a.yaml", "x");
        symlink(
            "../../secrets/prod.yaml",
            outer.path().join("repo/k8s/secret.yaml"),
        )
        .unwrap();
        let error = select("k8s", &outer.path().join("repo/k8s")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "symlink k8s/secret.yaml points outside the source directory (to ../../secrets/prod.yaml); copy the file into the source directory or remove the link"
        );
    }

    #[test]
    fn escaping_directory_symlink_is_an_error() {
        let outer = tempfile::tempdir().unwrap();
        write(outer.path(), "elsewhere/x.yaml", "s");
        write(outer.path(), "k8s/a.yaml", "x");
        symlink("../elsewhere", outer.path().join("k8s/other")).unwrap();
        let error = select("k8s", &outer.path().join("k8s")).unwrap_err();
        assert!(
            matches!(error, ArtifactError::EscapingSymlink { .. }),
            "{error}"
        );
    }

    #[test]
    fn dangling_symlink_is_an_error() {
        let dir = tree(&["a.yaml"]);
        symlink("gone.yaml", dir.path().join("app.yaml")).unwrap();
        assert_eq!(
            select("k8s", dir.path()).unwrap_err().to_string(),
            "symlink k8s/app.yaml points to a missing file; fix or remove the link"
        );
    }

    #[test]
    fn loops_are_errors() {
        let dir = tree(&["a.yaml", "sub/b.yaml"]);
        symlink("..", dir.path().join("sub/loop")).unwrap();
        assert_eq!(
            select("k8s", dir.path()).unwrap_err().to_string(),
            "symlink loop at k8s/sub/loop; remove the link"
        );

        let dir = tree(&["a.yaml"]);
        symlink("self", dir.path().join("self")).unwrap();
        assert_eq!(
            select("k8s", dir.path()).unwrap_err().to_string(),
            "symlink loop at k8s/self; remove the link"
        );

        let dir = tree(&["a.yaml"]);
        symlink(".", dir.path().join("here")).unwrap();
        assert!(matches!(
            select("k8s", dir.path()).unwrap_err(),
            ArtifactError::SymlinkLoop { .. }
        ));
    }

    #[test]
    fn ignored_symlinks_are_not_followed() {
        let dir = tree(&["a.yaml"]);
        symlink("gone", dir.path().join("broken.png")).unwrap();
        symlink("/etc", dir.path().join(".git")).unwrap();
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), ["a.yaml"]);
    }

    #[test]
    fn fifos_are_skipped_with_a_warning() {
        let dir = tree(&["a.yaml"]);
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("x.fifo"))
            .status();
        if !status.is_ok_and(|s| s.success()) {
            return;
        }
        let selection = select("k8s", dir.path()).unwrap();
        assert_eq!(names(&selection), ["a.yaml"]);
        assert_eq!(
            selection.warnings,
            ["skipping k8s/x.fifo: not a regular file or directory"]
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn non_utf8_names_are_errors() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tree(&["a.yaml"]);
        let name = std::ffi::OsStr::from_bytes(b"bad\xff.yaml");
        fs::write(dir.path().join(name), "x").unwrap();
        let error = select("k8s", dir.path()).unwrap_err();
        assert!(
            matches!(error, ArtifactError::NonUtf8Name { .. }),
            "{error}"
        );
        assert!(
            error.to_string().starts_with("file name k8s/bad"),
            "{error}"
        );
    }

    #[test]
    fn empty_artifact_has_one_kustomization() {
        let selection = Selection::empty_artifact();
        assert_eq!(names(&selection), ["kustomization.yaml"]);
        assert_eq!(selection.file_count, 1);
        assert_eq!(
            selection.entries[0].kind,
            EntryKind::Inline(
                b"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n"
                    .to_vec()
            )
        );
    }
}
