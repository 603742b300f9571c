//! The runs and fixtures the `ksail workload push` test files share.

use std::process::Output;

use serde_json::Value;

use super::{
    TestEnv, assert_exit, describe, http, stderr_lines, stderr_text, stdout_lines, stdout_text,
};

/// The repository and tag of the default sync target.
pub const REPO: &str = "k8s";
pub const TAG: &str = "dev";
/// A valid manifest: one ConfigMap named `app`.
pub const APP_MANIFEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";
/// A valid manifest: one ConfigMap named `a`.
pub const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

/// Mapping lines at `indent` whose values alias each other like a "billion laughs": the first
/// is a list of nine scalars, each of the next `levels - 1` a list of nine aliases of the one
/// before. Nine levels expand to about 430 million nodes; five stay well within ksail's alias
/// expansion limit (docs/push.md#yaml-limits).
pub fn alias_bomb(indent: &str, levels: usize) -> String {
    let mut text = format!("{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..levels {
        let items = [format!("*l{}", level - 1).as_str(); 9].join(", ");
        text.push_str(&format!("{indent}l{level}: &l{level} [{items}]\n"));
    }
    text
}

/// `depth` flow sequences nested inside each other, on one line.
pub fn nested_sequences(depth: usize) -> String {
    format!("{}x{}", "[".repeat(depth), "]".repeat(depth))
}

/// An environment whose `k8s/app.yaml` holds `content`.
pub fn env_with_app(content: &str) -> TestEnv {
    let env = TestEnv::new();
    env.write("k8s/app.yaml", content);
    env
}

/// An environment with one valid manifest ([`APP_MANIFEST`]) under `k8s/`.
pub fn env_with_manifests() -> TestEnv {
    env_with_app(APP_MANIFEST)
}

/// `oci://<host_port>/k8s:dev`.
pub fn target(host_port: &str) -> String {
    format!("oci://{host_port}/{REPO}:{TAG}")
}

/// `ksail <args>` with `vars` set, run to its end.
pub fn run(env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut cmd = env.ksail(args);
    cmd.envs(vars.iter().copied());
    cmd.output().expect("run ksail")
}

/// `ksail workload push oci://<host_port>/k8s:dev` with `vars` set.
pub fn push_target(env: &TestEnv, host_port: &str, vars: &[(&str, &str)]) -> Output {
    run(env, &["workload", "push", &target(host_port)], vars)
}

/// `ksail workload push --registry <registry> <extra>`.
pub fn push_registry(env: &TestEnv, registry: &str, extra: &[&str]) -> Output {
    let args = [&["workload", "push", "--registry", registry][..], extra].concat();
    run(env, &args, &[])
}

/// Asserts exit 0; a failure shows both streams.
#[track_caller]
pub fn run_ok(output: &Output) {
    assert_eq!(
        output.status.code(),
        Some(0),
        "ksail failed\nstdout:\n{}\nstderr:\n{}",
        stdout_text(output),
        stderr_text(output)
    );
}

/// The JSON document (the last stdout line) of a `--output json` run. Tests of other behaviour
/// use this lenient form so that a stray stdout line fails only the tests that pin the JSON
/// stream itself.
pub fn json_of(output: &Output) -> Value {
    let text = stdout_text(output);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last stdout line is not JSON ({e}): {text:?}"))
}

/// Checks `pushed oci://<pushed_to>/k8s:dev@<digest>` and that the registry (read directly)
/// holds that manifest under the tag.
#[track_caller]
pub fn assert_pushed_to(output: &Output, pushed_to: &str, registry_host: &str) {
    assert_exit(output, 0);
    let lines = stdout_lines(output);
    assert_eq!(lines.len(), 1, "{}", describe(output));
    let prefix = format!("pushed {}@", target(pushed_to));
    let digest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{:?} does not start with {prefix:?}", lines[0]));
    let (status, body, _) = http::fetch_manifest(registry_host, REPO, TAG);
    assert_eq!(status, 200, "the tag was written");
    assert_eq!(http::sha256_digest(&body), digest);
}

/// Exit 0 and the one stdout line `pushed <url>@sha256:…`; returns the digest.
#[track_caller]
pub fn assert_pushed_line(output: &Output, url: &str) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "push failed\nstderr:\n{}",
        stderr_text(output)
    );
    let stdout = stdout_text(output);
    let prefix = format!("pushed {url}@");
    let digest = stdout
        .strip_prefix(&prefix)
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("stdout is not `{prefix}<digest>`: {stdout:?}"));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    digest.to_string()
}

/// The last stderr line is exactly `expected`.
#[track_caller]
pub fn assert_error_is(output: &Output, expected: &str) {
    let last = stderr_lines(output).pop().expect("an error line");
    assert_eq!(last, expected);
}

/// The raw manifest bytes of `repo:tag`, their parsed form and the `Docker-Content-Digest`
/// header; the tag must exist.
#[track_caller]
pub fn manifest(host: &str, repo: &str, tag: &str) -> (Vec<u8>, Value, Option<String>) {
    let (status, body, digest) = http::fetch_manifest(host, repo, tag);
    assert_eq!(
        status,
        200,
        "GET manifest {repo}:{tag}: {}",
        String::from_utf8_lossy(&body)
    );
    let json: Value = serde_json::from_slice(&body).expect("the manifest is JSON");
    (body, json, digest)
}

/// Reports a skipped case on the real stderr: libtest captures `eprintln!` of passing tests, and
/// a skip must be visible (testing.md: never skip silently).
pub fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "skipped: {test}: {why}");
}

/// `len` bytes that deflate cannot shrink (an xorshift stream, the same on every run): the layer
/// stores them as they are, so a tree holding them packs to about their size.
pub fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut bytes: Vec<u8> = (0..len.div_ceil(8))
        .flat_map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()
        })
        .collect();
    bytes.truncate(len);
    bytes
}
