//! Content digests remembered by file stamp (artifact.md#performance), as git's index remembers
//! them: a file whose device, inode, size, modification and change times are what they were
//! when it was hashed still has that content, so an unchanged re-push stats its files instead of
//! reading them. The change time is set by the kernel on every write and cannot be set back, so a
//! rewrite is always seen — except one in the same clock tick as the hashing, which is why only
//! files whose times are [`SETTLED`] before the run began are remembered (git's "racily clean"
//! entries). Like the layer cache, every problem with the file only costs the hashing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long before a run a file's times must lie for its digest to be remembered: more than the
/// coarsest timestamp granularity of a common file system (FAT's 2 s).
pub const SETTLED: Duration = Duration::from_secs(3);

const HEADER: &str = "ksail file digests 1";

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    /// Modification and change times in nanoseconds since the epoch.
    mtime: i128,
    ctime: i128,
}

impl Stamp {
    #[cfg(unix)]
    pub fn of(metadata: &std::fs::Metadata) -> Option<Stamp> {
        use std::os::unix::fs::MetadataExt as _;
        let nanos = |secs: i64, nsec: i64| i128::from(secs) * 1_000_000_000 + i128::from(nsec);
        Some(Stamp {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime: nanos(metadata.mtime(), metadata.mtime_nsec()),
            ctime: nanos(metadata.ctime(), metadata.ctime_nsec()),
        })
    }

    /// Without a change time the stamp cannot tell a rewrite: nothing is remembered.
    #[cfg(not(unix))]
    pub fn of(_metadata: &std::fs::Metadata) -> Option<Stamp> {
        None
    }

    fn settled_before(&self, start: i128, settle: Duration) -> bool {
        let limit = start - settle.as_nanos() as i128;
        self.mtime < limit && self.ctime < limit
    }
}

/// The remembered digests of one source directory's files, in one file of the cache.
#[derive(Debug)]
pub struct FileDigests {
    path: PathBuf,
    settle: Duration,
    /// When this run began, in nanoseconds since the epoch.
    start: i128,
    known: HashMap<PathBuf, (Stamp, [u8; 32])>,
    /// What [`FileDigests::stage`] prepared for [`FileDigests::commit`].
    staged: Option<String>,
}

impl FileDigests {
    /// The digests remembered in `path` (none if it is missing or unreadable), for a run that
    /// begins now and remembers files settled for `settle`.
    pub fn load(path: PathBuf, settle: Duration) -> FileDigests {
        let start = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as i128);
        let known = std::fs::read_to_string(&path)
            .ok()
            .filter(|text| text.lines().next() == Some(HEADER))
            .map(|text| text.lines().skip(1).filter_map(parse_line).collect())
            .unwrap_or_default();
        FileDigests {
            path,
            settle,
            start,
            known,
            staged: None,
        }
    }

    /// The remembered digest of the file at `source` if it still has `stamp`.
    pub fn get(&self, source: &Path, stamp: &Stamp) -> Option<[u8; 32]> {
        match self.known.get(source) {
            Some((known, digest)) if known == stamp => Some(*digest),
            _ => None,
        }
    }

    /// Prepare to replace the file with `files` (source, stamp before it was read, digest),
    /// keeping only those settled before this run began; [`FileDigests::commit`] writes it.
    pub fn stage<'a>(&mut self, files: impl Iterator<Item = (&'a Path, Stamp, [u8; 32])>) {
        let mut text = format!("{HEADER}\n");
        let mut remembered = 0;
        for (source, stamp, digest) in files {
            let Some(name) = source.to_str().filter(|name| !name.contains('\n')) else {
                continue;
            };
            if !stamp.settled_before(self.start, self.settle) {
                continue;
            }
            remembered += 1;
            let _ = writeln!(
                text,
                "{} {} {} {} {} {} {name}",
                super::pack::hex(&digest),
                stamp.dev,
                stamp.ino,
                stamp.size,
                stamp.mtime,
                stamp.ctime,
            );
        }
        if remembered == 0 && self.known.is_empty() {
            return;
        }
        self.staged = Some(text);
    }

    /// Write what was staged (only after a run that exits 0, like the layer cache). Failures
    /// are logged and otherwise ignored.
    pub fn commit(&self) {
        let Some(text) = &self.staged else {
            return;
        };
        if let Err(error) = write_atomically(&self.path, text.as_bytes()) {
            tracing::debug!("cache: cannot write {}: {error}", self.path.display());
        }
    }
}

fn parse_line(line: &str) -> Option<(PathBuf, (Stamp, [u8; 32]))> {
    let mut fields = line.splitn(7, ' ');
    let hex = fields.next()?;
    let mut digest = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (byte, pair) in digest.iter_mut().zip(hex.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    let stamp = Stamp {
        dev: fields.next()?.parse().ok()?,
        ino: fields.next()?.parse().ok()?,
        size: fields.next()?.parse().ok()?,
        mtime: fields.next()?.parse().ok()?,
        ctime: fields.next()?.parse().ok()?,
    };
    let name = fields.next().filter(|name| !name.is_empty())?;
    Some((PathBuf::from(name), (stamp, digest)))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn stamp(path: &Path) -> Stamp {
        Stamp::of(&std::fs::metadata(path).unwrap()).unwrap()
    }

    #[test]
    fn settled_files_are_remembered_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a b.yaml");
        std::fs::write(&file, "x").unwrap();
        let store = dir.path().join("cache/digests");
        let mut digests = FileDigests::load(store.clone(), Duration::ZERO);
        let digest = [7u8; 32];
        digests.stage([(file.as_path(), stamp(&file), digest)].into_iter());
        assert!(
            !store.exists(),
            "nothing is written before the run succeeds"
        );
        digests.commit();

        let again = FileDigests::load(store, Duration::ZERO);
        assert_eq!(again.get(&file, &stamp(&file)), Some(digest));
        let other = Stamp {
            size: 2,
            ..stamp(&file)
        };
        assert_eq!(
            again.get(&file, &other),
            None,
            "another stamp is another file"
        );
    }

    #[test]
    fn files_written_just_before_the_run_are_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fresh.yaml");
        std::fs::write(&file, "x").unwrap();
        let store = dir.path().join("digests");
        let mut digests = FileDigests::load(store.clone(), SETTLED);
        digests.stage([(file.as_path(), stamp(&file), [1; 32])].into_iter());
        digests.commit();
        assert!(!store.exists(), "nothing to remember, no file");
        let again = FileDigests::load(store, SETTLED);
        assert_eq!(again.get(&file, &stamp(&file)), None);
    }

    #[test]
    fn a_rewrite_with_the_same_size_changes_the_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cm.yaml");
        std::fs::write(&file, "v: 1").unwrap();
        let before = stamp(&file);
        // Past the kernel's timestamp tick.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&file, "v: 2").unwrap();
        assert_ne!(stamp(&file), before);
    }

    #[test]
    fn unreadable_or_foreign_files_remember_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("digests");
        for text in [
            "not ours\n".to_string(),
            format!("{HEADER}\nzz 1 2 3 4 5 /a\n"),
            format!("{HEADER}\n{} 1 2 3 4 5\n", "ab".repeat(32)),
        ] {
            std::fs::write(&store, text).unwrap();
            assert!(FileDigests::load(store.clone(), SETTLED).known.is_empty());
        }
    }
}
