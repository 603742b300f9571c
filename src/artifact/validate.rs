//! Structural validation of the YAML files in a selection (artifact.md#validation): every file
//! must parse, and every non-empty document of a manifest file must look like a Kubernetes object.
//! Helm chart directories are skipped, and kustomization files plus the non-resource inputs they
//! name are only parsed.

use std::collections::BTreeSet;
use std::fs;

use sha2::{Digest, Sha256};

use super::cache::ValidationCache;
use super::pack::hex;
use super::select::{Entry, EntryKind, Selection};
use super::{ArtifactError, display_path, io_reason};
use crate::yaml::{self, Node, Pos, Value};

/// The version of the validation rules, part of the per-file cache's location
/// ([`ValidationCache`]): bump it whenever a rule or a limit changes what passes, so that no pass
/// recorded under the old rules is trusted.
pub const RULES: &str = "rules-1";

/// At most this many problem lines are printed (artifact.md#reporting).
pub const MAX_REPORTED_PROBLEMS: usize = 20;

const KUSTOMIZATION_NAMES: [&str; 2] = ["kustomization.yaml", "kustomization.yml"];
const CHART_FILE: &str = "Chart.yaml";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The source directory as given, then the path inside it: `k8s/apps/deploy.yaml`.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Validation {
    /// Sorted by file, line, column.
    pub problems: Vec<Problem>,
    /// Files that were checked (manifests and parse-only files), from the cache or parsed.
    pub files_checked: usize,
    /// Of those, files whose content had passed in the same role before, taken from the cache
    /// without parsing.
    pub files_from_cache: usize,
    /// The cache keys of the files parsed now that passed: the caller records them
    /// ([`ValidationCache::record_all`]) once the whole run succeeded, so that a failed run leaves
    /// nothing behind.
    pub newly_passed: Vec<String>,
    /// The source directory as given, for the summary line.
    pub source: String,
}

impl Validation {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }

    /// The error that ends a failed validation (print [`report_lines`] first); `None` if it passed.
    pub fn error(&self) -> Option<ArtifactError> {
        (!self.passed()).then(|| ArtifactError::ValidationFailed {
            summary: report_lines(self).1,
        })
    }
}

/// Validate the YAML files of `selection`. Never fails: unreadable files become problems.
///
/// With a `cache`, a file whose content passed before in the same role (manifest or parse-only)
/// is not parsed again, and each file that passes now is listed in `newly_passed`: a one-file
/// change parses one file. Kustomization files are always parsed, because they decide the roles.
pub fn validate(
    display_root: &str,
    selection: &Selection,
    cache: Option<&ValidationCache>,
) -> Validation {
    let chart_dirs = chart_directories(selection);
    let candidates: Vec<&Entry> = selection
        .entries
        .iter()
        .filter(|entry| entry.is_file() && is_yaml_name(&entry.name))
        .filter(|entry| !in_chart_directory(&entry.name, &chart_dirs))
        .collect();

    // Pass 1: kustomization files (parse-only themselves) name the other parse-only inputs.
    // Pass 2 then parses every other file and checks each document as soon as it is parsed, so
    // that only one document's tree is in memory at a time, whatever the size of the source
    // directory or of a file (yaml::limits bounds one document).
    let mut problems = Vec::new();
    let mut parse_only: BTreeSet<String> = BTreeSet::new();
    for entry in candidates
        .iter()
        .filter(|entry| is_kustomization(&entry.name))
    {
        parse_only.insert(entry.name.clone());
        let file = display_path(display_root, &entry.name);
        let mut inputs = Vec::new();
        let parsed = read_entry(&file, entry).and_then(|content| {
            parse_content(&file, content, |document| {
                inputs.extend(referenced_inputs(&document));
            })
        });
        match parsed {
            Ok(()) => {
                let dir = parent_dir(&entry.name);
                parse_only.extend(inputs.iter().filter_map(|path| join_relative(dir, path)));
            }
            Err(problem) => problems.push(problem),
        }
    }
    // The other files are independent of each other: check them on every core, each thread
    // taking the next file as it finishes one (files differ widely in size).
    let others: Vec<&Entry> = candidates
        .iter()
        .copied()
        .filter(|entry| !is_kustomization(&entry.name))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let outcomes: Vec<FileOutcomes> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(others.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut outcomes = FileOutcomes::default();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(entry) = others.get(index) else {
                            return outcomes;
                        };
                        let check = !parse_only.contains(&entry.name);
                        check_file(display_root, entry, check, cache, &mut outcomes);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or_default())
            .collect()
    });
    let (mut files_from_cache, mut newly_passed) = (0, Vec::new());
    for outcome in outcomes {
        problems.extend(outcome.problems);
        files_from_cache += outcome.from_cache;
        newly_passed.extend(outcome.newly_passed);
    }
    newly_passed.sort();
    problems.sort();
    Validation {
        problems,
        files_checked: candidates.len(),
        files_from_cache,
        newly_passed,
        source: display_root.to_string(),
    }
}

/// What checking some of the files found.
#[derive(Default)]
struct FileOutcomes {
    problems: Vec<Problem>,
    from_cache: usize,
    newly_passed: Vec<String>,
}

/// Check one non-kustomization file: parse it and, when `check`, check every document as an
/// object; a file whose content passed before in the same role is taken from `cache`.
fn check_file(
    display_root: &str,
    entry: &Entry,
    check: bool,
    cache: Option<&ValidationCache>,
    outcomes: &mut FileOutcomes,
) {
    let file = display_path(display_root, &entry.name);
    let content = match read_entry(&file, entry) {
        Ok(content) => content,
        Err(problem) => return outcomes.problems.push(problem),
    };
    let key = match cache {
        Some(_) => match content_sha256(&file, &content) {
            Ok(hash) => {
                let role = if check { "manifest" } else { "parse-only" };
                Some(format!("{hash}-{role}"))
            }
            Err(problem) => return outcomes.problems.push(problem),
        },
        None => None,
    };
    if let (Some(cache), Some(key)) = (cache, &key)
        && cache.passed(key)
    {
        outcomes.from_cache += 1;
        return;
    }
    let (mut found, mut number) = (Vec::new(), 0);
    match parse_content(&file, content, |document| {
        number += 1;
        if check {
            found.extend(check_object(&file, number, &document));
        }
    }) {
        // A file that does not parse reports only that.
        Err(problem) => outcomes.problems.push(problem),
        Ok(()) if found.is_empty() => outcomes.newly_passed.extend(key),
        Ok(()) => outcomes.problems.extend(found),
    }
}

/// The problem lines (at most [`MAX_REPORTED_PROBLEMS`], then `… and N more`) and the final error
/// message without `error: `. Call only for a failed validation.
pub fn report_lines(validation: &Validation) -> (Vec<String>, String) {
    let problems = &validation.problems;
    let mut lines: Vec<String> = problems
        .iter()
        .take(MAX_REPORTED_PROBLEMS)
        .map(|p| format!("{}:{}:{}: {}", p.file, p.line, p.column, p.message))
        .collect();
    if problems.len() > MAX_REPORTED_PROBLEMS {
        lines.push(format!(
            "… and {} more",
            problems.len() - MAX_REPORTED_PROBLEMS
        ));
    }
    (lines, summary(validation))
}

fn summary(validation: &Validation) -> String {
    let problems = validation.problems.len();
    let files = validation
        .problems
        .iter()
        .map(|p| p.file.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    let problems_word = if problems == 1 { "problem" } else { "problems" };
    let files_word = if files == 1 { "file" } else { "files" };
    format!(
        "validation failed: {problems} {problems_word} in {files} {files_word} under {}; fix them or push with --no-validate",
        validation.source
    )
}

fn is_yaml_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

fn base_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// The directory part of an entry name, with its trailing `/` (empty at the root).
fn parent_dir(name: &str) -> &str {
    match name.rfind('/') {
        Some(index) => &name[..=index],
        None => "",
    }
}

fn is_kustomization(name: &str) -> bool {
    KUSTOMIZATION_NAMES.contains(&base_name(name))
}

/// Directories (as `dir/` prefixes; `""` for the root) that hold a packed `Chart.yaml`.
fn chart_directories(selection: &Selection) -> Vec<String> {
    selection
        .entries
        .iter()
        .filter(|entry| entry.is_file() && base_name(&entry.name) == CHART_FILE)
        .map(|entry| parent_dir(&entry.name).to_string())
        .collect()
}

fn in_chart_directory(name: &str, chart_dirs: &[String]) -> bool {
    chart_dirs.iter().any(|dir| name.starts_with(dir.as_str()))
}

/// Parse `entry`, handing each document to `each` as soon as it is parsed.
fn problem_at(file: &str, pos: Pos, message: String) -> Problem {
    Problem {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        message,
    }
}

/// Files up to this size are read whole, which parses fastest; larger ones are read and parsed
/// a chunk at a time, so that memory stays bounded whatever the size of a file. The unit tests
/// use a smaller bound, so that comparing the two paths stays quick in a debug build.
#[cfg(not(test))]
const READ_WHOLE_UP_TO: u64 = 4 * 1024 * 1024;
#[cfg(test)]
const READ_WHOLE_UP_TO: u64 = 64 * 1024;

/// A file's content: in memory, or a large file to stream.
enum Content {
    Bytes(Vec<u8>),
    Large(std::path::PathBuf),
}

fn cannot_read(file: &str, pos: Pos, error: &std::io::Error) -> Problem {
    problem_at(file, pos, format!("cannot read: {}", io_reason(error)))
}

/// The content of a file entry (`file` is its display path, for the problem).
fn read_entry(file: &str, entry: &Entry) -> Result<Content, Problem> {
    let start = Pos { line: 1, column: 1 };
    match &entry.kind {
        EntryKind::File { source, size, .. } if *size > READ_WHOLE_UP_TO => {
            Ok(Content::Large(source.clone()))
        }
        EntryKind::File { source, .. } => fs::read(source)
            .map(Content::Bytes)
            .map_err(|error| cannot_read(file, start, &error)),
        EntryKind::Inline(bytes) => Ok(Content::Bytes(bytes.clone())),
        EntryKind::Dir => Ok(Content::Bytes(Vec::new())),
    }
}

/// The hex SHA-256 of the content, streaming a large file.
fn content_sha256(file: &str, content: &Content) -> Result<String, Problem> {
    match content {
        Content::Bytes(bytes) => Ok(hex(&Sha256::digest(bytes))),
        Content::Large(path) => {
            let mut hasher = Sha256::new();
            fs::File::open(path)
                .and_then(|mut reader| std::io::copy(&mut reader, &mut hasher))
                .map_err(|error| cannot_read(file, Pos { line: 1, column: 1 }, &error))?;
            Ok(hex(&hasher.finalize()))
        }
    }
}

/// Parse the content as YAML, handing each document to `each`.
fn parse_content(file: &str, content: Content, each: impl FnMut(Node)) -> Result<(), Problem> {
    match content {
        Content::Bytes(bytes) => parse_bytes(file, bytes, each),
        Content::Large(path) => {
            let reader = fs::File::open(&path)
                .map_err(|error| cannot_read(file, Pos { line: 1, column: 1 }, &error))?;
            let reader = std::io::BufReader::with_capacity(64 * 1024, reader);
            yaml::parse_each_document_from(reader, each).map_err(|error| match error {
                yaml::StreamError::Yaml(error) => yaml_problem(file, error),
                yaml::StreamError::InvalidUtf8(pos) => {
                    problem_at(file, pos, "invalid UTF-8".to_string())
                }
                yaml::StreamError::Read(pos, reason) => {
                    problem_at(file, pos, format!("cannot read: {reason}"))
                }
            })
        }
    }
}

/// Parse `bytes` as YAML, handing each document to `each`.
fn parse_bytes(file: &str, bytes: Vec<u8>, each: impl FnMut(Node)) -> Result<(), Problem> {
    let text = String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        problem_at(file, position_after(valid), "invalid UTF-8".to_string())
    })?;
    yaml::parse_each_document(&text, each).map_err(|error| yaml_problem(file, error))
}

fn yaml_problem(file: &str, error: yaml::YamlError) -> Problem {
    let message = match error.limit {
        Some(limit) => format!("{}; {}", error.message, limit.fix()),
        None => error.message,
    };
    problem_at(file, error.pos, message)
}

/// The 1-based position just after `prefix`.
fn position_after(prefix: &[u8]) -> Pos {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let column = text
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    Pos { line, column }
}

/// The Kubernetes-object check for document `number` (1-based) of a manifest file.
fn check_object(file: &str, number: usize, document: &Node) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut problem = |pos: Pos, message: String| {
        problems.push(Problem {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            message,
        })
    };
    match &document.value {
        Value::Null => {}
        Value::Sequence(_) => problem(
            document.pos,
            format!("document {number} is a sequence, not a Kubernetes object"),
        ),
        Value::Scalar(_) => problem(
            document.pos,
            format!("document {number} is a scalar, not a Kubernetes object"),
        ),
        Value::Mapping(_) => {
            for field in ["apiVersion", "kind"] {
                match document.get(field) {
                    None => problem(document.pos, format!("document {number} has no {field:?}")),
                    Some(value) => match &value.value {
                        Value::Scalar(scalar) if !scalar.text.is_empty() => {
                            if !matches!(scalar.core_value(), yaml::CoreValue::Str(_)) {
                                problem(
                                    value.pos,
                                    format!(
                                        "document {number} has {field:?} {}, not a string",
                                        value.describe()
                                    ),
                                );
                            }
                        }
                        Value::Null => {
                            problem(document.pos, format!("document {number} has no {field:?}"))
                        }
                        _ => problem(
                            value.pos,
                            format!(
                                "document {number} has {field:?} {}, not a non-empty string",
                                value.describe()
                            ),
                        ),
                    },
                }
            }
        }
    }
    problems
}

/// The paths a kustomization names as non-resource inputs (artifact.md#which-files), as written
/// (relative to the kustomization's directory, the `key=` part removed).
fn referenced_inputs(kustomization: &Node) -> Vec<String> {
    let mut paths = Vec::new();
    let mut push = |node: Option<&Node>| {
        if let Some(text) = node.and_then(Node::as_str) {
            let path = text.split_once('=').map_or(text, |(_, path)| path);
            paths.push(path.trim().to_string());
        }
    };
    let items = |node: Option<&Node>| -> Vec<Node> {
        match node.map(|n| &n.value) {
            Some(Value::Sequence(items)) => items.clone(),
            _ => Vec::new(),
        }
    };

    for generator in ["configMapGenerator", "secretGenerator"] {
        for item in items(kustomization.get(generator)) {
            for file in items(item.get("files")) {
                push(Some(&file));
            }
            for env in items(item.get("envs")) {
                push(Some(&env));
            }
            push(item.get("env"));
        }
    }
    for field in ["patches", "patchesJson6902", "replacements"] {
        for item in items(kustomization.get(field)) {
            push(item.get("path"));
        }
    }
    for chart in items(kustomization.get("helmCharts")) {
        push(chart.get("valuesFile"));
        for file in items(chart.get("additionalValuesFiles")) {
            push(Some(&file));
        }
    }
    for configuration in items(kustomization.get("configurations")) {
        push(Some(&configuration));
    }
    push(
        kustomization
            .get("openapi")
            .and_then(|openapi| openapi.get("path")),
    );
    paths
}

/// Resolve `path` against the entry directory `dir` (`""` or `a/b/`) lexically. `None` for
/// absolute paths, URLs and paths that leave the root.
fn join_relative(dir: &str, path: &str) -> Option<String> {
    if path.is_empty() || path.starts_with('/') || path.contains("://") {
        return None;
    }
    let mut parts: Vec<&str> = dir.split('/').filter(|part| !part.is_empty()).collect();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::select::{select, tests::write};

    fn run(files: &[(&str, &str)]) -> Validation {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            write(dir.path(), name, content);
        }
        let selection = select("k8s", dir.path()).unwrap();
        validate("k8s", &selection, None)
    }

    fn lines(validation: &Validation) -> Vec<String> {
        report_lines(validation).0
    }

    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n";

    /// A file over [`READ_WHOLE_UP_TO`] is parsed as it is read; it must report exactly what the
    /// same text read whole reports. Each case is padded to a large file by a leading comment
    /// line, which moves every problem down one line.
    #[test]
    fn a_large_file_is_streamed_with_the_same_results() {
        let padding = format!("# {}\n", "x".repeat(READ_WHOLE_UP_TO as usize + 10));
        let cases: [&[u8]; 7] = [
            DEPLOY.as_bytes(),
            b"apiVersion: v1\nkind: A\nmetadata: {}\nkind: B\n",
            b"apiVersion: v1\nkind: [A\n",
            b"apiVersion: v1\nkind: A\n---\nkind: B\n",
            b"apiVersion: v1\nkind: \"\xc3\xa9\xff\"\n",
            b"a: &a [1, 2]\nb: [*a, *a]\napiVersion: v1\nkind: A\n",
            b"---\napiVersion: v1\nkind: A\n...\n---\napiVersion: v1\n",
        ];
        for case in cases {
            let whole = {
                let dir = tempfile::tempdir().unwrap();
                std::fs::write(dir.path().join("a.yaml"), case).unwrap();
                validate("k8s", &select("k8s", dir.path()).unwrap(), None)
            };
            let streamed = {
                let dir = tempfile::tempdir().unwrap();
                let mut bytes = padding.clone().into_bytes();
                bytes.extend_from_slice(case);
                std::fs::write(dir.path().join("a.yaml"), bytes).unwrap();
                validate("k8s", &select("k8s", dir.path()).unwrap(), None)
            };
            let moved: Vec<Problem> = whole
                .problems
                .iter()
                .map(|problem| Problem {
                    line: problem.line + 1,
                    ..problem.clone()
                })
                .collect();
            assert_eq!(
                streamed.problems,
                moved,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn valid_manifests_pass() {
        let validation = run(&[
            ("apps/deploy.yaml", DEPLOY),
            (
                "apps/two.YML",
                "---\napiVersion: v1\nkind: A\n---\n---\n~\n",
            ),
            ("notes.txt", "not: [yaml"),
        ]);
        assert!(validation.passed(), "{:?}", validation.problems);
        assert_eq!(validation.files_checked, 2);
    }

    #[test]
    fn every_problem_kind_is_reported_with_position() {
        let validation = run(&[
            (
                "apps/deploy.yaml",
                &format!("{DEPLOY}---\napiVersion: v1\nmetadata: {{}}\n"),
            ),
            (
                "apps/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\ndata: a: b\n",
            ),
            ("base/list.yaml", "- a\n- b\n"),
            (
                "base/svc.yaml",
                "apiVersion: v1\nkind: Service\nmetadata: {}\nmetadata: {}\n",
            ),
            ("base/scalar.yaml", "just text\n"),
            ("base/nothing.yaml", "metadata: {}\n"),
            ("base/empty-kind.yaml", "apiVersion: v1\nkind: \"\"\n"),
            ("base/int.yaml", "apiVersion: 1\nkind: X\n"),
        ]);
        let lines = lines(&validation);
        assert_eq!(
            lines,
            [
                "k8s/apps/cm.yaml:3:8: mapping values are not allowed in this context",
                "k8s/apps/deploy.yaml:6:1: document 2 has no \"kind\"",
                "k8s/base/empty-kind.yaml:2:7: document 1 has \"kind\" string \"\", not a non-empty string",
                "k8s/base/int.yaml:1:13: document 1 has \"apiVersion\" integer 1, not a string",
                "k8s/base/list.yaml:1:1: document 1 is a sequence, not a Kubernetes object",
                "k8s/base/nothing.yaml:1:1: document 1 has no \"apiVersion\"",
                "k8s/base/nothing.yaml:1:1: document 1 has no \"kind\"",
                "k8s/base/scalar.yaml:1:1: document 1 is a scalar, not a Kubernetes object",
                "k8s/base/svc.yaml:4:1: duplicate key \"metadata\"",
            ]
        );
    }

    #[test]
    fn kustomization_and_its_inputs_are_parse_only() {
        let validation = run(&[
            (
                "overlay/kustomization.yaml",
                "resources: [deploy.yaml]\n\
                 configMapGenerator:\n- name: a\n  files: [key=cfg/settings.yaml, plain.yml]\n  envs: [a.env]\n  env: b.yaml\n\
                 secretGenerator:\n- name: s\n  files: [../shared/secret.yaml]\n\
                 patches:\n- path: patch.yaml\n\
                 patchesJson6902:\n- target: {kind: Deployment}\n  path: json6902.yaml\n\
                 helmCharts:\n- name: c\n  valuesFile: values.yaml\n  additionalValuesFiles: [more.yaml]\n\
                 replacements:\n- path: repl.yaml\n\
                 configurations: [conf.yaml]\n\
                 openapi:\n  path: schema.yaml\n",
            ),
            ("overlay/deploy.yaml", DEPLOY),
            ("overlay/cfg/settings.yaml", "log: debug\n"),
            ("overlay/plain.yml", "x: 1\n"),
            ("overlay/b.yaml", "x: 1\n"),
            ("shared/secret.yaml", "password: x\n"),
            ("overlay/patch.yaml", "- op: add\n"),
            ("overlay/json6902.yaml", "- op: replace\n  path: /spec\n"),
            ("overlay/values.yaml", "replicas: 2\n"),
            ("overlay/more.yaml", "a: b\n"),
            ("overlay/repl.yaml", "- source: {}\n"),
            ("overlay/conf.yaml", "nameReference: []\n"),
            ("overlay/schema.yaml", "definitions: {}\n"),
            ("base/kustomization.yml", "resources: []\n"),
            ("other/values.yaml", "replicas: 2\n"),
        ]);
        // Only the file not named by any kustomization is checked as an object.
        assert_eq!(
            lines(&validation),
            [
                "k8s/other/values.yaml:1:1: document 1 has no \"apiVersion\"",
                "k8s/other/values.yaml:1:1: document 1 has no \"kind\"",
            ]
        );
        assert_eq!(validation.files_checked, 15);
    }

    #[test]
    fn parse_only_files_still_must_parse() {
        let validation = run(&[
            (
                "kustomization.yaml",
                "patches:\n- path: p.yaml\nresources: [a: b: c]\n",
            ),
            ("p.yaml", "a: [\n"),
        ]);
        assert_eq!(validation.problems.len(), 2, "{:?}", validation.problems);
        let validation = run(&[
            ("kustomization.yaml", "patches:\n- path: p.yaml\n"),
            ("p.yaml", "a: 1\na: 2\n"),
        ]);
        assert_eq!(lines(&validation), ["k8s/p.yaml:2:1: duplicate key \"a\""]);
    }

    #[test]
    fn helm_chart_directories_are_skipped() {
        let validation = run(&[
            ("charts/app/Chart.yaml", "apiVersion: v2\nname: app\n"),
            ("charts/app/values.yaml", "replicas: 1\n"),
            (
                "charts/app/templates/deploy.yaml",
                "{{ if .Values.x }}\nkind: [\n",
            ),
            ("charts/app/sub/x.yaml", "- a\n"),
            ("charts/other.yaml", "- a\n"),
        ]);
        assert_eq!(
            lines(&validation),
            ["k8s/charts/other.yaml:1:1: document 1 is a sequence, not a Kubernetes object"]
        );
        assert_eq!(validation.files_checked, 1);
    }

    #[test]
    fn report_is_capped_at_twenty_lines() {
        let files: Vec<(String, &str)> = (0..23)
            .map(|i| (format!("f{i:02}.yaml"), "- a\n"))
            .collect();
        let refs: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let validation = run(&refs);
        let (lines, summary) = report_lines(&validation);
        assert_eq!(lines.len(), 21);
        assert_eq!(
            lines[0],
            "k8s/f00.yaml:1:1: document 1 is a sequence, not a Kubernetes object"
        );
        assert_eq!(lines[20], "… and 3 more");
        assert_eq!(
            summary,
            "validation failed: 23 problems in 23 files under k8s; fix them or push with --no-validate"
        );
    }

    #[test]
    fn summary_counts_problems_and_files() {
        let validation = run(&[
            ("apps/a.yaml", "- a\n---\n- b\n"),
            ("apps/b.yaml", "x: 1\n"),
            ("base/c.yaml", "- c\n"),
        ]);
        let (lines, summary) = report_lines(&validation);
        assert_eq!(lines.len(), 5);
        assert_eq!(
            summary,
            "validation failed: 5 problems in 3 files under k8s; fix them or push with --no-validate"
        );
        let failure: crate::error::Failure = validation.error().unwrap().into();
        assert_eq!(failure.class, crate::error::FailureClass::Usage);
        assert_eq!(failure.message, summary);
        let single = run(&[("a.yaml", "- a\n")]);
        assert_eq!(
            report_lines(&single).1,
            "validation failed: 1 problem in 1 file under k8s; fix them or push with --no-validate"
        );
    }
}
