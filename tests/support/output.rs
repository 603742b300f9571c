//! Assertions on what a ksail run printed (testing.md "CLI tests": stream discipline).

use std::process::Output;

/// `YYYY-MM-DDTHH:MM:SSZ ` is 21 bytes.
const TIMESTAMP_PREFIX_LEN: usize = 21;

pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stderr_lines(output: &Output) -> Vec<String> {
    stderr_text(output).lines().map(str::to_string).collect()
}

pub fn stdout_lines(output: &Output) -> Vec<String> {
    stdout_text(output).lines().map(str::to_string).collect()
}

/// The exit code and both streams, for an assertion's message.
pub fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout_text(output),
        stderr_text(output)
    )
}

/// Asserts the exit code; a mismatch shows the whole run.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(output.status.code(), Some(code), "{}", describe(output));
}

/// Asserts the exit code of one case of a table; a mismatch names the case and shows stderr.
#[track_caller]
pub fn assert_case_exit(output: &Output, code: i32, case: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{case}: {}",
        stderr_text(output)
    );
}

#[track_caller]
pub fn assert_success(output: &Output) {
    assert_exit(output, 0);
}

/// The line without its `YYYY-MM-DDTHH:MM:SSZ ` prefix; a line without one as it is.
pub fn strip_timestamp(line: &str) -> &str {
    if has_timestamp_prefix(line) {
        &line[TIMESTAMP_PREFIX_LEN..]
    } else {
        line
    }
}

/// Every stderr line, timestamp prefixes removed (the non-TTY progress form).
pub fn progress_lines(output: &Output) -> Vec<String> {
    stderr_lines(output)
        .iter()
        .map(|line| strip_timestamp(line).to_string())
        .collect()
}

/// Some progress line (timestamp removed) is exactly `expected`.
#[track_caller]
pub fn assert_progress_line(output: &Output, expected: &str) {
    assert!(
        progress_lines(output).iter().any(|line| line == expected),
        "no stderr line {expected:?}\n{}",
        describe(output)
    );
}

/// The progress lines that are warnings (`warning: …`), prefix removed.
pub fn warning_lines(output: &Output) -> Vec<String> {
    progress_lines(output)
        .into_iter()
        .filter(|line| line.starts_with("warning: "))
        .collect()
}

/// The warnings about a failed attempt (`warning: attempt <n>/<m> failed, …`), prefix removed.
pub fn attempt_warnings(output: &Output) -> Vec<String> {
    warning_lines(output)
        .into_iter()
        .filter(|line| line.starts_with("warning: attempt "))
        .collect()
}

/// The last stderr line (the error line of a failed run), or `""`.
pub fn last_stderr_line(output: &Output) -> String {
    stderr_lines(output).last().cloned().unwrap_or_default()
}

/// Only the timestamped stderr lines (progress, warnings), prefix removed.
pub fn timestamped_lines(output: &Output) -> Vec<String> {
    stderr_lines(output)
        .iter()
        .filter(|line| has_timestamp_prefix(line))
        .map(|line| strip_timestamp(line).to_string())
        .collect()
}

/// The error line is the last stderr line, starts with `error: `, contains `phrase`, and is
/// the only `error:` line.
pub fn assert_error_line(output: &Output, phrase: &str) {
    let lines = stderr_lines(output);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("stderr is empty; expected an error line containing {phrase:?}"));
    assert!(
        last.starts_with("error: "),
        "the last stderr line is not an error line: {last:?}\nstderr:\n{}",
        lines.join("\n")
    );
    assert!(
        last.contains(phrase),
        "the error line does not contain {phrase:?}: {last:?}"
    );
    let error_lines = lines.iter().filter(|l| l.starts_with("error:")).count();
    assert_eq!(
        error_lines,
        1,
        "expected exactly one error: line\nstderr:\n{}",
        lines.join("\n")
    );
}

/// Whether a line starts with `YYYY-MM-DDTHH:MM:SSZ ` (the non-TTY progress prefix), i.e. the
/// regex `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ `, matched by hand to avoid a regex dependency.
pub fn has_timestamp_prefix(line: &str) -> bool {
    const PATTERN: &[u8] = b"dddd-dd-ddTdd:dd:ddZ ";
    const _: () = assert!(PATTERN.len() == TIMESTAMP_PREFIX_LEN);
    let bytes = line.as_bytes();
    bytes.len() >= PATTERN.len()
        && PATTERN.iter().zip(bytes).all(|(p, b)| match p {
            b'd' => b.is_ascii_digit(),
            literal => literal == b,
        })
}

/// The stderr lines that contain `warning:`, each checked for the timestamp prefix and given
/// without it (stricter than [`warning_lines`], which takes any line that starts so).
#[track_caller]
pub fn timestamped_warnings(output: &Output) -> Vec<String> {
    stderr_lines(output)
        .into_iter()
        .filter(|line| line.contains("warning:"))
        .map(|line| {
            assert!(has_timestamp_prefix(&line), "no timestamp prefix: {line}");
            strip_timestamp(&line).to_string()
        })
        .collect()
}

/// No stderr line is a warning.
#[track_caller]
pub fn assert_no_warning(output: &Output) {
    assert!(
        timestamped_warnings(output).is_empty(),
        "{}",
        stderr_text(output)
    );
}

/// Fails if `secret` appears anywhere on stdout or stderr.
pub fn assert_no_secret(output: &Output, secret: &str) {
    assert!(!secret.is_empty(), "an empty secret cannot be searched for");
    for (stream, text) in [
        ("stdout", stdout_text(output)),
        ("stderr", stderr_text(output)),
    ] {
        assert!(
            !text.contains(secret),
            "the secret appears on {stream}:\n{text}"
        );
    }
}

/// Fails if either stream contains an ANSI escape sequence.
pub fn assert_no_ansi(output: &Output) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        assert!(
            !bytes.contains(&0x1b),
            "{stream} contains an ANSI escape:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

/// Waits for the child to exit (at most `limit`), then collects its output.
pub fn wait_bounded(child: &mut std::process::Child, limit: std::time::Duration) -> Output {
    use std::io::Read as _;
    let deadline = std::time::Instant::now() + limit;
    // Drain the pipes on threads so a chatty child can never block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("piped stdout");
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ksail did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}
