//! Creating a cluster (cluster.md "cluster create"): preflight without side effects, then
//! steps 1–5 here (local registry, cluster, network, node mirror config, API server) and steps
//! 6–9 in [`super::setup`] (initial artifact, engine, bootstrap objects, engine ready). Every
//! step detects work already done, so a re-run after a failure continues.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use tokio::time::Instant;

use super::distribution_config;
use super::mirrors::{self, MIRROR_LABEL, Mirror};
use super::provider::{Distribution, OWNER_MARK_PATH, Provider};
use super::setup::{self as gitops_setup, GitopsSetup, InitialArtifact, done, failed, skipped};
use super::wait::{self, Poll};
use crate::config::GitOpsEngine;
use crate::context::Context;
use crate::error::Failure;
use crate::k8s::{self, Cluster, TargetError, read_merged};
use crate::progress::Reporter;
use crate::publish::resolve_registry_credentials;
use crate::registry::{CredentialSource, Credentials, ResolvedCredentials};
use crate::resolve::IN_CLUSTER_REGISTRY_PORT;
use crate::settings::cluster::{ClusterSettings, LocalRegistry};

/// Create the cluster `settings` describe, step by step, printing each step's line; returns the
/// final line (`cluster kind created (Flux, oci://…:dev)`).
pub async fn create(ctx: &Context, settings: &ClusterSettings) -> Result<String, Failure> {
    let reporter = ctx.reporter();
    let provider = Provider::new(settings.distribution, settings.kubeconfig.clone());
    let preflight = preflight(ctx, settings, &provider).await?;

    let registry_label = settings
        .local_registry
        .as_ref()
        .map(|local| format!("registry {}", local.container));
    step(
        reporter,
        registry_label.as_deref().unwrap_or("registry"),
        async { local_registry_step(reporter, settings, &provider).await },
    )
    .await?;
    step(
        reporter,
        "mirror registries",
        mirrors_step(reporter, settings, &provider),
    )
    .await?;
    // k3d writes the members of the cluster network into CoreDNS's `NodeHosts` only when the
    // cluster starts (k3d `pkg/client/cluster.go` `ClusterStart`), so for K3s the registry joins
    // the network first; kind's nodes resolve it through Docker's DNS whenever it joins.
    let network_first = settings.distribution == Distribution::K3s;
    let network = || {
        step(
            reporter,
            registry_label.as_deref().unwrap_or("registry"),
            network_step(reporter, settings, &provider),
        )
    };
    if network_first {
        network().await?;
    }
    let cluster_label = format!("cluster {}", settings.cluster);
    let created = step(
        reporter,
        &cluster_label,
        cluster_step(reporter, settings, &provider),
    )
    .await?;
    if !network_first {
        network().await?;
    }
    step(
        reporter,
        "registry mirror",
        mirror_step(reporter, settings, &provider),
    )
    .await?;
    let cluster = step(
        reporter,
        "api server",
        api_server_step(reporter, settings, created),
    )
    .await?;

    if let Some(local) = &settings.local_registry {
        step(
            reporter,
            "registry hosting",
            registry_hosting_step(reporter, &cluster.client, local),
        )
        .await?;
    }

    let Some(sync) = settings
        .sync
        .as_ref()
        .filter(|_| settings.engine != GitOpsEngine::None)
    else {
        for line in [
            "artifact: skipped (no GitOps engine)",
            "gitops engine: skipped (None)",
            "bootstrap objects: skipped (no GitOps engine)",
            "engine ready: skipped (no GitOps engine)",
        ] {
            skipped(reporter, line);
        }
        return Ok(format!(
            "cluster {} created (no GitOps engine)",
            settings.cluster
        ));
    };
    let setup = GitopsSetup {
        ctx,
        settings,
        sync,
        client: &cluster.client,
        credentials: preflight.credentials,
    };
    let artifact = preflight.artifact.unwrap_or(InitialArtifact::Empty);
    let (digest, pushed) = step(reporter, "artifact", setup.initial_artifact(artifact)).await?;
    let installed = step(reporter, "gitops engine", setup.install_engine()).await?;
    let applied = step(reporter, "bootstrap objects", setup.apply_bootstrap()).await?;
    let changed = pushed || installed || applied;
    step(reporter, "engine ready", setup.wait_ready(&digest, changed)).await?;
    Ok(format!(
        "cluster {} created ({}, {}:{})",
        settings.cluster,
        engine_name(settings.engine),
        sync.require_url()?,
        sync.tag
    ))
}

/// The engine as users write it in the final line.
pub fn engine_name(engine: GitOpsEngine) -> &'static str {
    match engine {
        GitOpsEngine::None => "None",
        GitOpsEngine::Flux => "Flux",
        GitOpsEngine::ArgoCD => "ArgoCD",
    }
}

/// Run one step; on failure print its `✗` line before the error travels on.
async fn step<T>(
    reporter: &dyn Reporter,
    label: &str,
    work: impl std::future::Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    let spinner = reporter.step(label);
    let result = work.await;
    drop(spinner);
    if result.is_err() {
        failed(reporter, &format!("{label}: failed"));
    }
    result
}

/// What preflight found, for the steps.
pub struct Preflight {
    /// What step 6 pushes (engine ≠ None only).
    pub artifact: Option<InitialArtifact>,
    /// Credentials for `sync.host` (anonymous when none resolve).
    pub credentials: ResolvedCredentials,
}

/// The checks of cluster.md "Preflight", in order, without side effects: the source directory,
/// credentials, `docker`, then `kind`/`k3d`.
pub async fn preflight(
    ctx: &Context,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<Preflight, Failure> {
    let artifact = match settings.engine {
        GitOpsEngine::None => None,
        _ => Some(gitops_setup::preflight_source(ctx.reporter(), settings)?),
    };
    if let Some(key) = &settings.verify_key
        && settings.engine == GitOpsEngine::ArgoCD
    {
        // Argo CD reads OCI sources without checking signatures (docs/signing.md).
        ctx.reporter().warn(&format!(
            "spec.workload.signing is set but Argo CD does not verify OCI signatures: pushes are signed with the key of {}, and nothing in the cluster checks them",
            key.display
        ));
    }
    let credentials = match &settings.credentials {
        Some(request) => resolve_registry_credentials(ctx, request).await?,
        None => ResolvedCredentials {
            credentials: Credentials::Anonymous,
            source: CredentialSource::Anonymous,
            warnings: Vec::new(),
        },
    };
    provider.check_docker().await?;
    provider.check_tool()?;
    Ok(Preflight {
        artifact,
        credentials,
    })
}

/// Step 1: the local registry container, running and answering `/v2/`.
async fn local_registry_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<(), Failure> {
    let Some(local) = &settings.local_registry else {
        skipped(reporter, &skip_reason(settings, "registry"));
        return Ok(());
    };
    let line = format!(
        "registry {}: running on {}",
        local.container, local.host_port
    );
    let started = match provider.inspect_container(&local.container).await? {
        None => {
            provider
                .run_registry(
                    &local.container,
                    &settings.cluster,
                    local.bind_ip,
                    local.port,
                )
                .await?;
            true
        }
        Some(info) if !info.is_ksail_registry() => {
            return Err(Failure::failed(format!(
                "container {} exists but was not created by ksail (it has no io.ksail.registry label), so it is not reused; remove it (docker rm -f {}) or change spec.cluster.localRegistry.registry",
                local.container, local.container
            )));
        }
        Some(info) if info.host_port.is_some_and(|port| port != local.port) => {
            return Err(Failure::failed(format!(
                "registry container {} publishes port {}, but the configured registry is {}; run ksail cluster delete, or change spec.cluster.localRegistry.registry",
                local.container,
                info.host_port.unwrap_or_default(),
                local.host_port
            )));
        }
        Some(info) if info.running => false,
        Some(_) => {
            provider.start_container(&local.container).await?;
            true
        }
    };
    wait_for_registry(local, settings.timeout).await?;
    match started {
        true => done(reporter, &line),
        false => skipped(reporter, &line),
    }
    Ok(())
}

/// Wait until `GET http://<host>:<port>/v2/` answers `200` or `401`.
async fn wait_for_registry(
    local: &LocalRegistry,
    timeout: std::time::Duration,
) -> Result<(), Failure> {
    let url = format!("http://{}/v2/", local.host_port);
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|error| Failure::failed(format!("cannot build the HTTP client: {error}")))?;
    let deadline = Instant::now() + timeout;
    wait::until(deadline, || async {
        Ok(match client.get(&url).send().await {
            Ok(response) if matches!(response.status().as_u16(), 200 | 401) => Poll::Ready(()),
            Ok(response) => Poll::Pending(format!("GET {url} answered {}", response.status())),
            Err(error) => Poll::Pending(format!("GET {url} failed: {error}")),
        })
    })
    .await
    .map_err(|error| wait::timed_out(&format!("registry {}", local.container), timeout, &error))
}

fn skip_reason(settings: &ClusterSettings, what: &str) -> String {
    match &settings.sync {
        Some(sync) => format!("{what}: skipped (external registry {})", sync.host),
        None => format!("{what}: skipped (no local registry)"),
    }
}

/// Step 2: the cluster. Returns whether it was created by this run.
async fn cluster_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<bool, Failure> {
    let label = format!("cluster {}", settings.cluster);
    let created = if provider.cluster_exists(&settings.cluster).await? {
        skipped(reporter, &format!("{label}: exists"));
        restore_context(reporter, settings, provider).await?;
        false
    } else {
        // The generated files live until the tool has read them.
        let (config_path, _generated) = distribution_config_path(reporter, settings)?;
        let registries = registries_file(settings)?;
        provider
            .create_cluster(
                &settings.cluster,
                &config_path,
                registries.as_ref().map(|path| path.as_ref()),
            )
            .await?;
        done(reporter, &format!("{label}: created"));
        true
    };
    mark_nodes(settings, provider).await?;
    Ok(created)
}

/// K3s with a local registry: the `registries.yaml` for the registry this run resolved (name
/// and port), in a temporary file for `k3d cluster create --registry-config`, which wins over the
/// mapping `cluster init` wrote into `k3d.yaml` (it may name another cluster's registry).
fn registries_file(settings: &ClusterSettings) -> Result<Option<tempfile::TempPath>, Failure> {
    let local = settings.local_registry.as_ref();
    if settings.distribution != Distribution::K3s
        || (local.is_none() && settings.mirrors.is_empty())
    {
        return Ok(None);
    }
    let content = distribution_config::k3s_registries(local, &settings.mirrors);
    temp_file("ksail-registries-", &content).map(Some)
}

fn temp_file(prefix: &str, content: &str) -> Result<tempfile::TempPath, Failure> {
    let write_failed = |error: std::io::Error| {
        Failure::failed(format!(
            "cannot write a temporary file for the cluster tool: {error}; check TMPDIR and free disk space"
        ))
    };
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".yaml")
        .tempfile()
        .map_err(write_failed)?;
    std::io::Write::write_all(&mut file, content.as_bytes()).map_err(write_failed)?;
    Ok(file.into_temp_path())
}

/// A cluster that exists while its derived context is missing from the kubeconfig (another
/// `KUBECONFIG`, an interrupted create) gets the context written again, so the re-run goes on.
async fn restore_context(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<(), Failure> {
    let kube = &settings.kube;
    let Some(derived) = kube
        .derived_context
        .as_ref()
        .filter(|_| kube.context.is_none())
    else {
        return Ok(());
    };
    let present = match read_merged(kube) {
        Ok(merged) => merged
            .config
            .contexts
            .iter()
            .any(|context| &context.name == derived),
        Err(TargetError::NoKubeconfig { .. }) => false,
        // Connecting reports an unreadable or invalid kubeconfig with its own message.
        Err(_) => true,
    };
    if present {
        return Ok(());
    }
    provider.export_kubeconfig(&settings.cluster).await?;
    done(
        reporter,
        &format!(
            "cluster {}: kubeconfig context {derived} restored",
            settings.cluster
        ),
    );
    Ok(())
}

/// Write the ownership mark into every node that lacks it (`cluster delete` checks it).
async fn mark_nodes(settings: &ClusterSettings, provider: &Provider) -> Result<(), Failure> {
    let mark = format!("{}\n", settings.cluster);
    for node in provider.nodes(&settings.cluster).await? {
        if provider
            .read_file_in_node(&node, OWNER_MARK_PATH)
            .await?
            .as_deref()
            != Some(&mark)
        {
            provider
                .write_file_in_node(&node, OWNER_MARK_PATH, &mark)
                .await?;
        }
    }
    Ok(())
}

/// The configured distribution config, or generated defaults in a temporary file when it is
/// missing (cluster.md "Missing distribution config").
fn distribution_config_path(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
) -> Result<(PathBuf, Option<tempfile::TempPath>), Failure> {
    if settings.distribution_config.resolved.exists() {
        return Ok((settings.distribution_config.resolved.clone(), None));
    }
    reporter.info(&format!(
        "{} not found; using generated defaults",
        settings.distribution_config.written
    ));
    let content = distribution_config::generated(
        settings.distribution,
        &settings.cluster,
        settings.local_registry.as_ref(),
    );
    let path = temp_file("ksail-distribution-", &content)?;
    Ok((path.to_path_buf(), Some(path)))
}

/// Step 3: the registry container and the mirrors join the cluster's network.
async fn network_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<(), Failure> {
    let mut members: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(local) = &settings.local_registry {
        members.push((
            format!("registry {}", local.container),
            vec![local.container.clone()],
        ));
    }
    if !settings.mirrors.is_empty() {
        let containers = settings.mirrors.iter().map(Mirror::container).collect();
        members.push(("mirror registries".to_string(), containers));
    }
    if members.is_empty() {
        skipped(reporter, &skip_reason(settings, "registry network"));
        return Ok(());
    }
    let network = settings.distribution.network(&settings.cluster);
    // k3d re-uses a network that exists (and then leaves it on delete: ksail removes it).
    if settings.distribution == Distribution::K3s
        && provider.inspect_network(&network).await?.is_none()
    {
        provider.create_network(&network, &settings.cluster).await?;
        done(reporter, &format!("network {network}: created"));
    }
    for (label, containers) in members {
        let mut joined = false;
        for container in &containers {
            let connected = provider
                .inspect_container(container)
                .await?
                .is_some_and(|info| info.networks.contains(&network));
            if !connected {
                provider.connect_network(&network, container).await?;
                joined = true;
            }
        }
        let line = format!("{label}: connected to network {network}");
        match joined {
            true => done(reporter, &line),
            false => skipped(reporter, &line),
        }
    }
    Ok(())
}

/// Step 1b: the pull-through mirror containers, shared by every cluster and kept by delete.
async fn mirrors_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<(), Failure> {
    if settings.mirrors.is_empty() {
        skipped(reporter, "mirror registries: skipped (none configured)");
        return Ok(());
    }
    let mut started = false;
    for mirror in &settings.mirrors {
        let container = mirror.container();
        match provider.inspect_container(&container).await? {
            None => {
                provider.run_mirror(mirror).await?;
                started = true;
            }
            Some(info) if !info.is_ksail_mirror() => {
                return Err(Failure::failed(format!(
                    "container {container} exists but was not created by ksail (it has no {MIRROR_LABEL} label), so it is not used as the {} mirror; remove it (docker rm -f {container}) or leave {} out of spec.cluster.mirrorRegistries",
                    mirror.host, mirror.host
                )));
            }
            Some(info) if info.running => {}
            Some(_) => {
                provider.start_container(&container).await?;
                started = true;
            }
        }
    }
    let hosts: Vec<&str> = settings.mirrors.iter().map(|m| m.host.as_str()).collect();
    let line = format!("mirror registries: running ({})", hosts.join(", "));
    match started {
        true => done(reporter, &line),
        false => skipped(reporter, &line),
    }
    Ok(())
}

/// Where k3s reads its mirrors (k3d writes it from `--registry-config` at create).
const K3S_REGISTRIES_PATH: &str = "/etc/rancher/k3s/registries.yaml";

/// Step 4: containerd `hosts.toml` files in every Kind node (the local registry under both its
/// names, each mirrored host); for K3s a check that the nodes' `registries.yaml` has them.
async fn mirror_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    provider: &Provider,
) -> Result<(), Failure> {
    let local = settings.local_registry.as_ref();
    if local.is_none() && settings.mirrors.is_empty() {
        skipped(reporter, &skip_reason(settings, "registry mirror"));
        return Ok(());
    }
    let nodes = provider.nodes(&settings.cluster).await?;
    let plural = if nodes.len() == 1 { "" } else { "s" };
    let line = format!(
        "registry mirror: configured on {} node{plural}",
        nodes.len()
    );
    if settings.distribution == Distribution::K3s {
        // k3s reads registries.yaml only when it starts: check what the nodes got.
        for node in &nodes {
            let content = provider
                .read_file_in_node(node, K3S_REGISTRIES_PATH)
                .await?;
            if let Some(missing) = distribution_config::k3s_missing_mirror(
                content.as_deref(),
                local,
                &settings.mirrors,
            ) {
                return Err(Failure::failed(format!(
                    "node {node} does not mirror {missing} (its {K3S_REGISTRIES_PATH} was written when the cluster was created, for other registries); recreate the cluster: ksail cluster delete, then ksail cluster create"
                )));
            }
        }
        skipped(reporter, &line);
        return Ok(());
    }
    let mut files = local
        .map(distribution_config::mirror_host_files)
        .unwrap_or_default();
    files.extend(settings.mirrors.iter().map(mirrors::containerd_hosts));
    let mut wrote = false;
    for node in &nodes {
        if !settings.mirrors.is_empty() && !reads_certs_d(provider, node).await? {
            reporter.warn(&format!(
                "node {node}: containerd does not read /etc/containerd/certs.d (the kind config has no config_path patch), so it ignores the registry mirrors; add the containerdConfigPatches block ksail cluster init writes to {} and recreate the cluster",
                settings.distribution_config.written
            ));
        }
        for (path, content) in &files {
            if provider.read_file_in_node(node, path).await?.as_deref() == Some(content.as_str()) {
                continue;
            }
            provider.write_file_in_node(node, path, content).await?;
            wrote = true;
        }
    }
    match wrote {
        true => done(reporter, &line),
        false => skipped(reporter, &line),
    }
    Ok(())
}

/// The node's containerd takes registry hosts from `/etc/containerd/certs.d` (kind merges the
/// config's `containerdConfigPatches` into `/etc/containerd/config.toml`).
async fn reads_certs_d(provider: &Provider, node: &str) -> Result<bool, Failure> {
    let config = provider
        .read_file_in_node(node, "/etc/containerd/config.toml")
        .await?;
    Ok(config.is_some_and(|text| text.contains("/etc/containerd/certs.d")))
}

/// The `kube-public/local-registry-hosting` ConfigMap (KEP-1755, as in kind's local-registry
/// guide): where the cluster's local registry is, for tools that look it up.
async fn registry_hosting_step(
    reporter: &dyn Reporter,
    client: &kube::Client,
    local: &LocalRegistry,
) -> Result<(), Failure> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let in_network = format!("{}:{IN_CLUSTER_REGISTRY_PORT}", local.container);
    let hosting = format!(
        "host: \"{}\"\nhostFromContainerRuntime: \"{in_network}\"\nhostFromClusterNetwork: \"{in_network}\"\nhelp: \"https://kind.sigs.k8s.io/docs/user/local-registry/\"\n",
        local.host_port
    );
    let line = "registry hosting: kube-public/local-registry-hosting applied";
    let current = k8s::with_timeout(api.get_opt(REGISTRY_HOSTING))
        .await
        .map_err(|error| hosting_failed(&error))?;
    let data = current.as_ref().and_then(|map| map.data.as_ref());
    if data.and_then(|data| data.get(REGISTRY_HOSTING_KEY)) == Some(&hosting) {
        skipped(reporter, line);
        return Ok(());
    }
    let object = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": REGISTRY_HOSTING, "namespace": "kube-public"},
        "data": {REGISTRY_HOSTING_KEY: hosting},
    });
    k8s::with_timeout(api.patch(
        REGISTRY_HOSTING,
        &PatchParams::apply(crate::cluster::install::FIELD_MANAGER).force(),
        &Patch::Apply(object),
    ))
    .await
    .map_err(|error| hosting_failed(&error))?;
    done(reporter, line);
    Ok(())
}

const REGISTRY_HOSTING: &str = "local-registry-hosting";
const REGISTRY_HOSTING_KEY: &str = "localRegistryHosting.v1";

fn hosting_failed(error: &k8s::K8sError) -> Failure {
    Failure::failed(format!(
        "cannot write kube-public/{REGISTRY_HOSTING}: {}; check the cluster and run ksail cluster create again",
        error.reason()
    ))
}

/// Step 5: connect with the resolved context and wait for `GET /version`.
async fn api_server_step(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
    created: bool,
) -> Result<Cluster, Failure> {
    let cluster = k8s::connect(&settings.kube).await?;
    let deadline = Instant::now() + settings.timeout;
    let mut looks = 0;
    let version = wait::until(deadline, || {
        looks += 1;
        let client = cluster.client.clone();
        async move {
            Ok(match k8s::with_timeout(client.apiserver_version()).await {
                Ok(info) => Poll::Ready(info.git_version),
                Err(error) => Poll::Pending(format!("GET /version failed: {}", error.reason())),
            })
        }
    })
    .await
    .map_err(|error| {
        wait::timed_out(
            &format!("api server {}", cluster.server),
            settings.timeout,
            &error,
        )
    })?;
    let line = format!("api server: ready ({version})");
    match created || looks > 1 {
        true => done(reporter, &line),
        false => skipped(reporter, &line),
    }
    Ok(cluster)
}
