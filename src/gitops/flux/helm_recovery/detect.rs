//! Which HelmReleases are stuck (reconcile.md#detection). Pure: it reads an object's JSON and
//! nothing else, so the rules are pinned by a table test.

use serde_json::Value;

/// `Ready=False` reasons after which the helm-controller does not retry by itself.
pub const STUCK_READY_REASONS: [&str; 7] = [
    "InstallFailed",
    "UpgradeFailed",
    "TestFailed",
    "RollbackFailed",
    "UninstallFailed",
    "ReconciliationFailed",
    "GetLastReleaseFailed",
];

/// A `Ready` reason that resolves on its own once the dependency is ready, so it is never reset.
const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";

/// Why `object` (a HelmRelease as JSON, with `spec` and `status` at the top level) is stuck, or
/// `None` when it is not. The reason is the `Stalled` reason when it is stalled, else the `Ready`
/// reason.
pub fn stuck_reason(object: &Value) -> Option<String> {
    if object.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return None;
    }
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    if conditions.is_empty() {
        return None;
    }
    let condition = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    };

    let ready = condition("Ready");
    if ready.is_some_and(|c| reason_of(c) == DEPENDENCY_NOT_READY) {
        return None;
    }
    if let Some(stalled) = condition("Stalled").filter(|c| status_of(c) == "True") {
        // A stalled condition without a reason is still stalled; name the condition instead.
        let reason = reason_of(stalled);
        return Some(if reason.is_empty() { "Stalled" } else { reason }.to_string());
    }
    let ready = ready.filter(|c| status_of(c) == "False")?;
    let reason = reason_of(ready);
    STUCK_READY_REASONS
        .contains(&reason)
        .then(|| reason.to_string())
}

fn status_of(condition: &Value) -> &str {
    condition
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn reason_of(condition: &Value) -> &str {
    condition
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use fake_apiserver::fixtures::{HelmState, helm_release};
    use serde_json::json;

    fn with_conditions(conditions: Value) -> Value {
        json!({"spec": {}, "status": {"conditions": conditions}})
    }

    fn cond(kind: &str, status: &str, reason: &str) -> Value {
        json!({"type": kind, "status": status, "reason": reason})
    }

    #[test]
    fn every_listed_ready_reason_is_stuck() {
        for reason in STUCK_READY_REASONS {
            let object = helm_release("apps", "web", HelmState::NotReady(reason.into()));
            assert_eq!(stuck_reason(&object).as_deref(), Some(reason), "{reason}");
        }
    }

    #[test]
    fn detection_table() {
        let suspended = {
            let mut object =
                helm_release("apps", "web", HelmState::Stalled("RetriesExceeded".into()));
            object["spec"]["suspend"] = json!(true);
            object
        };
        let suspend_false = {
            let mut object =
                helm_release("apps", "web", HelmState::NotReady("UpgradeFailed".into()));
            object["spec"]["suspend"] = json!(false);
            object
        };
        let table: Vec<(&str, Value, Option<&str>)> = vec![
            (
                "Stalled RetriesExceeded",
                helm_release("apps", "web", HelmState::Stalled("RetriesExceeded".into())),
                Some("RetriesExceeded"),
            ),
            (
                "Stalled MissingRollbackTarget",
                helm_release(
                    "apps",
                    "web",
                    HelmState::Stalled("MissingRollbackTarget".into()),
                ),
                Some("MissingRollbackTarget"),
            ),
            (
                "Stalled with any reason, Ready absent",
                with_conditions(json!([cond("Stalled", "True", "SomethingNew")])),
                Some("SomethingNew"),
            ),
            (
                "Stalled without a reason",
                with_conditions(json!([{"type": "Stalled", "status": "True"}])),
                Some("Stalled"),
            ),
            (
                "Stalled wins over the Ready reason",
                with_conditions(json!([
                    cond("Ready", "False", "UpgradeFailed"),
                    cond("Stalled", "True", "RetriesExceeded")
                ])),
                Some("RetriesExceeded"),
            ),
            (
                "Stalled=False with a listed Ready reason",
                with_conditions(json!([
                    cond("Stalled", "False", "RetriesExceeded"),
                    cond("Ready", "False", "InstallFailed")
                ])),
                Some("InstallFailed"),
            ),
            (
                "suspend: false is not suspended",
                suspend_false,
                Some("UpgradeFailed"),
            ),
            ("suspended", suspended, None),
            (
                "DependencyNotReady",
                helm_release(
                    "apps",
                    "web",
                    HelmState::NotReady("DependencyNotReady".into()),
                ),
                None,
            ),
            (
                "DependencyNotReady even when stalled",
                with_conditions(json!([
                    cond("Stalled", "True", "RetriesExceeded"),
                    cond("Ready", "False", "DependencyNotReady")
                ])),
                None,
            ),
            ("ready", helm_release("apps", "web", HelmState::Ready), None),
            (
                "Ready=False with an unlisted reason",
                helm_release("apps", "web", HelmState::NotReady("Progressing".into())),
                None,
            ),
            (
                "Ready=Unknown with a listed reason",
                with_conditions(json!([cond("Ready", "Unknown", "UpgradeFailed")])),
                None,
            ),
            ("no conditions", with_conditions(json!([])), None),
            ("no status", json!({"spec": {}}), None),
        ];
        for (name, object, expected) in table {
            assert_eq!(stuck_reason(&object).as_deref(), expected, "{name}");
        }
    }
}
