//! Support library for ksail's integration tests (testing.md).
//!
//! Every test file does `mod support;` and runs the real `ksail` binary through [`TestEnv`]
//! against what lives here: a real registry ([`Registry`]), a recording / fault-injecting proxy
//! ([`Proxy`]), a self-signed HTTPS listener ([`TlsListener`]) and fake executables. Registry
//! contents are checked with the hand-written client in [`http`], never with ksail's own code.
//!
//! Each test binary compiles all of this, and none uses all of it.
//!
//! ```ignore
//! mod support;
//! use support::{http, Proxy, TestEnv};
//!
//! #[test]
//! fn push_first_time_is_get_head_upload_head_upload_put() {
//!     let registry = require_registry!();            // or require_registry!(RegistryKind::Auth { users: &[("u", "p")] })
//!     let proxy = Proxy::start(&registry.host_port()); // records (method, path, status)
//!     let env = TestEnv::new();
//!     env.write("k8s/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n");
//!     let output = env.ksail(["workload", "push", "--registry", &proxy.host_port()]).output().unwrap();
//!     let (status, manifest, digest) = http::fetch_manifest(&registry.host_port(), "k8s", "dev");
//!     // proxy.requests(), proxy.fail_when(|r| r.method == "PUT" && r.path.contains("/manifests/")),
//!     // Proxy::with_script(upstream, FaultScript::new().on_requests(1..=2, Action::Status(503, None)))
//! }
//! ```
#![allow(dead_code, unused_imports, unused_macros)]

pub mod env;
pub mod fake_cluster;
pub mod fake_tools;
pub mod fakes;
pub mod faults;
pub mod http;
pub mod measure;
pub mod output;
pub mod proxy;
pub mod push;
pub mod real;
pub mod registry;
pub mod schemas;
pub mod tls;
pub mod watch;
pub mod wire;

pub use env::TestEnv;
pub use faults::{Action, FaultScript, RequestInfo};
pub use output::{
    assert_case_exit, assert_error_line, assert_exit, assert_no_ansi, assert_no_secret,
    assert_no_warning, assert_progress_line, assert_success, attempt_warnings, describe,
    has_timestamp_prefix, last_stderr_line, progress_lines, stderr_lines, stderr_text,
    stdout_lines, stdout_text, strip_timestamp, timestamped_lines, timestamped_warnings,
    warning_lines,
};
pub use proxy::{FaultProxy, Proxy, Recorded, RecordingProxy};
pub use registry::{Registry, RegistryError, RegistryKind};
pub use tls::TlsListener;

/// The name of the enclosing test function, without the crate name (`module::test_fn`).
#[macro_export]
macro_rules! test_name {
    () => {{
        fn here() {}
        fn name_of<T>(_: T) -> &'static str {
            ::std::any::type_name::<T>()
        }
        $crate::support::clean_test_name(name_of(here))
    }};
}

/// Starts a registry for this test, or returns from the test when `KSAIL_TEST_SKIP_REGISTRY=1`
/// (printing `skipped: <test name>: KSAIL_TEST_SKIP_REGISTRY=1`). Panics with the prescribed
/// message when `docker-registry` is missing.
///
/// `let registry = require_registry!();` or `require_registry!(RegistryKind::Auth { users })`.
#[macro_export]
macro_rules! require_registry {
    () => {
        $crate::require_registry!($crate::support::RegistryKind::Plain)
    };
    ($kind:expr) => {
        match $crate::support::registry::start_or_skip($kind, &$crate::test_name!()) {
            ::std::option::Option::Some(registry) => registry,
            ::std::option::Option::None => return,
        }
    };
}

/// Starts a registry as [`require_registry!`] does and seeds `k8s:dev` with one `layer`;
/// `(registry, host:port, digest)`.
#[macro_export]
macro_rules! registry_with_dev {
    ($layer:expr) => {{
        let registry = $crate::require_registry!();
        let host = registry.host_port();
        let digest = $crate::support::http::seed_image(&host, "k8s", "dev", $layer, &[], None);
        (registry, host, digest)
    }};
}

/// Starts a registry as [`require_registry!`] does, behind a recording [`Proxy`];
/// `(registry, proxy)`.
#[macro_export]
macro_rules! proxied_registry {
    () => {{
        let registry = $crate::require_registry!();
        let proxy = $crate::support::Proxy::start(&registry.host_port());
        (registry, proxy)
    }};
}

/// Starts a plain registry as [`require_registry!`] does and an empty project;
/// `(registry, host:port, env)`.
#[macro_export]
macro_rules! registry_and_env {
    () => {{
        let registry = $crate::require_registry!();
        let host = registry.host_port();
        (registry, host, $crate::support::TestEnv::new())
    }};
}

/// Starts a registry as [`require_registry!`] does (plain, or of the given kind) and a project
/// with one valid manifest under `k8s/` ([`push::env_with_manifests`]);
/// `(registry, host:port, env)`.
#[macro_export]
macro_rules! registry_and_manifests {
    () => {
        $crate::registry_and_manifests!($crate::support::RegistryKind::Plain)
    };
    ($kind:expr) => {{
        let registry = $crate::require_registry!($kind);
        let host = registry.host_port();
        let env = $crate::support::push::env_with_manifests();
        (registry, host, env)
    }};
}

/// `cluster init` for `engine` with `registry` as the local registry: how the tests' projects
/// start, as a user's would.
pub fn cluster_init_args<'a>(engine: &'a str, registry: &'a str) -> [&'a str; 6] {
    [
        "cluster",
        "init",
        "--gitops-engine",
        engine,
        "--local-registry",
        registry,
    ]
}

/// Turns `crate::module::test_fn::here` (as `type_name` spells it) into `module::test_fn`.
pub fn clean_test_name(type_name: &str) -> String {
    let segments: Vec<&str> = type_name
        .split("::")
        .filter(|s| *s != "{{closure}}")
        .collect();
    let without_here = match segments.split_last() {
        Some((&"here", rest)) => rest,
        _ => &segments[..],
    };
    // The first segment is the test crate's name, which libtest does not show.
    without_here.get(1..).unwrap_or_default().join("::")
}
