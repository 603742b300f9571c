//! Failure diagnostics (reconcile.md#failure-diagnostics): after a failed reconcile, a short
//! report of the GitOps resources that are not ready, the unhealthy pods and the recent Warning
//! events in the GitOps namespace.
//!
//! This module owns collection (one shared deadline, a reachability probe, silent omission of
//! whatever fails) and rendering. *When* to collect, and printing, are the caller's business.
//! It never writes to the cluster and never prints: the only trace of a failed collection is a
//! debug log line, so the original error stays the last and most prominent line.

pub mod content;
pub mod render;
pub mod summary;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_collect;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::time::{Instant, timeout_at};

use crate::env_vars::test_only;
use crate::error::Failure;
use crate::gitops::Engine;
use crate::gitops::report::ObjectName;
use crate::process::ProcessEnv;
use crate::retry::test_knob;

use content::{argocd_row, event_rows, failed_by_ksail, flux_row, pod_rows, sort_rows};
// The reconcile command uses these; until it is wired up, nothing in the binary does.
pub use render::{render, to_json};
pub use summary::{Summary, summary_line};

/// The whole collection shares one deadline of this length.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(15);
/// Only Warning events are read; the server filters them.
const WARNING_EVENTS: &str = "type=Warning";

/// What to collect for one engine.
#[derive(Debug, Clone)]
pub struct Target {
    /// `flux-system` (or the FluxInstance's namespace) for Flux, `argocd` for Argo CD: where the
    /// pods and events are read, and (Argo CD) where Applications are listed.
    pub gitops_namespace: String,
    /// The resource kinds, in section order, each with its heading (`"Kustomizations"`). Flux:
    /// Kustomization, HelmRelease, OCIRepository, listed in all namespaces. Argo CD: Application,
    /// listed in `gitops_namespace` only. The first kind is the one ksail tracks: `blocked`
    /// applies to it.
    pub kinds: Vec<(&'static str, ApiResource)>,
    /// Objects of the first kind that ksail marked blocked: `ns/name` → what blocked it (shown as
    /// `blocked by <value>`).
    pub blocked: BTreeMap<String, String>,
    /// Objects ksail judged failed although the cluster may call them Ready (a source serving
    /// another digest than the registry holds): `(kind, ns/name)` → `(reason, message)`. They are
    /// listed with that verdict: the root cause belongs in the report.
    pub failed: BTreeMap<(String, String), (String, Option<String>)>,
}

/// How a listed resource row reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RowState {
    // Declaration order is display order.
    Failed,
    Progressing,
    Blocked,
}

/// A GitOps resource that is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub object: ObjectName,
    pub state: RowState,
    /// The condition reason; `None` only for a blocked object without a failing condition.
    pub reason: Option<String>,
    /// The condition (or operation, or health) message as the object reports it.
    pub message: Option<String>,
    /// Set when ksail marked the object blocked: the row reads `blocked by <this>`.
    pub blocked_by: Option<String>,
}

/// The rows of one resource kind, in display order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSection {
    /// `Kustomizations`, `HelmReleases`, `OCIRepositories`, `Applications`.
    pub heading: String,
    pub rows: Vec<ResourceRow>,
}

/// An unhealthy pod in the GitOps namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub detail: String,
}

/// A recent Warning event in the GitOps namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub age_seconds: u64,
    /// The involved object's kind and name.
    pub kind: String,
    pub name: String,
    pub reason: String,
    pub message: String,
}

/// A collected report. Sections that could not be read are simply empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub engine: Engine,
    /// The GitOps namespace.
    pub namespace: String,
    /// One section per kind of [`Target::kinds`], in that order (empty ones included).
    pub resources: Vec<ResourceSection>,
    /// By name.
    pub pods: Vec<PodRow>,
    /// Newest first; every event in the window (the text report shows the first 20).
    pub events: Vec<EventRow>,
}

impl Report {
    /// True when there is nothing to show; such a report is not printed at all.
    pub fn is_empty(&self) -> bool {
        self.resources.iter().all(|s| s.rows.is_empty())
            && self.pods.is_empty()
            && self.events.is_empty()
    }
}

/// What was listed, as JSON, before it is judged. `None` is a listing that failed or ran out of
/// time: its section is omitted silently.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// One entry per kind of [`Target::kinds`], in that order.
    pub resources: Vec<Option<Vec<Value>>>,
    pub pods: Option<Vec<Value>>,
    pub events: Option<Vec<Value>>,
}

/// Judge listed objects into a report. Pure: `collect` is this plus IO.
pub fn build_report(
    engine: Engine,
    target: &Target,
    listed: Listed,
    now: OffsetDateTime,
) -> Report {
    let resources = target
        .kinds
        .iter()
        .zip(listed.resources.into_iter().chain(std::iter::repeat(None)))
        .enumerate()
        .map(|(index, ((heading, resource), objects))| {
            let no_blocks = BTreeMap::new();
            let blocked = if index == 0 {
                &target.blocked
            } else {
                &no_blocks
            };
            let mut rows: Vec<ResourceRow> = objects
                .unwrap_or_default()
                .iter()
                .filter_map(|obj| {
                    let row = match engine {
                        Engine::Flux => flux_row(&resource.kind, obj, blocked),
                        Engine::ArgoCd => argocd_row(&resource.kind, obj),
                    };
                    row.or_else(|| failed_by_ksail(&resource.kind, obj, &target.failed))
                })
                .collect();
            sort_rows(&mut rows);
            ResourceSection {
                heading: (*heading).to_string(),
                rows,
            }
        })
        .collect();
    Report {
        engine,
        namespace: target.gitops_namespace.clone(),
        resources,
        pods: pod_rows(&listed.pods.unwrap_or_default()),
        events: event_rows(&listed.events.unwrap_or_default(), now),
    }
}

/// The diagnostics budget: 15 s, or `KSAIL_TEST_DIAGNOSTICS_BUDGET_MS` (test-only).
pub fn budget_from_env(env: &ProcessEnv) -> Result<Duration, Failure> {
    Ok(
        test_knob(env, test_only::DIAGNOSTICS_BUDGET_MS, 0, 600_000)?
            .map_or(DEFAULT_BUDGET, Duration::from_millis),
    )
}

/// Collect the report under one deadline of `budget`. The API server is probed first
/// (`GET /version`); if that fails or runs out of time, there is no report (debug log only).
/// The sections are then read concurrently; any that fail or are unfinished at the deadline are
/// omitted silently, and whatever was read is judged at `now`. `None` also when nothing is worth
/// showing.
pub async fn collect(
    client: &kube::Client,
    engine: Engine,
    target: &Target,
    budget: Duration,
    now: OffsetDateTime,
) -> Option<Report> {
    let deadline = Instant::now() + budget;
    match timeout_at(deadline, client.apiserver_version()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::debug!("diagnostics: skipped, the API server probe failed: {error}");
            return None;
        }
        Err(_) => {
            tracing::debug!(
                "diagnostics: skipped, the API server did not answer within {budget:?}"
            );
            return None;
        }
    }

    let namespace = target.gitops_namespace.as_str();
    let resource_lists =
        futures_util::future::join_all(target.kinds.iter().map(|(_, resource)| {
            let api: Api<DynamicObject> = match engine {
                Engine::Flux => Api::all_with(client.clone(), resource),
                Engine::ArgoCd => Api::namespaced_with(client.clone(), namespace, resource),
            };
            by_deadline(
                deadline,
                &resource.plural,
                list_json(api, ListParams::default()),
            )
        }));
    let pods = by_deadline(
        deadline,
        "pods",
        list_json(core_api::<Pod>(client, namespace), ListParams::default()),
    );
    let events = by_deadline(
        deadline,
        "events",
        list_json(
            core_api::<Event>(client, namespace),
            ListParams::default().fields(WARNING_EVENTS),
        ),
    );
    let (resources, pods, events) = tokio::join!(resource_lists, pods, events);

    let report = build_report(
        engine,
        target,
        Listed {
            resources,
            pods,
            events,
        },
        now,
    );
    (!report.is_empty()).then_some(report)
}

/// A namespaced handle for a core type, read as JSON like the GitOps kinds.
fn core_api<K>(client: &kube::Client, namespace: &str) -> Api<DynamicObject>
where
    K: kube::Resource<DynamicType = ()>,
{
    Api::namespaced_with(client.clone(), namespace, &ApiResource::erase::<K>(&()))
}

async fn list_json(api: Api<DynamicObject>, params: ListParams) -> Result<Vec<Value>, kube::Error> {
    let list = api.list(&params).await?;
    // An item that does not serialize cannot be judged; dropping it beats dropping the section.
    Ok(list
        .items
        .iter()
        .filter_map(|item| serde_json::to_value(item).ok())
        .collect())
}

/// The listing's result if it succeeded before the deadline; a failure is logged at debug level
/// only, and its section is left out.
async fn by_deadline<F>(deadline: Instant, what: &str, listing: F) -> Option<Vec<Value>>
where
    F: Future<Output = Result<Vec<Value>, kube::Error>>,
{
    match timeout_at(deadline, listing).await {
        Ok(Ok(items)) => Some(items),
        Ok(Err(error)) => {
            tracing::debug!("diagnostics: {what} omitted: {error}");
            None
        }
        Err(_) => {
            tracing::debug!("diagnostics: {what} omitted: the diagnostics budget ran out");
            None
        }
    }
}
