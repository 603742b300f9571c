//! Registry credentials through the binary (artifact.md "Credentials"): every source that can
//! supply them, their order, the rejected and incomplete cases, and secret hygiene.
//!
//! Every test runs against a real htpasswd registry with the one user `ci` / `s3cr3t-pass`, so a
//! push that arrives without the right credentials is refused by the registry itself.

mod support;

use std::process::Output;

use base64::Engine as _;
use serde_json::json;
use support::push::{assert_pushed_line, env_with_manifests, run};
use support::{
    Proxy, RegistryKind, TestEnv, assert_case_exit, assert_error_line, assert_no_secret,
    assert_no_warning, http, stderr_lines, stderr_text, stdout_text, timestamped_warnings,
};

const USER: &str = "ci";
const PASS: &str = "s3cr3t-pass";
const USERS: &[(&str, &str)] = &[(USER, PASS)];

fn auth_registry() -> RegistryKind<'static> {
    RegistryKind::Auth { users: USERS }
}

/// base64 of `user:password`, the form Basic auth and docker's `auth` use.
fn b64(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// A ksail.yaml with the given registry string and `credentials` lines (already indented by
/// the caller's choice of keys, e.g. `tokenEnvVar: PUSH_TOKEN`).
fn write_config(env: &TestEnv, registry: &str, credentials: &[&str]) {
    let mut text = format!(
        "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: \"{registry}\"\n"
    );
    if !credentials.is_empty() {
        text.push_str("      credentials:\n");
        for line in credentials {
            text.push_str(&format!("        {line}\n"));
        }
    }
    env.write("ksail.yaml", text);
}

/// The push exited 0, printed `pushed oci://<host>/<repo>:<tag>@sha256:…`, and the registry
/// (read back as `ci`) holds exactly that manifest under the tag.
fn assert_pushed(output: &Output, host: &str, repo: &str, tag: &str) {
    let digest = assert_pushed_line(output, &format!("oci://{host}/{repo}:{tag}"));
    assert!(
        http::list_tags_as(host, repo, USER, PASS).contains(&tag.to_string()),
        "tag {tag} is not in {repo}"
    );
    let (status, body, header) = http::fetch_manifest_as(host, repo, tag, USER, PASS);
    assert_eq!(status, 200);
    assert_eq!(http::sha256_digest(&body), digest);
    assert_eq!(header.as_deref(), Some(digest.as_str()));
}

/// Secret hygiene (artifact.md "Secret hygiene"): pushes changed content to a new tag at `-vvv`
/// with `--output json`, so that every authenticated request runs again at the highest
/// verbosity, and checks that no secret reaches stdout (the JSON document) or stderr.
fn assert_hygienic_push(env: &TestEnv, args: &[&str], vars: &[(&str, &str)], secrets: &[&str]) {
    env.write(
        "k8s/hygiene.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hygiene\n",
    );
    let mut full = vec!["-vvv", "workload", "push", "--output", "json"];
    full.extend_from_slice(args);
    let output = run(env, &full, vars);
    assert_eq!(
        output.status.code(),
        Some(0),
        "the -vvv push failed\nstderr:\n{}",
        stderr_text(&output)
    );
    // -vvv must really be verbose, or the check below proves nothing.
    assert!(
        stderr_text(&output).contains("TRACE"),
        "-vvv printed no trace lines"
    );
    for secret in secrets {
        assert_no_secret(&output, secret);
    }
    // The document is the last stdout line (that it is the only one is pinned in
    // push_config.rs, so that this test stays about credentials).
    let stdout = stdout_text(&output);
    let last = stdout.lines().last().unwrap_or_default();
    let document: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("the last stdout line is not JSON ({e}): {stdout}"));
    assert_eq!(document["status"], "pushed", "{document}");
    assert_eq!(document["exitCode"], 0, "{document}");
}

/// Both forms of the real password.
fn real_secrets() -> Vec<String> {
    vec![PASS.to_string(), b64(USER, PASS)]
}

fn refs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// One source (or order of sources) that supplies the right credentials: the push to
/// `oci://<host>/app:dev` lands, and the registry holds it.
struct Supplied {
    name: &'static str,
    /// Prepares `env` for the registry at `host`; returns the push flags (`--registry …`).
    setup: fn(&TestEnv, &str) -> Vec<String>,
    /// Whether the push names `oci://<host>/app` as its positional reference.
    reference: bool,
    vars: &'static [(&'static str, &'static str)],
    /// Checks after the first push, beyond [`assert_pushed`].
    check: fn(&TestEnv, &Output, &str),
    /// `Some(other secrets)`: a second push at `-vvv` ([`assert_hygienic_push`]) prints neither
    /// form of the real password nor any of these.
    hygiene: Option<&'static [&'static str]>,
}

fn no_check(_: &TestEnv, _: &Output, _: &str) {}

/// `ksail.yaml` with the registry string `template` (`{host}` replaced) and `credentials`.
fn config(env: &TestEnv, host: &str, template: &str, credentials: &[&str]) -> Vec<String> {
    write_config(env, &template.replace("{host}", host), credentials);
    vec![]
}

fn supplied_cases() -> Vec<Supplied> {
    vec![
        Supplied {
            name: "inline registry string credentials are used",
            setup: |_, host| vec!["--registry".into(), format!("{USER}:{PASS}@{host}/app")],
            reference: false,
            vars: &[],
            // The URL on stdout never carries the credentials.
            check: |_, output, _| assert_no_secret(output, PASS),
            hygiene: Some(&[]),
        },
        Supplied {
            name: "tokenEnvVar supplies the password for the ksail.yaml user",
            setup: |env, host| config(env, host, "ci@{host}/app", &["tokenEnvVar: PUSH_TOKEN"]),
            reference: false,
            vars: &[("PUSH_TOKEN", PASS)],
            check: no_check,
            hygiene: Some(&[]),
        },
        // artifact.md "Credentials": cliTokenEnvVar, then tokenEnvVar, then the embedded password.
        Supplied {
            name: "cliTokenEnvVar beats tokenEnvVar and the embedded password",
            setup: |env, host| {
                let credentials = ["cliTokenEnvVar: CLI_TOKEN", "tokenEnvVar: PUSH_TOKEN"];
                config(env, host, "ci:wrong-embedded@{host}/app", &credentials)
            },
            reference: false,
            vars: &[("CLI_TOKEN", PASS), ("PUSH_TOKEN", "wrong-token")],
            check: no_check,
            hygiene: Some(&["wrong-embedded", "wrong-token"]),
        },
        // A configured variable name takes precedence over the embedded password, as in ksail
        // (Go).
        Supplied {
            name: "tokenEnvVar beats the embedded password",
            setup: |env, host| {
                config(
                    env,
                    host,
                    "ci:wrong-embedded@{host}/app",
                    &["tokenEnvVar: PUSH_TOKEN"],
                )
            },
            reference: false,
            vars: &[("PUSH_TOKEN", PASS)],
            check: |_, output, _| assert_no_secret(output, "wrong-embedded"),
            hygiene: None,
        },
        // config.md "Variable expansion": the whole registry string from ksail.yaml is expanded.
        Supplied {
            name: "a variable in the ksail.yaml registry string is expanded",
            setup: |env, host| config(env, host, "ci:${REG_PASS}@{host}/app", &[]),
            reference: false,
            vars: &[("REG_PASS", PASS)],
            check: no_check,
            hygiene: Some(&[]),
        },
        // config.md "Variable expansion": `--registry` credentials are expanded when
        // credentials are resolved.
        Supplied {
            name: "--registry credentials are expanded",
            setup: |_, host| {
                vec![
                    "--registry".into(),
                    format!("{USER}:${{REG_PASS}}@{host}/app"),
                ]
            },
            reference: false,
            vars: &[("REG_PASS", PASS)],
            check: no_check,
            hygiene: None,
        },
        Supplied {
            name: "a docker config auths entry is used",
            setup: |env, host| {
                env.write_docker_config(&json!({ "auths": { host: { "auth": b64(USER, PASS) } } }));
                vec![]
            },
            reference: true,
            vars: &[],
            check: no_check,
            hygiene: Some(&[]),
        },
        Supplied {
            name: "a docker config auths entry with an http:// key is used",
            setup: |env, host| {
                let key = format!("http://{host}");
                env.write_docker_config(&json!({ "auths": { key: { "auth": b64(USER, PASS) } } }));
                vec![]
            },
            reference: true,
            vars: &[],
            check: no_check,
            hygiene: None,
        },
        Supplied {
            name: "a credential helper from credHelpers is used",
            setup: |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, PASS)))]);
                env.write_docker_config(&json!({ "credHelpers": { host: "test" } }));
                vec![]
            },
            reference: true,
            vars: &[],
            check: |env, _, host| {
                let calls = env.calls();
                assert_eq!(calls.len(), 1, "{calls:?}");
                assert_eq!(calls[0]["argv"], json!(["docker-credential-test", "get"]));
                assert_eq!(calls[0]["stdin"], json!(host));
            },
            hygiene: Some(&[]),
        },
        Supplied {
            name: "a credential helper from credsStore is used",
            setup: |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, PASS)))]);
                env.write_docker_config(&json!({ "credsStore": "test" }));
                vec![]
            },
            reference: true,
            vars: &[],
            check: |env, _, _| assert_eq!(env.calls().len(), 1),
            hygiene: Some(&[]),
        },
        // The registry string comes first: a helper is not even asked when the string has
        // credentials for the same host.
        Supplied {
            name: "registry string credentials win over docker config",
            setup: |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, "wrong-helper")))]);
                env.write_docker_config(&json!({
                    "credsStore": "test",
                    "auths": { host: { "auth": b64(USER, "wrong-auths") } },
                }));
                vec!["--registry".into(), format!("{USER}:{PASS}@{host}/app")]
            },
            reference: false,
            vars: &[],
            check: |env, _, _| {
                assert!(
                    env.calls().is_empty(),
                    "the helper was asked: {:?}",
                    env.calls()
                );
            },
            hygiene: None,
        },
        Supplied {
            name: "a missing helper executable warns and the next source is used",
            setup: |env, host| {
                env.write_docker_config(&json!({
                    "credHelpers": { host: "absent" },
                    "auths": { host: { "auth": b64(USER, PASS) } },
                }));
                vec![]
            },
            reference: true,
            vars: &[],
            check: |_, output, _| {
                // Each warning carries the timestamp prefix (checked by the helper).
                let warnings = timestamped_warnings(output);
                assert_eq!(warnings.len(), 1, "{warnings:?}");
                let text = &warnings[0];
                assert!(text.starts_with("warning: "), "{text}");
                assert!(text.contains("\"absent\""), "{text}");
                assert!(text.contains("docker-credential-absent"), "{text}");
            },
            hygiene: None,
        },
    ]
}

/// Every source that can supply the credentials, each against a fresh environment; a failure
/// names its case.
#[test]
fn each_credential_source_supplies_the_password() {
    for case in supplied_cases() {
        eprintln!("case: {}", case.name);
        // A registry of its own, so that each case really uploads.
        let (_registry, host, env) = registry_and_manifests!(auth_registry());
        let flags = (case.setup)(&env, &host);
        let mut args: Vec<&str> = vec!["workload", "push"];
        args.extend(flags.iter().map(String::as_str));
        let reference = format!("oci://{host}/app");
        if case.reference {
            args.push(&reference);
        }
        let output = run(&env, &args, case.vars);
        assert_pushed(&output, &host, "app", "dev");
        (case.check)(&env, &output, &host);
        if let Some(others) = case.hygiene {
            let hygiene_ref = format!("oci://{host}/app:hygiene");
            let mut hygiene_args: Vec<&str> = flags.iter().map(String::as_str).collect();
            hygiene_args.push(&hygiene_ref);
            let real = real_secrets();
            let mut secrets = refs(&real);
            secrets.extend_from_slice(others);
            assert_hygienic_push(&env, &hygiene_args, case.vars, &secrets);
        }
    }
}

#[test]
fn helper_without_credentials_continues_anonymously_and_is_rejected() {
    let (_registry, host, env) = registry_and_manifests!(auth_registry());
    // The helper knows another host only, so it answers "credentials not found".
    env.fake_credential_helper("test", &[("other.example:5000", Some((USER, PASS)))]);
    env.write_docker_config(&json!({ "credHelpers": { host.clone(): "test" } }));
    let reference = format!("oci://{host}/app");
    let output = run(&env, &["workload", "push", &reference], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert_eq!(env.calls().len(), 1, "the helper was asked once");
    assert_error_line(&output, "rejected");
    assert_error_line(&output, "anonymous");
    // "credentials not found" is not worth a warning (artifact.md: continues silently).
    assert_no_warning(&output);
    assert!(output.stdout.is_empty());
    assert!(http::list_tags_as(&host, "app", USER, PASS).is_empty());
}

#[test]
fn missing_helper_executable_with_no_other_source_is_rejected_as_anonymous() {
    let (_registry, host, env) = registry_and_manifests!(auth_registry());
    env.write_docker_config(&json!({ "credsStore": "absent" }));
    let reference = format!("oci://{host}/app");
    let output = run(&env, &["workload", "push", &reference], &[]);
    assert_eq!(output.status.code(), Some(1));
    let warnings = timestamped_warnings(&output);
    assert!(
        warnings
            .iter()
            .any(|l| l.contains("docker-credential-absent")),
        "{warnings:?}"
    );
    assert_error_line(&output, "anonymous");
}

#[test]
fn anonymous_push_is_rejected_after_one_attempt() {
    let registry = require_registry!(auth_registry());
    let proxy = Proxy::start(&registry.host_port());
    let env = env_with_manifests();
    let reference = format!("oci://{}/app", proxy.host_port());
    let output = run(&env, &["workload", "push", &reference], &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr_text(&output));
    assert_error_line(&output, "rejected");
    assert_error_line(&output, "anonymous");
    assert!(output.stdout.is_empty());
    // A 401 is not retryable: one attempt is one request (the unchanged check).
    let requests = proxy.request_lines();
    assert_eq!(
        requests,
        vec!["GET /v2/app/manifests/dev 401".to_string()],
        "expected exactly one attempt"
    );
    assert!(
        !stderr_text(&output).contains("attempt"),
        "no retry may be announced:\n{}",
        stderr_text(&output)
    );
}

/// Wrong credentials from each source: exit 1; the error names the source, never the value.
#[test]
fn wrong_password_error_names_the_source_never_the_value() {
    const WRONG: &str = "wr0ng-pa55word";
    let registry = require_registry!(auth_registry());
    let host = registry.host_port();
    let reference = format!("oci://{host}/app");
    let inline = format!("{USER}:{WRONG}@{host}/app");

    struct Case<'a> {
        name: &'a str,
        args: Vec<&'a str>,
        vars: Vec<(&'a str, &'a str)>,
        config: Option<(String, Vec<&'a str>)>,
        docker: Option<serde_json::Value>,
        helper: bool,
        source: String,
    }
    let cases = vec![
        Case {
            name: "--registry",
            args: vec!["--registry", &inline],
            vars: vec![],
            config: None,
            docker: None,
            helper: false,
            source: "credentials from the registry string".into(),
        },
        Case {
            name: "ksail.yaml embedded",
            args: vec![],
            vars: vec![],
            config: Some((format!("{USER}:{WRONG}@{host}/app"), vec![])),
            docker: None,
            helper: false,
            source: "credentials from the registry string".into(),
        },
        Case {
            name: "tokenEnvVar",
            args: vec![],
            vars: vec![("PUSH_TOKEN", WRONG)],
            config: Some((
                format!("{USER}@{host}/app"),
                vec!["tokenEnvVar: PUSH_TOKEN"],
            )),
            docker: None,
            helper: false,
            source: "credentials from environment variable PUSH_TOKEN".into(),
        },
        Case {
            name: "docker config auths",
            args: vec![&reference],
            vars: vec![],
            config: None,
            docker: Some(json!({ "auths": { host.clone(): { "auth": b64(USER, WRONG) } } })),
            helper: false,
            source: "credentials from docker config.json".into(),
        },
        Case {
            name: "credential helper",
            args: vec![&reference],
            vars: vec![],
            config: None,
            docker: Some(json!({ "credHelpers": { host.clone(): "test" } })),
            helper: true,
            source: "credentials from docker credential helper \"test\"".into(),
        },
    ];
    for case in cases {
        let env = env_with_manifests();
        if let Some((registry_string, credentials)) = &case.config {
            write_config(&env, registry_string, credentials);
        }
        if let Some(docker) = &case.docker {
            env.write_docker_config(docker);
        }
        if case.helper {
            env.fake_credential_helper("test", &[(host.as_str(), Some((USER, WRONG)))]);
        }
        let mut args = vec!["-vvv", "workload", "push"];
        args.extend(case.args.iter().copied());
        let output = run(&env, &args, &case.vars);
        assert_case_exit(&output, 1, case.name);
        assert_error_line(&output, "rejected");
        assert_error_line(&output, &case.source);
        assert_no_secret(&output, WRONG);
        assert_no_secret(&output, &b64(USER, WRONG));
        assert!(http::list_tags_as(&host, "app", USER, PASS).is_empty());
    }
}

/// Incomplete credential configuration (artifact.md table, testing.md B12): exit 2 with the
/// exact text, no request to the registry, no file changed.
#[test]
fn b12_incomplete_credential_configuration_exits_2_before_any_request() {
    let registry = require_registry!(auth_registry());
    let proxy = Proxy::start(&registry.host_port());
    let host = proxy.host_port();

    struct Case<'a> {
        name: &'a str,
        registry: String,
        credentials: Vec<&'a str>,
        args: Vec<String>,
        vars: Vec<(&'a str, &'a str)>,
        error: &'a str,
    }
    let cli_unset = "error: spec.cluster.localRegistry.credentials.cliTokenEnvVar names GHCR_PUSH_TOKEN, which is not set; export it or remove the setting";
    let token_unset = "error: spec.cluster.localRegistry.credentials.tokenEnvVar names PUSH_TOKEN, which is not set; export it or remove the setting";
    let no_password = "error: registry user \"ci\" has no password; add it to the registry string or set credentials.tokenEnvVar";
    let no_user = "error: credentials.tokenEnvVar is set but the registry string has no user; write it as user@host";
    let cases = vec![
        Case {
            name: "cliTokenEnvVar unset",
            registry: format!("ci@{host}/app"),
            credentials: vec!["cliTokenEnvVar: GHCR_PUSH_TOKEN"],
            args: vec![],
            vars: vec![],
            error: cli_unset,
        },
        Case {
            name: "cliTokenEnvVar empty",
            registry: format!("ci@{host}/app"),
            credentials: vec!["cliTokenEnvVar: GHCR_PUSH_TOKEN"],
            args: vec![],
            vars: vec![("GHCR_PUSH_TOKEN", "")],
            error: cli_unset,
        },
        Case {
            name: "cliTokenEnvVar unset, even with an embedded password",
            registry: format!("ci:{PASS}@{host}/app"),
            credentials: vec!["cliTokenEnvVar: GHCR_PUSH_TOKEN"],
            args: vec![],
            vars: vec![],
            error: cli_unset,
        },
        Case {
            name: "tokenEnvVar unset",
            registry: format!("ci@{host}/app"),
            credentials: vec!["tokenEnvVar: PUSH_TOKEN"],
            args: vec![],
            vars: vec![],
            error: token_unset,
        },
        Case {
            name: "user without password in ksail.yaml",
            registry: format!("ci@{host}/app"),
            credentials: vec![],
            args: vec![],
            vars: vec![],
            error: no_password,
        },
        Case {
            name: "user without password in --registry",
            registry: format!("{host}/other"),
            credentials: vec![],
            args: vec!["--registry".into(), format!("ci@{host}/app")],
            vars: vec![],
            error: no_password,
        },
        Case {
            name: "tokenEnvVar without a user",
            registry: format!("{host}/app"),
            credentials: vec!["tokenEnvVar: PUSH_TOKEN"],
            args: vec![],
            vars: vec![("PUSH_TOKEN", PASS)],
            error: no_user,
        },
    ];
    for case in cases {
        let env = env_with_manifests();
        write_config(&env, &case.registry, &case.credentials);
        let before = env.tree_hash();
        let mut args = vec!["workload", "push"];
        args.extend(case.args.iter().map(String::as_str));
        let output = run(&env, &args, &case.vars);
        assert_case_exit(&output, 2, case.name);
        let lines = stderr_lines(&output);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(case.error),
            "{}",
            case.name
        );
        assert_error_line(&output, "");
        assert!(output.stdout.is_empty(), "{}", case.name);
        assert_no_secret(&output, PASS);
        assert!(
            proxy.requests().is_empty(),
            "{}: the registry got {:?}",
            case.name,
            proxy.request_lines()
        );
        assert_eq!(env.tree_hash(), before, "{}", case.name);
    }
}
