//! A running `ksail workload watch`: its stdout lines as they come, and a clean stop.
#![allow(unsafe_code)] // kill is a libc call; denied everywhere else

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

pub struct Running {
    child: Child,
    lines: Receiver<String>,
}

impl Running {
    /// Start `command` (a `ksail workload watch`) with piped output.
    pub fn start(mut command: Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ksail workload watch");
        let (sender, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// The next stdout line; fails the test after `within`.
    pub fn next_line(&self, within: Duration) -> String {
        self.lines
            .recv_timeout(within)
            .unwrap_or_else(|_| panic!("no round line within {within:?}"))
    }

    /// No stdout line for `quiet`.
    pub fn assert_no_line_for(&self, quiet: Duration) {
        match self.lines.recv_timeout(quiet) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(line) => panic!("unexpected round: {line}"),
            Err(RecvTimeoutError::Disconnected) => panic!("the watch ended"),
        }
    }

    /// SIGINT, then the exit code, stderr and the stdout lines not read yet.
    pub fn interrupt(mut self) -> (Option<i32>, String, Vec<String>) {
        // SAFETY: kill only sends a signal to our own child process.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) },
            0
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for the watch") {
                break status;
            }
            assert!(Instant::now() < deadline, "the watch did not stop");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let rest = self.lines.iter().collect();
        (status.code(), stderr, rest)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
