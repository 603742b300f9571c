//! Wall time and peak memory of one child process, for the benchmarks (`benches/`).
#![allow(unsafe_code)] // wait4 is a libc call; denied everywhere else

use std::process::Command;
use std::time::{Duration, Instant};

/// How one run of a child went.
pub struct Measured {
    pub time: Duration,
    /// The child's peak resident memory in bytes (`ru_maxrss` from `wait4`). Linux counts the
    /// parent's memory the child started on before its exec, so this is at least the calling
    /// process's own peak: keep that small (write large inputs to files as a stream).
    pub peak_rss: u64,
    /// `None` when a signal ended it.
    pub code: Option<i32>,
}

/// Start `command`, wait for it with `wait4` and report its time, exit code and peak RSS.
pub fn run(command: &mut Command) -> Measured {
    let start = Instant::now();
    #[expect(
        clippy::zombie_processes,
        reason = "wait4 below reaps it, which also reports its own peak RSS"
    )]
    let child = command.spawn().expect("start the measured process");
    let mut status = 0;
    // SAFETY: wait4 only writes into the status and the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(rc, child.id() as i32, "wait4 failed");
    Measured {
        time: start.elapsed(),
        peak_rss: usage.ru_maxrss as u64 * 1024,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
    }
}
