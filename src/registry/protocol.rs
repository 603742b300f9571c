//! One push attempt (artifact.md#push-protocol): the unchanged check, blobs config-first with
//! `HEAD` before upload, and the manifest last, so a tag never points at a missing blob.
//!
//! Retrying is the caller's job (`crate::retry`); an attempt always starts again at step 1.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::Url;

use super::client::{BlobBody, OCI_MANIFEST_MEDIA_TYPE, RegistryClient, sha256_digest};
use super::error::RegistryError;
use super::growing::GrowingFile;
use crate::artifact::manifest::parse_manifest_summary;

/// The config blob, held in memory (it is tiny).
#[derive(Debug, Clone)]
pub struct ConfigBlob {
    pub digest: String,
    pub bytes: Bytes,
}

/// The layer, streamed from a temporary file.
#[derive(Debug, Clone)]
pub struct LayerBlob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// The layer's upload, started while the layer is still being packed
/// (docs/push.md#streamed-layer-upload): a task that sends the growing file into an upload
/// session. It is an optimisation only:
/// [`upload_blobs`] commits the session if it got the whole layer and otherwise uploads the
/// file as usual, so its failures are never the push's. Dropping it stops the task; the
/// registry discards an uncommitted session, as it does when `docker push` is interrupted.
#[derive(Debug)]
pub struct StreamedLayer(tokio::task::JoinHandle<Option<Url>>);

impl StreamedLayer {
    /// Once `go` resolves to true (validation passed), stream `file` into a new upload session
    /// of `repo`; nothing is sent if it resolves to false.
    pub fn start(
        client: Arc<RegistryClient>,
        repo: String,
        file: GrowingFile,
        go: impl Future<Output = bool> + Send + 'static,
    ) -> Self {
        StreamedLayer(tokio::spawn(async move {
            if !go.await {
                return None;
            }
            match client.stream_blob(&repo, file).await {
                Ok(session) => Some(session),
                Err(error) => {
                    tracing::debug!(
                        "push: streamed layer upload failed ({error}); uploading the file"
                    );
                    None
                }
            }
        }))
    }

    /// The session holding the whole layer, or `None` if streaming failed.
    async fn session(mut self) -> Option<Url> {
        (&mut self.0).await.ok().flatten()
    }
}

impl Drop for StreamedLayer {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything one push uploads.
#[derive(Debug, Clone)]
pub struct ArtifactUpload {
    pub config: ConfigBlob,
    pub layer: LayerBlob,
    /// The canonical manifest bytes; sent as they are.
    pub manifest_bytes: Bytes,
    /// SHA-256 of `manifest_bytes`.
    pub manifest_digest: String,
}

/// Progress of an attempt, for the `push:` lines (artifact.md#progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    ConfigExists,
    UploadingConfig,
    LayerExists,
    UploadingLayer {
        size: u64,
    },
    /// Cumulative bytes of the layer sent so far.
    Uploaded(u64),
    /// The manifest is about to be written to the tag: from here on, a push cut short may or may
    /// not have moved the tag.
    Tagging,
    /// The tag now points at `digest`.
    Tagged {
        digest: String,
    },
    /// The signature tag holds this key's signature of the artifact (`reused`: it already did).
    Signed {
        tag: String,
        reused: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushOutcome {
    /// Nothing was uploaded: the tag already holds this layer and revision.
    pub unchanged: bool,
    /// The manifest digest the tag points at.
    pub digest: String,
    /// An unchanged artifact's own `created` annotation (when it was pushed), not this run's.
    pub created: Option<String>,
    /// The cosign signature made or found for it, when the push signs.
    pub signature: Option<crate::signing::cosign::Attached>,
}

/// Where the tag pointed when the push began, so that a push does not silently replace one that
/// landed meanwhile (artifact.md#concurrent-pushes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagGuard {
    /// `--force`: write the manifest whatever the tag holds now.
    Off,
    /// The tag's manifest digest when the push began (`None`: the tag did not exist).
    Expect(Option<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("registry stored a different manifest digest ({stored} instead of {computed})")]
    DigestMismatch { computed: String, stored: String },
    /// Another push moved the tag between the start of this one and its manifest write.
    #[error(
        "tag {tag} changed while this push ran: it pointed at {} when the push began and points at {} now; nothing was tagged; push again to publish on top of it, or pass --force to replace it",
        describe_digest(.began),
        describe_digest(.now)
    )]
    TagMoved {
        tag: String,
        began: Option<String>,
        now: Option<String>,
    },
    /// Another push replaced this one right after its manifest write.
    #[error(
        "tag {tag} was overwritten right after this push wrote {ours}: it points at {} now (another push raced this one); push again if yours should win",
        describe_digest(.now)
    )]
    Overwritten {
        tag: String,
        ours: String,
        now: Option<String>,
    },
}

fn describe_digest(digest: &Option<String>) -> String {
    digest.clone().unwrap_or_else(|| "nothing".to_string())
}

impl PushError {
    pub fn is_retryable(&self) -> bool {
        match self {
            PushError::Registry(error) => error.is_retryable(),
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            PushError::Registry(error) => error.retry_after(),
            _ => None,
        }
    }

    /// A short reason for warnings and the final error line.
    pub fn reason(&self) -> String {
        match self {
            PushError::Registry(error) => error.reason(),
            PushError::DigestMismatch { .. } => {
                "registry stored a different manifest digest".into()
            }
            race => race.to_string(),
        }
    }

    /// Another push got in the way; the message says what to do, not a registry to start.
    pub fn is_race(&self) -> bool {
        matches!(
            self,
            PushError::TagMoved { .. } | PushError::Overwritten { .. }
        )
    }
}

/// What step 1 read of the tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRead {
    /// The tag's manifest digest (`None`: no such tag).
    pub digest: Option<String>,
    /// `Some` when the tag already holds exactly this artifact: nothing to upload.
    pub unchanged: Option<PushOutcome>,
}

/// Step 1, the unchanged check: the tag holds an image manifest with exactly this layer and
/// revision. It needs only the layer's digest, so a caller that knows the digest (from the layer
/// cache) can run it before compressing anything.
pub async fn check_unchanged(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    layer_digest: &str,
    revision: &str,
) -> Result<TagRead, PushError> {
    let Some(existing) = client.get_manifest(repo, tag).await? else {
        return Ok(TagRead {
            digest: None,
            unchanged: None,
        });
    };
    let digest = existing
        .digest_header
        .clone()
        .unwrap_or_else(|| sha256_digest(&existing.bytes));
    let unchanged =
        is_same_artifact(&existing.bytes, layer_digest, revision).then(|| PushOutcome {
            unchanged: true,
            digest: digest.clone(),
            created: parse_manifest_summary(&existing.bytes).and_then(|summary| summary.created),
            signature: None,
        });
    Ok(TagRead {
        digest: Some(digest),
        unchanged,
    })
}

/// Step 2: blobs, config first, with `HEAD` before each upload. A layer that `streamed` already
/// sent is committed instead of uploaded again. Step 3 is [`write_manifest`]; the push runs
/// them apart, to sign in between.
pub async fn upload_blobs(
    client: &RegistryClient,
    repo: &str,
    artifact: &ArtifactUpload,
    streamed: Option<StreamedLayer>,
    events: &(dyn Fn(PushEvent) + Send + Sync),
) -> Result<(), PushError> {
    if client.blob_exists(repo, &artifact.config.digest).await? {
        events(PushEvent::ConfigExists);
    } else {
        events(PushEvent::UploadingConfig);
        let body = BlobBody::Bytes(artifact.config.bytes.clone());
        client
            .upload_blob(repo, &artifact.config.digest, body, None)
            .await?;
    }
    let layer = &artifact.layer;
    if client.blob_exists(repo, &layer.digest).await? {
        events(PushEvent::LayerExists);
        return Ok(());
    }
    events(PushEvent::UploadingLayer { size: layer.size });
    if let Some(streamed) = streamed
        && commit_streamed(client, repo, streamed, &layer.digest).await
    {
        events(PushEvent::Uploaded(layer.size));
        return Ok(());
    }
    let body = BlobBody::File {
        path: layer.path.clone(),
        size: layer.size,
    };
    let progress = |sent: u64| events(PushEvent::Uploaded(sent));
    client
        .upload_blob(repo, &layer.digest, body, Some(&progress))
        .await?;
    Ok(())
}

/// Commit the streamed session under `digest`; false (logged) if there is nothing to commit or
/// the registry refuses it, and the caller uploads the file.
async fn commit_streamed(
    client: &RegistryClient,
    repo: &str,
    streamed: StreamedLayer,
    digest: &str,
) -> bool {
    let Some(session) = streamed.session().await else {
        return false;
    };
    match client.commit_blob(repo, session, digest).await {
        Ok(()) => true,
        Err(error) => {
            tracing::debug!(
                "push: committing the streamed layer failed ({error}); uploading the file"
            );
            false
        }
    }
}

/// Step 3: the manifest, last — only when the tag still holds what `guard` expects (or this
/// very manifest, written by an earlier attempt whose answer was lost), and checked to hold
/// ours after the write.
pub async fn write_manifest(
    client: &RegistryClient,
    repo: &str,
    tag: &str,
    artifact: &ArtifactUpload,
    guard: &TagGuard,
    events: &(dyn Fn(PushEvent) + Send + Sync),
) -> Result<PushOutcome, PushError> {
    let ours = &artifact.manifest_digest;
    if let TagGuard::Expect(began) = guard {
        let now = client.head_manifest(repo, tag).await?;
        if now != *began && now.as_ref() != Some(ours) {
            return Err(PushError::TagMoved {
                tag: tag.to_string(),
                began: began.clone(),
                now,
            });
        }
    }
    events(PushEvent::Tagging);
    let stored = client
        .put_manifest(
            repo,
            tag,
            artifact.manifest_bytes.clone(),
            OCI_MANIFEST_MEDIA_TYPE,
        )
        .await?;
    if let Some(stored) = stored
        && stored != artifact.manifest_digest
    {
        return Err(PushError::DigestMismatch {
            computed: artifact.manifest_digest.clone(),
            stored,
        });
    }
    let now = client.head_manifest(repo, tag).await?;
    if now.as_ref() != Some(ours) {
        return Err(PushError::Overwritten {
            tag: tag.to_string(),
            ours: ours.clone(),
            now,
        });
    }
    events(PushEvent::Tagged {
        digest: artifact.manifest_digest.clone(),
    });
    Ok(PushOutcome {
        unchanged: false,
        digest: artifact.manifest_digest.clone(),
        created: None,
        signature: None,
    })
}

/// Whether `body` is an image manifest with exactly one layer `layer_digest` and the revision
/// annotation `revision`. Anything unparsable is simply "not the same".
pub fn is_same_artifact(body: &[u8], layer_digest: &str, revision: &str) -> bool {
    parse_manifest_summary(body).is_some_and(|summary| {
        summary.layer_digest == layer_digest && summary.revision.as_deref() == Some(revision)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::manifest::ANNOTATION_REVISION as REVISION_ANNOTATION;

    fn manifest(media_type: &str, layers: &[&str], revision: Option<&str>) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|digest| serde_json::json!({"digest": digest, "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": 1}))
            .collect();
        let mut value = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"digest": "sha256:c", "mediaType": "application/vnd.cncf.flux.config.v1+json", "size": 2},
            "layers": layers,
        });
        if let Some(revision) = revision {
            value["annotations"] = serde_json::json!({ REVISION_ANNOTATION: revision });
        }
        serde_json::to_vec(&value).unwrap()
    }

    #[test]
    fn same_layer_and_revision_is_unchanged() {
        let body = manifest(
            OCI_MANIFEST_MEDIA_TYPE,
            &["sha256:l"],
            Some("main@sha1:abc"),
        );
        assert!(is_same_artifact(&body, "sha256:l", "main@sha1:abc"));
    }

    #[test]
    fn anything_else_is_changed() {
        let cases = [
            manifest(
                OCI_MANIFEST_MEDIA_TYPE,
                &["sha256:other"],
                Some("main@sha1:abc"),
            ),
            manifest(
                OCI_MANIFEST_MEDIA_TYPE,
                &["sha256:l"],
                Some("main@sha1:def"),
            ),
            manifest(OCI_MANIFEST_MEDIA_TYPE, &["sha256:l"], None),
            manifest(
                OCI_MANIFEST_MEDIA_TYPE,
                &["sha256:l", "sha256:l"],
                Some("main@sha1:abc"),
            ),
            manifest(
                "application/vnd.oci.image.index.v1+json",
                &["sha256:l"],
                Some("main@sha1:abc"),
            ),
            b"not json".to_vec(),
        ];
        for body in cases {
            assert!(
                !is_same_artifact(&body, "sha256:l", "main@sha1:abc"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn digest_mismatch_is_not_retryable() {
        let error = PushError::DigestMismatch {
            computed: "sha256:a".into(),
            stored: "sha256:b".into(),
        };
        assert!(!error.is_retryable());
        assert_eq!(
            error.reason(),
            "registry stored a different manifest digest"
        );
    }
}
