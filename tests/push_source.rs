//! The source directory through `ksail workload push` (artifact.md "Source directory", "File
//! selection", "Ignore rules", "Symlinks", "Validation"; bad inputs B09, B10, B11; precedence
//! case P12). Every exit-2 case checks the exact error text, that the registry (behind a
//! recording proxy) got no request, and that no file changed.

mod support;

use std::fs;
use std::process::Output;

use support::push::{CM, alias_bomb, json_of, nested_sequences, push_registry, run_ok};
use support::{
    Proxy, Registry, TestEnv, has_timestamp_prefix, http, stderr_lines, stderr_text, stdout_text,
    timestamped_lines, timestamped_warnings,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// Runs a push through a recording proxy in front of `registry`; it must exit 2 with one error
/// line as the last stderr line, print nothing on stdout, send no request and change no file.
fn rejected(env: &TestEnv, registry: &Registry, extra: &[&str]) -> Output {
    let proxy = Proxy::start(&registry.host_port());
    let before = env.tree_hash();
    let output = push_registry(env, &proxy.host_port(), extra);
    assert_eq!(
        output.status.code(),
        Some(2),
        "expected exit 2\nstderr:\n{}",
        stderr_text(&output)
    );
    let lines = stderr_lines(&output);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("error:")).count(),
        1,
        "one error line\nstderr:\n{}",
        lines.join("\n")
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("error: ")),
        "the error line is last\nstderr:\n{}",
        lines.join("\n")
    );
    assert!(
        stdout_text(&output).is_empty(),
        "stdout: {}",
        stdout_text(&output)
    );
    assert!(
        proxy.requests().is_empty(),
        "the registry got requests: {:?}",
        proxy.request_lines()
    );
    assert_eq!(env.tree_hash(), before, "a rejected push changed files");
    output
}

/// [`rejected`], with exactly `error_line` as the last stderr line.
fn assert_rejected(env: &TestEnv, registry: &Registry, extra: &[&str], error_line: &str) -> Output {
    let output = rejected(env, registry, extra);
    assert_eq!(
        stderr_lines(&output).last().map(String::as_str),
        Some(error_line)
    );
    output
}

fn error_line(output: &Output) -> String {
    stderr_lines(output).last().cloned().unwrap_or_default()
}

/// Validation problem lines: stderr lines without the timestamp, before the error line.
fn problem_lines(output: &Output) -> Vec<String> {
    stderr_lines(output)
        .into_iter()
        .filter(|l| !has_timestamp_prefix(l) && !l.starts_with("error: "))
        .collect()
}

/// Pushes (exit 0) and returns the layer's tar entries as `(name, data)` in archive order.
fn push_and_list(env: &TestEnv, host: &str, extra: &[&str]) -> Vec<(String, Vec<u8>)> {
    let output = push_registry(env, host, extra);
    run_ok(&output);
    let repo = "k8s";
    let (status, body, _) = http::fetch_manifest(host, repo, "dev");
    assert_eq!(status, 200);
    let layers = http::manifest_layers(&body);
    assert_eq!(layers.len(), 1);
    let (status, layer) = http::fetch_blob(host, repo, &layers[0].0);
    assert_eq!(status, 200);
    http::read_tar_gz(&layer)
        .into_iter()
        .map(|e| (e.name, e.data))
        .collect()
}

/// The push passed, and its progress said it validated `files` YAML files.
#[track_caller]
fn assert_validated(output: &Output, files: usize) {
    run_ok(output);
    let expected = format!("push: validated {files} YAML files");
    let texts = timestamped_lines(output);
    assert!(texts.contains(&expected), "{expected:?} in {texts:?}");
}

fn names(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(n, _)| n.as_str()).collect()
}

fn entry<'a>(entries: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    entries
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, d)| d.as_slice())
        .unwrap_or_else(|| panic!("no entry {name} in {:?}", names(entries)))
}

// ---------------------------------------------------------------------------------------------
// Source directory

/// A push refused with exit 2 and an exact error line, before any request ([`rejected`]).
struct Rejection {
    name: &'static str,
    setup: fn(&TestEnv),
    extra: &'static [&'static str],
    /// The exact last stderr line (or its start, see [`Rejection::up_to_the_hint`]); `{work}`
    /// stands for the project directory.
    error: &'static str,
    /// Only the start of the error line is fixed.
    prefix_only: bool,
    /// The validation problem lines, for the cases that report them.
    problems: Option<Vec<String>>,
}

impl Rejection {
    /// A push without extra arguments whose problems are not checked.
    fn new(name: &'static str, error: &'static str, setup: fn(&TestEnv)) -> Rejection {
        Rejection {
            name,
            setup,
            extra: &[],
            error,
            prefix_only: false,
            problems: None,
        }
    }

    /// The spec fixes the error text up to the hint: `error` is how the line starts.
    fn up_to_the_hint(mut self) -> Rejection {
        self.prefix_only = true;
        self
    }

    /// Arguments after `--registry <proxy>`.
    fn args(mut self, extra: &'static [&'static str]) -> Rejection {
        self.extra = extra;
        self
    }

    /// The validation problem lines, in order.
    fn problems(mut self, problems: Vec<String>) -> Rejection {
        self.problems = Some(problems);
        self
    }
}

const NO_FILES: &str =
    "error: source directory k8s contains no files to push; add manifests or check .sourceignore";
const INVALID_TREE_ERROR: &str = "error: validation failed: 4 problems in 3 files under k8s; fix them or push with --no-validate";
const VALIDATE_ON_PUSH_FALSE: &str =
    "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  workload:\n    validateOnPush: false\n";

const ONE_PROBLEM: &str =
    "error: validation failed: 1 problem in 1 file under k8s; fix them or push with --no-validate";
const ALIAS_FIX: &str = "use fewer or smaller aliases (aliases of aliases multiply: an alias bomb)";

/// A ConfigMap whose `data` mapping holds `keys` keys (`key0` …), one per line from line 6.
fn big_config_map(keys: usize) -> String {
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n");
    for key in 0..keys {
        text.push_str(&format!("  key{key}: \"value {key}\"\n"));
    }
    text
}

fn rejections() -> Vec<Rejection> {
    let many: Vec<String> = (0..20)
        .map(|i| format!("k8s/f{i:02}.yaml:1:1: document 1 is a sequence, not a Kubernetes object"))
        .chain(["… and 3 more".to_string()])
        .collect();
    Vec::from([
        Rejection::new(
            "B09 a missing source directory",
            "error: source directory k8s does not exist; create it, or set spec.workload.sourceDirectory or --path",
            |env| {
                env.write("other/cm.yaml", CM);
            },
        ),
        Rejection::new(
            "a source path that is a file",
            "error: source path k8s is not a directory; ",
            |env| {
                env.write("k8s", CM);
            },
        )
        .up_to_the_hint(),
        Rejection::new(
            "a missing --path directory is named as given",
            "error: source directory deploy/prod does not exist; create it, or set spec.workload.sourceDirectory or --path",
            |_| {},
        )
        .args(&["--path", "deploy/prod"]),
        Rejection::new("no files left after the ignore rules", NO_FILES, |env| {
            env.write("k8s/logo.png", [0x89, b'P', b'N', b'G']);
            env.write("k8s/.gitignore", "*.tmp\n");
            env.write("k8s/drafts/a.yaml", CM);
            env.write("k8s/.sourceignore", "drafts/\n.sourceignore\n");
            env.mkdir("k8s/empty");
        }),
        Rejection::new("an empty source directory", NO_FILES, |env| {
            env.mkdir("k8s");
        }),
        Rejection::new(
            "B11 an escaping symlink names the link and its target",
            "error: symlink k8s/secret.yaml points outside the source directory (to ../../secrets/prod.yaml); copy the file into the source directory or remove the link",
            |env| {
                env.write("k8s/cm.yaml", CM);
                fs::create_dir_all(env.root().join("secrets")).unwrap();
                fs::write(env.root().join("secrets/prod.yaml"), CM).unwrap();
                env.symlink("../../secrets/prod.yaml", "k8s/secret.yaml");
                assert!(
                    env.work().join("k8s/secret.yaml").exists(),
                    "the link resolves"
                );
            },
        ),
        Rejection::new(
            "an escaping directory link",
            "error: symlink k8s/apps/ext points outside the source directory (to ../../outside); copy the file into the source directory or remove the link",
            |env| {
                env.write("k8s/cm.yaml", CM);
                env.write("outside/x.yaml", CM);
                env.symlink("../../outside", "k8s/apps/ext");
            },
        ),
        Rejection::new(
            "an absolute link outside",
            "error: symlink k8s/abs.yaml points outside the source directory (to {work}/elsewhere.yaml); copy the file into the source directory or remove the link",
            |env| {
                env.write("k8s/cm.yaml", CM);
                let target = env.write("elsewhere.yaml", CM);
                assert_eq!(target, env.work().join("elsewhere.yaml"));
                env.symlink(&target, "k8s/abs.yaml");
            },
        ),
        Rejection::new(
            "a dangling symlink",
            "error: symlink k8s/app.yaml points to a missing file; fix or remove the link",
            |env| {
                env.write("k8s/cm.yaml", CM);
                env.symlink("gone.yaml", "k8s/app.yaml");
            },
        ),
        Rejection::new(
            "a symlink loop",
            "error: symlink loop at k8s/loop; remove the link",
            |env| {
                env.write("k8s/cm.yaml", CM);
                env.symlink(".", "k8s/loop");
            },
        ),
        Rejection::new(
            "a nested symlink loop",
            "error: symlink loop at k8s/apps/up; remove the link",
            |env| {
                env.write("k8s/apps/cm.yaml", CM);
                env.symlink("..", "k8s/apps/up");
            },
        ),
        Rejection::new(
            "B10 validation reports every problem sorted, then the summary",
            INVALID_TREE_ERROR,
            invalid_tree,
        )
        .problems(INVALID_TREE_PROBLEMS.map(String::from).to_vec()),
        Rejection::new(
            "validation reports scalars and duplicate keys",
            "error: validation failed: 2 problems in 2 files under k8s; fix them or push with --no-validate",
            |env| {
                env.write("k8s/scalar.yaml", "just text\n");
                env.write(
                    "k8s/svc.YML",
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n",
                );
            },
        )
        .problems(vec![
            "k8s/scalar.yaml:1:1: document 1 is a scalar, not a Kubernetes object".into(),
            "k8s/svc.YML:5:3: duplicate key \"name\"".into(),
        ]),
        Rejection::new(
            "an alias bomb stops at the alias expansion limit",
            ONE_PROBLEM,
            |env| {
                env.write("k8s/cm.yaml", CM);
                env.write("k8s/bomb.yaml", format!("{CM}data:\n{}", alias_bomb("  ", 9)));
            },
        )
        .problems(vec![
            // l5 (line 11) is the first anchor whose copies pass 1,000,000 nodes.
            format!("k8s/bomb.yaml:11:11: alias expansion limit exceeded: anchors and aliases copy more than 1000000 nodes in this document; {ALIAS_FIX}"),
        ]),
        Rejection::new(
            "nesting deeper than the limit",
            ONE_PROBLEM,
            |env| {
                env.write("k8s/deep.yaml", format!("{CM}data:\n  x: {}\n", nested_sequences(300)));
            },
        )
        .problems(vec![
            // The parser reads ahead of the tree and notices at the 258th `[` (its own limit
            // counts flow collections alone); the position is always inside the too-deep part.
            "k8s/deep.yaml:6:263: nesting depth limit exceeded: more than 256 nested mappings and sequences; flatten the structure".into(),
        ]),
        Rejection::new(
            "a duplicate key among 200,000 keys is reported at its position",
            ONE_PROBLEM,
            |env| {
                env.write("k8s/big.yaml", &(big_config_map(200_000) + "  key100000: again\n"));
            },
        )
        .problems(vec![
            "k8s/big.yaml:200006:3: duplicate key \"key100000\"".into(),
        ]),
        Rejection::new(
            "B10 at most 20 problem lines, then … and N more",
            "error: validation failed: 23 problems in 23 files under k8s; fix them or push with --no-validate",
            |env| {
                for i in (0..23).rev() {
                    env.write(&format!("k8s/f{i:02}.yaml"), "- a\n");
                }
            },
        )
        .problems(many),
        Rejection::new(
            "P12 --validate beats validateOnPush: false",
            INVALID_TREE_ERROR,
            |env| {
                invalid_tree(env);
                env.write("ksail.yaml", VALIDATE_ON_PUSH_FALSE);
            },
        )
        .args(&["--validate"]),
    ])
}

#[test]
fn rejected_sources_exit_2_with_the_exact_error_and_no_request() {
    let registry = require_registry!();
    for case in rejections() {
        eprintln!("case: {}", case.name);
        let env = TestEnv::new();
        (case.setup)(&env);
        let error = case
            .error
            .replace("{work}", &env.work().display().to_string());
        let output = if case.prefix_only {
            let output = rejected(&env, &registry, case.extra);
            let line = error_line(&output);
            assert!(line.starts_with(&error), "{}: {line}", case.name);
            output
        } else {
            assert_rejected(&env, &registry, case.extra, &error)
        };
        if let Some(expected) = &case.problems {
            assert_eq!(&problem_lines(&output), expected, "{}", case.name);
        }
    }
}

/// A tree whose push succeeds, and the layer's entries it must give.
struct Packed {
    name: &'static str,
    setup: fn(&TestEnv),
    names: &'static [&'static str],
    /// Entries whose content is checked.
    contents: &'static [(&'static str, &'static [u8])],
}

impl Packed {
    const fn new(name: &'static str, setup: fn(&TestEnv)) -> Packed {
        Packed {
            name,
            setup,
            names: &[],
            contents: &[],
        }
    }

    /// The layer's entries, in archive order.
    const fn holds(mut self, names: &'static [&'static str]) -> Packed {
        self.names = names;
        self
    }

    const fn with_contents(mut self, contents: &'static [(&'static str, &'static [u8])]) -> Packed {
        self.contents = contents;
        self
    }
}

const PACKED: &[Packed] = &[
    Packed::new("every Flux default exclusion is left out", |env| {
        env.write("k8s/keep.yaml", CM);
        env.write("k8s/.git/HEAD", "ref: refs/heads/main\n");
        env.write("k8s/.git/objects/x", "object");
        env.write("k8s/sub/.git/config", "[core]\n");
        for name in [
            ".gitignore",
            ".gitmodules",
            ".gitattributes",
            "a.jpg",
            "a.jpeg",
            "a.gif",
            "a.png",
            "a.wmv",
            "a.flv",
            "a.tar.gz",
            "a.zip",
        ] {
            env.write(&format!("k8s/{name}"), "x");
            env.write(&format!("k8s/sub/{name}"), "x");
        }
        // Matching is case-sensitive, and only the listed patterns are defaults.
        env.write("k8s/sub/A.PNG", "x");
        env.write("k8s/sub/b.tar", "x");
        env.write("k8s/sub/.hidden", "x");
        env.write("k8s/sub/git.yaml.orig", "x");
    })
    .holds(&[
        "keep.yaml",
        "sub/",
        "sub/.hidden",
        "sub/A.PNG",
        "sub/b.tar",
        "sub/git.yaml.orig",
    ]),
    Packed::new(
        ".sourceignore negation, dir-only patterns, anchors and unwalked ignored dirs",
        |env| {
            env.write(
                "k8s/.sourceignore",
                "# local files\n\
                 \n\
                 !logo.png\n\
                 build/\n\
                 /anchored.yaml\n\
                 *.secret\n\
                 !keep.secret\n\
                 out/\n\
                 !out/inside.yaml\n\
                 Case.yaml\n",
            );
            env.write("k8s/logo.png", "png");
            env.write("k8s/deep/logo.png", "png");
            env.write("k8s/other.png", "png");
            env.write("k8s/build/a.yaml", CM);
            env.write("k8s/deep/build/b.yaml", CM);
            env.write("k8s/notdir/build", "a file named like the dir-only pattern");
            env.write("k8s/anchored.yaml", CM);
            env.write("k8s/deep/anchored.yaml", CM);
            env.write("k8s/a.secret", "s");
            env.write("k8s/keep.secret", "s");
            env.write("k8s/out/inside.yaml", CM);
            env.write("k8s/case.yaml", CM);
            env.write("k8s/Case.yaml", CM);
            // If the ignored directory were walked, these would fail the push.
            env.symlink("/etc/hostname", "k8s/out/escape.yaml");
            env.symlink("missing.yaml", "k8s/build/dangling.yaml");
            // A nested .sourceignore is packed but never read.
            env.write("k8s/deep/.sourceignore", "*.yaml\n*\n");
            env.write("k8s/deep/kept.yaml", CM);
        },
    )
    .holds(&[
        ".sourceignore",
        "case.yaml",
        "deep/",
        "deep/.sourceignore",
        "deep/anchored.yaml",
        "deep/kept.yaml",
        "deep/logo.png",
        "keep.secret",
        "logo.png",
        "notdir/",
        "notdir/build",
    ])
    .with_contents(&[("deep/.sourceignore", b"*.yaml\n*\n")]),
    Packed::new("the root .sourceignore can exclude itself", |env| {
        env.write("k8s/.sourceignore", ".sourceignore\n");
        env.write("k8s/cm.yaml", CM);
    })
    .holds(&["cm.yaml"]),
    Packed::new("non-YAML files are packed but not validated", |env| {
        env.write("k8s/cm.yaml", CM);
        env.write("k8s/data.json", "{\"not\": \"an object with kind\"}");
        env.write("k8s/run.sh", "#!/bin/sh\n");
        env.write("k8s/notes.txt", "- a\n");
    })
    .holds(&["cm.yaml", "data.json", "notes.txt", "run.sh"]),
];

#[test]
fn packed_trees_hold_exactly_the_selected_files() {
    let registry = require_registry!();
    let host = registry.host_port();
    for case in PACKED {
        eprintln!("case: {}", case.name);
        let env = TestEnv::new();
        (case.setup)(&env);
        let entries = push_and_list(&env, &host, &[]);
        assert_eq!(names(&entries), case.names, "{}", case.name);
        for (name, content) in case.contents {
            assert_eq!(entry(&entries, name), *content, "{}: {name}", case.name);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Symlinks

#[test]
fn internal_file_and_directory_links_are_packed_at_the_link_path() {
    let (_registry, host, env) = registry_and_env!();
    env.write("k8s/base/cm.yaml", CM);
    env.write("k8s/base/nested/svc.yaml", CM.replace("name: a", "name: b"));
    env.symlink("base/cm.yaml", "k8s/link.yaml");
    env.symlink("base", "k8s/linkdir");
    env.symlink("../../k8s/base/cm.yaml", "k8s/overlay/roundabout.yaml");
    // A link whose path is ignored is not followed (the rules match the link's path).
    env.write("k8s/.sourceignore", "ignored-link.yaml\n");
    env.symlink("/etc/hostname", "k8s/ignored-link.yaml");

    let output = push_registry(&env, &host, &["--output", "json"]);
    run_ok(&output);
    let entries = push_and_list(&env, &host, &[]);
    assert_eq!(
        names(&entries),
        [
            ".sourceignore",
            "base/",
            "base/cm.yaml",
            "base/nested/",
            "base/nested/svc.yaml",
            "link.yaml",
            "linkdir/",
            "linkdir/cm.yaml",
            "linkdir/nested/",
            "linkdir/nested/svc.yaml",
            "overlay/",
            "overlay/roundabout.yaml",
        ]
    );
    assert_eq!(entry(&entries, "link.yaml"), CM.as_bytes());
    assert_eq!(entry(&entries, "linkdir/cm.yaml"), CM.as_bytes());
    assert_eq!(entry(&entries, "overlay/roundabout.yaml"), CM.as_bytes());
    assert_eq!(json_of(&output)["files"], 7);
}

// ---------------------------------------------------------------------------------------------
// Other file types

#[test]
fn sockets_and_fifos_are_skipped_with_a_warning() {
    let (_registry, host, env) = registry_and_env!();
    env.write("k8s/cm.yaml", CM);
    let _socket = std::os::unix::net::UnixListener::bind(env.work().join("k8s/x.sock"))
        .expect("bind a unix socket in the tree");
    env.mkdir("k8s/sub");
    let fifo = std::process::Command::new("mkfifo")
        .arg(env.work().join("k8s/sub/y.fifo"))
        .status();
    assert!(
        fifo.is_ok_and(|s| s.success()),
        "mkfifo is needed for this test"
    );

    let output = push_registry(&env, &host, &[]);
    run_ok(&output);
    assert_eq!(
        timestamped_warnings(&output),
        [
            "warning: skipping k8s/sub/y.fifo: not a regular file or directory",
            "warning: skipping k8s/x.sock: not a regular file or directory",
        ]
    );
    let entries = push_and_list(&env, &host, &[]);
    assert_eq!(names(&entries), ["cm.yaml", "sub/"]);
}

// ---------------------------------------------------------------------------------------------
// Validation

/// Four problems in three files, written in an order unrelated to the report order.
fn invalid_tree(env: &TestEnv) {
    env.write("k8s/base/list.yaml", "- a\n- b\n");
    env.write(
        "k8s/apps/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n\
         ---\n\
         apiVersion: v1\nmetadata:\n  name: no-kind\n\
         ---\n\
         # comment\n  kind: Service\n  metadata: {}\n",
    );
    env.write(
        "k8s/apps/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n",
    );
    env.write("k8s/ok.yaml", CM);
    env.write("k8s/empty.yaml", "");
    env.write("k8s/nulls.yaml", "---\n---\n~\n");
}

const INVALID_TREE_PROBLEMS: [&str; 4] = [
    "k8s/apps/cm.yaml:4:10: mapping values are not allowed in this context",
    "k8s/apps/deploy.yaml:6:1: document 2 has no \"kind\"",
    "k8s/apps/deploy.yaml:11:3: document 3 has no \"apiVersion\"",
    "k8s/base/list.yaml:1:1: document 1 is a sequence, not a Kubernetes object",
];

#[test]
fn no_validate_flag_and_validate_on_push_false_push_the_same_tree() {
    let registry = require_registry!();
    let host = registry.host_port();

    let flag = TestEnv::new();
    invalid_tree(&flag);
    let output = push_registry(&flag, &host, &["--no-validate", "--output", "json"]);
    run_ok(&output);
    assert!(
        !timestamped_lines(&output)
            .iter()
            .any(|t| t.starts_with("push: validated")),
        "validation ran despite --no-validate"
    );
    let by_flag = json_of(&output);

    let config = TestEnv::new();
    invalid_tree(&config);
    config.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  workload:\n    validateOnPush: false\n",
    );
    let output = push_registry(&config, &host, &["--output", "json"]);
    run_ok(&output);
    let by_config = json_of(&output);

    assert_eq!(by_flag["status"], "pushed");
    assert_eq!(
        by_config["status"], "unchanged",
        "the same layer was already pushed"
    );
    assert_eq!(by_flag["layerDigest"], by_config["layerDigest"]);
    assert_eq!(by_flag["files"], 6);

    // KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH=true loses to --no-validate (P10).
    let output = flag
        .ksail(["workload", "push", "--registry", &host, "--no-validate"])
        .env("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", "true")
        .output()
        .unwrap();
    run_ok(&output);
}

#[test]
fn validation_exemptions_pass() {
    let (_registry, host, env) = registry_and_env!();
    // A kustomization may omit apiVersion and kind.
    env.write(
        "k8s/kustomization.yaml",
        "resources:\n  - cm.yaml\n\
         configMapGenerator:\n  - name: app\n    envs:\n      - config/app.env\n    files:\n      - settings.yaml=config/settings.yaml\n      - config/raw.yaml\n\
         patches:\n  - path: patches/replicas.yaml\n    target:\n      kind: Deployment\n\
         helmCharts:\n  - name: x\n    valuesFile: values/x.yaml\n",
    );
    env.write("k8s/cm.yaml", CM);
    env.write("k8s/config/app.env", "A=1\nB: not yaml either\n");
    env.write("k8s/config/settings.yaml", "logLevel: debug\n");
    env.write("k8s/config/raw.yaml", "- just\n- a list\n");
    // A JSON 6902 patch is a sequence, not an object.
    env.write(
        "k8s/patches/replicas.yaml",
        "- op: replace\n  path: /spec/replicas\n  value: 2\n",
    );
    env.write("k8s/values/x.yaml", "replicas: 3\n");
    // A kustomization in a subdirectory names inputs relative to itself.
    env.write(
        "k8s/overlay/kustomization.yml",
        "secretGenerator:\n  - name: s\n    files:\n      - creds.yaml\n",
    );
    env.write("k8s/overlay/creds.yaml", "user: me\n");
    // Nothing in a Helm chart directory is checked.
    env.write(
        "k8s/charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    );
    env.write("k8s/charts/web/values.yaml", "image: nginx\n");
    env.write(
        "k8s/charts/web/templates/deploy.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Values.name }}\n{{- if .Values.x }}\n  labels: {{ toYaml . | nindent 4 }}\n{{- end }}\n",
    );
    env.write("k8s/charts/web/templates/list.yaml", "- a\n");

    // 8 = cm, 2 kustomizations, settings, raw, patch, values, creds; the chart is skipped.
    assert_validated(&push_registry(&env, &host, &[]), 8);
}

/// Anchors and aliases as manifests use them, each document with its own anchors.
const ANCHORED_MANIFESTS: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: &labels
    app: web
spec:
  selector:
    matchLabels: *labels
  template:
    metadata:
      labels: *labels
    spec:
      containers:
        - name: web
          image: nginx
          env: &env
            - {name: MODE, value: web}
        - name: sidecar
          image: busybox
          env: *env
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: &labels
    app: web
spec:
  selector: *labels
  ports: [{port: 80}]
";

#[test]
fn large_mappings_and_anchors_within_the_limits_pass() {
    let (_registry, host, env) = registry_and_env!();
    // One mapping with 200,000 keys (about 6 MB): each key is checked against the others through
    // a hash, so this takes a moment, not minutes (benches/yaml.rs measures it).
    env.write("k8s/big.yaml", big_config_map(200_000));
    env.write("k8s/web.yaml", ANCHORED_MANIFESTS);
    // Aliases of aliases that copy about 150,000 nodes stay within the alias expansion limit.
    env.write(
        "k8s/laughs.yaml",
        format!("{CM}data:\n{}", alias_bomb("  ", 5)),
    );
    assert_validated(&push_registry(&env, &host, &[]), 3);
}

/// The debug line of a push whose validation took `reused` of `checked` files from the per-file
/// cache; `None` when it parsed every file.
fn files_from_cache(output: &Output) -> Option<String> {
    stderr_text(output)
        .lines()
        .filter_map(|line| line.split_once("push: ").map(|(_, rest)| rest))
        .find(|rest| rest.contains("passed validation before"))
        .map(str::to_owned)
}

/// An unchanged re-push takes the files' digests from their stamps instead of reading them
/// (docs/push.md "Bounds and leftovers"): with a forged remembered digest, the same tree misses
/// the layer cache it hits otherwise.
#[test]
fn settled_files_are_known_by_their_stamp() {
    let (_registry, host, env) = registry_and_env!();
    env.write("k8s/a.yaml", format!("{CM}data:\n  v: \"a\"\n"));
    env.write("k8s/b.yaml", format!("{CM}data:\n  v: \"b\"\n"));
    // Only files whose times lie more than 3 s before a push are remembered.
    std::thread::sleep(std::time::Duration::from_millis(3_200));
    run_ok(&push_registry(&env, &host, &[]));

    let stores: Vec<_> = fs::read_dir(env.xdg_cache().join("ksail/file-digests"))
        .expect("the push remembered file digests")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(
        stores.len(),
        1,
        "one file for the source directory: {stores:?}"
    );
    let text = fs::read_to_string(&stores[0]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "a header and both files: {text}");
    let hit = |output: &Output| stderr_text(output).contains("push: layer cache hit");

    let again = push_registry(&env, &host, &["-v"]);
    run_ok(&again);
    assert!(hit(&again), "{}", stderr_text(&again));

    let a = lines
        .iter()
        .find(|line| line.ends_with("/k8s/a.yaml"))
        .expect("a.yaml is remembered");
    let forged = text.replace(a, &format!("{}{}", "0".repeat(64), &a[64..]));
    fs::write(&stores[0], forged).unwrap();
    let output = push_registry(&env, &host, &["-v"]);
    run_ok(&output);
    assert!(
        !hit(&output),
        "the forged digest was used: {}",
        stderr_text(&output)
    );
    assert!(
        stdout_text(&output).starts_with("unchanged "),
        "the bytes are the same: {}",
        stdout_text(&output)
    );
}

/// Validation remembers each file that passed, by content and role: a one-file change parses one
/// file, and a remembered pass never hides a problem.
#[test]
fn a_one_file_change_parses_one_file() {
    let (registry, host, env) = registry_and_env!();
    env.write(
        "k8s/kustomization.yaml",
        "resources: [a.yaml, b.yaml, c.yaml]\npatches:\n  - path: patch.yaml\n",
    );
    for name in ["a", "b", "c"] {
        env.write(
            &format!("k8s/{name}.yaml"),
            format!("{CM}data:\n  v: \"{name}\"\n"),
        );
    }
    env.write(
        "k8s/patch.yaml",
        "- op: replace\n  path: /data/v\n  value: x\n",
    );

    let first = push_registry(&env, &host, &["-v"]);
    assert_validated(&first, 5);
    assert_eq!(files_from_cache(&first), None, "nothing was cached before");

    env.write("k8s/b.yaml", format!("{CM}data:\n  v: \"changed\"\n"));
    let second = push_registry(&env, &host, &["-v"]);
    assert_validated(&second, 5);
    assert_eq!(
        files_from_cache(&second).as_deref(),
        Some("3 of 5 YAML files passed validation before with the same content; parsed 2"),
        "the kustomization is always parsed, the changed file is parsed, the rest is not"
    );

    // A remembered pass is tied to the content: a broken file is reported, not skipped.
    env.write("k8s/c.yaml", "apiVersion: v1\nkind: [\n");
    let output = rejected(&env, &registry, &[]);
    assert_eq!(problem_lines(&output).len(), 1, "{}", stderr_text(&output));
    assert!(
        problem_lines(&output)[0].starts_with("k8s/c.yaml:"),
        "{:?}",
        problem_lines(&output)
    );

    // And to the role: the patch passed as a parse-only input; as a resource it is checked.
    env.write("k8s/c.yaml", format!("{CM}data:\n  v: \"c\"\n"));
    env.write(
        "k8s/kustomization.yaml",
        "resources: [a.yaml, b.yaml, c.yaml]\n",
    );
    let output = rejected(&env, &registry, &[]);
    assert_eq!(
        problem_lines(&output),
        ["k8s/patch.yaml:1:1: document 1 is a sequence, not a Kubernetes object"],
        "{}",
        stderr_text(&output)
    );
}

#[test]
fn parse_only_files_are_still_parsed() {
    let registry = require_registry!();
    let env = TestEnv::new();
    // A kustomization skips the object check, not the parse.
    env.write(
        "k8s/kustomization.yaml",
        "resources:\n  - cm.yaml\nresources: []\n",
    );
    env.write("k8s/cm.yaml", CM);
    let output = assert_rejected(
        &env,
        &registry,
        &[],
        "error: validation failed: 1 problem in 1 file under k8s; fix them or push with --no-validate",
    );
    assert_eq!(
        problem_lines(&output),
        ["k8s/kustomization.yaml:3:1: duplicate key \"resources\""]
    );

    // So does a patch file a kustomization names: a syntax error is still reported.
    env.write(
        "k8s/kustomization.yaml",
        "resources:\n  - cm.yaml\npatches:\n  - path: patch.yaml\n",
    );
    env.write(
        "k8s/patch.yaml",
        "- op: replace\n  path: /a\n  value: [1, 2\n",
    );
    let output = assert_rejected(
        &env,
        &registry,
        &[],
        "error: validation failed: 1 problem in 1 file under k8s; fix them or push with --no-validate",
    );
    let problems = problem_lines(&output);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].starts_with("k8s/patch.yaml:"), "{problems:?}");
    assert!(!problems[0].contains("Kubernetes object"), "{problems:?}");
}

#[test]
fn non_utf8_file_name_exits_2_naming_the_entry() {
    use std::os::unix::ffi::OsStrExt as _;
    let registry = require_registry!();
    let env = TestEnv::new();
    env.write("k8s/cm.yaml", CM);
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.yaml");
    fs::write(env.work().join("k8s").join(name), CM).expect("write a non-UTF-8 name");
    let output = rejected(&env, &registry, &[]);
    let line = error_line(&output);
    assert!(line.starts_with("error: file name k8s/bad"), "{line}");
    assert!(line.contains("is not valid UTF-8"), "{line}");
}
