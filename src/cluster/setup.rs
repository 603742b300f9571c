//! Create steps 6–9 (cluster.md "cluster create"), shared with `cluster update`: the initial
//! artifact, the engine installation, the bootstrap objects and the engine-ready wait. Each step
//! prints one progress line (`✓` done, `–` already done) and is idempotent.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::Value;
use tokio::time::Instant;

use super::bootstrap::{self, SyncSpec};
use super::install::{self as manifests, Applier};
use super::wait::{self, Poll, Seen};
use crate::artifact::{self, ArtifactError, Selection};
use crate::config::GitOpsEngine;
use crate::context::Context;
use crate::error::Failure;
use crate::gitops::argocd::resources as argocd;
use crate::gitops::argocd::{Application, ApplicationContext, application_verdict};
use crate::gitops::engine::{Resource, discover_apis};
use crate::gitops::flux::resources as flux;
use crate::gitops::flux::{
    FluxKind, FluxObject, KustomizationContext, SourceState, SourceVerdict, kustomization_verdict,
    served_verdict,
};
use crate::gitops::verdict::{Verdict, short_revision};
use crate::k8s::{K8sError, with_timeout};
use crate::output::{OutputFormat, short_digest};
use crate::progress::Reporter;
use crate::publish::publish_selection;
use crate::registry::{RegistryClient, ResolvedCredentials};
use crate::resolve::{PushTarget, SyncTarget};
use crate::settings::PushSettings;
use crate::settings::cluster::ClusterSettings;
use crate::signing::cosign;

/// `✓ <text>`: the step did its work.
pub fn done(reporter: &dyn Reporter, text: &str) {
    reporter.info(&format!("✓ {text}"));
}

/// `– <text>`: the step was already done, or does not apply.
pub fn skipped(reporter: &dyn Reporter, text: &str) {
    reporter.info(&format!("– {text}"));
}

/// `✗ <text>`: the step failed (the `error:` line follows).
pub fn failed(reporter: &dyn Reporter, text: &str) {
    reporter.info(&format!("✗ {text}"));
}

/// What step 6 pushes when the tag is absent; decided in preflight.
pub enum InitialArtifact {
    /// The source directory's files, already selected and validated.
    Source(Selection),
    /// The empty artifact: the source directory is missing or has no files to push.
    Empty,
}

/// Preflight for the source directory (no side effects): a directory with files must select
/// and validate (exit 2 otherwise); a missing or empty one means the empty artifact.
pub fn preflight_source(
    reporter: &dyn Reporter,
    settings: &ClusterSettings,
) -> Result<InitialArtifact, Failure> {
    let selection = match artifact::select(&settings.source.written, &settings.source.resolved) {
        Ok(selection) => selection,
        Err(ArtifactError::SourceMissing { .. } | ArtifactError::NoFiles { .. }) => {
            return Ok(InitialArtifact::Empty);
        }
        Err(error) => return Err(error.into()),
    };
    for warning in &selection.warnings {
        reporter.warn(warning);
    }
    if settings.validate {
        let validation = artifact::validate(&settings.source.written, &selection, None);
        if let Some(error) = validation.error() {
            for line in &artifact::report_lines(&validation).0 {
                reporter.report(line);
            }
            return Err(error.into());
        }
    }
    Ok(InitialArtifact::Source(selection))
}

/// Everything steps 6–9 need.
pub struct GitopsSetup<'a> {
    pub ctx: &'a Context,
    pub settings: &'a ClusterSettings,
    pub sync: &'a SyncTarget,
    pub client: &'a kube::Client,
    pub credentials: ResolvedCredentials,
}

impl GitopsSetup<'_> {
    /// Step 6: the digest the engine must end up serving, and whether it was pushed now. Never
    /// overwrites an existing tag.
    pub async fn initial_artifact(
        &self,
        artifact: InitialArtifact,
    ) -> Result<(String, bool), Failure> {
        let reporter = self.ctx.reporter();
        let sync = self.sync;
        let env = self.ctx.env.lookup();
        let client = RegistryClient::with_env(
            &sync.host,
            sync.plain_http,
            self.credentials.credentials.clone(),
            self.credentials.source.clone(),
            &env,
        )
        .map_err(|error| {
            Failure::failed(format!("cannot read {}: {}", sync.host_ref, error.reason()))
        })?;
        let existing = client
            .head_manifest(&sync.repository, &sync.tag)
            .await
            .map_err(|error| {
                Failure::failed(format!(
                    "cannot read {}: {}; check that the registry is running and reachable",
                    sync.host_ref,
                    error.reason()
                ))
            })?;
        if let Some(digest) = existing {
            skipped(
                reporter,
                &format!("artifact {}: exists (kept)", sync.host_ref),
            );
            // A verifying cluster refuses the kept artifact unless it carries our signature.
            if let Some(signer) = &self.settings.signer {
                let reference = format!("{}/{}", sync.host, sync.repository);
                let attached = cosign::attach(
                    &client,
                    &sync.repository,
                    &reference,
                    &digest,
                    signer,
                )
                .await
                .map_err(|error| {
                    Failure::failed(format!(
                        "cannot sign {}: {}; check that the registry is running and writable",
                        sync.host_ref,
                        error.reason()
                    ))
                })?;
                let line = format!("artifact {}: signature {}", sync.host_ref, attached.tag);
                match attached.reused {
                    true => skipped(reporter, &format!("{line} exists (kept)")),
                    false => done(reporter, &format!("{line} written")),
                }
            }
            return Ok((digest, false));
        }
        let settings = self.push_settings();
        let (selection, from_git) = match artifact {
            InitialArtifact::Source(selection) => (selection, true),
            InitialArtifact::Empty => (Selection::empty_artifact(), false),
        };
        let digest = publish_selection(
            self.ctx,
            &settings,
            self.credentials.clone(),
            selection,
            from_git,
        )
        .await?;
        done(
            reporter,
            &format!(
                "artifact {}: pushed {}",
                sync.host_ref,
                short_digest(&digest)
            ),
        );
        Ok((digest, true))
    }

    fn push_settings(&self) -> PushSettings {
        let sync = self.sync;
        let settings = self.settings;
        PushSettings {
            target: PushTarget {
                host: sync.host.clone(),
                repository: sync.repository.clone(),
                tag: sync.tag.clone(),
                url: sync.host_ref.clone(),
                local: sync.local,
                plain_http: sync.plain_http,
                configured: true,
            },
            sync: Some(sync.clone()),
            mismatch_warning: None,
            source: settings.source.clone(),
            // Preflight validated the tree already.
            validate: false,
            // The first artifact never replaces a push that lands while create runs.
            force: false,
            // Read only by `workload push`; create bounds its steps itself.
            timeout: None,
            credentials: settings.credentials.clone().unwrap_or_else(|| {
                crate::registry::CredentialRequest {
                    host: sync.host.clone(),
                    registry_string: None,
                }
            }),
            source_date_epoch: settings.source_date_epoch.clone(),
            retry: settings.retry,
            output: OutputFormat::Text,
            signer: settings.signer.clone(),
        }
    }

    /// Step 7: server-side apply of the pinned engine manifest, unless it is fully installed.
    /// Returns whether it applied anything.
    pub async fn install_engine(&self) -> Result<bool, Failure> {
        let settings = self.settings;
        let reporter = self.ctx.reporter();
        let Some((install, objects)) = self.engine_manifest().await? else {
            return Ok(false);
        };
        if manifests::already_installed(self.client, &objects, install.namespace).await {
            skipped(reporter, &format!("{}: installed", install.label));
            return Ok(false);
        }
        let deadline = Instant::now() + settings.timeout;
        manifests::install(self.client, objects, &install, deadline, settings.timeout).await?;
        done(reporter, &format!("{}: installed", install.label));
        Ok(true)
    }

    /// Whether every CRD of the engine's manifest is Established and every workload available:
    /// an API group being served only says the CRDs were applied (an interrupted create).
    pub async fn engine_installed(&self) -> Result<bool, Failure> {
        let Some((install, objects)) = self.engine_manifest().await? else {
            return Ok(true);
        };
        Ok(manifests::already_installed(self.client, &objects, install.namespace).await)
    }

    /// The configured engine's install manifest, fetched and parsed (`None` for no engine).
    async fn engine_manifest(
        &self,
    ) -> Result<Option<(manifests::EngineInstall, Vec<Value>)>, Failure> {
        let settings = self.settings;
        let override_source = match settings.engine {
            GitOpsEngine::Flux => self.ctx.env.var(manifests::FLUX_OPERATOR_MANIFEST_ENV),
            _ => self.ctx.env.var(manifests::ARGOCD_MANIFEST_ENV),
        };
        let Some(install) = manifests::engine_install(
            settings.engine,
            &settings.flux_operator_version,
            override_source,
            &self.ctx.env.cwd,
        ) else {
            return Ok(None);
        };
        let env = self.ctx.env.lookup();
        let text =
            manifests::fetch(&install.source, &settings.retry, self.ctx.reporter(), &env).await?;
        let objects = manifests::parse_objects(&text, &install.source)?;
        Ok(Some((install, objects)))
    }

    fn sync_spec(&self) -> Result<SyncSpec<'_>, Failure> {
        Ok(SyncSpec {
            url: self.sync.require_url()?,
            tag: &self.sync.tag,
            host: &self.sync.host,
            kustomization_file: self.settings.kustomization_file.as_deref(),
            http: self.settings.in_cluster_http,
            pull: self.settings.pull_credentials.as_ref(),
            verify: self
                .settings
                .verify_key
                .as_ref()
                .map(|key| key.pem.as_str()),
        })
    }

    /// The bootstrap objects for the configured engine, the main one last.
    pub fn bootstrap_objects(&self) -> Result<Vec<Value>, Failure> {
        let spec = self.sync_spec()?;
        let settings = self.settings;
        Ok(match settings.engine {
            GitOpsEngine::None => Vec::new(),
            GitOpsEngine::Flux => {
                let mut objects = Vec::new();
                if let Some(pull) = spec.pull {
                    objects.push(bootstrap::flux_pull_secret(spec.host, pull));
                }
                if let Some(public_key) = spec.verify {
                    objects.push(bootstrap::flux_verify_secret(public_key));
                }
                objects.push(bootstrap::flux_instance(
                    &spec,
                    &settings.flux_operator_version,
                    &settings.flux_distribution_version,
                ));
                objects
            }
            GitOpsEngine::ArgoCD => vec![
                bootstrap::argocd_repository_secret(&spec),
                bootstrap::argocd_application(&spec),
            ],
        })
    }

    /// Step 8: apply the bootstrap objects that differ from what the cluster holds. Returns
    /// whether it applied any.
    pub async fn apply_bootstrap(&self) -> Result<bool, Failure> {
        let objects = self.bootstrap_objects()?;
        let Some(main) = objects.last() else {
            return Ok(false);
        };
        let label = format!(
            "{} {}/{}",
            main["kind"].as_str().unwrap_or_default(),
            main["metadata"]["namespace"].as_str().unwrap_or_default(),
            main["metadata"]["name"].as_str().unwrap_or_default()
        );
        let mut applier = Applier::new(self.client.clone());
        let mut applied = false;
        for object in objects {
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(live) = applier.get(&object, &namespace).await?
                && matches_live(&live, &object)
            {
                continue;
            }
            applier.apply(object, &namespace).await?;
            applied = true;
        }
        match applied {
            true => done(self.ctx.reporter(), &format!("{label}: applied")),
            false => skipped(self.ctx.reporter(), &format!("{label}: unchanged")),
        }
        Ok(applied)
    }

    /// `resource` at the version the server serves its kind (Flux 2.5 serves OCIRepository at
    /// v1beta2 only); ksail's preferred version when discovery fails or does not list the kind
    /// yet (flux-operator installs the Flux CRDs after the FluxInstance is applied).
    async fn served(&self, resource: &Resource) -> ApiResource {
        match discover_apis(self.client).await {
            Ok(apis) => apis.choose(resource),
            Err(error) => {
                tracing::debug!("discovery for the engine wait failed: {error}");
                None
            }
        }
        .unwrap_or_else(|| resource.preferred())
    }

    /// Step 9: wait until the engine serves `digest` (exit 3 at `--timeout`), judging its objects
    /// by the reconcile readiness rules whenever a watch reports a change. `changed` says
    /// whether steps 6–8 changed anything in this run; if not and the engine is ready at the
    /// first look, the step was already done.
    pub async fn wait_ready(&self, digest: &str, changed: bool) -> Result<(), Failure> {
        let settings = self.settings;
        let url = self.sync.require_url()?;
        let target = format!("{url}:{}", self.sync.tag);
        let engine = settings.engine;
        let (name, watched) = match engine {
            GitOpsEngine::None => return Ok(()),
            GitOpsEngine::Flux => (
                "Flux",
                vec![
                    (flux::FLUX_INSTANCE.preferred(), flux::NAMESPACE),
                    (self.served(&flux::OCI_REPOSITORY).await, flux::NAMESPACE),
                    (self.served(&flux::KUSTOMIZATION).await, flux::NAMESPACE),
                ],
            ),
            GitOpsEngine::ArgoCD => (
                "Argo CD",
                vec![(argocd::APPLICATION.preferred(), argocd::NAMESPACE)],
            ),
        };
        let deadline = Instant::now() + settings.timeout;
        if engine == GitOpsEngine::ArgoCD {
            let application = get_object(
                self.client,
                &argocd::APPLICATION.preferred(),
                argocd::NAMESPACE,
                argocd::APPLICATION_NAME,
            )
            .await
            .map_err(|error| read_failure("Application argocd/ksail", error))?;
            if matches!(
                argocd_ready(application.as_ref(), digest)?,
                Poll::Pending(_)
            ) {
                // A refresh makes the controller compare the new Application now rather than
                // at its next resync.
                request_refresh(self.client).await?;
            }
        }
        let cannot_list = |kind: &str, error: K8sError| {
            read_failure(&format!("{kind}s in the {name} namespace"), error)
        };
        let ((), looks) = wait::until_watched(
            deadline,
            self.client,
            &watched,
            cannot_list,
            |seen| match engine {
                GitOpsEngine::ArgoCD => argocd_ready(
                    seen.get(argocd::APPLICATION.kind, argocd::APPLICATION_NAME),
                    digest,
                ),
                _ => flux_ready(seen, digest),
            },
        )
        .await
        .map_err(|error| wait::timed_out(name, settings.timeout, &error))?;
        let line = format!("{name}: ready, syncing {target}");
        match changed || looks > 1 {
            true => done(self.ctx.reporter(), &line),
            false => skipped(self.ctx.reporter(), &line),
        }
        Ok(())
    }
}

/// GET one object; `Ok(None)` when absent.
pub async fn get_object(
    client: &kube::Client,
    resource: &ApiResource,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, K8sError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
    let object = with_timeout(api.get_opt(name)).await?;
    Ok(object.and_then(|object| serde_json::to_value(object).ok()))
}

/// Reading `what` from the cluster failed (exit 1).
pub(super) fn read_failure(what: &str, error: K8sError) -> Failure {
    Failure::failed(format!(
        "cannot read {what}: {}; check that the cluster is reachable",
        error.reason()
    ))
}

fn ready_condition(object: &Value) -> Option<(String, String)> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|condition| condition["type"] == "Ready")
        .map(|condition| {
            (
                condition["status"]
                    .as_str()
                    .unwrap_or("Unknown")
                    .to_string(),
                condition["message"].as_str().unwrap_or("").to_string(),
            )
        })
}

/// FluxInstance `flux-system/flux` Ready, and the sync OCIRepository complete at `digest` by
/// the source readiness rules (a stalled or terminally failed source ends the wait).
fn flux_ready(seen: &Seen, digest: &str) -> Result<Poll<()>, Failure> {
    // A sync Kustomization that cannot apply the first artifact fails create at once, whatever
    // the FluxInstance says meanwhile (it stays not ready because of it).
    let sync = sync_kustomization(seen)?;
    if let Some(sync) = &sync
        && let Verdict::Failed { reason, message } = sync_verdict(sync, seen)
    {
        return Err(Failure::failed(format!(
            "Kustomization flux-system/flux-system failed: {reason}: {}; fix the manifests, run ksail workload push, then ksail workload reconcile",
            crate::error::one_line(&message)
        )));
    }
    let instance = seen.get(flux::FLUX_INSTANCE.kind, flux::INSTANCE_NAME);
    match instance.and_then(ready_condition) {
        Some((status, _)) if status == "True" => {}
        Some((status, message)) => {
            return Ok(Poll::Pending(format!(
                "FluxInstance flux-system/flux Ready={status} {message}"
            )));
        }
        None => {
            return Ok(Poll::Pending(
                "FluxInstance flux-system/flux has no Ready condition yet".into(),
            ));
        }
    }
    let Some(source) = seen.get(flux::OCI_REPOSITORY.kind, flux::SYNC_NAME) else {
        return Ok(Poll::Pending(
            "OCIRepository flux-system/flux-system does not exist yet".into(),
        ));
    };
    let source = FluxObject::parse_as(FluxKind::OciRepository, source).map_err(|error| {
        Failure::failed(format!(
            "cannot read OCIRepository flux-system/flux-system: {error}"
        ))
    })?;
    let source_poll = match served_verdict(&source, Some(digest)) {
        SourceVerdict::Complete { .. } => Poll::Ready(()),
        SourceVerdict::Waiting { status } => {
            Poll::Pending(format!("OCIRepository flux-system/flux-system: {status}"))
        }
        // The source has not pulled the pushed tag yet; it will at its next interval.
        SourceVerdict::DigestMismatch {
            served_revision, ..
        } => Poll::Pending(format!(
            "OCIRepository flux-system/flux-system serves {}, waiting for {}",
            short_revision(&served_revision),
            short_digest(digest)
        )),
        SourceVerdict::Failed { reason, message } => {
            return Err(Failure::failed(format!(
                "OCIRepository flux-system/flux-system failed: {reason}: {}; check that the cluster reaches the registry, then run ksail cluster update",
                crate::error::one_line(&message)
            )));
        }
    };
    if let Poll::Pending(status) = source_poll {
        return Ok(Poll::Pending(status));
    }
    Ok(match &sync {
        None => Poll::Pending("Kustomization flux-system/flux-system does not exist yet".into()),
        Some(sync) => match sync_verdict(sync, seen) {
            Verdict::Complete { .. } => Poll::Ready(()),
            Verdict::Waiting { status }
            | Verdict::Failed {
                message: status, ..
            } => Poll::Pending(format!("Kustomization flux-system/flux-system: {status}")),
        },
    })
}

/// The sync Kustomization `flux-system/flux-system`, when seen.
fn sync_kustomization(seen: &Seen) -> Result<Option<FluxObject>, Failure> {
    seen.get(flux::KUSTOMIZATION.kind, flux::SYNC_NAME)
        .map(|object| {
            FluxObject::parse_as(FluxKind::Kustomization, object).map_err(|error| {
                Failure::failed(format!(
                    "cannot read Kustomization flux-system/flux-system: {error}"
                ))
            })
        })
        .transpose()
}

/// The reconcile rules for the sync Kustomization, without a request token (nobody asked for a
/// reconcile: the controller only has to have applied the current spec), gated on the revision
/// the sync source serves.
fn sync_verdict(sync: &FluxObject, seen: &Seen) -> Verdict {
    let revision = seen
        .get(flux::OCI_REPOSITORY.kind, flux::SYNC_NAME)
        .and_then(|source| FluxObject::parse_as(FluxKind::OciRepository, source).ok())
        .and_then(|source| source.artifact_revision);
    let context = KustomizationContext {
        token: "",
        created_during_attempt: true,
        source: Some(SourceState {
            revision,
            is_sync_source: false,
            sync_source_complete: true,
        }),
    };
    kustomization_verdict(sync, &context)
}

/// Application `argocd/ksail` meets the completion rules with `D` = `digest`.
fn argocd_ready(application: Option<&Value>, digest: &str) -> Result<Poll<()>, Failure> {
    let Some(application) = application else {
        return Ok(Poll::Pending(
            "Application argocd/ksail does not exist yet".into(),
        ));
    };
    let application = Application::parse(application).map_err(|error| {
        Failure::failed(format!(
            "cannot read Application argocd/ksail: {error}; check the Argo CD version ksail installed"
        ))
    })?;
    let context = ApplicationContext {
        recorded_operation: None,
        expected_digest: Some(digest),
        gated: true,
    };
    Ok(match application_verdict(&application, &context) {
        Verdict::Complete { .. } => Poll::Ready(()),
        Verdict::Waiting { status } => Poll::Pending(format!("Application argocd/ksail: {status}")),
        Verdict::Failed { reason, message } => {
            return Err(Failure::failed(format!(
                "Application argocd/ksail failed: {reason}: {}; check the manifests in the source directory, push a fix and run ksail workload reconcile",
                crate::error::one_line(&message)
            )));
        }
    })
}

async fn request_refresh(client: &kube::Client) -> Result<(), Failure> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        argocd::NAMESPACE,
        &argocd::APPLICATION.preferred(),
    );
    with_timeout(api.patch(
        argocd::APPLICATION_NAME,
        &PatchParams::default(),
        &Patch::Merge(crate::gitops::argocd::driver::refresh_patch()),
    ))
    .await
    .map_err(|error| {
        Failure::failed(format!(
            "cannot request a refresh of Application argocd/ksail: {}; check that the cluster is reachable",
            error.reason()
        ))
    })?;
    Ok(())
}

/// Whether `live` already holds everything `desired` sets (a Secret's `stringData` may have
/// been stored as base64 `data`).
pub fn matches_live(live: &Value, desired: &Value) -> bool {
    let Value::Object(fields) = desired else {
        return live == desired;
    };
    fields
        .iter()
        .all(|(key, value)| match (key.as_str(), live.get(key)) {
            ("stringData", Some(live_value)) if contains(live_value, value) => true,
            ("stringData", _) => string_data_in_data(live.get("data"), value),
            (_, Some(live_value)) => contains(live_value, value),
            (_, None) => false,
        })
}

fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(live), Value::Object(desired)) => desired
            .iter()
            .all(|(key, value)| live.get(key).is_some_and(|l| contains(l, value))),
        (Value::Array(live), Value::Array(desired)) => {
            live.len() == desired.len() && live.iter().zip(desired).all(|(l, d)| contains(l, d))
        }
        _ => live == desired,
    }
}

fn string_data_in_data(data: Option<&Value>, string_data: &Value) -> bool {
    use base64::Engine as _;
    let (Some(Value::Object(data)), Value::Object(wanted)) = (data, string_data) else {
        return false;
    };
    wanted.iter().all(|(key, value)| {
        let decoded = data.get(key).and_then(Value::as_str).and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        });
        decoded.is_some_and(|bytes| Some(bytes.as_slice()) == value.as_str().map(str::as_bytes))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_objects_match_desired_subsets() {
        let desired = json!({"kind": "X", "metadata": {"name": "a"}, "spec": {"l": [1, {"b": 2}]}});
        let live = json!({"kind": "X", "metadata": {"name": "a", "uid": "u"}, "spec": {"l": [1, {"b": 2, "c": 3}]}, "status": {}});
        assert!(matches_live(&live, &desired));
        let drifted = json!({"kind": "X", "metadata": {"name": "a"}, "spec": {"l": [1]}});
        assert!(!matches_live(&drifted, &desired));
    }

    #[test]
    fn secrets_match_through_base64_data() {
        let desired = json!({"kind": "Secret", "stringData": {"url": "oci://x"}});
        let live = json!({"kind": "Secret", "data": {"url": "b2NpOi8veA=="}});
        assert!(matches_live(&live, &desired));
        let other = json!({"kind": "Secret", "data": {"url": "eA=="}});
        assert!(!matches_live(&other, &desired));
    }

    const DIGEST: &str = "sha256:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";

    fn ready_instance() -> (&'static str, Value) {
        let instance = json!({
            "kind": "FluxInstance",
            "metadata": {"name": "flux", "namespace": "flux-system"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded"}]}
        });
        ("FluxInstance", instance)
    }

    fn source(conditions: Value, revision: &str) -> (&'static str, Value) {
        let source = json!({
            "kind": "OCIRepository",
            "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
            "status": {
                "observedGeneration": 1,
                "conditions": conditions,
                "artifact": {"revision": revision}
            }
        });
        ("OCIRepository", source)
    }

    fn ready() -> Value {
        json!([{"type": "Ready", "status": "True", "reason": "Succeeded", "message": "stored"}])
    }

    /// The sync Kustomization at generation 1 with `conditions`, having applied `applied`.
    fn sync_kustomization(
        conditions: Value,
        observed: Option<i64>,
        applied: &str,
    ) -> (&'static str, Value) {
        let kustomization = json!({
            "kind": "Kustomization",
            "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
            "status": {
                "observedGeneration": observed,
                "conditions": conditions,
                "lastAppliedRevision": applied,
                "lastAttemptedRevision": applied,
            }
        });
        ("Kustomization", kustomization)
    }

    #[test]
    fn flux_is_ready_when_the_sync_source_serves_the_digest_and_the_kustomization_applied_it() {
        let revision = format!("dev@{DIGEST}");
        let without = Seen::listed(vec![ready_instance(), source(ready(), &revision)]);
        assert!(matches!(
            flux_ready(&without, DIGEST),
            Ok(Poll::Pending(status)) if status == "Kustomization flux-system/flux-system does not exist yet"
        ));
        let seen = Seen::listed(vec![
            ready_instance(),
            source(ready(), &revision),
            sync_kustomization(ready(), Some(1), &revision),
        ]);
        assert!(matches!(flux_ready(&seen, DIGEST), Ok(Poll::Ready(()))));
    }

    /// A first artifact the sync Kustomization cannot build fails create with the reason at
    /// once, although the FluxInstance is not ready (and never will be).
    #[test]
    fn a_sync_kustomization_that_fails_ends_the_wait_with_its_reason() {
        let revision = format!("dev@{DIGEST}");
        let failed = json!([{"type": "Ready", "status": "False", "reason": "BuildFailed",
            "message": "kustomize build failed:\n no-such-file.yaml", "observedGeneration": 1}]);
        let not_ready_instance = (
            "FluxInstance",
            json!({"kind": "FluxInstance", "metadata": {"name": "flux", "namespace": "flux-system"},
                "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "Progressing"}]}}),
        );
        let seen = Seen::listed(vec![
            not_ready_instance,
            source(ready(), &revision),
            sync_kustomization(failed, None, &revision),
        ]);
        let failure = match flux_ready(&seen, DIGEST) {
            Err(failure) => failure,
            Ok(_) => panic!("a failed sync Kustomization is a failure"),
        };
        assert_eq!(
            failure.message,
            "Kustomization flux-system/flux-system failed: BuildFailed: kustomize build failed: no-such-file.yaml; fix the manifests, run ksail workload push, then ksail workload reconcile"
        );
    }

    #[test]
    fn flux_waits_for_the_instance_then_for_the_pushed_digest() {
        let pending = |seen: &Seen| match flux_ready(seen, DIGEST) {
            Ok(Poll::Pending(status)) => status,
            _ => panic!("expected a pending status"),
        };
        assert_eq!(
            pending(&Seen::listed(vec![])),
            "FluxInstance flux-system/flux has no Ready condition yet"
        );
        assert_eq!(
            pending(&Seen::listed(vec![ready_instance()])),
            "OCIRepository flux-system/flux-system does not exist yet"
        );
        let old = "sha256:ffffffffffff7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b";
        let status = pending(&Seen::listed(vec![
            ready_instance(),
            source(ready(), &format!("dev@{old}")),
        ]));
        assert!(
            status.starts_with(
                "OCIRepository flux-system/flux-system serves dev@sha256:ffffffffffff"
            ),
            "{status}"
        );
    }

    #[test]
    fn a_stalled_sync_source_ends_the_wait_with_its_reason() {
        let stalled = json!([
            {"type": "Stalled", "status": "True", "reason": "URLInvalid", "message": "bad\nurl"},
            {"type": "Ready", "status": "False", "reason": "URLInvalid", "message": "bad url"}
        ]);
        let seen = Seen::listed(vec![ready_instance(), source(stalled, "")]);
        let failure = match flux_ready(&seen, DIGEST) {
            Err(failure) => failure,
            Ok(_) => panic!("a stalled source is a failure"),
        };
        assert!(
            failure
                .message
                .starts_with("OCIRepository flux-system/flux-system failed: URLInvalid: bad url;"),
            "{}",
            failure.message
        );
    }
}
