//! The shared retry policy as `workload push` applies it (reconcile.md "Retry": policy,
//! classification, test overrides; artifact.md "Push failures"; testing.md "Retry" and B23).
//! A fault-script proxy in front of the real registry decides what each request gets.
//! The test environment shortens the back-off: KSAIL_TEST_RETRY_BASE_MS=10, CAP_MS=50.

mod support;

use std::net::TcpListener;
use std::process::Output;
use std::time::{Duration, Instant};

use support::push::{
    REPO, TAG, assert_error_is, assert_pushed_to, env_with_manifests, push_target, target,
};
use support::{
    Action, FaultScript, Proxy, Registry, assert_error_line, assert_exit, describe,
    has_timestamp_prefix, http, stderr_lines, stdout_lines, strip_timestamp,
};

/// The `<what to do>` of a failed push that has no more specific hint.
const REACHABLE_HINT: &str = "check that the registry is reachable, then push again";

/// The retry warnings, without their timestamp prefix (each must have one: stderr is no TTY).
fn retry_warnings(output: &Output) -> Vec<String> {
    stderr_lines(output)
        .iter()
        .filter(|line| line.contains("warning: attempt "))
        .map(|line| {
            assert!(has_timestamp_prefix(line), "no timestamp prefix: {line:?}");
            strip_timestamp(line).to_string()
        })
        .collect()
}

/// A push of `k8s:dev` through a proxy that plays `script` in front of a fresh registry, with
/// `vars` set; `(registry, proxy, output)`.
macro_rules! scripted_push {
    ($script:expr) => {
        scripted_push!($script, &[])
    };
    ($script:expr, $vars:expr) => {{
        let registry = require_registry!();
        let proxy = Proxy::with_script(&registry.host_port(), $script);
        let env = env_with_manifests();
        let output = push_target(&env, &proxy.host_port(), $vars);
        (registry, proxy, output)
    }};
}

/// The push succeeded after one retry, announced by `warning`; the manifest GETs got `gets`.
fn assert_retried_once(
    output: &Output,
    (registry, proxy): (&Registry, &Proxy),
    warning: &str,
    gets: &[u16],
) {
    assert_pushed_to(output, &proxy.host_port(), &registry.host_port());
    assert_eq!(retry_warnings(output), [warning]);
    assert_eq!(manifest_gets(proxy), gets);
}

fn manifest_gets(proxy: &Proxy) -> Vec<u16> {
    let path = format!("/v2/{REPO}/manifests/{TAG}");
    proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path_only() == path)
        .map(|r| r.status)
        .collect()
}

#[test]
fn push_retry_503_twice_then_success_prints_two_warnings_and_exits_0() {
    let (registry, proxy, output) =
        scripted_push!(FaultScript::new().on_requests(1..=2, Action::Status(503, None)));
    assert_pushed_to(&output, &proxy.host_port(), &registry.host_port());
    assert_eq!(
        retry_warnings(&output),
        [
            "warning: attempt 1/3 failed, retrying in 10ms: 503 unavailable",
            "warning: attempt 2/3 failed, retrying in 20ms: 503 unavailable",
        ]
    );
    assert_eq!(
        manifest_gets(&proxy),
        vec![503, 503, 404],
        "{:#?}",
        proxy.request_lines()
    );
}

#[test]
fn push_retry_401_anonymous_is_rejected_after_one_attempt() {
    let (_registry, proxy, output) =
        scripted_push!(FaultScript::new().on_requests(1.., Action::Status(401, None)));
    assert_exit(&output, 1);
    let url = target(&proxy.host_port());
    assert_error_line(
        &output,
        &format!("push to {url} rejected: 401 unauthorized"),
    );
    assert!(retry_warnings(&output).is_empty(), "{}", describe(&output));
    assert_eq!(
        proxy.request_lines(),
        vec![format!("GET /v2/{REPO}/manifests/{TAG} 401")],
        "one attempt, and no credentials to retry the challenge with"
    );
}

#[test]
fn push_retry_connection_reset_is_retried() {
    let (registry, proxy, output) = scripted_push!(FaultScript::new().on_request(1, Action::Reset));
    let warning = "warning: attempt 1/3 failed, retrying in 10ms: connection reset";
    assert_retried_once(&output, (&registry, &proxy), warning, &[0, 404]);
}

#[test]
fn push_retry_unexpected_eof_is_retried() {
    let (registry, proxy, output) =
        scripted_push!(FaultScript::new().on_request(1, Action::UnexpectedEof));
    let warning = "warning: attempt 1/3 failed, retrying in 10ms: unexpected EOF";
    assert_retried_once(&output, (&registry, &proxy), warning, &[200, 404]);
}

#[test]
fn push_retry_503_on_every_request_fails_after_3_attempts_pointing_at_the_registry() {
    let (_registry, proxy, output) =
        scripted_push!(FaultScript::new().on_requests(1.., Action::Status(503, None)));
    assert_exit(&output, 1);
    assert_error_line(&output, "failed after 3 attempts");
    assert_error_is(
        &output,
        &format!(
            "error: push to {} failed after 3 attempts: 503 unavailable; the registry at {} failed on its side; check its logs, then push again",
            target(&proxy.host_port()),
            proxy.host_port()
        ),
    );
    assert_eq!(retry_warnings(&output).len(), 2);
    assert_eq!(manifest_gets(&proxy), vec![503, 503, 503]);
    assert_eq!(proxy.requests().len(), 3, "{:#?}", proxy.request_lines());
    assert!(stdout_lines(&output).is_empty());
}

#[test]
fn push_retry_after_on_a_429_raises_the_delay() {
    let registry = require_registry!();
    let proxy = Proxy::with_script(
        &registry.host_port(),
        FaultScript::new().on_request(1, Action::Status(429, Some(1))),
    );
    let env = env_with_manifests();
    let started = Instant::now();
    let output = push_target(
        &env,
        &proxy.host_port(),
        &[("KSAIL_TEST_RETRY_CAP_MS", "2000")],
    );
    let elapsed = started.elapsed();
    assert_pushed_to(&output, &proxy.host_port(), &registry.host_port());
    assert_eq!(
        retry_warnings(&output),
        ["warning: attempt 1/3 failed, retrying in 1s: 429 toomanyrequests"]
    );
    assert!(
        elapsed >= Duration::from_secs(1),
        "ksail waited the Retry-After: {elapsed:?}"
    );
}

#[test]
fn push_retry_redirect_loop_is_the_retryable_redirect_limit() {
    let (_registry, proxy, output) = scripted_push!(
        FaultScript::new().on_requests(1.., Action::RedirectLoop),
        &[("KSAIL_TEST_RETRY_ATTEMPTS", "2")]
    );
    assert_exit(&output, 1);
    assert_error_is(
        &output,
        &format!(
            "error: push to {} failed after 2 attempts: stopped after 10 redirects; {REACHABLE_HINT}",
            target(&proxy.host_port())
        ),
    );
    assert_eq!(
        retry_warnings(&output),
        ["warning: attempt 1/2 failed, retrying in 10ms: stopped after 10 redirects"]
    );
    let requests = proxy.requests();
    let first_hops = requests
        .iter()
        .filter(|r| !r.path.contains(support::faults::REDIRECT_HOP_PARAM))
        .count();
    assert_eq!(
        first_hops,
        2,
        "one un-redirected request per attempt: {:#?}",
        proxy.request_lines()
    );
    // 10 hops are followed per attempt, the 11th redirect is refused.
    assert_eq!(requests.len(), 2 * 11, "{:#?}", proxy.request_lines());
}

#[test]
fn push_retry_404_on_blob_upload_is_not_retried() {
    let (registry, proxy, output) = scripted_push!(FaultScript::new().when(
        |r| r.method == "POST",
        1..,
        Action::Status(404, None)
    ));
    assert_exit(&output, 1);
    assert_error_line(
        &output,
        &format!("push to {} failed: 404", target(&proxy.host_port())),
    );
    assert!(retry_warnings(&output).is_empty(), "{}", describe(&output));
    let posts = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1, "{:#?}", proxy.request_lines());
    assert_eq!(manifest_gets(&proxy), vec![404], "one attempt");
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 404, "no tag written");
}

#[test]
fn b23_retry_attempts_0_exits_2_naming_the_variable_and_sends_nothing() {
    let (_registry, proxy) = proxied_registry!();
    let env = env_with_manifests();
    let before = env.tree_hash();
    let no_attempt = [("KSAIL_TEST_RETRY_ATTEMPTS", "0")];
    let output = push_target(&env, &proxy.host_port(), &no_attempt);
    assert_exit(&output, 2);
    assert_error_line(&output, "KSAIL_TEST_RETRY_ATTEMPTS");
    assert!(proxy.requests().is_empty(), "{:#?}", proxy.request_lines());
    assert_eq!(env.tree_hash(), before, "the run changed files");
    assert!(stdout_lines(&output).is_empty());
}

#[test]
fn push_retry_connection_refused_is_retried_and_fails_after_3_attempts() {
    // A port that was free a moment ago and has nothing listening now.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let host_port = format!("127.0.0.1:{port}");
    let env = env_with_manifests();
    let output = push_target(&env, &host_port, &[]);
    assert_exit(&output, 1);
    assert_error_is(
        &output,
        &format!(
            // Named on the command line: not the configured registry `ksail cluster create` starts.
            "error: push to {} failed after 3 attempts: connection refused; nothing listens on {host_port}; check the host and port, or start the registry",
            target(&host_port)
        ),
    );
    assert_eq!(
        retry_warnings(&output),
        [
            "warning: attempt 1/3 failed, retrying in 10ms: connection refused",
            "warning: attempt 2/3 failed, retrying in 20ms: connection refused",
        ]
    );
}
