//! The manifest annotations (artifact.md#annotations): `created`, `revision` and `source`, read
//! from the git metadata around the source directory without running `git`.
//!
//! The repository is read with `gix` (worktrees, packed refs, packed and deltified objects,
//! SHA-1 and SHA-256 object formats): `HEAD`, its commit's committer time, and
//! `remote.origin.url`. Anything that cannot be read falls back to the non-git values with a
//! debug log line; it is never an error.
//!
//! The revision names the `HEAD` commit only when the artifact holds exactly that commit's files
//! under the source directory (issue 11, point 5): a tree with uncommitted changes, untracked
//! files or deleted files gets the layer digest, as outside git, and never claims a commit it
//! does not match.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use time::OffsetDateTime;
use time::macros::format_description;

use super::ArtifactError;
use super::select::{EntryKind, Selection};

/// The latest time `YYYY-MM-DDTHH:MM:SSZ` can show (9999-12-31T23:59:59Z).
const MAX_EPOCH: u64 = 253_402_300_799;

/// The three manifest annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotations {
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub revision: String,
    pub source: String,
}

/// Compute the annotations for the artifact of `selection` (selected from `source_root`) whose
/// layer digest is `layer_digest` (`sha256:<hex>`). `fallback_source` is `oci://<push.host>/<push.repository>`;
/// `source_date_epoch` is the value of `SOURCE_DATE_EPOCH` if set.
pub fn annotations(
    source_root: &Path,
    selection: &Selection,
    layer_digest: &str,
    fallback_source: &str,
    source_date_epoch: Option<&str>,
    now: SystemTime,
) -> Result<Annotations, ArtifactError> {
    let pinned = source_date_epoch.map(parse_source_date_epoch).transpose()?;
    let facts = read_git_facts(source_root, selection);

    let created_secs = match (pinned, facts.committer_time) {
        (Some(epoch), _) => epoch as i64,
        (None, Some(committed)) => committed,
        (None, None) => now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64),
    };
    let revision = match &facts.head {
        Some(head) if facts.head_matches => head.revision(),
        _ => layer_digest.to_string(),
    };
    let source = facts
        .origin_url
        .as_deref()
        .and_then(public_source_url)
        .unwrap_or_else(|| fallback_source.to_string());
    Ok(Annotations {
        created: format_created(created_secs),
        revision,
        source,
    })
}

/// An artifact that is not built from a git checkout (the empty artifact): the layer digest as
/// revision and the `oci://` fallback as source.
pub fn annotations_without_git(
    layer_digest: &str,
    fallback_source: &str,
    source_date_epoch: Option<&str>,
    now: SystemTime,
) -> Result<Annotations, ArtifactError> {
    let created = match source_date_epoch.map(parse_source_date_epoch).transpose()? {
        Some(epoch) => epoch as i64,
        None => now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64),
    };
    Ok(Annotations {
        created: format_created(created),
        revision: layer_digest.to_string(),
        source: fallback_source.to_string(),
    })
}

pub fn parse_source_date_epoch(value: &str) -> Result<u64, ArtifactError> {
    let bad = || ArtifactError::BadSourceDateEpoch {
        value: value.to_string(),
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let epoch: u64 = value.parse().map_err(|_| bad())?;
    if epoch > MAX_EPOCH {
        return Err(bad());
    }
    Ok(epoch)
}

fn format_created(secs: i64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    OffsetDateTime::from_unix_timestamp(secs.clamp(0, MAX_EPOCH as i64))
        .ok()
        .and_then(|time| time.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

/// The `source` annotation for a remote URL: user info, query and fragment removed (tokens
/// travel in all three: `https://x-access-token:…@`, `?access_token=…`, `?private_token=…`),
/// scp-style kept but for a `user:password@` and anything from a `?` or `#`, and `None` for
/// local paths and `file://` URLs (which fall back to the `oci://` source). The annotation is
/// published with the artifact, so it keeps only what names the repository.
fn public_source_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    let without_user_info = match url.split_once("://") {
        Some((scheme, rest)) => {
            let valid_scheme = !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            if !valid_scheme || scheme.eq_ignore_ascii_case("file") {
                return None;
            }
            // The user info ends at the last `@` before the path, also when an unencoded `?` or
            // `#` in a password would end the authority for a URL parser: none of it may stay.
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => scp_without_password(url)?,
    };
    // No git host needs the query or the fragment to name a repository.
    let end = without_user_info
        .find(['?', '#'])
        .unwrap_or(without_user_info.len());
    Some(without_user_info[..end].to_string())
}

/// An scp-style remote `[user@]host:path` as it is, but without a password; `None` for a
/// local path.
fn scp_without_password(url: &str) -> Option<String> {
    // A colon before any slash. A single letter before the colon is a Windows drive, so a local
    // path.
    let colon = url.find(':')?;
    let head = &url[..colon];
    if head.contains('/') || head.len() <= 1 {
        return None;
    }
    // `user:password@host:path` is not valid scp syntax, but it must not leak a password.
    let first_slash = url.find('/').unwrap_or(url.len());
    if let Some((user_info, rest)) = url[..first_slash].rsplit_once('@')
        && user_info.contains(':')
    {
        return Some(format!("{rest}{}", &url[first_slash..]));
    }
    Some(url.to_string())
}

/// The checked-out commit.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    /// The branch name (`main`, `feature/x`), or `None` for a detached `HEAD`.
    branch: Option<String>,
    /// `sha1` or `sha256`.
    algorithm: &'static str,
    hex: String,
}

impl Head {
    fn revision(&self) -> String {
        match &self.branch {
            Some(branch) => format!("{branch}@{}:{}", self.algorithm, self.hex),
            None => format!("{}:{}", self.algorithm, self.hex),
        }
    }
}

/// What git tells us; every member is optional because every read may fail independently.
#[derive(Debug, Default)]
struct GitFacts {
    head: Option<Head>,
    /// The selection holds exactly `HEAD`'s files under the source directory.
    head_matches: bool,
    committer_time: Option<i64>,
    origin_url: Option<String>,
}

fn read_git_facts(source_root: &Path, selection: &Selection) -> GitFacts {
    let start = std::fs::canonicalize(source_root).unwrap_or_else(|_| source_root.to_path_buf());
    let repository = match gix::discover(&start) {
        Ok(repository) => repository,
        Err(error) => {
            tracing::debug!(
                "no readable git work tree around {}, using non-git annotations: {error}",
                start.display()
            );
            return GitFacts::default();
        }
    };
    let mut facts = GitFacts {
        origin_url: repository
            .config_snapshot()
            .string("remote.origin.url")
            .map(|url| url.to_string()),
        ..GitFacts::default()
    };
    let id = match repository.head_id() {
        Ok(id) => id,
        Err(error) => {
            tracing::debug!("git HEAD has no readable commit: {error}");
            return facts;
        }
    };
    let branch = match repository.head_name() {
        Ok(name) => name.map(|name| {
            let name = name.as_bstr().to_string();
            name.strip_prefix("refs/heads/")
                .map_or(name.clone(), str::to_string)
        }),
        Err(error) => {
            tracing::debug!("cannot read git HEAD: {error}");
            return facts;
        }
    };
    let algorithm = match id.kind() {
        gix::hash::Kind::Sha1 => "sha1",
        gix::hash::Kind::Sha256 => "sha256",
        other => {
            tracing::debug!("git object format {other:?} has no revision form");
            return facts;
        }
    };
    facts.head = Some(Head {
        branch,
        algorithm,
        hex: id.to_hex().to_string(),
    });
    match head_difference(&repository, id.detach(), &start, selection) {
        Ok(None) => facts.head_matches = true,
        Ok(Some(difference)) => tracing::debug!(
            "git: {difference}, so the revision is the layer digest, not HEAD's commit"
        ),
        Err(error) => tracing::debug!(
            "git: cannot compare the source directory with HEAD ({error}); the revision is the layer digest"
        ),
    }
    let committed = repository
        .find_commit(id)
        .map_err(|error| error.to_string())
        .and_then(|commit| {
            let committer = commit.committer().map_err(|error| error.to_string())?;
            committer
                .time()
                .map(|time| time.seconds)
                .map_err(|error| error.to_string())
        });
    match committed {
        Ok(seconds) => facts.committer_time = Some(seconds),
        Err(error) => tracing::debug!("cannot read the HEAD commit: {error}"),
    }
    facts
}

/// How the selection differs from `HEAD`'s files under `source_dir` (canonical): the first
/// packed file that is not `HEAD`'s blob at its path (changed or untracked), else the first file of
/// `HEAD`'s that is missing from the work tree (deleted); `None` when they match. A file of
/// `HEAD`'s that is on disk but not packed was left out on purpose (`.sourceignore`, the default
/// ignores) and is no difference. A committed symlink counts as matching while it is still a
/// symlink (the artifact holds its target's bytes).
fn head_difference(
    repository: &gix::Repository,
    head: gix::ObjectId,
    source_dir: &Path,
    selection: &Selection,
) -> Result<Option<String>, String> {
    let workdir = repository
        .workdir()
        .ok_or("the repository has no work tree")?;
    let workdir = std::fs::canonicalize(workdir).map_err(|error| error.to_string())?;
    let inside = source_dir
        .strip_prefix(&workdir)
        .map_err(|_| "the source directory is outside the work tree".to_string())?;
    let commit = repository
        .find_commit(head)
        .map_err(|error| error.to_string())?;
    let root = commit.tree().map_err(|error| error.to_string())?;
    let mut committed = BTreeMap::new();
    if inside.as_os_str().is_empty() {
        collect_files(repository, &root, "", &mut committed)?;
    } else if let Some(entry) = root
        .lookup_entry_by_path(inside)
        .map_err(|error| error.to_string())?
        && entry.mode().is_tree()
    {
        let tree = repository
            .find_tree(entry.object_id())
            .map_err(|error| error.to_string())?;
        collect_files(repository, &tree, "", &mut committed)?;
    }

    let kind = repository.object_hash();
    for entry in &selection.entries {
        let EntryKind::File { source, .. } = &entry.kind else {
            continue;
        };
        let Some(&(id, mode)) = committed.get(entry.name.as_str()) else {
            return Ok(Some(format!("{} is not committed", entry.name)));
        };
        if mode == FileMode::Link {
            if !is_symlink(&source_dir.join(&entry.name)) {
                return Ok(Some(format!("{} is no longer a symlink", entry.name)));
            }
            continue;
        }
        let bytes = std::fs::read(source).map_err(|error| error.to_string())?;
        let actual = gix::objs::compute_hash(kind, gix::objs::Kind::Blob, &bytes)
            .map_err(|error| error.to_string())?;
        if actual != id {
            return Ok(Some(format!("{} has uncommitted changes", entry.name)));
        }
    }
    let packed: std::collections::BTreeSet<&str> =
        selection.entries.iter().map(|e| e.name.as_str()).collect();
    for name in committed.keys() {
        let path: PathBuf = source_dir.join(name);
        if !packed.contains(name.as_str()) && std::fs::symlink_metadata(&path).is_err() {
            return Ok(Some(format!("{name} is deleted but committed")));
        }
    }
    Ok(None)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileMode {
    Blob,
    Link,
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink())
}

/// Every blob and symlink below `tree`, by path relative to it (`a/b.yaml`).
fn collect_files(
    repository: &gix::Repository,
    tree: &gix::Tree<'_>,
    prefix: &str,
    out: &mut BTreeMap<String, (gix::ObjectId, FileMode)>,
) -> Result<(), String> {
    let decoded = tree.decode().map_err(|error| error.to_string())?;
    for entry in &decoded.entries {
        let name = format!("{prefix}{}", entry.filename);
        if entry.mode.is_tree() {
            let subtree = repository
                .find_tree(entry.oid)
                .map_err(|error| error.to_string())?;
            collect_files(repository, &subtree, &format!("{name}/"), out)?;
        } else if entry.mode.is_link() {
            out.insert(name, (entry.oid.to_owned(), FileMode::Link));
        } else if entry.mode.is_blob() {
            out.insert(name, (entry.oid.to_owned(), FileMode::Blob));
        }
        // Submodules (commit entries) are never packed.
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::process::Command;
    use std::time::Duration;

    const LAYER: &str = "sha256:abababababababababababababababababababababababababababababababab";
    const FALLBACK: &str = "oci://localhost:5050/k8s";

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_777_629_600) // 2026-05-01T10:00:00Z
    }

    /// Run git in `dir` with a fixed identity and dates; `None` if git is not installed.
    fn git(dir: &Path, args: &[&str]) -> Option<String> {
        let output = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "A")
            .env("GIT_AUTHOR_EMAIL", "a@example.com")
            .env("GIT_COMMITTER_NAME", "C")
            .env("GIT_COMMITTER_EMAIL", "c@example.com")
            .env("GIT_AUTHOR_DATE", "1700000000 +0200")
            .env("GIT_COMMITTER_DATE", "1700000100 +0200")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .ok()?;
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Some(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    /// A repository with one commit on `main` and the source directory `k8s`.
    fn repository(extra_init: &[&str]) -> Option<(tempfile::TempDir, String)> {
        let dir = tempfile::tempdir().unwrap();
        let mut init = vec!["init", "-q", "-b", "main"];
        init.extend_from_slice(extra_init);
        git(dir.path(), &init)?;
        fs::create_dir(dir.path().join("k8s")).unwrap();
        fs::write(dir.path().join("k8s/a.yaml"), "a: 1\n").unwrap();
        git(dir.path(), &["add", "."])?;
        git(dir.path(), &["commit", "-q", "-m", "first"])?;
        let hex = git(dir.path(), &["rev-parse", "HEAD"])?;
        Some((dir, hex))
    }

    fn annotate(root: &Path, epoch: Option<&str>) -> Annotations {
        let selection =
            crate::artifact::select("k8s", root).unwrap_or_else(|_| Selection::empty_artifact());
        annotations(root, &selection, LAYER, FALLBACK, epoch, now()).unwrap()
    }

    /// `root` is annotated with `revision` and the commit time of the test commits.
    fn assert_committed(root: &Path, revision: &str) {
        let result = annotate(root, None);
        assert_eq!(result.revision, revision);
        assert_eq!(result.created, "2023-11-14T22:15:00Z");
    }

    /// Packs every object aggressively (deltas included) and removes the loose copies.
    fn repack(repo: &Path) {
        git(repo, &["gc", "-q", "--aggressive"]);
        git(repo, &["prune-packed"]);
    }

    #[test]
    fn outside_git_everything_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let result = annotate(dir.path(), None);
        assert_eq!(
            result,
            Annotations {
                created: "2026-05-01T10:00:00Z".into(),
                revision: LAYER.into(),
                source: FALLBACK.into(),
            }
        );
    }

    #[test]
    fn source_date_epoch_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            annotate(dir.path(), Some("0")).created,
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            annotate(dir.path(), Some("1700000000")).created,
            "2023-11-14T22:13:20Z"
        );
        for bad in ["-1", "1.5", "", " 1", "abc", "99999999999999999999"] {
            let error = annotations(
                dir.path(),
                &Selection::empty_artifact(),
                LAYER,
                FALLBACK,
                Some(bad),
                now(),
            )
            .unwrap_err();
            assert!(
                matches!(error, ArtifactError::BadSourceDateEpoch { .. }),
                "{bad}"
            );
            let failure: crate::error::Failure = error.into();
            assert_eq!(failure.class, crate::error::FailureClass::Usage);
            assert!(
                failure.message.starts_with("SOURCE_DATE_EPOCH is "),
                "{}",
                failure.message
            );
        }
        if let Some((repo, _)) = repository(&[]) {
            assert_eq!(
                annotate(&repo.path().join("k8s"), Some("0")).created,
                "1970-01-01T00:00:00Z"
            );
        }
    }

    #[test]
    fn empty_artifact_annotations_ignore_git() {
        let result = annotations_without_git(LAYER, FALLBACK, None, now()).unwrap();
        assert_eq!(result.revision, LAYER);
        assert_eq!(result.source, FALLBACK);
        assert_eq!(result.created, "2026-05-01T10:00:00Z");
        assert!(annotations_without_git(LAYER, FALLBACK, Some("x"), now()).is_err());
    }

    #[test]
    fn branch_revision_and_committer_time() {
        let Some((repo, hex)) = repository(&[]) else {
            return;
        };
        let result = annotate(&repo.path().join("k8s"), None);
        assert_eq!(result.revision, format!("main@sha1:{hex}"));
        assert_eq!(result.created, "2023-11-14T22:15:00Z");
        assert_eq!(result.source, FALLBACK);

        git(repo.path(), &["checkout", "-q", "-b", "feature/x"]);
        assert_eq!(
            annotate(&repo.path().join("k8s"), None).revision,
            format!("feature/x@sha1:{hex}")
        );
    }

    /// The revision names HEAD's commit only while the source directory holds exactly its files.
    #[test]
    fn a_source_directory_that_differs_from_head_gets_the_layer_digest() {
        let Some((repo, hex)) = repository(&[]) else {
            return;
        };
        let root = repo.path();
        let k8s = root.join("k8s");
        let committed = format!("main@sha1:{hex}");
        let revision = || annotate(&k8s, None).revision;
        let commit_all = |message: &str| {
            git(root, &["add", "-A"]).unwrap();
            git(root, &["commit", "-q", "-m", message]).unwrap()
        };

        // A change outside the source directory is not in the artifact.
        fs::write(root.join("README.md"), "notes\n").unwrap();
        assert_eq!(revision(), committed, "clean source directory");

        fs::write(k8s.join("a.yaml"), "a: 2\n").unwrap();
        assert_eq!(revision(), LAYER, "modified file");
        git(root, &["checkout", "-q", "--", "k8s/a.yaml"]).unwrap();
        assert_eq!(revision(), committed, "modification undone");

        fs::write(k8s.join("b.yaml"), "b: 1\n").unwrap();
        assert_eq!(revision(), LAYER, "untracked file in the artifact");
        fs::remove_file(k8s.join("b.yaml")).unwrap();

        fs::remove_file(k8s.join("a.yaml")).unwrap();
        assert_eq!(revision(), LAYER, "deleted file");
        git(root, &["checkout", "-q", "--", "k8s/a.yaml"]).unwrap();

        // A committed file left out on purpose, and an untracked file that is ignored, are no
        // difference; neither is a committed symlink.
        fs::write(k8s.join(".sourceignore"), "secret.yaml\nlocal.yaml\n").unwrap();
        fs::write(k8s.join("secret.yaml"), "s: 1\n").unwrap();
        std::os::unix::fs::symlink("a.yaml", k8s.join("link.yaml")).unwrap();
        commit_all("ignore");
        let hex = git(root, &["rev-parse", "HEAD"]).unwrap();
        fs::write(k8s.join("local.yaml"), "l: 1\n").unwrap();
        fs::write(k8s.join("secret.yaml"), "s: 2\n").unwrap();
        assert_eq!(revision(), format!("main@sha1:{hex}"), "ignored files");
    }

    #[test]
    fn detached_head() {
        let Some((repo, hex)) = repository(&[]) else {
            return;
        };
        git(repo.path(), &["checkout", "-q", "--detach"]);
        assert_eq!(annotate(repo.path(), None).revision, format!("sha1:{hex}"));
    }

    #[test]
    fn packed_refs_and_packed_objects() {
        let Some((repo, hex)) = repository(&[]) else {
            return;
        };
        // A second commit so that gc has something to delta against.
        fs::write(repo.path().join("k8s/a.yaml"), "a: 2\n").unwrap();
        git(repo.path(), &["commit", "-q", "-am", "second"]);
        let second = git(repo.path(), &["rev-parse", "HEAD"]).unwrap();
        assert_ne!(hex, second);
        repack(repo.path());
        assert!(!repo.path().join(".git/refs/heads/main").exists());
        assert_committed(repo.path(), &format!("main@sha1:{second}"));
    }

    #[test]
    fn a_head_commit_among_deltified_objects_reads_back() {
        let Some((repo, _)) = repository(&[]) else {
            return;
        };
        let text: String = (0..400)
            .map(|i| format!("line {i} of a file that deltas well\n"))
            .collect();
        for round in 0..4 {
            fs::write(
                repo.path().join("k8s/big.txt"),
                format!("{text}round {round}\n"),
            )
            .unwrap();
            git(repo.path(), &["add", "."]);
            git(
                repo.path(),
                &["commit", "-q", "-m", &format!("round {round}")],
            );
        }
        repack(repo.path());
        let pack = fs::read_dir(repo.path().join(".git/objects/pack"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "pack"))
            .unwrap();
        let verify = git(repo.path(), &["verify-pack", "-v", pack.to_str().unwrap()]).unwrap();
        let deltas = verify
            .lines()
            .filter(|l| l.split_whitespace().count() == 7)
            .count();
        assert!(deltas > 0, "expected deltified objects:\n{verify}");
        let head = git(repo.path(), &["rev-parse", "HEAD"]).unwrap();
        assert_committed(repo.path(), &format!("main@sha1:{head}"));
    }

    #[test]
    fn origin_with_credentials_is_stripped() {
        let Some((repo, _)) = repository(&[]) else {
            return;
        };
        git(
            repo.path(),
            &[
                "remote",
                "add",
                "origin",
                "https://ci:tok@github.com/acme/p.git",
            ],
        );
        assert_eq!(
            annotate(repo.path(), None).source,
            "https://github.com/acme/p.git"
        );
    }

    #[test]
    fn local_path_remote_falls_back() {
        let Some((repo, _)) = repository(&[]) else {
            return;
        };
        git(repo.path(), &["remote", "add", "origin", "/srv/git/p.git"]);
        assert_eq!(annotate(repo.path(), None).source, FALLBACK);
    }

    #[test]
    fn worktree_reads_its_own_head() {
        let Some((repo, hex)) = repository(&[]) else {
            return;
        };
        let worktree = repo.path().join("wt");
        git(
            repo.path(),
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "wt-branch",
                worktree.to_str().unwrap(),
            ],
        );
        git(
            repo.path(),
            &["remote", "add", "origin", "git@github.com:acme/p.git"],
        );
        let result = annotate(&worktree.join("k8s"), None);
        assert_eq!(result.revision, format!("wt-branch@sha1:{hex}"));
        assert_eq!(result.source, "git@github.com:acme/p.git");
        assert_eq!(result.created, "2023-11-14T22:15:00Z");
    }

    #[test]
    fn sha256_repository() {
        let dir = tempfile::tempdir().unwrap();
        // Older git versions cannot create SHA-256 repositories; skip there.
        let supported = Command::new("git")
            .args(["init", "-q", "--object-format=sha256", "probe"])
            .current_dir(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !supported {
            return;
        }
        let Some((repo, hex)) = repository(&["--object-format=sha256"]) else {
            return;
        };
        assert_eq!(hex.len(), 64);
        assert_committed(repo.path(), &format!("main@sha256:{hex}"));
    }

    #[test]
    fn unborn_branch_uses_fallback_revision() {
        let dir = tempfile::tempdir().unwrap();
        if git(dir.path(), &["init", "-q", "-b", "main"]).is_none() {
            return;
        }
        let result = annotate(dir.path(), None);
        assert_eq!(result.revision, LAYER);
        assert_eq!(result.created, "2026-05-01T10:00:00Z");
    }

    #[test]
    fn broken_metadata_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git/HEAD"), "garbage").unwrap();
        let result = annotate(dir.path(), None);
        assert_eq!(result.revision, LAYER);
        assert_eq!(result.source, FALLBACK);
    }

    #[test]
    fn remote_url_table() {
        let cases = [
            (
                "https://ci:tok@github.com/acme/p.git",
                Some("https://github.com/acme/p.git"),
            ),
            (
                "https://github.com/acme/p",
                Some("https://github.com/acme/p"),
            ),
            (
                "ssh://git@host:22/acme/p.git",
                Some("ssh://host:22/acme/p.git"),
            ),
            (
                "git@github.com:acme/p.git",
                Some("git@github.com:acme/p.git"),
            ),
            ("user:secret@host:acme/p.git", Some("host:acme/p.git")),
            (
                "https://x-access-token:SECRET@github.com/acme/app.git?access_token=SECRET",
                Some("https://github.com/acme/app.git"),
            ),
            (
                "https://gitlab.example.com/acme/p.git?private_token=SECRET#frag",
                Some("https://gitlab.example.com/acme/p.git"),
            ),
            ("https://SECRET@host?token=SECRET", Some("https://host")),
            // An unencoded `#` or `?` in a password does not end the user info early.
            ("https://u:pa#SECRET@host/x", Some("https://host/x")),
            ("https://u:pa?SECRET@host/x", Some("https://host/x")),
            ("user:pa?SECRET@host:acme/p", Some("host:acme/p")),
            (
                "git@github.com:acme/p.git?token=SECRET",
                Some("git@github.com:acme/p.git"),
            ),
            ("?token=SECRET", None),
            ("file:///srv/p.git", None),
            ("/srv/p.git", None),
            ("../p.git", None),
            ("./p", None),
            ("C:/repos/p", None),
            ("", None),
        ];
        for (url, expected) in cases {
            assert_eq!(public_source_url(url).as_deref(), expected, "{url}");
        }
    }
}
