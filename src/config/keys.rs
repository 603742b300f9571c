//! The one table of `ksail.yaml` keys that ksail acts on (config.md#keys): path, type, default,
//! environment names, expansion and validation. Loading, environment overrides, provenance lines
//! and the JSON schema are all driven by [`KEYS`], so they cannot disagree.

use std::fmt;

/// The Flux operator version installed when `spec.workload.flux.operatorVersion` is unset.
pub const FLUX_OPERATOR_VERSION: &str = "0.58.1";
/// The FluxInstance distribution version used when `spec.workload.flux.distributionVersion` is unset.
pub const FLUX_DISTRIBUTION_VERSION: &str = "2.x";
/// The registry a GitOps engine syncs from when no source sets one (config.md#precedence).
pub const GITOPS_DEFAULT_REGISTRY: &str = "localhost:5050";
pub const DEFAULT_SOURCE_DIRECTORY: &str = "k8s";
pub const DEFAULT_KUBECONFIG: &str = "~/.kube/config";
pub const API_VERSION: &str = "ksail.io/v1alpha1";
pub const KIND: &str = "Cluster";

pub const NAME_PATTERN: &str = "^[a-z]([a-z0-9-]*[a-z0-9])?$";
pub const NAME_MAX_LEN: usize = 63;
pub const ENV_VAR_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]*$";
pub const TAG_PATTERN: &str = "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$";
pub const VERSION_PATTERN: &str = r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$";
/// Relative, no `..` component, no drive letter, no leading `/` or `\`.
pub const KUSTOMIZATION_FILE_PATTERN: &str =
    r"^(?![/\\])(?![A-Za-z]:)(?!(.*[/\\])?\.\.([/\\]|$)).*$";
/// The variable `workload push` and `workload keygen` read a signing key's password from when
/// `spec.workload.signing.passwordEnvVar` is unset: cosign's own.
pub const DEFAULT_SIGNING_PASSWORD_ENV_VAR: &str = "COSIGN_PASSWORD";
pub const DURATION_PATTERN: &str = r"^\+?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|ms|s|m|h))+$";

/// Every key ksail acts on. The discriminant indexes [`KEYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    MetadataName,
    Distribution,
    DistributionConfig,
    GitOpsEngine,
    Registry,
    TokenEnvVar,
    CliTokenEnvVar,
    ClusterTokenEnvVar,
    Insecure,
    Kubeconfig,
    Context,
    Timeout,
    SourceDirectory,
    Tag,
    ValidateOnPush,
    KustomizationFile,
    FluxOperatorVersion,
    FluxDistributionVersion,
    MirrorRegistries,
    PushTimeout,
    Signing,
    SigningPublic,
    SigningPasswordEnvVar,
}

/// The YAML type a key's value must have in the file, and how text from env or flags is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Bool,
    /// Canonical values; input matches case-insensitively.
    Enum(&'static [&'static str]),
    Duration,
}

/// The value rule applied after type checking (config.md#validation-rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    None,
    MetadataName,
    EnvVarName,
    Tag,
    KustomizationFile,
    OperatorVersion,
    NonEmpty,
    /// `none`, or `host[=https://upstream]` entries separated by commas.
    MirrorRegistries,
}

/// What `""` means for a key (config.md#precedence). Keys not listed in the spec's "counts as
/// unset" list still treat `""` as unset when ksail (Go) documents empty as "use the default".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    Unset,
    /// `""` is validated like any other value (and fails its rule).
    Invalid,
    /// `""` stands for this enum value.
    Means(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    Str(&'static str),
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub key: Key,
    pub path: &'static str,
    pub kind: ValueKind,
    pub rule: Rule,
    pub empty: Empty,
    // The next four are read by the schema generator, which runs as a test
    // (`KSAIL_UPDATE_SCHEMA=1 cargo test`), not by the binary.
    #[cfg_attr(not(test), allow(dead_code))]
    pub description: &'static str,
    /// The default shown in the schema; `None` when unset or command-dependent.
    #[cfg_attr(not(test), allow(dead_code))]
    pub default: Option<DefaultValue>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub pattern: Option<&'static str>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub max_length: Option<usize>,
    pub env: &'static str,
    pub env_alias: Option<&'static str>,
    /// `${VAR}` expansion applies to the file value (config.md#variable-expansion).
    pub expanded: bool,
    /// The value may hold a credential: messages never echo it.
    pub secret: bool,
}

pub const DISTRIBUTIONS: &[&str] = &[
    "Vanilla", "K3s", "Talos", "VCluster", "KWOK", "EKS", "GKE", "AKS",
];
pub const GITOPS_ENGINES: &[&str] = &["None", "Flux", "ArgoCD"];

const fn key(
    key: Key,
    path: &'static str,
    env: &'static str,
    description: &'static str,
) -> KeySpec {
    KeySpec {
        key,
        path,
        kind: ValueKind::String,
        rule: Rule::None,
        empty: Empty::Unset,
        description,
        default: None,
        pattern: None,
        max_length: None,
        env,
        env_alias: None,
        expanded: false,
        secret: false,
    }
}

/// Indexed by `Key as usize` (checked by a test).
pub static KEYS: [KeySpec; 23] = [
    KeySpec {
        rule: Rule::MetadataName,
        empty: Empty::Invalid,
        pattern: Some(NAME_PATTERN),
        max_length: Some(NAME_MAX_LEN),
        ..key(
            Key::MetadataName,
            "metadata.name",
            "KSAIL_METADATA_NAME",
            "Cluster name: a DNS-1123 label of at most 63 characters. When unset, the name comes from the distribution config or the distribution default.",
        )
    },
    KeySpec {
        kind: ValueKind::Enum(DISTRIBUTIONS),
        empty: Empty::Invalid,
        default: Some(DefaultValue::Str("Vanilla")),
        env_alias: Some("KSAIL_SPEC_DISTRIBUTION"),
        ..key(
            Key::Distribution,
            "spec.cluster.distribution",
            "KSAIL_SPEC_CLUSTER_DISTRIBUTION",
            "Kubernetes distribution: Vanilla (Kind) or K3s (K3d). Talos, VCluster, KWOK, EKS, GKE and AKS load but the cluster commands reject them.",
        )
    },
    KeySpec {
        default: Some(DefaultValue::Str("kind.yaml")),
        expanded: true,
        ..key(
            Key::DistributionConfig,
            "spec.cluster.distributionConfig",
            "KSAIL_SPEC_CLUSTER_DISTRIBUTIONCONFIG",
            "Path to the distribution's own configuration file, relative to this file. Defaults to kind.yaml (Vanilla) or k3d.yaml (K3s).",
        )
    },
    KeySpec {
        kind: ValueKind::Enum(GITOPS_ENGINES),
        empty: Empty::Means("None"),
        default: Some(DefaultValue::Str("None")),
        ..key(
            Key::GitOpsEngine,
            "spec.cluster.gitOpsEngine",
            "KSAIL_SPEC_CLUSTER_GITOPSENGINE",
            "GitOps engine installed into the cluster: None, Flux or ArgoCD. An empty value means None.",
        )
    },
    KeySpec {
        expanded: true,
        secret: true,
        ..key(
            Key::Registry,
            "spec.cluster.localRegistry.registry",
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_REGISTRY",
            "Registry in the form [user[:pass]@]host[:port][/path][:tag]. Credentials may use ${VAR} placeholders. Defaults to localhost:5050 when the GitOps engine is not None.",
        )
    },
    KeySpec {
        rule: Rule::EnvVarName,
        pattern: Some(ENV_VAR_NAME_PATTERN),
        secret: true,
        ..key(
            Key::TokenEnvVar,
            "spec.cluster.localRegistry.credentials.tokenEnvVar",
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_CREDENTIALS_TOKENENVVAR",
            "Name of the environment variable that holds the registry token for push and pull, unless a path-specific variable is set.",
        )
    },
    KeySpec {
        rule: Rule::EnvVarName,
        pattern: Some(ENV_VAR_NAME_PATTERN),
        secret: true,
        ..key(
            Key::CliTokenEnvVar,
            "spec.cluster.localRegistry.credentials.cliTokenEnvVar",
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_CREDENTIALS_CLITOKENENVVAR",
            "Name of the environment variable that holds the registry token for push; overrides tokenEnvVar.",
        )
    },
    KeySpec {
        rule: Rule::EnvVarName,
        pattern: Some(ENV_VAR_NAME_PATTERN),
        secret: true,
        ..key(
            Key::ClusterTokenEnvVar,
            "spec.cluster.localRegistry.credentials.clusterTokenEnvVar",
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_CREDENTIALS_CLUSTERTOKENENVVAR",
            "Name of the environment variable that holds the registry token stored in the cluster for pulls; overrides tokenEnvVar.",
        )
    },
    KeySpec {
        kind: ValueKind::Bool,
        default: Some(DefaultValue::Bool(false)),
        ..key(
            Key::Insecure,
            "spec.cluster.localRegistry.insecure",
            "KSAIL_SPEC_CLUSTER_LOCALREGISTRY_INSECURE",
            "Allow plain HTTP to a registry that is not on a loopback address (a ksail extension).",
        )
    },
    KeySpec {
        default: Some(DefaultValue::Str(DEFAULT_KUBECONFIG)),
        env_alias: Some("KSAIL_SPEC_CONNECTION_KUBECONFIG"),
        expanded: true,
        ..key(
            Key::Kubeconfig,
            "spec.cluster.connection.kubeconfig",
            "KSAIL_SPEC_CLUSTER_CONNECTION_KUBECONFIG",
            "Kubeconfig file(s), separated by the OS path-list separator. KUBECONFIG outranks this value.",
        )
    },
    KeySpec {
        env_alias: Some("KSAIL_SPEC_CONNECTION_CONTEXT"),
        expanded: true,
        ..key(
            Key::Context,
            "spec.cluster.connection.context",
            "KSAIL_SPEC_CLUSTER_CONNECTION_CONTEXT",
            "Kubeconfig context. When unset, the cluster commands derive it (kind-<name>, k3d-<name>); other commands use the current context.",
        )
    },
    KeySpec {
        kind: ValueKind::Duration,
        empty: Empty::Invalid,
        pattern: Some(DURATION_PATTERN),
        env_alias: Some("KSAIL_SPEC_CONNECTION_TIMEOUT"),
        ..key(
            Key::Timeout,
            "spec.cluster.connection.timeout",
            "KSAIL_SPEC_CLUSTER_CONNECTION_TIMEOUT",
            "How long to wait for cluster operations, as a Go duration greater than zero (for example 5m). When unset: reconcile 5m, create and update 10m.",
        )
    },
    KeySpec {
        rule: Rule::NonEmpty,
        empty: Empty::Invalid,
        default: Some(DefaultValue::Str(DEFAULT_SOURCE_DIRECTORY)),
        env_alias: Some("KSAIL_SPEC_SOURCEDIRECTORY"),
        expanded: true,
        ..key(
            Key::SourceDirectory,
            "spec.workload.sourceDirectory",
            "KSAIL_SPEC_WORKLOAD_SOURCEDIRECTORY",
            "Directory whose files become the OCI artifact, relative to this file.",
        )
    },
    KeySpec {
        rule: Rule::Tag,
        pattern: Some(TAG_PATTERN),
        expanded: true,
        ..key(
            Key::Tag,
            "spec.workload.tag",
            "KSAIL_SPEC_WORKLOAD_TAG",
            "OCI artifact tag that push writes and the cluster follows. When unset: the tag in the registry string, else dev.",
        )
    },
    KeySpec {
        kind: ValueKind::Bool,
        default: Some(DefaultValue::Bool(true)),
        ..key(
            Key::ValidateOnPush,
            "spec.workload.validateOnPush",
            "KSAIL_SPEC_WORKLOAD_VALIDATEONPUSH",
            "Check that every manifest parses and has apiVersion and kind before pushing.",
        )
    },
    KeySpec {
        rule: Rule::KustomizationFile,
        pattern: Some(KUSTOMIZATION_FILE_PATTERN),
        expanded: true,
        ..key(
            Key::KustomizationFile,
            "spec.workload.kustomizationFile",
            "KSAIL_SPEC_WORKLOAD_KUSTOMIZATIONFILE",
            "Kustomization directory relative to the source directory, used as the GitOps entry point. No '..' components. When unset, the entry point is the source directory itself.",
        )
    },
    KeySpec {
        rule: Rule::OperatorVersion,
        pattern: Some(VERSION_PATTERN),
        default: Some(DefaultValue::Str(FLUX_OPERATOR_VERSION)),
        ..key(
            Key::FluxOperatorVersion,
            "spec.workload.flux.operatorVersion",
            "KSAIL_SPEC_WORKLOAD_FLUX_OPERATORVERSION",
            "flux-operator version to install, X.Y.Z (a leading v is accepted and dropped).",
        )
    },
    KeySpec {
        default: Some(DefaultValue::Str(FLUX_DISTRIBUTION_VERSION)),
        ..key(
            Key::FluxDistributionVersion,
            "spec.workload.flux.distributionVersion",
            "KSAIL_SPEC_WORKLOAD_FLUX_DISTRIBUTIONVERSION",
            "Flux distribution version of the FluxInstance (spec.distribution.version).",
        )
    },
    KeySpec {
        rule: Rule::MirrorRegistries,
        empty: Empty::Invalid,
        default: Some(DefaultValue::Str(crate::cluster::mirrors::DEFAULT_MIRRORS)),
        ..key(
            Key::MirrorRegistries,
            "spec.cluster.mirrorRegistries",
            "KSAIL_SPEC_CLUSTER_MIRRORREGISTRIES",
            "Pull-through mirror registries for the nodes, kept across cluster delete: comma-separated hosts (docker.io, ghcr.io, quay.io and registry.k8s.io are known) or host=https://upstream entries; none for no mirrors.",
        )
    },
    KeySpec {
        kind: ValueKind::Duration,
        empty: Empty::Invalid,
        pattern: Some(DURATION_PATTERN),
        ..key(
            Key::PushTimeout,
            "spec.workload.pushTimeout",
            "KSAIL_SPEC_WORKLOAD_PUSHTIMEOUT",
            "Upper bound on a whole workload push (reading, validating, packing, uploading, retries), as a Go duration greater than zero (for example 2m). When unset, only each request's own limits apply.",
        )
    },
    KeySpec {
        expanded: true,
        ..key(
            Key::Signing,
            "spec.workload.signing.key",
            "KSAIL_SPEC_WORKLOAD_SIGNING_KEY",
            "cosign private key file (ENCRYPTED SIGSTORE PRIVATE KEY, as ksail workload keygen or cosign generate-key-pair write it), relative to this file. When set, workload push signs what it pushes and cluster create/update make Flux verify it.",
        )
    },
    KeySpec {
        expanded: true,
        ..key(
            Key::SigningPublic,
            "spec.workload.signing.publicKey",
            "KSAIL_SPEC_WORKLOAD_SIGNING_PUBLICKEY",
            "cosign public key file the cluster verifies the artifact with, relative to this file. When unset: the signing key's path with .key replaced by .pub (cosign.key → cosign.pub).",
        )
    },
    KeySpec {
        rule: Rule::EnvVarName,
        pattern: Some(ENV_VAR_NAME_PATTERN),
        default: Some(DefaultValue::Str(DEFAULT_SIGNING_PASSWORD_ENV_VAR)),
        ..key(
            Key::SigningPasswordEnvVar,
            "spec.workload.signing.passwordEnvVar",
            "KSAIL_SPEC_WORKLOAD_SIGNING_PASSWORDENVVAR",
            "Name of the environment variable that holds the signing key's password (it may be empty, but must be set).",
        )
    },
];

/// Every `KSAIL_…` variable that overrides a key, canonical names and aliases, with its key, in
/// table order.
pub fn override_variables() -> impl Iterator<Item = (Key, &'static str)> {
    KEYS.iter().flat_map(|spec| {
        std::iter::once(spec.env)
            .chain(spec.env_alias)
            .map(|name| (spec.key, name))
    })
}

impl Key {
    pub fn spec(self) -> &'static KeySpec {
        &KEYS[self as usize]
    }

    pub fn path(self) -> &'static str {
        self.spec().path
    }

    pub fn from_path(path: &str) -> Option<Key> {
        KEYS.iter()
            .find(|spec| spec.path == path)
            .map(|spec| spec.key)
    }
}

/// Whether `path` is a mapping that holds used keys (`spec`, `spec.cluster`, …).
pub fn is_container(path: &str) -> bool {
    KEYS.iter().any(|spec| {
        spec.path
            .strip_prefix(path)
            .is_some_and(|rest| rest.starts_with('.'))
    })
}

macro_rules! canonical_enum {
    ($(#[$meta:meta])* $name:ident, $values:ident, [$($variant:ident),+]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                $values[self as usize]
            }

            /// Case-insensitive match against the canonical names.
            pub fn parse(text: &str) -> Option<$name> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str().eq_ignore_ascii_case(text))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

canonical_enum!(
    /// `spec.cluster.distribution`. Only Vanilla and K3s are provisioned by the cluster commands.
    /// Variant names keep the canonical spelling users write (`KWOK`, `EKS`).
    #[allow(clippy::upper_case_acronyms)]
    Distribution,
    DISTRIBUTIONS,
    [Vanilla, K3s, Talos, VCluster, KWOK, EKS, GKE, AKS]
);

canonical_enum!(
    /// `spec.cluster.gitOpsEngine`.
    GitOpsEngine,
    GITOPS_ENGINES,
    [None, Flux, ArgoCD]
);

impl Distribution {
    /// The distribution config file used when `distributionConfig` is unset.
    pub fn default_config_file(self) -> Option<&'static str> {
        match self {
            Distribution::Vanilla => Some("kind.yaml"),
            Distribution::K3s => Some("k3d.yaml"),
            _ => None,
        }
    }
}
