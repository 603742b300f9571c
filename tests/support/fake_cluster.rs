//! A fake API server with an isolated ksail environment whose kubeconfig (context `kind-kind`)
//! points at it: the set-up of the fake-tier reconcile tests.

use std::path::PathBuf;
use std::process::{Command, Output};

use std::sync::Arc;

use fake_apiserver::simulators::{FluxKustomization, FluxSource};
use fake_apiserver::{FakeApiServer, ServerOptions, fixtures};

use super::TestEnv;
use super::env::KSAIL_TIMEOUT;

/// The context of the kubeconfig [`FakeCluster`] writes.
pub const CONTEXT: &str = "kind-kind";
/// The collection path of Flux Kustomizations.
pub const KS_PATH: &str = "/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations";
/// The content type of every patch ksail sends.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// Shortened HelmRelease-recovery (reset wait, observe, resume) and diagnostics budgets, in ms,
/// for runs that do not test them.
pub const SHORT_BUDGETS: [(&str, &str); 4] = [
    ("KSAIL_TEST_RESET_WAIT_MS", "200"),
    ("KSAIL_TEST_SUSPEND_OBSERVE_MS", "200"),
    ("KSAIL_TEST_RESUME_BUDGET_MS", "500"),
    ("KSAIL_TEST_DIAGNOSTICS_BUDGET_MS", "1000"),
];

/// `struct $name(FakeCluster)`, dereferencing to the cluster, for a test file's own helpers.
#[macro_export]
macro_rules! cluster_rig {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        struct $name($crate::support::fake_cluster::FakeCluster);

        impl ::std::ops::Deref for $name {
            type Target = $crate::support::fake_cluster::FakeCluster;

            fn deref(&self) -> &Self::Target {
                &self.0
            }
        }
    };
}

/// One fake cluster plus an isolated ksail environment whose kubeconfig points at it.
pub struct FakeCluster {
    pub env: TestEnv,
    pub server: FakeApiServer,
    pub kubeconfig: PathBuf,
}

impl FakeCluster {
    /// Starts the server and writes `<tmp>/kubeconfig`; with `bucket`, the server also serves
    /// Bucket at `source.toolkit.fluxcd.io/v1`, as a real source-controller (Flux ≥ 2.5) does —
    /// ksail lists every served source kind.
    pub fn start(options: ServerOptions, bucket: bool) -> FakeCluster {
        let server = FakeApiServer::start(options);
        if bucket {
            server.register_crd(
                "source.toolkit.fluxcd.io",
                "v1",
                "Bucket",
                "buckets",
                true,
                true,
            );
        }
        FakeCluster::around(server)
    }

    /// A Flux cluster for runs with `gitOpsEngine: None` (the engine detected, no registry, no
    /// revision gate): the sync source `flux-system/flux-system` (for `k8s:dev` in the local
    /// registry), and a source controller serving `digest` and a kustomize controller that answer
    /// at once.
    pub fn flux_detected(digest: &str) -> (FakeCluster, Arc<FluxKustomization>) {
        let cluster = FakeCluster::start(ServerOptions::flux(), true);
        cluster.engine("None");
        cluster.server.put_object(fixtures::oci_repository(
            "flux-system",
            "flux-system",
            "oci://kind-local-registry:5000/k8s",
            "dev",
        ));
        cluster.server.add_simulator(FluxSource::new(0, digest));
        let kustomize = FluxKustomization::new(0);
        cluster.server.add_simulator(kustomize.clone());
        (cluster, kustomize)
    }

    /// A fresh environment whose `<tmp>/kubeconfig` points at `server`.
    pub fn around(server: FakeApiServer) -> FakeCluster {
        let env = TestEnv::new();
        let kubeconfig = env.root().join("kubeconfig");
        server
            .write_kubeconfig(&kubeconfig, &[CONTEXT], None)
            .expect("write the kubeconfig");
        FakeCluster {
            env,
            server,
            kubeconfig,
        }
    }

    /// Writes `ksail.yaml` with `gitOpsEngine: <engine>` and nothing else.
    pub fn engine(&self, engine: &str) {
        self.env.write(
            "ksail.yaml",
            format!(
                "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: {engine}\n"
            ),
        );
    }

    /// `ksail workload reconcile <args>` with [`SHORT_BUDGETS`], then `vars`, run to its end.
    pub fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        self.reconcile(args, &[&SHORT_BUDGETS[..], vars].concat())
            .output()
            .expect("run ksail")
    }

    /// `ksail workload reconcile <args>` with `KUBECONFIG` at this cluster and `vars` set, as
    /// [`TestEnv::ksail`] runs it.
    pub fn reconcile(&self, args: &[&str], vars: &[(&str, &str)]) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.reconcile_process(args, vars));
        cmd.timeout(KSAIL_TIMEOUT);
        cmd
    }

    /// [`FakeCluster::reconcile`] as a plain `std::process::Command` (see
    /// [`TestEnv::ksail_process`]).
    pub fn reconcile_process(&self, args: &[&str], vars: &[(&str, &str)]) -> Command {
        let mut full = vec!["workload", "reconcile"];
        full.extend_from_slice(args);
        let mut cmd = self.env.ksail_process(full);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .envs(vars.iter().copied());
        cmd
    }
}
