//! Tables for the Flux rules: one row per completion condition, terminal reason and guard.

use serde_json::{Value, json};

use super::*;
use crate::gitops::fixture::{HEX, digest, edit, remove};

const TOKEN: &str = "2026-05-01T10:00:00.123456789Z";
const OLD_TOKEN: &str = "2026-04-30T09:00:00.000000001Z";
const OLD_HEX: &str = "9f8e7d6c5b4a00112233445566778899aabbccddeeff00112233445566778899";

fn rev() -> String {
    format!("dev@sha256:{HEX}")
}

fn old_rev() -> String {
    format!("dev@sha256:{OLD_HEX}")
}

fn condition(condition_type: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": condition_type, "status": status, "reason": reason, "message": message})
}

fn set_conditions(object: &mut Value, conditions: Vec<Value>) {
    object["status"]["conditions"] = Value::Array(conditions);
}

/// A Kustomization that meets every completion condition for TOKEN and rev().
fn ready_kustomization() -> Value {
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "podinfo", "namespace": "apps", "generation": 2},
        "spec": {"sourceRef": {"kind": "OCIRepository", "name": "flux-system", "namespace": "flux-system"}},
        "status": {
            "observedGeneration": 2,
            "lastHandledReconcileAt": TOKEN,
            "lastAppliedRevision": rev(),
            "lastAttemptedRevision": rev(),
            "conditions": [condition("Ready", "True", "ReconciliationSucceeded", "Applied revision")]
        }
    })
}

/// The same Kustomization having failed this request at rev() with `reason`.
fn failed_kustomization(reason: &str) -> Value {
    edit(ready_kustomization(), |k| {
        k["status"]["lastAppliedRevision"] = json!(old_rev());
        set_conditions(k, vec![condition("Ready", "False", reason, "it broke")]);
    })
}

/// An OCIRepository that meets every completion condition for TOKEN, serving rev().
fn ready_source() -> Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "lastHandledReconcileAt": TOKEN,
            "artifact": {"revision": rev()},
            "conditions": [condition("Ready", "True", "Succeeded", "stored artifact")]
        }
    })
}

fn view(object: &Value) -> FluxObject {
    FluxObject::parse(object).expect("valid object")
}

fn sync_source(revision: Option<String>, complete: bool) -> Option<SourceState> {
    Some(SourceState {
        revision,
        is_sync_source: true,
        sync_source_complete: complete,
    })
}

fn other_source(revision: Option<String>) -> Option<SourceState> {
    Some(SourceState {
        revision,
        is_sync_source: false,
        sync_source_complete: false,
    })
}

fn context(source: Option<SourceState>) -> KustomizationContext<'static> {
    KustomizationContext {
        token: TOKEN,
        created_during_attempt: false,
        source,
    }
}

#[derive(Debug)]
enum Expect {
    Complete(Option<String>),
    Waiting(&'static str),
    Failed(&'static str),
}

fn check(name: &str, verdict: &Verdict, expected: &Expect) {
    match (verdict, expected) {
        (Verdict::Complete { revision }, Expect::Complete(want)) => {
            assert_eq!(revision, want, "{name}")
        }
        (Verdict::Waiting { status }, Expect::Waiting(want)) => assert_eq!(status, want, "{name}"),
        (Verdict::Failed { reason, message }, Expect::Failed(want)) => {
            assert_eq!(reason, want, "{name}");
            assert!(!message.is_empty(), "{name}: message");
        }
        _ => panic!("{name}: got {verdict:?}, expected {expected:?}"),
    }
}

/// One row per case: its name, the Kustomization, what the run knows, the verdict expected.
type KustomizationCase = (&'static str, Value, KustomizationContext<'static>, Expect);

fn check_kustomizations(cases: Vec<KustomizationCase>) {
    for (name, object, context, expected) in cases {
        check(
            name,
            &kustomization_verdict(&view(&object), &context),
            &expected,
        );
    }
}

const HANDLING: &str = "waiting for the controller to handle the request";
const NO_READY: &str = "waiting for the controller to report readiness";
const SYNC_PENDING: &str = "waiting for the sync source to be ready";
const REVISION_WAIT: &str = "waiting for revision dev@sha256:1a2b3c4d5e6f to be applied";

#[test]
fn kustomization_completion_needs_every_condition() {
    let gated = || sync_source(Some(rev()), true);
    let cases: Vec<KustomizationCase> = vec![
        (
            "all conditions hold",
            ready_kustomization(),
            context(gated()),
            Expect::Complete(Some(rev())),
        ),
        (
            "1: observedGeneration behind",
            edit(ready_kustomization(), |k| {
                k["status"]["observedGeneration"] = json!(1)
            }),
            context(gated()),
            Expect::Waiting(HANDLING),
        ),
        (
            "1: observedGeneration missing",
            edit(ready_kustomization(), |k| {
                remove(k, "/status", "observedGeneration")
            }),
            context(gated()),
            Expect::Waiting(HANDLING),
        ),
        (
            "2: older token",
            edit(ready_kustomization(), |k| {
                k["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN)
            }),
            context(gated()),
            Expect::Waiting(HANDLING),
        ),
        (
            "2: no token handled",
            edit(ready_kustomization(), |k| {
                remove(k, "/status", "lastHandledReconcileAt")
            }),
            context(gated()),
            Expect::Waiting(HANDLING),
        ),
        (
            "3: no conditions yet",
            edit(ready_kustomization(), |k| set_conditions(k, vec![])),
            context(gated()),
            Expect::Waiting(NO_READY),
        ),
        (
            "3: no status at all",
            edit(ready_kustomization(), |k| remove(k, "", "status")),
            context(gated()),
            Expect::Waiting(HANDLING),
        ),
        (
            "3: Ready=Unknown",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![condition(
                        "Ready",
                        "Unknown",
                        "Progressing",
                        "Reconciliation in progress",
                    )],
                )
            }),
            context(gated()),
            Expect::Waiting("Progressing: Reconciliation in progress"),
        ),
        (
            "3: Reconciling=True",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![
                        condition("Ready", "True", "ReconciliationSucceeded", ""),
                        condition("Reconciling", "True", "Progressing", "Building manifests"),
                    ],
                )
            }),
            context(gated()),
            Expect::Waiting("Progressing: Building manifests"),
        ),
        (
            "3: Reconciling=False is fine",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![
                        condition("Ready", "True", "ReconciliationSucceeded", ""),
                        condition("Reconciling", "False", "Succeeded", ""),
                    ],
                )
            }),
            context(gated()),
            Expect::Complete(Some(rev())),
        ),
        (
            "4: Ready at the previous revision",
            edit(ready_kustomization(), |k| {
                k["status"]["lastAppliedRevision"] = json!(old_rev())
            }),
            context(gated()),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "4: nothing applied yet",
            edit(ready_kustomization(), |k| {
                remove(k, "/status", "lastAppliedRevision")
            }),
            context(gated()),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "4: gate against a non-sync source",
            edit(ready_kustomization(), |k| {
                k["status"]["lastAppliedRevision"] = json!(old_rev())
            }),
            context(other_source(Some(rev()))),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "4: non-sync source matches",
            ready_kustomization(),
            context(other_source(Some(rev()))),
            Expect::Complete(Some(rev())),
        ),
        (
            "4: source without artifact skips the gate",
            edit(ready_kustomization(), |k| {
                k["status"]["lastAppliedRevision"] = json!(old_rev())
            }),
            context(other_source(None)),
            Expect::Complete(Some(old_rev())),
        ),
        (
            "4: missing or unknown source skips the gate",
            edit(ready_kustomization(), |k| {
                k["status"]["lastAppliedRevision"] = json!(old_rev())
            }),
            context(None),
            Expect::Complete(Some(old_rev())),
        ),
        (
            "4: sync source not complete yet",
            ready_kustomization(),
            context(sync_source(Some(rev()), false)),
            Expect::Waiting(SYNC_PENDING),
        ),
        (
            "4: sync source not complete and without artifact",
            ready_kustomization(),
            context(sync_source(None, false)),
            Expect::Waiting(SYNC_PENDING),
        ),
        (
            "4: revision wait is reported before the sync-source wait",
            edit(ready_kustomization(), |k| {
                k["status"]["lastAppliedRevision"] = json!(old_rev())
            }),
            context(sync_source(Some(rev()), false)),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "created during the attempt: token rule skipped",
            edit(ready_kustomization(), |k| {
                remove(k, "/status", "lastHandledReconcileAt")
            }),
            KustomizationContext {
                created_during_attempt: true,
                ..context(gated())
            },
            Expect::Complete(Some(rev())),
        ),
        (
            "created during the attempt: generation still required",
            edit(ready_kustomization(), |k| {
                k["status"]["observedGeneration"] = json!(1)
            }),
            KustomizationContext {
                created_during_attempt: true,
                ..context(gated())
            },
            Expect::Waiting(HANDLING),
        ),
    ];
    check_kustomizations(cases);
}

#[test]
fn each_kustomization_terminal_reason_fails_fast() {
    for reason in KUSTOMIZATION_TERMINAL_REASONS {
        let verdict = kustomization_verdict(
            &view(&failed_kustomization(reason)),
            &context(sync_source(Some(rev()), true)),
        );
        assert_eq!(
            verdict,
            Verdict::Failed {
                reason: reason.to_string(),
                message: "it broke".into()
            },
            "{reason}"
        );
    }
}

#[test]
fn non_terminal_kustomization_states_keep_waiting() {
    let cases: Vec<(&str, Value, &'static str)> = vec![
        (
            "DependencyNotReady",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![condition(
                        "Ready",
                        "False",
                        "DependencyNotReady",
                        "dependency 'infra/cert-manager' is not ready",
                    )],
                )
            }),
            "DependencyNotReady: dependency 'infra/cert-manager' is not ready",
        ),
        (
            "Progressing",
            failed_kustomization("Progressing"),
            "Progressing: it broke",
        ),
        (
            "ProgressingWithRetry",
            failed_kustomization("ProgressingWithRetry"),
            "ProgressingWithRetry: it broke",
        ),
        (
            "any other reason",
            failed_kustomization("SomethingElse"),
            "SomethingElse: it broke",
        ),
        (
            "terminal reason but Ready=Unknown",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![condition("Ready", "Unknown", "BuildFailed", "retrying")],
                )
            }),
            "BuildFailed: retrying",
        ),
        (
            "multi-line message on one line",
            edit(ready_kustomization(), |k| {
                set_conditions(
                    k,
                    vec![condition("Ready", "False", "Progressing", "a\n  b\n")],
                )
            }),
            "Progressing: a b",
        ),
        (
            "Stalled=False is not a failure",
            edit(failed_kustomization("Progressing"), |k| {
                let mut conditions = k["status"]["conditions"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                conditions.push(condition("Stalled", "False", "RetriesExceeded", ""));
                set_conditions(k, conditions);
            }),
            "Progressing: it broke",
        ),
        (
            "no conditions",
            edit(ready_kustomization(), |k| set_conditions(k, vec![])),
            NO_READY,
        ),
    ];
    for (name, object, status) in cases {
        let verdict =
            kustomization_verdict(&view(&object), &context(sync_source(Some(rev()), true)));
        assert_eq!(
            verdict,
            Verdict::Waiting {
                status: status.into()
            },
            "{name}"
        );
    }
}

#[test]
fn kustomization_failure_guards() {
    let cases: Vec<KustomizationCase> = vec![
        (
            "older generation",
            edit(failed_kustomization("BuildFailed"), |k| {
                k["metadata"]["generation"] = json!(3)
            }),
            context(sync_source(Some(rev()), true)),
            Expect::Waiting(HANDLING),
        ),
        (
            "older token",
            edit(failed_kustomization("BuildFailed"), |k| {
                k["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN)
            }),
            context(sync_source(Some(rev()), true)),
            Expect::Waiting(HANDLING),
        ),
        (
            "older revision",
            edit(failed_kustomization("BuildFailed"), |k| {
                k["status"]["lastAttemptedRevision"] = json!(old_rev())
            }),
            context(sync_source(Some(rev()), true)),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "no attempted revision",
            edit(failed_kustomization("BuildFailed"), |k| {
                remove(k, "/status", "lastAttemptedRevision")
            }),
            context(other_source(Some(rev()))),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "sync source not complete",
            failed_kustomization("HealthCheckFailed"),
            context(sync_source(Some(rev()), false)),
            Expect::Waiting(SYNC_PENDING),
        ),
        (
            "gate skipped without artifact",
            edit(failed_kustomization("BuildFailed"), |k| {
                k["status"]["lastAttemptedRevision"] = json!(old_rev())
            }),
            context(other_source(None)),
            Expect::Failed("BuildFailed"),
        ),
        (
            "non-sync source: no completion guard",
            failed_kustomization("PruneFailed"),
            context(other_source(Some(rev()))),
            Expect::Failed("PruneFailed"),
        ),
        (
            "created during attempt fails without the token",
            edit(failed_kustomization("ValidationFailed"), |k| {
                remove(k, "/status", "lastHandledReconcileAt")
            }),
            KustomizationContext {
                created_during_attempt: true,
                ..context(sync_source(Some(rev()), true))
            },
            Expect::Failed("ValidationFailed"),
        ),
        (
            "source artifact missing is not handled yet (ArtifactFailed without observation)",
            edit(failed_kustomization("ArtifactFailed"), |k| {
                remove(k, "", "status")
            }),
            context(sync_source(None, false)),
            Expect::Waiting(HANDLING),
        ),
    ];
    check_kustomizations(cases);
}

/// A Kustomization at generation 3 whose controller handled TOKEN but failed: as real
/// kustomize-controller leaves it, `status.observedGeneration` still at the last success (2) and
/// the conditions stamped with the generation they were written for.
fn failed_new_generation(reason: &str, condition_generation: i64) -> Value {
    edit(failed_kustomization(reason), |k| {
        k["metadata"]["generation"] = json!(3);
        k["status"]["conditions"][0]["observedGeneration"] = json!(condition_generation);
    })
}

#[test]
fn a_failure_of_a_new_generation_is_judged_by_the_conditions_generation() {
    let gated = || context(sync_source(Some(rev()), true));
    let cases: Vec<KustomizationCase> = vec![
        (
            "Ready=False stamped with the current generation fails",
            failed_new_generation("BuildFailed", 3),
            gated(),
            Expect::Failed("BuildFailed"),
        ),
        (
            "a never-ready object (no status.observedGeneration) fails too",
            edit(failed_new_generation("HealthCheckFailed", 3), |k| {
                remove(k, "/status", "observedGeneration")
            }),
            gated(),
            Expect::Failed("HealthCheckFailed"),
        ),
        (
            "stamped with an older generation: not about this spec",
            failed_new_generation("BuildFailed", 2),
            gated(),
            Expect::Waiting(HANDLING),
        ),
        (
            "current but for another request: still waiting for ours",
            edit(failed_new_generation("BuildFailed", 3), |k| {
                k["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN)
            }),
            gated(),
            Expect::Waiting(HANDLING),
        ),
        (
            "the revision guard still holds",
            edit(failed_new_generation("BuildFailed", 3), |k| {
                k["status"]["lastAttemptedRevision"] = json!(old_rev())
            }),
            gated(),
            Expect::Waiting(REVISION_WAIT),
        ),
        (
            "a non-terminal reason is quoted, not 'handling'",
            failed_new_generation("DependencyNotReady", 3),
            gated(),
            Expect::Waiting("DependencyNotReady: it broke"),
        ),
        (
            "ArtifactFailed is requeued by the controller: waiting",
            failed_new_generation("ArtifactFailed", 3),
            gated(),
            Expect::Waiting("ArtifactFailed: it broke"),
        ),
        (
            "Ready=True needs status.observedGeneration as well",
            edit(ready_kustomization(), |k| {
                k["metadata"]["generation"] = json!(3);
                k["status"]["conditions"][0]["observedGeneration"] = json!(3);
            }),
            gated(),
            Expect::Waiting(HANDLING),
        ),
        (
            "a stall stamped with the current generation fails",
            edit(failed_new_generation("InvalidPath", 3), |k| {
                let stalled = json!({"type": "Stalled", "status": "True", "reason": "InvalidPath",
                    "message": "stuck", "observedGeneration": 3});
                k["status"]["conditions"]
                    .as_array_mut()
                    .unwrap()
                    .push(stalled);
            }),
            gated(),
            Expect::Failed("InvalidPath"),
        ),
    ];
    check_kustomizations(cases);
}

#[test]
fn a_source_failure_of_a_new_generation_is_judged_by_the_conditions_generation() {
    let failed = |condition_generation: i64| {
        edit(ready_source(), |s| {
            s["metadata"]["generation"] = json!(2);
            let mut ready = condition("Ready", "False", "OCIArtifactPullFailed", "not found");
            ready["observedGeneration"] = json!(condition_generation);
            set_conditions(s, vec![ready]);
        })
    };
    assert_eq!(
        source_verdict(&view(&failed(2)), TOKEN, Some(&digest())),
        SourceVerdict::Failed {
            reason: "OCIArtifactPullFailed".into(),
            message: "not found".into()
        }
    );
    assert_eq!(
        source_verdict(&view(&failed(1)), TOKEN, Some(&digest())),
        SourceVerdict::Waiting {
            status: HANDLING.into()
        }
    );
    assert_eq!(
        served_verdict(&view(&failed(2)), None),
        SourceVerdict::Failed {
            reason: "OCIArtifactPullFailed".into(),
            message: "not found".into()
        },
        "cluster create's wait (no token) fails on it too"
    );
}

#[test]
fn stalled_is_terminal_with_any_reason_for_the_current_generation() {
    let stalled = |reason: &str| {
        edit(ready_kustomization(), |k| {
            k["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN);
            set_conditions(
                k,
                vec![
                    condition("Ready", "False", reason, "stuck"),
                    condition("Stalled", "True", reason, "stuck"),
                ],
            );
        })
    };
    for reason in ["RetriesExceeded", "InvalidPath", "AnythingAtAll"] {
        let verdict = kustomization_verdict(
            &view(&stalled(reason)),
            &context(sync_source(Some(rev()), false)),
        );
        assert_eq!(
            verdict,
            Verdict::Failed {
                reason: reason.into(),
                message: "stuck".into()
            },
            "{reason}"
        );
    }
    let older = edit(stalled("RetriesExceeded"), |k| {
        k["metadata"]["generation"] = json!(3)
    });
    assert_eq!(
        kustomization_verdict(&view(&older), &context(None)),
        Verdict::Waiting {
            status: HANDLING.into()
        }
    );
    let reasonless = edit(ready_kustomization(), |k| {
        set_conditions(k, vec![json!({"type": "Stalled", "status": "True"})])
    });
    assert!(matches!(
        kustomization_verdict(&view(&reasonless), &context(None)),
        Verdict::Failed { reason, .. } if reason == "Stalled"
    ));
    let source = edit(ready_source(), |s| {
        set_conditions(
            s,
            vec![condition("Stalled", "True", "InvalidURL", "bad url")],
        )
    });
    assert_eq!(
        source_verdict(&view(&source), OLD_TOKEN, None),
        SourceVerdict::Failed {
            reason: "InvalidURL".into(),
            message: "bad url".into()
        }
    );
}

#[derive(Debug)]
enum SourceExpect {
    Complete(Option<String>),
    Waiting(&'static str),
    Mismatch(Option<String>),
}

#[test]
fn source_completion_terminal_reasons_and_digest_gate() {
    let d = digest();
    let other = format!("sha256:{OLD_HEX}");
    let cases: Vec<(&str, Value, Option<&str>, SourceExpect)> = vec![
        (
            "all conditions, digest equal",
            ready_source(),
            Some(&d),
            SourceExpect::Complete(Some(rev())),
        ),
        (
            "no digest known",
            ready_source(),
            None,
            SourceExpect::Complete(Some(rev())),
        ),
        (
            "bare digest revision",
            edit(ready_source(), |s| {
                s["status"]["artifact"]["revision"] = json!(digest())
            }),
            Some(&d),
            SourceExpect::Complete(Some(digest())),
        ),
        (
            "1: observedGeneration behind",
            edit(ready_source(), |s| s["metadata"]["generation"] = json!(2)),
            Some(&d),
            SourceExpect::Waiting(HANDLING),
        ),
        (
            "2: older token",
            edit(ready_source(), |s| {
                s["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN)
            }),
            Some(&d),
            SourceExpect::Waiting(HANDLING),
        ),
        (
            "3: no conditions",
            edit(ready_source(), |s| set_conditions(s, vec![])),
            Some(&d),
            SourceExpect::Waiting(NO_READY),
        ),
        (
            "3: Ready=Unknown",
            edit(ready_source(), |s| {
                set_conditions(
                    s,
                    vec![condition("Ready", "Unknown", "Progressing", "fetching")],
                )
            }),
            Some(&d),
            SourceExpect::Waiting("Progressing: fetching"),
        ),
        (
            "3: Reconciling=True",
            edit(ready_source(), |s| {
                set_conditions(
                    s,
                    vec![
                        condition("Ready", "True", "Succeeded", ""),
                        condition("Reconciling", "True", "Progressing", "building artifact"),
                    ],
                )
            }),
            Some(&d),
            SourceExpect::Waiting("Progressing: building artifact"),
        ),
        (
            "3: non-terminal Ready=False",
            edit(ready_source(), |s| {
                set_conditions(
                    s,
                    vec![condition("Ready", "False", "ArtifactFailed", "io error")],
                )
            }),
            Some(&d),
            SourceExpect::Waiting("ArtifactFailed: io error"),
        ),
        (
            "terminal reason for an older token",
            edit(ready_source(), |s| {
                s["status"]["lastHandledReconcileAt"] = json!(OLD_TOKEN);
                set_conditions(
                    s,
                    vec![condition("Ready", "False", "OCIPullFailed", "denied")],
                );
            }),
            Some(&d),
            SourceExpect::Waiting(HANDLING),
        ),
        (
            "terminal reason for an older generation",
            edit(ready_source(), |s| {
                s["metadata"]["generation"] = json!(2);
                set_conditions(
                    s,
                    vec![condition("Ready", "False", "OCIPullFailed", "denied")],
                );
            }),
            Some(&d),
            SourceExpect::Waiting(HANDLING),
        ),
        (
            "4: another digest served",
            ready_source(),
            Some(&other),
            SourceExpect::Mismatch(Some(digest())),
        ),
        (
            "4: revision without a digest",
            edit(ready_source(), |s| {
                s["status"]["artifact"]["revision"] = json!("latest")
            }),
            Some(&d),
            SourceExpect::Mismatch(None),
        ),
        (
            "4: no artifact yet",
            edit(ready_source(), |s| remove(s, "/status", "artifact")),
            Some(&d),
            SourceExpect::Waiting("waiting for the source to store an artifact"),
        ),
        (
            "4: GitRepository is not digest-gated",
            edit(ready_source(), |s| {
                s["kind"] = json!("GitRepository");
                s["status"]["artifact"]["revision"] = json!("main@sha1:0123456789abcdef");
            }),
            Some(&d),
            SourceExpect::Complete(Some("main@sha1:0123456789abcdef".into())),
        ),
    ];
    for (name, object, expected_digest, expected) in cases {
        let verdict = source_verdict(&view(&object), TOKEN, expected_digest);
        match (&verdict, &expected) {
            (SourceVerdict::Complete { revision }, SourceExpect::Complete(want)) => {
                assert_eq!(revision, want, "{name}")
            }
            (SourceVerdict::Waiting { status }, SourceExpect::Waiting(want)) => {
                assert_eq!(status, want, "{name}")
            }
            (
                SourceVerdict::DigestMismatch {
                    served_revision,
                    served_digest,
                },
                SourceExpect::Mismatch(want),
            ) => {
                assert_eq!(served_digest, want, "{name}");
                assert_eq!(
                    Some(served_revision),
                    object
                        .pointer("/status/artifact/revision")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .as_ref(),
                    "{name}"
                );
            }
            _ => panic!("{name}: got {verdict:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn each_source_terminal_reason_fails_fast() {
    for reason in SOURCE_TERMINAL_REASONS {
        let object = edit(ready_source(), |s| {
            remove(s, "/status", "artifact");
            set_conditions(s, vec![condition("Ready", "False", reason, "pull failed")]);
        });
        assert_eq!(
            source_verdict(&view(&object), TOKEN, Some(&digest())),
            SourceVerdict::Failed {
                reason: reason.to_string(),
                message: "pull failed".into()
            },
            "{reason}"
        );
    }
}

#[test]
fn digest_mismatch_message_is_exact() {
    let served = format!("dev@sha256:{}", "a".repeat(64));
    let expected = format!("sha256:{}", "b".repeat(64));
    assert_eq!(
        digest_mismatch_failure(&served, "oci://localhost:5050/k8s:dev", &expected),
        Verdict::Failed {
            reason: DIGEST_MISMATCH_REASON.into(),
            message: "serves dev@sha256:aaaaaaaaaaaa…, but oci://localhost:5050/k8s:dev is sha256:bbbbbbbbbbbb…; the cluster follows a different artifact; run ksail cluster update".into(),
        }
    );
}

#[test]
fn source_verdicts_convert_except_the_mismatch() {
    assert_eq!(
        SourceVerdict::Complete { revision: None }.into_verdict(),
        Some(Verdict::Complete { revision: None })
    );
    let mismatch = SourceVerdict::DigestMismatch {
        served_revision: rev(),
        served_digest: None,
    };
    assert_eq!(mismatch.into_verdict(), None);
    let state = SourceState::of(&view(&ready_source()), true, false);
    assert_eq!(
        state,
        SourceState {
            revision: Some(rev()),
            is_sync_source: true,
            sync_source_complete: false
        }
    );
}

#[test]
fn quotes_conditions() {
    let condition = |reason: &str, message: &str| Condition {
        condition_type: "Ready".into(),
        status: "Unknown".into(),
        reason: reason.into(),
        message: message.into(),
        observed_generation: None,
    };
    assert_eq!(
        condition_status(&condition("Progressing", "a\n b")),
        "Progressing: a b"
    );
    assert_eq!(
        condition_status(&condition("Progressing", "")),
        "Progressing"
    );
    assert_eq!(condition_status(&condition("", "only text")), "only text");
    assert_eq!(condition_status(&condition("", "")), "Ready=Unknown");
}
