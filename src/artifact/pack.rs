//! The layer (artifact.md#tarball, #layer): a deterministic GNU tar stream of the selection,
//! gzip-compressed as it is written (on every core, in independent blocks: [`super::gzip`]),
//! straight into a file. The compressed bytes are hashed on the way through, so nothing larger
//! than a copy buffer is held in memory.
//!
//! The tar headers are written here rather than by `tar::Builder`, so that every field (long-name
//! entries included) is pinned by this file and not by a dependency's defaults.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::gzip::ParallelGzWriter;
use super::select::{EntryKind, Selection};
use super::stamps::{FileDigests, Stamp};
use super::{ArtifactError, display_path, io_reason};

/// What the compressed bytes of a tar stream depend on besides the stream: the gzip block size,
/// level and deflate implementation ([`super::gzip`]). Changing any of them changes every layer
/// digest: change this too (it keys the layer cache) and the golden digests.
pub const LAYER_FORMAT: &str = "gzip-l6-b128k-store-uniform-zlib-rs";
const BLOCK: usize = 512;
const NAME_FIELD: usize = 100;
const LONG_NAME_ENTRY: &[u8] = b"././@LongLink";
const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;

/// The compressed layer, written to `file` (rewound to its start).
#[derive(Debug)]
pub struct Layer {
    /// `sha256:<hex>` of the compressed bytes.
    pub digest: String,
    /// Length of the compressed bytes.
    pub size: u64,
    /// The layer's bytes, rewound. The push uploads from the file's path; tests read them back.
    #[cfg_attr(not(test), allow(dead_code))]
    pub file: File,
}

/// Write the layer of `selection` into `out` and return its digests, calling `written` with the
/// number of bytes that have reached `out` each time more do (a streamed upload reads the file
/// behind it).
pub fn pack(
    selection: &Selection,
    out: File,
    written: impl FnMut(u64),
) -> Result<Layer, ArtifactError> {
    let reporting = Reporting {
        file: out,
        total: 0,
        written,
    };
    let compressed = HashingWriter::new(BufWriter::with_capacity(256 * 1024, reporting));
    let mut gzip = ParallelGzWriter::on_all_cores(compressed).map_err(write_error)?;
    write_tar(selection, &mut gzip)?;
    let compressed = gzip.finish().map_err(write_error)?;
    let (buffered, layer_hash, size) = compressed.finish();
    let mut file = buffered
        .into_inner()
        .map_err(|error| write_error(error.into_error()))?
        .file;
    file.flush().map_err(write_error)?;
    file.seek(SeekFrom::Start(0)).map_err(write_error)?;
    Ok(Layer {
        digest: format!("sha256:{}", hex(&layer_hash)),
        size,
        file,
    })
}

/// The layer's file, telling `written` how far the bytes that reached it go.
struct Reporting<F> {
    file: File,
    total: u64,
    written: F,
}

impl<F: FnMut(u64)> Write for Reporting<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let count = self.file.write(buf)?;
        self.total += count as u64;
        (self.written)(self.total);
        Ok(count)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The key of the layer cache (artifact.md#performance): the hex SHA-256 of every entry's name,
/// kind and content digest, in tar order. The tar stream is a function of exactly these (every
/// other header field is fixed), so equal keys mean equal streams. The files are hashed on every
/// core, which is most of an unchanged re-push — unless `remembered` knows a file's digest by its
/// stamp; what had to be hashed is staged in it for the next run.
pub fn tree_key(
    selection: &Selection,
    mut remembered: Option<&mut FileDigests>,
) -> Result<String, ArtifactError> {
    let digests = content_digests(selection, remembered.as_deref())?;
    if let Some(remembered) = remembered.as_mut()
        && digests.iter().any(|digest| digest.hashed)
    {
        let files = selection.entries.iter().zip(&digests);
        remembered.stage(
            files.filter_map(|(entry, digest)| match (&entry.kind, digest) {
                (
                    EntryKind::File { source, .. },
                    ContentDigest {
                        sha256: Some(sha256),
                        stamp: Some(stamp),
                        ..
                    },
                ) => Some((source.as_path(), *stamp, *sha256)),
                _ => None,
            }),
        );
    }
    let mut key = Sha256::new();
    key.update(b"ksail layer cache key 2\n");
    for (entry, digest) in selection.entries.iter().zip(&digests) {
        let kind: &[u8] = match entry.kind {
            EntryKind::Dir => b"d",
            _ => b"f",
        };
        key.update(kind);
        key.update(entry.name.as_bytes());
        // Names never hold NUL: it ends the name unambiguously.
        key.update([0]);
        key.update(digest.sha256.unwrap_or_default());
    }
    Ok(hex(&key.finalize()))
}

/// An entry's content digest (`None` for a directory), with the file's stamp from before it was
/// read, and whether it was hashed (not remembered).
#[derive(Debug, Clone, Copy, Default)]
struct ContentDigest {
    sha256: Option<[u8; 32]>,
    stamp: Option<Stamp>,
    hashed: bool,
}

/// The SHA-256 of each entry's content (`None` for directories), files read on every core.
fn content_digests(
    selection: &Selection,
    remembered: Option<&FileDigests>,
) -> Result<Vec<ContentDigest>, ArtifactError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let entries = &selection.entries;
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(entries.len().max(1));
    let digest_of = |entry: &super::select::Entry, buffer: &mut Vec<u8>| match &entry.kind {
        EntryKind::Dir => Ok(ContentDigest::default()),
        EntryKind::Inline(content) => Ok(ContentDigest {
            sha256: Some(Sha256::digest(content).into()),
            stamp: None,
            hashed: true,
        }),
        EntryKind::File { source, stamp, .. } => {
            // Taken when the file was selected, so before it is read here.
            let stamp = *stamp;
            let known = remembered.zip(stamp.as_ref());
            if let Some(sha256) = known.and_then(|(known, stamp)| known.get(source, stamp)) {
                return Ok(ContentDigest {
                    sha256: Some(sha256),
                    stamp,
                    hashed: false,
                });
            }
            let unreadable = |error: io::Error| ArtifactError::Unreadable {
                path: display_path(&selection.source, &entry.name),
                reason: io_reason(&error),
            };
            let mut file = File::open(source).map_err(unreadable)?;
            let mut hasher = Sha256::new();
            loop {
                let read = file.read(buffer).map_err(unreadable)?;
                if read == 0 {
                    return Ok(ContentDigest {
                        sha256: Some(hasher.finalize().into()),
                        stamp,
                        hashed: true,
                    });
                }
                hasher.update(&buffer[..read]);
            }
        }
    };
    let results: Vec<Vec<(usize, Result<ContentDigest, ArtifactError>)>> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut buffer = vec![0u8; 256 * 1024];
                        let mut done = Vec::new();
                        loop {
                            let index = next.fetch_add(1, Ordering::Relaxed);
                            let Some(entry) = entries.get(index) else {
                                return done;
                            };
                            done.push((index, digest_of(entry, &mut buffer)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| worker.join().unwrap_or_default())
                .collect()
        });
    let mut digests = vec![ContentDigest::default(); entries.len()];
    let mut seen = 0;
    // The first failing entry in tar order, as the sequential pack would report it.
    let mut failures = Vec::new();
    for (index, result) in results.into_iter().flatten() {
        seen += 1;
        match result {
            Ok(digest) => digests[index] = digest,
            Err(error) => failures.push((index, error)),
        }
    }
    failures.sort_by_key(|(index, _)| *index);
    if let Some((_, error)) = failures.into_iter().next() {
        return Err(error);
    }
    if seen != entries.len() {
        return Err(ArtifactError::WriteLayer {
            reason: "a hashing thread stopped".to_string(),
        });
    }
    Ok(digests)
}

/// Fail if a file of `selection` changed since it was selected: its stamp is not the one
/// selection took. Called once everything that reads the files (the cache key, validation, the
/// pack) has read them, so that the layer, the cache key and the validation result describe the
/// same bytes; a change always moves the change time, so every rewrite is caught (off Unix there
/// is no stamp and only the pack's size check remains).
pub fn check_unchanged_since_selection(selection: &Selection) -> Result<(), ArtifactError> {
    for entry in &selection.entries {
        let EntryKind::File {
            source,
            stamp: Some(stamp),
            ..
        } = &entry.kind
        else {
            continue;
        };
        let now = std::fs::metadata(source)
            .ok()
            .and_then(|metadata| Stamp::of(&metadata));
        if now.as_ref() != Some(stamp) {
            return Err(ArtifactError::ChangedWhilePacking {
                path: display_path(&selection.source, &entry.name),
            });
        }
    }
    Ok(())
}

fn write_error(error: io::Error) -> ArtifactError {
    ArtifactError::WriteLayer {
        reason: io_reason(&error),
    }
}

/// The deterministic tar stream of `selection` (artifact.md#tarball), ending with two zero
/// blocks.
fn write_tar(selection: &Selection, tar: &mut impl Write) -> Result<(), ArtifactError> {
    for entry in &selection.entries {
        match &entry.kind {
            EntryKind::Dir => {
                write_header(tar, &entry.name, EntryType::Directory, DIR_MODE, 0)
                    .map_err(write_error)?;
            }
            EntryKind::Inline(content) => {
                let size = content.len() as u64;
                write_header(tar, &entry.name, EntryType::Regular, FILE_MODE, size)
                    .map_err(write_error)?;
                tar.write_all(content).map_err(write_error)?;
                write_padding(tar, size).map_err(write_error)?;
            }
            EntryKind::File { source, .. } => {
                let display = || display_path(&selection.source, &entry.name);
                let unreadable = |error: io::Error| ArtifactError::Unreadable {
                    path: display(),
                    reason: io_reason(&error),
                };
                let mut file = File::open(source).map_err(unreadable)?;
                // The size of the file as opened, so the header matches what is copied.
                let size = file.metadata().map_err(unreadable)?.len();
                write_header(tar, &entry.name, EntryType::Regular, FILE_MODE, size)
                    .map_err(write_error)?;
                let copied = copy_exact(&mut file, tar, size).map_err(|error| match error {
                    CopyError::Read(error) => unreadable(error),
                    CopyError::Write(error) => write_error(error),
                })?;
                if copied != size {
                    return Err(ArtifactError::ChangedWhilePacking { path: display() });
                }
                write_padding(tar, size).map_err(write_error)?;
            }
        }
    }
    // The end of the archive: two zero blocks and no padding to a record size.
    tar.write_all(&[0; 2 * BLOCK]).map_err(write_error)?;
    Ok(())
}

/// One header block (preceded by a `././@LongLink` entry when the name needs more than 100
/// bytes). Every field is fixed except name, type, mode and size.
fn write_header(
    out: &mut impl Write,
    name: &str,
    entry_type: EntryType,
    mode: u32,
    size: u64,
) -> io::Result<()> {
    let name = name.as_bytes();
    if name.len() > NAME_FIELD {
        // The long name, NUL-terminated, as the data of a GNU long-name entry.
        let data_len = name.len() as u64 + 1;
        let header = fixed_header(LONG_NAME_ENTRY, EntryType::GNULongName, FILE_MODE, data_len);
        out.write_all(header.as_bytes())?;
        out.write_all(name)?;
        out.write_all(&[0])?;
        write_padding(out, data_len)?;
    }
    let header = fixed_header(&name[..name.len().min(NAME_FIELD)], entry_type, mode, size);
    out.write_all(header.as_bytes())
}

fn fixed_header(name: &[u8], entry_type: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.as_old_mut().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(entry_type);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(size);
    set_traditional_checksum(&mut header);
    header
}

/// The checksum as GNU tar writes it (six octal digits, NUL, space), so that the stream is
/// byte-identical to `tar --format=gnu` apart from its record padding.
fn set_traditional_checksum(header: &mut Header) {
    header.as_old_mut().cksum = [b' '; 8];
    let sum: u32 = header.as_bytes().iter().map(|byte| u32::from(*byte)).sum();
    let field = format!("{:06o}\0 ", sum & 0o777_777);
    header.as_old_mut().cksum.copy_from_slice(field.as_bytes());
}

/// Zero bytes up to the next 512-byte boundary after `size` bytes of data.
fn write_padding(out: &mut impl Write, size: u64) -> io::Result<()> {
    let remainder = (size % BLOCK as u64) as usize;
    if remainder != 0 {
        out.write_all(&[0; BLOCK][..BLOCK - remainder])?;
    }
    Ok(())
}

enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copy at most `limit` bytes, telling read failures (the source file) from write failures (the
/// layer file).
fn copy_exact(from: &mut File, to: &mut impl Write, limit: u64) -> Result<u64, CopyError> {
    let mut buffer = vec![0u8; 64 * 1024];
    let mut source = from.take(limit);
    let mut copied = 0u64;
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => return Ok(copied),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(CopyError::Read(error)),
        };
        to.write_all(&buffer[..read]).map_err(CopyError::Write)?;
        copied += read as u64;
    }
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    fn finish(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::select::{Selection, select, tests::write};
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    /// The golden layer digest of `tests/fixtures/artifact-basic` (testing.md#artifact-tests).
    /// Changing the tar format, the compressor or its level changes it.
    const ARTIFACT_BASIC_DIGEST: &str =
        "sha256:20f5933fe5f1d42cde4db0da06effb8d0fa5335a85d7afe18a9fd153c72be7ad";

    fn pack_dir(dir: &Path) -> Layer {
        let selection = select("k8s", dir).unwrap();
        pack(&selection, tempfile::tempfile().unwrap(), |_| {}).unwrap()
    }

    fn read_all(mut layer: Layer) -> Vec<u8> {
        let mut bytes = Vec::new();
        layer.file.read_to_end(&mut bytes).unwrap();
        bytes
    }

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/artifact-basic")
    }

    #[test]
    fn golden_digest_of_the_basic_fixture() {
        let selection = select("artifact-basic", &fixture()).unwrap();
        let names: Vec<&str> = selection.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".sourceignore",
                "apps/",
                "apps/podinfo/",
                "apps/podinfo/deployment.yaml",
                "apps/podinfo/service.yaml",
                "config/",
                "config/app.env",
                "config/settings.yaml",
                "kustomization.yaml",
                "service-link.yaml",
            ]
        );
        let layer = pack(&selection, tempfile::tempfile().unwrap(), |_| {}).unwrap();
        assert_eq!(layer.digest, ARTIFACT_BASIC_DIGEST);
    }

    #[test]
    fn fixture_passes_validation() {
        let selection = select("artifact-basic", &fixture()).unwrap();
        let validation = crate::artifact::validate("artifact-basic", &selection, None);
        assert!(validation.passed(), "{:?}", validation.problems);
        assert_eq!(validation.files_checked, 5);
    }

    /// GNU tar, given the same names in the same order, writes the same bytes (it then pads the
    /// archive to a 10240-byte record, which the layer does not).
    #[test]
    fn tar_stream_matches_gnu_tar() {
        use std::os::unix::fs::PermissionsExt;
        use std::process::Command;
        let is_gnu = Command::new("tar")
            .arg("--version")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("GNU tar"));
        if !is_gnu {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}/{}.yaml", "d".repeat(70), "f".repeat(80));
        for (name, content) in [("a/b.yaml", "b\n"), ("c.env", ""), (long.as_str(), "long")] {
            write(dir.path(), name, content);
        }
        let selection = select("k8s", dir.path()).unwrap();
        let mut list = String::new();
        for entry in &selection.entries {
            let mode = if entry.is_file() { 0o644 } else { 0o755 };
            fs::set_permissions(
                dir.path().join(&entry.name),
                fs::Permissions::from_mode(mode),
            )
            .unwrap();
            list.push_str(&entry.name);
            list.push('\n');
        }
        fs::write(dir.path().join(".list"), list).unwrap();
        let output = Command::new("tar")
            .args(["--format=gnu", "--no-recursion", "--owner=0", "--group=0"])
            .args(["--numeric-owner", "--mtime=@0", "-cf", "-", "-T", ".list"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success());
        let bytes = read_all(pack(&selection, tempfile::tempfile().unwrap(), |_| {}).unwrap());
        let mut ours = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut ours)
            .unwrap();
        assert_eq!(ours[..], output.stdout[..ours.len()]);
        assert!(output.stdout[ours.len()..].iter().all(|b| *b == 0));
    }

    #[test]
    fn gzip_header_is_fixed() {
        let bytes = read_all(
            pack(
                &Selection::empty_artifact(),
                tempfile::tempfile().unwrap(),
                |_| {},
            )
            .unwrap(),
        );
        assert_eq!(
            bytes[..10],
            [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]
        );
    }

    #[test]
    fn the_cache_key_follows_names_and_contents_only() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..40 {
            write(
                dir.path(),
                &format!("d{}/f{index}.yaml", index % 3),
                &"x".repeat(index * 100),
            );
        }
        let key = || tree_key(&select("k8s", dir.path()).unwrap(), None).unwrap();
        let first = key();
        assert_eq!(
            first,
            key(),
            "the same tree, hashed on several threads, gives one key"
        );
        write(dir.path(), "d1/f7.yaml", &"y".repeat(700));
        let changed = key();
        assert_ne!(changed, first, "same size, other bytes");
        std::fs::rename(
            dir.path().join("d1/f7.yaml"),
            dir.path().join("d1/f7b.yaml"),
        )
        .unwrap();
        assert_ne!(key(), changed, "a rename");
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        let with_dir = key();
        std::fs::remove_dir(dir.path().join("empty")).unwrap();
        write(dir.path(), "empty", "");
        assert_ne!(key(), with_dir, "a directory is not an empty file");
    }

    #[test]
    fn remembered_digests_stand_in_for_files_whose_stamp_is_unchanged() {
        use super::super::stamps::FileDigests;
        let dir = tempfile::tempdir().unwrap();
        for index in 0..10 {
            write(
                dir.path(),
                &format!("f{index}.yaml"),
                &format!("v: {index}"),
            );
        }
        let cache = tempfile::tempdir().unwrap();
        let store = cache.path().join("store");
        let selection = || select("k8s", dir.path()).unwrap();
        let key = || {
            let mut remembered = FileDigests::load(store.clone(), Duration::ZERO);
            let key = tree_key(&selection(), Some(&mut remembered)).unwrap();
            remembered.commit();
            key
        };
        let hashed = tree_key(&selection(), None).unwrap();
        assert_eq!(key(), hashed);
        assert_eq!(key(), hashed);

        // A remembered digest is used without reading the file: a false one changes the key.
        let text = std::fs::read_to_string(&store).unwrap();
        let line = text.lines().find(|l| l.ends_with("/f3.yaml")).unwrap();
        let forged = text.replace(line, &format!("{}{}", "0".repeat(64), &line[64..]));
        std::fs::write(&store, forged).unwrap();
        assert_ne!(key(), hashed);

        // A rewrite of that file (same size) changes its stamp, so it is read again.
        std::thread::sleep(Duration::from_millis(20));
        write(dir.path(), "f3.yaml", "v: 9");
        let rewritten = tree_key(&selection(), None).unwrap();
        assert_ne!(rewritten, hashed);
        assert_eq!(key(), rewritten);
    }

    #[test]
    fn a_file_rewritten_after_selection_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "v: 1");
        write(dir.path(), "sub/b.yaml", "v: 1");
        let selection = select("k8s", dir.path()).unwrap();
        check_unchanged_since_selection(&selection).unwrap();
        // Past the kernel's timestamp tick, same size.
        std::thread::sleep(Duration::from_millis(20));
        write(dir.path(), "sub/b.yaml", "v: 2");
        assert_eq!(
            check_unchanged_since_selection(&selection)
                .unwrap_err()
                .to_string(),
            "k8s/sub/b.yaml changed while it was being packed; run the push again"
        );
        std::fs::remove_file(dir.path().join("sub/b.yaml")).unwrap();
        assert!(
            check_unchanged_since_selection(&selection).is_err(),
            "removed"
        );
    }

    #[test]
    fn digests_and_size_describe_the_bytes() {
        let layer = pack(
            &Selection::empty_artifact(),
            tempfile::tempfile().unwrap(),
            |_| {},
        )
        .unwrap();
        let (digest, size) = (layer.digest.clone(), layer.size);
        let bytes = read_all(layer);
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(digest, format!("sha256:{}", hex(&Sha256::digest(&bytes))));
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        // One header, one data block, two zero blocks: no record padding.
        assert_eq!(tar_bytes.len(), 4 * BLOCK);
        assert!(tar_bytes[2 * BLOCK..].iter().all(|b| *b == 0));
    }

    #[test]
    fn tar_reads_back_with_fixed_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let long_dir = "d".repeat(60);
        let long_name = format!("{long_dir}/{}.yaml", "f".repeat(60));
        write(dir.path(), "a/b.yaml", "hello");
        write(dir.path(), &long_name, "long");
        write(dir.path(), "z.env", "");
        let bytes = read_all(pack_dir(dir.path()));
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert_eq!(header.mtime().unwrap(), 0);
            assert_eq!(header.username_bytes(), Some(&b""[..]));
            assert_eq!(header.groupname_bytes(), Some(&b""[..]));
            assert!(header.as_gnu().is_some());
            let mut content = String::new();
            entry.read_to_string(&mut content).unwrap();
            seen.push((name, header.entry_type(), header.mode().unwrap(), content));
        }
        let expected = vec![
            ("a/".to_string(), EntryType::Directory, 0o755, String::new()),
            (
                "a/b.yaml".to_string(),
                EntryType::Regular,
                0o644,
                "hello".to_string(),
            ),
            (
                format!("{long_dir}/"),
                EntryType::Directory,
                0o755,
                String::new(),
            ),
            (
                long_name.clone(),
                EntryType::Regular,
                0o644,
                "long".to_string(),
            ),
            (
                "z.env".to_string(),
                EntryType::Regular,
                0o644,
                String::new(),
            ),
        ];
        assert_eq!(seen, expected);
        // The long-name entry obeys the fixed-field rules too.
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let position = tar_bytes
            .windows(LONG_NAME_ENTRY.len())
            .position(|w| w == LONG_NAME_ENTRY)
            .unwrap();
        let header = Header::from_byte_slice(&tar_bytes[position..position + BLOCK]);
        assert_eq!(header.entry_type(), EntryType::GNULongName);
        assert_eq!(header.mtime().unwrap(), 0);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
    }

    #[test]
    fn determinism_across_mtimes_modes_and_creation_order() {
        use std::os::unix::fs::PermissionsExt;
        let files = [
            ("kustomization.yaml", "resources: [a/x.yaml]\n"),
            ("a/x.yaml", "apiVersion: v1\nkind: ConfigMap\n"),
            ("a/b/c.env", "K=V\n"),
            ("z.txt", "zzz"),
        ];
        let first = tempfile::tempdir().unwrap();
        for (name, content) in files {
            write(first.path(), name, content);
        }
        let second = tempfile::tempdir().unwrap();
        for (name, content) in files.iter().rev() {
            write(second.path(), name, content);
        }
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for (name, _) in files {
            let file = fs::File::options()
                .write(true)
                .open(second.path().join(name))
                .unwrap();
            file.set_modified(old).unwrap();
            fs::set_permissions(second.path().join(name), fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        fs::set_permissions(second.path().join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            pack_dir(first.path()).digest,
            pack_dir(second.path()).digest
        );

        // And the content does matter.
        write(second.path(), "z.txt", "changed");
        assert_ne!(
            pack_dir(first.path()).digest,
            pack_dir(second.path()).digest
        );
    }

    #[test]
    fn large_trees_stream() {
        let dir = tempfile::tempdir().unwrap();
        let chunk = "0123456789abcdef".repeat(64 * 1024);
        for i in 0..4 {
            write(dir.path(), &format!("big{i}.bin"), &chunk);
        }
        let layer = pack_dir(dir.path());
        assert!(layer.size > 0);
        assert_eq!(layer.file.metadata().unwrap().len(), layer.size);
    }
}
