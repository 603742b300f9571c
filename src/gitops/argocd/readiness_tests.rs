//! Tables for the Argo CD rules: each completion condition, the terminal rule and gating.

use serde_json::{Value, json};

use super::*;
use crate::gitops::fixture::{HEX, digest, edit, remove};

const OLD_DIGEST: &str = "sha256:9f8e7d6c5b4a00112233445566778899aabbccddeeff00112233445566778899";
const SYNC_URL: &str = "oci://kind-local-registry:5000/k8s";
const RECORDED: &str = "2026-05-01T09:00:00Z";

/// The fixture as the rules read it.
fn typed(object: &Value) -> Application {
    Application::parse(object).expect("the fixture reads as an Application")
}

/// An Application that meets every completion condition for digest(), with an operation of
/// this run that succeeded.
fn complete_app() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "web", "namespace": "argocd"},
        "spec": {"source": {"repoURL": SYNC_URL, "targetRevision": "dev"}},
        "status": {
            "reconciledAt": "2026-05-01T10:00:05Z",
            "sync": {"status": "Synced", "revision": digest()},
            "health": {"status": "Healthy"},
            "operationState": {
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "startedAt": "2026-05-01T10:00:01Z",
                "finishedAt": "2026-05-01T10:00:04Z"
            }
        }
    })
}

fn failed_app(phase: &str, started_at: &str) -> Value {
    edit(complete_app(), |app| {
        app["status"]["sync"]["status"] = json!("OutOfSync");
        app["status"]["operationState"]["phase"] = json!(phase);
        app["status"]["operationState"]["startedAt"] = json!(started_at);
        app["status"]["operationState"]["message"] = json!("one or more objects failed to apply");
    })
}

/// The operation recorded before the trigger: one that failed and started at [`RECORDED`].
fn recorded() -> Option<String> {
    operation_fingerprint(&typed(&failed_app("Failed", RECORDED)))
}

/// An automated sync of digest() that failed `retry_count` times, as the controller leaves it
/// between attempts (phase `Running`, `operation` still set).
fn retrying_app(retry_count: u64, policy: Option<Value>) -> Value {
    edit(complete_app(), |app| {
        app["status"]["sync"]["status"] = json!("OutOfSync");
        app["operation"] = json!({"sync": {"revision": digest()}, "initiatedBy": {"automated": true}, "retry": {"limit": 5}});
        app["status"]["operationState"] = json!({
            "phase": "Running",
            "startedAt": "2026-05-01T10:00:01Z",
            "finishedAt": "2026-05-01T10:00:02Z",
            "retryCount": retry_count,
            "message": format!("one or more synchronization tasks completed unsuccessfully, reason: bad. Retrying attempt #{retry_count} at 2026-05-01T10:00:12Z."),
            "operation": {"sync": {"revision": digest()}, "initiatedBy": {"automated": true}, "retry": {"limit": 5}},
        });
        if let Some(policy) = policy {
            app["spec"]["syncPolicy"] = json!({"automated": {}, "retry": policy});
        }
    })
}

fn gated_context(digest: &str) -> ApplicationContext<'_> {
    ApplicationContext {
        recorded_operation: recorded(),
        expected_digest: Some(digest),
        gated: true,
    }
}

#[derive(Debug)]
enum Expect {
    Complete(Option<String>),
    Waiting(&'static str),
    Failed(&'static str),
    FailedWith(&'static str, &'static str),
}

fn check(name: &str, verdict: Verdict, expected: &Expect) {
    match (&verdict, expected) {
        (Verdict::Complete { revision }, Expect::Complete(want)) => {
            assert_eq!(revision, want, "{name}")
        }
        (Verdict::Waiting { status }, Expect::Waiting(want)) => assert_eq!(status, want, "{name}"),
        (Verdict::Failed { reason, message }, Expect::Failed(want)) => {
            assert_eq!(reason, want, "{name}");
            assert_eq!(message, "one or more objects failed to apply", "{name}");
        }
        (Verdict::Failed { reason, message }, Expect::FailedWith(want, want_message)) => {
            assert_eq!(
                (reason.as_str(), message.as_str()),
                (*want, *want_message),
                "{name}"
            );
        }
        _ => panic!("{name}: got {verdict:?}, expected {expected:?}"),
    }
}

#[test]
fn application_completion_needs_every_condition() {
    let d = digest();
    let set_health = |health: &str| {
        let health = health.to_string();
        edit(complete_app(), move |app| {
            app["status"]["health"]["status"] = json!(health)
        })
    };
    let cases: Vec<(&str, Value, ApplicationContext, Expect)> = vec![
        (
            "all conditions hold",
            complete_app(),
            gated_context(&d),
            Expect::Complete(Some(d.clone())),
        ),
        (
            "1: refresh not handled",
            edit(complete_app(), |app| {
                app["metadata"]["annotations"] = json!({ REFRESH_ANNOTATION: "normal" })
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to handle the refresh"),
        ),
        (
            "2: operation not started",
            edit(complete_app(), |app| {
                app["operation"] = json!({"initiatedBy": {"username": "ksail"}, "sync": {}})
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to start the sync operation"),
        ),
        (
            "2: operation null counts as absent",
            edit(complete_app(), |app| app["operation"] = Value::Null),
            gated_context(&d),
            Expect::Complete(Some(d.clone())),
        ),
        (
            "3: no operationState at all",
            edit(complete_app(), |app| {
                remove(app, "/status", "operationState")
            }),
            gated_context(&d),
            Expect::Complete(Some(d.clone())),
        ),
        (
            "3: operation running",
            edit(complete_app(), |app| {
                app["status"]["operationState"]["phase"] = json!("Running");
                app["status"]["operationState"]["message"] = json!("waiting for healthy\n state");
            }),
            gated_context(&d),
            Expect::Waiting("OperationState/Running: waiting for healthy state"),
        ),
        (
            "3: finishedAt missing",
            edit(complete_app(), |app| {
                remove(app, "/status/operationState", "finishedAt")
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to compare the synced state"),
        ),
        (
            "3: reconciledAt before finishedAt",
            edit(complete_app(), |app| {
                app["status"]["reconciledAt"] = json!("2026-05-01T10:00:03Z")
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to compare the synced state"),
        ),
        (
            "3: reconciledAt before finishedAt in another offset",
            edit(complete_app(), |app| {
                app["status"]["reconciledAt"] = json!("2026-05-01T11:00:03+02:00")
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to compare the synced state"),
        ),
        (
            "3: reconciledAt missing",
            edit(complete_app(), |app| remove(app, "/status", "reconciledAt")),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to compare the synced state"),
        ),
        (
            "3: reconciledAt equal to finishedAt",
            edit(complete_app(), |app| {
                app["status"]["reconciledAt"] = json!("2026-05-01T10:00:04Z")
            }),
            gated_context(&d),
            Expect::Complete(Some(d.clone())),
        ),
        (
            "4: OutOfSync",
            edit(complete_app(), |app| {
                app["status"]["sync"]["status"] = json!("OutOfSync")
            }),
            gated_context(&d),
            Expect::Waiting("OutOfSync/Healthy"),
        ),
        (
            "4+5: OutOfSync/Progressing",
            edit(complete_app(), |app| {
                app["status"]["sync"]["status"] = json!("OutOfSync");
                app["status"]["health"]["status"] = json!("Progressing");
            }),
            gated_context(&d),
            Expect::Waiting("OutOfSync/Progressing"),
        ),
        (
            "5: Progressing",
            set_health("Progressing"),
            gated_context(&d),
            Expect::Waiting("Synced/Progressing"),
        ),
        (
            "5: Degraded",
            set_health("Degraded"),
            gated_context(&d),
            Expect::Waiting("Synced/Degraded"),
        ),
        (
            "5: Missing",
            set_health("Missing"),
            gated_context(&d),
            Expect::Waiting("Synced/Missing"),
        ),
        (
            "5: Suspended",
            set_health("Suspended"),
            gated_context(&d),
            Expect::Waiting("Synced/Suspended"),
        ),
        (
            "4+5: no status yet",
            edit(complete_app(), |app| remove(app, "", "status")),
            gated_context(&d),
            Expect::Waiting("Unknown/Unknown"),
        ),
        (
            "6: another revision synced",
            edit(complete_app(), |app| {
                app["status"]["sync"]["revision"] = json!(OLD_DIGEST)
            }),
            gated_context(&d),
            Expect::Waiting("waiting for revision sha256:1a2b3c4d5e6f to be synced"),
        ),
        (
            "6: not gated",
            edit(complete_app(), |app| {
                app["status"]["sync"]["revision"] = json!(OLD_DIGEST)
            }),
            ApplicationContext {
                gated: false,
                ..gated_context(&d)
            },
            Expect::Complete(Some(OLD_DIGEST.to_string())),
        ),
        (
            "6: D unknown",
            edit(complete_app(), |app| {
                app["status"]["sync"]["revision"] = json!(OLD_DIGEST)
            }),
            ApplicationContext {
                expected_digest: None,
                ..gated_context(&d)
            },
            Expect::Complete(Some(OLD_DIGEST.to_string())),
        ),
        (
            "6: multi-source revisions contain D",
            edit(complete_app(), |app| {
                remove(app, "/spec", "source");
                remove(app, "/status/sync", "revision");
                app["spec"]["sources"] =
                    json!([{"repoURL": "https://charts.example"}, {"repoURL": SYNC_URL}]);
                app["status"]["sync"]["revisions"] = json!(["1.2.3", digest()]);
            }),
            gated_context(&d),
            Expect::Complete(Some(d.clone())),
        ),
        (
            "6: multi-source revisions without D",
            edit(complete_app(), |app| {
                remove(app, "/spec", "source");
                app["spec"]["sources"] = json!([{"repoURL": SYNC_URL}]);
                app["status"]["sync"]["revisions"] = json!([OLD_DIGEST]);
            }),
            gated_context(&d),
            Expect::Waiting("waiting for revision sha256:1a2b3c4d5e6f to be synced"),
        ),
    ];
    for (name, app, context, expected) in cases {
        check(name, application_verdict(&typed(&app), &context), &expected);
    }
}

#[test]
fn application_failures_are_terminal_only_for_this_runs_operation() {
    let d = digest();
    let cases: Vec<(&str, Value, ApplicationContext, Expect)> = vec![
        (
            "this run's operation Failed",
            failed_app("Failed", "2026-05-01T10:00:01Z"),
            gated_context(&d),
            Expect::Failed("OperationState/Failed"),
        ),
        (
            "this run's operation Error",
            failed_app("Error", "2026-05-01T10:00:01Z"),
            gated_context(&d),
            Expect::Failed("OperationState/Error"),
        ),
        (
            "nothing recorded before the trigger",
            failed_app("Failed", "2026-05-01T10:00:01Z"),
            ApplicationContext {
                recorded_operation: None,
                ..gated_context(&d)
            },
            Expect::Failed("OperationState/Failed"),
        ),
        (
            "a new operation that started in the same second as the recorded one",
            edit(failed_app("Failed", RECORDED), |app| {
                app["status"]["operationState"]["finishedAt"] = json!("2026-05-01T09:00:02Z");
                app["status"]["operationState"]["syncResult"] = json!({"revision": d.clone()});
            }),
            ApplicationContext {
                recorded_operation: operation_fingerprint(&typed(&edit(complete_app(), |app| {
                    app["status"]["operationState"]["startedAt"] = json!(RECORDED);
                }))),
                ..gated_context(&d)
            },
            Expect::Failed("OperationState/Failed"),
        ),
        (
            "stale Failed operation is ignored",
            failed_app("Failed", RECORDED),
            gated_context(&d),
            Expect::Waiting("OutOfSync/Healthy"),
        ),
        (
            "stale Failed operation with a pending new operation",
            edit(failed_app("Failed", RECORDED), |app| {
                app["operation"] = json!({"sync": {}})
            }),
            gated_context(&d),
            Expect::Waiting("waiting for the controller to start the sync operation"),
        ),
        (
            "stale Failed operation on a synced, healthy app still waits",
            edit(failed_app("Failed", RECORDED), |app| {
                app["status"]["sync"]["status"] = json!("Synced")
            }),
            gated_context(&d),
            Expect::Waiting(
                "OperationState/Failed: one or more objects failed to apply (earlier operation)",
            ),
        ),
        (
            "an automated sync that failed once is waited on while Argo CD retries it",
            retrying_app(1, None),
            gated_context(&d),
            Expect::Waiting(
                "sync failed, Argo CD retries (attempt #1): one or more synchronization tasks completed unsuccessfully, reason: bad",
            ),
        ),
        (
            "an automated sync that failed twice fails the run",
            retrying_app(2, None),
            gated_context(&d),
            Expect::FailedWith(
                "SyncFailed",
                "one or more synchronization tasks completed unsuccessfully, reason: bad (failed 2 attempts; Argo CD keeps retrying)",
            ),
        ),
        (
            "with a retry policy of its own the Application's retries are waited out",
            retrying_app(4, Some(json!({"limit": 10}))),
            gated_context(&d),
            Expect::Waiting(
                "sync failed, Argo CD retries (attempt #4): one or more synchronization tasks completed unsuccessfully, reason: bad",
            ),
        ),
        (
            "a retried sync of another revision is not this run's",
            edit(retrying_app(3, None), |app| {
                app["status"]["operationState"]["operation"]["sync"]["revision"] =
                    json!(OLD_DIGEST);
            }),
            gated_context(&d),
            Expect::Waiting(
                "waiting: Argo CD retries an earlier sync that fails (one or more synchronization tasks completed unsuccessfully, reason: bad)",
            ),
        ),
        (
            "ComparisonError is not terminal",
            edit(complete_app(), |app| {
                app["status"]["sync"]["status"] = json!("Unknown");
                app["status"]["conditions"] = json!([
                    {"type": "ComparisonError", "message": "failed to get\n manifest: not found"}
                ]);
            }),
            gated_context(&d),
            Expect::Waiting("ComparisonError: failed to get manifest: not found"),
        ),
        (
            "SyncError is not terminal",
            edit(complete_app(), |app| {
                app["status"]["conditions"] = json!([
                    {"type": "OrphanedResourceWarning", "message": "ignored"},
                    {"type": "SyncError", "message": "retrying"}
                ]);
            }),
            gated_context(&d),
            Expect::Waiting("SyncError: retrying"),
        ),
    ];
    for (name, app, context, expected) in cases {
        check(name, application_verdict(&typed(&app), &context), &expected);
    }
}

#[test]
fn failed_operation_without_message_names_the_phase() {
    let app = edit(failed_app("Error", "2026-05-01T10:00:01Z"), |app| {
        app["status"]["operationState"]["message"] = json!("")
    });
    assert_eq!(
        application_verdict(&typed(&app), &gated_context(&digest())),
        Verdict::Failed {
            reason: "OperationState/Error".into(),
            message: "sync operation Error".into()
        }
    );
}

#[test]
fn gating_compares_repo_urls_ignoring_host_case_and_trailing_slash() {
    let app = |source: Value| json!({"spec": source});
    let source = |url: &str| app(json!({"source": {"repoURL": url}}));
    let cases: Vec<(&str, Value, bool)> = vec![
        ("equal", source(SYNC_URL), true),
        (
            "host case",
            source("oci://Kind-Local-Registry:5000/k8s"),
            true,
        ),
        (
            "scheme case",
            source("OCI://kind-local-registry:5000/k8s"),
            true,
        ),
        (
            "trailing slash",
            source("oci://kind-local-registry:5000/k8s/"),
            true,
        ),
        (
            "path case matters",
            source("oci://kind-local-registry:5000/K8s"),
            false,
        ),
        (
            "other repository",
            source("oci://kind-local-registry:5000/other"),
            false,
        ),
        (
            "other port",
            source("oci://kind-local-registry:5001/k8s"),
            false,
        ),
        (
            "any of sources",
            app(
                json!({"sources": [{"repoURL": "https://charts.example"}, {"repoURL": "oci://KIND-local-registry:5000/k8s/"}]}),
            ),
            true,
        ),
        (
            "none of sources",
            app(json!({"sources": [{"repoURL": "https://charts.example"}]})),
            false,
        ),
        ("no source", app(json!({})), false),
    ];
    for (name, application, expected) in cases {
        assert_eq!(is_gated(&typed(&application), SYNC_URL), expected, "{name}");
    }
    assert!(urls_match(
        "oci://GHCR.io/acme/app",
        "oci://ghcr.io/acme/app/"
    ));
    assert!(!urls_match(
        "oci://ghcr.io/Acme/app",
        "oci://ghcr.io/acme/app"
    ));
}

#[test]
fn expected_revision_accepts_tagged_and_bare_forms() {
    let app = edit(complete_app(), |app| {
        app["status"]["sync"]["revision"] = json!(format!("dev@sha256:{HEX}"))
    });
    assert!(expected_revision_matches(&typed(&app), &digest()));
    assert!(!expected_revision_matches(&typed(&app), OLD_DIGEST));
    assert!(!expected_revision_matches(&typed(&json!({})), &digest()));
}
