//! `ksail workload push` (artifact.md#pipeline): resolve names and credentials, select and
//! validate files, build the artifact once, then push it under the shared retry policy.
//! Steps before the push exit 2 on bad input and send nothing to the registry.

mod plan;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};

use self::plan::{PlanError, Planned};
use super::{Context, Outcome};
use crate::artifact::cache::LayerCache;
use crate::artifact::{self, Annotations};
use crate::cli::PushArgs;
use crate::env_vars;
use crate::error::Failure;
use crate::output::{OutputFormat, human_bytes, register_secret, short_digest};
use crate::registry::{
    CredentialRequest, PushError, PushEvent, PushOutcome, RegistryClient, RegistryErrorKind,
    ResolvedCredentials, check_unchanged, push_artifact, resolve_credentials, upload_artifact,
};
use crate::retry::{self, Exhausted, Retryable};
use crate::settings::{PushSettings, push_settings};

pub const COMMAND: &str = "workload push";

pub async fn run(ctx: &Context, args: PushArgs) -> Outcome {
    let mut report = PushReport::default();
    // Dropping the push on a signal removes the layer's temporary file; the manifest is written
    // last, so the tag is never left pointing at missing blobs.
    let result = tokio::select! {
        result = push(ctx, &args, &mut report) => result,
        () = ctx.cancel.cancelled() => Err(Failure::interrupted()),
    };
    Outcome {
        command: COMMAND,
        result,
        json: (args.output == OutputFormat::Json).then(|| report.to_json()),
    }
}

/// The outcome reported when a signal stops the push.
pub fn interrupted(args: &PushArgs) -> Outcome {
    Outcome {
        command: COMMAND,
        result: Err(Failure::interrupted()),
        json: (args.output == OutputFormat::Json).then(|| PushReport::default().to_json()),
    }
}

/// The members of the JSON document (artifact.md#result); unknown ones stay null.
#[derive(Debug, Default)]
pub struct PushReport {
    status: Option<&'static str>,
    url: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
    layer_digest: Option<String>,
    layer_size: Option<u64>,
    files: Option<usize>,
    annotations: Option<Annotations>,
    sync: Option<(String, String)>,
    validation: Vec<artifact::Problem>,
}

impl PushReport {
    pub fn to_json(&self) -> Map<String, Value> {
        let annotations = self.annotations.as_ref();
        let value = json!({
            "status": self.status,
            "url": self.url,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "layerDigest": self.layer_digest,
            "layerSize": self.layer_size,
            "files": self.files,
            "revision": annotations.map(|a| a.revision.clone()),
            "created": annotations.map(|a| a.created.clone()),
            "source": annotations.map(|a| a.source.clone()),
            "sync": self.sync.as_ref().map(|(url, tag)| json!({"url": url, "tag": tag})),
            "validation": self.validation.iter().map(|p| json!({
                "file": p.file, "line": p.line, "column": p.column, "message": p.message,
            })).collect::<Vec<_>>(),
        });
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

async fn push(ctx: &Context, args: &PushArgs, report: &mut PushReport) -> Result<(), Failure> {
    let printer = &ctx.printer;
    let settings = push_settings(ctx, args)?;
    let target = &settings.target;
    report.url = Some(target.url.clone());
    report.repository = Some(format!("{}/{}", target.host, target.repository));
    report.tag = Some(target.tag.clone());
    report.sync = settings
        .sync
        .as_ref()
        .and_then(|sync| sync.url.as_ref().map(|url| (url.clone(), sync.tag.clone())));

    let credentials = resolve_registry_credentials(ctx, &settings.credentials).await?;

    let selection = artifact::select(&settings.source_display, &settings.source_path)?;
    for warning in &selection.warnings {
        printer.warn(warning);
    }
    report.files = Some(selection.file_count);
    printer.info(&format!(
        "push: source {}: {} files, {} → {}",
        settings.source_display,
        selection.file_count,
        human_bytes(selection.total_bytes),
        target.url
    ));

    let cache = LayerCache::locate(
        ctx.env.var(env_vars::XDG_CACHE_HOME).map(PathBuf::from),
        ctx.env.home(),
    );
    let step = printer.step(&format!(
        "push: packing {} ({} files)",
        settings.source_display, selection.file_count
    ));
    let planned = match plan::plan(&settings, selection, cache.as_ref(), printer, true).await {
        Ok(planned) => planned,
        Err(PlanError::Failed(failure)) => return Err(failure),
        Err(PlanError::Invalid(invalid)) => {
            let (lines, _) = artifact::report_lines(&invalid.validation);
            for line in &lines {
                printer.report(line);
            }
            report.validation = invalid.validation.problems.clone();
            return Err(invalid.error);
        }
    };
    report.layer_digest = Some(planned.layer_digest.clone());
    report.layer_size = Some(planned.layer_size);
    report.annotations = Some(planned.annotations.clone());
    step.finish(&format!(
        "push: layer {} ({}), revision {}",
        short_digest(&planned.layer_digest),
        human_bytes(planned.layer_size),
        short_revision(&planned.annotations.revision)
    ));
    if let Some(warning) = &settings.mismatch_warning {
        printer.warn(warning);
    }

    let outcome = upload(ctx, &settings, credentials, &planned).await?;
    planned.remember(cache.as_ref());
    report.digest = Some(outcome.digest.clone());
    let verb = if outcome.unchanged {
        "unchanged"
    } else {
        "pushed"
    };
    report.status = Some(verb);
    if settings.output == OutputFormat::Text {
        printer.result(&format!("{verb} {}@{}", target.url, outcome.digest));
    }
    Ok(())
}

/// Build `selection` and push it to `settings.target` exactly as `workload push` does (layer
/// cache, retry policy, unchanged check), with credentials already resolved. `cluster create`
/// uses it for the initial artifact (cluster.md step 6); `from_git` is false for the empty
/// artifact. Returns the manifest digest.
pub async fn push_selection(
    ctx: &Context,
    settings: &PushSettings,
    credentials: ResolvedCredentials,
    selection: artifact::Selection,
    from_git: bool,
) -> Result<String, Failure> {
    let printer = &ctx.printer;
    let cache = LayerCache::locate(
        ctx.env.var(env_vars::XDG_CACHE_HOME).map(PathBuf::from),
        ctx.env.home(),
    );
    let planned = match plan::plan(settings, selection, cache.as_ref(), printer, from_git).await {
        Ok(planned) => planned,
        Err(PlanError::Failed(failure)) => return Err(failure),
        Err(PlanError::Invalid(invalid)) => {
            for line in &artifact::report_lines(&invalid.validation).0 {
                printer.report(line);
            }
            return Err(invalid.error);
        }
    };
    let outcome = upload(ctx, settings, credentials, &planned).await?;
    planned.remember(cache.as_ref());
    Ok(outcome.digest)
}

/// Resolve credentials (a credential helper is a child process, so off the async threads) and
/// register every secret with the printer before anything can echo it. Shared by every command
/// that talks to a registry with the user's credentials.
pub async fn resolve_registry_credentials(
    ctx: &Context,
    request: &CredentialRequest,
) -> Result<ResolvedCredentials, Failure> {
    let request_for_lookup = request.clone();
    let env = ctx.env.clone();
    let resolved = tokio::task::spawn_blocking(move || {
        resolve_credentials(&request_for_lookup, &env.lookup(), None)
    })
    .await
    .map_err(|error| Failure::failed(format!("credential lookup stopped: {error}")))??;
    for secret in resolved.credentials.secrets() {
        register_secret(&secret);
    }
    for warning in &resolved.warnings {
        ctx.printer.warn(warning);
    }
    tracing::debug!("using {} for {}", resolved.source, request.host);
    Ok(resolved)
}

impl Retryable for PushError {
    fn is_retryable(&self) -> bool {
        PushError::is_retryable(self)
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        PushError::retry_after(self)
    }

    fn reason(&self) -> String {
        PushError::reason(self)
    }
}

/// Why one attempt failed: the registry, or packing the layer that the cache let us defer.
#[derive(Debug)]
enum AttemptError {
    Push(PushError),
    Build(Failure),
}

impl From<PushError> for AttemptError {
    fn from(error: PushError) -> Self {
        AttemptError::Push(error)
    }
}

impl Retryable for AttemptError {
    fn is_retryable(&self) -> bool {
        matches!(self, AttemptError::Push(error) if error.is_retryable())
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            AttemptError::Push(error) => error.retry_after(),
            AttemptError::Build(_) => None,
        }
    }

    fn reason(&self) -> String {
        match self {
            AttemptError::Push(error) => error.reason(),
            AttemptError::Build(failure) => failure.message.clone(),
        }
    }
}

async fn upload(
    ctx: &Context,
    settings: &PushSettings,
    credentials: ResolvedCredentials,
    planned: &Planned,
) -> Result<PushOutcome, Failure> {
    let target = &settings.target;
    let env = ctx.env.lookup();
    let client = RegistryClient::with_env(
        &target.host,
        target.plain_http,
        credentials.credentials,
        credentials.source,
        &env,
    )
    .map_err(|error| {
        Failure::failed(format!("push to {} failed: {}", target.url, error.reason()))
    })?;
    let printer = &ctx.printer;
    let bar = Arc::new(printer.byte_bar("push: uploading layer", planned.layer_size));
    let started = Instant::now();
    let events = {
        let bar = Arc::clone(&bar);
        move |event: PushEvent| match event {
            PushEvent::ConfigExists => printer.info("push: config blob exists (skipped)"),
            PushEvent::UploadingConfig => printer.info("push: uploading config blob"),
            PushEvent::LayerExists => printer.info("push: layer blob exists (skipped)"),
            PushEvent::UploadingLayer { size } => {
                printer.info(&format!("push: uploading layer ({})", human_bytes(size)));
            }
            PushEvent::Uploaded(sent) => {
                if let Some(bar) = bar.as_ref() {
                    bar.set_position(sent);
                }
            }
            PushEvent::Tagged { digest } => {
                printer.info(&format!(
                    "push: tag {} → {}",
                    target.tag,
                    short_digest(&digest)
                ));
            }
        }
    };
    let attempt = |_| async {
        if planned.is_packed() {
            let upload = planned.upload().await.map_err(AttemptError::Build)?;
            return Ok(
                push_artifact(&client, &target.repository, &target.tag, &upload, &events).await?,
            );
        }
        // From the cache: the unchanged check needs only the layer's digest, so an unchanged
        // re-push never compresses anything. Otherwise pack now and upload.
        if let Some(unchanged) = check_unchanged(
            &client,
            &target.repository,
            &target.tag,
            &planned.layer_digest,
            &planned.annotations.revision,
        )
        .await?
        {
            return Ok(unchanged);
        }
        let upload = planned.upload().await.map_err(AttemptError::Build)?;
        Ok(upload_artifact(&client, &target.repository, &target.tag, &upload, &events).await?)
    };
    let result = retry::retry(&settings.retry, printer, None, attempt).await;
    if let Some(bar) = bar.as_ref() {
        bar.finish_and_clear();
    }
    tracing::debug!("push: registry exchange took {:?}", started.elapsed());
    result.map_err(|exhausted| push_failure(&settings.target.url, &settings.target, exhausted))
}

/// The `error:` line for a failed push (artifact.md#push-failures).
fn push_failure(
    url: &str,
    target: &crate::resolve::PushTarget,
    exhausted: Exhausted<AttemptError>,
) -> Failure {
    let ran_out = exhausted.ran_out();
    let attempts = exhausted.attempts;
    let error = match exhausted.error {
        AttemptError::Build(failure) => return failure,
        AttemptError::Push(error) => error,
    };
    let reason = error.reason();
    let PushError::Registry(registry_error) = &error else {
        return Failure::failed(format!(
            "push to {url} failed: {reason}; retry the push, and report the registry if it persists"
        ));
    };
    match registry_error.kind() {
        RegistryErrorKind::TlsVerification { detail } | RegistryErrorKind::TlsOther { detail } => {
            Failure::failed(format!(
                "TLS handshake with {} failed: {detail}; if this registry serves plain HTTP, pass --insecure",
                target.host
            ))
        }
        RegistryErrorKind::Status {
            code: 401 | 403, ..
        } => {
            let source = registry_error
                .credential_source()
                .map(|source| format!(" ({source})"))
                .unwrap_or_default();
            Failure::failed(format!(
                "push to {url} rejected: {reason}{source}; check that the credentials can write to {} (docker login {}, or the registry string)",
                target.repository, target.host
            ))
        }
        _ if ran_out => Failure::failed(format!(
            "push to {url} failed after {attempts} attempts: {reason}; {}",
            connection_hint(target)
        )),
        _ => Failure::failed(format!(
            "push to {url} failed: {reason}; {}",
            connection_hint(target)
        )),
    }
}

fn connection_hint(target: &crate::resolve::PushTarget) -> &'static str {
    if target.local {
        "start the registry with ksail cluster create or check spec.cluster.localRegistry.registry"
    } else {
        "check that the registry is reachable, then push again"
    }
}

/// `main@sha1:0123456789ab`: the revision with its hash shortened for progress lines.
fn short_revision(revision: &str) -> String {
    match revision.rsplit_once('@') {
        Some((branch, hash)) => format!("{branch}@{}", short_digest(hash)),
        None => short_digest(revision),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_shortened_for_progress() {
        let hash = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            short_revision(&format!("main@sha1:{hash}")),
            "main@sha1:0123456789ab"
        );
        assert_eq!(short_revision(&format!("sha1:{hash}")), "sha1:0123456789ab");
    }

    #[test]
    fn json_members_are_null_until_known() {
        let json = PushReport::default().to_json();
        for member in ["url", "digest", "layerDigest", "revision", "sync"] {
            assert_eq!(json[member], Value::Null, "{member}");
        }
        assert_eq!(json["validation"], json!([]));
    }
}
