//! A fake API server with an isolated ksail environment whose kubeconfig (context `kind-kind`)
//! points at it: the set-up of the fake-tier reconcile tests.

use std::path::PathBuf;

use fake_apiserver::{FakeApiServer, ServerOptions};

use super::TestEnv;

/// The context of the kubeconfig [`start`] writes.
pub const CONTEXT: &str = "kind-kind";

/// Starts the server, writes `<tmp>/kubeconfig`; with `bucket`, the server also serves Bucket at
/// `source.toolkit.fluxcd.io/v1`, as a real source-controller (Flux ≥ 2.5) does — ksail lists
/// every served source kind.
pub fn start(options: ServerOptions, bucket: bool) -> (TestEnv, FakeApiServer, PathBuf) {
    let env = TestEnv::new();
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
    let kubeconfig = env.root().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig, &[CONTEXT], None)
        .expect("write the kubeconfig");
    (env, server, kubeconfig)
}
