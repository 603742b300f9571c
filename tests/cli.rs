//! The command line itself (cli.md; testing.md "CLI tests" and bad inputs B01, B14, B15, B21):
//! help, version, completion, exit codes and the one-line error form.

mod support;

use std::path::PathBuf;

use support::{TestEnv, assert_error_line, stderr_lines, stdout_text};

/// Compare `actual` with `tests/snapshots/<name>.txt`; `KSAIL_UPDATE_SNAPSHOTS=1` rewrites it.
fn assert_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var("KSAIL_UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with KSAIL_UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "help output changed for {name} (KSAIL_UPDATE_SNAPSHOTS=1 rewrites it)"
    );
}

#[test]
fn help_of_every_command_matches_its_snapshot() {
    let env = TestEnv::new();
    for (name, args) in [
        ("help-root", vec!["--help"]),
        ("help-workload", vec!["workload", "--help"]),
        ("help-workload-push", vec!["workload", "push", "--help"]),
        (
            "help-workload-reconcile",
            vec!["workload", "reconcile", "--help"],
        ),
        ("help-workload-watch", vec!["workload", "watch", "--help"]),
        ("help-cluster", vec!["cluster", "--help"]),
        ("help-cluster-init", vec!["cluster", "init", "--help"]),
        ("help-cluster-create", vec!["cluster", "create", "--help"]),
        ("help-cluster-update", vec!["cluster", "update", "--help"]),
        ("help-cluster-delete", vec!["cluster", "delete", "--help"]),
        ("help-cluster-list", vec!["cluster", "list", "--help"]),
        ("help-completion", vec!["completion", "--help"]),
    ] {
        let output = env.ksail(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?} wrote to stderr");
        assert_snapshot(name, &stdout_text(&output));
    }
}

#[test]
fn no_command_and_bare_groups_print_help_and_exit_0() {
    let env = TestEnv::new();
    for args in [vec![], vec!["workload"], vec!["cluster"]] {
        let output = env.ksail(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert!(stdout_text(&output).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn version_prints_name_and_semver_without_reading_ksail_yaml() {
    let env = TestEnv::new();
    env.write("ksail.yaml", "apiVersion: [broken\n");
    for flag in ["--version", "-V"] {
        let output = env.ksail([flag]).output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(
            stdout_text(&output),
            format!("ksail {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn completion_scripts_exist_for_every_supported_shell() {
    let env = TestEnv::new();
    env.write("ksail.yaml", "not: a valid config\n");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let output = env.ksail(["completion", shell]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = stdout_text(&output);
        assert!(
            script.contains("ksail"),
            "{shell} script does not mention ksail"
        );
        // PowerShell and Elvish call ksail back for every candidate (messages.rs tests what
        // they answer); the static scripts list the commands themselves.
        let lists_commands = script.contains("workload") || script.contains("KSAIL_COMPLETE");
        assert!(lists_commands, "{shell} script misses the workload command");
    }
}

/// `ksail <args>` exits 2 with one error line containing `phrase`.
fn usage_error(env: &TestEnv, args: &[&str], phrase: &str) -> std::process::Output {
    let output = env.ksail(args).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_error_line(&output, phrase);
    output
}

#[test]
fn b21_completion_for_an_unknown_shell_exits_2() {
    let env = TestEnv::new();
    let before = env.tree_hash();
    let output = usage_error(&env, &["completion", "tcsh"], "tcsh");
    assert!(output.stdout.is_empty());
    assert_eq!(env.tree_hash(), before);
}

#[test]
fn b01_unknown_flag_exits_2_with_one_error_line_and_the_json_document() {
    let env = TestEnv::new();
    let output = usage_error(
        &env,
        &["workload", "push", "--frobnicate", "--output", "json"],
        "--frobnicate",
    );
    assert_eq!(stderr_lines(&output).len(), 1, "only the error line");
    // docs/ci.md: one JSON document on stdout whatever the exit code.
    let document: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON document");
    assert_eq!(document["status"], "invalid");
    assert_eq!(document["exitCode"], 2);
}

#[test]
fn unknown_command_and_extra_argument_exit_2() {
    let env = TestEnv::new();
    for args in [
        vec!["frobnicate"],
        vec!["workload", "push", "oci://localhost:5050/k8s", "extra"],
    ] {
        let output = env.ksail(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr_lines(&output).len(), 1, "{args:?}");
        assert!(stderr_lines(&output)[0].starts_with("error: "));
    }
}

#[test]
fn b15_quiet_and_verbose_together_exit_2() {
    let env = TestEnv::new();
    usage_error(&env, &["-q", "-v", "workload", "push"], "--quiet");
}

#[test]
fn b14_validate_and_no_validate_together_exit_2() {
    let env = TestEnv::new();
    let before = env.tree_hash();
    usage_error(
        &env,
        &["workload", "push", "--validate", "--no-validate"],
        "--no-validate",
    );
    assert_eq!(env.tree_hash(), before);
}

#[test]
fn global_flags_are_accepted_before_and_after_the_subcommand() {
    let env = TestEnv::new();
    for args in [
        vec!["--no-color", "workload", "push", "--help"],
        vec!["workload", "push", "--help", "--no-color"],
    ] {
        let output = env.ksail(&args).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{args:?}");
    }
}
