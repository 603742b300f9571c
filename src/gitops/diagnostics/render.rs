//! The text layout of a diagnostics report and its JSON form (reconcile.md#layout). Pure.

use serde_json::{Value, json};

use super::{Report, ResourceRow, RowState};

/// Messages longer than this many characters are cut, ending in `…`.
pub const MESSAGE_LIMIT: usize = 120;
/// At most this many events are listed in the text report; the JSON lists all.
pub const EVENTS_SHOWN: usize = 20;
/// Space between a padded column and the next.
const GAP: usize = 2;
const SECTION_INDENT: &str = "  ";
const ROW_INDENT: &str = "    ";

impl RowState {
    pub fn symbol(self) -> char {
        match self {
            RowState::Failed => '✗',
            RowState::Progressing => '►',
            RowState::Blocked => '·',
        }
    }

    /// The JSON `state` of a resource row.
    pub fn json_name(self) -> &'static str {
        match self {
            RowState::Failed => "failed",
            RowState::Progressing => "progressing",
            RowState::Blocked => "blocked",
        }
    }
}

/// Whitespace runs collapsed to one space, trimmed, and cut to [`MESSAGE_LIMIT`] characters in
/// total, the last of which is `…` when the text was cut.
pub fn clean_message(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MESSAGE_LIMIT {
        return collapsed;
    }
    let mut cut: String = collapsed.chars().take(MESSAGE_LIMIT - 1).collect();
    // A cut right after a word would leave "word …"; the ellipsis reads better attached.
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

/// `<n>s` under a minute, `<n>m` under an hour, `<h>h<m>m` otherwise.
pub fn format_age(seconds: u64) -> String {
    match seconds {
        s if s < 60 => format!("{s}s"),
        s if s < 3_600 => format!("{}m", s / 60),
        s => format!("{}h{}m", s / 3_600, (s % 3_600) / 60),
    }
}

/// `<Reason> · <message>`, `<Reason>` when there is no message, or `blocked by <ns>/<name>`.
fn row_detail(row: &ResourceRow) -> String {
    if let Some(by) = &row.blocked_by {
        return format!("blocked by {by}");
    }
    let reason = row.reason.as_deref().unwrap_or("Unknown");
    match row.message.as_deref().map(clean_message) {
        Some(message) if !message.is_empty() => format!("{reason} · {message}"),
        _ => reason.to_string(),
    }
}

fn padded(text: &str, width: usize) -> String {
    format!("{text:<width$}")
}

/// The report as stderr lines, or nothing when every section is empty. Resource names are padded
/// across all GitOps resource kinds (they form one section of the content table, and the spec's
/// example aligns Kustomizations and HelmReleases to the same column).
pub fn render(report: &Report) -> Vec<String> {
    if report.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!("Diagnostics ({})", report.engine.display_name())];
    let name_width = report
        .resources
        .iter()
        .flat_map(|s| &s.rows)
        .map(|r| r.object.to_string().chars().count())
        .max()
        .unwrap_or(0)
        + GAP;
    for section in report.resources.iter().filter(|s| !s.rows.is_empty()) {
        lines.push(format!("{SECTION_INDENT}{}", section.heading));
        for row in &section.rows {
            lines.push(format!(
                "{ROW_INDENT}{} {}{}",
                row.state.symbol(),
                padded(&row.object.to_string(), name_width),
                row_detail(row)
            ));
        }
    }
    if !report.pods.is_empty() {
        lines.push(format!(
            "{SECTION_INDENT}Pods not ready ({})",
            report.namespace
        ));
        let width = report
            .pods
            .iter()
            .map(|p| p.name.chars().count())
            .max()
            .unwrap_or(0)
            + GAP;
        for pod in &report.pods {
            lines.push(format!(
                "{ROW_INDENT}{}{}",
                padded(&pod.name, width),
                pod.detail
            ));
        }
    }
    if !report.events.is_empty() {
        lines.push(format!(
            "{SECTION_INDENT}Warning events ({}, last 5m)",
            report.namespace
        ));
        let shown = &report.events[..report.events.len().min(EVENTS_SHOWN)];
        let ages: Vec<String> = shown
            .iter()
            .map(|e| format!("{} ago", format_age(e.age_seconds)))
            .collect();
        let objects: Vec<String> = shown
            .iter()
            .map(|e| format!("{}/{}", e.kind, e.name))
            .collect();
        let width =
            |column: &[String]| column.iter().map(|c| c.chars().count()).max().unwrap_or(0) + GAP;
        let (age_width, object_width) = (width(&ages), width(&objects));
        for ((event, age), object) in shown.iter().zip(&ages).zip(&objects) {
            let message = clean_message(&event.message);
            let text = if message.is_empty() {
                event.reason.clone()
            } else {
                format!("{}: {message}", event.reason)
            };
            lines.push(format!(
                "{ROW_INDENT}{}{}{text}",
                padded(age, age_width),
                padded(object, object_width)
            ));
        }
        let hidden = report.events.len() - shown.len();
        if hidden > 0 {
            lines.push(format!("{ROW_INDENT}… and {hidden} more"));
        }
    }
    lines
}

/// The `diagnostics` member of the JSON document. Messages are given in full, as the objects
/// report them; resources are listed in the order of the text report.
pub fn to_json(report: &Report) -> Value {
    let resources: Vec<Value> = report
        .resources
        .iter()
        .flat_map(|s| &s.rows)
        .map(|row| {
            let message = match &row.blocked_by {
                Some(by) => Some(format!("blocked by {by}")),
                None => row.message.clone(),
            };
            json!({
                "kind": row.object.kind,
                "namespace": row.object.namespace,
                "name": row.object.name,
                "state": row.state.json_name(),
                "reason": row.reason,
                "message": message,
            })
        })
        .collect();
    let pods: Vec<Value> = report
        .pods
        .iter()
        .map(|p| json!({"name": p.name, "detail": p.detail}))
        .collect();
    let events: Vec<Value> = report
        .events
        .iter()
        .map(|e| {
            json!({
                "ageSeconds": e.age_seconds,
                "kind": e.kind,
                "name": e.name,
                "reason": e.reason,
                "message": e.message,
            })
        })
        .collect();
    json!({
        "engine": report.engine.json_name(),
        "namespace": report.namespace,
        "resources": resources,
        "pods": pods,
        "events": events,
    })
}
