//! The one name resolver (resolution.md): registry host, repository, tags, the push URL and the
//! in-cluster sync URL. `workload push`, `cluster create`/`update` and `workload reconcile` all
//! call [`resolve`] and compute none of these names themselves, so push and sync cannot disagree.
//!
//! Everything here is a pure function of its inputs, except two documented reads: the canonical
//! path of a `.`-like source directory ([`source_basename`]) and the distribution config that may
//! hold the cluster name ([`cluster_name`]). No cluster, container or registry is consulted.

mod cluster_name;
mod registry;
mod repository;

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod proptests;

use std::path::{Path, PathBuf};

use crate::error::UsageError;
use crate::yaml::Pos;

pub use cluster_name::cluster_name;
pub use registry::{
    OciRef, RegistrySpec, parse_oci_ref, parse_registry, redact_registry_string, registry_password,
    replace_registry_password, validate_tag,
};
pub use repository::{lexical_normalise, sanitise, source_basename};

/// Tag used when nothing else names one.
pub const DEFAULT_TAG: &str = "dev";

/// Port the local registry container listens on inside the cluster network.
pub const IN_CLUSTER_REGISTRY_PORT: u16 = 5000;

/// Name of the local registry container, which is also its host name inside the cluster network.
pub fn local_registry_container(cluster: &str) -> String {
    format!("{cluster}-local-registry")
}

/// Everything that decides the names (resolution.md "Inputs"). Sources are the paths as
/// written; each `*_base` is the directory a relative path is resolved against.
#[derive(Debug, Clone, Default)]
pub struct ResolveInputs {
    /// The push argument `OCI_REF` (push only).
    pub oci_ref: Option<OciRef>,
    /// `--registry`, else `KSAIL_REGISTRY` (push only). When `None`, push falls back to
    /// `cfg_registry`; passing the already-fallen-back value is equivalent.
    pub push_registry: Option<RegistrySpec>,
    /// Effective `spec.cluster.localRegistry.registry`, GitOps default included.
    pub cfg_registry: Option<RegistrySpec>,
    /// Effective `spec.workload.tag`.
    pub workload_tag: Option<String>,
    /// `--path`, else the effective `sourceDirectory`, else `k8s`.
    pub push_source: String,
    pub push_source_base: PathBuf,
    /// The effective `sourceDirectory`, else `k8s` (`--path` never affects it).
    pub sync_source: String,
    pub sync_source_base: PathBuf,
    /// From [`cluster_name`].
    pub cluster: Option<String>,
    /// `gitOpsEngine` is not `None`.
    pub gitops_engine_enabled: bool,
    /// `--insecure`.
    pub insecure_flag: bool,
    /// `spec.cluster.localRegistry.insecure`.
    pub cfg_insecure: bool,
}

/// Where `workload push` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// `host[:port]`, IPv6 in brackets.
    pub host: String,
    pub repository: String,
    pub tag: String,
    /// `oci://<host>/<repository>:<tag>`.
    pub url: String,
    /// The registry is loopback (never proxied, plain HTTP).
    pub local: bool,
    /// Push talks plain HTTP (artifact.md "Transport").
    pub plain_http: bool,
    /// The registry is the configured one (ksail.yaml or its default), not one named by the
    /// push argument or `--registry`: failure hints may point at `ksail cluster create`.
    pub configured: bool,
}

/// What the GitOps engine follows. Exists only when `cfg_registry` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTarget {
    /// `host[:port]` of `cfg_registry`, as seen from this machine.
    pub host: String,
    pub repository: String,
    pub tag: String,
    /// The in-cluster URL. `None` only for a local registry when the cluster name is unknown;
    /// use [`SyncTarget::require_url`] where the URL is needed.
    pub url: Option<String>,
    /// `oci://<host>/<repository>:<tag>`: the same artifact as seen from this machine.
    pub host_ref: String,
    /// `cfg_registry` is a local registry.
    pub local: bool,
    /// This machine talks plain HTTP to `host` (artifact.md "Transport").
    pub plain_http: bool,
}

impl SyncTarget {
    /// The in-cluster URL, or the "set metadata.name" error when a local registry's cluster name
    /// is unknown.
    pub fn require_url(&self) -> Result<&str, ResolveError> {
        self.url.as_deref().ok_or(ResolveError::ClusterNameRequired)
    }
}

/// The names every command uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Absent when there is neither an OCI reference nor any registry.
    pub push: Option<PushTarget>,
    /// Absent when `cfg_registry` is unset.
    pub sync: Option<SyncTarget>,
    /// The push/sync mismatch warning text, without the `warning: ` prefix.
    pub mismatch_warning: Option<String>,
}

impl Resolution {
    /// The push target, or the "no registry configured" error (only `workload push` needs it).
    pub fn push(&self) -> Result<&PushTarget, ResolveError> {
        self.push.as_ref().ok_or(ResolveError::NoRegistry)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "cannot decide where to push: no registry configured; pass an OCI reference (oci://host/repository:tag), pass --registry, set KSAIL_REGISTRY or set spec.cluster.localRegistry.registry"
    )]
    NoRegistry,
    #[error(
        "cannot compute the in-cluster registry URL: the cluster name is unknown for this distribution; set metadata.name (or pass --name)"
    )]
    ClusterNameRequired,
    #[error(
        "cannot read the cluster name from {}: {source}; check the file or spec.cluster.distributionConfig",
        path.display()
    )]
    DistributionConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot read the cluster name from {}:{pos}: {message}; fix the YAML in the distribution config",
        path.display()
    )]
    DistributionConfigSyntax {
        path: PathBuf,
        pos: Pos,
        message: String,
    },
}

impl UsageError for ResolveError {}

/// Derive every registry name from `inputs` (resolution.md).
pub fn resolve(inputs: &ResolveInputs) -> Resolution {
    let push = resolve_push(inputs);
    let sync = inputs
        .cfg_registry
        .as_ref()
        .map(|cfg| resolve_sync(inputs, cfg));
    let mismatch_warning = match (&push, &sync) {
        (Some(push), Some(sync)) if inputs.gitops_engine_enabled && push.url != sync.host_ref => {
            Some(format!(
                "pushing {}, but the cluster follows {}; the GitOps engine will not pick up this push",
                push.url, sync.host_ref
            ))
        }
        _ => None,
    };
    Resolution {
        push,
        sync,
        mismatch_warning,
    }
}

fn resolve_push(inputs: &ResolveInputs) -> Option<PushTarget> {
    let registry = inputs
        .push_registry
        .as_ref()
        .or(inputs.cfg_registry.as_ref());
    let reference = inputs.oci_ref.as_ref();
    // The reference's own host and port are authoritative over any registry string.
    let (host, local) = match (reference, registry) {
        (Some(reference), _) => (reference.host_port(), reference.local),
        (None, Some(registry)) => (registry.host_port(), registry.local),
        (None, None) => return None,
    };
    let repository = reference
        .map(|reference| reference.path.clone())
        .or_else(|| registry.and_then(|registry| registry.path.clone()))
        .unwrap_or_else(|| repository_from_source(&inputs.push_source, &inputs.push_source_base));
    let tag = first_tag([
        reference.and_then(|reference| reference.tag.as_deref()),
        inputs.workload_tag.as_deref(),
        registry.and_then(|registry| registry.tag.as_deref()),
    ]);
    let plain_http = local
        || inputs.insecure_flag
        || (inputs.cfg_insecure
            && inputs
                .cfg_registry
                .as_ref()
                .is_some_and(|cfg| cfg.host_port() == host));
    Some(PushTarget {
        url: format!("oci://{host}/{repository}:{tag}"),
        host,
        repository,
        tag,
        local,
        plain_http,
        configured: reference.is_none() && inputs.push_registry.is_none(),
    })
}

fn resolve_sync(inputs: &ResolveInputs, cfg: &RegistrySpec) -> SyncTarget {
    let host = cfg.host_port();
    let repository = cfg
        .path
        .clone()
        .unwrap_or_else(|| repository_from_source(&inputs.sync_source, &inputs.sync_source_base));
    let tag = first_tag([inputs.workload_tag.as_deref(), cfg.tag.as_deref()]);
    let url = if cfg.local {
        inputs
            .cluster
            .as_deref()
            .filter(|cluster| !cluster.is_empty())
            .map(|cluster| {
                format!(
                    "oci://{}:{IN_CLUSTER_REGISTRY_PORT}/{repository}",
                    local_registry_container(cluster)
                )
            })
    } else {
        Some(format!("oci://{host}/{repository}"))
    };
    SyncTarget {
        host_ref: format!("oci://{host}/{repository}:{tag}"),
        plain_http: cfg.local || inputs.insecure_flag || inputs.cfg_insecure,
        host,
        repository,
        tag,
        url,
        local: cfg.local,
    }
}

fn repository_from_source(source: &str, base: &Path) -> String {
    sanitise(&source_basename(source, base))
}

/// The first non-empty tag of a chain, else [`DEFAULT_TAG`].
fn first_tag<const N: usize>(chain: [Option<&str>; N]) -> String {
    chain
        .into_iter()
        .flatten()
        .find(|tag| !tag.is_empty())
        .unwrap_or(DEFAULT_TAG)
        .to_string()
}
