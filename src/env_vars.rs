//! Every environment variable ksail reads, in one place (cli.md#environment-variables).
//!
//! The `KSAIL_SPEC_…` override names live with the key table in `config`, because they are derived
//! from the key paths.

/// Same as `--config`.
pub const KSAIL_CONFIG: &str = "KSAIL_CONFIG";
/// Same as `workload push --registry`.
pub const KSAIL_REGISTRY: &str = "KSAIL_REGISTRY";
/// The registry password of a project whose `cluster init` was given a literal one. ksail never
/// reads it by this name: init writes the reference `${KSAIL_REGISTRY_PASSWORD}` into ksail.yaml
/// in place of the password, and the file's `${VAR}` expansion reads it.
pub const KSAIL_REGISTRY_PASSWORD: &str = "KSAIL_REGISTRY_PASSWORD";
/// A `tracing` filter directive that replaces the one chosen by `-v`.
pub const KSAIL_LOG: &str = "KSAIL_LOG";
/// Set by the PowerShell and Elvish completion scripts when they call ksail back for candidates
/// (`ksail completion`); ksail then prints candidates instead of running a command. ksail's own
/// name, so that a `COMPLETE` variable meant for another program never changes what ksail does.
pub const KSAIL_COMPLETE: &str = "KSAIL_COMPLETE";
/// Disables colour when set to a non-empty value (<https://no-color.org>).
pub const NO_COLOR: &str = "NO_COLOR";
/// Kubeconfig path list, as for kubectl.
pub const KUBECONFIG: &str = "KUBECONFIG";
/// Seconds since the epoch used for the artifact's `created` annotation.
pub const SOURCE_DATE_EPOCH: &str = "SOURCE_DATE_EPOCH";
/// Directory holding the docker `config.json`.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Home directory, for `~/` expansion and `~/.docker`.
pub const HOME: &str = "HOME";
/// Cache directory root (the layer cache lives in `$XDG_CACHE_HOME/ksail`).
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";
/// Where `kind`, `k3d`, `docker` and docker credential helpers are looked up.
pub const PATH: &str = "PATH";
/// File path or URL of the flux-operator install manifest (air-gapped mirrors, tests).
pub const KSAIL_FLUX_OPERATOR_MANIFEST: &str = "KSAIL_FLUX_OPERATOR_MANIFEST";
/// File path or URL of the Argo CD install manifest (air-gapped mirrors, tests).
pub const KSAIL_ARGOCD_MANIFEST: &str = "KSAIL_ARGOCD_MANIFEST";

/// Test-only knobs (testing.md#test-only-environment-variables). Not part of the user interface:
/// they exist so that the test suite never sleeps for seconds.
pub mod test_only {
    /// Attempts for push and reconcile (1–10). Default 3.
    pub const RETRY_ATTEMPTS: &str = "KSAIL_TEST_RETRY_ATTEMPTS";
    /// First back-off delay in milliseconds. Default 5000.
    pub const RETRY_BASE_MS: &str = "KSAIL_TEST_RETRY_BASE_MS";
    /// Back-off cap in milliseconds. Default 30000.
    pub const RETRY_CAP_MS: &str = "KSAIL_TEST_RETRY_CAP_MS";
    /// HelmRelease reset-request wait in milliseconds. Default 10000.
    pub const RESET_WAIT_MS: &str = "KSAIL_TEST_RESET_WAIT_MS";
    /// HelmRelease suspend-observation bound in milliseconds. Default 10000.
    pub const SUSPEND_OBSERVE_MS: &str = "KSAIL_TEST_SUSPEND_OBSERVE_MS";
    /// HelmRelease resume budget in milliseconds. Default 30000.
    pub const RESUME_BUDGET_MS: &str = "KSAIL_TEST_RESUME_BUDGET_MS";
    /// Diagnostics budget in milliseconds. Default 15000.
    pub const DIAGNOSTICS_BUDGET_MS: &str = "KSAIL_TEST_DIAGNOSTICS_BUDGET_MS";
    /// A file every `--output json` document is appended to, one per line, so that the test
    /// suite can check each one against its schema in `schemas/`.
    pub const JSON_LOG: &str = "KSAIL_TEST_JSON_LOG";
}
