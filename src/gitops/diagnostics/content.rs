//! What goes into a diagnostics report, decided from the objects' JSON alone
//! (reconcile.md#content): which GitOps resources are not ready and why, which pods are unhealthy
//! and how, and which Warning events are recent. No IO here.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{EventRow, ObjectName, PodRow, ResourceRow, RowState};

/// How far back Warning events are shown.
pub const EVENT_WINDOW: Duration = Duration::from_secs(5 * 60);

/// A Flux reason that means "waiting for another object", shown as blocked.
const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
/// Argo CD condition types that explain why an application is not synced, in the order the
/// spec names them; the first one present in `status.conditions` wins.
const ARGO_ERROR_CONDITIONS: [&str; 3] = ["ComparisonError", "SyncError", "InvalidSpecError"];
/// What an absent Argo CD sync or health status reads as.
const UNKNOWN: &str = "Unknown";

/// The row state from a reason: blocked (by ksail, or `DependencyNotReady`), then progressing (the
/// reason contains `Progressing`), else failed.
pub fn classify(reason: &str, blocked_by_ksail: bool) -> RowState {
    if blocked_by_ksail || reason == DEPENDENCY_NOT_READY {
        RowState::Blocked
    } else if reason.contains("Progressing") {
        RowState::Progressing
    } else {
        RowState::Failed
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn object_name(kind: &str, obj: &Value) -> ObjectName {
    ObjectName::new(
        kind,
        str_at(obj, "/metadata/namespace").unwrap_or_default(),
        str_at(obj, "/metadata/name").unwrap_or_default(),
    )
}

fn non_empty(text: String) -> Option<String> {
    (!text.trim().is_empty()).then_some(text)
}

fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn condition_status(cond: &Value) -> &str {
    cond.get("status")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The reason and message of a condition; a condition without a reason reads as `Unknown`.
fn reason_message(cond: &Value) -> (String, String) {
    let reason = cond
        .get("reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .unwrap_or(UNKNOWN);
    let message = cond
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (reason.to_string(), message.to_string())
}

/// A Flux object's row, or `None` when it is ready. It is listed when its `Ready` condition is not
/// `True` (reason and message from `Ready`), or when `Stalled=True` (from `Stalled`). An object
/// that ksail marked blocked (`blocked`, keyed `ns/name`) is always listed: the run counts it as a
/// failure even if an older revision of it is still `Ready`.
pub fn flux_row(
    kind: &str,
    obj: &Value,
    blocked: &BTreeMap<String, String>,
) -> Option<ResourceRow> {
    let object = object_name(kind, obj);
    let blocked_by = blocked.get(&object.to_string()).cloned();
    let not_ready = condition(obj, "Ready").filter(|c| condition_status(c) != "True");
    let stalled = condition(obj, "Stalled").filter(|c| condition_status(c) == "True");
    let (reason, message) = match not_ready.or(stalled) {
        Some(cond) => {
            let (reason, message) = reason_message(cond);
            (Some(reason), non_empty(message))
        }
        None if blocked_by.is_some() => (None, None),
        None => return None,
    };
    let state = classify(reason.as_deref().unwrap_or_default(), blocked_by.is_some());
    Some(ResourceRow {
        object,
        state,
        reason,
        message,
        blocked_by,
    })
}

/// The row of an object the cluster calls ready but ksail judged failed (`failed`, keyed
/// `(kind, ns/name)`), with ksail's verdict: a source serving another digest is the root cause.
pub fn failed_by_ksail(
    kind: &str,
    obj: &Value,
    failed: &BTreeMap<(String, String), (String, Option<String>)>,
) -> Option<ResourceRow> {
    let object = object_name(kind, obj);
    let (reason, message) = failed.get(&(kind.to_string(), object.to_string()))?;
    Some(ResourceRow {
        object,
        state: RowState::Failed,
        reason: Some(reason.clone()),
        message: message.clone(),
        blocked_by: None,
    })
}

/// An Argo CD Application's row, or `None` when it is Synced and Healthy. The reason is the first
/// that applies: a `Failed`/`Error` operation (`OperationState/<phase>` with its message); the
/// first `ComparisonError`, `SyncError` or `InvalidSpecError` condition; else
/// `<sync>/<health>` with the health message.
pub fn argocd_row(kind: &str, obj: &Value) -> Option<ResourceRow> {
    let sync = str_at(obj, "/status/sync/status").unwrap_or(UNKNOWN);
    let health = str_at(obj, "/status/health/status").unwrap_or(UNKNOWN);
    if sync == "Synced" && health == "Healthy" {
        return None;
    }
    let object = object_name(kind, obj);
    let phase = str_at(obj, "/status/operationState/phase").unwrap_or_default();
    let error_condition = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|conds| {
            conds.iter().find(|c| {
                c.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| ARGO_ERROR_CONDITIONS.contains(&t))
            })
        });
    // A sync the controller retries stays `Running` between attempts (readiness/argocd.rs).
    let retrying = phase == "Running"
        && obj
            .pointer("/status/operationState/retryCount")
            .and_then(Value::as_u64)
            .is_some_and(|count| count > 0);
    let failed_resources;
    let (reason, message) = if matches!(phase, "Failed" | "Error") || retrying {
        // Argo CD's operation message says only "one or more synchronization tasks completed
        // unsuccessfully" with the first error; the sync result names each object that failed.
        failed_resources = failed_sync_resources(obj);
        (
            if retrying {
                "SyncFailed".to_string()
            } else {
                format!("OperationState/{phase}")
            },
            failed_resources.as_deref().unwrap_or_else(|| {
                str_at(obj, "/status/operationState/message").unwrap_or_default()
            }),
        )
    } else if let Some(cond) = error_condition {
        (
            str_at(cond, "/type").unwrap_or_default().to_string(),
            str_at(cond, "/message").unwrap_or_default(),
        )
    } else {
        (
            format!("{sync}/{health}"),
            str_at(obj, "/status/health/message").unwrap_or_default(),
        )
    };
    Some(ResourceRow {
        object,
        state: classify(&reason, false),
        reason: Some(reason),
        message: non_empty(message.to_string()),
        blocked_by: None,
    })
}

/// `Kind/namespace/name: message` of every object whose sync or hook failed in the Application's
/// last operation (`status.operationState.syncResult.resources`), joined by `; `; `None` when the
/// result names none.
fn failed_sync_resources(obj: &Value) -> Option<String> {
    let resources = obj
        .pointer("/status/operationState/syncResult/resources")?
        .as_array()?;
    let failed: Vec<String> = resources
        .iter()
        .filter(|r| {
            str_at(r, "/status") == Some("SyncFailed")
                || matches!(str_at(r, "/hookPhase"), Some("Failed" | "Error"))
        })
        .map(|r| {
            let kind = str_at(r, "/kind").unwrap_or(UNKNOWN);
            let name = str_at(r, "/name").unwrap_or_default();
            let object = match str_at(r, "/namespace").filter(|ns| !ns.is_empty()) {
                Some(namespace) => format!("{kind}/{namespace}/{name}"),
                None => format!("{kind}/{name}"),
            };
            match str_at(r, "/message").filter(|m| !m.is_empty()) {
                Some(message) => format!("{object}: {message}"),
                None => object,
            }
        })
        .collect();
    (!failed.is_empty()).then(|| failed.join("; "))
}

/// Rows in display order: failed, progressing, blocked; by `ns/name` within each group.
pub fn sort_rows(rows: &mut [ResourceRow]) {
    rows.sort_by(|a, b| {
        (a.state, &a.object.namespace, &a.object.name).cmp(&(
            b.state,
            &b.object.namespace,
            &b.object.name,
        ))
    });
}

/// Why a pod is unhealthy, or `None` when it is healthy (`Running` with every container ready, or
/// `Succeeded`). The first matching rule gives the detail (reconcile.md#content, rules 1–5).
pub fn pod_detail(pod: &Value) -> Option<String> {
    let phase = str_at(pod, "/status/phase").unwrap_or(UNKNOWN);
    let statuses = |field: &str| -> Vec<&Value> {
        pod.pointer(&format!("/status/{field}"))
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let containers = statuses("containerStatuses");
    let all_ready = containers
        .iter()
        .all(|c| c.get("ready").and_then(Value::as_bool) == Some(true));
    if phase == "Succeeded" || (phase == "Running" && all_ready) {
        return None;
    }
    if let Some((container, waiting)) = containers
        .iter()
        .find_map(|c| Some((*c, c.pointer("/state/waiting")?)))
    {
        let reason = str_at(waiting, "/reason").unwrap_or("Waiting");
        let image = str_at(container, "/image").unwrap_or_default();
        let restarts = container
            .get("restartCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let noun = if restarts == 1 { "restart" } else { "restarts" };
        return Some(format!("{reason} ({image}, {restarts} {noun})"));
    }
    if let Some(terminated) = containers
        .iter()
        .find_map(|c| c.pointer("/state/terminated"))
    {
        let code = terminated
            .get("exitCode")
            .and_then(Value::as_i64)
            .unwrap_or_default();
        return Some(match str_at(terminated, "/reason") {
            Some(reason) => format!("exited {code} ({reason})"),
            None => format!("exited {code}"),
        });
    }
    if let Some(waiting) = statuses("initContainerStatuses")
        .iter()
        .find_map(|c| c.pointer("/state/waiting"))
    {
        return Some(format!(
            "init: {}",
            str_at(waiting, "/reason").unwrap_or("Waiting")
        ));
    }
    Some(
        match str_at(pod, "/status/reason").filter(|r| !r.is_empty()) {
            Some(reason) => format!("{phase} ({reason})"),
            None => phase.to_string(),
        },
    )
}

/// Unhealthy pods, by name.
pub fn pod_rows(pods: &[Value]) -> Vec<PodRow> {
    let mut rows: Vec<PodRow> = pods
        .iter()
        .filter_map(|pod| {
            Some(PodRow {
                name: str_at(pod, "/metadata/name")?.to_string(),
                detail: pod_detail(pod)?,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// An event's time: `lastTimestamp`, else `eventTime`, else `creationTimestamp`.
pub fn event_time(event: &Value) -> Option<OffsetDateTime> {
    [
        "/lastTimestamp",
        "/eventTime",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| str_at(event, p).and_then(parse_time))
}

/// Warning events no older than [`EVENT_WINDOW`] at `now`, newest first. An event without any
/// time cannot be placed in the window and is left out; one slightly in the future (clock skew)
/// counts as 0 s old.
pub fn event_rows(events: &[Value], now: OffsetDateTime) -> Vec<EventRow> {
    let mut dated: Vec<(OffsetDateTime, EventRow)> = events
        .iter()
        .filter(|e| str_at(e, "/type") == Some("Warning"))
        .filter_map(|e| {
            let at = event_time(e)?;
            let age = (now - at).whole_seconds().max(0) as u64;
            (age <= EVENT_WINDOW.as_secs()).then(|| {
                let text = |p: &str| str_at(e, p).unwrap_or_default().to_string();
                let row = EventRow {
                    age_seconds: age,
                    kind: text("/involvedObject/kind"),
                    name: text("/involvedObject/name"),
                    reason: text("/reason"),
                    message: text("/message"),
                };
                (at, row)
            })
        })
        .collect();
    // Newest first; equal times keep a stable, readable order.
    dated.sort_by(|(a, ra), (b, rb)| {
        b.cmp(a)
            .then_with(|| (&ra.kind, &ra.name).cmp(&(&rb.kind, &rb.name)))
    });
    dated.into_iter().map(|(_, row)| row).collect()
}
