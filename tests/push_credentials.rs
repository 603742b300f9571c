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

impl Supplied {
    /// A case that prepares `env` with `setup`; the push names no reference, sets no variable,
    /// checks nothing more and makes no hygiene push unless the builders below say so.
    fn new(name: &'static str, setup: fn(&TestEnv, &str) -> Vec<String>) -> Supplied {
        Supplied {
            name,
            setup,
            reference: false,
            vars: &[],
            check: no_check,
            hygiene: None,
        }
    }

    /// The push names `oci://<host>/app`.
    fn names_the_reference(mut self) -> Supplied {
        self.reference = true;
        self
    }

    fn vars(mut self, vars: &'static [(&'static str, &'static str)]) -> Supplied {
        self.vars = vars;
        self
    }

    fn check(mut self, check: fn(&TestEnv, &Output, &str)) -> Supplied {
        self.check = check;
        self
    }

    /// A hygiene push follows; `others` are secrets besides the real password.
    fn hygiene(mut self, others: &'static [&'static str]) -> Supplied {
        self.hygiene = Some(others);
        self
    }
}

/// `--registry <value>`.
fn flag(value: String) -> Vec<String> {
    vec!["--registry".into(), value]
}

/// `ksail.yaml` with the registry string `template` (`{host}` replaced) and `credentials`.
fn config(env: &TestEnv, host: &str, template: &str, credentials: &[&str]) -> Vec<String> {
    write_config(env, &template.replace("{host}", host), credentials);
    vec![]
}

/// docker's config.json; the push takes no flag.
fn docker(env: &TestEnv, config: serde_json::Value) -> Vec<String> {
    env.write_docker_config(&config);
    vec![]
}

fn supplied_cases() -> Vec<Supplied> {
    vec![
        // The URL on stdout never carries the credentials.
        Supplied::new("inline registry string credentials are used", |_, host| {
            flag(format!("{USER}:{PASS}@{host}/app"))
        })
        .check(|_, output, _| assert_no_secret(output, PASS))
        .hygiene(&[]),
        Supplied::new(
            "tokenEnvVar supplies the password for the ksail.yaml user",
            |env, host| config(env, host, "ci@{host}/app", &["tokenEnvVar: PUSH_TOKEN"]),
        )
        .vars(&[("PUSH_TOKEN", PASS)])
        .hygiene(&[]),
        // artifact.md "Credentials": cliTokenEnvVar, then tokenEnvVar, then the embedded password.
        Supplied::new(
            "cliTokenEnvVar beats tokenEnvVar and the embedded password",
            |env, host| {
                let credentials = ["cliTokenEnvVar: CLI_TOKEN", "tokenEnvVar: PUSH_TOKEN"];
                config(env, host, "ci:wrong-embedded@{host}/app", &credentials)
            },
        )
        .vars(&[("CLI_TOKEN", PASS), ("PUSH_TOKEN", "wrong-token")])
        .hygiene(&["wrong-embedded", "wrong-token"]),
        // A configured variable name takes precedence over the embedded password, as in ksail
        // (Go).
        Supplied::new("tokenEnvVar beats the embedded password", |env, host| {
            let credentials = ["tokenEnvVar: PUSH_TOKEN"];
            config(env, host, "ci:wrong-embedded@{host}/app", &credentials)
        })
        .vars(&[("PUSH_TOKEN", PASS)])
        .check(|_, output, _| assert_no_secret(output, "wrong-embedded")),
        // config.md "Variable expansion": the whole registry string from ksail.yaml is expanded.
        Supplied::new(
            "a variable in the ksail.yaml registry string is expanded",
            |env, host| config(env, host, "ci:${REG_PASS}@{host}/app", &[]),
        )
        .vars(&[("REG_PASS", PASS)])
        .hygiene(&[]),
        // config.md "Variable expansion": `--registry` credentials are expanded when
        // credentials are resolved.
        Supplied::new("--registry credentials are expanded", |_, host| {
            flag(format!("{USER}:${{REG_PASS}}@{host}/app"))
        })
        .vars(&[("REG_PASS", PASS)]),
        Supplied::new("a docker config auths entry is used", |env, host| {
            docker(
                env,
                json!({ "auths": { host: { "auth": b64(USER, PASS) } } }),
            )
        })
        .names_the_reference()
        .hygiene(&[]),
        Supplied::new(
            "a docker config auths entry with an http:// key is used",
            |env, host| {
                let key = format!("http://{host}");
                docker(
                    env,
                    json!({ "auths": { key: { "auth": b64(USER, PASS) } } }),
                )
            },
        )
        .names_the_reference(),
        Supplied::new(
            "a credential helper from credHelpers is used",
            |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, PASS)))]);
                docker(env, json!({ "credHelpers": { host: "test" } }))
            },
        )
        .names_the_reference()
        .check(|env, _, host| {
            let calls = env.calls();
            assert_eq!(calls.len(), 1, "{calls:?}");
            assert_eq!(calls[0]["argv"], json!(["docker-credential-test", "get"]));
            assert_eq!(calls[0]["stdin"], json!(host));
        })
        .hygiene(&[]),
        Supplied::new(
            "a credential helper from credsStore is used",
            |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, PASS)))]);
                docker(env, json!({ "credsStore": "test" }))
            },
        )
        .names_the_reference()
        .check(|env, _, _| assert_eq!(env.calls().len(), 1))
        .hygiene(&[]),
        // The registry string comes first: a helper is not even asked when the string has
        // credentials for the same host.
        Supplied::new(
            "registry string credentials win over docker config",
            |env, host| {
                env.fake_credential_helper("test", &[(host, Some((USER, "wrong-helper")))]);
                docker(
                    env,
                    json!({
                        "credsStore": "test",
                        "auths": { host: { "auth": b64(USER, "wrong-auths") } },
                    }),
                );
                flag(format!("{USER}:{PASS}@{host}/app"))
            },
        )
        .check(|env, _, _| {
            let calls = env.calls();
            assert!(calls.is_empty(), "the helper was asked: {calls:?}");
        }),
        Supplied::new(
            "a missing helper executable warns and the next source is used",
            |env, host| {
                docker(
                    env,
                    json!({
                        "credHelpers": { host: "absent" },
                        "auths": { host: { "auth": b64(USER, PASS) } },
                    }),
                )
            },
        )
        .names_the_reference()
        .check(|_, output, _| {
            // Each warning carries the timestamp prefix (checked by the helper).
            let warnings = timestamped_warnings(output);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            let text = &warnings[0];
            assert!(text.starts_with("warning: "), "{text}");
            assert!(text.contains("\"absent\""), "{text}");
            assert!(text.contains("docker-credential-absent"), "{text}");
        }),
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

const WRONG: &str = "wr0ng-pa55word";

/// A source of wrong credentials: its name, `setup` (prepares `env` for the registry at `host`
/// and returns the push arguments), the variables set, and the source the error names.
type WrongSource = (
    &'static str,
    fn(&TestEnv, &str) -> Vec<String>,
    &'static [(&'static str, &'static str)],
    &'static str,
);

const WRONG_SOURCES: &[WrongSource] = &[
    (
        "--registry",
        |_, host| flag(format!("{USER}:{WRONG}@{host}/app")),
        &[],
        "credentials from the registry string",
    ),
    (
        "ksail.yaml embedded",
        |env, host| config(env, host, &format!("{USER}:{WRONG}@{{host}}/app"), &[]),
        &[],
        "credentials from the registry string",
    ),
    (
        "tokenEnvVar",
        |env, host| config(env, host, "ci@{host}/app", &["tokenEnvVar: PUSH_TOKEN"]),
        &[("PUSH_TOKEN", WRONG)],
        "credentials from environment variable PUSH_TOKEN",
    ),
    (
        "docker config auths",
        |env, host| {
            docker(
                env,
                json!({ "auths": { host: { "auth": b64(USER, WRONG) } } }),
            );
            vec![format!("oci://{host}/app")]
        },
        &[],
        "credentials from docker config.json",
    ),
    (
        "credential helper",
        |env, host| {
            env.fake_credential_helper("test", &[(host, Some((USER, WRONG)))]);
            docker(env, json!({ "credHelpers": { host: "test" } }));
            vec![format!("oci://{host}/app")]
        },
        &[],
        "credentials from docker credential helper \"test\"",
    ),
];

/// Wrong credentials from each source: exit 1; the error names the source, never the value.
#[test]
fn wrong_password_error_names_the_source_never_the_value() {
    let registry = require_registry!(auth_registry());
    let host = registry.host_port();
    for (name, setup, vars, source) in WRONG_SOURCES {
        let env = env_with_manifests();
        let extra = setup(&env, &host);
        let mut args = vec!["-vvv", "workload", "push"];
        args.extend(extra.iter().map(String::as_str));
        let output = run(&env, &args, vars);
        assert_case_exit(&output, 1, name);
        assert_error_line(&output, "rejected");
        assert_error_line(&output, source);
        assert_no_secret(&output, WRONG);
        assert_no_secret(&output, &b64(USER, WRONG));
        assert!(http::list_tags_as(&host, "app", USER, PASS).is_empty());
    }
}

/// An incomplete credential configuration: ksail.yaml's registry string (`{host}` and `{pass}`
/// replaced) and `credentials` lines, perhaps a `--registry` flag, the variables set, and the
/// exact error line.
struct Incomplete {
    name: &'static str,
    registry: &'static str,
    credentials: &'static [&'static str],
    flag: Option<&'static str>,
    vars: &'static [(&'static str, &'static str)],
    error: &'static str,
}

impl Incomplete {
    fn new(name: &'static str, registry: &'static str, error: &'static str) -> Incomplete {
        Incomplete {
            name,
            registry,
            credentials: &[],
            flag: None,
            vars: &[],
            error,
        }
    }

    fn credentials(mut self, credentials: &'static [&'static str]) -> Incomplete {
        self.credentials = credentials;
        self
    }

    fn flag(mut self, registry: &'static str) -> Incomplete {
        self.flag = Some(registry);
        self
    }

    fn vars(mut self, vars: &'static [(&'static str, &'static str)]) -> Incomplete {
        self.vars = vars;
        self
    }
}

const CLI_TOKEN: &[&str] = &["cliTokenEnvVar: GHCR_PUSH_TOKEN"];
const PUSH_TOKEN: &[&str] = &["tokenEnvVar: PUSH_TOKEN"];
const CLI_UNSET: &str = "error: spec.cluster.localRegistry.credentials.cliTokenEnvVar names GHCR_PUSH_TOKEN, which is not set; export it or remove the setting";
const TOKEN_UNSET: &str = "error: spec.cluster.localRegistry.credentials.tokenEnvVar names PUSH_TOKEN, which is not set; export it or remove the setting";
const NO_PASSWORD: &str = "error: registry user \"ci\" has no password; add it to the registry string or set credentials.tokenEnvVar";
const NO_USER: &str = "error: credentials.tokenEnvVar is set but the registry string has no user; write it as user@host";

fn incomplete_cases() -> Vec<Incomplete> {
    vec![
        Incomplete::new("cliTokenEnvVar unset", "ci@{host}/app", CLI_UNSET).credentials(CLI_TOKEN),
        Incomplete::new("cliTokenEnvVar empty", "ci@{host}/app", CLI_UNSET)
            .credentials(CLI_TOKEN)
            .vars(&[("GHCR_PUSH_TOKEN", "")]),
        Incomplete::new(
            "cliTokenEnvVar unset, even with an embedded password",
            "ci:{pass}@{host}/app",
            CLI_UNSET,
        )
        .credentials(CLI_TOKEN),
        Incomplete::new("tokenEnvVar unset", "ci@{host}/app", TOKEN_UNSET).credentials(PUSH_TOKEN),
        Incomplete::new(
            "user without password in ksail.yaml",
            "ci@{host}/app",
            NO_PASSWORD,
        ),
        Incomplete::new(
            "user without password in --registry",
            "{host}/other",
            NO_PASSWORD,
        )
        .flag("ci@{host}/app"),
        Incomplete::new("tokenEnvVar without a user", "{host}/app", NO_USER)
            .credentials(PUSH_TOKEN)
            .vars(&[("PUSH_TOKEN", PASS)]),
    ]
}

/// Incomplete credential configuration (artifact.md table, testing.md B12): exit 2 with the
/// exact text, no request to the registry, no file changed.
#[test]
fn b12_incomplete_credential_configuration_exits_2_before_any_request() {
    let registry = require_registry!(auth_registry());
    let proxy = Proxy::start(&registry.host_port());
    let host = proxy.host_port();
    let expand = |text: &str| text.replace("{host}", &host).replace("{pass}", PASS);
    for case in incomplete_cases() {
        let env = env_with_manifests();
        write_config(&env, &expand(case.registry), case.credentials);
        let before = env.tree_hash();
        let flag = case.flag.map(expand);
        let mut args = vec!["workload", "push"];
        if let Some(flag) = &flag {
            args.extend(["--registry", flag]);
        }
        let output = run(&env, &args, case.vars);
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
