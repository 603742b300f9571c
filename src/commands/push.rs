//! `ksail workload push` (artifact.md#pipeline): settings in, publish (`crate::publish`), print
//! the progress lines, the result line and the JSON document. Steps before the upload exit 2 on
//! bad input and send nothing to the registry.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{Context, Outcome};
use crate::artifact::{self, Annotations};
use crate::cli::PushArgs;
use crate::duration::format_go;
use crate::error::{Failure, FailureClass};
use crate::output::{OutputFormat, counted, human_bytes, short_digest};
use crate::publish::{self, PlanError, UploadState};
use crate::settings::{PushSettings, push_settings};
use crate::signing::cosign::Attached;

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
        json: (args.output.is_json()).then(|| report.to_json()),
    }
}

/// The outcome reported when a signal stops the push.
pub fn interrupted(args: &PushArgs) -> Outcome {
    Outcome {
        command: COMMAND,
        result: Err(Failure::interrupted()),
        json: (args.output.is_json()).then(|| PushReport::default().to_json()),
    }
}

/// The members of the JSON document (artifact.md#result); unknown ones stay null.
#[derive(Debug, Default)]
pub struct PushReport {
    pub status: Option<&'static str>,
    url: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    pub digest: Option<String>,
    layer_digest: Option<String>,
    layer_size: Option<u64>,
    files: Option<usize>,
    annotations: Option<Annotations>,
    sync: Option<(String, String)>,
    signature: Option<Attached>,
    pub validation: Vec<artifact::Problem>,
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
            "signature": self.signature.as_ref().map(|signature| json!({
                "tag": signature.tag, "digest": signature.digest, "reused": signature.reused,
            })),
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

/// One push as `workload push` runs it, filling `report`; the result line is printed only for
/// `--output text` (`workload watch` asks for JSON and prints its own line).
pub async fn push(ctx: &Context, args: &PushArgs, report: &mut PushReport) -> Result<(), Failure> {
    let settings = push_settings(ctx, args)?;
    let target = &settings.target;
    report.url = Some(target.url.clone());
    report.repository = Some(format!("{}/{}", target.host, target.repository));
    report.tag = Some(target.tag.clone());
    report.sync = settings
        .sync
        .as_ref()
        .and_then(|sync| sync.url.as_ref().map(|url| (url.clone(), sync.tag.clone())));

    let state = UploadState::default();
    let Some(limit) = settings.timeout else {
        return publish_artifact(ctx, &settings, &state, report).await;
    };
    // Dropping the push at the deadline removes the layer's temporary file, as on a signal.
    let bounded =
        tokio::time::timeout(limit, publish_artifact(ctx, &settings, &state, report)).await;
    bounded.unwrap_or_else(|_| Err(timed_out(&settings, limit, &state)))
}

/// The failure of a push cut short by `--timeout`: what the tag may hold, and what to do.
fn timed_out(settings: &PushSettings, limit: Duration, state: &UploadState) -> Failure {
    let target = &settings.target;
    let tag_state = if state.tag_write_sent.load(Ordering::SeqCst) {
        format!(
            "the tag write was sent but not confirmed, so {} may point at the new artifact or the previous one; push again to be sure",
            target.tag
        )
    } else {
        "nothing was tagged; check that the registry answers, or raise the limit".to_string()
    };
    Failure::new(
        FailureClass::TimedOut,
        format!(
            "push to {} did not finish within {} (--timeout or spec.workload.pushTimeout); {tag_state}",
            target.url,
            format_go(limit)
        ),
    )
}

/// Everything after the settings: select, validate, pack, upload (artifact.md#pipeline).
async fn publish_artifact(
    ctx: &Context,
    settings: &PushSettings,
    state: &UploadState,
    report: &mut PushReport,
) -> Result<(), Failure> {
    let printer = &ctx.printer;
    let target = &settings.target;
    let credentials = publish::resolve_registry_credentials(ctx, &settings.credentials).await?;

    let selection = artifact::select(&settings.source.written, &settings.source.resolved)?;
    for warning in &selection.warnings {
        printer.warn(warning);
    }
    report.files = Some(selection.file_count);
    printer.info(&format!(
        "push: source {}: {}, {} → {}",
        settings.source.written,
        counted(selection.file_count, "file", "files"),
        human_bytes(selection.total_bytes),
        target.url
    ));

    let cache = publish::layer_cache(ctx);
    let step = printer.step(&format!(
        "push: packing {} ({})",
        settings.source.written,
        counted(selection.file_count, "file", "files")
    ));
    let client = publish::registry_client(ctx, settings, credentials)?;
    let planned = publish::plan(settings, selection, cache.as_ref(), printer, true, &client);
    let planned = match planned.await {
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

    let outcome = publish::upload(ctx, settings, &client, &planned, state).await?;
    planned.remember(cache.as_ref());
    report.digest = Some(outcome.digest.clone());
    report.signature = outcome.signature.clone();
    if let (Some(created), Some(annotations)) = (&outcome.created, report.annotations.as_mut()) {
        // What the registry holds was created when it was first pushed.
        annotations.created = created.clone();
    }
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
        for member in [
            "url",
            "digest",
            "layerDigest",
            "revision",
            "sync",
            "signature",
        ] {
            assert_eq!(json[member], Value::Null, "{member}");
        }
        assert_eq!(json["validation"], json!([]));
    }
}
