//! End-to-end: the seed's four commands against real Docker, kind and Flux (testing.md "Tiers").
//!
//! Opt-in with `KSAIL_E2E=1`; never needed for `cargo test` to pass, and it prints a `skipped:`
//! line otherwise. It needs Docker, `kind` on PATH and internet access (kind node image, the
//! flux-operator manifest and the Flux images). It uses its own kubeconfig, a unique cluster name
//! and a free registry port, and deletes the cluster at the end, also when an assertion fails:
//!
//! ```text
//! KSAIL_E2E=1 cargo test --test e2e -- --nocapture
//! ```

use std::path::Path;
use std::process::{Command, Output};

fn ksail(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_ksail"))
        .args(args)
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run ksail");
    eprintln!(
        "$ ksail {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Deletes the cluster however the test ends.
struct Cleanup<'a> {
    dir: &'a Path,
    kubeconfig: &'a Path,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = ksail(self.dir, self.kubeconfig, &["cluster", "delete"]);
    }
}

#[test]
fn e2e_seed_workflow_with_flux_on_kind() {
    if std::env::var("KSAIL_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: e2e_seed_workflow_with_flux_on_kind: set KSAIL_E2E=1 to run it");
        return;
    }
    let work = tempfile::tempdir().expect("temporary directory");
    let dir = work.path();
    let kubeconfig = dir.join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let name = format!("ksail-e2e-{}", std::process::id());
    let registry = format!("localhost:{port}");

    let init = ksail(
        dir,
        &kubeconfig,
        &[
            "cluster",
            "init",
            "--name",
            &name,
            "--gitops-engine",
            "Flux",
            "--local-registry",
            &registry,
        ],
    );
    assert!(init.status.success());
    let _cleanup = Cleanup {
        dir,
        kubeconfig: &kubeconfig,
    };
    assert!(
        ksail(dir, &kubeconfig, &["cluster", "create"])
            .status
            .success()
    );
    std::fs::write(
        dir.join("k8s/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - cm.yaml\n",
    )
    .expect("write kustomization");
    std::fs::write(
        dir.join("k8s/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ksail-e2e\n  namespace: default\n",
    )
    .expect("write manifest");
    assert!(
        ksail(dir, &kubeconfig, &["workload", "push"])
            .status
            .success()
    );
    let reconcile = ksail(
        dir,
        &kubeconfig,
        &["workload", "reconcile", "--timeout", "10m"],
    );
    assert!(reconcile.status.success());
    let update = ksail(dir, &kubeconfig, &["cluster", "update"]);
    assert!(update.status.success());
    assert_eq!(
        String::from_utf8_lossy(&update.stdout).trim(),
        "No changes detected"
    );
}
