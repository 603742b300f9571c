//! Whether a SIGINT or SIGTERM has arrived (cli.md#signals), readable from synchronous code.
//!
//! Async code stops through the cancellation token; long synchronous work that runs inside the
//! command's own task (loading ksail.yaml, which may be megabytes of YAML) cannot be dropped
//! mid-way, so it asks here and stops early.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Record that a signal asked the command to stop.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// True once a signal asked the command to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
