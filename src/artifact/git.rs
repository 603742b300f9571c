//! The manifest annotations (artifact.md#annotations): `created`, `revision` and `source`, read
//! from the git metadata around the source directory without running `git`.
//!
//! What is read: `.git` (a directory, or a `gitdir:` file for worktrees, plus `commondir`),
//! `HEAD`, loose refs and `packed-refs`, `config` (`remote.origin.url`), and the `HEAD` commit
//! object (loose, or in a pack file, deltas included) for the committer time. Anything that cannot
//! be read falls back to the non-git values with a debug log line; it is never an error.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use flate2::read::ZlibDecoder;
use thiserror::Error;
use time::OffsetDateTime;
use time::macros::format_description;

use super::ArtifactError;

/// The latest time `YYYY-MM-DDTHH:MM:SSZ` can show (9999-12-31T23:59:59Z).
const MAX_EPOCH: u64 = 253_402_300_799;
/// Symbolic refs and delta chains longer than this are treated as unreadable.
const MAX_INDIRECTION: usize = 64;

/// The three manifest annotations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotations {
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    pub created: String,
    pub revision: String,
    pub source: String,
}

/// Compute the annotations for an artifact of `source_root` whose layer digest is
/// `layer_digest` (`sha256:<hex>`). `fallback_source` is `oci://<push.host>/<push.repository>`;
/// `source_date_epoch` is the value of `SOURCE_DATE_EPOCH` if set.
pub fn annotations(
    source_root: &Path,
    layer_digest: &str,
    fallback_source: &str,
    source_date_epoch: Option<&str>,
    now: SystemTime,
) -> Result<Annotations, ArtifactError> {
    let pinned = source_date_epoch.map(parse_source_date_epoch).transpose()?;
    let facts = read_git_facts(source_root);

    let created_secs = match (pinned, facts.committer_time) {
        (Some(epoch), _) => epoch as i64,
        (None, Some(committed)) => committed,
        (None, None) => now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs() as i64),
    };
    let revision = match &facts.head {
        Some(head) => head.revision(),
        None => layer_digest.to_string(),
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
#[cfg_attr(not(test), allow(dead_code))] // for cluster create's empty artifact (cluster.md step 6)
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

/// The `source` annotation for a remote URL: user-info removed from URLs, scp-style kept, and
/// `None` for local paths and `file://` URLs (which fall back to the `oci://` source).
fn public_source_url(url: &str) -> Option<String> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let valid_scheme = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !valid_scheme || scheme.eq_ignore_ascii_case("file") {
            return None;
        }
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        return Some(format!("{scheme}://{host}{path}"));
    }
    // scp-style `[user@]host:path`: a colon before any slash. A single letter before the colon
    // is a Windows drive, so a local path.
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
    /// 40 (SHA-1) or 64 (SHA-256) hex digits.
    hex: String,
}

impl Head {
    fn revision(&self) -> String {
        let algorithm = if self.hex.len() == 64 {
            "sha256"
        } else {
            "sha1"
        };
        match &self.branch {
            Some(branch) => format!("{branch}@{algorithm}:{}", self.hex),
            None => format!("{algorithm}:{}", self.hex),
        }
    }
}

/// What git tells us; every member is optional because every read may fail independently.
#[derive(Debug, Default)]
struct GitFacts {
    head: Option<Head>,
    committer_time: Option<i64>,
    origin_url: Option<String>,
}

#[derive(Debug, Error)]
enum GitReadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{0}")]
    Format(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> GitReadError + '_ {
    move |source| GitReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn read_git_facts(source_root: &Path) -> GitFacts {
    let start = fs::canonicalize(source_root).unwrap_or_else(|_| source_root.to_path_buf());
    let repository = match Repository::discover(&start) {
        Ok(Some(repository)) => repository,
        Ok(None) => {
            tracing::debug!("no git work tree around {}", start.display());
            return GitFacts::default();
        }
        Err(error) => {
            tracing::debug!("git metadata unreadable, using non-git annotations: {error}");
            return GitFacts::default();
        }
    };
    let mut facts = GitFacts::default();
    match repository.origin_url() {
        Ok(url) => facts.origin_url = url,
        Err(error) => tracing::debug!("cannot read the origin remote: {error}"),
    }
    match repository.head() {
        Ok(Some(head)) => {
            match repository.committer_time(&head.hex) {
                Ok(time) => facts.committer_time = Some(time),
                Err(error) => tracing::debug!("cannot read the HEAD commit: {error}"),
            }
            facts.head = Some(head);
        }
        Ok(None) => tracing::debug!("git HEAD has no commit yet"),
        Err(error) => tracing::debug!("cannot resolve git HEAD: {error}"),
    }
    facts
}

struct Repository {
    /// `.git` or, in a linked worktree, `.git/worktrees/<name>`: holds `HEAD`.
    git_dir: PathBuf,
    /// Holds refs, `packed-refs`, `config` and objects.
    common_dir: PathBuf,
}

impl Repository {
    /// The repository whose work tree contains `start`, if any.
    fn discover(start: &Path) -> Result<Option<Repository>, GitReadError> {
        for dir in start.ancestors() {
            let dot_git = dir.join(".git");
            let Ok(metadata) = fs::metadata(&dot_git) else {
                continue;
            };
            let git_dir = if metadata.is_dir() {
                dot_git
            } else {
                let text = fs::read_to_string(&dot_git).map_err(io_error(&dot_git))?;
                let target = text
                    .lines()
                    .find_map(|line| line.strip_prefix("gitdir:"))
                    .map(str::trim)
                    .ok_or_else(|| {
                        GitReadError::Format(format!("{} has no gitdir: line", dot_git.display()))
                    })?;
                dir.join(target)
            };
            let common_dir = match fs::read_to_string(git_dir.join("commondir")) {
                Ok(text) => git_dir.join(text.trim()),
                Err(_) => git_dir.clone(),
            };
            return Ok(Some(Repository {
                git_dir,
                common_dir,
            }));
        }
        Ok(None)
    }

    /// `None` when `HEAD` names a branch that has no commit yet.
    fn head(&self) -> Result<Option<Head>, GitReadError> {
        let path = self.git_dir.join("HEAD");
        let text = fs::read_to_string(&path).map_err(io_error(&path))?;
        let text = text.trim();
        if let Some(reference) = text.strip_prefix("ref:") {
            let reference = reference.trim();
            let branch = reference
                .strip_prefix("refs/heads/")
                .unwrap_or(reference)
                .to_string();
            Ok(self.resolve_ref(reference)?.map(|hex| Head {
                branch: Some(branch),
                hex,
            }))
        } else if is_object_hex(text) {
            Ok(Some(Head {
                branch: None,
                hex: text.to_string(),
            }))
        } else {
            Err(GitReadError::Format(format!(
                "{} is neither a ref nor an object name",
                path.display()
            )))
        }
    }

    /// The object a ref points at, following symbolic refs; `None` if the ref does not exist.
    fn resolve_ref(&self, reference: &str) -> Result<Option<String>, GitReadError> {
        let mut reference = reference.to_string();
        for _ in 0..MAX_INDIRECTION {
            if reference
                .split('/')
                .any(|part| part == ".." || part.is_empty())
            {
                return Err(GitReadError::Format(format!(
                    "unsafe ref name {reference:?}"
                )));
            }
            let loose = [&self.git_dir, &self.common_dir]
                .into_iter()
                .map(|dir| dir.join(&reference))
                .find_map(|path| fs::read_to_string(path).ok());
            let value = match loose {
                Some(text) => text.trim().to_string(),
                None => match self.packed_ref(&reference)? {
                    Some(hex) => return Ok(Some(hex)),
                    None => return Ok(None),
                },
            };
            if let Some(target) = value.strip_prefix("ref:") {
                reference = target.trim().to_string();
            } else if is_object_hex(&value) {
                return Ok(Some(value));
            } else {
                return Err(GitReadError::Format(format!(
                    "ref {reference} holds {value:?}"
                )));
            }
        }
        Err(GitReadError::Format(
            "symbolic refs nest too deeply".to_string(),
        ))
    }

    fn packed_ref(&self, reference: &str) -> Result<Option<String>, GitReadError> {
        let path = self.common_dir.join("packed-refs");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path)(error)),
        };
        Ok(text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.starts_with('^'))
            .filter_map(|line| line.split_once(' '))
            .find(|(_, name)| name.trim() == reference)
            .map(|(hex, _)| hex.to_string())
            .filter(|hex| is_object_hex(hex)))
    }

    /// The first `url` of `[remote "origin"]`.
    fn origin_url(&self) -> Result<Option<String>, GitReadError> {
        let path = self.common_dir.join("config");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path)(error)),
        };
        Ok(config_values(&text, "remote", Some("origin"), "url")
            .into_iter()
            .next())
    }

    fn committer_time(&self, hex: &str) -> Result<i64, GitReadError> {
        let store = ObjectStore::open(&self.common_dir.join("objects"));
        let (kind, data) = store
            .read(hex)?
            .ok_or_else(|| GitReadError::Format(format!("object {hex} not found")))?;
        if kind != ObjectKind::Commit {
            return Err(GitReadError::Format(format!(
                "object {hex} is not a commit"
            )));
        }
        committer_time(&data)
            .ok_or_else(|| GitReadError::Format(format!("commit {hex} has no committer time")))
    }
}

fn is_object_hex(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The values of `<section> "<subsection>"` `<key>` in git-config text, in file order. Section
/// and key names are case-insensitive; subsection names are not.
fn config_values(text: &str, section: &str, subsection: Option<&str>, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut in_section = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let Some(end) = header.find(']') else {
                in_section = false;
                continue;
            };
            let header = &header[..end];
            let (name, sub) = match header.split_once(char::is_whitespace) {
                Some((name, sub)) => {
                    let sub = sub.trim();
                    let sub = sub.strip_prefix('"').and_then(|s| s.strip_suffix('"'));
                    (
                        name,
                        sub.map(|s| s.replace("\\\"", "\"").replace("\\\\", "\\")),
                    )
                }
                None => match header.split_once('.') {
                    // The deprecated `[section.subsection]` form.
                    Some((name, sub)) => (name, Some(sub.to_ascii_lowercase())),
                    None => (header, None),
                },
            };
            in_section = name.eq_ignore_ascii_case(section) && sub.as_deref() == subsection;
            // A key may follow the header on the same line.
            let rest = header_rest(line);
            if in_section && let Some(value) = key_value(rest, key) {
                values.push(value);
            }
            continue;
        }
        if in_section && let Some(value) = key_value(line, key) {
            values.push(value);
        }
    }
    values
}

fn header_rest(line: &str) -> &str {
    line.find(']').map_or("", |end| line[end + 1..].trim())
}

/// The value of `line` if it sets `key`: quotes removed, escapes applied, comments dropped.
fn key_value(line: &str, key: &str) -> Option<String> {
    let (name, value) = match line.split_once('=') {
        Some((name, value)) => (name.trim(), value.trim()),
        None => (line.trim(), "true"),
    };
    if !name.eq_ignore_ascii_case(key) {
        return None;
    }
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            c => out.push(c),
        }
    }
    Some(out.trim_end().to_string())
}

/// The committer time (seconds since the epoch) from commit object data.
fn committer_time(commit: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(commit);
    let line = text
        .lines()
        .take_while(|line| !line.is_empty())
        .find_map(|line| line.strip_prefix("committer "))?;
    // `Name <email> <seconds> <±hhmm>`: the seconds are the second-to-last field.
    let mut fields = line.rsplit(' ');
    let _zone = fields.next()?;
    fields.next()?.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectKind {
    Commit,
    Tree,
    Blob,
    Tag,
}

impl ObjectKind {
    fn from_name(name: &str) -> Option<ObjectKind> {
        match name {
            "commit" => Some(ObjectKind::Commit),
            "tree" => Some(ObjectKind::Tree),
            "blob" => Some(ObjectKind::Blob),
            "tag" => Some(ObjectKind::Tag),
            _ => None,
        }
    }

    fn from_pack_type(code: u8) -> Option<ObjectKind> {
        match code {
            1 => Some(ObjectKind::Commit),
            2 => Some(ObjectKind::Tree),
            3 => Some(ObjectKind::Blob),
            4 => Some(ObjectKind::Tag),
            _ => None,
        }
    }
}

/// Object directories: the repository's own, then those named in `info/alternates`.
struct ObjectStore {
    dirs: Vec<PathBuf>,
}

impl ObjectStore {
    fn open(objects: &Path) -> ObjectStore {
        let mut dirs = vec![objects.to_path_buf()];
        if let Ok(text) = fs::read_to_string(objects.join("info/alternates")) {
            for line in text.lines().map(str::trim) {
                if !line.is_empty() && !line.starts_with('#') {
                    dirs.push(objects.join(line));
                }
            }
        }
        ObjectStore { dirs }
    }

    fn read(&self, hex: &str) -> Result<Option<(ObjectKind, Vec<u8>)>, GitReadError> {
        let hash = decode_hex(hex)
            .ok_or_else(|| GitReadError::Format(format!("bad object name {hex}")))?;
        for dir in &self.dirs {
            if let Some(object) = read_loose(dir, hex)? {
                return Ok(Some(object));
            }
            for pack in pack_indexes(dir) {
                if let Some(object) = pack.read(&hash, self)? {
                    return Ok(Some(object));
                }
            }
        }
        Ok(None)
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn read_loose(dir: &Path, hex: &str) -> Result<Option<(ObjectKind, Vec<u8>)>, GitReadError> {
    let path = dir.join(&hex[..2]).join(&hex[2..]);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io_error(&path)(error)),
    };
    let mut data = Vec::new();
    ZlibDecoder::new(BufReader::new(file))
        .read_to_end(&mut data)
        .map_err(io_error(&path))?;
    let nul = data
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| GitReadError::Format(format!("{} has no object header", path.display())))?;
    let header = String::from_utf8_lossy(&data[..nul]).into_owned();
    let kind = header
        .split(' ')
        .next()
        .and_then(ObjectKind::from_name)
        .ok_or_else(|| {
            GitReadError::Format(format!("{} has object header {header:?}", path.display()))
        })?;
    data.drain(..=nul);
    Ok(Some((kind, data)))
}

/// A version-2 pack index and its pack file.
struct PackIndex {
    idx: PathBuf,
    pack: PathBuf,
}

fn pack_indexes(objects: &Path) -> Vec<PackIndex> {
    let Ok(entries) = fs::read_dir(objects.join("pack")) else {
        return Vec::new();
    };
    let mut indexes: Vec<PackIndex> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
        .map(|idx| PackIndex {
            pack: idx.with_extension("pack"),
            idx,
        })
        .collect();
    indexes.sort_by(|a, b| a.idx.cmp(&b.idx));
    indexes
}

fn read_at(file: &mut File, offset: u64, buffer: &mut [u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buffer)
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl PackIndex {
    /// The offset of `hash` in the pack, by binary search within its fan-out bucket. The index is
    /// read piecewise so that a large repository's index is never loaded whole.
    fn find(&self, hash: &[u8]) -> Result<Option<u64>, GitReadError> {
        let mut file = File::open(&self.idx).map_err(io_error(&self.idx))?;
        let io = io_error(&self.idx);
        let mut header = [0u8; 8];
        if let Err(error) = read_at(&mut file, 0, &mut header) {
            return Err(io(error));
        }
        if header[..4] != [0xff, b't', b'O', b'c'] || be_u32(&header[4..]) != 2 {
            return Err(GitReadError::Format(format!(
                "{} is not a version 2 pack index",
                self.idx.display()
            )));
        }
        let mut fanout = [0u8; 256 * 4];
        read_at(&mut file, 8, &mut fanout).map_err(io_error(&self.idx))?;
        let fan = |i: usize| be_u32(&fanout[i * 4..i * 4 + 4]) as u64;
        let total = fan(255);
        let first = hash[0] as usize;
        let (mut low, mut high) = (if first == 0 { 0 } else { fan(first - 1) }, fan(first));
        let hash_len = hash.len() as u64;
        let names_start = 8 + 256 * 4;
        let mut candidate = vec![0u8; hash.len()];
        while low < high {
            let middle = low + (high - low) / 2;
            read_at(&mut file, names_start + middle * hash_len, &mut candidate)
                .map_err(io_error(&self.idx))?;
            match candidate.as_slice().cmp(hash) {
                std::cmp::Ordering::Less => low = middle + 1,
                std::cmp::Ordering::Greater => high = middle,
                std::cmp::Ordering::Equal => {
                    let offsets_start = names_start + total * hash_len + total * 4;
                    let mut small = [0u8; 4];
                    read_at(&mut file, offsets_start + middle * 4, &mut small)
                        .map_err(io_error(&self.idx))?;
                    let small = be_u32(&small);
                    if small & 0x8000_0000 == 0 {
                        return Ok(Some(small as u64));
                    }
                    let large_index = (small & 0x7fff_ffff) as u64;
                    let mut large = [0u8; 8];
                    read_at(
                        &mut file,
                        offsets_start + total * 4 + large_index * 8,
                        &mut large,
                    )
                    .map_err(io_error(&self.idx))?;
                    return Ok(Some(u64::from_be_bytes(large)));
                }
            }
        }
        Ok(None)
    }

    fn read(
        &self,
        hash: &[u8],
        store: &ObjectStore,
    ) -> Result<Option<(ObjectKind, Vec<u8>)>, GitReadError> {
        match self.find(hash)? {
            Some(offset) => self.read_at_offset(offset, hash.len(), store, 0).map(Some),
            None => Ok(None),
        }
    }

    fn read_at_offset(
        &self,
        offset: u64,
        hash_len: usize,
        store: &ObjectStore,
        depth: usize,
    ) -> Result<(ObjectKind, Vec<u8>), GitReadError> {
        if depth > MAX_INDIRECTION {
            return Err(GitReadError::Format("delta chain too long".to_string()));
        }
        let io = |error| GitReadError::Io {
            path: self.pack.clone(),
            source: error,
        };
        let mut file = File::open(&self.pack).map_err(io)?;
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut reader = BufReader::new(file);
        let mut byte = read_byte(&mut reader).map_err(io)?;
        let type_code = (byte >> 4) & 0x07;
        let mut size = (byte & 0x0f) as u64;
        let mut shift = 4;
        while byte & 0x80 != 0 {
            byte = read_byte(&mut reader).map_err(io)?;
            size |= ((byte & 0x7f) as u64).checked_shl(shift).unwrap_or(0);
            shift += 7;
        }
        match type_code {
            6 => {
                // OFS_DELTA: the base is at a negative offset, in a big-endian base-128 form
                // where each continuation adds one.
                let mut byte = read_byte(&mut reader).map_err(io)?;
                let mut distance = (byte & 0x7f) as u64;
                while byte & 0x80 != 0 {
                    byte = read_byte(&mut reader).map_err(io)?;
                    distance = ((distance + 1) << 7) | (byte & 0x7f) as u64;
                }
                let base_offset = offset.checked_sub(distance).ok_or_else(|| {
                    GitReadError::Format("delta base before the pack start".to_string())
                })?;
                let delta = inflate(reader, size).map_err(io)?;
                let (kind, base) = self.read_at_offset(base_offset, hash_len, store, depth + 1)?;
                Ok((kind, apply_delta(&base, &delta)?))
            }
            7 => {
                // REF_DELTA: the base is named by its hash.
                let mut base_hash = vec![0u8; hash_len];
                reader.read_exact(&mut base_hash).map_err(io)?;
                let delta = inflate(reader, size).map_err(io)?;
                let (kind, base) = match self.find(&base_hash)? {
                    Some(base_offset) => {
                        self.read_at_offset(base_offset, hash_len, store, depth + 1)?
                    }
                    None => store
                        .read(&super::pack::hex(&base_hash))?
                        .ok_or_else(|| GitReadError::Format("delta base not found".to_string()))?,
                };
                Ok((kind, apply_delta(&base, &delta)?))
            }
            code => {
                let kind = ObjectKind::from_pack_type(code).ok_or_else(|| {
                    GitReadError::Format(format!("unknown pack object type {code}"))
                })?;
                Ok((kind, inflate(reader, size).map_err(io)?))
            }
        }
    }
}

fn read_byte(reader: &mut impl Read) -> io::Result<u8> {
    let mut byte = [0u8; 1];
    reader.read_exact(&mut byte)?;
    Ok(byte[0])
}

/// Decompress one zlib stream that should hold exactly `size` bytes.
fn inflate(reader: impl Read, size: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(size.min(1 << 20) as usize);
    ZlibDecoder::new(reader).take(size).read_to_end(&mut data)?;
    if data.len() as u64 != size {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "pack object shorter than its header says",
        ));
    }
    Ok(data)
}

/// Rebuild an object from its delta base and a git delta (copy and insert instructions).
fn apply_delta(base: &[u8], delta: &[u8]) -> Result<Vec<u8>, GitReadError> {
    let bad = || GitReadError::Format("corrupt delta".to_string());
    let mut position = 0;
    let varint = |position: &mut usize| -> Option<u64> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = *delta.get(*position)?;
            *position += 1;
            value |= ((byte & 0x7f) as u64).checked_shl(shift)?;
            shift += 7;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
    };
    let base_size = varint(&mut position).ok_or_else(bad)?;
    let result_size = varint(&mut position).ok_or_else(bad)?;
    if base_size != base.len() as u64 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(result_size.min(1 << 20) as usize);
    while position < delta.len() {
        let op = delta[position];
        position += 1;
        if op & 0x80 != 0 {
            let mut field = |bits: u8, count: usize| -> Option<u64> {
                let mut value = 0u64;
                for i in 0..count {
                    if op & (bits << i) != 0 {
                        value |= (*delta.get(position)? as u64) << (8 * i);
                        position += 1;
                    }
                }
                Some(value)
            };
            let copy_offset = field(0x01, 4).ok_or_else(bad)? as usize;
            let mut copy_size = field(0x10, 3).ok_or_else(bad)? as usize;
            if copy_size == 0 {
                copy_size = 0x10000;
            }
            let end = copy_offset.checked_add(copy_size).ok_or_else(bad)?;
            out.extend_from_slice(base.get(copy_offset..end).ok_or_else(bad)?);
        } else if op != 0 {
            let end = position + op as usize;
            out.extend_from_slice(delta.get(position..end).ok_or_else(bad)?);
            position = end;
        } else {
            return Err(bad());
        }
    }
    if out.len() as u64 != result_size {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        annotations(root, LAYER, FALLBACK, epoch, now()).unwrap()
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
            let error = annotations(dir.path(), LAYER, FALLBACK, Some(bad), now()).unwrap_err();
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
        git(repo.path(), &["gc", "-q", "--aggressive"]);
        git(repo.path(), &["prune-packed"]);
        assert!(!repo.path().join(".git/refs/heads/main").exists());
        let result = annotate(repo.path(), None);
        assert_eq!(result.revision, format!("main@sha1:{second}"));
        assert_eq!(result.created, "2023-11-14T22:15:00Z");
    }

    #[test]
    fn every_packed_object_reads_back_including_deltas() {
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
        git(repo.path(), &["gc", "-q", "--aggressive"]);
        git(repo.path(), &["prune-packed"]);
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

        let store = ObjectStore::open(&repo.path().join(".git/objects"));
        let objects = git(repo.path(), &["rev-list", "--objects", "--all"]).unwrap();
        for hex in objects.lines().filter_map(|line| line.split(' ').next()) {
            let kind = git(repo.path(), &["cat-file", "-t", hex]).unwrap();
            let (read_kind, data) = store.read(hex).unwrap().expect("object found");
            assert_eq!(Some(read_kind), ObjectKind::from_name(&kind), "{hex}");
            let expected = Command::new("git")
                .args(["cat-file", &kind, hex])
                .current_dir(repo.path())
                .output()
                .unwrap()
                .stdout;
            assert_eq!(data, expected, "{hex}");
        }
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
        let result = annotate(repo.path(), None);
        assert_eq!(result.revision, format!("main@sha256:{hex}"));
        assert_eq!(result.created, "2023-11-14T22:15:00Z");
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

    #[test]
    fn config_parsing() {
        let text = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://u\n\
                    [Remote \"origin\"] ; comment\n\tURL = \"https://a b\" # trailing\n\turl = https://second\n";
        assert_eq!(
            config_values(text, "remote", Some("origin"), "url"),
            ["https://a b", "https://second"]
        );
        assert!(config_values(text, "remote", Some("ORIGIN"), "url").is_empty());
    }

    #[test]
    fn delta_application() {
        let base = b"hello world";
        // base size 11, result size 16: copy 0..5, insert " big", copy 5..11, insert "!"
        // (copy offset 5 is one offset byte; sizes are one size byte each).
        let delta = [
            11, 17, 0x90, 5, 4, b' ', b'b', b'i', b'g', 0x91, 5, 6, 2, b'!', b'!',
        ];
        assert_eq!(apply_delta(base, &delta).unwrap(), b"hello big world!!");
        assert!(apply_delta(base, &[10, 1, 1, b'x']).is_err());
    }

    #[test]
    fn committer_line_parsing() {
        let commit = b"tree abc\nauthor A <a@x> 1 +0000\ncommitter C D <c@x> 1700000100 -0500\n\nmsg\ncommitter X <x> 5 +0000\n";
        assert_eq!(committer_time(commit), Some(1_700_000_100));
    }
}
