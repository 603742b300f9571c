//! The message of an attempt that reached its deadline (reconcile.md "Timeout and attempts").

use std::time::Duration;

use super::text::{collapse_whitespace, truncate};
use crate::duration::format_go;
use crate::output::counted;

/// How many unfinished objects the message names.
pub const MAX_NAMED_UNFINISHED: usize = 5;

/// Each quoted status is cut like diagnostics messages, so five long controller messages cannot
/// make the error line unreadable.
const MAX_STATUS_CHARS: usize = 120;

/// `timed out after 5m0s waiting for 2 of 7 objects: kustomization apps/podinfo (waiting for
/// revision dev@sha256:1a2b3c4d5e6f to be applied), application argocd/web (OutOfSync/Progressing)`.
///
/// `unfinished` holds `(object, last status)` in the order to report, for example
/// `("kustomization apps/podinfo", "…")`; `total` counts every tracked object. At most
/// [`MAX_NAMED_UNFINISHED`] are named, then `, … and N more`. Statuses are put on one line and
/// cut to 120 characters. With nothing unfinished (the deadline hit before objects were known)
/// the message is just `timed out after 5m0s`.
pub fn timeout_message(timeout: Duration, unfinished: &[(String, String)], total: usize) -> String {
    let head = format!("timed out after {}", format_go(timeout));
    if unfinished.is_empty() {
        return head;
    }
    let named: Vec<String> = unfinished
        .iter()
        .take(MAX_NAMED_UNFINISHED)
        .map(|(object, status)| {
            let status = truncate(&collapse_whitespace(status), MAX_STATUS_CHARS);
            if status.is_empty() {
                object.clone()
            } else {
                format!("{object} ({status})")
            }
        })
        .collect();
    let mut message = format!(
        "{head} waiting for {} of {}: {}",
        unfinished.len(),
        counted(total.max(unfinished.len()), "object", "objects"),
        named.join(", ")
    );
    let rest = unfinished.len().saturating_sub(MAX_NAMED_UNFINISHED);
    if rest > 0 {
        message.push_str(&format!(", … and {rest} more"));
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(object: &str, status: &str) -> (String, String) {
        (object.to_string(), status.to_string())
    }

    #[test]
    fn matches_the_spec_example() {
        let unfinished = [
            pair(
                "kustomization apps/podinfo",
                "waiting for revision dev@sha256:1a2b3c4d5e6f to be applied",
            ),
            pair("application argocd/web", "OutOfSync/Progressing"),
        ];
        assert_eq!(
            timeout_message(Duration::from_secs(300), &unfinished, 7),
            "timed out after 5m0s waiting for 2 of 7 objects: kustomization apps/podinfo (waiting for revision dev@sha256:1a2b3c4d5e6f to be applied), application argocd/web (OutOfSync/Progressing)"
        );
    }

    #[test]
    fn names_at_most_five() {
        let unfinished: Vec<(String, String)> = (1..=7)
            .map(|n| pair(&format!("kustomization apps/a{n}"), "Progressing"))
            .collect();
        let message = timeout_message(Duration::from_secs(90), &unfinished, 9);
        assert_eq!(
            message,
            "timed out after 1m30s waiting for 7 of 9 objects: kustomization apps/a1 (Progressing), kustomization apps/a2 (Progressing), kustomization apps/a3 (Progressing), kustomization apps/a4 (Progressing), kustomization apps/a5 (Progressing), … and 2 more"
        );
        let five = &unfinished[..5];
        assert!(!timeout_message(Duration::from_secs(90), five, 5).contains("more"));
    }

    #[test]
    fn statuses_stay_on_one_line_and_are_cut() {
        let long = format!(
            "HealthCheckFailed: line one\n  line two {}",
            "x".repeat(200)
        );
        let message = timeout_message(
            Duration::from_millis(1500),
            &[pair("kustomization a/b", &long)],
            1,
        );
        assert!(!message.contains('\n'));
        assert!(message.starts_with("timed out after 1.5s waiting for 1 of 1 object: kustomization a/b (HealthCheckFailed: line one line two x"));
        assert!(message.ends_with("…)"));
        let status_len = message
            .split_once(" (")
            .map(|(_, s)| s.chars().count() - 1)
            .unwrap_or(0);
        assert_eq!(status_len, 120);
    }

    #[test]
    fn empty_status_and_empty_list() {
        assert_eq!(
            timeout_message(
                Duration::from_secs(60),
                &[pair("application argocd/web", "")],
                3
            ),
            "timed out after 1m0s waiting for 1 of 3 objects: application argocd/web"
        );
        assert_eq!(
            timeout_message(Duration::from_secs(300), &[], 0),
            "timed out after 5m0s"
        );
    }
}
