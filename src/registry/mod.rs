//! Registry IO: a thin OCI distribution client with typed errors, credential resolution
//! (registry string, docker config, credential helpers) and the push protocol; and the HTTP
//! client settings every other outside request (the engine manifest download) shares.
//!
//! This module owns every byte sent to a registry. It does not build artifacts
//! (`crate::artifact`), decide names (`crate::resolve`) or retry (`crate::retry`); it reports
//! whether a failure is worth retrying.

pub mod auth;
pub mod challenge;
pub mod client;
pub mod docker_config;
pub mod error;
pub mod growing;
pub mod http;
#[cfg(test)]
mod proptests;
pub mod protocol;

pub use auth::{
    CredentialRequest, CredentialSource, Credentials, ResolvedCredentials, resolve_credentials,
};
pub use client::RegistryClient;
pub use error::{RegistryError, RegistryErrorKind};
pub use protocol::{
    ArtifactUpload, ConfigBlob, LayerBlob, PushError, PushEvent, PushOutcome, StreamedLayer,
    TagGuard, check_unchanged, upload_blobs, write_manifest,
};
