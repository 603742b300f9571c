//! The verdict vocabulary shared by the engines' readiness rules: where a tracked object stands,
//! how revisions are compared and shortened, status text, and the timeout message.

mod revision;
mod text;
mod timeout;

pub use revision::{digests_equal, parse_revision_digest, short_revision, short_revision_marked};
pub use text::{collapse_whitespace, reason_and_message};
pub use timeout::timeout_message;

/// Where one tracked object stands after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every completion condition holds. `revision` is what the object reports (the applied
    /// revision of a Kustomization, the artifact of a source, the synced digest of an
    /// Application), in full; shorten it with `short_revision` for progress lines.
    Complete { revision: Option<String> },
    /// Not done yet; `status` is one line for progress output and the timeout message.
    Waiting { status: String },
    /// Terminal: ends the wait for this object and is not retryable. `message` is the
    /// controller's text as is (callers collapse whitespace where they print it).
    Failed { reason: String, message: String },
}
