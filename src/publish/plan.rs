//! The artifact a push sends, planned once per run so that every attempt pushes the same bytes
//! (artifact.md#pipeline, steps 3–5), with the layer cache of artifact.md#performance:
//!
//! - cache miss: validation and packing run side by side (two cores), then the manifest is built;
//! - cache hit: validation is skipped when the entry records a pass, and the layer is not packed
//!   until an attempt finds that the registry does not already hold it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::{OnceCell, oneshot};

use super::scratch::{self, ScratchFile};
use crate::artifact::cache::{CachedLayer, LayerCache};
use crate::artifact::stamps::FileDigests;
use crate::artifact::{self, Annotations, Selection, Validation, manifest};
use crate::error::Failure;
use crate::output::counted;
use crate::progress::Reporter;
use crate::registry::growing;
use crate::registry::{ArtifactUpload, ConfigBlob, LayerBlob, RegistryClient, StreamedLayer};
use crate::settings::PushSettings;

/// The compressed layer in its temporary file, locked while this lives
/// ([`super::scratch`]). Dropping it (also on interrupt) deletes the file.
#[derive(Debug)]
pub struct PackedLayer {
    pub digest: String,
    pub size: u64,
    pub file: ScratchFile,
}

/// Everything an attempt needs, decided before the first request.
pub struct Planned {
    pub selection: Arc<Selection>,
    pub layer_digest: String,
    pub layer_size: u64,
    pub annotations: Annotations,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    /// YAML files a passed validation checked (`None` when validation was off).
    pub validated_files: Option<usize>,
    /// Per-file validation cache keys to record when the run succeeds.
    passed_files: Vec<String>,
    /// The layer cache key ([`artifact::tree_key`]), when there is a cache.
    cache_key: Option<String>,
    /// The file digests the key staged for the next run, when there is a cache.
    file_digests: Option<FileDigests>,
    /// Where the layer file goes (`None`: the system temporary directory).
    scratch: Option<PathBuf>,
    packed: OnceCell<PackedLayer>,
    /// The layer's upload, started while it was packed (taken by the first attempt).
    streamed: std::sync::Mutex<Option<StreamedLayer>>,
    inputs: AnnotationInputs,
}

/// Trees at least this large have their layer streamed to the registry while it is packed
/// (docs/push.md#streamed-layer-upload). Below it, the overlap saves less than the extra
/// request costs, and a small push keeps the plain request sequence.
const STREAM_FROM_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Clone)]
struct AnnotationInputs {
    source_root: std::path::PathBuf,
    /// What is packed, to compare with the `HEAD` commit.
    selection: Arc<Selection>,
    fallback_source: String,
    source_date_epoch: Option<String>,
    /// False for the empty artifact, whose revision is its layer digest (artifact.md).
    from_git: bool,
}

impl AnnotationInputs {
    fn annotations(&self, layer_digest: &str) -> Result<Annotations, Failure> {
        if !self.from_git {
            return Ok(artifact::annotations_without_git(
                layer_digest,
                &self.fallback_source,
                self.source_date_epoch.as_deref(),
                SystemTime::now(),
            )?);
        }
        Ok(artifact::annotations(
            &self.source_root,
            &self.selection,
            layer_digest,
            &self.fallback_source,
            self.source_date_epoch.as_deref(),
            SystemTime::now(),
        )?)
    }
}

/// Validation problems found while planning: the caller prints them and stops with exit 2.
pub struct Invalid {
    pub validation: Validation,
    pub error: Failure,
}

pub enum PlanError {
    Invalid(Box<Invalid>),
    Failed(Failure),
}

impl From<Failure> for PlanError {
    fn from(failure: Failure) -> Self {
        PlanError::Failed(failure)
    }
}

pub async fn plan(
    settings: &PushSettings,
    selection: Selection,
    cache: Option<&LayerCache>,
    reporter: &dyn Reporter,
    from_git: bool,
    client: &Arc<RegistryClient>,
) -> Result<Planned, PlanError> {
    let selection = Arc::new(selection);
    let inputs = AnnotationInputs {
        source_root: settings.source.resolved.clone(),
        selection: Arc::clone(&selection),
        fallback_source: format!(
            "oci://{}/{}",
            settings.target.host, settings.target.repository
        ),
        source_date_epoch: settings.source_date_epoch.clone(),
        from_git,
    };
    let keyed = Instant::now();
    let (cache_key, file_digests) = match cache {
        Some(cache) => {
            let remembered = cache.file_digests(&settings.source.resolved);
            let (key, remembered) =
                blocking(tree_key_of(Arc::clone(&selection), remembered)).await?;
            (Some(key), Some(remembered))
        }
        None => (None, None),
    };
    tracing::debug!("push: layer cache key in {:?}", keyed.elapsed());
    let cached = cache
        .zip(cache_key.as_deref())
        .and_then(|(c, key)| c.get(key));
    let started = Instant::now();
    let scratch = cache.map(LayerCache::scratch_dir);
    let mut streamed = None;
    let (layer_digest, layer_size, validated, packed) = match cached {
        Some(hit) => {
            tracing::debug!("push: layer cache hit ({})", hit.layer_digest);
            let validated = match (settings.validate, hit.validated_files) {
                (false, _) => None,
                (true, Some(files)) => Some(Passed {
                    files,
                    keys: Vec::new(),
                }),
                (true, None) => Some(validate(settings, &selection, cache).await?),
            };
            (hit.layer_digest, hit.layer_size, validated, None)
        }
        None => {
            let file = scratch_file(scratch.as_deref())?;
            let (feed, go, stream) = match selection.total_bytes >= STREAM_FROM_BYTES {
                true => {
                    let (feed, growing) = growing::growing(file.path.to_path_buf());
                    let (go, validated) = oneshot::channel();
                    let repository = settings.target.repository.clone();
                    let stream =
                        StreamedLayer::start(Arc::clone(client), repository, growing, async {
                            validated.await.is_ok()
                        });
                    (Some(feed), Some(go), Some(stream))
                }
                false => (None, None, None),
            };
            let (validated, packed) = tokio::join!(
                async {
                    let validated = match settings.validate {
                        true => validate(settings, &selection, cache).await.map(Some),
                        false => Ok(None),
                    };
                    // Nothing is sent for a tree that failed validation.
                    if let (Ok(_), Some(go)) = (&validated, go) {
                        let _ = go.send(());
                    }
                    validated
                },
                blocking(pack(Arc::clone(&selection), file, feed))
            );
            // Validation decides first: an invalid tree is never pushed, packed or not.
            let validated = validated?;
            let packed = packed?;
            artifact::check_unchanged_since_selection(&selection).map_err(Failure::from)?;
            streamed = stream;
            (packed.digest.clone(), packed.size, validated, Some(packed))
        }
    };
    tracing::debug!("push: planned the artifact in {:?}", started.elapsed());
    let validated_files = validated.as_ref().map(|passed| passed.files);
    let passed_files = validated.map(|passed| passed.keys).unwrap_or_default();
    if let Some(files) = validated_files {
        reporter.info(&format!(
            "push: validated {}",
            counted(files, "YAML file", "YAML files")
        ));
    }
    let annotations = inputs.annotations(&layer_digest)?;
    let (manifest, manifest_digest) =
        artifact::manifest_bytes(&layer_digest, layer_size, &annotations);
    let cell = OnceCell::new();
    if let Some(packed) = packed {
        let _ = cell.set(packed);
    }
    Ok(Planned {
        selection,
        layer_digest,
        layer_size,
        annotations,
        manifest,
        manifest_digest,
        validated_files,
        passed_files,
        cache_key,
        file_digests,
        scratch,
        packed: cell,
        streamed: std::sync::Mutex::new(streamed),
        inputs,
    })
}

impl Planned {
    /// The packed layer, packing it now if the plan came from the cache.
    pub async fn layer(&self) -> Result<&PackedLayer, Failure> {
        self.packed
            .get_or_try_init(|| async {
                let file = scratch_file(self.scratch.as_deref())?;
                let packed = blocking(pack(Arc::clone(&self.selection), file, None)).await?;
                artifact::check_unchanged_since_selection(&self.selection)?;
                Ok(packed)
            })
            .await
    }

    /// The layer upload started while planning, once: the first attempt commits it.
    pub fn take_streamed(&self) -> Option<StreamedLayer> {
        self.streamed.lock().ok()?.take()
    }

    /// What the registry protocol uploads; packs the layer first if needed.
    pub async fn upload(&self) -> Result<ArtifactUpload, Failure> {
        let layer = self.layer().await?;
        let (_, manifest, manifest_digest) = self.manifest_for(layer)?;
        Ok(ArtifactUpload {
            config: ConfigBlob {
                digest: manifest::CONFIG_DIGEST.to_string(),
                bytes: bytes::Bytes::from_static(manifest::CONFIG_BLOB),
            },
            layer: LayerBlob {
                digest: layer.digest.clone(),
                size: layer.size,
                path: layer.file.path.to_path_buf(),
            },
            manifest_bytes: bytes::Bytes::from(manifest),
            manifest_digest,
        })
    }

    /// The annotations and manifest for `layer`: the planned ones, or, when a cache entry
    /// disagreed with the packed bytes, ones rebuilt from what was really packed.
    fn manifest_for(&self, layer: &PackedLayer) -> Result<(Annotations, Vec<u8>, String), Failure> {
        if layer.digest == self.layer_digest {
            return Ok((
                self.annotations.clone(),
                self.manifest.clone(),
                self.manifest_digest.clone(),
            ));
        }
        tracing::debug!(
            "push: cache entry said {}, packing gave {}; using the packed layer",
            self.layer_digest,
            layer.digest
        );
        let annotations = self.inputs.annotations(&layer.digest)?;
        let (manifest, digest) = artifact::manifest_bytes(&layer.digest, layer.size, &annotations);
        Ok((annotations, manifest, digest))
    }

    /// Record this run in the cache (only after a run that exits 0).
    pub fn remember(&self, cache: Option<&LayerCache>) {
        let Some(cache) = cache else {
            return;
        };
        cache.validation().record_all(&self.passed_files);
        if let Some(file_digests) = &self.file_digests {
            file_digests.commit();
        }
        let packed = self.packed.get();
        let Some(key) = self.cache_key.clone() else {
            return;
        };
        let (digest, size) = packed.map_or((self.layer_digest.clone(), self.layer_size), |p| {
            (p.digest.clone(), p.size)
        });
        cache.put(
            &key,
            &CachedLayer {
                layer_digest: digest,
                layer_size: size,
                validated_files: self.validated_files,
            },
        );
    }
}

/// A passed validation: the files it checked, and the per-file cache keys to record when the run
/// succeeds.
struct Passed {
    files: usize,
    keys: Vec<String>,
}

async fn validate(
    settings: &PushSettings,
    selection: &Arc<Selection>,
    cache: Option<&LayerCache>,
) -> Result<Passed, PlanError> {
    let display = settings.source.written.clone();
    let selection = Arc::clone(selection);
    let files = cache.map(LayerCache::validation);
    let validation =
        blocking(move || Ok(artifact::validate(&display, &selection, files.as_ref()))).await?;
    if validation.files_from_cache > 0 {
        tracing::debug!(
            "push: {} of {} YAML files passed validation before with the same content; parsed {}",
            validation.files_from_cache,
            validation.files_checked,
            validation.files_checked - validation.files_from_cache
        );
    }
    match validation.error() {
        None => Ok(Passed {
            files: validation.files_checked,
            keys: validation.newly_passed,
        }),
        Some(error) => Err(PlanError::Invalid(Box::new(Invalid {
            error: error.into(),
            validation,
        }))),
    }
}

fn tree_key_of(
    selection: Arc<Selection>,
    mut remembered: FileDigests,
) -> impl FnOnce() -> Result<(String, FileDigests), Failure> {
    move || {
        let key = artifact::tree_key(&selection, Some(&mut remembered))?;
        Ok((key, remembered))
    }
}

/// A new temporary file for the layer in `scratch` (or `$TMPDIR`).
fn scratch_file(scratch: Option<&std::path::Path>) -> Result<ScratchFile, Failure> {
    scratch::layer_file(scratch).map_err(|error| {
        let place = scratch.map_or("TMPDIR".to_string(), |dir| dir.display().to_string());
        Failure::failed(format!(
            "cannot create a temporary file for the layer: {error}; check {place} and free disk space"
        ))
    })
}

fn pack(
    selection: Arc<Selection>,
    file: ScratchFile,
    feed: Option<growing::Writer>,
) -> impl FnOnce() -> Result<PackedLayer, Failure> {
    move || {
        // A second handle of the same open file: writing through it keeps `file`'s lock.
        let writer = file.file.try_clone().map_err(|error| {
            Failure::failed(format!("cannot write the layer's temporary file: {error}"))
        })?;
        let layer = artifact::pack(&selection, writer, |total| {
            if let Some(feed) = &feed {
                feed.wrote(total);
            }
        })?;
        if let Some(feed) = feed {
            feed.finish(layer.size);
        }
        Ok(PackedLayer {
            digest: layer.digest,
            size: layer.size,
            file,
        })
    }
}

/// Run file-system and CPU work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Failure::failed(format!("building the artifact stopped: {error}")))?
}
