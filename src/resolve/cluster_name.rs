//! The cluster name (resolution.md "Cluster name"): flag, environment, `metadata.name`, the name
//! inside the distribution config, then the distribution's default. It decides the in-cluster
//! registry host `<cluster>-local-registry`.

use std::path::Path;

use crate::yaml::{self, Document};

use super::ResolveError;

/// Find the cluster name. Empty strings count as unset. Only this function reads a file: the
/// distribution config (`kind.yaml` for Vanilla, `k3d.yaml` for K3s), when it exists.
pub fn cluster_name(
    flag: Option<&str>,
    env: Option<&str>,
    metadata_name: Option<&str>,
    distribution: &str,
    distribution_config: Option<&Path>,
) -> Result<Option<String>, ResolveError> {
    let explicit = [flag, env, metadata_name]
        .into_iter()
        .flatten()
        .find(|name| !name.is_empty());
    if let Some(name) = explicit {
        return Ok(Some(name.to_string()));
    }
    if let Some(path) = distribution_config
        && let Some(name) = name_from_distribution_config(distribution, path)?
    {
        return Ok(Some(name));
    }
    Ok(default_cluster_name(distribution).map(str::to_string))
}

/// The name a distribution gives a cluster when nothing names it. Talos and VCluster are listed
/// only so that files written for ksail (Go) compute the same in-cluster URL.
pub fn default_cluster_name(distribution: &str) -> Option<&'static str> {
    match distribution.to_ascii_lowercase().as_str() {
        "vanilla" => Some("kind"),
        "k3s" => Some("k3d-default"),
        "talos" => Some("talos-default"),
        "vcluster" => Some("vcluster-default"),
        _ => None,
    }
}

/// Where the name lives in the distribution's config file.
fn name_key_path(distribution: &str) -> Option<&'static [&'static str]> {
    match distribution.to_ascii_lowercase().as_str() {
        "vanilla" => Some(&["name"]),
        "k3s" => Some(&["metadata", "name"]),
        _ => None,
    }
}

fn name_from_distribution_config(
    distribution: &str,
    path: &Path,
) -> Result<Option<String>, ResolveError> {
    let Some(key_path) = name_key_path(distribution) else {
        return Ok(None);
    };
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ResolveError::DistributionConfigRead {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let documents =
        yaml::parse_documents(&source).map_err(|error| ResolveError::DistributionConfigSyntax {
            path: path.to_path_buf(),
            pos: error.pos,
            message: error.message,
        })?;
    Ok(name_in_documents(&documents, key_path))
}

/// The first non-empty string at `key_path` in the first document. A missing or non-string
/// value is simply "no name here": kind and k3d validate their own files.
fn name_in_documents(documents: &[Document], key_path: &[&str]) -> Option<String> {
    let mut node = documents.first()?;
    for key in key_path {
        node = node.get(key)?;
    }
    node.as_str()
        .filter(|name| !name.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, content: &str) -> std::path::PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, content).expect("write config");
        path
    }

    #[test]
    fn explicit_sources_win_in_order() {
        let name = |flag, env, meta| cluster_name(flag, env, meta, "Vanilla", None).expect("ok");
        assert_eq!(name(Some("a"), Some("b"), Some("c")), Some("a".into()));
        assert_eq!(name(None, Some("b"), Some("c")), Some("b".into()));
        assert_eq!(name(Some(""), Some(""), Some("c")), Some("c".into()));
        assert_eq!(name(None, None, None), Some("kind".into()));
    }

    #[test]
    fn distribution_defaults() {
        for (distribution, expected) in [
            ("Vanilla", Some("kind")),
            ("K3s", Some("k3d-default")),
            ("Talos", Some("talos-default")),
            ("VCluster", Some("vcluster-default")),
            ("KWOK", None),
            ("EKS", None),
        ] {
            assert_eq!(
                cluster_name(None, None, None, distribution, None).expect("ok"),
                expected.map(str::to_string),
                "{distribution}"
            );
        }
    }

    #[test]
    fn kind_and_k3d_files_name_the_cluster() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kind = write(
            dir.path(),
            "kind.yaml",
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: playground\n",
        );
        let k3d = write(
            dir.path(),
            "k3d.yaml",
            "apiVersion: k3d.io/v1alpha5\nkind: Simple\nmetadata:\n  name: lab\n",
        );
        let name = |distribution, path: &Path| {
            cluster_name(None, None, None, distribution, Some(path)).expect("ok")
        };
        assert_eq!(name("Vanilla", &kind), Some("playground".into()));
        assert_eq!(name("K3s", &k3d), Some("lab".into()));
        // The file only counts for its own distribution's key.
        assert_eq!(name("K3s", &kind), Some("k3d-default".into()));
        assert_eq!(
            name("Vanilla", &dir.path().join("missing.yaml")),
            Some("kind".into())
        );
        // metadata.name beats the file.
        assert_eq!(
            cluster_name(None, None, Some("dev"), "Vanilla", Some(&kind)).expect("ok"),
            Some("dev".into())
        );
    }

    #[test]
    fn a_file_without_a_name_falls_back_to_the_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kind = write(dir.path(), "kind.yaml", "kind: Cluster\nname:\n");
        assert_eq!(
            cluster_name(None, None, None, "Vanilla", Some(&kind)).expect("ok"),
            Some("kind".into())
        );
    }

    #[test]
    fn a_syntax_error_names_the_file_and_position() {
        let dir = tempfile::tempdir().expect("temp dir");
        let kind = write(dir.path(), "kind.yaml", "name: a\nname: b\n");
        let error = cluster_name(None, None, None, "Vanilla", Some(&kind)).expect_err("dup key");
        let message = error.to_string();
        assert!(message.contains("kind.yaml:2:"), "{message}");
        let broken = write(dir.path(), "k3d.yaml", "metadata: [unclosed\n");
        let error = cluster_name(None, None, None, "K3s", Some(&broken)).expect_err("syntax");
        assert!(
            matches!(error, ResolveError::DistributionConfigSyntax { .. }),
            "{error}"
        );
    }
}
