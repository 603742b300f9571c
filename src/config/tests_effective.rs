//! Precedence (the golden cases P1–P12 of config.md#golden-precedence-cases), environment
//! parsing, relative paths and the `-v` provenance lines.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::effective::ConfigPath;
use super::keys::FLUX_OPERATOR_VERSION;
use super::load::LoadedFile;
use super::tests::{env_of, parse};
use super::*;
use crate::yaml::Pos;

const HEAD: &str = "apiVersion: ksail.io/v1alpha1\nkind: Cluster\n";

fn file(body: &str, pairs: &[(&str, &str)]) -> LoadedFile {
    let mut loaded = parse(&format!("{HEAD}{body}"), pairs).expect("valid file");
    loaded.path = PathBuf::from("/proj/ksail.yaml");
    loaded.dir = PathBuf::from("/proj");
    loaded
}

fn resolve(
    file: Option<&LoadedFile>,
    pairs: &[(&str, &str)],
    flags: &FlagOverrides,
) -> Result<Effective, ConfigError> {
    effective(file, &env_of(pairs), flags, Path::new("/proj/sub"))
}

fn settings(file: Option<&LoadedFile>, pairs: &[(&str, &str)], flags: &FlagOverrides) -> Effective {
    resolve(file, pairs, flags).expect("valid settings")
}

/// The settings of the file [`HEAD`] + `body` with the variables `pairs` and `flags`.
fn settings_of(body: &str, pairs: &[(&str, &str)], flags: &FlagOverrides) -> Effective {
    settings(Some(&file(body, &[])), pairs, flags)
}

fn sourced<T>(value: T, source: Source) -> Sourced<T> {
    Sourced { value, source }
}

fn config_path(written: &str, resolved: &str) -> ConfigPath {
    ConfigPath {
        written: written.to_string(),
        resolved: PathBuf::from(resolved),
    }
}

fn no_flags() -> FlagOverrides {
    FlagOverrides::default()
}

const TAG_V1: &str = "spec:\n  workload:\n    tag: v1\n";

fn tag(effective: &Effective) -> Option<(&str, &Source)> {
    effective
        .tag
        .as_ref()
        .map(|tag| (tag.value.as_str(), &tag.source))
}

#[test]
fn p1_file_value() {
    let effective = settings_of(TAG_V1, &[], &no_flags());
    assert_eq!(
        tag(&effective),
        Some((
            "v1",
            &Source::File(Pos {
                line: 5,
                column: 10
            })
        ))
    );
}

#[test]
fn p2_env_beats_file() {
    let effective = settings_of(TAG_V1, &[("KSAIL_SPEC_WORKLOAD_TAG", "v2")], &no_flags());
    assert_eq!(
        tag(&effective),
        Some(("v2", &Source::Env("KSAIL_SPEC_WORKLOAD_TAG".into())))
    );
}

#[test]
fn p3_empty_env_counts_as_unset() {
    let effective = settings_of(TAG_V1, &[("KSAIL_SPEC_WORKLOAD_TAG", "")], &no_flags());
    assert_eq!(tag(&effective).map(|(value, _)| value), Some("v1"));
}

#[test]
fn p4_flag_beats_env_and_file() {
    let flags = FlagOverrides {
        gitops_engine: Some("ArgoCD".into()),
        ..no_flags()
    };
    let effective = settings_of(
        "spec:\n  cluster:\n    gitOpsEngine: None\n",
        &[("KSAIL_SPEC_CLUSTER_GITOPSENGINE", "Flux")],
        &flags,
    );
    assert_eq!(
        effective.gitops_engine,
        sourced(GitOpsEngine::ArgoCD, Source::Flag("--gitops-engine"))
    );
}

#[test]
fn p5_alias_beats_file() {
    let effective = settings_of(
        "spec:\n  cluster:\n    distribution: Vanilla\n",
        &[("KSAIL_SPEC_DISTRIBUTION", "K3s")],
        &no_flags(),
    );
    assert_eq!(
        effective.distribution,
        sourced(
            Distribution::K3s,
            Source::Env("KSAIL_SPEC_DISTRIBUTION".into())
        )
    );
}

#[test]
fn p6_canonical_beats_alias() {
    let env = [
        ("KSAIL_SPEC_CLUSTER_DISTRIBUTION", "k3s"),
        ("KSAIL_SPEC_DISTRIBUTION", "Vanilla"),
    ];
    let effective = settings(None, &env, &no_flags());
    assert_eq!(
        effective.distribution,
        sourced(
            Distribution::K3s,
            Source::Env("KSAIL_SPEC_CLUSTER_DISTRIBUTION".into())
        )
    );
}

#[test]
fn p7_gitops_engine_defaults_the_registry() {
    let registry = settings_of(
        "spec:\n  cluster:\n    gitOpsEngine: Flux\n",
        &[],
        &no_flags(),
    )
    .registry
    .unwrap();
    assert_eq!(
        registry,
        sourced("localhost:5050".to_string(), Source::Default)
    );
}

#[test]
fn p8_flag_registry_beats_the_gitops_default() {
    let flags = FlagOverrides {
        local_registry: Some("localhost:6000".into()),
        ..no_flags()
    };
    let registry = settings_of("spec:\n  cluster:\n    gitOpsEngine: Flux\n", &[], &flags)
        .registry
        .unwrap();
    assert_eq!(
        registry,
        sourced(
            "localhost:6000".to_string(),
            Source::Flag("--local-registry")
        )
    );
}

#[test]
fn p9_no_engine_no_registry() {
    assert_eq!(
        settings_of(
            "spec:\n  cluster:\n    gitOpsEngine: None\n",
            &[],
            &no_flags()
        )
        .registry,
        None
    );
}

#[test]
fn p10_no_validate_flag_beats_env() {
    let flags = FlagOverrides {
        validate_on_push: Some(false),
        ..no_flags()
    };
    let env = [("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", "true")];
    let validate = settings(None, &env, &flags).validate_on_push;
    assert_eq!(validate, sourced(false, Source::Flag("--no-validate")));
}

#[test]
fn p11_unparsable_env_boolean_names_the_variable() {
    let env = [("KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH", "maybe")];
    let error = resolve(None, &env, &no_flags()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH: invalid boolean \"maybe\"; use true or false"
    );
    let failure: crate::error::Failure = error.into();
    assert_eq!(failure.class.exit_code(), 2);
}

#[test]
fn p12_validate_flag_beats_file() {
    let flags = FlagOverrides {
        validate_on_push: Some(true),
        ..no_flags()
    };
    let validate = settings_of(
        "spec:\n  workload:\n    validateOnPush: false\n",
        &[],
        &flags,
    )
    .validate_on_push;
    assert_eq!(validate, sourced(true, Source::Flag("--validate")));
}

#[test]
fn defaults_without_a_file() {
    let effective = settings(None, &[("HOME", "/home/u")], &no_flags());
    assert_eq!(effective.distribution.value, Distribution::Vanilla);
    assert_eq!(effective.gitops_engine.value, GitOpsEngine::None);
    assert!(effective.validate_on_push.value);
    assert!(!effective.insecure.value);
    assert_eq!(effective.timeout, None);
    assert_eq!(effective.name, None);
    assert_eq!(
        effective.source_directory.value,
        config_path("k8s", "/proj/sub/k8s")
    );
    let config = effective.distribution_config.unwrap();
    assert_eq!(config.value.resolved, Path::new("/proj/sub/kind.yaml"));
    assert_eq!(
        effective.kubeconfig.value[0].resolved,
        Path::new("/home/u/.kube/config")
    );
    assert_eq!(effective.flux_operator_version.value, FLUX_OPERATOR_VERSION);
    assert_eq!(effective.flux_distribution_version.value, "2.x");
    assert_eq!(
        settings(None, &[], &no_flags()).provenance_lines(),
        ["config: no ksail.yaml found; using defaults"]
    );
}

#[test]
fn relative_paths_resolve_against_their_source() {
    let loaded = file(
        "spec:\n  cluster:\n    distribution: K3s\n  workload:\n    sourceDirectory: manifests\n",
        &[],
    );
    let effective = settings(Some(&loaded), &[], &no_flags());
    assert_eq!(
        effective.source_directory.value.resolved,
        Path::new("/proj/manifests")
    );
    // Defaults resolve against the ksail.yaml directory when there is one.
    let config = effective.distribution_config.unwrap();
    assert_eq!(config.value, config_path("k3d.yaml", "/proj/k3d.yaml"));
    let env = [
        ("KSAIL_SPEC_SOURCEDIRECTORY", "deploy"),
        ("HOME", "/home/u"),
    ];
    let flags = FlagOverrides {
        distribution_config: Some("~/k3d.yaml".into()),
        ..no_flags()
    };
    let effective = settings(Some(&loaded), &env, &flags);
    assert_eq!(
        effective.source_directory.value,
        config_path("deploy", "/proj/sub/deploy")
    );
    let config = effective.distribution_config.unwrap();
    assert_eq!(config.value.resolved, Path::new("/home/u/k3d.yaml"));
    assert_eq!(config.source, Source::Flag("--distribution-config"));
}

#[test]
fn kubeconfig_order_and_lists() {
    let loaded = file(
        "spec:\n  cluster:\n    connection:\n      kubeconfig: kube/a:kube/b\n",
        &[],
    );
    let paths = |effective: &Effective| -> Vec<PathBuf> {
        effective
            .kubeconfig
            .value
            .iter()
            .map(|p| p.resolved.clone())
            .collect()
    };
    let from_file = settings(Some(&loaded), &[], &no_flags());
    assert_eq!(
        paths(&from_file),
        [PathBuf::from("/proj/kube/a"), PathBuf::from("/proj/kube/b")]
    );
    let env = [("KUBECONFIG", "/k/one::/k/two")];
    let from_kubeconfig = settings(Some(&loaded), &env, &no_flags());
    assert_eq!(
        paths(&from_kubeconfig),
        [PathBuf::from("/k/one"), PathBuf::from("/k/two")]
    );
    assert_eq!(
        from_kubeconfig.kubeconfig.source,
        Source::Env("KUBECONFIG".into())
    );
    let env = [
        ("KUBECONFIG", "/k/one"),
        ("KSAIL_SPEC_CONNECTION_KUBECONFIG", "/k/alias"),
    ];
    let from_alias = settings(Some(&loaded), &env, &no_flags());
    assert_eq!(paths(&from_alias), [PathBuf::from("/k/alias")]);
}

#[test]
fn env_values_are_parsed_but_never_expanded() {
    let env = [
        ("KSAIL_SPEC_CLUSTER_CONNECTION_CONTEXT", "${CTX}"),
        ("CTX", "kind-x"),
        ("KSAIL_SPEC_CONNECTION_TIMEOUT", "1h30m"),
        ("KSAIL_SPEC_CLUSTER_LOCALREGISTRY_INSECURE", "TRUE"),
        ("KSAIL_SPEC_CLUSTER_GITOPSENGINE", "argocd"),
        ("KSAIL_SPEC_WORKLOAD_FLUX_OPERATORVERSION", "v1.2.3"),
    ];
    let effective = settings(None, &env, &no_flags());
    assert_eq!(effective.context.unwrap().value, "${CTX}");
    assert_eq!(effective.timeout.unwrap().value, Duration::from_secs(5_400));
    assert!(effective.insecure.value);
    assert_eq!(effective.gitops_engine.value, GitOpsEngine::ArgoCD);
    assert_eq!(effective.flux_operator_version.value, "1.2.3");
}

#[test]
fn env_and_flag_errors_name_their_source() {
    let error = |pairs: &[(&str, &str)], flags: &FlagOverrides| {
        resolve(None, pairs, flags).unwrap_err().to_string()
    };
    assert_eq!(
        error(&[("KSAIL_METADATA_NAME", "Bad_Name")], &no_flags()),
        "environment variable KSAIL_METADATA_NAME: invalid metadata.name \"Bad_Name\" (a DNS-1123 label: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most 63 characters); choose a name such as my-cluster"
    );
    assert_eq!(
        error(&[("KSAIL_SPEC_CLUSTER_GITOPSENGINE", "Fluxx")], &no_flags()),
        "environment variable KSAIL_SPEC_CLUSTER_GITOPSENGINE: unknown value \"Fluxx\" (expected None, Flux or ArgoCD); fix the value"
    );
    let secret = error(
        &[(
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_CREDENTIALS_TOKENENVVAR",
            "ghp-s3cret",
        )],
        &no_flags(),
    );
    assert!(secret.starts_with("environment variable KSAIL_SPEC_CLUSTER_LOCALREGISTRY_CREDENTIALS_TOKENENVVAR: invalid environment variable name"));
    assert!(!secret.contains("s3cret"));
    let flags = FlagOverrides {
        timeout: Some("0s".into()),
        ..no_flags()
    };
    assert_eq!(
        error(&[], &flags),
        "flag --timeout: duration \"0s\" must be greater than zero; use a positive value such as 5m"
    );
}

#[test]
fn registry_errors_can_name_the_file_position_and_expansion() {
    let body =
        "spec:\n  cluster:\n    localRegistry:\n      registry: ci:${TOKEN}@ghcr.io:x/acme\n";
    let loaded = file(body, &[("TOKEN", "s3cret")]);
    let effective = settings(Some(&loaded), &[], &no_flags());
    let registry = effective.registry.clone().unwrap();
    assert_eq!(registry.value, "ci:s3cret@ghcr.io:x/acme");
    let error = effective.value_error(
        Key::Registry,
        &registry.source,
        "invalid port \"x\"",
        "fix the port",
    );
    assert_eq!(
        error.to_string(),
        "ksail.yaml:6:17: spec.cluster.localRegistry.registry: invalid port \"x\" (after expanding ${TOKEN}); fix the port"
    );
    let from_env = Source::Env("KSAIL_SPEC_CLUSTER_LOCALREGISTRY_REGISTRY".into());
    assert_eq!(
        effective.origin(Key::Registry, &from_env),
        "environment variable KSAIL_SPEC_CLUSTER_LOCALREGISTRY_REGISTRY"
    );
    assert_eq!(
        effective.origin(Key::Registry, &Source::Flag("--local-registry")),
        "flag --local-registry"
    );
}

#[test]
fn provenance_lines_name_sources_and_redact_passwords() {
    let body = "spec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: ci:${TOKEN}@ghcr.io/acme/app\n";
    let loaded = file(body, &[("TOKEN", "s3cret")]);
    let flags = FlagOverrides {
        timeout: Some("90s".into()),
        validate_on_push: Some(false),
        ..no_flags()
    };
    let lines =
        settings(Some(&loaded), &[("KSAIL_SPEC_WORKLOAD_TAG", "v1")], &flags).provenance_lines();
    assert_eq!(
        lines,
        [
            "config: spec.cluster.gitOpsEngine = \"Flux\" (from ksail.yaml)",
            "config: spec.cluster.localRegistry.registry = \"ci:<redacted>@ghcr.io/acme/app\" (from ksail.yaml)",
            "config: spec.cluster.connection.timeout = \"1m30s\" (from flag --timeout)",
            "config: spec.workload.tag = \"v1\" (from env KSAIL_SPEC_WORKLOAD_TAG)",
            "config: spec.workload.validateOnPush = false (from flag --no-validate)",
        ]
    );
    assert!(lines.iter().all(|line| !line.contains("s3cret")));
}
