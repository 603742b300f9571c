//! Signals (cli.md#signals): the first SIGINT or SIGTERM stops the push, removes its temporary
//! files and exits 130; the tag is never left pointing at missing blobs.
#![allow(unsafe_code)] // signals and getrusage are libc calls; denied everywhere else

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Action, FaultScript, Proxy, TestEnv, http};

/// Push through a proxy that stalls the manifest PUT, signal the child once the PUT has arrived,
/// and return (exit code, stderr, leftover temp files); `None` when registry tests are skipped.
fn interrupt_during_manifest_put(signal: i32) -> Option<(Option<i32>, String, Vec<String>)> {
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
    let leftovers = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    Some((
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        leftovers,
    ))
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
    let Some((code, stderr, leftovers)) = interrupt_during_manifest_put(libc::SIGINT) else {
        return;
    };
    assert_eq!(code, Some(130), "stderr:\n{stderr}");
    assert_eq!(stderr.lines().last(), Some("error: interrupted"));
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn sigterm_during_push_exits_130() {
    let Some((code, stderr, leftovers)) = interrupt_during_manifest_put(libc::SIGTERM) else {
        return;
    };
    assert_eq!(code, Some(130), "stderr:\n{stderr}");
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}
