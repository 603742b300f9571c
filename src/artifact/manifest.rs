//! The OCI image manifest of the artifact (artifact.md#manifest, #config-blob) in its canonical
//! byte form, and the reading of a fetched manifest for the push's "unchanged" check.
//!
//! The canonical bytes are written out by hand in sorted key order rather than through a JSON map,
//! because a map's key order depends on crate features that another dependency may switch on.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::git::Annotations;
use super::pack::hex;

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Accepted from a registry in the unchanged check alongside the OCI type.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The config blob: the two bytes `{}`.
pub const CONFIG_BLOB: &[u8] = b"{}";
pub const CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// The canonical manifest bytes (keys sorted at every level, no whitespace, no trailing newline)
/// and their digest.
pub fn manifest_bytes(
    layer_digest: &str,
    layer_size: u64,
    annotations: &Annotations,
) -> (Vec<u8>, String) {
    // Keys appear in byte order: annotations < config < layers < mediaType < schemaVersion, and
    // the annotation keys created < revision < source.
    let text = format!(
        concat!(
            "{{\"annotations\":{{{}:{},{}:{},{}:{}}},",
            "\"config\":{{\"digest\":{},\"mediaType\":{},\"size\":{}}},",
            "\"layers\":[{{\"digest\":{},\"mediaType\":{},\"size\":{}}}],",
            "\"mediaType\":{},\"schemaVersion\":2}}"
        ),
        json_string(ANNOTATION_CREATED),
        json_string(&annotations.created),
        json_string(ANNOTATION_REVISION),
        json_string(&annotations.revision),
        json_string(ANNOTATION_SOURCE),
        json_string(&annotations.source),
        json_string(CONFIG_DIGEST),
        json_string(CONFIG_MEDIA_TYPE),
        CONFIG_BLOB.len(),
        json_string(layer_digest),
        json_string(LAYER_MEDIA_TYPE),
        layer_size,
        json_string(MANIFEST_MEDIA_TYPE),
    );
    let bytes = text.into_bytes();
    let digest = sha256_digest(&bytes);
    (bytes, digest)
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("serialising a string cannot fail")
}

/// What the unchanged check needs from a manifest already in the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestSummary {
    pub layer_digest: String,
    /// The `org.opencontainers.image.revision` annotation, if any.
    pub revision: Option<String>,
    /// The `org.opencontainers.image.created` annotation, if any.
    pub created: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FetchedManifest {
    schema_version: Option<u64>,
    media_type: Option<String>,
    config: Option<serde_json::Value>,
    layers: Option<Vec<FetchedDescriptor>>,
    annotations: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct FetchedDescriptor {
    digest: String,
}

/// The single layer digest and the revision annotation of `bytes`, if they are an image manifest
/// with exactly one layer; `None` for anything else (an index, several layers, not JSON).
pub fn parse_manifest_summary(bytes: &[u8]) -> Option<ManifestSummary> {
    let manifest: FetchedManifest = serde_json::from_slice(bytes).ok()?;
    if manifest.schema_version != Some(2) {
        return None;
    }
    match manifest.media_type.as_deref() {
        None | Some(MANIFEST_MEDIA_TYPE) | Some(DOCKER_MANIFEST_MEDIA_TYPE) => {}
        Some(_) => return None,
    }
    manifest.config.as_ref()?;
    let mut layers = manifest.layers?;
    if layers.len() != 1 {
        return None;
    }
    let layer = layers.remove(0);
    let annotation = |key: &str| {
        manifest
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(key))
            .and_then(|value| value.as_str().map(str::to_string))
    };
    Some(ManifestSummary {
        layer_digest: layer.digest,
        revision: annotation(ANNOTATION_REVISION),
        created: annotation(ANNOTATION_CREATED),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations() -> Annotations {
        Annotations {
            created: "2026-05-01T10:00:00Z".into(),
            revision: "main@sha1:0123456789abcdef0123456789abcdef01234567".into(),
            source: "https://github.com/acme/platform".into(),
        }
    }

    const LAYER: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn config_digest_is_the_hash_of_the_blob() {
        assert_eq!(sha256_digest(CONFIG_BLOB), CONFIG_DIGEST);
    }

    #[test]
    fn manifest_is_canonical_json() {
        let (bytes, digest) = manifest_bytes(LAYER, 3172, &annotations());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"annotations":{"org.opencontainers.image.created":"2026-05-01T10:00:00Z","#,
                r#""org.opencontainers.image.revision":"main@sha1:0123456789abcdef0123456789abcdef01234567","#,
                r#""org.opencontainers.image.source":"https://github.com/acme/platform"},"#,
                r#""config":{"digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","#,
                r#""mediaType":"application/vnd.cncf.flux.config.v1+json","size":2},"#,
                r#""layers":[{"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","#,
                r#""mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":3172}],"#,
                r#""mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}"#
            )
        );
        assert_eq!(digest, sha256_digest(&bytes));
        // Re-serialising through a sorted map gives the same bytes: the order is canonical.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let sorted = sort_keys(value);
        assert_eq!(serde_json::to_vec(&sorted).unwrap(), bytes);
    }

    fn sort_keys(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                serde_json::Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k, sort_keys(v)))
                        .collect(),
                )
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
            }
            other => other,
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut odd = annotations();
        odd.source = "a\"b\\c".into();
        let (bytes, _) = manifest_bytes(LAYER, 1, &odd);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["annotations"][ANNOTATION_SOURCE], "a\"b\\c");
    }

    #[test]
    fn summary_of_our_own_manifest() {
        let (bytes, _) = manifest_bytes(LAYER, 1, &annotations());
        assert_eq!(
            parse_manifest_summary(&bytes),
            Some(ManifestSummary {
                layer_digest: LAYER.into(),
                revision: Some("main@sha1:0123456789abcdef0123456789abcdef01234567".into()),
                created: Some("2026-05-01T10:00:00Z".into()),
            })
        );
    }

    #[test]
    fn summary_rejects_other_documents() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(parse_manifest_summary(index), None);
        let two_layers =
            br#"{"schemaVersion":2,"config":{},"layers":[{"digest":"a"},{"digest":"b"}]}"#;
        assert_eq!(parse_manifest_summary(two_layers), None);
        assert_eq!(parse_manifest_summary(b"not json"), None);
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[{"digest":"a"}]}"#;
        assert_eq!(
            parse_manifest_summary(docker),
            Some(ManifestSummary {
                layer_digest: "a".into(),
                revision: None,
                created: None,
            })
        );
    }
}
