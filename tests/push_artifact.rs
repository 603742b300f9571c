//! The artifact `ksail workload push` writes, checked against the real registry with the
//! independent client (artifact.md "Tarball", "Layer", "Config blob", "Manifest", "Annotations",
//! "Result"; testing.md "Artifact tests").

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use support::env::SYSTEM_PATH;
use support::push::{CM, json_of, manifest, push_registry, run_ok};
use support::{
    TestEnv, assert_error_line, assert_no_ansi, has_timestamp_prefix, http, stderr_lines,
    stderr_text, stdout_lines, stdout_text,
};

const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// The same constant as `ARTIFACT_BASIC_DIGEST` in src/artifact/pack.rs's golden test.
const ARTIFACT_BASIC_DIGEST: &str =
    "sha256:20f5933fe5f1d42cde4db0da06effb8d0fa5335a85d7afe18a9fd153c72be7ad";
const CREATED: &str = "org.opencontainers.image.created";
const REVISION: &str = "org.opencontainers.image.revision";
const SOURCE: &str = "org.opencontainers.image.source";
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff];
/// The committer time of every commit the git tests make, and how `created` shows it.
const COMMIT_EPOCH: &str = "1710000000 +0000";
const COMMIT_CREATED: &str = "2024-03-09T16:00:00Z";

// ---------------------------------------------------------------------------------------------
// Helpers

/// Starts a registry ([`require_registry!`], so a skipped registry skips the test) and a
/// project with `k8s/cm.yaml`; `(registry, host:port, env)`.
macro_rules! registry_and_project {
    () => {{
        let (registry, host, env) = registry_and_env!();
        env.write("k8s/cm.yaml", CM);
        (registry, host, env)
    }};
}

/// Starts a registry as [`registry_and_project!`] does, with `work/` a git repository on
/// `$branch` ([`git_repo`]); `(registry, host:port, env, HEAD)`.
macro_rules! registry_and_git {
    ($branch:expr) => {{
        let (registry, host, env) = registry_and_env!();
        let head = git_repo(&env, $branch);
        (registry, host, env, head)
    }};
}

/// `ksail workload push --registry <host> <extra>` with the one variable `var` set.
fn push_with_var(
    env: &TestEnv,
    host: &str,
    extra: &[&str],
    (name, value): (&str, impl AsRef<std::ffi::OsStr>),
) -> Output {
    let args = [&["workload", "push", "--registry", host][..], extra].concat();
    env.ksail(args).env(name, value).output().unwrap()
}

/// A successful `--output json` push at `SOURCE_DATE_EPOCH=1700000000`.
fn push_json_at_epoch(env: &TestEnv, host: &str) -> Output {
    let output = push_with_var(env, host, &["--output", "json"], EPOCH);
    run_ok(&output);
    output
}

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1700000000");

/// The manifest of `k8s:dev` as JSON.
fn dev_manifest(host: &str) -> Value {
    manifest(host, "k8s", "dev").1
}

/// `git remote <verb> origin <url>` in `work/` (`verb` is `add` or `set-url`).
fn origin(env: &TestEnv, verb: &str, url: &str) {
    git(env, &env.work(), &["remote", verb, "origin", url]);
}

/// The one JSON document on stdout (an object and a trailing newline, nothing else).
fn json_document(output: &Output) -> Value {
    let text = stdout_text(output);
    assert!(
        text.ends_with('\n'),
        "stdout does not end with a newline: {text:?}"
    );
    assert_eq!(text.lines().count(), 1, "stdout is not one line: {text:?}");
    let documents: Vec<Value> = serde_json::Deserializer::from_str(&text)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text:?}"));
    assert_eq!(
        documents.len(),
        1,
        "expected exactly one JSON document: {text:?}"
    );
    let document = documents.into_iter().next().unwrap_or_default();
    assert!(
        document.is_object(),
        "the JSON document is not an object: {document}"
    );
    document
}

fn push_json(env: &TestEnv, registry: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--output", "json"];
    args.extend_from_slice(extra);
    let output = push_registry(env, registry, &args);
    run_ok(&output);
    json_of(&output)
}

fn str_of<'a>(json: &'a Value, member: &str) -> &'a str {
    json[member]
        .as_str()
        .unwrap_or_else(|| panic!("member {member} is not a string: {json}"))
}

/// The manifest digest from the one stdout line `<verb> <url>@sha256:<64 hex>`.
fn result_digest(output: &Output, verb: &str, url: &str) -> String {
    let lines = stdout_lines(output);
    assert_eq!(lines.len(), 1, "stdout is not one line: {lines:?}");
    let prefix = format!("{verb} {url}@");
    let digest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("stdout {:?} does not start with {prefix:?}", lines[0]));
    assert_sha256_digest(digest);
    digest.to_string()
}

fn assert_sha256_digest(digest: &str) {
    let hex = digest
        .strip_prefix("sha256:")
        .unwrap_or_else(|| panic!("{digest:?} is not a sha256 digest"));
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{digest:?} is not sha256:<64 lower-case hex>"
    );
}

fn blob(host: &str, repo: &str, digest: &str) -> Vec<u8> {
    let (status, body) = http::fetch_blob(host, repo, digest);
    assert_eq!(status, 200, "GET blob {digest} from {repo}");
    assert_eq!(
        http::sha256_digest(&body),
        digest,
        "blob content does not match its digest"
    );
    body
}

fn layer_digest_of(manifest: &Value) -> String {
    manifest["layers"][0]["digest"]
        .as_str()
        .expect("layers[0].digest is a string")
        .to_string()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("the layer is gzip");
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sets a path's mtime (files and directories alike).
fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Copies a directory tree, recreating symlinks as symlinks (with the same stored target).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the copy's root");
    for entry in fs::read_dir(from).expect("read the fixture directory") {
        let entry = entry.expect("read a fixture entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("fixture entry type");
        if kind.is_symlink() {
            let link = fs::read_link(entry.path()).expect("read a fixture symlink");
            std::os::unix::fs::symlink(link, &target).expect("recreate a fixture symlink");
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a fixture file");
        }
    }
}

/// Runs the real `git` in `dir` with a clean, fixed identity and commit time.
fn git(env: &TestEnv, dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("HOME", env.home())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", COMMIT_EPOCH)
        .env("GIT_COMMITTER_DATE", COMMIT_EPOCH)
        .output()
        .unwrap_or_else(|e| panic!("the git tests need the git executable: {e}"));
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// `work/` as a git repository on branch `branch` with `k8s/cm.yaml` committed; returns HEAD.
fn git_repo(env: &TestEnv, branch: &str) -> String {
    env.write("k8s/cm.yaml", CM);
    env.write("README.md", "not part of the artifact\n");
    let work = env.work();
    git(env, &work, &["init", "-q", "-b", branch]);
    git(env, &work, &["add", "."]);
    git(env, &work, &["commit", "-q", "-m", "initial"]);
    let head = git(env, &work, &["rev-parse", "HEAD"]);
    assert_eq!(head.len(), 40, "HEAD is not a SHA-1: {head}");
    head
}

fn annotations_of(json: &Value) -> (String, String, String) {
    (
        str_of(json, "revision").to_string(),
        str_of(json, "created").to_string(),
        str_of(json, "source").to_string(),
    )
}

// ---------------------------------------------------------------------------------------------
// Manifest

#[test]
fn manifest_is_canonical_oci_json_with_flux_config_one_layer_and_three_annotations() {
    let (_registry, host, env) = registry_and_env!();
    env.write("k8s/apps/cm.yaml", CM);
    env.write("k8s/kustomization.yaml", "resources:\n  - apps/cm.yaml\n");

    let output = push_registry(&env, &host, &[]);
    run_ok(&output);
    let url = format!("oci://{host}/k8s:dev");
    let printed = result_digest(&output, "pushed", &url);

    let (bytes, json, header_digest) = manifest(&host, "k8s", "dev");
    // The digest is the SHA-256 of exactly the stored bytes, and ksail printed that digest.
    assert_eq!(http::sha256_digest(&bytes), printed);
    assert_eq!(header_digest.as_deref(), Some(printed.as_str()));

    // Canonical: serde_json's map is a BTreeMap, so re-serialising sorts keys at every level
    // and drops whitespace; the bytes must already be exactly that.
    let canonical = serde_json::to_vec(&json).expect("serialise");
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&canonical),
        "the manifest bytes are not canonical JSON"
    );
    assert!(
        !bytes.ends_with(b"\n"),
        "the manifest has a trailing newline"
    );

    assert_eq!(
        member_names(&json),
        BTreeSet::from([
            "annotations",
            "config",
            "layers",
            "mediaType",
            "schemaVersion"
        ]),
        "no artifactType, no subject, nothing else"
    );
    assert_eq!(json["schemaVersion"], 2);
    assert_eq!(json["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(
        json["config"],
        serde_json::json!({"digest": CONFIG_DIGEST, "mediaType": CONFIG_MEDIA_TYPE, "size": 2})
    );
    let layers = json["layers"].as_array().expect("layers is an array");
    assert_eq!(layers.len(), 1, "exactly one layer: {json}");
    let layer = layers[0].as_object().unwrap();
    assert_eq!(
        layer.keys().map(String::as_str).collect::<Vec<_>>(),
        ["digest", "mediaType", "size"],
        "no layer annotations"
    );
    assert_eq!(layer["mediaType"], LAYER_MEDIA_TYPE);
    let layer_digest = layer["digest"].as_str().unwrap();
    assert_sha256_digest(layer_digest);
    let layer_bytes = blob(&host, "k8s", layer_digest);
    assert_eq!(layer["size"], layer_bytes.len() as u64);

    let annotations = json["annotations"]
        .as_object()
        .expect("annotations is an object");
    assert_eq!(
        annotations.keys().map(String::as_str).collect::<Vec<_>>(),
        [CREATED, REVISION, SOURCE]
    );
    for (key, value) in annotations {
        assert!(value.is_string(), "{key} is not a string");
    }
}

#[test]
fn config_blob_is_the_two_bytes_of_an_empty_object() {
    let (_registry, host, env) = registry_and_project!();
    run_ok(&push_registry(&env, &host, &[]));
    let json = dev_manifest(&host);
    assert_eq!(json["config"]["digest"], CONFIG_DIGEST);
    assert_eq!(blob(&host, "k8s", CONFIG_DIGEST), b"{}");
}

// ---------------------------------------------------------------------------------------------
// Layer and tarball

#[test]
fn layer_is_gzip_with_fixed_header_around_a_normalised_byte_ordered_tar() {
    let (_registry, host, env) = registry_and_env!();
    let long_dir = "d".repeat(60);
    let long_file = format!("{}.yaml", "f".repeat(60));
    // Written in an order unrelated to the archive order.
    env.write("k8s/a/x.yaml", CM);
    env.write("k8s/Z.yaml", CM);
    env.write(&format!("k8s/{long_dir}/{long_file}"), CM);
    env.write("k8s/a/deep/z.yaml", CM);
    env.write("k8s/a.yaml", CM);
    env.write("k8s/data.bin", [0u8, 159, 146, 150, 255]);
    env.write("k8s/a-b/y.yaml", CM);
    env.mkdir("k8s/empty-dir");
    chmod(&env.work().join("k8s/data.bin"), 0o755);
    chmod(&env.work().join("k8s/a.yaml"), 0o600);

    run_ok(&push_registry(&env, &host, &[]));
    let json = dev_manifest(&host);
    let layer = blob(&host, "k8s", &layer_digest_of(&json));

    assert_eq!(
        layer[..10],
        GZIP_HEADER,
        "gzip header: no name, MTIME 0, XFL 0, OS 255"
    );
    let tar = gunzip(&layer);
    let isize = u32::from_le_bytes(layer[layer.len() - 4..].try_into().unwrap());
    assert_eq!(
        isize as usize,
        tar.len(),
        "a single gzip member holds the whole tar"
    );

    // Byte-wise order of full names: '-' (0x2d) < '.' (0x2e) < '/' (0x2f), 'Z' < 'a'.
    let expected = vec![
        "Z.yaml".to_string(),
        "a-b/".to_string(),
        "a-b/y.yaml".to_string(),
        "a.yaml".to_string(),
        "a/".to_string(),
        "a/deep/".to_string(),
        "a/deep/z.yaml".to_string(),
        "a/x.yaml".to_string(),
        "data.bin".to_string(),
        format!("{long_dir}/"),
        format!("{long_dir}/{long_file}"),
        "empty-dir/".to_string(),
    ];
    let entries = http::read_tar_gz(&layer);
    let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(
        names, expected,
        "no root entry, byte-wise order, dirs end with /"
    );
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(names, sorted);

    for entry in &entries {
        let is_dir = entry.name.ends_with('/');
        if is_dir {
            assert_eq!(
                entry.entry_type,
                tar::EntryType::Directory,
                "{}",
                entry.name
            );
            assert_eq!(entry.mode, 0o755, "{}", entry.name);
            assert_eq!(entry.size, 0, "{}", entry.name);
        } else {
            assert_eq!(entry.entry_type, tar::EntryType::Regular, "{}", entry.name);
            assert_eq!(entry.mode, 0o644, "{} keeps no permission bits", entry.name);
            let on_disk = fs::read(env.work().join("k8s").join(&entry.name)).unwrap();
            assert_eq!(entry.data, on_disk, "{}", entry.name);
            assert_eq!(entry.size, on_disk.len() as u64, "{}", entry.name);
        }
        assert_eq!((entry.uid, entry.gid), (0, 0), "{}", entry.name);
        assert_eq!(
            (entry.uname.as_str(), entry.gname.as_str()),
            ("", ""),
            "{}",
            entry.name
        );
        assert_eq!(entry.mtime, 0, "{}", entry.name);
        assert_eq!(entry.link_name, None, "{}", entry.name);
    }

    // Raw headers: GNU magic, only file/dir/long-name records (no PAX), and the stream ends with
    // exactly two zero blocks.
    let mut types = Vec::new();
    let mut offset = 0;
    while offset + 512 <= tar.len() && tar[offset..offset + 512].iter().any(|&b| b != 0) {
        let header = &tar[offset..offset + 512];
        assert_eq!(
            &header[257..265],
            b"ustar  \0",
            "GNU header magic at {offset}"
        );
        types.push(header[156]);
        let size_field = String::from_utf8_lossy(&header[124..136]);
        let size = u64::from_str_radix(size_field.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .expect("octal size");
        offset += 512 + (size as usize).div_ceil(512) * 512;
    }
    assert!(
        types.iter().all(|t| matches!(t, b'0' | b'5' | b'L')),
        "unexpected header types {:?}",
        types.iter().map(|&t| t as char).collect::<String>()
    );
    assert_eq!(
        types.iter().filter(|&&t| t == b'L').count(),
        1,
        "one GNU long name"
    );
    assert_eq!(
        tar.len(),
        offset + 1024,
        "two zero blocks and no further padding"
    );
    assert!(tar[offset..].iter().all(|&b| b == 0));
}

#[test]
fn golden_fixture_pushes_the_recorded_layer_digest() {
    let (_registry, host, env) = registry_and_env!();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/artifact-basic");
    copy_tree(&fixture, &env.work().join("k8s"));
    assert!(
        fs::symlink_metadata(env.work().join("k8s/service-link.yaml"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    let json = push_json(&env, &host, &[]);
    assert_eq!(str_of(&json, "layerDigest"), ARTIFACT_BASIC_DIGEST);
    let manifest_json = dev_manifest(&host);
    assert_eq!(layer_digest_of(&manifest_json), ARTIFACT_BASIC_DIGEST);
    let layer = blob(&host, "k8s", ARTIFACT_BASIC_DIGEST);
    let names: Vec<String> = http::read_tar_gz(&layer)
        .into_iter()
        .map(|e| e.name)
        .collect();
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
    assert_eq!(json["files"], 7);
}

#[test]
fn same_tree_written_differently_gives_the_same_layer_and_identical_blobs() {
    let registry = require_registry!();
    let host = registry.host_port();
    let files: [(&str, &[u8]); 6] = [
        ("k8s/kustomization.yaml", b"resources:\n  - apps/cm.yaml\n"),
        ("k8s/apps/cm.yaml", CM.as_bytes()),
        ("k8s/apps/nested/deep.yaml", CM.as_bytes()),
        ("k8s/config/app.env", b"A=1\nB=2\n"),
        ("k8s/scripts/run.sh", b"#!/bin/sh\necho hi\n"),
        ("k8s/z.yaml", CM.as_bytes()),
    ];

    let first = TestEnv::new();
    for (path, content) in files {
        first.write(path, content);
    }
    for (path, _) in files {
        set_mtime(&first.work().join(path), 1_000_000_000);
    }
    for dir in [
        "k8s/apps/nested",
        "k8s/apps",
        "k8s/config",
        "k8s/scripts",
        "k8s",
    ] {
        set_mtime(&first.work().join(dir), 1_000_000_000);
    }

    let second = TestEnv::new();
    for (path, content) in files.iter().rev() {
        second.write(path, content);
    }
    chmod(&second.work().join("k8s/apps/cm.yaml"), 0o600);
    chmod(&second.work().join("k8s/scripts/run.sh"), 0o755);
    chmod(&second.work().join("k8s/z.yaml"), 0o666);
    chmod(&second.work().join("k8s/apps/nested"), 0o700);
    chmod(&second.work().join("k8s/config"), 0o775);
    for (i, (path, _)) in files.iter().enumerate() {
        set_mtime(&second.work().join(path), 1_700_000_000 + i as u64 * 977);
    }
    set_mtime(&second.work().join("k8s/apps"), 1_800_000_000);

    let a = push_json(&first, &format!("{host}/repro-a"), &[]);
    let b = push_json(&second, &format!("{host}/repro-b"), &[]);
    let layer = str_of(&a, "layerDigest");
    assert_eq!(
        layer,
        str_of(&b, "layerDigest"),
        "mtimes, modes and order changed the layer"
    );
    assert_eq!(a["layerSize"], b["layerSize"]);

    let (_, manifest_a, _) = manifest(&host, "repro-a", "dev");
    let (_, manifest_b, _) = manifest(&host, "repro-b", "dev");
    assert_eq!(layer_digest_of(&manifest_a), layer);
    assert_eq!(layer_digest_of(&manifest_b), layer);
    assert_eq!(blob(&host, "repro-a", layer), blob(&host, "repro-b", layer));
}

#[test]
fn no_manifest_or_blob_contains_the_temporary_directory_path() {
    let (_registry, host, env, _) = registry_and_git!("main");
    env.write("k8s/kustomization.yaml", "resources:\n  - cm.yaml\n");
    env.symlink("cm.yaml", "k8s/link.yaml");

    let json = push_json(&env, &host, &[]);
    let (manifest_bytes, manifest_json, _) = manifest(&host, "k8s", "dev");
    let config = blob(&host, "k8s", CONFIG_DIGEST);
    let layer = blob(&host, "k8s", &layer_digest_of(&manifest_json));
    let tar = gunzip(&layer);

    let mut needles = vec![env.root().to_string_lossy().into_owned()];
    if let Ok(canonical) = env.root().canonicalize() {
        needles.push(canonical.to_string_lossy().into_owned());
    }
    // The random part of the temporary directory's name, in case a path is stored shortened.
    if let Some(name) = env.root().file_name() {
        needles.push(name.to_string_lossy().into_owned());
    }
    for needle in &needles {
        for (what, bytes) in [
            ("manifest", &manifest_bytes),
            ("config blob", &config),
            ("layer blob", &layer),
            ("uncompressed tar", &tar),
        ] {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "the {what} contains {needle}"
            );
        }
        assert!(
            !json.to_string().contains(needle.as_str()),
            "the JSON contains {needle}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Annotations

#[test]
fn source_date_epoch_sets_created_and_outside_git_revision_is_the_layer_digest() {
    let (_registry, host, env) = registry_and_project!();
    let output = push_json_at_epoch(&env, &host);
    let json = json_of(&output);
    let layer = str_of(&json, "layerDigest").to_string();
    let manifest_json = dev_manifest(&host);
    let annotations = &manifest_json["annotations"];
    assert_eq!(annotations[CREATED], "2023-11-14T22:13:20Z");
    assert_eq!(
        annotations[REVISION],
        layer.as_str(),
        "sha256:<layer hex> outside git"
    );
    assert_eq!(annotations[SOURCE], format!("oci://{host}/k8s"));
    assert_eq!(
        annotations_of(&json),
        (
            layer,
            "2023-11-14T22:13:20Z".into(),
            format!("oci://{host}/k8s")
        )
    );
}

#[test]
fn created_without_git_or_source_date_epoch_is_the_current_time() {
    let (_registry, host, env) = registry_and_project!();
    let before = time_string(SystemTime::now() - Duration::from_secs(1));
    let json = push_json(&env, &host, &[]);
    let after = time_string(SystemTime::now() + Duration::from_secs(1));
    let created = str_of(&json, "created");
    assert!(
        before.as_str() <= created && created <= after.as_str(),
        "created {created} is not between {before} and {after}"
    );
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a time, by hand (civil-from-days), so the test does not share
/// ksail's formatting code.
fn time_string(at: SystemTime) -> String {
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[test]
fn time_string_helper_matches_known_dates() {
    let at = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    assert_eq!(time_string(at(1_700_000_000)), "2023-11-14T22:13:20Z");
    assert_eq!(time_string(at(1_710_000_000)), COMMIT_CREATED);
    assert_eq!(time_string(at(0)), "1970-01-01T00:00:00Z");
}

#[test]
fn on_a_branch_revision_is_branch_at_sha1_and_created_is_the_committer_time() {
    let (_registry, host, env, head) = registry_and_git!("feature/x");

    let json = push_json(&env, &host, &[]);
    let manifest_json = dev_manifest(&host);
    let annotations = &manifest_json["annotations"];
    assert_eq!(annotations[REVISION], format!("feature/x@sha1:{head}"));
    assert_eq!(annotations[CREATED], COMMIT_CREATED);
    assert_eq!(
        annotations[SOURCE],
        format!("oci://{host}/k8s"),
        "no origin remote"
    );
    assert_eq!(
        annotations_of(&json),
        (
            format!("feature/x@sha1:{head}"),
            COMMIT_CREATED.into(),
            format!("oci://{host}/k8s")
        )
    );

    // The same content again is unchanged: it reports the artifact the registry holds, created
    // at the committer time, whatever SOURCE_DATE_EPOCH says now.
    let unchanged = json_of(&push_json_at_epoch(&env, &host));
    assert_eq!(unchanged["status"], "unchanged");
    assert_eq!(unchanged["created"], COMMIT_CREATED);

    // SOURCE_DATE_EPOCH comes before the committer time for what is pushed.
    env.write(
        "k8s/more.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more\n",
    );
    let pushed = json_of(&push_json_at_epoch(&env, &host));
    assert_eq!(pushed["status"], "pushed");
    assert_eq!(pushed["created"], "2023-11-14T22:13:20Z");
    assert_eq!(
        dev_manifest(&host)["annotations"][CREATED],
        "2023-11-14T22:13:20Z"
    );
}

/// A dirty tree never claims the commit it does not match (issue 11, point 5): with an
/// uncommitted file in the source directory the revision is the layer digest, as outside git;
/// once committed, the new commit's.
#[test]
fn uncommitted_changes_make_the_revision_the_layer_digest() {
    let (_registry, host, env, head) = registry_and_git!("main");
    let first = push_json(&env, &host, &[]);
    assert_eq!(first["revision"], format!("main@sha1:{head}"));

    env.write("k8s/extra.yaml", CM);
    let second = push_json(&env, &host, &[]);
    assert_eq!(second["status"], "pushed");
    assert_ne!(second["layerDigest"], first["layerDigest"]);
    assert_eq!(second["revision"], second["layerDigest"]);
    assert_eq!(
        dev_manifest(&host)["annotations"][REVISION],
        second["layerDigest"]
    );

    let work = env.work();
    git(&env, &work, &["add", "."]);
    git(&env, &work, &["commit", "-q", "-m", "extra"]);
    let committed = git(&env, &work, &["rev-parse", "HEAD"]);
    let third = push_json(&env, &host, &[]);
    assert_eq!(third["status"], "pushed", "same layer, new revision");
    assert_eq!(third["layerDigest"], second["layerDigest"]);
    assert_eq!(third["revision"], format!("main@sha1:{committed}"));
}

#[test]
fn detached_head_revision_is_bare_sha1() {
    let (_registry, host, env, head) = registry_and_git!("main");
    git(&env, &env.work(), &["checkout", "-q", "--detach"]);

    let json = push_json(&env, &host, &[]);
    assert_eq!(str_of(&json, "revision"), format!("sha1:{head}"));
    assert_eq!(str_of(&json, "created"), COMMIT_CREATED);
    let manifest_json = dev_manifest(&host);
    assert_eq!(
        manifest_json["annotations"][REVISION],
        format!("sha1:{head}")
    );
}

/// Pushes with `remote` as the origin (at `-vvv`, JSON) and checks that the result and the
/// manifest publish it as `published`, and that `secret` appears in no output and no manifest.
fn assert_origin_published_as(
    env: &TestEnv,
    host: &str,
    remote: &str,
    published: &str,
    secret: &str,
) {
    // `add` or `set-url`, whichever applies: both write this key.
    git(env, &env.work(), &["config", "remote.origin.url", remote]);
    let output = push_registry(env, host, &["--output", "json", "-vvv"]);
    run_ok(&output);
    assert_eq!(str_of(&json_of(&output), "source"), published);
    let (bytes, manifest_json, _) = manifest(host, "k8s", "dev");
    assert_eq!(manifest_json["annotations"][SOURCE], published);
    for (what, text) in [
        ("stdout", stdout_text(&output)),
        ("stderr", stderr_text(&output)),
        ("manifest", String::from_utf8_lossy(&bytes).into_owned()),
    ] {
        assert!(
            !text.contains(secret),
            "the token appears in the {what}:\n{text}"
        );
    }
}

#[test]
fn origin_url_loses_its_credentials_and_the_token_appears_nowhere() {
    let (_registry, host, env, _) = registry_and_git!("main");
    assert_origin_published_as(
        &env,
        &host,
        "https://ci:s3cret-t0k@github.com/acme/p.git",
        "https://github.com/acme/p.git",
        // Not a word that trace logs contain (mio's `token=Token(1)` holds "tok").
        "s3cret-t0k",
    );

    // scp-style remotes are kept as they are.
    origin(&env, "set-url", "git@github.com:acme/p.git");
    let json = push_json(&env, &host, &[]);
    assert_eq!(str_of(&json, "source"), "git@github.com:acme/p.git");
}

/// Tokens travel in the query as often as in the user info (`?access_token=`, `?private_token=`):
/// the published `source` keeps neither, nor a fragment.
#[test]
fn origin_url_loses_its_query_and_the_token_appears_nowhere() {
    for (remote, published) in [
        (
            "https://x-access-token:SECRET@github.com/acme/app.git?access_token=SECRET#SECRET",
            "https://github.com/acme/app.git",
        ),
        // scp-style has no query syntax, but a `?` in it must not publish a token either.
        (
            "git@github.com:acme/app.git?token=SECRET",
            "git@github.com:acme/app.git",
        ),
    ] {
        // A fresh registry each: a push whose content and revision are unchanged keeps the
        // manifest (and its source) that is there.
        let (_registry, host, env, _) = registry_and_git!("main");
        assert_origin_published_as(&env, &host, remote, published, "SECRET");
    }
}

#[test]
fn local_path_and_file_url_remotes_fall_back_to_the_oci_source() {
    let (_registry, host, env, _) = registry_and_git!("main");
    let upstream = env.root().join("upstream.git");
    let upstream = upstream.to_string_lossy().into_owned();
    let fallback = format!("oci://{host}/k8s");

    origin(&env, "add", &upstream);
    let json = push_json(&env, &host, &[]);
    assert_eq!(str_of(&json, "source"), fallback, "absolute path remote");
    let manifest_json = dev_manifest(&host);
    assert_eq!(manifest_json["annotations"][SOURCE], fallback.as_str());

    origin(&env, "set-url", "../upstream.git");
    assert_eq!(
        str_of(&push_json(&env, &host, &[]), "source"),
        fallback,
        "relative path"
    );

    let file_url = format!("file://{upstream}");
    origin(&env, "set-url", &file_url);
    assert_eq!(
        str_of(&push_json(&env, &host, &[]), "source"),
        fallback,
        "file:// URL"
    );
}

#[test]
fn annotations_are_identical_when_git_is_not_on_path() {
    let (_registry, host, env, head) = registry_and_git!("main");
    origin(&env, "add", "https://github.com/acme/p.git");
    let with_git = push_json(&env, &host, &[]);

    // The child's PATH is only the (empty) fakes directory: no git anywhere.
    assert!(!env.bin().join("git").exists());
    let output = push_with_var(&env, &host, &["--output", "json"], ("PATH", env.bin()));
    run_ok(&output);
    let without_git = json_of(&output);
    assert_eq!(annotations_of(&without_git), annotations_of(&with_git));
    assert_eq!(
        annotations_of(&without_git),
        (
            format!("main@sha1:{head}"),
            COMMIT_CREATED.to_string(),
            "https://github.com/acme/p.git".to_string()
        )
    );

    // Packed refs and a packed HEAD commit are read too.
    git(&env, &env.work(), &["gc", "-q"]);
    assert!(env.work().join(".git/packed-refs").exists());
    assert!(!env.work().join(".git/refs/heads/main").exists());
    let output = push_with_var(&env, &host, &["--output", "json"], ("PATH", env.bin()));
    run_ok(&output);
    assert_eq!(annotations_of(&json_of(&output)), annotations_of(&with_git));
}

#[test]
fn invalid_source_date_epoch_exits_2_without_a_request() {
    let registry = require_registry!();
    let proxy = support::Proxy::start(&registry.host_port());
    let env = TestEnv::new();
    env.write("k8s/cm.yaml", CM);
    for value in ["-5", "1.5", "soon"] {
        let before = env.tree_hash();
        let output = env
            .ksail(["workload", "push", "--registry", &proxy.host_port()])
            .env("SOURCE_DATE_EPOCH", value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "SOURCE_DATE_EPOCH={value}");
        assert_error_line(&output, "SOURCE_DATE_EPOCH");
        assert!(proxy.requests().is_empty(), "{:?}", proxy.request_lines());
        assert_eq!(env.tree_hash(), before);
        assert!(stdout_text(&output).is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Output

#[test]
fn text_output_is_one_pushed_line_then_one_unchanged_line() {
    let (_registry, host, env) = registry_and_project!();
    let url = format!("oci://{host}/k8s:dev");

    let first = push_registry(&env, &host, &[]);
    run_ok(&first);
    let digest = result_digest(&first, "pushed", &url);
    assert_eq!(stdout_text(&first), format!("pushed {url}@{digest}\n"));

    let second = push_registry(&env, &host, &[]);
    run_ok(&second);
    assert_eq!(stdout_text(&second), format!("unchanged {url}@{digest}\n"));
    let (_, _, header_digest) = manifest(&host, "k8s", "dev");
    assert_eq!(header_digest.as_deref(), Some(digest.as_str()));
}

const JSON_MEMBERS: [&str; 17] = [
    "command",
    "created",
    "digest",
    "error",
    "exitCode",
    "files",
    "layerDigest",
    "layerSize",
    "repository",
    "revision",
    "signature",
    "source",
    "status",
    "sync",
    "tag",
    "url",
    "validation",
];

/// The member names of a JSON object.
fn member_names(json: &Value) -> BTreeSet<&str> {
    json.as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {json}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn assert_members(json: &Value) {
    assert_eq!(
        member_names(json),
        BTreeSet::from(JSON_MEMBERS),
        "JSON members"
    );
}

#[test]
fn json_output_is_one_document_with_every_member() {
    let (_registry, host, env) = registry_and_project!();
    env.write("k8s/apps/other.yaml", CM);
    env.write("k8s/apps/app.env", "A=1\n");

    let output = push_json_at_epoch(&env, &host);
    let json = json_document(&output);
    assert_members(&json);
    let (bytes, manifest_json, _) = manifest(&host, "k8s", "dev");
    let layer_digest = layer_digest_of(&manifest_json);
    let layer_size = blob(&host, "k8s", &layer_digest).len() as u64;
    assert_eq!(json["command"], "workload push");
    assert_eq!(json["status"], "pushed");
    assert_eq!(json["exitCode"], 0);
    assert_eq!(json["error"], Value::Null);
    assert_eq!(json["url"], format!("oci://{host}/k8s:dev"));
    assert_eq!(json["repository"], format!("{host}/k8s"));
    assert_eq!(json["tag"], "dev");
    assert_eq!(json["digest"], http::sha256_digest(&bytes));
    assert_eq!(json["layerDigest"], layer_digest.as_str());
    assert_eq!(json["layerSize"], layer_size);
    assert_eq!(json["files"], 3);
    assert_eq!(json["revision"], layer_digest.as_str());
    assert_eq!(json["created"], "2023-11-14T22:13:20Z");
    assert_eq!(json["source"], format!("oci://{host}/k8s"));
    assert_eq!(json["sync"], Value::Null, "no cfg_registry, no sync target");
    assert_eq!(json["validation"], serde_json::json!([]));

    let again = json_document(&push_json_at_epoch(&env, &host));
    assert_members(&again);
    assert_eq!(again["status"], "unchanged");
    assert_eq!(again["digest"], json["digest"]);
}

#[test]
fn json_output_names_the_sync_target_when_a_gitops_engine_is_configured() {
    let (_registry, host, env) = registry_and_project!();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n",
    );
    let json = push_json(&env, &host, &[]);
    assert_eq!(
        json["sync"],
        serde_json::json!({"url": "oci://kind-local-registry:5000/k8s", "tag": "dev"})
    );
}

#[test]
fn json_output_on_validation_failure_is_invalid_with_problems() {
    let registry = require_registry!();
    let proxy = support::Proxy::start(&registry.host_port());
    let host = proxy.host_port();
    let env = TestEnv::new();
    env.write("k8s/ok.yaml", CM);
    env.write("k8s/list.yaml", "- a\n");
    env.write("k8s/nokind.yaml", "apiVersion: v1\nmetadata: {}\n");

    let output = push_registry(&env, &host, &["--output", "json"]);
    assert_eq!(output.status.code(), Some(2));
    let json = json_document(&output);
    assert_members(&json);
    let error_line = stderr_lines(&output).last().cloned().unwrap_or_default();
    let expected_error =
        "validation failed: 2 problems in 2 files under k8s; fix them or push with --no-validate";
    assert_eq!(error_line, format!("error: {expected_error}"));
    assert_eq!(json["command"], "workload push");
    assert_eq!(json["status"], "invalid");
    assert_eq!(json["exitCode"], 2);
    assert_eq!(json["error"], expected_error);
    assert_eq!(json["url"], format!("oci://{host}/k8s:dev"));
    assert_eq!(json["tag"], "dev");
    for member in [
        "digest",
        "layerDigest",
        "layerSize",
        "revision",
        "created",
        "source",
    ] {
        assert_eq!(
            json[member],
            Value::Null,
            "{member} is not known after a failed validation"
        );
    }
    assert_eq!(
        json["validation"],
        serde_json::json!([
            {"file": "k8s/list.yaml", "line": 1, "column": 1,
             "message": "document 1 is a sequence, not a Kubernetes object"},
            {"file": "k8s/nokind.yaml", "line": 1, "column": 1,
             "message": "document 1 has no \"kind\""},
        ])
    );
    assert!(proxy.requests().is_empty(), "{:?}", proxy.request_lines());
}

#[test]
fn json_output_on_a_registry_failure_is_failed_with_exit_code_1() {
    // Nothing listens on a port the OS just handed out and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let env = TestEnv::new();
    env.write("k8s/cm.yaml", CM);
    let output = push_registry(&env, &host, &["--output", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let json = json_document(&output);
    assert_members(&json);
    let error_line = stderr_lines(&output).last().cloned().unwrap_or_default();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["exitCode"], 1);
    assert_eq!(
        Some(error_line.as_str()),
        json["error"]
            .as_str()
            .map(|e| format!("error: {e}"))
            .as_deref()
    );
    assert_eq!(json["digest"], Value::Null);
    assert!(
        json["layerDigest"].is_string(),
        "the layer was built before the push failed"
    );
}

// ---------------------------------------------------------------------------------------------
// Stream discipline

#[test]
fn non_tty_progress_lines_carry_the_timestamp_prefix() {
    let (_registry, host, env) = registry_and_project!();
    let output = push_registry(&env, &host, &[]);
    run_ok(&output);
    let lines = stderr_lines(&output);
    assert!(!lines.is_empty(), "a non-quiet push shows progress");
    for line in &lines {
        assert!(has_timestamp_prefix(line), "no timestamp prefix: {line:?}");
        assert!(
            !line.contains('\r'),
            "carriage return in non-TTY output: {line:?}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l[21..].starts_with("push: source k8s: 1 file, ")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l[21..] == *"push: validated 1 YAML file"),
        "{lines:?}"
    );
}

#[test]
fn non_tty_failure_stderr_is_timestamped_lines_problem_lines_then_the_error_line() {
    let (_registry, host, env) = registry_and_project!();
    env.write("k8s/bad.yaml", "- a\n");
    env.write("k8s/sub/bad.yml", "apiVersion: v1\n");
    let output = push_registry(&env, &host, &[]);
    assert_eq!(output.status.code(), Some(2));
    let lines = stderr_lines(&output);
    let (error, before) = lines.split_last().expect("stderr has lines");
    assert!(error.starts_with("error: validation failed: "), "{error:?}");
    let problems: Vec<&String> = before.iter().filter(|l| !has_timestamp_prefix(l)).collect();
    assert_eq!(
        problems,
        [
            "k8s/bad.yaml:1:1: document 1 is a sequence, not a Kubernetes object",
            "k8s/sub/bad.yml:1:1: document 1 has no \"kind\"",
        ],
        "only validation problem lines lack the timestamp"
    );
}

#[test]
fn no_color_env_and_flag_leave_no_ansi_escape() {
    let (_registry, host, env) = registry_and_project!();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n",
    );
    // A warning, progress, a result; then a failure.
    let with_env = push_with_var(&env, &host, &[], ("NO_COLOR", "1"));
    run_ok(&with_env);
    assert!(stderr_text(&with_env).contains("warning: "));
    assert_no_ansi(&with_env);
    let with_flag = push_registry(&env, &host, &["--no-color"]);
    run_ok(&with_flag);
    assert_no_ansi(&with_flag);

    env.write("k8s/bad.yaml", "- a\n");
    let failed_env = push_with_var(&env, &host, &[], ("NO_COLOR", "1"));
    assert_eq!(failed_env.status.code(), Some(2));
    assert_no_ansi(&failed_env);
    let failed_flag = push_registry(&env, &host, &["--no-color"]);
    assert_eq!(failed_flag.status.code(), Some(2));
    assert_no_ansi(&failed_flag);
}

#[test]
fn quiet_suppresses_progress_but_keeps_the_mismatch_warning_and_the_result() {
    let (_registry, host, env) = registry_and_project!();
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n",
    );
    let output = push_registry(&env, &host, &["-q"]);
    run_ok(&output);
    let url = format!("oci://{host}/k8s:dev");
    let lines = stderr_lines(&output);
    assert_eq!(lines.len(), 1, "only the warning: {lines:?}");
    assert!(has_timestamp_prefix(&lines[0]), "{:?}", lines[0]);
    assert_eq!(
        &lines[0][21..],
        format!(
            "warning: pushing {url}, but the cluster follows oci://localhost:5050/k8s:dev; the GitOps engine will not pick up this push"
        )
    );
    result_digest(&output, "pushed", &url);

    // Without -q the same run shows progress as well as the warning.
    let loud = push_registry(&env, &host, &[]);
    run_ok(&loud);
    let loud_lines = stderr_lines(&loud);
    assert!(
        loud_lines.iter().any(|l| l.contains("push: ")),
        "{loud_lines:?}"
    );
    assert!(
        loud_lines.iter().any(|l| l.contains("warning: pushing ")),
        "{loud_lines:?}"
    );
    result_digest(&loud, "unchanged", &url);

    // Quiet keeps validation problem lines and the error line too.
    env.write("k8s/bad.yaml", "- a\n");
    let failed = push_registry(&env, &host, &["-q"]);
    assert_eq!(failed.status.code(), Some(2));
    let failed_lines = stderr_lines(&failed);
    assert!(
        !failed_lines.iter().any(|l| l.contains("push: ")),
        "{failed_lines:?}"
    );
    assert!(
        failed_lines
            .iter()
            .any(|l| l == "k8s/bad.yaml:1:1: document 1 is a sequence, not a Kubernetes object"),
        "{failed_lines:?}"
    );
    assert_error_line(&failed, "validation failed: 1 problem in 1 file under k8s");
}
