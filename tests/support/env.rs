//! An isolated environment for one `ksail` run (testing.md "Isolation").
//!
//! Every path the child can touch lives in one fresh temporary directory:
//!
//! ```text
//! <tmp>/home  xdg-config  xdg-cache  docker-config  work (cwd)  bin (fakes, first on PATH)
//! <tmp>/calls.jsonl   (written by the fake executables)
//! ```

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::fakes;

/// Hard timeout for every ksail child (testing.md "Fast").
pub const KSAIL_TIMEOUT: Duration = Duration::from_secs(60);
/// System directories the child may find programs in, after the fakes.
pub const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// One accessor per path below the root: `name => "relative path";`.
macro_rules! under_root {
    ($($(#[$doc:meta])* $name:ident => $path:literal;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(&self) -> PathBuf {
                self.root().join($path)
            }
        )*
    };
}

pub struct TestEnv {
    dir: tempfile::TempDir,
    /// Where the child logs every `--output json` document (`KSAIL_TEST_JSON_LOG`); outside
    /// `dir`, so that logging never changes [`TestEnv::tree_hash`].
    documents: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("ksail-test-")
            .tempdir()
            .expect("create a temporary test directory");
        for sub in [
            "home",
            "xdg-config",
            "xdg-cache",
            "docker-config",
            "work",
            "bin",
        ] {
            fs::create_dir_all(dir.path().join(sub)).expect("create a test subdirectory");
        }
        let documents = tempfile::Builder::new()
            .prefix("ksail-documents-")
            .tempdir()
            .expect("create a temporary directory for JSON documents");
        TestEnv { dir, documents }
    }

    fn document_log(&self) -> PathBuf {
        self.documents.path().join("documents.jsonl")
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }
    under_root! {
        home => "home";
        xdg_config => "xdg-config";
        xdg_cache => "xdg-cache";
        docker_config => "docker-config";
        /// The child's working directory.
        work => "work";
        /// The fake-executables directory, first on the child's `PATH`.
        bin => "bin";
        calls_path => "calls.jsonl";
    }

    /// `ksail <args>` with a cleared environment plus exactly the isolation variables, the
    /// shortened retry back-off, cwd = `work/` and the 60 s timeout. Add more with `.env()`.
    pub fn ksail<I, S>(&self, args: I) -> assert_cmd::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = assert_cmd::Command::from_std(self.ksail_process(args));
        cmd.timeout(KSAIL_TIMEOUT);
        cmd
    }

    /// The same child as [`TestEnv::ksail`], as a plain `std::process::Command`, for tests that
    /// must act on the running process (signals). The caller bounds its lifetime.
    pub fn ksail_process<I, S>(&self, args: I) -> std::process::Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("ksail"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.xdg_config())
            .env("XDG_CACHE_HOME", self.xdg_cache())
            .env("DOCKER_CONFIG", self.docker_config())
            .env("KUBECONFIG", "")
            .env("PATH", format!("{}:{SYSTEM_PATH}", self.bin().display()))
            .env("KSAIL_TEST_RETRY_BASE_MS", "10")
            .env("KSAIL_TEST_RETRY_CAP_MS", "50")
            .env("KSAIL_TEST_JSON_LOG", self.document_log())
            .current_dir(self.work());
        cmd
    }

    /// Writes a file relative to `work/`, creating parent directories.
    pub fn write(&self, rel_path: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.work().join(rel_path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent directories");
        }
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Creates a directory relative to `work/`.
    pub fn mkdir(&self, rel_path: &str) -> PathBuf {
        let path = self.work().join(rel_path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        path
    }

    /// Creates the symlink `work/<link_rel>` pointing at `target` (used verbatim, so relative
    /// targets stay relative).
    pub fn symlink(&self, target: impl AsRef<Path>, link_rel: &str) -> PathBuf {
        let link = self.work().join(link_rel);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).expect("create parent directories");
        }
        std::os::unix::fs::symlink(target.as_ref(), &link)
            .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
        link
    }

    /// Writes `docker-config/config.json`.
    pub fn write_docker_config(&self, json: &serde_json::Value) -> PathBuf {
        let path = self.docker_config().join("config.json");
        fs::write(
            &path,
            serde_json::to_vec_pretty(json).expect("JSON serialises"),
        )
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes `bin/docker-credential-<name>`; see [`fakes::write_credential_helper`].
    pub fn fake_credential_helper(
        &self,
        name: &str,
        hosts: &[(&str, Option<(&str, &str)>)],
    ) -> PathBuf {
        fakes::write_credential_helper(&self.bin(), &self.calls_path(), name, hosts)
            .unwrap_or_else(|e| panic!("write the docker-credential-{name} fake: {e}"))
    }

    /// The fake-executable calls logged so far.
    pub fn calls(&self) -> Vec<serde_json::Value> {
        fakes::read_calls(&self.calls_path())
    }

    /// A digest per entry under the temporary directory (path → type, mode and content), for
    /// "changes nothing" assertions: compare two snapshots with `assert_eq!` and the diff names
    /// the file that changed.
    pub fn tree_hash(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        hash_tree(self.root(), self.root(), &mut out);
        out
    }
}

/// Every JSON document the test's ksail runs printed must match its command's schema in
/// `schemas/` (issue 12: the schemas are the contract scripts rely on).
impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Ok(log) = fs::read_to_string(self.document_log()) else {
            return;
        };
        for line in log.lines() {
            if let Err(problem) = super::schemas::check_document(line) {
                panic!("a JSON document does not match its schema: {problem}\n{line}");
            }
        }
    }
}

impl Default for TestEnv {
    fn default() -> TestEnv {
        TestEnv::new()
    }
}

fn hash_tree(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        let mut hasher = Sha256::new();
        let kind = if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).unwrap_or_default();
            hasher.update(target.as_os_str().as_encoded_bytes());
            "symlink"
        } else if meta.is_dir() {
            hash_tree(root, &path, out);
            "dir"
        } else if meta.is_file() {
            hasher.update(fs::read(&path).unwrap_or_default());
            "file"
        } else {
            "other"
        };
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.insert(rel, format!("{kind} {mode:o} {hex}"));
    }
}
