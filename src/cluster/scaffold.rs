//! The files `cluster init` writes (cluster.md#cluster-init), as pure functions of the validated
//! options: `ksail.yaml` with only non-default keys, the Kind or K3d config with its registry
//! mirror, and the empty kustomization. No IO here; `cluster create` reuses
//! [`distribution_config`] when the configured file is missing.

use std::fmt::Write as _;

use crate::config::{API_VERSION, Distribution, GitOpsEngine, KIND, Key};
use crate::resolve::{IN_CLUSTER_REGISTRY_PORT, local_registry_container};
use crate::yaml::{self, CoreValue, Value};

/// The editor link on the first line of `ksail.yaml` (config.md#json-schema): the schema in the
/// published repository at this release's tag.
pub const SCHEMA_URL: &str = concat!(
    "https://raw.githubusercontent.com/devantler-tech/ksail-rs/v",
    env!("CARGO_PKG_VERSION"),
    "/schemas/ksail.schema.json"
);

/// The kustomization written into the source directory: a valid, empty entry point.
pub const KUSTOMIZATION_YAML: &str =
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n";

/// The `ksail.yaml` values `cluster init` writes. `None` (or the default) means "leave the key
/// out"; deciding what counts as default is the caller's job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KsailYaml {
    pub name: Option<String>,
    /// `None` for Vanilla.
    pub distribution: Option<Distribution>,
    pub distribution_config: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    /// `None` for `None`.
    pub gitops_engine: Option<GitOpsEngine>,
    /// Written exactly as given (`${VAR}` placeholders stay).
    pub registry: Option<String>,
    pub source_directory: Option<String>,
    pub kustomization_file: Option<String>,
}

/// `ksail.yaml`: the schema line, `apiVersion`, `kind`, then the set keys in the order of the
/// spec's table (metadata, cluster, workload), nested with two-space indentation.
pub fn ksail_yaml(values: &KsailYaml) -> String {
    let mut out = format!(
        "# yaml-language-server: $schema={SCHEMA_URL}\napiVersion: {API_VERSION}\nkind: {KIND}\n"
    );
    let entries = [
        (Key::MetadataName, values.name.clone()),
        (
            Key::Distribution,
            values.distribution.map(|d| d.as_str().to_string()),
        ),
        (Key::DistributionConfig, values.distribution_config.clone()),
        (Key::Kubeconfig, values.kubeconfig.clone()),
        (Key::Context, values.context.clone()),
        (
            Key::GitOpsEngine,
            values.gitops_engine.map(|e| e.as_str().to_string()),
        ),
        (Key::Registry, values.registry.clone()),
        (Key::SourceDirectory, values.source_directory.clone()),
        (Key::KustomizationFile, values.kustomization_file.clone()),
    ];
    // Keys sharing a parent are adjacent in this order, so each parent mapping opens once.
    let mut open: Vec<&str> = Vec::new();
    for (key, value) in entries {
        let Some(value) = value else { continue };
        let segments: Vec<&str> = key.path().split('.').collect();
        let Some((leaf, parents)) = segments.split_last() else {
            continue;
        };
        let common = open
            .iter()
            .zip(parents)
            .take_while(|(open, parent)| open == parent)
            .count();
        open.truncate(common);
        for (depth, parent) in parents.iter().enumerate().skip(common) {
            let _ = writeln!(out, "{}{parent}:", indent(depth));
            open.push(parent);
        }
        let _ = writeln!(
            out,
            "{}{leaf}: {}",
            indent(parents.len()),
            yaml_scalar(&value)
        );
    }
    out
}

/// The distribution's own config file (`kind.yaml` or `k3d.yaml` content). `cluster` is the
/// cluster name (or the distribution default); `local_registry` is the `host:port` of a local
/// (not external) registry, which gets a containerd mirror (cluster.md#registry-mirror).
/// `None` for distributions that ksail does not provision.
pub fn distribution_config(
    distribution: Distribution,
    cluster: &str,
    local_registry: Option<&str>,
) -> Option<String> {
    match distribution {
        Distribution::Vanilla => Some(kind_yaml(cluster)),
        Distribution::K3s => Some(k3d_yaml(cluster, local_registry)),
        _ => None,
    }
}

/// Kind has no field for containerd host files, so the config only points containerd at the
/// certs.d directory; `cluster create` writes the host files into each node (the local registry
/// and the pull-through mirrors, which are on by default, so the patch is always there).
fn kind_yaml(cluster: &str) -> String {
    let mut out = format!(
        "apiVersion: kind.x-k8s.io/v1alpha4\nkind: Cluster\nname: {}\n",
        yaml_scalar(cluster)
    );
    out.push_str(concat!(
        "containerdConfigPatches:\n",
        "  - |-\n",
        "    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n",
        "      config_path = \"/etc/containerd/certs.d\"\n",
    ));
    out
}

/// K3d takes the whole mirror mapping inline: both the host-side name and the in-network name
/// resolve to the registry container.
fn k3d_yaml(cluster: &str, local_registry: Option<&str>) -> String {
    let mut out = format!(
        "apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: {}\n",
        yaml_scalar(cluster)
    );
    if let Some(host_port) = local_registry {
        out.push_str("registries:\n  config: |\n");
        for line in k3s_registries(host_port, &local_registry_container(cluster)).lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// K3s's `registries.yaml`: both the host-side name (`localhost:<port>`) and the in-network
/// name (`<container>:5000`) mirror to the registry container.
pub fn k3s_registries(host_port: &str, container: &str) -> String {
    let in_network = format!("{container}:{IN_CLUSTER_REGISTRY_PORT}");
    let endpoint = format!("http://{in_network}");
    let mut out = String::from("mirrors:\n");
    for mirror in [host_port, in_network.as_str()] {
        out.push_str(&k3s_mirror_entry(mirror, &endpoint));
    }
    out
}

/// One entry under `mirrors:` of K3s's `registries.yaml`.
pub fn k3s_mirror_entry(host: &str, endpoint: &str) -> String {
    format!("  \"{host}\":\n    endpoint:\n      - {endpoint}\n")
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

/// `text` as a YAML scalar: plain when it reads back as exactly this string under the core
/// schema (checked with the same parser that loads the file), else double-quoted.
pub fn yaml_scalar(text: &str) -> String {
    if reads_back_plain(text) {
        text.to_string()
    } else {
        double_quoted(text)
    }
}

fn reads_back_plain(text: &str) -> bool {
    if text.is_empty() || text.trim() != text || text.chars().any(char::is_control) {
        return false;
    }
    let Ok(documents) = yaml::parse_documents(&format!("k: {text}\n")) else {
        return false;
    };
    match documents.as_slice() {
        [root] => root.get("k").is_some_and(|node| match &node.value {
            Value::Scalar(scalar) => {
                scalar.plain && scalar.text == text && scalar.core_value() == CoreValue::Str(text)
            }
            _ => false,
        }),
        _ => false,
    }
}

fn double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_url_names_the_schema_file() {
        assert!(SCHEMA_URL.starts_with("https://"));
        assert!(SCHEMA_URL.ends_with("/schemas/ksail.schema.json"));
    }

    #[test]
    fn documented_workflow_ksail_yaml() {
        let text = ksail_yaml(&KsailYaml {
            gitops_engine: Some(GitOpsEngine::Flux),
            registry: Some("localhost:5050".into()),
            ..KsailYaml::default()
        });
        assert_eq!(
            text,
            format!(
                "# yaml-language-server: $schema={SCHEMA_URL}\napiVersion: ksail.io/v1alpha1\nkind: Cluster\nspec:\n  cluster:\n    gitOpsEngine: Flux\n    localRegistry:\n      registry: localhost:5050\n"
            )
        );
    }

    #[test]
    fn every_key_in_table_order() {
        let text = ksail_yaml(&KsailYaml {
            name: Some("dev".into()),
            distribution: Some(Distribution::K3s),
            distribution_config: Some("clusters/k3d.yaml".into()),
            kubeconfig: Some("~/.kube/dev".into()),
            context: Some("k3d-dev".into()),
            gitops_engine: Some(GitOpsEngine::ArgoCD),
            registry: Some("ci:${GHCR_TOKEN}@ghcr.io/acme/manifests".into()),
            source_directory: Some("manifests".into()),
            kustomization_file: Some("overlays/dev".into()),
        });
        let body: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(
            body,
            [
                "metadata:",
                "  name: dev",
                "spec:",
                "  cluster:",
                "    distribution: K3s",
                "    distributionConfig: clusters/k3d.yaml",
                "    connection:",
                "      kubeconfig: ~/.kube/dev",
                "      context: k3d-dev",
                "    gitOpsEngine: ArgoCD",
                "    localRegistry:",
                "      registry: ci:${GHCR_TOKEN}@ghcr.io/acme/manifests",
                "  workload:",
                "    sourceDirectory: manifests",
                "    kustomizationFile: overlays/dev",
            ]
        );
    }

    #[test]
    fn the_generated_file_loads_without_warnings() {
        let values = KsailYaml {
            name: Some("dev".into()),
            distribution: Some(Distribution::K3s),
            distribution_config: Some("true".into()),
            kubeconfig: Some("~/.kube/dev".into()),
            context: Some("kind: dev #1".into()),
            gitops_engine: Some(GitOpsEngine::Flux),
            registry: Some("ci:${GHCR_TOKEN}@ghcr.io/acme/manifests".into()),
            source_directory: Some("deploy".into()),
            kustomization_file: Some("overlays/dev".into()),
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ksail.yaml");
        std::fs::write(&path, ksail_yaml(&values)).expect("write ksail.yaml");
        let env = |name: &str| (name == "GHCR_TOKEN").then(|| "s3cr3t".to_string());
        let loaded = crate::config::load(&path, &env).expect("loads");
        assert_eq!(loaded.warnings, Vec::<String>::new());
        let effective = crate::config::effective(
            Some(&loaded),
            &|_| None,
            &crate::config::FlagOverrides::default(),
            dir.path(),
        )
        .expect("effective settings");
        assert_eq!(effective.name.map(|n| n.value), Some("dev".into()));
        assert_eq!(effective.distribution.value, Distribution::K3s);
        assert_eq!(effective.gitops_engine.value, GitOpsEngine::Flux);
        assert_eq!(
            effective.distribution_config.map(|d| d.value.written),
            Some("true".into()),
            "a boolean-looking string is quoted"
        );
        assert_eq!(
            effective.context.map(|c| c.value),
            Some("kind: dev #1".into()),
            "': ' and ' #' force quotes"
        );
        assert_eq!(
            effective.kustomization_file.map(|k| k.value),
            Some("overlays/dev".into())
        );
        assert_eq!(
            effective.source_directory.value.written,
            "deploy".to_string()
        );
    }

    #[test]
    fn the_default_file_loads_without_warnings() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ksail.yaml");
        std::fs::write(&path, ksail_yaml(&KsailYaml::default())).expect("write");
        let loaded = crate::config::load(&path, &|_| None).expect("loads");
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert!(loaded.values.is_empty());
    }

    #[test]
    fn scalars_are_plain_when_yaml_allows() {
        for plain in [
            "localhost:5050",
            "ci:${GHCR_TOKEN}@ghcr.io/acme",
            "~/.kube/config",
            "kind-dev",
            "a b",
            "k8s/",
            "./k8s",
        ] {
            assert_eq!(yaml_scalar(plain), plain, "{plain}");
        }
        for (text, quoted) in [
            ("", r#""""#),
            ("true", r#""true""#),
            ("null", r#""null""#),
            ("~", r#""~""#),
            ("5050", r#""5050""#),
            ("1.5", r#""1.5""#),
            ("a: b", r#""a: b""#),
            ("a #b", r#""a #b""#),
            ("-x", "-x"),
            ("- x", r#""- x""#),
            ("*x", r#""*x""#),
            ("&x", r#""&x""#),
            ("!x", r#""!x""#),
            ("[x]", r#""[x]""#),
            ("{x}", r#""{x}""#),
            ("@x", r#""@x""#),
            ("'x'", r#""'x'""#),
            ("\"x\"", r#""\"x\"""#),
            (" x", r#"" x""#),
            ("x\ny", r#""x\ny""#),
            ("a\\b", r"a\b"),
        ] {
            assert_eq!(yaml_scalar(text), quoted, "{text:?}");
        }
    }

    #[test]
    fn quoted_scalars_read_back_unchanged() {
        for text in [
            "true",
            "a: b",
            " x",
            "x\ny",
            "\"q\" \\",
            "tab\there",
            "\u{1}",
        ] {
            let documents =
                yaml::parse_documents(&format!("k: {}\n", yaml_scalar(text))).expect("parses");
            assert_eq!(documents[0].get("k").and_then(|n| n.as_str()), Some(text));
        }
    }

    #[test]
    fn kind_config_with_and_without_a_local_registry() {
        // The same either way: the pull-through mirrors need the certs.d patch too.
        assert_eq!(
            distribution_config(Distribution::Vanilla, "kind", None),
            distribution_config(Distribution::Vanilla, "kind", Some("localhost:5050"))
        );
        assert_eq!(
            distribution_config(Distribution::Vanilla, "kind", Some("localhost:5050")).as_deref(),
            Some(include_str!("../../tests/fixtures/init/kind.yaml"))
        );
    }

    #[test]
    fn k3d_config_with_and_without_a_local_registry() {
        assert_eq!(
            distribution_config(Distribution::K3s, "k3d-default", None).as_deref(),
            Some("apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: k3d-default\n")
        );
        assert_eq!(
            distribution_config(Distribution::K3s, "dev", Some("localhost:5050")).as_deref(),
            Some(include_str!(
                "../../tests/fixtures/init/k3d-dev-local-registry.yaml"
            ))
        );
        assert_eq!(distribution_config(Distribution::Talos, "x", None), None);
    }

    #[test]
    fn generated_distribution_configs_parse() {
        for (distribution, registry) in [
            (Distribution::Vanilla, Some("localhost:5050")),
            (Distribution::K3s, Some("[::1]:5050")),
        ] {
            let text = distribution_config(distribution, "dev", registry).expect("supported");
            yaml::parse_documents(&text).expect("valid YAML");
        }
        yaml::parse_documents(KUSTOMIZATION_YAML).expect("valid YAML");
    }
}
