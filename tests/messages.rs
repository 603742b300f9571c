//! Error lines that name the real problem and point at the right help, and the JSON document on
//! every exit (issue 12, points 1 and 2), through the real binary.

mod support;

use serde_json::Value;
use support::{Action, FaultScript, Proxy, TestEnv, assert_error_line, describe, stdout_lines};

/// `ksail <args>` in an empty project.
fn run(args: &[&str]) -> std::process::Output {
    TestEnv::new().ksail(args).output().expect("run ksail")
}

/// `ksail <args>` in an empty project, which must exit 2.
fn run_usage_error(args: &[&str]) -> std::process::Output {
    let output = run(args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        describe(&output)
    );
    output
}

/// Each case exits 2 with exactly this error line (the last stderr line).
#[test]
fn usage_errors_name_the_problem_and_the_subcommands_help() {
    let digest = format!("oci://localhost:5999/k8s@sha256:{}", "0".repeat(64));
    let cases: [(&[&str], &str); 9] = [
        (
            &["workload", "push", &digest],
            "error: OCI_REF argument: a digest reference (…@sha256:…) names content, not a place to push to; write the tag to push: oci://host[:port]/repository[:tag]",
        ),
        (
            &["completion"],
            "error: missing required argument <SHELL>; run ksail completion --help for usage",
        ),
        (
            &["workload", "push", "--output", "yaml"],
            "error: invalid value 'yaml' for '--output <FMT>': possible values are text, json; run ksail workload push --help for usage",
        ),
        (
            &["completion", "Bash"],
            "error: invalid value 'Bash' for '<SHELL>': possible values are bash, elvish, fish, powershell, zsh (values are case-sensitive: write bash); run ksail completion --help for usage",
        ),
        (
            &["workload", "reconcile", "--timeout=-1"],
            "error: flag --timeout: duration \"-1\" must be greater than zero; use a positive value such as 5m",
        ),
        (
            &["workload", "reconcile", "--bogus"],
            "error: unexpected argument '--bogus' found; run ksail workload reconcile --help for usage",
        ),
        // An empty value (an unset shell variable) is not "use the default".
        (
            &["workload", "push", "--path", ""],
            "error: a value is required for '--path <DIR>' but none was supplied; run ksail workload push --help for usage",
        ),
        (
            &["cluster", "create", "--local-registry", ""],
            "error: a value is required for '--local-registry <REG>' but none was supplied; run ksail cluster create --help for usage",
        ),
        (
            &["cluster", "frobnicate"],
            "error: unrecognized subcommand 'frobnicate'; run ksail cluster --help for usage",
        ),
    ];
    for (args, line) in cases {
        let output = run_usage_error(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().last(), Some(line), "{args:?}");
    }
}

/// A directory that cannot be created because a parent is a file is not blamed on permissions.
#[test]
fn a_parent_that_is_a_file_is_not_called_a_permission_problem() {
    let env = TestEnv::new();
    let missing = env.root().join("no/such/parent");
    std::fs::write(env.root().join("no"), "a file, not a directory").unwrap();

    let output = env
        .ksail(["cluster", "init", "--directory", missing.to_str().unwrap()])
        .output()
        .expect("run ksail");

    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.ends_with(
            "; a component of the path is a file, not a directory; choose another --directory"
        ),
        "{last}"
    );
}

/// `--output json` prints one JSON document on stdout also when the arguments do not parse.
#[test]
fn argument_errors_under_output_json_print_the_document() {
    for (args, command) in [
        (
            &["workload", "reconcile", "--bogus", "--output", "json"][..],
            "workload reconcile",
        ),
        (
            &["workload", "push", "--output=json", "--timeout", "5m"][..],
            "workload push",
        ),
        (
            &["cluster", "list", "--output", "json", "extra"][..],
            "cluster list",
        ),
    ] {
        let output = run_usage_error(args);
        let stdout = stdout_lines(&output);
        assert_eq!(stdout.len(), 1, "{args:?}: {}", describe(&output));
        let document: Value = serde_json::from_str(&stdout[0]).expect("one JSON document");
        assert_eq!(document["command"], command);
        assert_eq!(document["status"], "invalid");
        assert_eq!(document["exitCode"], 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr.lines().last().unwrap_or_default();
        assert_eq!(
            document["error"]
                .as_str()
                .map(|error| format!("error: {error}")),
            Some(line.to_string())
        );
    }
    // Without --output json, nothing on stdout.
    assert!(run(&["workload", "reconcile", "--bogus"]).stdout.is_empty());
}

/// When the push's retries run out, the hint fits the failure: a registry that answers 500 is not
/// told to be started with `ksail cluster create`, nor is one named on the command line.
#[test]
fn push_failure_hints_fit_the_failure() {
    let registry = require_registry!();
    let proxy = Proxy::with_script(
        &registry.host_port(),
        FaultScript::new().on_requests(1.., Action::Status(500, None)),
    );
    let env = TestEnv::new();
    env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    );
    let failing = env
        .ksail([
            "workload",
            "push",
            &format!("oci://{}/k8s:dev", proxy.host_port()),
        ])
        .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
        .output()
        .expect("run ksail");
    assert_error_line(
        &failing,
        &format!(
            "the registry at {} failed on its side; check its logs, then push again",
            proxy.host_port()
        ),
    );

    // Nothing listens on the named port: the hint names it, not `ksail cluster create`.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let refused = env
        .ksail([
            "workload",
            "push",
            &format!("oci://127.0.0.1:{port}/k8s:dev"),
        ])
        .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
        .output()
        .expect("run ksail");
    assert_error_line(
        &refused,
        &format!(
            "nothing listens on 127.0.0.1:{port}; check the host and port, or start the registry"
        ),
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!stderr.contains("ksail cluster create"), "{stderr}");
}

/// An unchanged re-push reports the artifact's own `created` (when it was pushed), not now.
#[test]
fn an_unchanged_push_reports_when_the_artifact_was_created() {
    let registry = require_registry!();
    let env = TestEnv::new();
    env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    );
    let target = format!("oci://{}/k8s:dev", registry.host_port());
    let push = || {
        let output = env
            .ksail(["workload", "push", &target, "--output", "json"])
            .output()
            .expect("run ksail");
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        serde_json::from_slice::<Value>(&output.stdout).expect("one JSON document")
    };
    let first = push();
    // `created` has whole seconds: a second later, "now" would differ.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = push();

    assert_eq!(first["status"], "pushed");
    assert_eq!(again["status"], "unchanged");
    assert_eq!(again["created"], first["created"]);
}

/// Connection flags only where a cluster is reached (or, for init, configured), under their own
/// heading; enum flags complete their values in every shell.
#[test]
fn help_shows_connection_flags_only_where_they_apply_and_shells_complete_enum_values() {
    let help = |args: &[&str]| {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for args in [
        &["workload", "reconcile", "--help"][..],
        &["cluster", "create", "--help"],
        &["cluster", "update", "--help"],
        &["cluster", "delete", "--help"],
        &["cluster", "init", "--help"],
    ] {
        let text = help(args);
        let section = text
            .split("Cluster connection:")
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?} has no connection heading:\n{text}"));
        assert!(
            section.contains("--kubeconfig") && section.contains("--context"),
            "{text}"
        );
    }
    for args in [
        &["workload", "push", "--help"][..],
        &["cluster", "list", "--help"],
    ] {
        assert!(!help(args).contains("--kubeconfig"), "{args:?}");
    }
    let refused = run(&["workload", "push", "--kubeconfig", "x"]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));

    for shell in ["bash", "zsh", "fish"] {
        let script = help(&["completion", shell]);
        for value in ["Vanilla", "K3s", "ArgoCD", "json"] {
            assert!(script.contains(value), "{shell} does not complete {value}");
        }
    }
    // PowerShell and Elvish register a callback: on Tab the shell runs `ksail -- <words>` with
    // KSAIL_COMPLETE set (the scripts' own protocol, from clap_complete), and ksail answers.
    for shell in ["powershell", "elvish"] {
        let script = help(&["completion", shell]);
        assert!(
            script.contains(&format!("KSAIL_COMPLETE=\"{shell}\""))
                || script.contains(&format!("$env:KSAIL_COMPLETE = \"{shell}\"")),
            "{shell} script does not call ksail back:\n{script}"
        );
        assert!(script.contains("ksail -- "), "{script}");
        for (words, values) in [
            (
                &["cluster", "init", "--gitops-engine", ""][..],
                &["None", "Flux", "ArgoCD"][..],
            ),
            (&["cluster", "create", "-d", ""], &["Vanilla", "K3s"]),
            (
                &["workload", "reconcile", "--output", ""],
                &["text", "json"],
            ),
            (&["workl"], &["workload"]),
        ] {
            let candidates = complete(shell, words);
            for value in values {
                assert!(
                    candidates
                        .iter()
                        .any(|line| line == value || line.starts_with(&format!("{value}\t"))),
                    "{shell} {words:?}: {value} not among {candidates:?}"
                );
            }
        }
    }
}

/// The candidates ksail prints when a PowerShell or Elvish completion script calls it back for
/// `ksail <words>`, the last word being the one under the cursor.
fn complete(shell: &str, words: &[&str]) -> Vec<String> {
    let output = TestEnv::new()
        .ksail(["--", "ksail"].iter().chain(words))
        .env("KSAIL_COMPLETE", shell)
        .env("_CLAP_COMPLETE_INDEX", words.len().to_string())
        .output()
        .expect("run ksail");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Only ksail's own variable turns a run into a completion request: a `COMPLETE` meant for
/// another program's completion changes nothing.
#[test]
fn a_completion_variable_of_another_program_is_ignored() {
    let output = TestEnv::new()
        .ksail(["--version"])
        .env("COMPLETE", "powershell")
        .output()
        .expect("run ksail");
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("ksail "),
        "{}",
        describe(&output)
    );
}
