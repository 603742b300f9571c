//! The real tier's child processes: each runs in its own process group and dies with the test
//! binary, however the binary ends.
//!
//! - A normal end (libtest calls `exit`): an `atexit` hook sends SIGTERM to every group in reverse
//!   start order, gives them [`GRACE`] to go, then SIGKILLs what is left and removes the tier's
//!   directories — unless a test panicked: then they stay, with their logs, and their path is
//!   printed.
//! - A panic in a test is a normal end for the binary (libtest catches it).
//! - The binary itself killed (Ctrl-C of `cargo test`, SIGKILL by CI): every child was started with
//!   `PR_SET_PDEATHSIG = SIGKILL`, armed against the thread that forked it. Children are therefore
//!   forked by one supervisor thread that lives as long as the process, not by test threads, which
//!   end with their test.
#![allow(unsafe_code)] // signals and process groups are libc calls; denied everywhere else

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the process groups get between SIGTERM and SIGKILL at exit.
const GRACE: Duration = Duration::from_secs(3);

type Job = Box<dyn FnOnce() + Send>;

/// Process groups (leader pid) in start order, and directories to remove at exit.
struct Registry {
    groups: Vec<(String, i32)>,
    dirs: Vec<PathBuf>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    groups: Vec::new(),
    dirs: Vec::new(),
});
static SUPERVISOR: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
/// Set by the panic hook: a failed test keeps the tier's directories (logs) for a post-mortem.
static PANICKED: AtomicBool = AtomicBool::new(false);

fn supervisor() -> &'static Mutex<mpsc::Sender<Job>> {
    SUPERVISOR.get_or_init(|| {
        // SAFETY: `teardown` is an `extern "C" fn()` that only calls async-signal-tolerant libc
        // functions and std file removal; registering it has no other precondition.
        unsafe { libc::atexit(teardown) };
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            previous(info);
        }));
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("real-tier-supervisor".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // The sender lives in a static, so this thread only ends with the process.
            })
            .expect("start the real tier's supervisor thread");
        Mutex::new(tx)
    })
}

/// A started component: its child handle and the file its stdout and stderr go to.
pub struct Process {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Process {
    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the process's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log, lines)
    }

    /// The first and the last lines of the log: a command-line error comes first, followed by a
    /// long usage text.
    pub fn log_excerpt(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() <= 50 {
            return lines.join("\n");
        }
        format!(
            "{}\n[…]\n{}",
            lines[..10].join("\n"),
            lines[lines.len() - 30..].join("\n")
        )
    }
}

/// The last `lines` lines of a file ("" when unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts `command` as component `name` in its own process group, output appended to `log`.
pub fn spawn(name: &str, mut command: Command, log: &Path) -> io::Result<Process> {
    let out = File::options().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let (tx, rx) = mpsc::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(command.spawn());
    });
    supervisor()
        .lock()
        .expect("the supervisor lock is never poisoned")
        .send(job)
        .map_err(|_| io::Error::other("the real tier's supervisor thread is gone"))?;
    let child = rx
        .recv()
        .map_err(|_| io::Error::other("the real tier's supervisor thread is gone"))??;
    let pid = i32::try_from(child.id()).expect("a pid fits in i32");
    REGISTRY
        .lock()
        .expect("the process registry lock is never poisoned")
        .groups
        .push((name.to_string(), pid));
    Ok(Process {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
    })
}

/// Removes `dir` at exit, after every process group is gone.
pub fn remove_at_exit(dir: PathBuf) {
    REGISTRY
        .lock()
        .expect("the process registry lock is never poisoned")
        .dirs
        .push(dir);
}

/// Stops one component now (SIGTERM to its group, SIGKILL after [`GRACE`]).
pub fn stop(process: &mut Process) {
    let pid = i32::try_from(process.child.id()).expect("a pid fits in i32");
    stop_groups(&[pid]);
    let _ = process.child.wait();
    REGISTRY
        .lock()
        .expect("the process registry lock is never poisoned")
        .groups
        .retain(|(_, p)| *p != pid);
}

extern "C" fn teardown() {
    let Ok(mut registry) = REGISTRY.lock() else {
        return;
    };
    let pids: Vec<i32> = registry.groups.iter().rev().map(|(_, pid)| *pid).collect();
    stop_groups(&pids);
    registry.groups.clear();
    for dir in registry.dirs.drain(..) {
        if PANICKED.load(Ordering::SeqCst) {
            eprintln!(
                "a test failed: the real tier's logs are kept in {}",
                dir.display()
            );
        } else {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// SIGTERM to each group (in the given order), reap the leaders, SIGKILL the groups still alive
/// after [`GRACE`].
fn stop_groups(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: plain syscalls on process groups this module created.
        unsafe { libc::kill(-pid, libc::SIGTERM) };
    }
    let deadline = Instant::now() + GRACE;
    let mut alive: Vec<i32> = pids.to_vec();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|&pid| {
            let mut status = 0;
            // SAFETY: reaps our own child without blocking.
            let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            reaped == 0
        });
        std::thread::sleep(Duration::from_millis(50));
    }
    for &pid in pids {
        // SAFETY: as above; a group that is already gone makes this a no-op (ESRCH).
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}
