//! Updating a cluster (cluster.md "cluster update"): bring an existing cluster's GitOps
//! set-up in line with `ksail.yaml` — install a newly configured engine, recreate a missing sync
//! object, or repair a drifted sync tag with one merge patch of that field. Nothing else about
//! the cluster is touched. With `--dry-run` no write is sent anywhere.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::create::{Preflight, engine_name, preflight};
use super::install::Applier;
use super::provider::Provider;
use super::setup::{GitopsSetup, get_object, matches_live, read_failure};
use crate::config::GitOpsEngine;
use crate::context::Context;
use crate::error::Failure;
use crate::gitops::argocd::resources as argocd;
use crate::gitops::engine::Resource;
use crate::gitops::engine::{ApiGroups, discover_apis};
use crate::gitops::flux::resources::{self as flux, OPERATOR_GROUP as FLUX_OPERATOR_GROUP};
use crate::k8s::{self, K8sError, with_timeout};
use crate::resolve::SyncTarget;
use crate::settings::cluster::ClusterSettings;

const HINT: &str = "run ksail workload reconcile to wait for the new revision";
const DRY_RUN_SUFFIX: &str = "(dry run: not changed)";

/// Where the live sync tag lives (cluster.md "Tag drift repair").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncObject {
    FluxInstance,
    OciRepository,
    Application,
}

impl SyncObject {
    fn resource(self) -> &'static Resource {
        match self {
            SyncObject::FluxInstance => &flux::FLUX_INSTANCE,
            SyncObject::OciRepository => &flux::OCI_REPOSITORY,
            SyncObject::Application => &argocd::APPLICATION,
        }
    }

    fn namespace_and_name(self) -> (&'static str, &'static str) {
        match self {
            SyncObject::FluxInstance => (flux::NAMESPACE, flux::INSTANCE_NAME),
            SyncObject::OciRepository => (flux::NAMESPACE, flux::SYNC_NAME),
            SyncObject::Application => (argocd::NAMESPACE, argocd::APPLICATION_NAME),
        }
    }

    /// The live sync tag.
    pub fn live_tag(self, object: &Value) -> Option<&str> {
        let pointer = match self {
            SyncObject::FluxInstance => "/spec/sync/ref",
            SyncObject::OciRepository => "/spec/ref/tag",
            SyncObject::Application => "/spec/source/targetRevision",
        };
        object.pointer(pointer).and_then(Value::as_str)
    }

    /// The one merge patch that sets the tag and nothing else.
    pub fn tag_patch(self, desired: &str) -> Value {
        match self {
            SyncObject::FluxInstance => json!({"spec": {"sync": {"ref": desired}}}),
            SyncObject::OciRepository => json!({"spec": {"ref": {"tag": desired}}}),
            SyncObject::Application => json!({"spec": {"source": {"targetRevision": desired}}}),
        }
    }
}

/// What the comparison of cluster and configuration found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    InstallEngine,
    /// The engine's API is served but its install is incomplete (an interrupted create).
    CompleteEngine,
    CreateSync,
    RepairTag {
        object: SyncObject,
        live: String,
        desired: String,
    },
    /// The FluxInstance's signature verification (its verify patch and public-key Secret)
    /// differs from `spec.workload.signing` (docs/signing.md).
    RepairVerification {
        live: String,
        desired: String,
    },
}

impl Action {
    /// The report line, with the normal or the dry-run suffix.
    pub fn report_line(&self, engine: GitOpsEngine, sync_ref: &str, dry_run: bool) -> String {
        let (text, suffix) = match self {
            Action::InstallEngine => (
                format!("gitops engine: none → {}", engine_name(engine)),
                "(installed)",
            ),
            Action::CompleteEngine => (
                format!("gitops engine: incomplete → {}", engine_name(engine)),
                "(completed)",
            ),
            Action::CreateSync => (format!("gitops sync: missing → {sync_ref}"), "(created)"),
            Action::RepairTag { live, desired, .. } => (
                format!("workload tag: {live} → {desired}"),
                "(repaired in place)",
            ),
            Action::RepairVerification { live, desired } => (
                format!("signature verification: {live} → {desired}"),
                "(repaired in place)",
            ),
        };
        format!("{text} {}", if dry_run { DRY_RUN_SUFFIX } else { suffix })
    }
}

/// Compare the cluster with `settings` and act (or, with `dry_run`, only say what would change);
/// prints the report line, returns nothing else.
pub async fn update(
    ctx: &Context,
    settings: &ClusterSettings,
    dry_run: bool,
) -> Result<(), Failure> {
    let reporter = ctx.reporter();
    let provider = Provider::new(settings.distribution, settings.kubeconfig.clone());
    let Preflight {
        artifact,
        credentials,
    } = preflight(ctx, settings, &provider).await?;
    if !provider.cluster_exists(&settings.cluster).await? {
        return Err(Failure::failed(format!(
            "cluster {} does not exist; run ksail cluster create",
            settings.cluster
        )));
    }
    let cluster = k8s::connect(&settings.kube).await?;
    let apis = discover_apis(&cluster.client)
        .await
        .map_err(|error| unreachable(&cluster, error))?;
    other_engine_warning(ctx, settings.engine, &apis);
    let Some(sync) = settings
        .sync
        .as_ref()
        .filter(|_| settings.engine != GitOpsEngine::None)
    else {
        reporter.result("No changes detected");
        return Ok(());
    };
    let setup = GitopsSetup {
        ctx,
        settings,
        sync,
        client: &cluster.client,
        credentials,
    };
    let desired = setup.bootstrap_objects()?;
    let mut action = decide(&cluster.client, settings, sync, &apis, &desired).await?;
    if action != Some(Action::InstallEngine) {
        // Without the manifest (offline, no override) the sync objects are still checked.
        let complete = setup.engine_installed().await.unwrap_or_else(|error| {
            reporter.warn(&format!(
                "cannot check that the {} install is complete: {error}",
                engine_name(settings.engine)
            ));
            true
        });
        if !complete {
            action = Some(Action::CompleteEngine);
        }
    }
    let Some(action) = action else {
        reporter.result("No changes detected");
        return Ok(());
    };
    let sync_ref = format!("{}:{}", sync.require_url()?, sync.tag);
    let line = action.report_line(settings.engine, &sync_ref, dry_run);
    if !dry_run {
        let artifact = artifact.unwrap_or(super::setup::InitialArtifact::Empty);
        match &action {
            Action::InstallEngine | Action::CompleteEngine => {
                let (digest, _) = setup.initial_artifact(artifact).await?;
                setup.install_engine().await?;
                setup.apply_bootstrap().await?;
                setup.wait_ready(&digest, true).await?;
            }
            Action::CreateSync => {
                let (digest, _) = setup.initial_artifact(artifact).await?;
                setup.apply_bootstrap().await?;
                setup.wait_ready(&digest, true).await?;
            }
            Action::RepairTag {
                object, desired, ..
            } => repair_tag(&cluster.client, &apis, *object, desired).await?,
            Action::RepairVerification { .. } => {
                repair_verification(&cluster.client, &desired).await?;
            }
        }
    }
    reporter.result(&line);
    if !dry_run {
        reporter.info(HINT);
    }
    Ok(())
}

fn unreachable(cluster: &k8s::Cluster, error: K8sError) -> Failure {
    Failure::failed(k8s::unreachable_message(
        &cluster.server,
        &cluster.context,
        &error.reason(),
    ))
}

fn other_engine_warning(ctx: &Context, configured: GitOpsEngine, apis: &ApiGroups) {
    let other = match configured {
        GitOpsEngine::Flux if apis.argocd_served() => "Argo CD",
        GitOpsEngine::ArgoCD if apis.flux_served() => "Flux",
        _ => return,
    };
    ctx.reporter().warn(&format!(
        "{other} is installed but spec.cluster.gitOpsEngine is {}; leaving it in place",
        engine_name(configured)
    ));
}

/// Compare the cluster with the configuration (reads only).
async fn decide(
    client: &kube::Client,
    settings: &ClusterSettings,
    sync: &SyncTarget,
    apis: &ApiGroups,
    desired: &[Value],
) -> Result<Option<Action>, Failure> {
    let served = match settings.engine {
        GitOpsEngine::Flux => apis.flux_served(),
        _ => apis.argocd_served(),
    };
    if !served {
        return Ok(Some(Action::InstallEngine));
    }
    let candidates: &[SyncObject] = match settings.engine {
        GitOpsEngine::Flux if apis.group(FLUX_OPERATOR_GROUP).is_some() => {
            &[SyncObject::FluxInstance, SyncObject::OciRepository]
        }
        GitOpsEngine::Flux => &[SyncObject::OciRepository],
        _ => &[SyncObject::Application],
    };
    for &object in candidates {
        let (namespace, name) = object.namespace_and_name();
        // The version that serves this kind (Flux 2.5 serves OCIRepository at v1beta2 only).
        let Some(resource) = apis.choose(object.resource()) else {
            continue;
        };
        let live = get_object(client, &resource, namespace, name)
            .await
            .map_err(|error| read_failure(&format!("{namespace}/{name}"), error))?;
        let Some(live) = live else {
            continue;
        };
        let live_tag = object.live_tag(&live).unwrap_or_default();
        if live_tag == sync.tag {
            if object == SyncObject::FluxInstance {
                return verification_drift(client, settings, &live, desired).await;
            }
            return Ok(None);
        }
        return Ok(Some(Action::RepairTag {
            object,
            live: live_tag.to_string(),
            desired: sync.tag.clone(),
        }));
    }
    Ok(Some(Action::CreateSync))
}

/// Whether the live FluxInstance verifies as `spec.workload.signing` says: its kustomize
/// patches are the ones ksail writes, and the public-key Secret holds the configured key.
async fn verification_drift(
    client: &kube::Client,
    settings: &ClusterSettings,
    live: &Value,
    desired: &[Value],
) -> Result<Option<Action>, Failure> {
    let wanted = desired
        .iter()
        .find(|object| object["kind"] == "FluxInstance")
        .and_then(|instance| instance.pointer("/spec/kustomize"));
    let live_patches = live.pointer("/spec/kustomize");
    let live_verifies = live_patches
        .and_then(|kustomize| kustomize["patches"].as_array())
        .is_some_and(|patches| {
            patches.iter().any(|patch| {
                patch["patch"]
                    .as_str()
                    .is_some_and(|text| text.contains("/spec/verify"))
            })
        });
    let desired_secret = desired
        .iter()
        .find(|object| object["metadata"]["name"] == flux::VERIFY_SECRET_NAME);
    let key_matches = match desired_secret {
        None => true,
        Some(secret) => {
            let resource = ApiResource::erase::<Secret>(&());
            let name = flux::VERIFY_SECRET_NAME;
            get_object(client, &resource, flux::NAMESPACE, name)
                .await
                .map_err(|error| read_failure(&format!("{}/{name}", flux::NAMESPACE), error))?
                .is_some_and(|live_secret| matches_live(&live_secret, secret))
        }
    };
    if live_patches == wanted && key_matches {
        return Ok(None);
    }
    let live = match (live_verifies, key_matches, desired_secret.is_some()) {
        (false, _, _) => "off",
        (true, false, _) => "cosign with another public key",
        (true, true, false) => "cosign",
        (true, true, true) => "cosign with other patches",
    };
    let desired = match &settings.verify_key {
        Some(key) => format!("cosign {}", key.display),
        None => "off".to_string(),
    };
    Ok(Some(Action::RepairVerification {
        live: live.to_string(),
        desired,
    }))
}

/// Server-side apply of the public-key Secret (when signing is configured) and the FluxInstance:
/// ksail owns its `spec.kustomize`, so patches it no longer writes are removed.
async fn repair_verification(client: &kube::Client, desired: &[Value]) -> Result<(), Failure> {
    let mut applier = Applier::new(client.clone());
    for object in desired.iter().filter(|object| {
        object["kind"] == "FluxInstance" || object["metadata"]["name"] == flux::VERIFY_SECRET_NAME
    }) {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        applier.apply(object.clone(), &namespace).await?;
    }
    Ok(())
}

/// One JSON merge patch of the tag field; labels, annotations and every other field stay.
async fn repair_tag(
    client: &kube::Client,
    apis: &ApiGroups,
    object: SyncObject,
    desired: &str,
) -> Result<(), Failure> {
    let (namespace, name) = object.namespace_and_name();
    let resource = apis
        .choose(object.resource())
        .unwrap_or_else(|| object.resource().preferred());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    with_timeout(api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(object.tag_patch(desired)),
    ))
    .await
    .map_err(|error| {
        Failure::failed(format!(
            "cannot repair the sync tag of {namespace}/{name}: {}; check the cluster and run ksail cluster update again",
            error.reason()
        ))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_patches_touch_only_the_tag() {
        assert_eq!(
            SyncObject::FluxInstance.tag_patch("v2").to_string(),
            r#"{"spec":{"sync":{"ref":"v2"}}}"#
        );
        assert_eq!(
            SyncObject::OciRepository.tag_patch("v2").to_string(),
            r#"{"spec":{"ref":{"tag":"v2"}}}"#
        );
        assert_eq!(
            SyncObject::Application.tag_patch("v2").to_string(),
            r#"{"spec":{"source":{"targetRevision":"v2"}}}"#
        );
    }

    #[test]
    fn live_tags() {
        let instance = json!({"spec": {"sync": {"ref": "v1"}}});
        assert_eq!(SyncObject::FluxInstance.live_tag(&instance), Some("v1"));
        let repository = json!({"spec": {"ref": {"tag": "v3"}}});
        assert_eq!(SyncObject::OciRepository.live_tag(&repository), Some("v3"));
        let app = json!({"spec": {"source": {"targetRevision": "dev"}}});
        assert_eq!(SyncObject::Application.live_tag(&app), Some("dev"));
    }

    #[test]
    fn report_lines() {
        let sync = "oci://kind-local-registry:5000/k8s:dev";
        let repair = Action::RepairTag {
            object: SyncObject::FluxInstance,
            live: "v1".into(),
            desired: "v2".into(),
        };
        assert_eq!(
            repair.report_line(GitOpsEngine::Flux, sync, false),
            "workload tag: v1 → v2 (repaired in place)"
        );
        assert_eq!(
            repair.report_line(GitOpsEngine::Flux, sync, true),
            "workload tag: v1 → v2 (dry run: not changed)"
        );
        assert_eq!(
            Action::InstallEngine.report_line(GitOpsEngine::Flux, sync, false),
            "gitops engine: none → Flux (installed)"
        );
        assert_eq!(
            Action::CompleteEngine.report_line(GitOpsEngine::ArgoCD, sync, true),
            "gitops engine: incomplete → ArgoCD (dry run: not changed)"
        );
        assert_eq!(
            Action::CreateSync.report_line(GitOpsEngine::ArgoCD, sync, false),
            "gitops sync: missing → oci://kind-local-registry:5000/k8s:dev (created)"
        );
    }
}
