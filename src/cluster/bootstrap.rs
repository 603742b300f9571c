//! The bootstrap objects of cluster.md "Bootstrap objects", as plain JSON values: the Flux pull
//! Secret and FluxInstance, the Argo CD repository Secret and Application. Pure: the caller
//! applies them server-side.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::settings::cluster::PullCredentials;

use crate::gitops::argocd::resources as argocd;
use crate::gitops::flux::resources as flux;

/// The pull Secret of the FluxInstance (`spec.sync.pullSecret`).
pub const PULL_SECRET_NAME: &str = "ksail-registry-credentials";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// The JSON patch the operator renders into its OCIRepository for a plain-HTTP registry.
const INSECURE_PATCH: &str = "- op: add\n  path: /spec/insecure\n  value: true\n";

/// What the sync objects point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSpec<'a> {
    /// In-cluster URL without tag (`oci://kind-local-registry:5000/k8s`).
    pub url: &'a str,
    pub tag: &'a str,
    /// `sync.host`, the key of the pull Secret's `auths`.
    pub host: &'a str,
    pub kustomization_file: Option<&'a str>,
    /// The in-cluster registry is plain HTTP.
    pub http: bool,
    pub pull: Option<&'a PullCredentials>,
    /// The public key PEM the sync source verifies signatures with, when signing is configured.
    pub verify: Option<&'a str>,
}

/// `flux-system/ksail-registry-credentials` (`kubernetes.io/dockerconfigjson`).
pub fn flux_pull_secret(host: &str, pull: &PullCredentials) -> Value {
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", pull.user, pull.password));
    let config = json!({
        "auths": {
            host: {"username": pull.user, "password": pull.password, "auth": auth}
        }
    });
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": PULL_SECRET_NAME,
            "namespace": flux::NAMESPACE,
            "labels": {MANAGED_BY_LABEL: "ksail"},
        },
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config.to_string()},
    })
}

/// `flux-system/ksail-cosign-public-key`: the public key under `cosign.pub`.
pub fn flux_verify_secret(public_key_pem: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": flux::VERIFY_SECRET_NAME,
            "namespace": flux::NAMESPACE,
            "labels": {MANAGED_BY_LABEL: "ksail"},
        },
        "type": "Opaque",
        "stringData": {flux::VERIFY_SECRET_KEY: public_key_pem},
    })
}

/// The JSON patch that makes the operator's OCIRepository verify with that Secret
/// (source-controller `spec.verify`, provider cosign, key-based).
fn verify_patch() -> String {
    format!(
        "- op: add\n  path: /spec/verify\n  value:\n    provider: cosign\n    secretRef:\n      name: {}\n",
        flux::VERIFY_SECRET_NAME
    )
}

/// FluxInstance `flux-system/flux`.
pub fn flux_instance(sync: &SyncSpec, operator_version: &str, distribution_version: &str) -> Value {
    let path = match sync.kustomization_file {
        Some(file) => format!("./{file}"),
        None => "./".to_string(),
    };
    let mut sync_spec = json!({
        "kind": "OCIRepository",
        "url": sync.url,
        "ref": sync.tag,
        "path": path,
        "provider": "generic",
        "interval": "1m",
    });
    if sync.pull.is_some() {
        sync_spec["pullSecret"] = json!(PULL_SECRET_NAME);
    }
    let mut spec = json!({
        "distribution": {
            "version": distribution_version,
            "registry": "ghcr.io/fluxcd",
            "artifact": format!(
                "oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:v{operator_version}"
            ),
        },
        "sync": sync_spec,
    });
    let target = json!({"kind": "OCIRepository", "name": flux::SYNC_NAME});
    let mut patches = Vec::new();
    if sync.http {
        patches.push(json!({"target": target, "patch": INSECURE_PATCH}));
    }
    if sync.verify.is_some() {
        patches.push(json!({"target": target, "patch": verify_patch()}));
    }
    if !patches.is_empty() {
        spec["kustomize"] = json!({ "patches": patches });
    }
    json!({
        "apiVersion": flux::FLUX_INSTANCE.api_version(),
        "kind": "FluxInstance",
        "metadata": {"name": flux::INSTANCE_NAME, "namespace": flux::NAMESPACE},
        "spec": spec,
    })
}

/// `argocd/ksail-local-registry-repo`, labelled as an Argo CD repository.
pub fn argocd_repository_secret(sync: &SyncSpec) -> Value {
    let mut data = json!({"type": "oci", "url": sync.url});
    if let Some(pull) = sync.pull {
        data["username"] = json!(pull.user);
        data["password"] = json!(pull.password);
    }
    if sync.http {
        data["insecureOCIForceHttp"] = json!("true");
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": argocd::REPOSITORY_SECRET_NAME,
            "namespace": argocd::NAMESPACE,
            "labels": {argocd::SECRET_TYPE_LABEL: "repository"},
        },
        "stringData": data,
    })
}

/// Application `argocd/ksail`.
pub fn argocd_application(sync: &SyncSpec) -> Value {
    json!({
        "apiVersion": argocd::APPLICATION.api_version(),
        "kind": "Application",
        "metadata": {"name": argocd::APPLICATION_NAME, "namespace": argocd::NAMESPACE},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": sync.url,
                "targetRevision": sync.tag,
                "path": sync.kustomization_file.unwrap_or("."),
            },
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": "default",
            },
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_sync() -> SyncSpec<'static> {
        SyncSpec {
            url: "oci://kind-local-registry:5000/k8s",
            tag: "dev",
            host: "localhost:5050",
            kustomization_file: None,
            http: true,
            pull: None,
            verify: None,
        }
    }

    #[test]
    fn a_signing_key_adds_the_verify_patch_and_its_secret() {
        let sync = SyncSpec {
            verify: Some("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            ..local_sync()
        };
        let instance = flux_instance(&sync, "0.58.1", "2.x");
        let patches = &instance["spec"]["kustomize"]["patches"];
        assert_eq!(
            patches[0]["patch"], INSECURE_PATCH,
            "the insecure patch stays first"
        );
        assert_eq!(patches[1]["target"]["kind"], "OCIRepository");
        let patch: Value = serde_saphyr::from_str(patches[1]["patch"].as_str().unwrap()).unwrap();
        assert_eq!(
            patch,
            json!([{"op": "add", "path": "/spec/verify",
                    "value": {"provider": "cosign", "secretRef": {"name": flux::VERIFY_SECRET_NAME}}}])
        );
        let secret = flux_verify_secret(sync.verify.unwrap());
        assert_eq!(secret["metadata"]["namespace"], "flux-system");
        assert_eq!(secret["stringData"]["cosign.pub"], sync.verify.unwrap());
    }

    #[test]
    fn flux_instance_golden_for_a_local_registry() {
        let expected: Value = serde_saphyr::from_str(
            r#"
apiVersion: fluxcd.controlplane.io/v1
kind: FluxInstance
metadata:
  name: flux
  namespace: flux-system
spec:
  distribution:
    version: "2.x"
    registry: ghcr.io/fluxcd
    artifact: oci://ghcr.io/controlplaneio-fluxcd/flux-operator-manifests:v0.58.1
  sync:
    kind: OCIRepository
    url: oci://kind-local-registry:5000/k8s
    ref: dev
    path: ./
    provider: generic
    interval: 1m
  kustomize:
    patches:
      - target:
          kind: OCIRepository
          name: flux-system
        patch: |
          - op: add
            path: /spec/insecure
            value: true
"#,
        )
        .unwrap();
        assert_eq!(flux_instance(&local_sync(), "0.58.1", "2.x"), expected);
    }

    #[test]
    fn flux_instance_for_external_https_with_pull_secret() {
        let pull = PullCredentials {
            user: "u".into(),
            password: "p".into(),
        };
        let sync = SyncSpec {
            url: "oci://ghcr.io/org/k8s",
            host: "ghcr.io",
            kustomization_file: Some("clusters/dev"),
            http: false,
            pull: Some(&pull),
            ..local_sync()
        };
        let instance = flux_instance(&sync, "0.58.1", "2.x");
        assert!(instance["spec"].get("kustomize").is_none());
        assert_eq!(instance["spec"]["sync"]["pullSecret"], PULL_SECRET_NAME);
        assert_eq!(instance["spec"]["sync"]["path"], "./clusters/dev");
        let secret = flux_pull_secret(sync.host, &pull);
        assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
        assert_eq!(secret["metadata"]["labels"][MANAGED_BY_LABEL], "ksail");
        let config: Value =
            serde_json::from_str(secret["stringData"][".dockerconfigjson"].as_str().unwrap())
                .unwrap();
        assert_eq!(config["auths"]["ghcr.io"]["username"], "u");
        assert_eq!(config["auths"]["ghcr.io"]["password"], "p");
    }

    #[test]
    fn argocd_goldens() {
        // The real tier applies the same file (tests/real_argocd.rs).
        let expected: Value = serde_saphyr::from_str(include_str!(
            "../../tests/fixtures/bootstrap/argocd-application.yaml"
        ))
        .unwrap();
        assert_eq!(argocd_application(&local_sync()), expected);
        let secret = argocd_repository_secret(&local_sync());
        assert_eq!(
            secret["stringData"],
            json!({"type": "oci", "url": "oci://kind-local-registry:5000/k8s", "insecureOCIForceHttp": "true"})
        );
        assert_eq!(
            secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
            "repository"
        );
    }
}
