//! Signatures stored the way cosign stores them without a transparency log (docs/signing.md
//! "In the registry"), which is what `cosign verify --key` and Flux's source-controller read:
//!
//! - tag `sha256-<hex>.sig` in the artifact's repository (cosign `pkg/oci/remote`
//!   `SignatureTag`), holding an OCI image manifest
//! - one layer per signature: the simple-signing payload (sigstore `pkg/signature/payload`)
//!   with media type `application/vnd.dev.cosign.simplesigning.v1+json` and the base64 signature
//!   in the annotation `dev.cosignproject.cosign/signature` (cosign `pkg/oci/static`)
//! - an OCI image config whose `rootfs.diff_ids` are the layers (go-containerregistry's empty
//!   image with the layers appended).
//!
//! Verifiers read only the layers: the payload's `docker-manifest-digest` must be the
//! artifact's digest and the annotation a signature of the payload.

use bytes::Bytes;
use p256::ecdsa::VerifyingKey;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Signer, verifies};
use crate::artifact::manifest::{MANIFEST_MEDIA_TYPE, sha256_digest};
use crate::registry::client::BlobBody;
use crate::registry::{RegistryClient, RegistryError};

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// sigstore `payload.CosignSignatureType`.
const SIGNATURE_TYPE: &str = "cosign container image signature";

/// `sha256:<hex>` → `sha256-<hex>.sig`.
pub fn signature_tag(manifest_digest: &str) -> String {
    format!("{}.sig", manifest_digest.replacen(':', "-", 1))
}

/// The simple-signing payload for the artifact `docker_reference@manifest_digest`, byte for
/// byte what cosign signs (Go's `encoding/json` of `payload.SimpleContainerImage`: struct field
/// order, no spaces, `optional` null).
pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct Simple<'a> {
        critical: Critical<'a>,
        optional: Option<()>,
    }
    #[derive(Serialize)]
    struct Critical<'a> {
        identity: Identity<'a>,
        image: Image<'a>,
        #[serde(rename = "type")]
        kind: &'a str,
    }
    #[derive(Serialize)]
    struct Identity<'a> {
        #[serde(rename = "docker-reference")]
        docker_reference: &'a str,
    }
    #[derive(Serialize)]
    struct Image<'a> {
        #[serde(rename = "docker-manifest-digest")]
        docker_manifest_digest: &'a str,
    }
    let simple = Simple {
        critical: Critical {
            identity: Identity { docker_reference },
            image: Image {
                docker_manifest_digest: manifest_digest,
            },
            kind: SIGNATURE_TYPE,
        },
        optional: None,
    };
    serde_json::to_vec(&simple).unwrap_or_default()
}

/// The signature image to write: its blobs and manifest.
#[derive(Debug, Clone)]
pub struct SignatureImage {
    pub payload: Bytes,
    pub payload_digest: String,
    pub config: Bytes,
    pub config_digest: String,
    pub manifest: Bytes,
    pub manifest_digest: String,
}

/// One layer descriptor of a signature manifest. The fields are in the order
/// go-containerregistry writes them, so that ksail's signature manifest is byte for byte the one
/// `cosign sign` writes for the same signature; annotations other signers put there (certificates,
/// bundles) are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Layer {
    fn signature(&self) -> Option<&str> {
        self.annotations
            .get(SIGNATURE_ANNOTATION)
            .map(String::as_str)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: Descriptor<'a>,
    layers: &'a [Layer],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor<'a> {
    media_type: &'a str,
    size: usize,
    digest: &'a str,
}

/// go-containerregistry's `v1.ConfigFile` of an empty image with the layers appended.
#[derive(Serialize)]
struct Config<'a> {
    architecture: &'a str,
    created: &'a str,
    history: [History<'a>; 1],
    os: &'a str,
    rootfs: RootFs<'a>,
    config: Empty,
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct Empty {}

/// Go's zero time, which go-containerregistry writes for an empty image.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The layers of an existing signature manifest (`None`: not an image manifest).
pub fn signature_layers(manifest: &[u8]) -> Option<Vec<Layer>> {
    #[derive(Deserialize)]
    struct Layers {
        layers: Vec<Layer>,
    }
    serde_json::from_slice::<Layers>(manifest)
        .ok()
        .map(|parsed| parsed.layers)
}

/// Whether `layers` already hold `key`'s signature of exactly `payload`.
pub fn holds_signature(layers: &[Layer], payload: &[u8], key: &VerifyingKey) -> bool {
    let digest = sha256_digest(payload);
    layers.iter().any(|layer| {
        layer.digest == digest
            && layer
                .signature()
                .is_some_and(|signature| verifies(key, payload, signature))
    })
}

/// The signature image with `signature` of `payload` added to the `existing` layers (other
/// signers' signatures are kept, as `cosign sign` keeps them).
pub fn signature_image(existing: Vec<Layer>, payload: &[u8], signature: &str) -> SignatureImage {
    let payload_digest = sha256_digest(payload);
    let mut layers: Vec<Layer> = existing
        .into_iter()
        .filter(|layer| layer.digest != payload_digest || layer.signature() != Some(signature))
        .collect();
    layers.push(Layer {
        media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
        size: payload.len() as u64,
        digest: payload_digest.clone(),
        annotations: BTreeMap::from([(SIGNATURE_ANNOTATION.to_string(), signature.to_string())]),
    });
    let config = serde_json::to_vec(&Config {
        architecture: "",
        created: ZERO_TIME,
        history: [History { created: ZERO_TIME }],
        os: "",
        rootfs: RootFs {
            kind: "layers",
            diff_ids: layers.iter().map(|layer| layer.digest.as_str()).collect(),
        },
        config: Empty {},
    })
    .unwrap_or_default();
    let config_digest = sha256_digest(&config);
    let manifest = serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config: Descriptor {
            media_type: CONFIG_MEDIA_TYPE,
            size: config.len(),
            digest: &config_digest,
        },
        layers: &layers,
    })
    .unwrap_or_default();
    SignatureImage {
        payload: Bytes::copy_from_slice(payload),
        payload_digest,
        manifest_digest: sha256_digest(&manifest),
        config: Bytes::from(config),
        config_digest,
        manifest: Bytes::from(manifest),
    }
}

/// What [`attach`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attached {
    /// `sha256-<hex>.sig`.
    pub tag: String,
    /// The signature manifest's digest (`None` when a reused one was read without it).
    pub digest: Option<String>,
    /// The tag already held this key's signature of the artifact: nothing was uploaded.
    pub reused: bool,
}

/// Make `repo`'s signature tag for `manifest_digest` hold `signer`'s signature: read it, and
/// if it lacks ours, write it (payload and config blobs first, `HEAD` before each upload, the
/// manifest last). `docker_reference` is `host/repository` as pushed.
pub async fn attach(
    client: &RegistryClient,
    repo: &str,
    docker_reference: &str,
    manifest_digest: &str,
    signer: &Signer,
) -> Result<Attached, RegistryError> {
    let tag = signature_tag(manifest_digest);
    let payload = payload(docker_reference, manifest_digest);
    let existing = client.get_manifest(repo, &tag).await?;
    let layers = match &existing {
        Some(fetched) => signature_layers(&fetched.bytes).unwrap_or_default(),
        None => Vec::new(),
    };
    if holds_signature(&layers, &payload, signer.verifying_key()) {
        return Ok(Attached {
            tag,
            digest: existing.and_then(|fetched| fetched.digest_header),
            reused: true,
        });
    }
    let image = signature_image(layers, &payload, &signer.sign(&payload));
    for (digest, bytes) in [
        (&image.payload_digest, &image.payload),
        (&image.config_digest, &image.config),
    ] {
        if !client.blob_exists(repo, digest).await? {
            client
                .upload_blob(repo, digest, BlobBody::Bytes(bytes.clone()), None)
                .await?;
        }
    }
    client
        .put_manifest(repo, &tag, image.manifest.clone(), MANIFEST_MEDIA_TYPE)
        .await?;
    Ok(Attached {
        tag,
        digest: Some(image.manifest_digest),
        reused: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::key;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn signer(password: &[u8]) -> Signer {
        let (private, _) = key::generate(password).unwrap();
        Signer::from_encrypted(&private, password, "k".into()).unwrap()
    }

    #[test]
    fn the_payload_is_what_cosign_signs() {
        assert_eq!(
            String::from_utf8(payload("localhost:5050/k8s", DIGEST)).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5050/k8s"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        assert_eq!(
            signature_tag(DIGEST),
            "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.sig"
        );
    }

    #[test]
    fn a_signature_image_carries_the_payload_and_its_signature() {
        let (ours, other) = (signer(b""), signer(b""));
        let payload = payload("localhost:5050/k8s", DIGEST);
        let image = signature_image(Vec::new(), &payload, &ours.sign(&payload));
        let manifest: serde_json::Value = serde_json::from_slice(&image.manifest).unwrap();
        assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], image.config_digest);
        let layers = signature_layers(&image.manifest).unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0].media_type, SIMPLE_SIGNING_MEDIA_TYPE);
        assert_eq!(layers[0].digest, sha256_digest(&payload));
        assert!(holds_signature(&layers, &payload, ours.verifying_key()));
        assert!(
            !holds_signature(&layers, &payload, other.verifying_key()),
            "another key's signature is not ours"
        );
        let other_payload = super::payload("localhost:5050/k8s", &DIGEST.replace('0', "1"));
        assert!(!holds_signature(
            &layers,
            &other_payload,
            ours.verifying_key()
        ));
        let config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([sha256_digest(&payload)])
        );
    }

    /// What `cosign sign --key … --tlog-upload=false --new-bundle-format=false` (v3.0.6, the
    /// version source-controller links) wrote to a registry: the same payload and signature give
    /// the same manifest and config, byte for byte.
    #[test]
    fn the_signature_image_is_the_one_cosign_writes() {
        let digest = "sha256:7c2b7d8ea3af37dd45c61932bd94d7190f8a787e6ae884078108271f46ed1da0";
        let signature = "MEYCIQCWXAQhiDMGHORQH4xUe8vEugdufKN6ZL5KAaSaHX/80wIhAIoDYXWlh7P+DaSDKV5Qrko6JGsUBW3N3YsdH2IQdjGs";
        let payload = payload("127.0.0.1:5077/demo/app", digest);
        assert_eq!(
            String::from_utf8_lossy(&payload),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5077/demo/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        let image = signature_image(Vec::new(), &payload, signature);
        assert_eq!(
            String::from_utf8_lossy(&image.config),
            r#"{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["sha256:d6bc53eefa8049c47d0a958d18f9ebbcd3de43ef0ed5f90465307e668dc617d1"]},"config":{}}"#
        );
        assert_eq!(
            String::from_utf8_lossy(&image.manifest),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":233,"digest":"sha256:872d8c8f0ba558ef45743e293b5d2210e7f9801a30eee2c0887efce0cc1b24cc"}},"layers":[{{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":239,"digest":"sha256:d6bc53eefa8049c47d0a958d18f9ebbcd3de43ef0ed5f90465307e668dc617d1","annotations":{{"dev.cosignproject.cosign/signature":"{signature}"}}}}]}}"#
            )
        );
        assert_eq!(
            image.manifest_digest,
            "sha256:5be4a8513dd0770313407de437cba1d6b119d1f34ec2dbef35719cf3257d21c3"
        );
    }

    #[test]
    fn another_signers_signature_is_kept_and_ours_is_not_doubled() {
        let (ours, theirs) = (signer(b""), signer(b"x"));
        let payload = payload("localhost:5050/k8s", DIGEST);
        let first = signature_image(Vec::new(), &payload, &theirs.sign(&payload));
        let both = signature_image(
            signature_layers(&first.manifest).unwrap(),
            &payload,
            &ours.sign(&payload),
        );
        let layers = signature_layers(&both.manifest).unwrap();
        assert_eq!(layers.len(), 2);
        assert!(holds_signature(&layers, &payload, theirs.verifying_key()));
        assert!(holds_signature(&layers, &payload, ours.verifying_key()));
        let again = signature_image(layers, &payload, &ours.sign(&payload));
        assert_eq!(again.manifest_digest, both.manifest_digest);
    }
}
