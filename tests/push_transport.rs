//! HTTP or HTTPS, and never a fallback between them (artifact.md "Transport"; testing.md
//! "Transport").
//!
//! A non-loopback host is reached through the machine's own hostname, which ksail must treat as
//! remote while it resolves to 127.0.0.1 (see tests/support/tls.rs). Without such a name the
//! cases that need it print a skip line and return.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::process::Output;
use std::time::{Duration, Instant};

use support::push::{
    REPO, TAG, assert_error_is, assert_pushed_to, env_with_manifests, run, skip, target,
};
use support::tls::{TlsStats, non_loopback_looking_name};
use support::{
    Proxy, TestEnv, TlsListener, assert_error_line, assert_exit, describe, http, stderr_lines,
    stdout_lines,
};

const TLS_HINT: &str = "; if this registry serves plain HTTP, pass --insecure";

fn push(env: &TestEnv, host_port: &str, flags: &[&str]) -> Output {
    let reference = target(host_port);
    run(
        env,
        &[&["workload", "push", &reference][..], flags].concat(),
        &[],
    )
}

fn no_retry(output: &Output) {
    assert!(
        !stderr_lines(output)
            .iter()
            .any(|l| l.contains("warning: attempt ")),
        "a TLS failure is not retried\n{}",
        describe(output)
    );
}

/// The machine's hostname when it resolves to 127.0.0.1 only, where the registry listens.
fn hostname_for_registry(test: &str) -> Option<String> {
    match non_loopback_looking_name() {
        Some((name, ips)) if ips == [IpAddr::V4(Ipv4Addr::LOCALHOST)] => Some(name),
        _ => {
            skip(
                test,
                "no hostname that looks remote and resolves to 127.0.0.1",
            );
            None
        }
    }
}

/// A registry and a hostname that looks remote but resolves to 127.0.0.1, or a (reported) return
/// from the test; `(name, registry, <name>:<port>)`.
macro_rules! remote_looking_registry {
    () => {{
        let Some(name) = hostname_for_registry(&test_name!()) else {
            return;
        };
        let registry = require_registry!();
        let host_port = format!("{name}:{}", registry.port());
        (name, registry, host_port)
    }};
}

/// The listener's counters once every connection it accepted has been dealt with.
fn settled_stats(listener: &TlsListener) -> TlsStats {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let stats = listener.stats();
        let done = stats.plaintext_requests + stats.handshakes_failed + stats.handshakes_completed;
        if (stats.connections > 0 && done >= stats.connections) || Instant::now() >= deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn push_transport_loopback_registry_is_spoken_to_over_plain_http() {
    let registry = require_registry!();
    // The proxy speaks only HTTP/1.1 and records what it could parse: every request of the push
    // arriving there proves plain HTTP.
    let proxy = Proxy::start(&registry.host_port());
    let env = env_with_manifests();
    // Same content through two loopback names: the second push finds it unchanged.
    let names = [proxy.host_port(), format!("localhost:{}", proxy.port())];
    for (host_port, verb) in names.iter().zip(["pushed", "unchanged"]) {
        proxy.clear();
        let output = push(&env, host_port, &[]);
        assert_exit(&output, 0);
        let line = stdout_lines(&output).pop().unwrap_or_default();
        assert!(
            line.starts_with(&format!("{verb} {}@sha256:", target(host_port))),
            "{}",
            describe(&output)
        );
        let first = proxy
            .requests()
            .first()
            .cloned()
            .expect("the proxy saw requests");
        assert_eq!(first.method, "GET", "{:#?}", proxy.request_lines());
        assert_eq!(first.path_only(), format!("/v2/{REPO}/manifests/{TAG}"));
    }
    let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
    assert_eq!(status, 200);

    // And straight at docker-registry, which serves only HTTP.
    let env = env_with_manifests();
    env.write(
        "k8s/other.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n",
    );
    assert_pushed_to(
        &push(&env, &registry.host_port(), &[]),
        &registry.host_port(),
        &registry.host_port(),
    );
}

#[test]
fn push_transport_remote_host_uses_verified_https_without_fallback() {
    let listener = TlsListener::start();
    let Some(host_port) = listener.external_host_port() else {
        skip(
            "push_transport_remote_host_uses_verified_https_without_fallback",
            "no hostname that looks remote and resolves to loopback",
        );
        return;
    };
    let env = env_with_manifests();
    let output = push(&env, &host_port, &[]);
    assert_exit(&output, 1);
    assert_error_line(&output, "TLS handshake with");
    assert_error_is(
        &output,
        &format!(
            "error: TLS handshake with {host_port} failed: invalid peer certificate: UnknownIssuer{TLS_HINT}"
        ),
    );
    no_retry(&output);
    assert!(stdout_lines(&output).is_empty());

    let stats = settled_stats(&listener);
    assert_eq!(stats.connections, 1, "exactly one attempt: {stats:?}");
    assert_eq!(
        stats.plaintext_requests, 0,
        "no plain-HTTP fallback: {stats:?}"
    );
    assert_eq!(
        stats.handshakes_completed, 0,
        "the self-signed certificate is refused: {stats:?}"
    );
    assert_eq!(stats.handshakes_failed, 1, "{stats:?}");
    assert!(stats.requests.is_empty(), "{stats:?}");
}

#[test]
fn push_transport_insecure_flag_uses_plain_http_for_a_remote_host() {
    let (_, registry, host_port) = remote_looking_registry!();
    let env = env_with_manifests();
    let output = push(&env, &host_port, &["--insecure"]);
    assert_pushed_to(&output, &host_port, &registry.host_port());
}

fn write_config(env: &TestEnv, registry: &str, insecure: bool) {
    env.write(
        "ksail.yaml",
        format!(
            "apiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    localRegistry:\n      registry: {registry}\n      insecure: {insecure}\n"
        ),
    );
}

#[test]
fn push_transport_config_insecure_uses_plain_http_for_its_own_registry() {
    let (_, registry, host_port) = remote_looking_registry!();
    let env = env_with_manifests();
    write_config(&env, &host_port, true);
    let output = push(&env, &host_port, &[]);
    assert_pushed_to(&output, &host_port, &registry.host_port());
}

#[test]
fn push_transport_config_insecure_for_another_registry_does_not_apply() {
    let (name, registry, host_port) = remote_looking_registry!();
    // Another port on the same host, and the same port on another host.
    let others = [
        format!("{name}:{}", registry.port().wrapping_add(1).max(1)),
        format!("localhost:{}", registry.port()),
    ];
    let mut lines = Vec::new();
    for other in others {
        let env = env_with_manifests();
        write_config(&env, &other, true);
        let output = push(&env, &host_port, &[]);
        assert_exit(&output, 1);
        no_retry(&output);
        assert!(
            stdout_lines(&output).is_empty(),
            "{other}: {}",
            describe(&output)
        );
        let (status, _, _) = http::fetch_manifest(&registry.host_port(), REPO, TAG);
        assert_eq!(
            status, 404,
            "insecure for {other}: nothing may be pushed over HTTP"
        );
        lines.push((other, stderr_lines(&output).pop().expect("an error line")));
    }
    // The transport held; now the wording: a TLS failure carries the --insecure hint.
    for (other, last) in lines {
        assert!(
            last.starts_with(&format!("error: TLS handshake with {host_port} failed: "))
                && last.ends_with(TLS_HINT),
            "insecure for {other} must not apply to {host_port}; expected the TLS error line, got {last:?}"
        );
    }
}
