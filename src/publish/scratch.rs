//! Where a push keeps its compressed layer while it uploads (issue 11, point 5).
//!
//! A push ended by `kill -9` (or a power cut) never runs its clean-up, so its layer file stays.
//! Layer files therefore live in one known directory, `ksail/tmp` under the cache root, and each
//! is locked (`flock`) by the process that writes it for as long as it lives. The kernel drops
//! the lock when that process dies, however it dies: the next push removes every layer file it
//! can lock. Without a cache root (no `XDG_CACHE_HOME`, no `HOME`) the layer goes to the system
//! temporary directory, as before, and nothing is swept.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tempfile::TempPath;

/// The scratch directory's own name (`<cache root>/ksail/tmp`).
pub const SCRATCH: &str = "tmp";
/// Names of layer files in the scratch directory.
const PREFIX: &str = "layer-";
/// A file is created, then locked: one younger than this may be between the two, and is left
/// alone even if it can be locked.
const MIN_AGE: Duration = Duration::from_secs(1);

/// A layer file, locked until dropped; dropping it deletes it, and the scratch directory (and
/// `<cache root>/ksail`) too when nothing else is in them, so that a rejected push leaves no
/// trace behind.
#[derive(Debug)]
pub struct ScratchFile {
    pub file: File,
    pub path: TempPath,
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let dir = self.path.parent().map(Path::to_path_buf);
        // Deleting the file now, not when the field is dropped after this, lets the directory go.
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = dir.filter(|dir| dir.file_name().is_some_and(|name| name == SCRATCH)) {
            // Each fails, as it should, while anything else is in it: another push's file, the
            // cache entries.
            let _ = std::fs::remove_dir(&dir);
            if let Some(ksail) = dir.parent() {
                let _ = std::fs::remove_dir(ksail);
            }
        }
    }
}

/// A new locked layer file in `dir` (after removing the files of dead pushes there), else in the
/// system temporary directory.
pub fn layer_file(dir: Option<&Path>) -> io::Result<ScratchFile> {
    let Some(dir) = dir else {
        let (file, path) = tempfile::Builder::new()
            .prefix("ksail-layer-")
            .tempfile()?
            .into_parts();
        return Ok(ScratchFile { file, path });
    };
    sweep(dir);
    let created = tempfile::Builder::new().prefix(PREFIX).tempfile_in(dir);
    let created = match created {
        // No directory: the first push, or another push removed it as its last file went (at
        // any moment, so making it first would not settle this). Make it, then try again.
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)?;
            tempfile::Builder::new().prefix(PREFIX).tempfile_in(dir)
        }
        other => other,
    };
    let (file, path) = created?.into_parts();
    file.lock()?;
    Ok(ScratchFile { file, path })
}

/// Remove the layer files in `dir` that no live process holds. Every failure is ignored: the
/// sweep only saves disk space.
pub fn sweep(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_layer = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(PREFIX));
        if is_layer && is_abandoned(&path) {
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!("push: removed {} of a push that ended", path.display()),
                Err(error) => tracing::debug!("push: cannot remove {}: {error}", path.display()),
            }
        }
    }
}

/// Old enough and lockable: its writer has gone.
fn is_abandoned(path: &Path) -> bool {
    let old_enough = std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .is_ok_and(|modified| {
            SystemTime::now()
                .duration_since(modified)
                .is_ok_and(|age| age >= MIN_AGE)
        });
    // The lock taken here is released when `file` is closed, at the end of this function.
    old_enough && File::open(path).is_ok_and(|file| file.try_lock().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backdate(path: &Path) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    }

    #[test]
    fn files_of_ended_pushes_are_removed_and_held_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let live = layer_file(Some(dir.path())).unwrap();
        backdate(&live.path);
        let dead = dir.path().join("layer-dead");
        std::fs::write(&dead, b"left by kill -9").unwrap();
        backdate(&dead);
        let fresh = dir.path().join("layer-fresh");
        std::fs::write(&fresh, b"just created, not locked yet").unwrap();
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, b"not ours").unwrap();
        backdate(&other);

        let next = layer_file(Some(dir.path())).unwrap();

        assert!(!dead.exists(), "an unlocked old layer file is removed");
        assert!(live.path.exists(), "a locked one is kept");
        assert!(fresh.exists(), "a young one is kept");
        assert!(other.exists(), "other files are not touched");
        let (live_path, next_path) = (live.path.to_path_buf(), next.path.to_path_buf());
        drop(live);
        drop(next);
        assert!(
            !live_path.exists() && !next_path.exists(),
            "dropping deletes"
        );
    }

    #[test]
    fn the_last_layer_file_takes_the_directory_with_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("other"), b"keeps the root").unwrap();
        let dir = root.path().join("ksail").join(SCRATCH);
        let first = layer_file(Some(&dir)).unwrap();
        let second = layer_file(Some(&dir)).unwrap();
        drop(first);
        assert!(dir.is_dir(), "kept while another push uses it");
        drop(second);
        assert!(!dir.exists(), "removed with its last file");
        assert!(
            !root.path().join("ksail").exists(),
            "and the empty ksail directory"
        );
        assert!(
            root.path().exists(),
            "a directory with other contents stays"
        );
        let next = layer_file(Some(&dir)).unwrap();
        assert!(next.path.starts_with(&dir), "the next push makes it again");
    }
}
