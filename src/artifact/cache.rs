//! The layer cache (artifact.md#performance): for an uncompressed tar stream already packed by a
//! successful run of this ksail version, its layer digest and size and the result of a passed
//! validation. A hit changes no output and no byte pushed; it only saves the compression and the
//! YAML parsing. Every problem with the cache is ignored: it is an optimisation, never a source
//! of failure.
//!
//! Beside it, [`ValidationCache`] remembers single files that passed validation, by content, so
//! that a push after a one-file change parses one file (issue 11, point 3), and [`FileDigests`]
//! remembers the files' content digests by stamp, so that computing the key reads only the files
//! that changed.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::stamps::{FileDigests, SETTLED};

/// What one cache entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedLayer {
    pub layer_digest: String,
    pub layer_size: u64,
    /// The number of YAML files a passed validation checked; `None` when validation was off.
    pub validated_files: Option<usize>,
}

/// Entries for this ksail version under `$XDG_CACHE_HOME/ksail` (else `~/.cache/ksail`).
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// `<cache root>/ksail`.
    base: PathBuf,
    dir: PathBuf,
}

impl LayerCache {
    /// The cache directory from `XDG_CACHE_HOME` or `HOME`; `None` when neither is set.
    pub fn locate(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<LayerCache> {
        let root = xdg_cache_home.or_else(|| home.map(|home| home.join(".cache")))?;
        let base = root.join("ksail");
        Some(LayerCache {
            dir: base
                .join(env!("CARGO_PKG_VERSION"))
                // `k2`: keyed by `tree_key` (entries and content digests), not the tar stream.
                .join(format!("layers-{}-k2", super::pack::LAYER_FORMAT)),
            base,
        })
    }

    /// Where pushes of any ksail version keep their layer files while they upload
    /// (`publish::scratch`).
    pub fn scratch_dir(&self) -> PathBuf {
        self.base.join(crate::publish::scratch::SCRATCH)
    }

    /// The per-file validation results of the same ksail version.
    pub fn validation(&self) -> ValidationCache {
        let version_dir = self.dir.parent().unwrap_or(&self.dir);
        ValidationCache {
            path: version_dir.join(format!("validated-{}.keys", super::validate::RULES)),
            known: std::sync::OnceLock::new(),
        }
    }

    /// The file digests remembered for the source directory `root` ([`FileDigests`]), one file
    /// per directory, shared by every ksail version (the stamp rules do not change with it).
    pub fn file_digests(&self, root: &Path) -> FileDigests {
        use sha2::{Digest as _, Sha256};
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let name = Sha256::digest(root.as_os_str().as_encoded_bytes());
        let name = super::pack::hex(&name[..16]);
        FileDigests::load(self.base.join("file-digests").join(name), SETTLED)
    }

    fn entry(&self, tar_sha256: &str) -> Option<PathBuf> {
        // The key is a hex digest we computed; anything else never names a file.
        tar_sha256
            .chars()
            .all(|c| c.is_ascii_hexdigit())
            .then(|| self.dir.join(format!("{tar_sha256}.json")))
    }

    pub fn get(&self, tar_sha256: &str) -> Option<CachedLayer> {
        let path = self.entry(tar_sha256)?;
        let bytes = std::fs::read(&path).ok()?;
        match serde_json::from_slice::<CachedLayer>(&bytes) {
            Ok(entry) if entry.layer_digest.starts_with("sha256:") => Some(entry),
            _ => {
                tracing::debug!("cache: ignoring unreadable entry {}", path.display());
                None
            }
        }
    }

    /// Store an entry; failures are logged at debug level and otherwise ignored.
    pub fn put(&self, tar_sha256: &str, entry: &CachedLayer) {
        let Some(path) = self.entry(tar_sha256) else {
            return;
        };
        if let Err(error) = write_atomically(&self.dir, &path, entry) {
            tracing::debug!("cache: cannot write {}: {error}", path.display());
        }
    }
}

/// Files that passed validation: one line per passed `<content sha256>-<role>` key in one
/// append-only file, read once per run. One file rather than a marker per key: creating 2,000
/// files cost more system time than validating them. Each run appends its new keys with one
/// write (`O_APPEND`), so concurrent runs never interleave within a line; a line that is not a
/// key (a torn tail after a crash) is ignored. Past [`MAX_KEYS_BYTES`] the file is replaced by the
/// current run's keys, which bounds it.
#[derive(Debug)]
pub struct ValidationCache {
    path: PathBuf,
    known: std::sync::OnceLock<std::collections::HashSet<String>>,
}

/// The size at which the key file starts over (about 200,000 keys).
const MAX_KEYS_BYTES: u64 = 16 * 1024 * 1024;

impl ValidationCache {
    fn is_key(key: &str) -> bool {
        !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    }

    fn known(&self) -> &std::collections::HashSet<String> {
        self.known.get_or_init(|| {
            std::fs::read_to_string(&self.path)
                .unwrap_or_default()
                .lines()
                .filter(|line| Self::is_key(line))
                .map(str::to_owned)
                .collect()
        })
    }

    pub fn passed(&self, key: &str) -> bool {
        self.known().contains(key)
    }

    /// Record passes; failures are logged at debug level and otherwise ignored.
    pub fn record_all(&self, keys: &[String]) {
        let mut lines = String::new();
        for key in keys.iter().filter(|key| Self::is_key(key)) {
            lines.push_str(key);
            lines.push('\n');
        }
        if lines.is_empty() {
            return;
        }
        if let Err(error) = self.append(&lines) {
            tracing::debug!("cache: cannot write {}: {error}", self.path.display());
        }
    }

    fn append(&self, lines: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let full = std::fs::metadata(&self.path).is_ok_and(|meta| meta.len() > MAX_KEYS_BYTES);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .truncate(false)
            .open(&self.path)?;
        if full {
            file.set_len(0)?;
        }
        file.write_all(lines.as_bytes())
    }
}

/// Write through a temporary file and rename, so that a concurrent reader never sees half an
/// entry.
fn write_atomically(dir: &Path, path: &Path, entry: &CachedLayer) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer(&mut temp, entry)?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> CachedLayer {
        CachedLayer {
            layer_digest: format!("sha256:{}", "a".repeat(64)),
            layer_size: 42,
            validated_files: Some(3),
        }
    }

    #[test]
    fn entries_round_trip_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::locate(Some(dir.path().to_path_buf()), None).unwrap();
        let key = "0123abcd".repeat(8);
        assert_eq!(cache.get(&key), None);
        cache.put(&key, &entry());
        assert_eq!(cache.get(&key), Some(entry()));
        assert!(
            dir.path()
                .join("ksail")
                .join(env!("CARGO_PKG_VERSION"))
                .exists()
        );
    }

    #[test]
    fn unreadable_entries_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::locate(None, Some(dir.path().to_path_buf())).unwrap();
        let key = "ff".repeat(32);
        cache.put(&key, &entry());
        let path = cache.entry(&key).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(cache.get(&key), None);
        std::fs::write(
            &path,
            br#"{"layerDigest":"md5:x","layerSize":1,"validatedFiles":null}"#,
        )
        .unwrap();
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn keys_that_are_not_hex_name_no_file() {
        let cache = LayerCache::locate(Some(PathBuf::from("/nonexistent")), None).unwrap();
        assert_eq!(cache.entry("../../etc/passwd"), None);
        let validation = cache.validation();
        validation.record_all(&["../../etc/passwd".to_string()]);
        assert!(!validation.passed("../../etc/passwd"));
    }

    #[test]
    fn validation_passes_are_remembered_per_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = LayerCache::locate(Some(dir.path().to_path_buf()), None)
            .unwrap()
            .validation();
        let key = format!("{}-manifest", "ab".repeat(32));
        assert!(!cache.passed(&key));
        cache.record_all(std::slice::from_ref(&key));
        let again = LayerCache::locate(Some(dir.path().to_path_buf()), None)
            .unwrap()
            .validation();
        assert!(again.passed(&key), "the next run reads it");
        assert!(!again.passed(&format!("{}-parse-only", "ab".repeat(32))));
    }

    /// Past [`MAX_KEYS_BYTES`] the next recording replaces the file with its own keys, so the
    /// file stays bounded and the keys of this run survive.
    #[test]
    fn a_full_key_file_starts_over_with_the_new_keys() {
        let dir = tempfile::tempdir().unwrap();
        let locate = || {
            LayerCache::locate(Some(dir.path().to_path_buf()), None)
                .unwrap()
                .validation()
        };
        let cache = locate();
        let old = format!("{}-manifest", "0a".repeat(32));
        cache.record_all(std::slice::from_ref(&old));
        let line = format!("{old}\n");
        let copies = MAX_KEYS_BYTES as usize / line.len() + 1;
        std::fs::write(&cache.path, line.repeat(copies)).unwrap();
        assert!(std::fs::metadata(&cache.path).unwrap().len() > MAX_KEYS_BYTES);

        let new = format!("{}-manifest", "0b".repeat(32));
        locate().record_all(std::slice::from_ref(&new));

        assert_eq!(
            std::fs::read_to_string(&cache.path).unwrap(),
            format!("{new}\n")
        );
        let after = locate();
        assert!(after.passed(&new));
        assert!(!after.passed(&old), "the old keys went with the full file");

        // Below the bound a recording only appends.
        let more = format!("{}-parse-only", "0b".repeat(32));
        after.record_all(std::slice::from_ref(&more));
        assert!(locate().passed(&new) && locate().passed(&more));
    }
}
