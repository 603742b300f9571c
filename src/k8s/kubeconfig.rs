//! Reading and merging kubeconfig files and choosing the context, the way kubectl does
//! (cli.md#global-flags). Everything here fails with a [`TargetError`], which is always a
//! configuration problem (exit 2): nothing has been sent to a cluster yet.

use std::io;
use std::path::{Path, PathBuf};

use kube::config::{Kubeconfig, KubeconfigError};

use crate::error::UsageError;

/// Which cluster a command talks to, as the settings resolved it. The caller has already
/// applied the kubeconfig precedence (flag > `KSAIL_SPEC_CLUSTER_CONNECTION_KUBECONFIG` >
/// `KUBECONFIG` > `ksail.yaml` > `~/.kube/config`) and the explicit context precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeTarget {
    /// The kubeconfig files, in merge order (the first file that sets a key wins).
    pub kubeconfig: Vec<PathBuf>,
    /// Where the list came from, for messages: `--kubeconfig`, `KUBECONFIG`, `ksail.yaml`,
    /// `~/.kube/config`.
    pub kubeconfig_source: String,
    /// `--context`, `KSAIL_SPEC_CLUSTER_CONNECTION_CONTEXT` or `spec.cluster.connection.context`.
    pub context: Option<String>,
    /// Cluster commands only: `kind-<cluster>` or `k3d-<cluster>`.
    pub derived_context: Option<String>,
}

/// Why a context was chosen; decides the wording when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextOrigin {
    /// `--context`, its environment variable, or `ksail.yaml`.
    Explicit,
    /// `kind-<cluster>` / `k3d-<cluster>`, derived from the cluster name.
    Derived,
    /// The merged kubeconfig's `current-context`.
    Current,
}

/// The merged kubeconfig and the files that contributed to it.
#[derive(Debug, Clone)]
pub struct MergedKubeconfig {
    pub config: Kubeconfig,
    /// The files that existed and were read, in merge order.
    pub files_read: Vec<PathBuf>,
}

/// A kubeconfig problem. All of them are configuration errors (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "no kubeconfig found: {} (from {source_name}); create a cluster with ksail cluster create, or pass --kubeconfig",
        describe_missing(.tried)
    )]
    NoKubeconfig {
        tried: Vec<PathBuf>,
        source_name: String,
    },

    #[error(
        "cannot read kubeconfig {}: {source}; check the file's permissions, or pass another --kubeconfig",
        .path.display()
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The parser's own message is left out on purpose: it can quote a value, and values in a
    /// kubeconfig include tokens and keys.
    #[error(
        "cannot read kubeconfig {}: not a valid kubeconfig{}; fix the file, or pass another --kubeconfig",
        .path.display(),
        describe_location(*.location)
    )]
    Invalid {
        path: PathBuf,
        /// 1-based line and column, when the parser knows them.
        location: Option<(u64, u64)>,
    },

    #[error(
        "unknown kubeconfig context \"{context}\"{}: not defined in {}{}; {}",
        origin_note(*.origin),
        join_paths(.files),
        describe_available(.available),
        unknown_context_hint(*.origin)
    )]
    UnknownContext {
        context: String,
        origin: ContextOrigin,
        files: Vec<PathBuf>,
        available: Vec<String>,
    },

    #[error(
        "no kubeconfig context selected: {} sets no current-context; pass --context, set spec.cluster.connection.context, or run kubectl config use-context <name>",
        join_paths(.files)
    )]
    NoContext { files: Vec<PathBuf> },

    #[error(
        "kubeconfig context \"{context}\" names cluster \"{cluster}\", which is not defined in {}; fix the kubeconfig, or pass another --context",
        join_paths(.files)
    )]
    UnknownCluster {
        context: String,
        cluster: String,
        files: Vec<PathBuf>,
    },

    #[error(
        "kubeconfig cluster \"{cluster}\" (context \"{context}\") has no server URL; fix the kubeconfig, or pass another --context"
    )]
    MissingServer { context: String, cluster: String },

    /// kube could not build a client configuration (for example a client key file that does
    /// not exist). kube's messages name files and fields, never their contents.
    #[error(
        "cannot use kubeconfig context \"{context}\": {detail}; fix the kubeconfig, or pass another --context"
    )]
    Unusable { context: String, detail: String },
}

impl UsageError for TargetError {}

/// Read every listed file that exists and merge them like kubectl.
pub fn read_merged(target: &KubeTarget) -> Result<MergedKubeconfig, TargetError> {
    let mut configs = Vec::new();
    let mut files_read = Vec::new();
    for path in &target.kubeconfig {
        // kubectl ignores empty entries of a path list (`a::b`).
        if path.as_os_str().is_empty() {
            continue;
        }
        match read_one(path)? {
            Some(config) => {
                configs.push(config);
                files_read.push(path.clone());
            }
            None => {
                tracing::debug!(path = %path.display(), "kubeconfig file does not exist; skipped")
            }
        }
    }
    if files_read.is_empty() {
        return Err(TargetError::NoKubeconfig {
            tried: target.kubeconfig.clone(),
            source_name: target.kubeconfig_source.clone(),
        });
    }
    Ok(MergedKubeconfig {
        config: merge(configs),
        files_read,
    })
}

/// One file; `None` when it does not exist (kubectl skips those).
fn read_one(path: &Path) -> Result<Option<Kubeconfig>, TargetError> {
    match Kubeconfig::read_from(path) {
        Ok(config) => Ok(Some(config)),
        Err(KubeconfigError::ReadConfig(source, _)) if source.kind() == io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(KubeconfigError::ReadConfig(source, _)) => Err(TargetError::Unreadable {
            path: path.to_path_buf(),
            source,
        }),
        Err(KubeconfigError::Parse(error)) => Err(TargetError::Invalid {
            path: path.to_path_buf(),
            location: error.location().map(|at| (at.line(), at.column())),
        }),
        Err(_) => Err(TargetError::Invalid {
            path: path.to_path_buf(),
            location: None,
        }),
    }
}

/// kubectl's merge: the first file that sets a map key (cluster, user, context name) wins, and
/// `current-context` comes from the first file that sets it. `Kubeconfig::merge` has exactly
/// these semantics, with two differences from kubectl that are removed here first: it refuses
/// files whose `kind`/`apiVersion` differ (kubectl ignores both), and it keeps an empty
/// `current-context: ""` (kubectl treats it as unset, so a later file may set it).
pub fn merge(configs: Vec<Kubeconfig>) -> Kubeconfig {
    let mut merged = Kubeconfig::default();
    for mut config in configs {
        config.kind = None;
        config.api_version = None;
        if config.current_context.as_deref() == Some("") {
            config.current_context = None;
        }
        merged = merged
            .merge(config)
            .expect("kind and apiVersion, the only merge conflicts, were cleared");
    }
    merged
}

/// Explicit context, else the derived one, else `current-context`; it must exist.
pub fn choose_context(
    merged: &MergedKubeconfig,
    target: &KubeTarget,
) -> Result<String, TargetError> {
    let (context, origin) = if let Some(explicit) = &target.context {
        (explicit.clone(), ContextOrigin::Explicit)
    } else if let Some(derived) = &target.derived_context {
        (derived.clone(), ContextOrigin::Derived)
    } else if let Some(current) = &merged.config.current_context {
        (current.clone(), ContextOrigin::Current)
    } else {
        return Err(TargetError::NoContext {
            files: merged.files_read.clone(),
        });
    };
    let defined = merged
        .config
        .contexts
        .iter()
        .any(|named| named.name == context && named.context.is_some());
    if !defined {
        return Err(TargetError::UnknownContext {
            context,
            origin,
            files: merged.files_read.clone(),
            available: context_names(&merged.config),
        });
    }
    Ok(context)
}

/// The server URL of the context's cluster, as written in the kubeconfig (without a trailing
/// `/`), for messages such as "cannot reach the Kubernetes API server at …".
pub fn server_url(merged: &MergedKubeconfig, context: &str) -> Result<String, TargetError> {
    let cluster_name = merged
        .config
        .contexts
        .iter()
        .find(|named| named.name == context)
        .and_then(|named| named.context.as_ref())
        .map(|context| context.cluster.clone())
        .unwrap_or_default();
    let cluster = merged
        .config
        .clusters
        .iter()
        .find(|named| named.name == cluster_name)
        .and_then(|named| named.cluster.as_ref())
        .ok_or_else(|| TargetError::UnknownCluster {
            context: context.to_string(),
            cluster: cluster_name.clone(),
            files: merged.files_read.clone(),
        })?;
    match cluster.server.as_deref().map(str::trim) {
        Some(server) if !server.is_empty() => Ok(server.trim_end_matches('/').to_string()),
        _ => Err(TargetError::MissingServer {
            context: context.to_string(),
            cluster: cluster_name,
        }),
    }
}

fn context_names(config: &Kubeconfig) -> Vec<String> {
    config
        .contexts
        .iter()
        .filter(|named| named.context.is_some())
        .map(|named| named.name.clone())
        .collect()
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_missing(tried: &[PathBuf]) -> String {
    match tried {
        [] => "no path given".to_string(),
        [one] => format!("{} does not exist", one.display()),
        many => format!("none of {} exists", join_paths(many)),
    }
}

fn describe_location(location: Option<(u64, u64)>) -> String {
    location.map_or_else(String::new, |(line, column)| {
        format!(" (line {line}, column {column})")
    })
}

fn describe_available(available: &[String]) -> String {
    if available.is_empty() {
        " (it defines no contexts)".to_string()
    } else {
        format!(" (defined: {})", available.join(", "))
    }
}

fn origin_note(origin: ContextOrigin) -> &'static str {
    match origin {
        ContextOrigin::Explicit => "",
        ContextOrigin::Derived => " (derived from the cluster name)",
        ContextOrigin::Current => " (the current-context)",
    }
}

fn unknown_context_hint(origin: ContextOrigin) -> &'static str {
    match origin {
        ContextOrigin::Explicit => {
            "pass --context with a defined context, or fix spec.cluster.connection.context"
        }
        ContextOrigin::Derived => {
            "create the cluster with ksail cluster create, or pass --context with a defined context"
        }
        ContextOrigin::Current => {
            "pass --context with a defined context, or run kubectl config use-context <name>"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Failure, FailureClass};

    /// The kubeconfig files of one test, in a temporary directory.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Dir(tempfile::tempdir().expect("tempdir"))
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.path().join(name)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.join(name);
            std::fs::write(&path, text).expect("write kubeconfig");
            path
        }

        /// File `name` from [`kubeconfig`], its server `https://<name>:6443`.
        fn kubeconfig(&self, name: &str, contexts: &[&str], current: Option<&str>) -> PathBuf {
            self.write(
                name,
                &kubeconfig(contexts, &format!("https://{name}:6443"), current),
            )
        }
    }

    /// A kubeconfig with one cluster/user/context per name, all pointing at `server`.
    fn kubeconfig(names: &[&str], server: &str, current: Option<&str>) -> String {
        let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
        for name in names {
            text.push_str(&format!(
                "- name: {name}\n  cluster:\n    server: {server}\n"
            ));
        }
        text.push_str("users:\n");
        for name in names {
            text.push_str(&format!("- name: {name}\n  user:\n    token: t-{name}\n"));
        }
        text.push_str("contexts:\n");
        for name in names {
            text.push_str(&format!(
                "- name: {name}\n  context:\n    cluster: {name}\n    user: {name}\n"
            ));
        }
        if let Some(current) = current {
            text.push_str(&format!("current-context: {current}\n"));
        }
        text
    }

    fn target(paths: Vec<PathBuf>) -> KubeTarget {
        KubeTarget {
            kubeconfig: paths,
            kubeconfig_source: crate::env_vars::KUBECONFIG.to_string(),
            context: None,
            derived_context: None,
        }
    }

    #[test]
    fn two_files_merge_with_the_first_file_winning_each_key() {
        let dir = Dir::new();
        let first = dir.kubeconfig("a", &["shared", "only-a"], None);
        let second = dir.kubeconfig("b", &["shared", "only-b"], Some("only-b"));
        let merged = read_merged(&target(vec![first.clone(), second.clone()])).expect("merged");

        assert_eq!(merged.files_read, vec![first, second]);
        assert_eq!(
            context_names(&merged.config),
            ["shared", "only-a", "only-b"]
        );
        assert_eq!(
            server_url(&merged, "shared").expect("server"),
            "https://a:6443"
        );
        assert_eq!(
            server_url(&merged, "only-b").expect("server"),
            "https://b:6443"
        );
    }

    #[test]
    fn current_context_comes_from_the_first_file_that_sets_it() {
        let dir = Dir::new();
        let unset = dir.kubeconfig("a", &["x"], None);
        let empty = dir.write(
            "b",
            &format!(
                "{}current-context: \"\"\n",
                kubeconfig(&["y"], "https://b:6443", None)
            ),
        );
        let sets_z = dir.kubeconfig("c", &["z"], Some("z"));
        let sets_x = dir.kubeconfig("d", &[], Some("x"));
        let merged = read_merged(&target(vec![unset, empty, sets_z, sets_x])).expect("merged");

        assert_eq!(merged.config.current_context.as_deref(), Some("z"));
        assert_eq!(
            choose_context(&merged, &target(vec![])).expect("context"),
            "z"
        );
    }

    #[test]
    fn missing_files_are_skipped() {
        let dir = Dir::new();
        let missing = dir.join("missing");
        let present = dir.kubeconfig("b", &["kind-kind"], Some("kind-kind"));
        let merged = read_merged(&target(vec![missing, present.clone()])).expect("merged");

        assert_eq!(merged.files_read, vec![present]);
        assert_eq!(merged.config.current_context.as_deref(), Some("kind-kind"));
    }

    #[test]
    fn no_existing_file_is_a_usage_error_naming_every_path_tried() {
        let dir = Dir::new();
        let first = dir.join("one");
        let second = dir.join("two");
        let error =
            read_merged(&target(vec![first.clone(), second.clone()])).expect_err("none exists");
        let failure = Failure::from(error);

        assert_eq!(failure.class, FailureClass::Usage);
        assert_eq!(
            failure.message,
            format!(
                "no kubeconfig found: none of {}, {} exists (from KUBECONFIG); create a cluster with ksail cluster create, or pass --kubeconfig",
                first.display(),
                second.display()
            )
        );
    }

    #[test]
    fn a_single_missing_file_is_named() {
        let dir = Dir::new();
        let only = dir.join("config");
        let mut target = target(vec![only.clone()]);
        target.kubeconfig_source = "--kubeconfig".to_string();
        let message = read_merged(&target).expect_err("missing").to_string();

        assert!(
            message.starts_with(&format!(
                "no kubeconfig found: {} does not exist (from --kubeconfig);",
                only.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn b16_unknown_context_names_the_context_and_the_files_read() {
        let dir = Dir::new();
        let first = dir.kubeconfig("a", &["kind-kind"], Some("kind-kind"));
        let second = dir.kubeconfig("b", &["k3d-dev"], None);
        let merged = read_merged(&target(vec![first.clone(), second.clone()])).expect("merged");
        let mut explicit = target(vec![]);
        explicit.context = Some("nope".to_string());
        let failure = Failure::from(choose_context(&merged, &explicit).expect_err("unknown"));

        assert_eq!(failure.class, FailureClass::Usage);
        assert_eq!(
            failure.message,
            format!(
                "unknown kubeconfig context \"nope\": not defined in {}, {} (defined: kind-kind, k3d-dev); pass --context with a defined context, or fix spec.cluster.connection.context",
                first.display(),
                second.display()
            )
        );
    }

    #[test]
    fn explicit_context_wins_over_derived_and_current() {
        let dir = Dir::new();
        let file = dir.kubeconfig("a", &["kind-dev", "explicit", "current"], Some("current"));
        let merged = read_merged(&target(vec![file])).expect("merged");
        let mut both = target(vec![]);
        both.context = Some("explicit".to_string());
        both.derived_context = Some("kind-dev".to_string());

        assert_eq!(choose_context(&merged, &both).expect("context"), "explicit");
    }

    #[test]
    fn derived_context_wins_over_current_context() {
        let dir = Dir::new();
        let file = dir.kubeconfig("a", &["kind-dev", "current"], Some("current"));
        let merged = read_merged(&target(vec![file])).expect("merged");
        let mut derived = target(vec![]);
        derived.derived_context = Some("kind-dev".to_string());

        assert_eq!(
            choose_context(&merged, &derived).expect("context"),
            "kind-dev"
        );
    }

    #[test]
    fn a_missing_derived_context_says_it_was_derived() {
        let dir = Dir::new();
        let file = dir.kubeconfig("a", &["current"], Some("current"));
        let merged = read_merged(&target(vec![file])).expect("merged");
        let mut derived = target(vec![]);
        derived.derived_context = Some("k3d-dev".to_string());
        let error = choose_context(&merged, &derived).expect_err("unknown");

        assert!(matches!(
            error,
            TargetError::UnknownContext {
                origin: ContextOrigin::Derived,
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.starts_with(
                "unknown kubeconfig context \"k3d-dev\" (derived from the cluster name):"
            ),
            "{message}"
        );
        assert!(message.ends_with("create the cluster with ksail cluster create, or pass --context with a defined context"), "{message}");
    }

    #[test]
    fn no_context_at_all_is_a_clear_usage_error() {
        let dir = Dir::new();
        let file = dir.kubeconfig("a", &["kind-kind"], None);
        let merged = read_merged(&target(vec![file.clone()])).expect("merged");
        let failure =
            Failure::from(choose_context(&merged, &target(vec![])).expect_err("no context"));

        assert_eq!(failure.class, FailureClass::Usage);
        assert_eq!(
            failure.message,
            format!(
                "no kubeconfig context selected: {} sets no current-context; pass --context, set spec.cluster.connection.context, or run kubectl config use-context <name>",
                file.display()
            )
        );
    }

    #[test]
    fn a_context_naming_an_undefined_cluster_is_a_usage_error() {
        let dir = Dir::new();
        let text = "contexts:\n- name: c\n  context:\n    cluster: gone\n    user: u\ncurrent-context: c\n";
        let file = dir.write("a", text);
        let merged = read_merged(&target(vec![file])).expect("merged");
        let context = choose_context(&merged, &target(vec![])).expect("context");

        assert!(matches!(
            server_url(&merged, &context),
            Err(TargetError::UnknownCluster { cluster, .. }) if cluster == "gone"
        ));
    }

    #[test]
    fn invalid_yaml_names_the_file_but_never_quotes_its_content() {
        let dir = Dir::new();
        let file = dir.write(
            "a",
            "users:\n- name: u\n  user:\n    token: [s3cr3t-token\n",
        );
        let message = read_merged(&target(vec![file.clone()]))
            .expect_err("invalid")
            .to_string();

        assert!(
            message.starts_with(&format!(
                "cannot read kubeconfig {}: not a valid kubeconfig",
                file.display()
            )),
            "{message}"
        );
        assert!(!message.contains("s3cr3t"), "{message}");
    }

    #[test]
    fn a_directory_in_the_list_is_unreadable_not_skipped() {
        let dir = Dir::new();
        let error = read_merged(&target(vec![dir.0.path().to_path_buf()])).expect_err("directory");

        assert!(matches!(error, TargetError::Unreadable { .. }), "{error:?}");
    }
}
