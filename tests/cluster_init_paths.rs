//! `ksail cluster init` writes only inside its project directory (cluster.md#cluster-init):
//! a `--distribution-config`, `--source-directory` or `--kustomization-file` that leads outside
//! it — by `..`, as an absolute path, or through a symlink — exits 2 with one error line and
//! changes no file anywhere, inside or outside. Paths inside it stay allowed.
//!
//! Every test works in `work/proj`, so that what would escape lands in `work/` or the test's
//! root, both covered by the tree hash.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use support::{TestEnv, assert_error_line, assert_success, stderr_lines, stdout_lines};

const OUTSIDE: &str = "# a file that is not init's\nkind: Cluster\n";

fn init(env: &TestEnv, args: &[&str]) -> Output {
    env.ksail(
        ["cluster", "init", "--directory", "proj"]
            .iter()
            .chain(args),
    )
    .output()
    .expect("run ksail cluster init")
}

/// The test root as the child sees it (no symlink on the way), and its project directory.
fn real_root(env: &TestEnv) -> (PathBuf, PathBuf) {
    let root = fs::canonicalize(env.root()).expect("canonical test root");
    let project = root.join("work/proj");
    (root, project)
}

/// `init --directory proj <args>` exits 2 with exactly `error: <line>` and changes nothing in
/// the whole test directory.
fn assert_refused(env: &TestEnv, args: &[&str], line: &str) {
    let before = env.tree_hash();
    let output = init(env, args);
    assert_eq!(output.status.code(), Some(2), "{args:?}");
    assert_error_line(&output, line);
    assert_eq!(
        stderr_lines(&output),
        [format!("error: {line}")],
        "{args:?}"
    );
    assert!(output.stdout.is_empty(), "{args:?}");
    assert_eq!(env.tree_hash(), before, "{args:?} changed a file");
}

#[test]
fn dot_dot_out_of_the_project_exits_2_and_writes_nothing() {
    let env = TestEnv::new();
    env.write("outside.yaml", OUTSIDE);
    let (root, project) = real_root(&env);
    let project = project.display();
    assert_refused(
        &env,
        &["--distribution-config", "../outside.yaml", "--force"],
        &format!(
            "flag --distribution-config: ../outside.yaml resolves to {}, outside the project directory {project}; init writes only inside it: give a path inside it",
            root.join("work/outside.yaml").display()
        ),
    );
    assert_refused(
        &env,
        &["-s", "../../escape"],
        &format!(
            "flag --source-directory: ../../escape resolves to {}, outside the project directory {project}; init writes only inside it: give a path inside it",
            root.join("escape").display()
        ),
    );
    assert_refused(
        &env,
        &["-s", "manifests/../../elsewhere"],
        &format!(
            "flag --source-directory: manifests/../../elsewhere resolves to {}, outside the project directory {project}; init writes only inside it: give a path inside it",
            root.join("work/elsewhere").display()
        ),
    );
    assert_refused(
        &env,
        &["--kustomization-file", "../../up"],
        "flag --kustomization-file: \"../../up\" has a '..' component; give a directory relative to the source directory, such as overlays/dev",
    );
    assert_eq!(
        fs::read_to_string(root.join("work/outside.yaml")).unwrap(),
        OUTSIDE
    );
    assert!(!root.join("escape").exists());
}

#[test]
fn absolute_paths_outside_the_project_exit_2_and_write_nothing() {
    let env = TestEnv::new();
    env.write("outside.yaml", OUTSIDE);
    let (root, project) = real_root(&env);
    let outside = root.join("work/outside.yaml").display().to_string();
    let elsewhere = root.join("elsewhere").display().to_string();
    let project = project.display();
    assert_refused(
        &env,
        &["--distribution-config", &outside, "--force"],
        &format!(
            "flag --distribution-config: {outside} is outside the project directory {project}; init writes only inside it: give a path inside it"
        ),
    );
    assert_refused(
        &env,
        &["-s", &elsewhere],
        &format!(
            "flag --source-directory: {elsewhere} is outside the project directory {project}; init writes only inside it: give a path inside it"
        ),
    );
    assert_refused(
        &env,
        &["--kustomization-file", &elsewhere],
        &format!(
            "flag --kustomization-file: \"{elsewhere}\" is an absolute path; give a directory relative to the source directory, such as overlays/dev"
        ),
    );
}

/// ksail.yaml reads a leading `~` as the home directory, so the file init wrote would not be the
/// one the project names.
#[test]
fn a_home_relative_path_exits_2_and_writes_nothing() {
    let env = TestEnv::new();
    let (_, project) = real_root(&env);
    assert_refused(
        &env,
        &["--distribution-config", "~/kind.yaml"],
        &format!(
            "flag --distribution-config: ~/kind.yaml starts with ~, which ksail.yaml reads as the home directory, outside the project directory {}; init writes only inside it: give a path inside it",
            project.display()
        ),
    );
}

#[test]
fn symlinks_out_of_the_project_exit_2_and_write_nothing() {
    let env = TestEnv::new();
    env.write("outside.yaml", OUTSIDE);
    env.mkdir("elsewhere");
    let (root, project) = real_root(&env);
    let elsewhere = root.join("work/elsewhere").display().to_string();
    let project = project.display();
    let through = |shown: &str, to: &str| {
        format!(
            "{shown} leads through a symlink to {to}, outside the project directory {project}; init writes only inside it: replace the symlink, or choose another path"
        )
    };

    // The default source directory is a link out: the kustomization would be created there.
    env.symlink("../elsewhere", "proj/k8s");
    assert_refused(&env, &[], &through("k8s", &elsewhere));
    assert_refused(
        &env,
        &["-s", "k8s"],
        &through("flag --source-directory: k8s", &elsewhere),
    );
    fs::remove_file(env.work().join("proj/k8s")).expect("remove the link");

    // A directory below the source directory is.
    env.symlink("../../elsewhere", "proj/k8s/overlays");
    assert_refused(
        &env,
        &["--kustomization-file", "overlays/dev"],
        &through(
            "flag --kustomization-file: k8s/overlays/dev/kustomization.yaml",
            &format!("{elsewhere}/dev/kustomization.yaml"),
        ),
    );

    // The distribution config's directory, and the file itself under --force.
    env.symlink("../elsewhere", "proj/clusters");
    assert_refused(
        &env,
        &["--distribution-config", "clusters/kind.yaml"],
        &through(
            "flag --distribution-config: clusters/kind.yaml",
            &format!("{elsewhere}/kind.yaml"),
        ),
    );
    env.symlink("../outside.yaml", "proj/kind.yaml");
    assert_refused(
        &env,
        &["--force"],
        &through(
            "kind.yaml",
            &root.join("work/outside.yaml").display().to_string(),
        ),
    );
    assert_eq!(
        fs::read_to_string(root.join("work/outside.yaml")).unwrap(),
        OUTSIDE
    );
    assert_eq!(
        fs::read_dir(root.join("work/elsewhere")).unwrap().count(),
        0
    );
}

#[test]
fn a_loop_of_symlinks_exits_2_and_writes_nothing() {
    let env = TestEnv::new();
    env.symlink("k8s", "proj/k8s");
    assert_refused(
        &env,
        &[],
        "k8s leads into a loop of symlinks; replace the symlink with a file or directory",
    );
}

/// Inside stays allowed: `..` that stays in, an absolute path in it, a symlink that stays in,
/// and a file init skips even though it links out (init does not write it).
#[test]
fn paths_inside_the_project_are_written() {
    let env = TestEnv::new();
    env.write("shared/kind.yaml", OUTSIDE);
    env.mkdir("proj/real-manifests");
    env.symlink("real-manifests", "proj/manifests");
    env.symlink("../shared/kind.yaml", "proj/kind.yaml");
    let (_, project) = real_root(&env);
    let config = project.join("clusters/dev.yaml").display().to_string();
    let output = init(&env, &["-s", "manifests/../manifests"]);
    assert_success(&output);
    assert_eq!(
        stdout_lines(&output),
        [
            "created proj/ksail.yaml",
            "skipped proj/kind.yaml (exists; use --force to overwrite)",
            "created proj/manifests/../manifests/kustomization.yaml",
            "initialized project in proj",
        ]
    );
    assert!(project.join("real-manifests/kustomization.yaml").is_file());

    let output = init(&env, &["--distribution-config", &config, "-s", "manifests"]);
    assert_success(&output);
    assert_eq!(stdout_lines(&output)[1], format!("created {config}"));
    assert_eq!(
        fs::read_to_string(env.work().join("shared/kind.yaml")).unwrap(),
        OUTSIDE
    );
}
