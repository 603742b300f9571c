//! `ksail workload watch` (docs/watch.md): push and reconcile on every settled change of the
//! source directory, through the same artifact, tag and engine that `workload push` and
//! `workload reconcile` use — one round at a time, one line per round, until Ctrl-C.
//!
//! Changes are noticed with `notify` and settle after [`QUIET`] without events. What counts as a
//! change is what the artifact would hold: the source directory is selected as a push selects it
//! (`.sourceignore` and the default ignores apply) and compared file by file with the previous
//! round, so a save of an ignored file, or one that leaves the bytes as they were, starts no
//! round. Saves made while a round runs start exactly one more round after it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::push::{PushReport, push};
use super::{Context, Outcome};
use crate::artifact;
use crate::cli::{OutputArg, PushArgs, ReconcileArgs, WatchArgs};
use crate::error::{Failure, FailureClass};
use crate::gitops::reconcile::{RunState, reconcile};
use crate::output::{counted, log_json_document, short_digest};
use crate::settings::{push_settings, reconcile_settings};

pub const COMMAND: &str = "workload watch";

/// How long the source directory must stay quiet before a round starts: an editor's save is
/// often several events (write, rename, chmod) within a few milliseconds.
const QUIET: Duration = Duration::from_millis(100);
/// A directory that never stays quiet (a generator writing in a loop) still gets a round.
const MAX_SETTLE: Duration = Duration::from_secs(2);

pub async fn run(ctx: &Context, args: WatchArgs) -> Outcome {
    let mut rounds = 0;
    let result = watch(ctx, &args, &mut rounds).await;
    Outcome {
        command: COMMAND,
        result,
        json: args.output.is_json().then(|| summary(rounds)),
    }
}

/// The outcome reported when a second signal (or the cleanup budget) cuts the run short.
pub fn interrupted(args: &WatchArgs) -> Outcome {
    Outcome {
        command: COMMAND,
        result: Err(Failure::interrupted()),
        json: args.output.is_json().then(|| summary(0)),
    }
}

fn summary(rounds: usize) -> Map<String, Value> {
    let mut members = Map::new();
    members.insert("rounds".into(), Value::from(rounds));
    members
}

async fn watch(ctx: &Context, args: &WatchArgs, rounds: &mut usize) -> Result<(), Failure> {
    let push_args = push_args(args);
    // Bad flags or ksail.yaml stop the command before it watches anything (exit 2).
    let settings = push_settings(ctx, &push_args)?;
    reconcile_settings(ctx, &reconcile_args(args))?;
    let source = settings.source.resolved.clone();
    if !source.is_dir() {
        return Err(Failure::usage(format!(
            "source directory {} does not exist; create it or pass --path",
            settings.source.written
        )));
    }
    let (sender, mut changes) = mpsc::unbounded_channel();
    let _watcher = start_watcher(&source, sender)?;
    ctx.printer.info(&format!(
        "watch: watching {} (Ctrl-C to stop)",
        settings.source.written
    ));

    let mut previous: Option<Option<Snapshot>> = None;
    let mut saved_at = Instant::now();
    loop {
        let current = snapshot(&settings.source.written, &source);
        let changed = match &previous {
            // The first round brings the cluster to the tree as it is.
            None => vec!["start".to_string()],
            Some(previous) => describe_changes(previous.as_ref(), current.as_ref())
                .iter()
                .map(|name| artifact::display_path(&settings.source.written, name))
                .collect(),
        };
        if !changed.is_empty() {
            *rounds += 1;
            run_round(ctx, args, *rounds, &changed, saved_at).await;
            if ctx.cancel.is_cancelled() {
                break;
            }
        }
        previous = Some(current);
        // Wait for the next change, then for the directory to settle: no event for QUIET, or
        // MAX_SETTLE in all.
        tokio::select! {
            first = changes.recv() => if first.is_none() { break },
            () = ctx.cancel.cancelled() => break,
        }
        saved_at = Instant::now();
        let settled_by = tokio::time::Instant::from_std(saved_at + MAX_SETTLE);
        loop {
            let quiet = tokio::time::sleep(QUIET);
            tokio::select! {
                more = changes.recv() => if more.is_none() { break },
                () = quiet => break,
                () = tokio::time::sleep_until(settled_by) => break,
                () = ctx.cancel.cancelled() => return Ok(()),
            }
        }
    }
    Ok(())
}

/// `notify`'s recommended watcher on `source`, recursive, sending a unit per relevant event.
fn start_watcher(
    source: &Path,
    sender: mpsc::UnboundedSender<()>,
) -> Result<notify::RecommendedWatcher, Failure> {
    use notify::Watcher as _;
    let failed = |error: notify::Error| {
        Failure::failed(format!(
            "cannot watch {}: {error}; check the directory's permissions and the inotify limits (fs.inotify.max_user_watches)",
            source.display()
        ))
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        // Reads change nothing a push sends, and git's own files are never in the artifact.
        // Anything else may: the round's snapshot decides whether it did.
        let relevant = !matches!(event.kind, notify::EventKind::Access(_))
            && event.paths.iter().any(|path| {
                !path
                    .components()
                    .any(|component| component.as_os_str() == ".git")
            });
        if relevant {
            let _ = sender.send(());
        }
    })
    .map_err(failed)?;
    watcher
        .watch(source, notify::RecursiveMode::Recursive)
        .map_err(failed)?;
    Ok(watcher)
}

/// The files a push would send, by name, with a hash of their content.
type Snapshot = BTreeMap<String, [u8; 32]>;

/// `None` when the source directory cannot be selected (the round's push says why).
fn snapshot(display: &str, source: &Path) -> Option<Snapshot> {
    let selection = artifact::select(display, source).ok()?;
    let mut files = Snapshot::new();
    for entry in &selection.entries {
        if let artifact::select::EntryKind::File { source, .. } = &entry.kind {
            let bytes = std::fs::read(source).ok()?;
            files.insert(entry.name.clone(), Sha256::digest(&bytes).into());
        }
    }
    Some(files)
}

/// The files added, changed or removed since `previous`, by name inside the source directory;
/// the directory itself (`""`) when it cannot be read now or could not before, so that a round's
/// push says why.
fn describe_changes(previous: Option<&Snapshot>, current: Option<&Snapshot>) -> Vec<String> {
    let (Some(previous), Some(current)) = (previous, current) else {
        return vec![String::new()];
    };
    let mut changed: Vec<String> = current
        .iter()
        .filter(|(name, hash)| previous.get(*name) != Some(hash))
        .map(|(name, _)| name.clone())
        .collect();
    changed.extend(
        previous
            .keys()
            .filter(|name| !current.contains_key(*name))
            .map(|name| format!("{name} (removed)")),
    );
    changed
}

/// How one round ended, for its line.
struct Round {
    number: usize,
    changed: Vec<String>,
    status: &'static str,
    push_status: Option<&'static str>,
    digest: Option<String>,
    ready: Vec<String>,
    error: Option<String>,
    took: Duration,
}

async fn run_round(
    ctx: &Context,
    args: &WatchArgs,
    number: usize,
    changed: &[String],
    saved_at: Instant,
) {
    let mut report = PushReport::default();
    // A push cut short leaves the tag as it was or on a complete artifact (the manifest goes
    // last): stop at once. The reconcile below sees the signal itself and returns once it has
    // resumed any HelmRelease it suspended.
    let push_args = push_args(args);
    let pushed = tokio::select! {
        pushed = push(ctx, &push_args, &mut report) => pushed,
        () = ctx.cancel.cancelled() => return,
    };
    let mut round = Round {
        number,
        changed: changed.to_vec(),
        status: "succeeded",
        push_status: report.status,
        digest: report.digest.clone(),
        ready: Vec::new(),
        error: None,
        took: Duration::ZERO,
    };
    match pushed {
        Err(failure) => {
            round.status = if report.validation.is_empty() {
                "failed"
            } else {
                "invalid"
            };
            round.error = Some(failure.message);
        }
        Ok(()) => {
            let run = RunState::default();
            let started = Instant::now();
            let reconciled = match reconcile_settings(ctx, &reconcile_args(args)) {
                Ok(settings) => reconcile(ctx, &settings, &run, started).await,
                Err(failure) => Err(failure),
            };
            round.ready = ready_objects(&run.to_json(started));
            if let Err(failure) = reconciled {
                round.status = match failure.class {
                    FailureClass::TimedOut => "timedOut",
                    _ => "failed",
                };
                round.error = Some(failure.message);
            }
        }
    }
    round.took = saved_at.elapsed();
    print_round(ctx, args.output, &round);
}

/// `Kind namespace/name` of every object the reconcile saw ready.
fn ready_objects(run: &Map<String, Value>) -> Vec<String> {
    run.get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|object| object["state"] == "ready")
        .map(|object| {
            format!(
                "{} {}/{}",
                object["kind"].as_str().unwrap_or_default(),
                object["namespace"].as_str().unwrap_or_default(),
                object["name"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

fn print_round(ctx: &Context, output: OutputArg, round: &Round) {
    if output.is_json() {
        let document = json!({
            "command": COMMAND,
            "round": round.number,
            "status": round.status,
            "changed": round.changed,
            "push": round.push_status,
            "digest": round.digest,
            "ready": round.ready,
            "durationMs": round.took.as_millis() as u64,
            "error": round.error,
        })
        .to_string();
        ctx.printer.result(&document);
        log_json_document(&document);
        return;
    }
    let changed = match round.changed.as_slice() {
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} and {} more", rest.len()),
        [] => "nothing".to_string(),
    };
    let pushed = match (round.push_status, &round.digest) {
        (Some(status), Some(digest)) => format!("{status} {}", short_digest(digest)),
        _ => "nothing pushed".to_string(),
    };
    let outcome = match (round.status, &round.error) {
        ("succeeded", _) => format!("{} ready", counted(round.ready.len(), "object", "objects")),
        (status, Some(error)) => format!("{status}: {error}"),
        (status, None) => status.to_string(),
    };
    ctx.printer.result(&format!(
        "watch: round {}: {changed} → {pushed}, {outcome} ({:.2} s)",
        round.number,
        round.took.as_secs_f64()
    ));
}

/// The push each round runs: `workload push` with the watch's flags, its result line left to
/// the round line.
fn push_args(args: &WatchArgs) -> PushArgs {
    PushArgs {
        oci_ref: None,
        source: args.source.clone(),
        force: false,
        timeout: None,
        output: OutputArg::Json,
    }
}

/// The reconcile each round runs: `workload reconcile` with the watch's flags.
fn reconcile_args(args: &WatchArgs) -> ReconcileArgs {
    ReconcileArgs {
        timeout: args.timeout.clone(),
        exclude: args.exclude.clone(),
        insecure: args.source.insecure,
        sync_manual: false,
        output: OutputArg::Json,
        connection: args.connection.clone(),
    }
}
