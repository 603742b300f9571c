//! ksail on a terminal (issue 12, point 3): stderr is a pseudo-terminal, as in a shell, `script`,
//! asciinema or a CI PTY. Finished lines end with a newline; only the spinners are redrawn.
#![allow(unsafe_code)] // openpty is a libc call; denied everywhere else

mod support;

use std::io::Read as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::Stdio;

use support::TestEnv;

/// A pseudo-terminal pair: `(controller, terminal)`.
fn pty() -> (OwnedFd, OwnedFd) {
    let (mut controller, mut terminal) = (0, 0);
    // SAFETY: openpty writes two new file descriptors into the two integers; the null pointers
    // ask for no name, the default termios and window size.
    let status = unsafe {
        libc::openpty(
            &mut controller,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(status, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    unsafe {
        (
            OwnedFd::from_raw_fd(controller),
            OwnedFd::from_raw_fd(terminal),
        )
    }
}

/// What `ksail <args>` wrote to its terminal stderr, as the terminal received it.
fn on_a_terminal(env: &TestEnv, args: &[&str]) -> String {
    let (controller, terminal) = pty();
    let mut child = env
        .ksail_process(args)
        .env("KSAIL_TEST_RETRY_ATTEMPTS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(terminal))
        .spawn()
        .expect("start ksail");
    let mut reader = std::fs::File::from(controller);
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    // Reading ends with EIO once the child exits and the terminal side is closed.
    while let Ok(n) = reader.read(&mut buffer) {
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
    }
    child.wait().expect("ksail ends");
    String::from_utf8_lossy(&received).into_owned()
}

#[test]
fn finished_lines_end_with_a_newline_on_a_terminal() {
    let env = TestEnv::new();
    env.write(
        "k8s/app.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);

    let received = on_a_terminal(
        &env,
        &[
            "workload",
            "push",
            &format!("oci://127.0.0.1:{port}/k8s:dev"),
        ],
    );

    // The terminal turns "\n" into "\r\n"; a line padded to the width instead would be followed
    // by spaces.
    for finished in ["push: validated 1 YAML file", "push: layer sha256:"] {
        let at = received
            .find(finished)
            .unwrap_or_else(|| panic!("no {finished:?} in {received:?}"));
        let line_end = received[at..].find('\r').map(|end| at + end);
        let rest = line_end.map(|end| &received[end..]).unwrap_or_default();
        assert!(
            rest.starts_with("\r\n"),
            "{finished:?} does not end with a newline: {:?}",
            &received[at..received.len().min(at + 200)]
        );
        let line = &received[at..line_end.unwrap_or(received.len())];
        assert!(!line.ends_with(' '), "padded: {line:?}");
    }
    assert!(received.contains("error:"), "{received:?}");
}
