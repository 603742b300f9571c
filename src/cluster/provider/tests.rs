//! Provider unit tests: messages, listing rules, and the process plumbing with a stand-in.

use super::*;

fn failure(text: &str) -> ProviderError {
    ProviderError::CommandFailed {
        command: "kind get clusters".into(),
        status: "exit code 1".into(),
        stderr_tail: text.into(),
    }
}

#[test]
fn install_hints_match_the_preflight_table() {
    assert_eq!(
        ProviderError::ToolMissing { tool: Tool::Kind }.to_string(),
        "kind is not installed or not on PATH; install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
    );
    assert_eq!(
        ProviderError::ToolMissing { tool: Tool::K3d }.to_string(),
        "k3d is not installed or not on PATH; install it: https://k3d.io/#installation"
    );
    assert_eq!(
        ProviderError::DockerUnavailable {
            reason: "Cannot connect".into()
        }
        .to_string(),
        "Docker is not available: docker info failed: Cannot connect; start Docker (or install it from https://docs.docker.com/get-docker/)"
    );
}

#[test]
fn a_failed_command_names_itself_and_its_stderr() {
    let failure = Failure::from(ProviderError::CommandFailed {
        command: "kind delete cluster --name kind".into(),
        status: "exit code 1".into(),
        stderr_tail: "ERROR: boom\nsecond line".into(),
    });
    assert_eq!(failure.class.exit_code(), 1);
    assert_eq!(
        failure.message,
        "kind delete cluster --name kind failed (exit code 1): ERROR: boom second line; fix what kind reports and run the ksail command again"
    );
}

#[test]
fn listing_merges_sorts_and_skips_missing_tools() {
    let listing = combine_listings(
        Ok(vec!["kind".into(), "alpha".into()]),
        Ok(vec!["dev".into()]),
    )
    .unwrap();
    assert_eq!(
        listing.clusters,
        [
            ("alpha".to_string(), Distribution::Vanilla),
            ("dev".to_string(), Distribution::K3s),
            ("kind".to_string(), Distribution::Vanilla),
        ]
    );
    assert!(listing.warnings.is_empty());

    let only_kind = combine_listings(
        Ok(vec!["kind".into()]),
        Err(ProviderError::ToolMissing { tool: Tool::K3d }),
    )
    .unwrap();
    assert_eq!(only_kind.clusters.len(), 1);
    assert!(only_kind.warnings.is_empty());

    let neither = combine_listings(
        Err(ProviderError::ToolMissing { tool: Tool::Kind }),
        Err(ProviderError::ToolMissing { tool: Tool::K3d }),
    )
    .unwrap();
    assert_eq!(neither, ClusterListing::default());
}

#[test]
fn listing_fails_only_when_nothing_answered() {
    let partial = combine_listings(Err(failure("boom")), Ok(vec!["dev".into()])).unwrap();
    assert_eq!(partial.clusters, [("dev".to_string(), Distribution::K3s)]);
    assert_eq!(partial.warnings.len(), 1);
    assert!(
        partial.warnings[0].contains("boom"),
        "{:?}",
        partial.warnings
    );

    let both = combine_listings(Err(failure("one")), Err(failure("two"))).unwrap_err();
    assert!(matches!(both, ProviderError::ListFailed { .. }), "{both}");
    let text = both.to_string();
    assert!(text.starts_with("cannot list clusters: "), "{text}");
    assert!(text.contains("one") && text.contains("two"), "{text}");

    let lone = combine_listings(
        Err(failure("one")),
        Err(ProviderError::ToolMissing { tool: Tool::K3d }),
    )
    .unwrap_err();
    assert!(
        matches!(lone, ProviderError::CommandFailed { .. }),
        "{lone}"
    );
}

#[test]
fn distribution_names_contexts_and_networks() {
    assert_eq!(Distribution::Vanilla.derived_context("kind"), "kind-kind");
    assert_eq!(Distribution::K3s.derived_context("dev"), "k3d-dev");
    assert_eq!(Distribution::Vanilla.network("kind"), "kind");
    assert_eq!(Distribution::K3s.network("dev"), "k3d-dev");
    assert_eq!(
        Distribution::from_config(config::Distribution::K3s),
        Some(Distribution::K3s)
    );
    assert_eq!(Distribution::from_config(config::Distribution::Talos), None);
}

#[tokio::test]
async fn a_missing_executable_gives_the_install_hint() {
    let empty = tempfile::tempdir().expect("temp dir");
    let provider = Provider::new(Distribution::K3s, None)
        .with_search_path(Some(empty.path().as_os_str().to_owned()));
    let error = provider.check_tool().unwrap_err();
    assert!(matches!(
        error,
        ProviderError::ToolMissing { tool: Tool::K3d }
    ));
    let error = provider.check_docker().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "Docker is not available: docker info failed: docker is not installed or not on PATH; start Docker (or install it from https://docs.docker.com/get-docker/)"
    );
    // A directory of that name is not an executable.
    std::fs::create_dir(empty.path().join("k3d")).expect("mkdir");
    assert!(provider.check_tool().is_err());
}

#[cfg(unix)]
#[tokio::test]
async fn a_child_gets_stdin_kubeconfig_and_its_failure_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("log");
    // A docker stand-in that records stdin and KUBECONFIG, and fails for `start`.
    let script = format!(
        "#!/bin/sh\ncase \"$1\" in\n  start) echo 'Error response from daemon: no' >&2; exit 3 ;;\n  exec) cat > {log} ;;\n  *) printf '%s' \"$KUBECONFIG\" > {log} ;;\nesac\n",
        log = log.display()
    );
    let docker = dir.path().join("docker");
    std::fs::write(&docker, script).expect("write");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let provider = Provider::new(Distribution::Vanilla, Some(PathBuf::from("/kube/config")))
        .with_search_path(Some(dir.path().as_os_str().to_owned()));

    provider
        .write_file_in_node("kind-control-plane", "/etc/x/hosts.toml", "server = 1\n")
        .await
        .expect("exec succeeds");
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "server = 1\n");

    // Only create and delete get KUBECONFIG; `docker info` inherits the environment.
    let captured = provider
        .capture(
            &parse::docker_info_call(),
            RunOptions {
                kubeconfig: true,
                ..RunOptions::default()
            },
        )
        .await
        .expect("runs");
    assert!(captured.success);
    assert_eq!(std::fs::read_to_string(&log).expect("log"), "/kube/config");

    let error = provider.start_container("r").await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "docker start r failed (exit code 3): Error response from daemon: no; fix what docker reports and run the ksail command again"
    );
}

#[test]
fn distribution_names_are_the_display_names_in_order() {
    assert_eq!(
        Distribution::NAMES,
        [Distribution::Vanilla.as_str(), Distribution::K3s.as_str()]
    );
}
