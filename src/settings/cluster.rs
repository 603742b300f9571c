//! Settings shared by `cluster create` and `cluster update`: flags + env + `ksail.yaml` resolved
//! once into [`ClusterSettings`], with the cluster-command rules of config.md ("Keys that load but
//! are not used") checked before anything else runs. Reads only the config file and the
//! distribution config (for the cluster name).

use crate::cluster::mirrors::{self, Mirror};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::provider::Distribution;
use crate::config::{self, ConfigPath, Effective, FlagOverrides, GitOpsEngine, Key};
use crate::context::Context;
use crate::env_vars;
use crate::error::Failure;
use crate::k8s::KubeTarget;
use crate::registry::auth::CredentialRequest;
use crate::resolve::{self, RegistrySpec, SyncTarget};
use crate::retry::RetryPolicy;
use crate::settings::{config_registry, kube_target};
use crate::signing::Signer;

/// The default bound on each wait step of `cluster create` and `cluster update`.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// The local registry container (cluster.md step 1), present only for a loopback registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRegistry {
    /// `<cluster>-local-registry`.
    pub container: String,
    /// The address the container's port is published on: `127.0.0.1` (also for `localhost`),
    /// another `127.x` literal, or `::1`.
    pub bind_ip: IpAddr,
    pub port: u16,
    /// `host:port` as seen from this machine (`localhost:5050`), for the readiness probe and lines.
    pub host_port: String,
}

/// Registry credentials the cluster reads with (the Flux pull Secret, the Argo CD repository
/// Secret). `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PullCredentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for PullCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything `cluster create` / `cluster update` need, decided before any child process runs.
#[derive(Debug)]
pub struct ClusterSettings {
    pub cluster: String,
    pub distribution: Distribution,
    /// The distribution config as written (for messages) and resolved.
    pub distribution_config: ConfigPath,
    pub engine: GitOpsEngine,
    pub local_registry: Option<LocalRegistry>,
    /// What the engine follows; set whenever a registry is configured.
    pub sync: Option<SyncTarget>,
    /// Credentials for this machine's requests to `sync.host` (the initial push).
    pub credentials: Option<CredentialRequest>,
    /// Credentials the cluster pulls with (external registries only).
    pub pull_credentials: Option<PullCredentials>,
    /// The in-cluster registry is reached over plain HTTP (local, or `--insecure`).
    pub in_cluster_http: bool,
    pub kube: KubeTarget,
    /// The first resolved kubeconfig path: `KUBECONFIG` for the kind/k3d child.
    pub kubeconfig: Option<PathBuf>,
    pub timeout: Duration,
    /// The source directory the first artifact is packed from.
    pub source: ConfigPath,
    pub validate: bool,
    /// Normalised `spec.workload.kustomizationFile`.
    pub kustomization_file: Option<String>,
    pub flux_operator_version: String,
    pub flux_distribution_version: String,
    /// The pull-through mirrors the nodes use (empty: none).
    pub mirrors: Vec<Mirror>,
    pub source_date_epoch: Option<String>,
    pub retry: RetryPolicy,
    /// `spec.workload.signing`: the key that signs the sync artifact (create, update) and the
    /// public key the cluster verifies it with (docs/signing.md).
    pub signer: Option<Arc<Signer>>,
    pub verify_key: Option<VerifyKey>,
}

/// The public key the sync source verifies with, checked to be the signing key's public half.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyKey {
    /// As the user wrote it, for messages.
    pub display: String,
    /// The `PUBLIC KEY` PEM text, as it goes into the Secret.
    pub pem: String,
}

/// `flags`: the create/update flags that override keys; the global `--kubeconfig` and
/// `--context` are added here.
pub fn cluster_settings(ctx: &Context, flags: FlagOverrides) -> Result<ClusterSettings, Failure> {
    let retry = super::retry_policy(ctx)?;
    let overrides = FlagOverrides {
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
        ..flags
    };
    let insecure_flag = overrides.insecure == Some(true);
    let effective = crate::settings::load_effective_for_cluster(ctx, &overrides)?;
    let distribution = Distribution::from_effective(&effective)?;
    let source_date_epoch = ctx.env.var(env_vars::SOURCE_DATE_EPOCH);
    if let Some(value) = &source_date_epoch {
        crate::artifact::git::parse_source_date_epoch(value)?;
    }

    let distribution_config = effective.distribution_config.as_ref().map(|c| &c.value);
    let cluster =
        crate::settings::config_cluster_name(&effective)?.unwrap_or_else(|| match distribution {
            Distribution::Vanilla => "kind".to_string(),
            Distribution::K3s => "k3d-default".to_string(),
        });
    let cfg_registry = config_registry(&effective)?;
    let sync_source = &effective.source_directory.value;
    let engine = effective.gitops_engine.value;
    let (sync, credentials) = super::sync_target(
        ctx,
        &effective,
        &cfg_registry,
        Some(cluster.clone()),
        insecure_flag,
    );
    let local_registry = cfg_registry
        .as_ref()
        .filter(|spec| spec.local)
        .map(|spec| local_registry(&cluster, spec));
    let pull_credentials = match &cfg_registry {
        Some(spec) if !spec.local => pull_credentials(ctx, &effective, spec)?,
        _ => None,
    };
    let in_cluster_http = match &cfg_registry {
        Some(spec) => spec.local || insecure_flag || effective.insecure.value,
        None => false,
    };
    let (signer, verify_key) = match &effective.signing {
        Some(signing) => {
            let signer = super::load_signer(ctx, signing)?;
            let verify = verify_key(signing, &signer)?;
            (Some(signer), Some(verify))
        }
        None => (None, None),
    };
    let derived = distribution.derived_context(&cluster);
    let kube = kube_target(&effective, Some(derived));
    // `None` is unreachable for Vanilla/K3s, which always have a default config file.
    let distribution_config = distribution_config.cloned().unwrap_or(ConfigPath {
        written: String::new(),
        resolved: PathBuf::new(),
    });
    Ok(ClusterSettings {
        cluster,
        distribution,
        distribution_config,
        engine,
        local_registry,
        sync,
        credentials,
        pull_credentials,
        in_cluster_http,
        kubeconfig: kube.kubeconfig.first().cloned(),
        kube,
        timeout: effective
            .timeout
            .as_ref()
            .map_or(CLUSTER_TIMEOUT, |timeout| timeout.value),
        source: sync_source.clone(),
        validate: effective.validate_on_push.value,
        kustomization_file: effective
            .kustomization_file
            .as_ref()
            .map(|k| k.value.clone()),
        flux_operator_version: effective.flux_operator_version.value.clone(),
        flux_distribution_version: effective.flux_distribution_version.value.clone(),
        // Validated when the config was loaded.
        mirrors: mirrors::parse(&effective.mirror_registries.value).unwrap_or_default(),
        source_date_epoch,
        retry,
        signer,
        verify_key,
    })
}

/// Read `spec.workload.signing.publicKey` and check that it is the public half of the signing
/// key: a mismatch would make the cluster refuse every push (exit 2 instead).
fn verify_key(signing: &config::Signing, signer: &Signer) -> Result<VerifyKey, Failure> {
    let path = &signing.public_key.value;
    let text = std::fs::read_to_string(&path.resolved).map_err(|error| {
        Failure::usage(format!(
            "cannot read public key {} ({}): {}; write it with ksail workload keygen, or set {} to the key's .pub file",
            path.written,
            Key::SigningPublic.path(),
            crate::artifact::io_reason(&error),
            Key::SigningPublic.path()
        ))
    })?;
    let key = crate::signing::key::parse_public_key(&text).map_err(|error| {
        Failure::usage(format!(
            "cannot use public key {} ({}): {error}; name the cosign.pub written with the signing key",
            path.written,
            Key::SigningPublic.path()
        ))
    })?;
    if key != *signer.verifying_key() {
        return Err(Failure::usage(format!(
            "public key {} is not the public half of signing key {}: the cluster would refuse every push; set {} to the key's own .pub file",
            path.written,
            signer.display,
            Key::SigningPublic.path()
        )));
    }
    Ok(VerifyKey {
        display: path.written.clone(),
        pem: crate::signing::key::public_key_pem(&key),
    })
}

fn local_registry(cluster: &str, spec: &RegistrySpec) -> LocalRegistry {
    let port = spec.port.unwrap_or(5050);
    let bind_ip = match spec.host.as_str() {
        "[::1]" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        host => host
            .parse::<Ipv4Addr>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V4),
    };
    LocalRegistry {
        container: resolve::local_registry_container(cluster),
        bind_ip,
        port,
        host_port: spec.host_port(),
    }
}

/// The pull credentials (cluster.md "Pull Secret"): the registry string's user with
/// `clusterTokenEnvVar`, else `tokenEnvVar`, else the embedded password. A named variable that
/// is unset is a configuration error (exit 2), as for push.
fn pull_credentials(
    ctx: &Context,
    effective: &Effective,
    spec: &RegistrySpec,
) -> Result<Option<PullCredentials>, Failure> {
    let env = ctx.env.lookup();
    let expand = |value: &str| -> Result<String, Failure> {
        if super::registry_from_file(effective) {
            return Ok(value.to_string());
        }
        config::expand(value, &env)
            .map(|expanded| expanded.text)
            .map_err(|error| {
                Failure::usage(format!(
                    "spec.cluster.localRegistry.registry: invalid variable reference in the registry credentials: {error}; use ${{NAME}}"
                ))
            })
    };
    let Some(user) = spec.user.as_deref().map(expand).transpose()? else {
        return Ok(None);
    };
    let credentials = &effective.credentials;
    let token_setting = [
        ("clusterTokenEnvVar", &credentials.cluster_token_env_var),
        ("tokenEnvVar", &credentials.token_env_var),
    ]
    .into_iter()
    .find_map(|(setting, var)| var.as_ref().map(|var| (setting, var.value.clone())));
    let password = match token_setting {
        Some((setting, variable)) => Some(ctx.env.var(&variable).ok_or_else(|| {
            Failure::usage(format!(
                "spec.cluster.localRegistry.credentials.{setting} names {variable}, which is not set; export it or remove the setting"
            ))
        })?),
        None => spec.password.as_deref().map(expand).transpose()?,
    };
    Ok(password
        .filter(|password| !password.is_empty() && !user.is_empty())
        .map(|password| {
            crate::output::register_secret(&password);
            PullCredentials { user, password }
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> RegistrySpec {
        resolve::parse_registry(text).unwrap().unwrap()
    }

    #[test]
    fn local_registry_binds_loopback() {
        let local = local_registry("kind", &spec("localhost:5050"));
        assert_eq!(local.container, "kind-local-registry");
        assert_eq!(local.bind_ip.to_string(), "127.0.0.1");
        assert_eq!(local.port, 5050);
        assert_eq!(local.host_port, "localhost:5050");
        assert_eq!(
            local_registry("dev", &spec("[::1]:6000"))
                .bind_ip
                .to_string(),
            "::1"
        );
        assert_eq!(
            local_registry("dev", &spec("127.0.0.2"))
                .bind_ip
                .to_string(),
            "127.0.0.2"
        );
        assert_eq!(local_registry("dev", &spec("127.0.0.2")).port, 5050);
    }
}
