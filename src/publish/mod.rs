//! Publishing an artifact (artifact.md#pipeline, #push-failures): plan it once — select,
//! validate, pack, annotate, with the layer cache — then upload it under the shared retry policy,
//! skipping what the registry already holds. `workload push` and `cluster create`'s initial
//! artifact both publish through here.

mod plan;
pub mod scratch;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

pub use self::plan::{PlanError, Planned, plan};
use crate::artifact;
use crate::artifact::cache::LayerCache;
use crate::context::Context;
use crate::env_vars;
use crate::error::Failure;
use crate::output::{human_bytes, register_secret, short_digest};
use crate::registry::{
    CredentialRequest, PushError, PushEvent, PushOutcome, RegistryClient, RegistryErrorKind,
    ResolvedCredentials, TagGuard, check_unchanged, resolve_credentials, upload_blobs,
    write_manifest,
};
use crate::retry::{self, Exhausted, Retryable};
use crate::settings::PushSettings;
use crate::signing::cosign;

/// The layer cache in `$XDG_CACHE_HOME` (or `~/.cache`), if one can be used.
pub fn layer_cache(ctx: &Context) -> Option<LayerCache> {
    LayerCache::locate(
        ctx.env.var(env_vars::XDG_CACHE_HOME).map(PathBuf::from),
        ctx.env.home(),
    )
}

/// Build `selection` and push it to `settings.target` exactly as `workload push` does (layer
/// cache, retry policy, unchanged check), with credentials already resolved. `cluster create`
/// uses it for the initial artifact (cluster.md step 6); `from_git` is false for the empty
/// artifact. Returns the manifest digest.
pub async fn publish_selection(
    ctx: &Context,
    settings: &PushSettings,
    credentials: ResolvedCredentials,
    selection: artifact::Selection,
    from_git: bool,
) -> Result<String, Failure> {
    let reporter = ctx.reporter();
    let cache = layer_cache(ctx);
    let client = registry_client(ctx, settings, credentials)?;
    let planned = plan::plan(
        settings,
        selection,
        cache.as_ref(),
        reporter,
        from_git,
        &client,
    );
    let planned = match planned.await {
        Ok(planned) => planned,
        Err(PlanError::Failed(failure)) => return Err(failure),
        Err(PlanError::Invalid(invalid)) => {
            for line in &artifact::report_lines(&invalid.validation).0 {
                reporter.report(line);
            }
            return Err(invalid.error);
        }
    };
    let outcome = upload(ctx, settings, &client, &planned, &UploadState::default()).await?;
    planned.remember(cache.as_ref());
    Ok(outcome.digest)
}

/// Resolve credentials (a credential helper is a child process, so off the async threads) and
/// register every secret with the reporter before anything can echo it. Shared by every command
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
        ctx.reporter().warn(warning);
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

/// What an upload got to, readable after it was cut short (by `--timeout` or a signal).
#[derive(Debug, Default)]
pub struct UploadState {
    /// The manifest write to the tag was sent (it may or may not have landed).
    pub tag_write_sent: AtomicBool,
}

/// The client for pushes to `settings.target` with `credentials`.
pub fn registry_client(
    ctx: &Context,
    settings: &PushSettings,
    credentials: ResolvedCredentials,
) -> Result<Arc<RegistryClient>, Failure> {
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
    Ok(Arc::new(client))
}

pub async fn upload(
    ctx: &Context,
    settings: &PushSettings,
    client: &RegistryClient,
    planned: &Planned,
    state: &UploadState,
) -> Result<PushOutcome, Failure> {
    let target = &settings.target;
    let reporter = ctx.reporter();
    let bar = reporter.transfer("push: uploading layer", planned.layer_size);
    let started = Instant::now();
    let events = |event: PushEvent| match event {
        PushEvent::ConfigExists => reporter.info("push: config blob exists (skipped)"),
        PushEvent::UploadingConfig => reporter.info("push: uploading config blob"),
        PushEvent::LayerExists => reporter.info("push: layer blob exists (skipped)"),
        PushEvent::UploadingLayer { size } => {
            reporter.info(&format!("push: uploading layer ({})", human_bytes(size)));
        }
        PushEvent::Uploaded(sent) => bar.sent(sent),
        PushEvent::Tagging => state.tag_write_sent.store(true, Ordering::SeqCst),
        PushEvent::Tagged { digest } => {
            reporter.info(&format!(
                "push: tag {} → {}",
                target.tag,
                short_digest(&digest)
            ));
        }
        PushEvent::Signed { tag, reused: true } => {
            reporter.info(&format!("push: signature {tag} exists (skipped)"));
        }
        PushEvent::Signed { tag, reused: false } => {
            let key = settings.signer.as_ref().map(|s| s.display.as_str());
            reporter.info(&format!(
                "push: signed with {} → {tag}",
                key.unwrap_or_default()
            ));
        }
    };
    // What the tag held when the push began, kept across retries: a push that lands between two
    // attempts must not become this push's starting point.
    let began: OnceLock<Option<String>> = OnceLock::new();
    let attempt = |_| async {
        // The unchanged check needs only the layer's digest, so an unchanged re-push from the
        // cache never compresses anything.
        let read = check_unchanged(
            client,
            &target.repository,
            &target.tag,
            &planned.layer_digest,
            &planned.annotations.revision,
        )
        .await?;
        if let Some(mut unchanged) = read.unchanged {
            drop(planned.take_streamed());
            unchanged.signature = sign(client, settings, &unchanged.digest, &events).await?;
            return Ok(unchanged);
        }
        let guard = match settings.force {
            true => TagGuard::Off,
            false => TagGuard::Expect(began.get_or_init(|| read.digest).clone()),
        };
        let upload = planned.upload().await.map_err(AttemptError::Build)?;
        let (repo, tag) = (&target.repository, &target.tag);
        upload_blobs(client, repo, &upload, planned.take_streamed(), &events).await?;
        // The signature goes in before the tag moves, so that a verifying cluster never sees
        // the new artifact unsigned (docs/signing.md).
        let signature = sign(client, settings, &upload.manifest_digest, &events).await?;
        let mut outcome = write_manifest(client, repo, tag, &upload, &guard, &events).await?;
        outcome.signature = signature;
        Ok(outcome)
    };
    let result = retry::retry(&settings.retry, reporter, None, attempt).await;
    drop(bar);
    tracing::debug!("push: registry exchange took {:?}", started.elapsed());
    result.map_err(|exhausted| push_failure(&settings.target.url, &settings.target, exhausted))
}

/// Make the signature tag of `digest` hold the configured key's signature (nothing to do
/// without a key).
async fn sign(
    client: &RegistryClient,
    settings: &PushSettings,
    digest: &str,
    events: &(dyn Fn(PushEvent) + Send + Sync),
) -> Result<Option<cosign::Attached>, PushError> {
    let Some(signer) = &settings.signer else {
        return Ok(None);
    };
    let target = &settings.target;
    let reference = format!("{}/{}", target.host, target.repository);
    let attached = cosign::attach(client, &target.repository, &reference, digest, signer).await?;
    events(PushEvent::Signed {
        tag: attached.tag.clone(),
        reused: attached.reused,
    });
    Ok(Some(attached))
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
    if error.is_race() {
        return Failure::failed(format!("push to {url} failed: {reason}"));
    }
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
        kind => {
            let hint = failure_hint(target, kind);
            match ran_out {
                // `ran_out` means at least two attempts (`Exhausted::ran_out`).
                true => Failure::failed(format!(
                    "push to {url} failed after {attempts} attempts: {reason}; {hint}"
                )),
                false => Failure::failed(format!("push to {url} failed: {reason}; {hint}")),
            }
        }
    }
}

/// What to do about a transport failure or a registry error, for the kind of failure it is.
fn failure_hint(target: &crate::resolve::PushTarget, kind: &RegistryErrorKind) -> String {
    match kind {
        RegistryErrorKind::Status { code: 500.., .. } => format!(
            "the registry at {} failed on its side; check its logs, then push again",
            target.host
        ),
        RegistryErrorKind::Timeout => format!(
            "the registry at {} did not answer in time; check that it is healthy, then push again",
            target.host
        ),
        RegistryErrorKind::Dns { host } => {
            format!("the host name {host} does not resolve; check the registry host")
        }
        RegistryErrorKind::ConnectionRefused if target.local && target.configured => {
            "start the registry with ksail cluster create or check spec.cluster.localRegistry.registry"
                .to_string()
        }
        RegistryErrorKind::ConnectionRefused => format!(
            "nothing listens on {}; check the host and port, or start the registry",
            target.host
        ),
        _ => "check that the registry is reachable, then push again".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::PushTarget;

    fn target(local: bool, configured: bool) -> PushTarget {
        PushTarget {
            host: "localhost:5050".into(),
            repository: "k8s".into(),
            tag: "dev".into(),
            url: "oci://localhost:5050/k8s:dev".into(),
            local,
            plain_http: local,
            configured,
        }
    }

    #[test]
    fn the_hint_fits_the_failure() {
        let status = |code| RegistryErrorKind::Status {
            code,
            registry_code: None,
            message: None,
            retry_after: None,
        };
        let cases = [
            (
                target(true, true),
                RegistryErrorKind::ConnectionRefused,
                "start the registry with ksail cluster create or check spec.cluster.localRegistry.registry",
            ),
            (
                target(true, false),
                RegistryErrorKind::ConnectionRefused,
                "nothing listens on localhost:5050; check the host and port, or start the registry",
            ),
            (
                target(true, true),
                status(503),
                "the registry at localhost:5050 failed on its side; check its logs, then push again",
            ),
            (
                target(false, false),
                RegistryErrorKind::Timeout,
                "the registry at localhost:5050 did not answer in time; check that it is healthy, then push again",
            ),
            (
                target(false, false),
                RegistryErrorKind::ConnectionReset,
                "check that the registry is reachable, then push again",
            ),
        ];
        for (target, kind, hint) in cases {
            assert_eq!(failure_hint(&target, &kind), hint, "{kind:?}");
        }
    }
}
