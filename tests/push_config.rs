//! ksail.yaml through `ksail workload push` (config.md; resolution.md golden rows): the golden
//! rows against a real registry, discovery, key warnings and precedence.
//!
//! The golden rows use `localhost:5050` for the default registry; here the real registry's
//! `127.0.0.1:<port>` stands in for it (and a recording proxy for a second port where a row
//! needs one), so that every row really pushes and the written tag can be read back.

mod support;

use std::process::Output;

use support::push::{APP_MANIFEST, assert_pushed_line, env_with_manifests, run};
use support::{
    Proxy, RegistryKind, TestEnv, assert_case_exit, assert_error_line, assert_no_secret,
    assert_no_warning, http, stderr_lines, stderr_text, stdout_text, timestamped_warnings,
};

/// `ksail.yaml` with `gitOpsEngine: Flux`, the given registry string (if any) and the given
/// `spec.workload` lines.
fn flux_config(registry: Option<&str>, workload: &[&str]) -> String {
    let mut text = String::from(
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n",
    );
    if let Some(registry) = registry {
        text.push_str(&format!(
            "    localRegistry:\n      registry: \"{registry}\"\n"
        ));
    }
    if !workload.is_empty() {
        text.push_str("  workload:\n");
        for line in workload {
            text.push_str(&format!("    {line}\n"));
        }
    }
    text
}

/// The registry holds exactly `tags` in `repo`, and `tag` points at the manifest `digest`.
fn assert_registry_has(host: &str, repo: &str, tags: &[&str], tag: &str, digest: &str) {
    assert_eq!(http::list_tags(host, repo), tags, "tags of {repo}");
    let (status, body, _) = http::fetch_manifest(host, repo, tag);
    assert_eq!(status, 200, "manifest {repo}:{tag}");
    assert_eq!(http::sha256_digest(&body), digest, "manifest {repo}:{tag}");
}

fn mismatch_warning(pushing: &str, follows: &str) -> String {
    format!(
        "warning: pushing {pushing}, but the cluster follows {follows}; the GitOps engine will not pick up this push"
    )
}

/// The JSON document of a second, unchanged run: the `sync` member carries the sync target.
fn json_document(output: &Output) -> serde_json::Value {
    let stdout = stdout_text(output);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("no JSON document ({e}): {stdout}"))
}

/// One golden row of resolution.md run through the binary.
struct Row<'a> {
    id: &'a str,
    host: String,
    repository: &'a str,
    tag: &'a str,
    sync_url: &'a str,
    sync_tag: &'a str,
    /// The `sync.host_ref` named by the mismatch warning, when the row has W.
    warning_follows: Option<String>,
}

/// Runs `args` (a push) and then the same push again with `--output json`, and checks what the
/// row expects: the stdout URL, the written tag, the warning (or its absence), and the sync
/// target in the JSON document. `verify_host` is where the registry can be read directly.
fn check_row(
    env: &TestEnv,
    row: &Row<'_>,
    args: &[&str],
    vars: &[(&str, &str)],
    verify_host: &str,
) {
    let url = format!("oci://{}/{}:{}", row.host, row.repository, row.tag);
    let output = run(env, args, vars);
    let digest = assert_pushed_line(&output, &url);
    assert_registry_has(verify_host, row.repository, &[row.tag], row.tag, &digest);
    let expected_warnings: Vec<String> = row
        .warning_follows
        .iter()
        .map(|follows| mismatch_warning(&url, follows))
        .collect();
    assert_eq!(
        timestamped_warnings(&output),
        expected_warnings,
        "{}",
        row.id
    );

    let mut json_args = args.to_vec();
    json_args.extend(["--output", "json"]);
    let again = run(env, &json_args, vars);
    assert_case_exit(&again, 0, row.id);
    let document = json_document(&again);
    assert_eq!(document["status"], "unchanged", "{}: {document}", row.id);
    assert_eq!(document["url"], url.as_str(), "{}", row.id);
    assert_eq!(document["tag"], row.tag, "{}", row.id);
    assert_eq!(document["digest"], digest.as_str(), "{}", row.id);
    assert_eq!(
        document["repository"],
        format!("{}/{}", row.host, row.repository),
        "{}",
        row.id
    );
    assert_eq!(
        document["sync"]["url"], row.sync_url,
        "{}: {document}",
        row.id
    );
    assert_eq!(
        document["sync"]["tag"], row.sync_tag,
        "{}: {document}",
        row.id
    );
}

/// One golden row as the binary runs it: `{host}` in the strings stands for the registry,
/// `{other}` for a recording proxy in front of it (another port).
struct Golden {
    row: &'static str,
    /// The ksail.yaml registry string and `spec.workload` lines.
    registry: &'static str,
    workload: &'static [&'static str],
    /// Extra files with [`APP_MANIFEST`].
    manifests: &'static [&'static str],
    args: &'static [&'static str],
    /// The host the push names (`{host}` or `{other}`).
    pushes_to: &'static str,
    repository: &'static str,
    tag: &'static str,
    sync_tag: &'static str,
    warning_follows: Option<&'static str>,
}

const GOLDEN: &[Golden] = &[
    Golden {
        row: "R01 default registry pushes k8s:dev",
        registry: "{host}",
        workload: &[],
        manifests: &[],
        args: &["workload", "push"],
        pushes_to: "{host}",
        repository: "k8s",
        tag: "dev",
        sync_tag: "dev",
        warning_follows: None,
    },
    Golden {
        row: "R08 the embedded tag of the registry is pushed",
        registry: "{host}/k8s:v2",
        workload: &[],
        manifests: &[],
        args: &["workload", "push"],
        pushes_to: "{host}",
        repository: "k8s",
        tag: "v2",
        sync_tag: "v2",
        warning_follows: None,
    },
    Golden {
        row: "R11 the ref tag beats the workload tag and warns",
        registry: "{host}",
        workload: &["tag: v1"],
        manifests: &[],
        args: &["workload", "push", "oci://{host}/k8s:pr-7"],
        pushes_to: "{host}",
        repository: "k8s",
        tag: "pr-7",
        sync_tag: "v1",
        warning_follows: Some("oci://{host}/k8s:v1"),
    },
    Golden {
        row: "R13 a ref without a tag takes the workload tag",
        registry: "{host}",
        workload: &["tag: v1"],
        manifests: &[],
        args: &["workload", "push", "oci://{host}/k8s"],
        pushes_to: "{host}",
        repository: "k8s",
        tag: "v1",
        sync_tag: "v1",
        warning_follows: None,
    },
    Golden {
        row: "R21 --path names the repository and warns",
        registry: "{host}",
        workload: &[],
        manifests: &["clusters/dev/app.yaml"],
        args: &["workload", "push", "--path", "./clusters/dev/"],
        pushes_to: "{host}",
        repository: "dev",
        tag: "dev",
        sync_tag: "dev",
        warning_follows: Some("oci://{host}/k8s:dev"),
    },
    // `--registry` on another port (a proxy in front of the same registry) overrides the
    // ksail.yaml registry for the push only.
    Golden {
        row: "R28 --registry overrides the config registry and warns",
        registry: "{host}",
        workload: &[],
        manifests: &[],
        args: &["workload", "push", "--registry", "{other}/x"],
        pushes_to: "{other}",
        repository: "x",
        tag: "dev",
        sync_tag: "dev",
        warning_follows: Some("oci://{host}/k8s:dev"),
    },
];

/// Each golden row against a fresh registry and project ([`check_row`]); the rows that push
/// elsewhere leave `k8s` empty, and `{other}` really carries the push.
#[test]
fn golden_rows_push_where_resolution_md_says() {
    for golden in GOLDEN {
        eprintln!("row: {}", golden.row);
        let registry = require_registry!();
        let host = registry.host_port();
        let proxy = Proxy::start(&host);
        let other = proxy.host_port();
        let expand = |text: &str| text.replace("{host}", &host).replace("{other}", &other);
        let env = env_with_manifests();
        for path in golden.manifests {
            env.write(path, APP_MANIFEST);
        }
        env.write(
            "ksail.yaml",
            flux_config(Some(&expand(golden.registry)), golden.workload),
        );
        let row = Row {
            id: golden.row,
            host: expand(golden.pushes_to),
            repository: golden.repository,
            tag: golden.tag,
            sync_url: "oci://kind-local-registry:5000/k8s",
            sync_tag: golden.sync_tag,
            warning_follows: golden.warning_follows.map(expand),
        };
        let args: Vec<String> = golden.args.iter().map(|arg| expand(arg)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        check_row(&env, &row, &args, &[], &host);
        if golden.repository != "k8s" {
            assert!(
                http::list_tags(&host, "k8s").is_empty(),
                "{}: k8s was pushed",
                golden.row
            );
        }
        if golden.pushes_to == "{other}" {
            assert!(
                proxy.requests().iter().any(|r| r.method == "PUT"),
                "{}: the push did not go through --registry's port",
                golden.row
            );
        }
    }
}

/// R18: credentials from an expanded variable; `s3cr3t` appears in no output at any verbosity.
#[test]
fn r18_expanded_credentials_push_and_never_appear() {
    let (_registry, host, env) = registry_and_manifests!(RegistryKind::Auth {
        users: &[("ci", "s3cr3t")]
    });
    env.write(
        "ksail.yaml",
        flux_config(
            Some(&format!("ci:${{GHCR_TOKEN}}@{host}/acme/manifests")),
            &[],
        ),
    );
    let vars = [("GHCR_TOKEN", "s3cr3t")];
    let url = format!("oci://{host}/acme/manifests:dev");

    // First the plain push, checked against the registry.
    let output = run(&env, &["workload", "push"], &vars);
    assert_no_secret(&output, "s3cr3t");
    let digest = assert_pushed_line(&output, &url);
    assert_eq!(
        http::list_tags_as(&host, "acme/manifests", "ci", "s3cr3t"),
        ["dev"]
    );
    let (status, body, _) = http::fetch_manifest_as(&host, "acme/manifests", "dev", "ci", "s3cr3t");
    assert_eq!(status, 200);
    assert_eq!(http::sha256_digest(&body), digest);
    assert_no_warning(&output);

    // Then every verbosity, each to a fresh tag so that it goes through the whole upload.
    for (flag, tag) in [("-v", "v1"), ("-vv", "v2"), ("-vvv", "v3")] {
        let output = run(
            &env,
            &[flag, "workload", "push"],
            &[vars[0], ("KSAIL_SPEC_WORKLOAD_TAG", tag)],
        );
        assert_case_exit(&output, 0, flag);
        assert_no_secret(&output, "s3cr3t");
    }
    // JSON at the highest verbosity, too.
    let output = run(
        &env,
        &["-vvv", "workload", "push", "--output", "json"],
        &vars,
    );
    assert_no_secret(&output, "s3cr3t");
    let document = json_document(&output);
    assert_eq!(document["status"], "unchanged", "{document}");
    assert_eq!(document["url"], url.as_str());
    // 127.0.0.1 is a local registry, so the in-cluster URL is the registry container's (the
    // golden row's ghcr.io would keep its own host).
    assert_eq!(
        document["sync"]["url"],
        "oci://kind-local-registry:5000/acme/manifests"
    );
    assert_eq!(document["sync"]["tag"], "dev");
}

/// cli.md "JSON output": exactly one JSON document (an object and a trailing newline) on stdout.
#[test]
fn json_output_is_the_only_thing_on_stdout() {
    let (_registry, host, env) = registry_and_manifests!();
    let reference = format!("oci://{host}/k8s");
    for expected in ["pushed", "unchanged"] {
        let output = run(
            &env,
            &["workload", "push", &reference, "--output", "json"],
            &[],
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr_text(&output));
        let stdout = stdout_text(&output);
        assert!(stdout.ends_with("}\n"), "{stdout:?}");
        let document: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("stdout is not exactly one JSON document ({e}): {stdout}"));
        assert_eq!(document["status"], expected);
        assert_eq!(document["command"], "workload push");
        assert_eq!(document["exitCode"], 0);
        assert_eq!(document["error"], serde_json::Value::Null);
    }
}

// ---- Discovery (config.md "Discovery") ----

#[test]
fn nearest_ancestor_ksail_yaml_wins() {
    let (_registry, host, env) = registry_and_env!();
    env.write("ksail.yaml", flux_config(Some(&host), &["tag: outer"]));
    env.write("k8s/app.yaml", APP_MANIFEST);
    env.write(
        "project/ksail.yaml",
        flux_config(Some(&host), &["tag: inner"]),
    );
    // The default source `k8s` is relative to the directory of the ksail.yaml that was found.
    env.write("project/k8s/app.yaml", APP_MANIFEST);
    let deeper = env.mkdir("project/src/deeper");
    let output = env
        .ksail(["workload", "push"])
        .current_dir(&deeper)
        .output()
        .unwrap();
    let digest = assert_pushed_line(&output, &format!("oci://{host}/k8s:inner"));
    assert_registry_has(&host, "k8s", &["inner"], "inner", &digest);
}

#[test]
fn config_flag_and_ksail_config_name_the_file_exactly() {
    let (_registry, host, env) = registry_and_manifests!();
    env.write("ksail.yaml", flux_config(Some(&host), &["tag: from-cwd"]));
    env.write(
        "configs/flag.yaml",
        flux_config(Some(&host), &["tag: from-flag"]),
    );
    env.write(
        "configs/env.yaml",
        flux_config(Some(&host), &["tag: from-env"]),
    );
    env.write("configs/k8s/app.yaml", APP_MANIFEST);

    let output = run(
        &env,
        &["workload", "push", "--config", "configs/flag.yaml"],
        &[],
    );
    assert_pushed_line(&output, &format!("oci://{host}/k8s:from-flag"));

    let output = run(
        &env,
        &["workload", "push"],
        &[("KSAIL_CONFIG", "configs/env.yaml")],
    );
    assert_pushed_line(&output, &format!("oci://{host}/k8s:from-env"));

    // The flag beats the variable.
    let output = run(
        &env,
        &["workload", "push", "--config", "configs/flag.yaml"],
        &[("KSAIL_CONFIG", "configs/env.yaml")],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr_text(&output));
    assert!(
        stdout_text(&output).starts_with(&format!("unchanged oci://{host}/k8s:from-flag@")),
        "{}",
        stdout_text(&output)
    );

    assert_eq!(
        http::list_tags(&host, "k8s"),
        ["from-env", "from-flag"],
        "the ksail.yaml of the current directory was read"
    );
}

/// config.md "Discovery": no per-user or system-wide file is consulted; differs from ksail (Go),
/// where `~/.ksail/ksail.yaml` could shadow the project file.
#[test]
fn per_user_config_files_are_never_read() {
    let (_registry, host, env) = registry_and_manifests!();
    let broken = "apiVersion: [broken\n";
    for dir in [env.home().join(".ksail"), env.xdg_config().join("ksail")] {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ksail.yaml"), broken).unwrap();
    }
    let reference = format!("oci://{host}/k8s");
    let output = run(&env, &["workload", "push", &reference], &[]);
    assert_pushed_line(&output, &format!("oci://{host}/k8s:dev"));
    assert_no_warning(&output);
}

#[test]
fn no_ksail_yaml_means_defaults() {
    let (_registry, host, env) = registry_and_manifests!();
    let reference = format!("oci://{host}/apps");
    let output = run(&env, &["-v", "workload", "push", &reference], &[]);
    let digest = assert_pushed_line(&output, &format!("oci://{host}/apps:dev"));
    assert_registry_has(&host, "apps", &["dev"], "dev", &digest);
    assert!(
        stderr_text(&output).contains("config: no ksail.yaml found; using defaults"),
        "{}",
        stderr_text(&output)
    );
    // Defaults: engine None, so no sync target and no mismatch warning.
    assert_no_warning(&output);
    let again = run(
        &env,
        &["workload", "push", &reference, "--output", "json"],
        &[],
    );
    assert_eq!(json_document(&again)["sync"], serde_json::Value::Null);
}

// ---- Key warnings (config.md "Unknown keys", "Keys that load but are not used") ----

/// Key warnings: each ksail.yaml (`{host}` for the registry) pushes `k8s:dev` and warns with
/// exactly these lines (sorted; the order of one warning per key is not specified).
const KEY_WARNINGS: &[(&str, &str, &[&str])] = &[
    (
        "unknown keys warn with their position and the push still works",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n    fooBar: 1\n    localRegistry:\n      registry: \"{host}\"\n  workload:\n    barBaz: x\n",
        &[
            "warning: ksail.yaml:10:5: unknown key spec.workload.barBaz (ignored)",
            "warning: ksail.yaml:6:5: unknown key spec.cluster.fooBar (ignored)",
        ],
    ),
    (
        "ignored ksail (Go) keys give one sorted warning and the push still works",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  editor: vim\n  cluster:\n    csi: Default\n    gitOpsEngine: Flux\n    cni: Cilium\n    localRegistry:\n      registry: \"{host}\"\n  workload:\n    watch: true\n",
        &[
            "warning: ksail.yaml: ignoring keys that ksail does not support: spec.cluster.cni, spec.cluster.csi, spec.editor, spec.workload.watch",
        ],
    ),
];

#[test]
fn key_warnings_leave_the_push_working() {
    for (case, config, expected) in KEY_WARNINGS {
        let (_registry, host, env) = registry_and_manifests!();
        env.write("ksail.yaml", config.replace("{host}", &host));
        let output = run(&env, &["workload", "push"], &[]);
        assert_case_exit(&output, 0, case);
        let digest = assert_pushed_line(&output, &format!("oci://{host}/k8s:dev"));
        assert_registry_has(&host, "k8s", &["dev"], "dev", &digest);
        let mut lines = timestamped_warnings(&output);
        lines.sort();
        assert_eq!(lines, *expected, "{case}");
    }
}

// ---- Precedence (config.md "Golden precedence cases") ----

#[test]
fn p2_env_tag_beats_file_tag() {
    let (_registry, host, env) = registry_and_manifests!();
    env.write("ksail.yaml", flux_config(Some(&host), &["tag: v1"]));
    let output = run(
        &env,
        &["-v", "workload", "push"],
        &[("KSAIL_SPEC_WORKLOAD_TAG", "v2")],
    );
    let digest = assert_pushed_line(&output, &format!("oci://{host}/k8s:v2"));
    assert_registry_has(&host, "k8s", &["v2"], "v2", &digest);
    assert!(
        stderr_text(&output)
            .contains("config: spec.workload.tag = \"v2\" (from env KSAIL_SPEC_WORKLOAD_TAG)"),
        "{}",
        stderr_text(&output)
    );
    // Push and sync agree (both follow the env tag), so there is no mismatch warning.
    assert_no_warning(&output);
}

#[test]
fn p10_no_validate_flag_beats_env_true() {
    let (_registry, host, env) = registry_and_env!();
    let invalid = "apiVersion: v1\nmetadata:\n  name: no-kind\n";
    env.write("k8s/broken.yaml", invalid);
    let reference = format!("oci://{host}/k8s");
    let vars = [("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", "true")];

    // Control: with the variable alone, validation runs and stops the push.
    let refused = run(&env, &["workload", "push", &reference], &vars);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr_text(&refused));
    assert_error_line(&refused, "validation failed");
    assert!(http::list_tags(&host, "k8s").is_empty());

    let output = run(
        &env,
        &["workload", "push", &reference, "--no-validate"],
        &vars,
    );
    let digest = assert_pushed_line(&output, &format!("oci://{host}/k8s:dev"));
    assert_registry_has(&host, "k8s", &["dev"], "dev", &digest);
    let (_, manifest, _) = http::fetch_manifest(&host, "k8s", "dev");
    let layers = http::manifest_layers(&manifest);
    let (status, layer) = http::fetch_blob(&host, "k8s", &layers[0].0);
    assert_eq!(status, 200);
    let entries = http::read_tar_gz(&layer);
    let broken = entries
        .iter()
        .find(|e| e.name == "broken.yaml")
        .expect("the invalid manifest is in the artifact");
    assert_eq!(broken.data, invalid.as_bytes());
}

#[test]
fn p11_b22_unparsable_validate_on_push_variable_exits_2_naming_it() {
    let (_registry, proxy) = proxied_registry!();
    let env = env_with_manifests();
    let before = env.tree_hash();
    let reference = format!("oci://{}/k8s", proxy.host_port());
    let output = run(
        &env,
        &["workload", "push", &reference],
        &[("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", "maybe")],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr_text(&output));
    assert_error_line(&output, "KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH");
    assert_eq!(
        stderr_lines(&output).last().map(String::as_str),
        Some(
            "error: environment variable KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH: invalid boolean \"maybe\"; use true or false"
        )
    );
    assert!(output.stdout.is_empty());
    assert!(proxy.requests().is_empty(), "{:?}", proxy.request_lines());
    assert_eq!(env.tree_hash(), before);
}

// ---- Nothing is dropped silently (issue 12, point 6) ----

/// config.md#precedence: an empty variable counts as unset. That stays, but the ignored value is
/// named, so that `KSAIL_REGISTRY=` in a CI file does not quietly push to ksail.yaml's registry.
#[test]
fn empty_variables_count_as_unset_and_say_so() {
    let (_registry, host, env) = registry_and_manifests!();
    env.write("ksail.yaml", flux_config(Some(&host), &["tag: v1"]));
    let output = run(
        &env,
        &["workload", "push"],
        &[("KSAIL_REGISTRY", ""), ("KSAIL_SPEC_WORKLOAD_TAG", "")],
    );
    let digest = assert_pushed_line(&output, &format!("oci://{host}/k8s:v1"));
    assert_registry_has(&host, "k8s", &["v1"], "v1", &digest);
    assert_eq!(
        timestamped_warnings(&output),
        [
            "warning: KSAIL_SPEC_WORKLOAD_TAG is set but empty, so it is ignored (an empty variable counts as unset); unset it or give it a value",
            "warning: KSAIL_REGISTRY is set but empty, so it is ignored (an empty variable counts as unset); unset it or give it a value",
        ]
    );

    // A flag overrides its variable anyway: an empty one below it is not worth a word.
    let output = run(
        &env,
        &["workload", "push", "--registry", &host, "--no-validate"],
        &[
            ("KSAIL_REGISTRY", ""),
            ("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", ""),
        ],
    );
    assert_case_exit(&output, 0, "--registry over an empty KSAIL_REGISTRY");
    assert_no_warning(&output);
}

/// resolution.md: `spec.workload.tag` comes before the registry string's tag. That stays, but a
/// tag named on the command line (or in KSAIL_REGISTRY) that loses gets one warning naming both.
#[test]
fn a_registry_tag_that_loses_to_the_workload_tag_warns_naming_both() {
    let (_registry, host, env) = registry_and_manifests!();
    env.write("ksail.yaml", flux_config(Some(&host), &["tag: v1"]));
    let registry = format!("{host}/k8s:tag1");
    let url = format!("oci://{host}/k8s:v1");
    let warning = |origin: &str| {
        format!(
            "warning: {origin} names tag tag1, but spec.workload.tag is v1 (ksail.yaml:9:10), which takes precedence; pushing {url}; to push tag1, pass oci://{host}/k8s:tag1 as the OCI_REF argument"
        )
    };

    let output = run(&env, &["workload", "push", "--registry", &registry], &[]);
    let digest = assert_pushed_line(&output, &url);
    assert_registry_has(&host, "k8s", &["v1"], "v1", &digest);
    assert_eq!(timestamped_warnings(&output), [warning("--registry")]);

    let output = run(
        &env,
        &["workload", "push"],
        &[("KSAIL_REGISTRY", &registry)],
    );
    assert_case_exit(&output, 0, "KSAIL_REGISTRY");
    assert_eq!(timestamped_warnings(&output), [warning("KSAIL_REGISTRY")]);

    // The same tag, or an OCI_REF that names the tag itself: nothing lost, nothing said.
    let output = run(
        &env,
        &["workload", "push", "--registry", &format!("{host}/k8s:v1")],
        &[],
    );
    assert_case_exit(&output, 0, "same tag");
    assert_no_warning(&output);
}

/// Two source directories whose names sanitise to nothing (`___`, `日本`) used to share the
/// fallback repository `ksail-workloads` and overwrite each other's artifact. Each now gets the
/// fallback name plus a short hash of its own name: distinct, and the same on every run.
#[test]
fn source_directories_without_usable_characters_get_distinct_stable_repositories() {
    let (_registry, host, env) = registry_and_manifests!();
    let mut repositories = Vec::new();
    for directory in ["___", "日本"] {
        env.write(&format!("{directory}/app.yaml"), APP_MANIFEST);
        let push = || {
            run(
                &env,
                &[
                    "workload",
                    "push",
                    "--registry",
                    &host,
                    "--path",
                    directory,
                    "--output",
                    "json",
                ],
                &[],
            )
        };
        let first = push();
        assert_case_exit(&first, 0, directory);
        let document = json_document(&first);
        let repository = document["repository"]
            .as_str()
            .and_then(|repository| repository.strip_prefix(&format!("{host}/")))
            .unwrap_or_else(|| panic!("{directory}: {document}"))
            .to_string();
        let hash = repository
            .strip_prefix("ksail-workloads-")
            .unwrap_or_else(|| panic!("{directory}: {repository}"));
        assert!(
            hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "{directory}: {repository}"
        );
        let again = push();
        assert_case_exit(&again, 0, directory);
        assert_eq!(json_document(&again)["status"], "unchanged", "{directory}");
        assert_eq!(
            json_document(&again)["repository"],
            document["repository"],
            "{directory}"
        );
        repositories.push(repository);
    }
    assert_ne!(repositories[0], repositories[1]);
    for repository in &repositories {
        assert_eq!(http::list_tags(&host, repository), ["dev"], "{repository}");
    }
}
