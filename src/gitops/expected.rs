//! The expected revision (reconcile.md#expected-revision): the digest the sync tag points at in
//! the registry right now, so that completion means "serving what was pushed".

use crate::output::register_secret;
use crate::progress::Reporter;
use crate::registry::{
    CredentialRequest, CredentialSource, Credentials, RegistryClient, RegistryError,
    RegistryErrorKind, resolve_credentials,
};
use crate::resolve::SyncTarget;

/// How the run judges revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// `D`: the digest of `host_ref` in the registry.
    Digest { host_ref: String, digest: String },
    /// No gate this run (no registry configured, or it cannot be read from this machine).
    Unchecked,
}

impl Expected {
    pub fn digest(&self) -> Option<&str> {
        match self {
            Expected::Digest { digest, .. } => Some(digest),
            Expected::Unchecked => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExpectedError {
    /// `404`: the tag does not exist. Not retryable.
    #[error("nothing has been pushed to {host_ref}; run ksail workload push first")]
    NothingPushed { host_ref: String },
    /// A retryable registry failure (the attempt fails and is retried).
    #[error("cannot read {host_ref}: {}", source.reason())]
    Registry {
        host_ref: String,
        #[source]
        source: RegistryError,
    },
}

/// The registry client for the digest lookup, built once per run. Incomplete credential settings
/// do not stop a read-only lookup: they give a warning and no revision gate.
pub struct Lookup {
    sync: SyncTarget,
    client: Option<RegistryClient>,
}

impl Lookup {
    pub fn new(
        sync: Option<&SyncTarget>,
        credentials: Option<&CredentialRequest>,
        env: &dyn Fn(&str) -> Option<String>,
        reporter: &dyn Reporter,
    ) -> Option<Lookup> {
        let Some(sync) = sync else {
            reporter.verbose("reconcile: no registry configured; revision not checked");
            return None;
        };
        let resolved = credentials.map(|request| resolve_credentials(request, env, None));
        let (credentials, source) = match resolved {
            None => (Credentials::Anonymous, CredentialSource::Anonymous),
            Some(Ok(resolved)) => {
                for secret in resolved.credentials.secrets() {
                    register_secret(&secret);
                }
                for warning in &resolved.warnings {
                    reporter.warn(warning);
                }
                (resolved.credentials, resolved.source)
            }
            Some(Err(error)) => {
                reporter.warn(&unreadable_warning(&sync.host_ref, &error.to_string()));
                return Some(Lookup {
                    sync: sync.clone(),
                    client: None,
                });
            }
        };
        let client =
            RegistryClient::with_env(&sync.host, sync.plain_http, credentials, source, env).ok();
        Some(Lookup {
            sync: sync.clone(),
            client,
        })
    }

    /// Look `D` up: `HEAD` on the sync tag's manifest.
    pub async fn lookup(&self, reporter: &dyn Reporter) -> Result<Expected, ExpectedError> {
        let Some(client) = &self.client else {
            return Ok(Expected::Unchecked);
        };
        let host_ref = self.sync.host_ref.clone();
        match client
            .head_manifest(&self.sync.repository, &self.sync.tag)
            .await
        {
            Ok(Some(digest)) => Ok(Expected::Digest { host_ref, digest }),
            Ok(None) => Err(ExpectedError::NothingPushed { host_ref }),
            Err(error) if unreadable(&error) => {
                reporter.warn(&unreadable_warning(&host_ref, &error.reason()));
                Ok(Expected::Unchecked)
            }
            Err(source) => Err(ExpectedError::Registry { host_ref, source }),
        }
    }
}

/// `401`, `403` and TLS failures mean "this machine cannot read it", not "the run failed".
fn unreadable(error: &RegistryError) -> bool {
    matches!(
        error.kind(),
        RegistryErrorKind::Status {
            code: 401 | 403,
            ..
        } | RegistryErrorKind::TlsVerification { .. }
            | RegistryErrorKind::TlsOther { .. }
    )
}

fn unreadable_warning(host_ref: &str, reason: &str) -> String {
    format!(
        "cannot read {host_ref} from this machine ({reason}); completion is judged from cluster status only"
    )
}

impl crate::retry::Retryable for ExpectedError {
    fn is_retryable(&self) -> bool {
        match self {
            ExpectedError::NothingPushed { .. } => false,
            ExpectedError::Registry { source, .. } => source.is_retryable(),
        }
    }

    fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            ExpectedError::NothingPushed { .. } => None,
            ExpectedError::Registry { source, .. } => source.retry_after(),
        }
    }

    fn reason(&self) -> String {
        self.to_string()
    }
}
