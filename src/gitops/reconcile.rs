//! A `workload reconcile` run (reconcile.md): make the GitOps engine sync now, wait until the
//! cluster serves what is in the registry, and explain failures.
//!
//! A run creates one token, then makes up to 3 attempts under the shared retry policy, each
//! under its own deadline: connect and select the engine, look up the expected revision, recover
//! stuck HelmReleases (Flux), request reconciliation, and watch until every tracked object is
//! complete, failed or blocked. After a final failure with a known engine it prints the
//! diagnostics report, then one error line.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use super::Engine;
use super::argocd::driver::{self as argocd, ArgoAttempt};
use super::attempt::{Deadline, kube_error, seconds};
use super::diagnostics::{self, Summary, Target};
use super::engine::{
    ApiVersions, choose_api_versions, discover_apis, not_installed, select_engine,
};
use super::expected::{Expected, Lookup};
use super::flux::driver::{self as flux, FluxApis, FluxAttempt, skipped_note};
use super::flux::helm_recovery::{self, HelmReleaseReset};
use super::flux::resources as flux_resources;
use super::report::{AttemptError, ObjectReport, ObjectState};
use super::verdict::short_revision;
use crate::context::Context;
use crate::error::{Failure, FailureClass};
use crate::k8s::{self, Cluster};
use crate::output::{OutputFormat, counted};
use crate::retry::{self, Exhausted, Retryable as _};
use crate::settings::ReconcileSettings;
use std::sync::atomic::{AtomicBool, Ordering};

/// What the run has learned so far; filled in by attempts, read for the JSON document.
#[derive(Default)]
pub struct RunState {
    inner: Mutex<RunFacts>,
}

#[derive(Default)]
struct RunFacts {
    status: Option<&'static str>,
    engine: Option<Engine>,
    attempts: u32,
    expected: Option<(String, String)>,
    objects: Vec<ObjectReport>,
    resets: Vec<HelmReleaseReset>,
    diagnostics: Option<Value>,
    /// Flux: the GitOps namespace and the blocked map, for the diagnostics target.
    gitops_namespace: Option<String>,
    blocked: std::collections::BTreeMap<String, String>,
    versions: Option<ApiVersions>,
}

impl RunState {
    fn with<R>(&self, f: impl FnOnce(&mut RunFacts) -> R) -> R {
        let mut facts = self
            .inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut facts)
    }

    pub fn to_json(&self, started: Instant) -> Map<String, Value> {
        self.with(|facts| {
            let value = json!({
                "status": facts.status,
                "engine": facts.engine.map(Engine::json_name),
                "attempts": facts.attempts,
                "durationMs": started.elapsed().as_millis() as u64,
                "expected": facts.expected.as_ref().map(|(url, digest)| json!({"url": url, "digest": digest})),
                "objects": facts.objects.iter().map(ObjectReport::to_json).collect::<Vec<_>>(),
                "helmReleaseResets": facts.resets.iter().map(HelmReleaseReset::to_json).collect::<Vec<_>>(),
                "diagnostics": facts.diagnostics,
            });
            match value {
                Value::Object(map) => map,
                _ => Map::new(),
            }
        })
    }
}

/// What a successful attempt reports for the summary line.
struct Success {
    engine: Engine,
    /// Kustomizations or Applications that completed.
    count: usize,
    skipped_note: String,
    expected: Expected,
    /// The revision the engine reports: what the Flux sync source serves (`dev@sha256:…`), or
    /// `D` once every gated Application reached it.
    revision: Option<String>,
}

/// One run under the shared retry policy; `Ok` carries the success line
/// (`reconciled Flux: 6 Kustomizations ready at dev@sha256:… in 12.3s`).
pub async fn reconcile(
    ctx: &Context,
    settings: &ReconcileSettings,
    run: &RunState,
    started: Instant,
) -> Result<Option<String>, Failure> {
    let reporter = ctx.reporter();
    if settings.kwok {
        reporter.warn("KWOK simulates GitOps controllers; reconciliation skipped");
        run.with(|facts| facts.status = Some("succeeded"));
        return Ok(None);
    }
    let cluster = k8s::connect(&settings.kube).await?;
    let token = new_token(OffsetDateTime::now_utc());
    let env = ctx.env.lookup();
    let lookup = Lookup::new(
        settings.sync.as_ref(),
        settings.credentials.as_ref(),
        &env,
        reporter,
    );
    let inputs = AttemptInputs {
        ctx,
        settings,
        cluster: &cluster,
        token: &token,
        lookup: lookup.as_ref(),
        run,
        recovering: AtomicBool::new(false),
    };
    let result = retry::retry(&settings.retry, reporter, Some(&ctx.cancel), |n| {
        attempt(&inputs, n)
    })
    .await;
    match result {
        Ok(success) => {
            run.with(|facts| facts.status = Some("succeeded"));
            Ok(Some(success_line(&success, settings, started.elapsed())))
        }
        Err(exhausted) => Err(failure(&inputs, exhausted).await),
    }
}

struct AttemptInputs<'a> {
    ctx: &'a Context,
    settings: &'a ReconcileSettings,
    cluster: &'a Cluster,
    token: &'a str,
    lookup: Option<&'a Lookup>,
    run: &'a RunState,
    /// HelmRelease recovery is running: a signal must let it finish (it resumes what it
    /// suspended, within its own budget) rather than drop it halfway through its resumes.
    recovering: AtomicBool,
}

async fn attempt(inputs: &AttemptInputs<'_>, n: u32) -> Result<Success, AttemptError> {
    let ctx = inputs.ctx;
    let settings = inputs.settings;
    inputs.run.with(|facts| facts.attempts = n);
    if ctx.cancel.is_cancelled() {
        return Err(AttemptError::Interrupted);
    }
    let deadline = Deadline::after(settings.timeout);
    let steps = attempt_steps(inputs, deadline);
    let mut steps = std::pin::pin!(steps);
    tokio::select! {
        result = &mut steps => result,
        () = ctx.cancel.cancelled() => {
            if inputs.recovering.load(Ordering::SeqCst) {
                // Recovery sees the same cancellation and returns once it has resumed.
                let _ = steps.await;
            }
            Err(AttemptError::Interrupted)
        }
    }
}

async fn attempt_steps(
    inputs: &AttemptInputs<'_>,
    deadline: Deadline,
) -> Result<Success, AttemptError> {
    let ctx = inputs.ctx;
    let reporter = ctx.reporter();
    let settings = inputs.settings;
    let client = &inputs.cluster.client;

    // 1. Engine selection from one GET /apis.
    let apis = deadline
        .bound(discover_apis(client))
        .await?
        .map_err(kube_error)?;
    let selection =
        select_engine(settings.configured_engine, &apis).map_err(AttemptError::Engine)?;
    let versions = choose_api_versions(&apis);
    // Said once per run, by the first attempt that gets this far (an earlier attempt may have
    // failed before selecting the engine).
    let first_selection = inputs.run.with(|facts| {
        facts.versions = Some(versions.clone());
        facts.engine.replace(selection.engine).is_none()
    });
    if first_selection && let Some(line) = selection.detected_line() {
        reporter.info(&line);
    }
    if first_selection && selection.engine == Engine::ArgoCd && settings.exclude_given {
        reporter.warn("--exclude applies to Flux Kustomizations only; ignored");
    }

    // 2. The expected revision.
    let expected = match inputs.lookup {
        Some(lookup) => deadline
            .bound(lookup.lookup(reporter))
            .await?
            .map_err(AttemptError::Expected)?,
        None => Expected::Unchecked,
    };
    if let Expected::Digest { host_ref, digest } = &expected {
        let first_lookup = inputs.run.with(|facts| {
            facts
                .expected
                .replace((host_ref.clone(), digest.clone()))
                .is_none()
        });
        if first_lookup {
            let tag = settings.sync.as_ref().map_or("", |sync| sync.tag.as_str());
            reporter.info(&format!(
                "reconcile: expected revision {}",
                short_revision(&format!("{tag}@{digest}"))
            ));
        }
    }

    match selection.engine {
        Engine::Flux => flux_attempt(inputs, &versions, expected, deadline).await,
        Engine::ArgoCd => argo_attempt(inputs, &versions, expected, deadline).await,
    }
}

async fn flux_attempt(
    inputs: &AttemptInputs<'_>,
    versions: &ApiVersions,
    expected: Expected,
    deadline: Deadline,
) -> Result<Success, AttemptError> {
    let ctx = inputs.ctx;
    let settings = inputs.settings;
    let client = &inputs.cluster.client;

    // 3. HelmRelease recovery: the first step that changes the cluster. The attempt deadline
    // and a signal both stop it; it always resumes what it suspended.
    let stop = ctx.cancel.child_token();
    let stopper = deadline.cancels(stop.clone());
    inputs.recovering.store(true, Ordering::SeqCst);
    let recovery = helm_recovery::recover(
        client,
        versions.helm_release.as_ref(),
        ctx.reporter(),
        settings.recovery,
        inputs.token,
        &stop,
    )
    .await;
    inputs.recovering.store(false, Ordering::SeqCst);
    drop(stopper);
    inputs
        .run
        .with(|facts| facts.resets.extend(recovery.resets.iter().cloned()));
    if ctx.cancel.is_cancelled() {
        return Err(AttemptError::Interrupted);
    }

    let Some(kustomization) = versions.kustomization.clone() else {
        return Err(AttemptError::Engine(not_installed(Engine::Flux)));
    };
    let apis = FluxApis {
        kustomization,
        sources: [
            &versions.oci_repository,
            &versions.git_repository,
            &versions.bucket,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect(),
        flux_instance: versions.flux_instance.clone(),
    };
    let (summary, result) = flux::reconcile(FluxAttempt {
        client,
        apis: &apis,
        token: inputs.token,
        expected: expected.clone(),
        lookup: inputs.lookup,
        excludes: &settings.excludes,
        reporter: ctx.reporter(),
        deadline,
    })
    .await;
    inputs.run.with(|facts| {
        facts.objects = summary.objects.clone();
        facts.gitops_namespace = Some(summary.gitops_namespace.clone());
        facts.blocked = summary.blocked.clone();
    });
    result?;
    Ok(Success {
        engine: Engine::Flux,
        count: summary.tracked,
        skipped_note: skipped_note(&summary),
        expected,
        revision: summary.revision.clone(),
    })
}

async fn argo_attempt(
    inputs: &AttemptInputs<'_>,
    versions: &ApiVersions,
    expected: Expected,
    deadline: Deadline,
) -> Result<Success, AttemptError> {
    let ctx = inputs.ctx;
    let Some(application) = versions.application.clone() else {
        return Err(AttemptError::Engine(not_installed(Engine::ArgoCd)));
    };
    // Gating needs the in-cluster URL; a local registry without a cluster name cannot have one.
    let sync_url = inputs
        .settings
        .sync
        .as_ref()
        .map(|sync| sync.require_url())
        .transpose()
        .map_err(|error| AttemptError::Engine(error.into()))?;
    let (summary, result) = argocd::reconcile(ArgoAttempt {
        client: &inputs.cluster.client,
        application: &application,
        expected: expected.clone(),
        sync_url,
        sync_manual: inputs.settings.sync_manual,
        reporter: ctx.reporter(),
        deadline,
    })
    .await;
    inputs.run.with(|facts| {
        facts.objects = summary.objects.clone();
        facts.gitops_namespace = Some(ARGOCD_NAMESPACE.to_string());
    });
    result?;
    Ok(Success {
        engine: Engine::ArgoCd,
        count: summary.applications,
        skipped_note: String::new(),
        expected,
        revision: summary.revision.clone(),
    })
}

use super::argocd::resources::NAMESPACE as ARGOCD_NAMESPACE;

/// `reconciled Flux: 6 Kustomizations ready at dev@sha256:<64 hex> (1 excluded) in 12.3s`
fn success_line(success: &Success, settings: &ReconcileSettings, elapsed: Duration) -> String {
    // reconcile.md#text: `at …` whenever D is known. Flux names the revision its sync source
    // serves (`dev@sha256:…`); Argo CD names the digest.
    let at = match (&success.expected, success.engine) {
        (Expected::Unchecked, _) => "(revision not checked)".to_string(),
        (Expected::Digest { digest, .. }, Engine::Flux) => {
            match (&success.revision, &settings.sync) {
                (Some(revision), _) => format!("at {revision}"),
                (None, Some(sync)) => format!("at {}@{digest}", sync.tag),
                (None, None) => format!("at {digest}"),
            }
        }
        (Expected::Digest { digest, .. }, Engine::ArgoCd) => {
            format!("at {}", success.revision.as_deref().unwrap_or(digest))
        }
    };
    match success.engine {
        Engine::Flux => format!(
            "reconciled Flux: {} ready {at}{} in {}",
            counted(success.count, "Kustomization", "Kustomizations"),
            success.skipped_note,
            seconds(elapsed)
        ),
        Engine::ArgoCd => format!(
            "reconciled Argo CD: {} synced and healthy {at} in {}",
            counted(success.count, "Application", "Applications"),
            seconds(elapsed)
        ),
    }
}

/// What to do when source-controller refuses the artifact's signature (docs/signing.md).
fn verification_hint() -> String {
    format!(
        "the artifact carries no signature the cluster trusts: push it with the signing key whose public half is in Secret {}/{} (spec.workload.signing.key), or run ksail cluster update if that key changed",
        flux_resources::NAMESPACE,
        flux_resources::VERIFY_SECRET_NAME
    )
}

/// The final error: diagnostics first (exit 1 or 3 with a known engine), then one line.
async fn failure(inputs: &AttemptInputs<'_>, exhausted: Exhausted<AttemptError>) -> Failure {
    let ran_out = exhausted.ran_out();
    let attempts = exhausted.attempts;
    let error = exhausted.error;
    let class = error.class();
    if class == FailureClass::Interrupted {
        return Failure::interrupted();
    }
    let report_shown = if error.wants_diagnostics() {
        diagnose(inputs).await
    } else {
        false
    };
    let settings = inputs.settings;
    // Under --output json the diagnostics are in the document, not "above" the line: the line
    // (the document's `error`) ends in what to do instead.
    let report_shown = report_shown && settings.output != OutputFormat::Json;
    let message = match &error {
        AttemptError::Engine(failure) => return failure.clone(),
        AttemptError::Failed { roots, blocked, .. } => {
            // A refused signature has one fix whatever the diagnostics say: the line ends in it.
            let (hint, report_shown) = match roots.as_slice() {
                [root] if root.reason == flux_resources::VERIFICATION_ERROR_REASON => {
                    (verification_hint(), false)
                }
                _ => (
                    "inspect them with kubectl describe, fix the cause and push again".to_string(),
                    report_shown,
                ),
            };
            if roots.len() == 1 {
                let root = &roots[0];
                diagnostics::summary_line(
                    &Summary::RootFailure {
                        object: &root.name,
                        reason: &root.reason,
                        blocked: *blocked,
                    },
                    report_shown,
                    &hint,
                )
            } else {
                let names: Vec<String> = roots.iter().map(|root| root.name.clone()).collect();
                diagnostics::summary_line(
                    &Summary::Several { objects: &names },
                    report_shown,
                    &hint,
                )
            }
        }
        AttemptError::TimedOut {
            unfinished,
            total,
            message,
            ..
        } => {
            if unfinished.is_empty() {
                format!("reconcile {message}; raise --timeout or check the GitOps controllers")
            } else {
                diagnostics::summary_line(
                    &Summary::Timeout {
                        after: settings.timeout,
                        attempts,
                        not_ready: unfinished,
                        total: *total,
                    },
                    report_shown,
                    "raise --timeout or check the GitOps controllers",
                )
            }
        }
        AttemptError::Kube {
            unreachable: true,
            reason,
            ..
        } => format!(
            "reconcile failed{}: {}; check --kubeconfig and --context, or start the cluster",
            after_attempts(ran_out, attempts),
            k8s::unreachable_message(&inputs.cluster.server, &inputs.cluster.context, reason)
        ),
        AttemptError::Kube { reason, .. } => format!(
            "reconcile failed{}: {reason}; check the cluster's API server and try again",
            after_attempts(ran_out, attempts)
        ),
        AttemptError::Expected(expected) if !expected.is_retryable() => expected.to_string(),
        AttemptError::Expected(expected) => format!(
            "reconcile failed{}: {expected}; check that the registry is reachable",
            after_attempts(ran_out, attempts)
        ),
        AttemptError::Interrupted => return Failure::interrupted(),
    };
    inputs.run.with(|facts| {
        facts.status = Some(if class == FailureClass::TimedOut {
            "timedOut"
        } else {
            "failed"
        })
    });
    Failure::new(class, message)
}

fn after_attempts(ran_out: bool, attempts: u32) -> String {
    if ran_out {
        // `ran_out` means at least two attempts (`Exhausted::ran_out`).
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// Collect and print the diagnostics report; true when one was shown.
async fn diagnose(inputs: &AttemptInputs<'_>) -> bool {
    let (engine, versions, namespace, blocked, failed) = inputs.run.with(|facts| {
        let failed = facts
            .objects
            .iter()
            .filter(|object| object.state == ObjectState::Failed)
            .filter_map(|object| {
                let reason = object.reason.clone()?;
                let key = (object.object.kind.clone(), object.object.to_string());
                Some((key, (reason, object.message.clone())))
            })
            .collect::<BTreeMap<_, _>>();
        (
            facts.engine,
            facts.versions.clone(),
            facts.gitops_namespace.clone(),
            facts.blocked.clone(),
            failed,
        )
    });
    let (Some(engine), Some(versions)) = (engine, versions) else {
        return false;
    };
    let kinds: Vec<(&'static str, kube::api::ApiResource)> = match engine {
        Engine::Flux => [
            ("Kustomizations", &versions.kustomization),
            ("HelmReleases", &versions.helm_release),
            ("OCIRepositories", &versions.oci_repository),
        ]
        .into_iter()
        .filter_map(|(heading, resource)| resource.clone().map(|r| (heading, r)))
        .collect(),
        Engine::ArgoCd => versions
            .application
            .clone()
            .map(|r| vec![("Applications", r)])
            .unwrap_or_default(),
    };
    let target = Target {
        gitops_namespace: namespace.unwrap_or_else(|| match engine {
            Engine::Flux => "flux-system".to_string(),
            Engine::ArgoCd => ARGOCD_NAMESPACE.to_string(),
        }),
        kinds,
        blocked,
        failed,
    };
    let report = diagnostics::collect(
        &inputs.cluster.client,
        engine,
        &target,
        inputs.settings.diagnostics_budget,
        OffsetDateTime::now_utc(),
    )
    .await;
    let Some(report) = report else {
        return false;
    };
    for line in diagnostics::render(&report) {
        inputs.ctx.reporter().report(&line);
    }
    inputs
        .run
        .with(|facts| facts.diagnostics = Some(diagnostics::to_json(&report)));
    true
}

/// The run's token: the current UTC time in RFC 3339 with nanoseconds.
pub fn new_token(now: OffsetDateTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");
    now.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| now.unix_timestamp_nanos().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_rfc3339_with_nanoseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_777_629_600_123_456_789).unwrap();
        assert_eq!(new_token(at), "2026-05-01T10:00:00.123456789Z");
    }
}
