//! The push protocol as the registry sees it (artifact.md "Push protocol", "Progress"; testing.md
//! "Push protocol" and "Interrupted push"). A recording proxy sits in front of the real registry;
//! ksail pushes to `oci://<proxy>/k8s:dev`, which is loopback and therefore plain HTTP.

mod support;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::push::{REPO, TAG, env_with_app, manifest, noise, push_target, skip, target};
use support::{
    Action, FaultScript, Proxy, Recorded, TestEnv, assert_error_line, assert_exit, describe, http,
    progress_lines, stderr_text, stdout_lines,
};

const APP_V1: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"1\"\n";
const APP_V2: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"2\"\n";

/// A push through `proxy` with a single attempt.
fn push_once(env: &TestEnv, proxy: &Proxy) -> Output {
    push_target(
        env,
        &proxy.host_port(),
        &[("KSAIL_TEST_RETRY_ATTEMPTS", "1")],
    )
}

/// The digest in `pushed|unchanged oci://…@sha256:…`, after checking the verb and the URL.
fn result_digest(output: &Output, verb: &str, host_port: &str) -> String {
    let lines = stdout_lines(output);
    assert_eq!(
        lines.len(),
        1,
        "one result line expected\n{}",
        describe(output)
    );
    let prefix = format!("{verb} {}@", target(host_port));
    let digest = lines[0]
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("stdout {:?} does not start with {prefix:?}", lines[0]));
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "full digest expected: {digest:?}"
    );
    digest.to_string()
}

/// Percent-decodes the few characters a digest query value can carry encoded.
fn decode_query_value(value: &str) -> String {
    value.replace("%3A", ":").replace("%3a", ":")
}

/// `METHOD path STATUS`, with the opaque upload session replaced by `<session>` and, for the
/// upload `PUT`, the `digest` query parameter kept (it says which blob was uploaded).
fn normalise(r: &Recorded) -> String {
    let uploads = format!("/v2/{REPO}/blobs/uploads/");
    let path = r.path_only();
    let shown = if path.starts_with(&uploads) && path != uploads {
        let digest = r
            .path
            .split_once('?')
            .map(|(_, query)| query)
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("digest="))
            .map(decode_query_value);
        match digest {
            Some(digest) => format!("{uploads}<session>?digest={digest}"),
            None => format!("{uploads}<session>"),
        }
    } else {
        path.to_string()
    };
    format!("{} {shown} {}", r.method, r.status)
}

fn log(proxy: &Proxy) -> Vec<String> {
    proxy.requests().iter().map(normalise).collect()
}

/// Whether one of `lines` (of [`log`], or progress lines) starts with one of `prefixes`.
fn sent(lines: &[String], prefixes: &[&str]) -> bool {
    lines
        .iter()
        .any(|line| prefixes.iter().any(|prefix| line.starts_with(prefix)))
}

/// `(config digest, layer digest)` of the manifest the tag points at, read from the registry.
fn stored_digests(registry_host: &str) -> (String, String, String) {
    let (body, json, header_digest) = manifest(registry_host, REPO, TAG);
    let config = json["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    let layers = http::manifest_layers(&body);
    assert_eq!(layers.len(), 1, "exactly one layer");
    let manifest_digest = http::sha256_digest(&body);
    if let Some(header) = header_digest {
        assert_eq!(
            header, manifest_digest,
            "Docker-Content-Digest = sha256(body)"
        );
    }
    (config, layers[0].0.clone(), manifest_digest)
}

fn first_push_sequence(config: &str, layer: &str) -> Vec<String> {
    let m = format!("/v2/{REPO}/manifests/{TAG}");
    let u = format!("/v2/{REPO}/blobs/uploads/");
    vec![
        format!("GET {m} 404"),
        format!("HEAD /v2/{REPO}/blobs/{config} 404"),
        format!("POST {u} 202"),
        format!("PUT {u}<session>?digest={config} 201"),
        format!("HEAD /v2/{REPO}/blobs/{layer} 404"),
        format!("POST {u} 202"),
        format!("PUT {u}<session>?digest={layer} 201"),
        // The tag still holds what it held at the start (nothing), then ours.
        format!("HEAD {m} 404"),
        format!("PUT {m} 201"),
        format!("HEAD {m} 200"),
    ]
}

/// A push through `proxy` that exited 0 and printed `pushed …@<digest>`, the tag in the registry
/// pointing at that digest.
struct Pushed {
    output: Output,
    digest: String,
    config: String,
    layer: String,
}

/// Pushes through `proxy`, checks exit 0, the `pushed` line and that the registry behind it
/// (`registry_host`) stores the printed digest under the tag.
fn push_pushed(env: &TestEnv, proxy: &Proxy, registry_host: &str) -> Pushed {
    let output = push_target(env, &proxy.host_port(), &[]);
    assert_exit(&output, 0);
    let digest = result_digest(&output, "pushed", &proxy.host_port());
    let (config, layer, stored) = stored_digests(registry_host);
    assert_eq!(stored, digest, "stdout names the digest the tag points at");
    Pushed {
        output,
        digest,
        config,
        layer,
    }
}

/// The requests of a push whose blobs are all in the registry already: the manifest GET (with
/// `get_status`), both blob HEADs found, the manifest PUT.
fn no_upload_sequence(get_status: u16, config: &str, layer: &str) -> Vec<String> {
    let m = format!("/v2/{REPO}/manifests/{TAG}");
    vec![
        format!("GET {m} {get_status}"),
        format!("HEAD /v2/{REPO}/blobs/{config} 200"),
        format!("HEAD /v2/{REPO}/blobs/{layer} 200"),
        format!("HEAD {m} {get_status}"),
        format!("PUT {m} 201"),
        format!("HEAD {m} 200"),
    ]
}

#[test]
fn push_first_time_is_get_head_upload_head_upload_put_manifest_last() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);

    let Pushed { config, layer, .. } = push_pushed(&env, &proxy, &registry.host_port());
    assert_ne!(config, layer);
    assert_eq!(
        log(&proxy),
        first_push_sequence(&config, &layer),
        "raw: {:#?}",
        proxy.request_lines()
    );
    let last = proxy
        .requests()
        .last()
        .cloned()
        .expect("requests were made");
    assert_eq!(
        (last.method.as_str(), last.path_only()),
        ("HEAD", format!("/v2/{REPO}/manifests/{TAG}").as_str()),
        "the check that the tag holds this push is the last request"
    );
}

#[test]
fn push_unchanged_content_sends_exactly_one_get_and_uploads_nothing() {
    let (_registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    let first = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&first, 0);
    let first_digest = result_digest(&first, "pushed", &proxy.host_port());

    proxy.clear();
    let again = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&again, 0);
    assert_eq!(
        log(&proxy),
        vec![format!("GET /v2/{REPO}/manifests/{TAG} 200")],
        "a no-op re-push is one GET"
    );
    let digest = result_digest(&again, "unchanged", &proxy.host_port());
    assert_eq!(
        digest, first_digest,
        "unchanged reports the digest of the first push"
    );
    let lines = progress_lines(&again);
    assert!(
        !sent(&lines, &["push: uploading", "push: tag"]),
        "an unchanged push uploads and tags nothing: {lines:#?}"
    );
}

#[test]
fn push_content_change_skips_the_existing_config_blob() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    let v1 = push_pushed(&env, &proxy, &registry.host_port());

    env.write("k8s/app.yaml", APP_V2);
    proxy.clear();
    let Pushed {
        output,
        digest,
        config,
        layer,
    } = push_pushed(&env, &proxy, &registry.host_port());
    assert_ne!(digest, v1.digest, "new content, new manifest");
    assert_ne!(layer, v1.layer, "new content, new layer");
    assert_eq!(config, v1.config, "the config blob is constant");

    let m = format!("/v2/{REPO}/manifests/{TAG}");
    let u = format!("/v2/{REPO}/blobs/uploads/");
    assert_eq!(
        log(&proxy),
        vec![
            format!("GET {m} 200"),
            format!("HEAD /v2/{REPO}/blobs/{config} 200"),
            format!("HEAD /v2/{REPO}/blobs/{layer} 404"),
            format!("POST {u} 202"),
            format!("PUT {u}<session>?digest={layer} 201"),
            format!("HEAD {m} 200"),
            format!("PUT {m} 201"),
            format!("HEAD {m} 200"),
        ]
    );
    let lines = progress_lines(&output);
    assert!(
        lines
            .iter()
            .any(|l| l == "push: config blob exists (skipped)"),
        "{lines:#?}"
    );
}

fn git(env: &TestEnv, args: &[&str]) {
    let status = Command::new("git")
        .args([
            "-c",
            "user.name=ksail test",
            "-c",
            "user.email=test@example.invalid",
        ])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(env.work())
        .env_clear()
        .env("HOME", env.home())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .expect("run git");
    assert!(status.success(), "git {args:?} failed");
}

fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn push_revision_change_with_same_content_uploads_no_blob_but_retags() {
    if !git_available() {
        skip(
            "push_revision_change_with_same_content_uploads_no_blob_but_retags",
            "no git executable",
        );
        return;
    }
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    git(&env, &["init", "-q"]);
    git(&env, &["add", "k8s"]);
    git(&env, &["commit", "-q", "-m", "one"]);
    let Pushed {
        config,
        layer,
        digest: digest_v1,
        ..
    } = push_pushed(&env, &proxy, &registry.host_port());

    git(&env, &["commit", "-q", "--allow-empty", "-m", "two"]);
    proxy.clear();
    let after = push_pushed(&env, &proxy, &registry.host_port());
    assert_ne!(
        after.digest, digest_v1,
        "a new revision annotation, a new manifest"
    );
    assert_eq!(
        (after.config.as_str(), after.layer.as_str()),
        (config.as_str(), layer.as_str())
    );
    assert_eq!(log(&proxy), no_upload_sequence(200, &config, &layer));
}

fn manifest_put(r: &support::RequestInfo) -> bool {
    r.method == "PUT" && r.path.contains("/manifests/")
}

#[test]
fn push_interrupted_before_the_manifest_leaves_a_new_tag_absent_and_resumes_without_reupload() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    proxy.fail_when(manifest_put);

    let failed = push_once(&env, &proxy);
    assert_exit(&failed, 1);
    assert_error_line(&failed, "connection reset");
    assert!(
        stdout_lines(&failed).is_empty(),
        "no result line on failure"
    );
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 404, "the tag was never written");
    let requests = proxy.requests();
    let last = requests.last().expect("requests were made");
    assert_eq!(
        (last.method.as_str(), last.status),
        ("PUT", 0),
        "{:#?}",
        proxy.request_lines()
    );
    assert_eq!(
        requests.iter().filter(|r| r.method == "POST").count(),
        2,
        "both blobs uploaded"
    );

    proxy.stop_failing();
    proxy.clear();
    let Pushed { config, layer, .. } = push_pushed(&env, &proxy, &registry.host_port());
    assert_eq!(
        log(&proxy),
        no_upload_sequence(404, &config, &layer),
        "blobs from the failed push are found by HEAD and not sent again"
    );
}

#[test]
fn push_interrupted_before_the_manifest_keeps_an_existing_tag_on_the_old_digest() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    let Pushed {
        layer: layer_v1,
        digest: digest_v1,
        ..
    } = push_pushed(&env, &proxy, &registry.host_port());

    env.write("k8s/app.yaml", APP_V2);
    proxy.fail_when(manifest_put);
    let failed = push_once(&env, &proxy);
    assert_exit(&failed, 1);
    assert_error_line(&failed, "connection reset");
    let (_, layer_still, digest_still) = stored_digests(&registry.host_port());
    assert_eq!(
        digest_still, digest_v1,
        "the tag still points at the old manifest"
    );
    assert_eq!(layer_still, layer_v1);

    proxy.stop_failing();
    proxy.clear();
    let Pushed { config, layer, .. } = push_pushed(&env, &proxy, &registry.host_port());
    assert_ne!(layer, layer_v1);
    assert_eq!(log(&proxy), no_upload_sequence(200, &config, &layer));
}

#[test]
fn push_retries_start_again_at_the_get_and_find_uploaded_blobs_by_head() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    proxy.fail_when(manifest_put);

    let failed = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&failed, 1);
    assert_error_line(&failed, "failed after 3 attempts: connection reset");
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 404);

    let lines = log(&proxy);
    let m = format!("/v2/{REPO}/manifests/{TAG}");
    let gets: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(&format!("GET {m} ")))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        gets.len(),
        3,
        "each attempt starts with the GET: {lines:#?}"
    );
    assert_eq!(gets[0], 0);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("POST ")).count(),
        2,
        "{lines:#?}"
    );
    // Attempts 2 and 3: GET, HEAD config 200, HEAD layer 200, the tag check (still absent), the
    // (reset) manifest PUT.
    for &start in &gets[1..] {
        let attempt = &lines[start..start + 5];
        assert!(
            attempt[1].starts_with("HEAD ") && attempt[1].ends_with(" 200"),
            "{attempt:#?}"
        );
        assert!(
            attempt[2].starts_with("HEAD ") && attempt[2].ends_with(" 200"),
            "{attempt:#?}"
        );
        assert_eq!(attempt[3], format!("HEAD {m} 404"));
        assert_eq!(attempt[4], format!("PUT {m} 0"));
    }
    assert_eq!(lines.len(), 9 + 5 + 5, "{lines:#?}");
}

#[test]
fn push_progress_lines_of_a_first_push_appear_in_order() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP_V1);
    let Pushed {
        output,
        digest,
        layer,
        ..
    } = push_pushed(&env, &proxy, &registry.host_port());

    let lines = progress_lines(&output);
    let expected_prefixes = [
        "push: source k8s: 1 file, ".to_string(),
        "push: validated 1 YAML file".to_string(),
        format!("push: layer {} (", &layer[..19]),
        "push: uploading config blob".to_string(),
        "push: uploading layer (".to_string(),
        format!("push: tag {TAG} → {}", &digest[..19]),
    ];
    let mut position = 0;
    for prefix in &expected_prefixes {
        let found = lines[position..]
            .iter()
            .position(|l| l.starts_with(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {prefix:?} after line {position}: {lines:#?}"));
        position += found + 1;
    }
    let source = lines
        .iter()
        .find(|l| l.starts_with("push: source "))
        .expect("source line");
    assert!(
        source.ends_with(&format!(" → {}", target(&proxy.host_port()))),
        "{source:?}"
    );
    let tag_line = lines
        .iter()
        .find(|l| l.starts_with("push: tag "))
        .expect("tag line");
    assert_eq!(
        tag_line,
        &format!("push: tag {TAG} → {}", &digest[..19]),
        "12 hex digits"
    );
}

/// A slow push (its first blob check held 2 s by the proxy) and a fast one of other content to
/// the same tag: the fast one lands while the slow one runs.
fn overtaken_push(
    registry: &support::Registry,
    proxy: &Proxy,
    force: bool,
) -> (Output, String, String) {
    proxy.set_script(FaultScript::new().when(
        |request| request.method == "HEAD" && request.path.contains("/blobs/"),
        1..=1,
        Action::Delay(Duration::from_secs(2)),
    ));
    let slow_env = env_with_app(APP_V1);
    let mut args = vec![
        "workload".to_string(),
        "push".into(),
        target(&proxy.host_port()),
    ];
    if force {
        args.push("--force".into());
    }
    let slow = slow_env
        .ksail_process(&args)
        .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the slow push");
    let held = std::time::Instant::now();
    while !proxy.requests().iter().any(|r| r.method == "HEAD") {
        assert!(
            held.elapsed() < Duration::from_secs(30),
            "the slow push never reached its blobs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let fast_env = env_with_app(APP_V2);
    let fast = push_target(&fast_env, &registry.host_port(), &[]);
    assert_exit(&fast, 0);
    let fast_digest = result_digest(&fast, "pushed", &registry.host_port());
    let slow = slow.wait_with_output().expect("the slow push ends");
    let (_, _, stored) = stored_digests(&registry.host_port());
    (slow, fast_digest, stored)
}

/// The push that started first must not silently replace the one that landed meanwhile (both
/// used to report `pushed` with exit 0 while one was lost): it fails naming both digests, and
/// the tag keeps the other push.
#[test]
fn a_push_overtaken_by_another_fails_and_tags_nothing() {
    let (registry, proxy) = proxied_registry!();
    let (slow, fast_digest, stored) = overtaken_push(&registry, &proxy, false);

    assert_exit(&slow, 1);
    assert_error_line(
        &slow,
        &format!(
            "tag dev changed while this push ran: it pointed at nothing when the push began and points at {fast_digest} now; nothing was tagged; push again to publish on top of it, or pass --force to replace it"
        ),
    );
    assert_eq!(stored, fast_digest, "the tag keeps the push that landed");
}

/// `--force` replaces the tag whatever another push did meanwhile.
#[test]
fn force_replaces_a_tag_that_moved() {
    let (registry, proxy) = proxied_registry!();
    let (slow, fast_digest, stored) = overtaken_push(&registry, &proxy, true);

    assert_exit(&slow, 0);
    assert_ne!(stored, fast_digest);
    assert!(
        stdout_lines(&slow)[0].ends_with(&stored),
        "{}",
        describe(&slow)
    );
}

/// A registry that accepts connections and never answers: `--timeout` (or
/// `spec.workload.pushTimeout`) bounds the push as a whole. It exits 3, says what the tag may hold
/// and leaves no layer file behind.
#[test]
fn a_push_timeout_bounds_a_registry_that_never_answers() {
    let (registry, proxy) = proxied_registry!();
    let stall = |what: fn(&support::RequestInfo) -> bool| {
        proxy.set_script(FaultScript::new().when(
            what,
            1..,
            Action::Stall(Duration::from_secs(60)),
        ));
    };
    let scratch_files = |env: &TestEnv| {
        std::fs::read_dir(env.xdg_cache().join("ksail/tmp"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };

    // Stalled before anything is written: nothing was tagged.
    stall(|request| request.method == "GET" && request.path.contains("/manifests/"));
    let env = env_with_app(APP_V1);
    let started = std::time::Instant::now();
    let output = env
        .ksail([
            "workload",
            "push",
            &target(&proxy.host_port()),
            "--timeout",
            "1s",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 3);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "bounded by --timeout"
    );
    assert_error_line(
        &output,
        &format!(
            "push to {} did not finish within 1s (--timeout or spec.workload.pushTimeout); nothing was tagged;",
            target(&proxy.host_port())
        ),
    );
    assert_eq!(scratch_files(&env), 0, "the layer file is removed");

    // The same bound from ksail.yaml; stalled at the manifest write, which may have landed.
    stall(|request| request.method == "PUT" && request.path.contains("/manifests/"));
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  workload:\n    pushTimeout: 1s\n",
    );
    let output = env
        .ksail([
            "workload",
            "push",
            &target(&proxy.host_port()),
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_exit(&output, 3);
    assert_error_line(
        &output,
        &format!(
            "the tag write was sent but not confirmed, so {TAG} may point at the new artifact or the previous one; push again to be sure"
        ),
    );
    let json: serde_json::Value =
        serde_json::from_str(stdout_lines(&output).last().expect("a JSON document")).unwrap();
    assert_eq!(json["status"], "timedOut");
    assert_eq!(json["exitCode"], 3);
    assert_eq!(scratch_files(&env), 0, "the layer file is removed");
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 404, "the stalled write never reached the registry");
}

#[test]
fn a_push_timeout_must_be_a_positive_duration() {
    let env = env_with_app(APP_V1);
    for (value, phrase) in [
        ("-1s", "--timeout"),
        ("0s", "--timeout"),
        ("soon", "--timeout"),
    ] {
        let before = env.tree_hash();
        let output = env
            .ksail([
                "workload",
                "push",
                "oci://127.0.0.1:1/k8s:dev",
                "--timeout",
                value,
            ])
            .output()
            .unwrap();
        assert_exit(&output, 2);
        assert_error_line(&output, phrase);
        assert_eq!(env.tree_hash(), before, "{value}: nothing changed");
    }
}

/// A project whose tree is above the streaming threshold (4 MiB): the app's ConfigMap and
/// 5 MiB of noise, which deflate stores, so the layer is about as large.
fn env_with_large_tree() -> TestEnv {
    let env = env_with_app(APP_V1);
    env.write("k8s/data/noise.bin", noise(5 * 1024 * 1024));
    env
}

/// The raw log lines of `proxy` with `method` whose path starts with `prefix`.
fn raw(proxy: &Proxy, method: &str, prefix: &str) -> Vec<Recorded> {
    proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.starts_with(prefix))
        .collect()
}

#[test]
fn a_large_layer_is_streamed_while_it_is_packed_and_committed_after_its_head() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_large_tree();

    let Pushed { config, layer, .. } = push_pushed(&env, &proxy, &registry.host_port());
    let lines = log(&proxy);
    let m = format!("/v2/{REPO}/manifests/{TAG}");
    let u = format!("/v2/{REPO}/blobs/uploads/");
    // The stream starts while packing, so where its POST and PATCH fall among the other
    // requests depends on timing; without the POSTs and the PATCH the order is fixed.
    let fixed: Vec<&String> = lines
        .iter()
        .filter(|l| !l.starts_with("POST ") && !l.starts_with("PATCH "))
        .collect();
    assert_eq!(
        fixed,
        [
            &format!("GET {m} 404"),
            &format!("HEAD /v2/{REPO}/blobs/{config} 404"),
            &format!("PUT {u}<session>?digest={config} 201"),
            &format!("HEAD /v2/{REPO}/blobs/{layer} 404"),
            &format!("PUT {u}<session>?digest={layer} 201"),
            &format!("HEAD {m} 404"),
            &format!("PUT {m} 201"),
            &format!("HEAD {m} 200"),
        ],
        "raw: {lines:#?}"
    );
    let count = |line: String| lines.iter().filter(|l| **l == line).count();
    assert_eq!(count(format!("POST {u} 202")), 2, "{lines:#?}");
    assert_eq!(count(format!("PATCH {u}<session> 202")), 1, "{lines:#?}");
    let patch_at = lines.iter().position(|l| l.starts_with("PATCH ")).unwrap();
    let commit_at = lines
        .iter()
        .position(|l| *l == format!("PUT {u}<session>?digest={layer} 201"))
        .unwrap();
    assert!(patch_at < commit_at, "{lines:#?}");
    // The commit names the session the PATCH filled (its state token aside), and the layer's
    // bytes went up once.
    let patch = &raw(&proxy, "PATCH", &u)[0];
    let commit = raw(&proxy, "PUT", &u)
        .into_iter()
        .find(|r| r.path.contains(&layer.replace(':', "%3A")))
        .expect("the layer's commit");
    let session = |path: &str| {
        path[u.len()..]
            .split('?')
            .next()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(session(&commit.path), session(&patch.path));
    let (status, blob) = http::fetch_blob(&registry.host_port(), REPO, &layer);
    assert_eq!(status, 200);
    assert_eq!(http::sha256_digest(&blob), layer);
    let entries = http::read_tar_gz(&blob);
    let noise = entries
        .iter()
        .find(|entry| entry.name == "data/noise.bin")
        .expect("the layer holds the noise file");
    assert_eq!(noise.data.len(), 5 * 1024 * 1024);
}

#[test]
fn a_stream_the_registry_cuts_off_falls_back_to_uploading_the_file_in_the_same_attempt() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_large_tree();
    proxy.fail_when(|request| request.method == "PATCH");

    let Pushed { layer, .. } = push_pushed(&env, &proxy, &registry.host_port());
    let lines = log(&proxy);
    let u = format!("/v2/{REPO}/blobs/uploads/");
    assert!(
        lines.contains(&format!("PATCH {u}<session> 0")),
        "{lines:#?}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("GET /v2/{REPO}/manifests/")))
            .count(),
        1,
        "one attempt: {lines:#?}"
    );
    let layer_put = format!("PUT {u}<session>?digest={layer} 201");
    let at = lines
        .iter()
        .position(|l| *l == layer_put)
        .expect("the layer's upload");
    assert_eq!(
        lines[at - 1],
        format!("POST {u} 202"),
        "a new session: {lines:#?}"
    );
    assert_eq!(lines[at - 2], format!("HEAD /v2/{REPO}/blobs/{layer} 404"));
    let (status, blob) = http::fetch_blob(&registry.host_port(), REPO, &layer);
    assert_eq!((status, http::sha256_digest(&blob)), (200, layer));
}

#[test]
fn a_large_tree_that_fails_validation_sends_nothing() {
    let (_registry, proxy) = proxied_registry!();
    let env = env_with_large_tree();
    env.write(
        "k8s/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    );

    let output = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&output, 2);
    assert!(proxy.requests().is_empty(), "{:?}", proxy.request_lines());
}

/// The large tree pushed through `proxy` (exit 0), then its layer cache removed and the proxy's
/// log cleared; returns the project and the pushed digest.
fn large_tree_pushed_then_cache_removed(proxy: &Proxy) -> (TestEnv, String) {
    let env = env_with_large_tree();
    let first = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&first, 0);
    let digest = result_digest(&first, "pushed", &proxy.host_port());
    std::fs::remove_dir_all(env.xdg_cache()).expect("remove the layer cache");
    proxy.clear();
    (env, digest)
}

#[test]
fn an_unchanged_large_tree_without_a_cache_commits_no_stream_and_moves_no_tag() {
    let (_registry, proxy) = proxied_registry!();
    let (env, digest) = large_tree_pushed_then_cache_removed(&proxy);
    let again = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&again, 0);
    assert_eq!(
        result_digest(&again, "unchanged", &proxy.host_port()),
        digest
    );
    let lines = log(&proxy);
    assert!(
        !sent(&lines, &["PUT ", "HEAD "]),
        "nothing committed, nothing tagged: {lines:#?}"
    );
    assert!(
        lines.contains(&format!("GET /v2/{REPO}/manifests/{TAG} 200")),
        "{lines:#?}"
    );
}

#[test]
fn a_streamed_layer_the_registry_already_holds_is_left_uncommitted() {
    let (registry, proxy) = proxied_registry!();
    // The same tree to another tag of the repository, without the layer cache: the layer is
    // packed and streamed again, and the layer's HEAD finds it.
    let (env, _) = large_tree_pushed_then_cache_removed(&proxy);
    let other = format!("{}/{REPO}:other", proxy.host_port());
    let output = env
        .ksail(["workload", "push", &format!("oci://{other}")])
        .output()
        .unwrap();
    assert_exit(&output, 0);
    assert!(
        stderr_text(&output).contains("push: layer blob exists (skipped)"),
        "{}",
        describe(&output)
    );
    let lines = log(&proxy);
    assert!(
        !sent(&lines, &[&format!("PUT /v2/{REPO}/blobs/uploads/")]),
        "no session committed, no blob uploaded: {lines:#?}"
    );
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, "other");
    assert_eq!(status, 200, "the other tag was written");
}

#[test]
fn a_file_rewritten_while_the_push_runs_fails_the_push_and_tags_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let (registry, proxy) = proxied_registry!();
    let env = env_with_large_tree();
    // 16 MiB more, so that packing outlasts validation by far more than a request's round trip.
    env.write("k8s/data/more.bin", noise(16 * 1024 * 1024));
    // The layer's stream opens its session once validation has passed, while the data is
    // still being packed: that request rewrites the app's manifest (same size, so only its
    // stamp tells), and is then forwarded as usual.
    let app = env.work().join("k8s/app.yaml");
    let rewritten = AtomicBool::new(false);
    proxy.fail_when(move |request| {
        if request.method == "POST" && !rewritten.swap(true, Ordering::SeqCst) {
            std::fs::write(&app, APP_V2).expect("rewrite the manifest");
        }
        false
    });

    let output = push_target(&env, &proxy.host_port(), &[]);
    assert_exit(&output, 1);
    assert_error_line(
        &output,
        "k8s/app.yaml changed while it was being packed; run the push again",
    );
    let lines = log(&proxy);
    assert!(
        !sent(&lines, &["PUT "]),
        "nothing committed or tagged: {lines:#?}"
    );
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 404);
}
