//! Signed pushes (docs/signing.md): `workload keygen`, and `workload push --signing-key`
//! against the real registry through a recording proxy. That Flux and cosign accept what these
//! write is pinned by the real tier (`real_flux.rs`, `flux_verifies_signed_pushes_…`).

mod support;

use std::fs;

use serde_json::Value;
use support::push::{REPO, TAG, env_with_app, json_of, run, target};
use support::{TestEnv, assert_error_line, assert_exit, describe, http, stderr_text, stdout_text};

const APP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"1\"\n";
const PASSWORD: &str = "tr0ub4dor-and-3";

/// Asserts that neither stream shows the password or a private key.
#[track_caller]
fn assert_no_secret(output: &std::process::Output) {
    for text in [stdout_text(output), stderr_text(output)] {
        assert!(
            !text.contains(PASSWORD) && !text.contains("-----BEGIN"),
            "a secret was printed:\n{text}"
        );
    }
}

fn keygen(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let full = [&["workload", "keygen"][..], args].concat();
    let output = run(env, &full, &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_no_secret(&output);
    output
}

/// `workload push --signing-key cosign.key --output json oci://<host>/k8s:dev` with the password.
fn signed_push(env: &TestEnv, host: &str, extra: &[&str]) -> std::process::Output {
    let target = target(host);
    let args = [
        &[
            "workload",
            "push",
            "--signing-key",
            "cosign.key",
            "--output",
            "json",
        ][..],
        extra,
        &[target.as_str()],
    ]
    .concat();
    let output = run(env, &args, &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_no_secret(&output);
    output
}

#[test]
fn keygen_writes_a_cosign_pair_once_and_needs_a_password() {
    let env = TestEnv::new();
    let unset = run(&env, &["workload", "keygen"], &[]);
    assert_exit(&unset, 2);
    assert_error_line(&unset, "COSIGN_PASSWORD is not set");
    assert!(!env.work().join("cosign.key").exists());

    let written = keygen(&env, &[]);
    assert_exit(&written, 0);
    assert_eq!(
        stdout_text(&written).trim(),
        "wrote cosign.key (private, encrypted with the password in COSIGN_PASSWORD) and cosign.pub (public)"
    );
    let private = env.work().join("cosign.key");
    let text = fs::read_to_string(&private).unwrap();
    assert!(text.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    assert!(
        fs::read_to_string(env.work().join("cosign.pub"))
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        fs::metadata(&private).unwrap().permissions().mode() & 0o777,
        0o600
    );

    assert!(
        stderr_text(&written).contains(
            "sign every push with it: set spec.workload.signing.key: cosign.key in ksail.yaml (or pass --signing-key cosign.key to workload push)"
        ),
        "{}",
        stderr_text(&written)
    );

    let before = env.tree_hash();
    let again = keygen(&env, &[]);
    assert_exit(&again, 2);
    assert_error_line(&again, "cosign.key exists; keygen never replaces a key");
    assert_eq!(env.tree_hash(), before, "nothing was replaced");

    // With a key in ksail.yaml, keygen writes that one (directories made) and needs no hint.
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  workload:\n    signing:\n      key: keys/ci.key\n",
    );
    let configured = keygen(&env, &[]);
    assert_exit(&configured, 0);
    assert_eq!(
        stdout_text(&configured).trim(),
        "wrote keys/ci.key (private, encrypted with the password in COSIGN_PASSWORD) and keys/ci.pub (public)"
    );
    assert!(!stderr_text(&configured).contains("sign every push"));
    assert!(env.work().join("keys/ci.pub").exists());
}

#[test]
fn a_signed_push_writes_the_signature_before_the_tag_and_a_re_push_uploads_nothing() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP);
    assert_exit(&keygen(&env, &[]), 0);

    let first = signed_push(&env, &proxy.host_port(), &[]);
    assert_exit(&first, 0);
    let document = json_of(&first);
    let digest = document["digest"].as_str().unwrap().to_string();
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    assert_eq!(document["signature"]["tag"], sig_tag.as_str(), "{document}");
    assert_eq!(document["signature"]["reused"], false);

    // The signature manifest goes in before the tag moves.
    let writes: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path_only().contains("/manifests/"))
        .map(|r| r.path_only().to_string())
        .collect();
    assert_eq!(
        writes,
        vec![
            format!("/v2/{REPO}/manifests/{sig_tag}"),
            format!("/v2/{REPO}/manifests/{TAG}")
        ]
    );

    // cosign's layout: one simple-signing layer whose payload names the pushed digest.
    let (status, body, _) = http::fetch_manifest(&registry.host_port(), REPO, &sig_tag);
    assert_eq!(status, 200);
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(layers[0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());
    let (status, payload) = http::fetch_blob(
        &registry.host_port(),
        REPO,
        layers[0]["digest"].as_str().unwrap(),
    );
    assert_eq!(status, 200);
    let payload: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(
        payload["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        payload["critical"]["type"],
        "cosign container image signature"
    );

    proxy.clear();
    let again = signed_push(&env, &proxy.host_port(), &[]);
    assert_exit(&again, 0);
    let document = json_of(&again);
    assert_eq!(document["status"], "unchanged");
    assert_eq!(document["signature"]["reused"], true);
    let requests: Vec<String> = proxy
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path_only()))
        .collect();
    assert_eq!(
        requests,
        vec![
            format!("GET /v2/{REPO}/manifests/{TAG}"),
            format!("GET /v2/{REPO}/manifests/{sig_tag}")
        ],
        "an unchanged signed re-push reads the tag and the signature, and uploads nothing"
    );
}

#[test]
fn a_signing_key_that_cannot_be_used_stops_the_push_before_it_sends_anything() {
    let (_registry, proxy) = proxied_registry!();
    let env = env_with_app(APP);
    assert_exit(&keygen(&env, &[]), 0);
    let target = target(&proxy.host_port());
    let push = |key: &str, vars: &[(&str, &str)]| {
        let output = run(
            &env,
            &["-vv", "workload", "push", "--signing-key", key, &target],
            vars,
        );
        assert_no_secret(&output);
        output
    };
    let cases = [
        (
            push("cosign.key", &[]),
            "signing key cosign.key (--signing-key) is encrypted and COSIGN_PASSWORD is not set",
        ),
        (
            push("cosign.key", &[("COSIGN_PASSWORD", "not-the-password")]),
            "cannot use signing key cosign.key (--signing-key): the password does not decrypt it; set COSIGN_PASSWORD to the password the key was written with",
        ),
        (
            push("missing.key", &[("COSIGN_PASSWORD", PASSWORD)]),
            "cannot read signing key missing.key (--signing-key): no such file or directory; create a key pair with ksail workload keygen, or fix the path",
        ),
        (
            push("cosign.pub", &[("COSIGN_PASSWORD", PASSWORD)]),
            "cannot use signing key cosign.pub (--signing-key): a PEM block of type \"PUBLIC KEY\", not ENCRYPTED SIGSTORE PRIVATE KEY",
        ),
    ];
    for (output, message) in cases {
        assert_exit(&output, 2);
        assert_error_line(&output, message);
        assert!(
            proxy.requests().is_empty(),
            "nothing was sent\n{}",
            describe(&output)
        );
    }
}

#[test]
fn the_signing_key_comes_from_ksail_yaml_with_its_password_variable() {
    let (registry, proxy) = proxied_registry!();
    let env = env_with_app(APP);
    assert_exit(&keygen(&env, &["--key", "keys/ci.key"]), 0);
    env.write(
        "ksail.yaml",
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  workload:\n    signing:\n      key: keys/ci.key\n      passwordEnvVar: CI_KEY_PASSWORD\n",
    );
    let output = run(
        &env,
        &[
            "workload",
            "push",
            "--output",
            "json",
            &target(&proxy.host_port()),
        ],
        &[("CI_KEY_PASSWORD", PASSWORD)],
    );
    assert_no_secret(&output);
    assert_exit(&output, 0);
    let tag = json_of(&output)["signature"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, &tag);
    assert_eq!(status, 200);
    drop(registry);
}
