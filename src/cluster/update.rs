//! Updating a cluster (cluster.md "cluster update"): bring an existing cluster's GitOps
//! set-up in line with `ksail.yaml` — install a newly configured engine, recreate a missing sync
//! object, or repair what drifted on the sync object: its URL and tag and, on a FluxInstance, the
//! Flux version and manifests artifact (each with one merge patch of that field) and its signature
//! verification. Every drift found is repaired in the same run, so a second run finds none; a
//! FluxInstance repair returns once flux-operator has carried it into the sync source. Nothing
//! else about the cluster is touched. With `--dry-run` no write is sent anywhere.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::create::{Preflight, engine_name, preflight};
use super::install::Applier;
use super::provider::Provider;
use super::setup::{GitopsSetup, get_object, matches_live, read_failure};
use super::wait::{self, Poll};
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

    /// Where `field` lives in this object (cluster.md "Tag drift repair").
    fn pointer(self, field: SyncField) -> &'static str {
        match (self, field) {
            (SyncObject::FluxInstance, SyncField::Url) => "/spec/sync/url",
            (SyncObject::FluxInstance, SyncField::Tag) => "/spec/sync/ref",
            (SyncObject::OciRepository, SyncField::Url) => "/spec/url",
            (SyncObject::OciRepository, SyncField::Tag) => "/spec/ref/tag",
            (SyncObject::Application, SyncField::Url) => "/spec/source/repoURL",
            (SyncObject::Application, SyncField::Tag) => "/spec/source/targetRevision",
        }
    }

    /// The live value of `field`.
    pub fn live(self, field: SyncField, object: &Value) -> Option<&str> {
        object.pointer(self.pointer(field)).and_then(Value::as_str)
    }

    /// The one merge patch that sets `field` and nothing else.
    pub fn patch(self, field: SyncField, desired: &str) -> Value {
        merge_patch_at(self.pointer(field), desired)
    }
}

/// A field of the sync object that follows `ksail.yaml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncField {
    /// `oci://<in-cluster registry>/<repository>`: another one after a renamed source directory
    /// or another local registry.
    Url,
    Tag,
}

impl SyncField {
    fn name(self) -> &'static str {
        match self {
            SyncField::Url => "url",
            SyncField::Tag => "tag",
        }
    }
}

/// The merge patch that sets the field at JSON `pointer` (`/spec/sync/ref`) to `value`.
fn merge_patch_at(pointer: &str, value: &str) -> Value {
    pointer
        .rsplit('/')
        .filter(|segment| !segment.is_empty())
        .fold(json!(value), |inner, segment| json!({ segment: inner }))
}

/// What the comparison of cluster and configuration found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// One set-up step, which applies every bootstrap object (drifted ones included).
    Setup(Setup),
    /// Every drift found on the sync object, in the order they are repaired (none: no changes).
    Repair(Vec<Repair>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    InstallEngine,
    /// The engine's API is served but its install is incomplete (an interrupted create).
    CompleteEngine,
    CreateSync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The sync object follows another repository or tag: what `workload reconcile` reports as
    /// "the cluster follows a different artifact".
    Sync {
        object: SyncObject,
        field: SyncField,
        live: String,
        desired: String,
    },
    /// A field of the FluxInstance's `spec.distribution` that `ksail.yaml` decides differs
    /// (`version`, or the `artifact` of the operator version).
    Distribution {
        field: &'static str,
        live: String,
        desired: String,
    },
    /// The FluxInstance's signature verification (its verify patch and public-key Secret)
    /// differs from `spec.workload.signing` (docs/signing.md).
    Verification { live: String, desired: String },
}

/// A report line: the change, then the normal or the dry-run suffix.
fn report_line(text: &str, suffix: &str, dry_run: bool) -> String {
    format!("{text} {}", if dry_run { DRY_RUN_SUFFIX } else { suffix })
}

impl Setup {
    pub fn report_line(self, engine: GitOpsEngine, sync_ref: &str, dry_run: bool) -> String {
        let engine = engine_name(engine);
        let (text, suffix) = match self {
            Setup::InstallEngine => (format!("gitops engine: none → {engine}"), "(installed)"),
            Setup::CompleteEngine => (
                format!("gitops engine: incomplete → {engine}"),
                "(completed)",
            ),
            Setup::CreateSync => (format!("gitops sync: missing → {sync_ref}"), "(created)"),
        };
        report_line(&text, suffix, dry_run)
    }
}

impl Repair {
    pub fn report_line(&self, dry_run: bool) -> String {
        let text = match self {
            Repair::Sync {
                field,
                live,
                desired,
                ..
            } => format!("workload {}: {live} → {desired}", field.name()),
            Repair::Distribution {
                field,
                live,
                desired,
            } => format!("flux distribution {field}: {live} → {desired}"),
            Repair::Verification { live, desired } => {
                format!("signature verification: {live} → {desired}")
            }
        };
        report_line(&text, "(repaired in place)", dry_run)
    }

    async fn apply(
        &self,
        client: &kube::Client,
        apis: &ApiGroups,
        desired: &[Value],
    ) -> Result<(), Failure> {
        match self {
            Repair::Sync {
                object,
                field,
                desired: value,
                ..
            } => {
                if *field == SyncField::Url {
                    // The credentials name the registry (Argo CD's repository Secret its URL):
                    // they are in place before the sync object turns to it.
                    apply_desired(client, desired, |object| object["kind"] == "Secret").await?;
                }
                let what = format!("sync {}", field.name());
                merge_patch(client, apis, *object, object.patch(*field, value), &what).await
            }
            Repair::Distribution { field, desired, .. } => {
                let patch = merge_patch_at(&format!("/spec/distribution/{field}"), desired);
                let what = format!("distribution {field}");
                merge_patch(client, apis, SyncObject::FluxInstance, patch, &what).await
            }
            Repair::Verification { .. } => repair_verification(client, desired).await,
        }
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
    let mut plan = decide(&cluster.client, settings, sync, &apis, &desired).await?;
    if plan != Plan::Setup(Setup::InstallEngine) {
        // Without the manifest (offline, no override) the sync objects are still checked.
        let complete = setup.engine_installed().await.unwrap_or_else(|error| {
            reporter.warn(&format!(
                "cannot check that the {} install is complete: {error}",
                engine_name(settings.engine)
            ));
            true
        });
        if !complete {
            plan = Plan::Setup(Setup::CompleteEngine);
        }
    }
    match plan {
        Plan::Repair(repairs) if repairs.is_empty() => {
            reporter.result("No changes detected");
            return Ok(());
        }
        Plan::Setup(step) => {
            if !dry_run {
                let artifact = artifact.unwrap_or(super::setup::InitialArtifact::Empty);
                let (digest, _) = setup.initial_artifact(artifact).await?;
                if step != Setup::CreateSync {
                    setup.install_engine().await?;
                }
                setup.apply_bootstrap().await?;
                setup.wait_ready(&digest, true).await?;
            }
            let sync_ref = format!("{}:{}", sync.require_url()?, sync.tag);
            reporter.result(&step.report_line(settings.engine, &sync_ref, dry_run));
        }
        Plan::Repair(repairs) => {
            for repair in &repairs {
                if !dry_run {
                    repair.apply(&cluster.client, &apis, &desired).await?;
                }
                // Each line once its change is made: a later failure prints none for it.
                reporter.result(&repair.report_line(dry_run));
            }
            let operator_carries_it = repairs.iter().any(|repair| match repair {
                Repair::Sync { object, .. } => *object == SyncObject::FluxInstance,
                Repair::Verification { .. } => true,
                Repair::Distribution { .. } => false,
            });
            if !dry_run && operator_carries_it {
                wait_for_flux_source(&cluster.client, &apis, sync, settings).await?;
            }
        }
    }
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

/// Compare the cluster with the configuration (reads only): every drift found, in the order
/// they are repaired; none when the cluster matches.
async fn decide(
    client: &kube::Client,
    settings: &ClusterSettings,
    sync: &SyncTarget,
    apis: &ApiGroups,
    desired: &[Value],
) -> Result<Plan, Failure> {
    let served = match settings.engine {
        GitOpsEngine::Flux => apis.flux_served(),
        _ => apis.argocd_served(),
    };
    if !served {
        return Ok(Plan::Setup(Setup::InstallEngine));
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
        let mut repairs = Vec::new();
        for (field, wanted) in [
            (SyncField::Url, sync.require_url()?),
            (SyncField::Tag, sync.tag.as_str()),
        ] {
            let value = object.live(field, &live).unwrap_or_default();
            if value != wanted {
                repairs.push(Repair::Sync {
                    object,
                    field,
                    live: value.to_string(),
                    desired: wanted.to_string(),
                });
            }
        }
        if object == SyncObject::FluxInstance {
            repairs.extend(distribution_drift(&live, desired));
            repairs.extend(verification_drift(client, settings, &live, desired).await?);
        }
        return Ok(Plan::Repair(repairs));
    }
    Ok(Plan::Setup(Setup::CreateSync))
}

/// The fields of `spec.distribution` that `ksail.yaml` decides and whose live value differs from
/// the FluxInstance ksail would apply: `version` (`spec.workload.flux.distributionVersion`) and,
/// when the live object names one, `artifact` (the manifests of `operatorVersion`; without it the
/// operator uses the manifests bundled with it, a choice left alone). Other fields (`registry`,
/// a `variant`) are not ksail.yaml's to decide and are not compared.
fn distribution_drift(live: &Value, desired: &[Value]) -> Vec<Repair> {
    let Some(wanted) = desired
        .iter()
        .find(|object| object["kind"] == "FluxInstance")
        .and_then(|instance| instance.pointer("/spec/distribution"))
    else {
        return Vec::new();
    };
    let live = &live["spec"]["distribution"];
    [("version", true), ("artifact", false)]
        .into_iter()
        .filter_map(|(field, required)| {
            let desired = wanted[field].as_str()?;
            let live = match live[field].as_str() {
                Some(value) => value,
                None if required => "none",
                None => return None,
            };
            (live != desired).then(|| Repair::Distribution {
                field,
                live: live.to_string(),
                desired: desired.to_string(),
            })
        })
        .collect()
}

/// flux-operator carries a FluxInstance's sync into OCIRepository `flux-system/flux-system` on its
/// next reconcile, a moment after the patch; a `workload reconcile` started before that would
/// find the old source serving the old artifact and fail ("the cluster follows a different
/// artifact"). So update returns once the source follows the configured URL and tag, and
/// verifies when signing is configured.
async fn wait_for_flux_source(
    client: &kube::Client,
    apis: &ApiGroups,
    sync: &SyncTarget,
    settings: &ClusterSettings,
) -> Result<(), Failure> {
    let resource = apis
        .choose(&flux::OCI_REPOSITORY)
        .unwrap_or_else(|| flux::OCI_REPOSITORY.preferred());
    let url = sync.require_url()?;
    let verifies = settings.verify_key.is_some();
    let name = format!("OCIRepository {}/{}", flux::NAMESPACE, flux::SYNC_NAME);
    let deadline = tokio::time::Instant::now() + settings.timeout;
    wait::until_watched(
        deadline,
        client,
        &[(resource, flux::NAMESPACE)],
        |kind, error| read_failure(&format!("{kind}s in {}", flux::NAMESPACE), error),
        |seen| {
            let Some(source) = seen.get(flux::OCI_REPOSITORY.kind, flux::SYNC_NAME) else {
                return Ok(Poll::Pending(format!("{name} does not exist")));
            };
            let live = |field| {
                SyncObject::OciRepository
                    .live(field, source)
                    .unwrap_or_default()
            };
            let (live_url, live_tag) = (live(SyncField::Url), live(SyncField::Tag));
            let live_verifies = source.pointer("/spec/verify").is_some();
            Ok(
                if live_url == url && live_tag == sync.tag && live_verifies == verifies {
                    Poll::Ready(())
                } else {
                    Poll::Pending(format!(
                        "{name} still follows {live_url}:{live_tag}{}, so flux-operator has not applied the FluxInstance yet (is it running in {}?)",
                        if live_verifies { " (verified)" } else { "" },
                        flux::NAMESPACE
                    ))
                },
            )
        },
    )
    .await
    .map_err(|error| wait::timed_out("the FluxInstance's sync source", settings.timeout, &error))?;
    Ok(())
}

/// Whether the live FluxInstance verifies as `spec.workload.signing` says: its kustomize
/// patches are the ones ksail writes, and the public-key Secret holds the configured key.
async fn verification_drift(
    client: &kube::Client,
    settings: &ClusterSettings,
    live: &Value,
    desired: &[Value],
) -> Result<Option<Repair>, Failure> {
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
    Ok(Some(Repair::Verification {
        live: live.to_string(),
        desired,
    }))
}

/// Server-side apply of the public-key Secret (when signing is configured) and the FluxInstance:
/// ksail owns its `spec.kustomize`, so patches it no longer writes are removed.
async fn repair_verification(client: &kube::Client, desired: &[Value]) -> Result<(), Failure> {
    apply_desired(client, desired, |object| {
        object["kind"] == "FluxInstance" || object["metadata"]["name"] == flux::VERIFY_SECRET_NAME
    })
    .await
}

/// Server-side apply of the bootstrap objects `pick` chooses, in their order.
async fn apply_desired(
    client: &kube::Client,
    desired: &[Value],
    pick: impl Fn(&Value) -> bool,
) -> Result<(), Failure> {
    let mut applier = Applier::new(client.clone());
    for object in desired.iter().filter(|object| pick(object)) {
        let namespace = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        applier.apply(object.clone(), &namespace).await?;
    }
    Ok(())
}

/// One JSON merge patch of the drifted field (`what` names it in the error); labels, annotations
/// and every other field stay.
async fn merge_patch(
    client: &kube::Client,
    apis: &ApiGroups,
    object: SyncObject,
    patch: Value,
    what: &str,
) -> Result<(), Failure> {
    let (namespace, name) = object.namespace_and_name();
    let resource = apis
        .choose(object.resource())
        .unwrap_or_else(|| object.resource().preferred());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    with_timeout(api.patch(name, &PatchParams::default(), &Patch::Merge(patch)))
        .await
        .map_err(|error| {
            Failure::failed(format!(
                "cannot repair the {what} of {namespace}/{name}: {}; check the cluster and run ksail cluster update again",
                error.reason()
            ))
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_patches_touch_only_their_field() {
        let (url, tag) = ("oci://kind-local-registry:5000/apps", "v2");
        for (object, field, value, patch) in [
            (
                SyncObject::FluxInstance,
                SyncField::Url,
                url,
                r#"{"spec":{"sync":{"url":"oci://kind-local-registry:5000/apps"}}}"#,
            ),
            (
                SyncObject::FluxInstance,
                SyncField::Tag,
                tag,
                r#"{"spec":{"sync":{"ref":"v2"}}}"#,
            ),
            (
                SyncObject::OciRepository,
                SyncField::Url,
                url,
                r#"{"spec":{"url":"oci://kind-local-registry:5000/apps"}}"#,
            ),
            (
                SyncObject::OciRepository,
                SyncField::Tag,
                tag,
                r#"{"spec":{"ref":{"tag":"v2"}}}"#,
            ),
            (
                SyncObject::Application,
                SyncField::Url,
                url,
                r#"{"spec":{"source":{"repoURL":"oci://kind-local-registry:5000/apps"}}}"#,
            ),
            (
                SyncObject::Application,
                SyncField::Tag,
                tag,
                r#"{"spec":{"source":{"targetRevision":"v2"}}}"#,
            ),
        ] {
            let sent = object.patch(field, value);
            assert_eq!(sent.to_string(), patch, "{object:?} {field:?}");
            // What the patch sets is what is read back as the live value.
            assert_eq!(
                object.live(field, &sent),
                Some(value),
                "{object:?} {field:?}"
            );
        }
    }

    #[test]
    fn report_lines() {
        let sync = "oci://kind-local-registry:5000/k8s:dev";
        let repair = Repair::Sync {
            object: SyncObject::FluxInstance,
            field: SyncField::Tag,
            live: "v1".into(),
            desired: "v2".into(),
        };
        assert_eq!(
            repair.report_line(false),
            "workload tag: v1 → v2 (repaired in place)"
        );
        assert_eq!(
            repair.report_line(true),
            "workload tag: v1 → v2 (dry run: not changed)"
        );
        let distribution = Repair::Distribution {
            field: "version",
            live: "2.x".into(),
            desired: "2.9.x".into(),
        };
        assert_eq!(
            distribution.report_line(false),
            "flux distribution version: 2.x → 2.9.x (repaired in place)"
        );
        assert_eq!(
            Setup::InstallEngine.report_line(GitOpsEngine::Flux, sync, false),
            "gitops engine: none → Flux (installed)"
        );
        assert_eq!(
            Setup::CompleteEngine.report_line(GitOpsEngine::ArgoCD, sync, true),
            "gitops engine: incomplete → ArgoCD (dry run: not changed)"
        );
        assert_eq!(
            Setup::CreateSync.report_line(GitOpsEngine::ArgoCD, sync, false),
            "gitops sync: missing → oci://kind-local-registry:5000/k8s:dev (created)"
        );
    }

    fn instance(distribution: Value) -> Value {
        json!({"kind": "FluxInstance", "spec": {"distribution": distribution}})
    }

    #[test]
    fn distribution_drift_names_the_version_and_a_named_artifact_that_differ() {
        let manifests = "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests";
        let desired = [instance(json!({
            "version": "2.9.x",
            "registry": "ghcr.io/fluxcd",
            "artifact": format!("{manifests}:v0.60.0"),
        }))];
        let same = instance(desired[0]["spec"]["distribution"].clone());
        assert_eq!(distribution_drift(&same, &desired), []);

        let live = instance(json!({
            "version": "2.x",
            "registry": "registry.example.com/fluxcd",
            "variant": "upstream-alpine",
            "artifact": format!("{manifests}:v0.58.1"),
        }));
        assert_eq!(
            distribution_drift(&live, &desired),
            [
                Repair::Distribution {
                    field: "version",
                    live: "2.x".into(),
                    desired: "2.9.x".into(),
                },
                Repair::Distribution {
                    field: "artifact",
                    live: format!("{manifests}:v0.58.1"),
                    desired: format!("{manifests}:v0.60.0"),
                },
            ]
        );

        // No artifact: the operator's bundled manifests, left alone.
        let bundled = instance(json!({"version": "2.9.x", "registry": "ghcr.io/fluxcd"}));
        assert_eq!(distribution_drift(&bundled, &desired), []);
    }
}
