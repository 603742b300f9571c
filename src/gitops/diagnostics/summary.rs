//! The final error line of a failed reconcile (reconcile.md#layout, "Summary error line"). Pure.
//! The text is a [`crate::error::Failure`] message: `main` adds the `error: ` prefix.

use std::time::Duration;

use crate::duration::format_go;
use crate::output::counted;

/// How many object names a summary line lists before `…`; the counts say how many there are.
pub const NAMES_LISTED: usize = 5;
/// The ending when the diagnostics report was printed just above the error line.
pub const SEE_DIAGNOSTICS: &str = "see diagnostics above";

/// Which of the three summary forms applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Summary<'a> {
    /// One object failed at the root; `blocked` tracked objects depend on it.
    /// `object` is `<ns>/<name>`.
    RootFailure {
        object: &'a str,
        reason: &'a str,
        blocked: usize,
    },
    /// Several objects failed independently (`<ns>/<name>` each, in display order).
    Several { objects: &'a [String] },
    /// The last attempt hit its deadline with `not_ready` of `total` objects unfinished.
    Timeout {
        after: Duration,
        attempts: u32,
        not_ready: &'a [String],
        total: usize,
    },
}

fn name_list(names: &[String]) -> String {
    let mut listed = names[..names.len().min(NAMES_LISTED)].join(", ");
    if names.len() > NAMES_LISTED {
        listed.push_str(", …");
    }
    listed
}

/// The error line without `error: `. It ends in `see diagnostics above` when the report was shown
/// (`report_shown`), else in `hint`, the normal what-to-do text of the failure.
pub fn summary_line(summary: &Summary<'_>, report_shown: bool, hint: &str) -> String {
    let body = match summary {
        Summary::RootFailure {
            object,
            reason,
            blocked,
        } => {
            let mut text = format!("reconcile failed: {object} ({reason})");
            if *blocked > 0 {
                text.push_str(&format!(
                    "; {} blocked",
                    counted(*blocked, "dependent", "dependents")
                ));
            }
            text
        }
        Summary::Several { objects } => format!(
            "reconcile failed: {} not ready ({})",
            counted(objects.len(), "resource", "resources"),
            name_list(objects)
        ),
        Summary::Timeout {
            after,
            attempts,
            not_ready,
            total,
        } => format!(
            "reconcile timed out after {} ({}): {} of {} not ready ({})",
            format_go(*after),
            counted(*attempts as usize, "attempt", "attempts"),
            not_ready.len(),
            counted(*total, "object", "objects"),
            name_list(not_ready)
        ),
    };
    let ending = if report_shown { SEE_DIAGNOSTICS } else { hint };
    if ending.is_empty() {
        body
    } else {
        format!("{body}; {ending}")
    }
}
