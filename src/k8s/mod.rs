//! The one shared Kubernetes client: kubeconfig files merged and the context chosen exactly as
//! kubectl does (cli.md#global-flags), a `kube::Client` built from them without kube's own retry,
//! and typed errors that the shared retry policy can classify (reconcile.md#classification).
//!
//! Every command that talks to a cluster connects through [`connect`]. This module knows nothing
//! about Flux or Argo CD; `crate::gitops` owns those.

mod error;
mod kubeconfig;
mod retry_after;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::Duration;

use kube::config::KubeConfigOptions;

use crate::error::Failure;

pub use error::{ErrorKind, K8sError, unreachable_message};
pub use kubeconfig::{KubeTarget, TargetError, choose_context, read_merged, server_url};

/// A client for a plain-HTTP test server (the fake API server), configured like [`connect`]'s:
/// no hidden retries.
#[cfg(test)]
pub fn test_client(url: &str) -> kube::Client {
    let mut config = kube::Config::new(url.parse().expect("a valid URL"));
    config.default_retry = false;
    kube::Client::try_from(config).expect("a client for a plain HTTP URL")
}

/// The bound on every non-watch request (reconcile.md#kubernetes-connection).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The bound on opening a TCP connection (and the TLS handshake) to the API server.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected cluster: the client and what messages need to name it.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    /// The kubeconfig context in use.
    pub context: String,
    /// The API server URL as the kubeconfig writes it (`https://127.0.0.1:6443`).
    pub server: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("context", &self.context)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

/// Build the client for `target`. Sends no request: an unreachable server shows up on the first
/// call. Every failure here is a configuration problem (exit 2).
pub async fn connect(target: &KubeTarget) -> Result<Cluster, Failure> {
    let merged = read_merged(target)?;
    let context = choose_context(&merged, target)?;
    let server = server_url(&merged, &context)?;
    tracing::debug!(
        files = ?merged.files_read,
        source = %target.kubeconfig_source,
        %context,
        %server,
        "kubeconfig resolved"
    );
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..KubeConfigOptions::default()
    };
    let unusable = |detail: String| TargetError::Unusable {
        context: context.clone(),
        detail,
    };
    let mut config = kube::Config::from_custom_kubeconfig(merged.config, &options)
        .await
        .map_err(|error| unusable(error.to_string()))?;
    // The only retry a user sees is ksail's own (crate::retry): kube would otherwise retry
    // 429/503/504 silently and multiply the attempt count.
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // kube's read timeout would also cut watches that are idle on purpose, so it stays off and
    // non-watch requests are bounded by `with_timeout` at the call site instead.
    config.read_timeout = None;
    let client = kube::client::ClientBuilder::try_from(config)
        .map_err(|error| unusable(error.to_string()))?
        .with_layer(&retry_after::RetryAfterLayer)
        .build();
    Ok(Cluster {
        client,
        context,
        server,
    })
}

/// Bound a non-watch request to [`REQUEST_TIMEOUT`]. Watches must not be wrapped: they are
/// long-lived by design.
///
/// ```ignore
/// let kustomization = with_timeout(api.get("flux-system")).await?;
/// ```
pub async fn with_timeout<T, F>(request: F) -> Result<T, K8sError>
where
    F: Future<Output = Result<T, kube::Error>>,
{
    with_timeout_of(REQUEST_TIMEOUT, request).await
}

/// [`with_timeout`] with an explicit bound (the diagnostics budget is shorter, tests shorter
/// still).
pub async fn with_timeout_of<T, F>(limit: Duration, request: F) -> Result<T, K8sError>
where
    F: Future<Output = Result<T, kube::Error>>,
{
    match tokio::time::timeout(limit, request).await {
        Ok(result) => result.map_err(K8sError::from),
        Err(_elapsed) => Err(K8sError::Timeout(limit)),
    }
}
