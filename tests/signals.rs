//! Signals (cli.md#signals): the first SIGINT or SIGTERM stops the push, removes its temporary
//! files and exits 130; the tag is never left pointing at missing blobs. A push killed outright
//! (SIGKILL) cannot clean up: the next push removes its layer file.
#![allow(unsafe_code)] // signals and getrusage are libc calls; denied everywhere else

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Action, FaultScript, Proxy, TestEnv, http};

/// How an interrupted push ended.
struct Interrupted {
    code: Option<i32>,
    stderr: String,
    /// Files left in `TMPDIR` and in the layer scratch directory (`<cache>/ksail/tmp`).
    leftovers: Vec<String>,
    env: TestEnv,
    registry: support::Registry,
}

/// The files in `dir` (none when it does not exist).
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default()
}

fn scratch_dir(env: &TestEnv) -> std::path::PathBuf {
    env.xdg_cache().join("ksail/tmp")
}

/// Push through a proxy that stalls the manifest PUT and signal the child once the PUT has
/// arrived; `None` when registry tests are skipped.
fn interrupt_during_manifest_put(signal: i32) -> Option<Interrupted> {
    let registry = support::registry::start_or_skip(support::RegistryKind::Plain, "signals")?;
    let script = FaultScript::new().when(
        |request| request.method == "PUT" && request.path_only().contains("/manifests/"),
        1..,
        Action::Stall(Duration::from_secs(30)),
    );
    let proxy = Proxy::with_script(&registry.host_port(), script);
    let env = TestEnv::new();
    env.write(
        "k8s/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let tmp = env.root().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut child = env
        .ksail_process([
            "workload",
            "push",
            &format!("oci://{}/k8s:v1", proxy.host_port()),
        ])
        .env("TMPDIR", &tmp)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while !proxy
        .requests()
        .iter()
        .any(|r| r.method == "PUT" && r.path.contains("/manifests/"))
    {
        assert!(Instant::now() < deadline, "the manifest PUT never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill only sends a signal to our own child process.
    let rc = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(rc, 0);
    let output = wait_bounded(&mut child, Duration::from_secs(20));
    let (status, manifest, _) = http::fetch_manifest(&registry.host_port(), "k8s", "v1");
    assert_eq!(
        status, 404,
        "the tag must not exist after an interrupted push: {manifest:?}"
    );
    let leftovers = files_in(&tmp)
        .into_iter()
        .chain(files_in(&scratch_dir(&env)))
        .map(|path| path.display().to_string())
        .collect();
    Some(Interrupted {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        leftovers,
        env,
        registry,
    })
}

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ksail did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    std::process::Output {
        status: child.wait().unwrap(),
        stdout,
        stderr,
    }
}

#[test]
fn sigint_during_push_exits_130_and_leaves_no_temp_files() {
    let Some(run) = interrupt_during_manifest_put(libc::SIGINT) else {
        return;
    };
    assert_eq!(run.code, Some(130), "stderr:\n{}", run.stderr);
    assert_eq!(run.stderr.lines().last(), Some("error: interrupted"));
    assert!(
        run.leftovers.is_empty(),
        "temporary files left behind: {:?}",
        run.leftovers
    );
}

#[test]
fn sigterm_during_push_exits_130() {
    let Some(run) = interrupt_during_manifest_put(libc::SIGTERM) else {
        return;
    };
    assert_eq!(run.code, Some(130), "stderr:\n{}", run.stderr);
    assert!(
        run.leftovers.is_empty(),
        "temporary files left behind: {:?}",
        run.leftovers
    );
}

/// `kill -9` leaves the layer file (nothing runs in a killed process); the next push finds it,
/// sees that no live process holds its lock, and removes it.
#[test]
fn the_layer_file_of_a_killed_push_is_removed_by_the_next_push() {
    let Some(run) = interrupt_during_manifest_put(libc::SIGKILL) else {
        return;
    };
    assert_eq!(run.code, None, "killed by the signal");
    let left = files_in(&scratch_dir(&run.env));
    assert_eq!(
        left.len(),
        1,
        "the killed push's layer file stays: {left:?}"
    );
    // A file younger than a second may be between its creation and its lock, and is spared.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&left[0])
        .unwrap();
    file.set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
        .unwrap();

    run.env.write(
        "k8s/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
    );
    let next = run
        .env
        .ksail([
            "workload",
            "push",
            &format!("oci://{}/k8s:v1", run.registry.host_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(
        files_in(&scratch_dir(&run.env)),
        Vec::<std::path::PathBuf>::new()
    );
}

/// A signal while ksail.yaml is being loaded: loading a large file runs in the command's own
/// task, which the signal cannot drop, so the parse asks `interrupt::requested()` and stops. The
/// file ends in a syntax error: a run that finished loading it would exit 2 instead of 130.
#[test]
fn sigint_while_loading_a_large_ksail_yaml_exits_130() {
    let env = TestEnv::new();
    let mut config = String::from("apiVersion: ksail.io/v1alpha1\nkind: Cluster\nx-padding:\n");
    for key in 0..400_000 {
        config.push_str(&format!("  key{key}: value{key}\n"));
    }
    config.push_str("spec: [\n");
    env.write("ksail.yaml", &config);
    let mut child = env
        .ksail_process(["workload", "push", "oci://127.0.0.1:1/k8s:dev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Long enough for the signal handlers to be in place, well within the load of this file.
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill only sends a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = wait_bounded(&mut child, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "stderr:\n{stderr}");
    assert_eq!(stderr.lines().last(), Some("error: interrupted"));
}
