//! Fake executables put first on the child's `PATH` (testing.md "Fake executables").
//!
//! Every fake appends one JSON line `{"argv": [...], "env": {"KUBECONFIG": …}, "stdin": "…"}` to
//! `<tmp>/calls.jsonl`. For now this holds the credential-helper fake; `kind`, `k3d` and `docker`
//! fakes belong here too.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `docker-credential-*` prints when it has nothing for a host; docker's client library
/// recognises exactly this text.
pub const CREDENTIALS_NOT_FOUND: &str = "credentials not found in native keychain";

/// Shell that appends the JSON call line; `$input` holds stdin (trailing newlines removed).
/// JSON escaping is done with sed, which is on every PATH the harness allows.
const LOG_CALL: &str = r#"esc() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' -e 's/\r/\\r/g' \
    | sed -e ':a' -e 'N' -e '$!ba' -e 's/\n/\\n/g'
}
argv="\"$(esc "$(basename "$0")")\""
for a in "$@"; do argv="$argv,\"$(esc "$a")\""; done
if [ -n "${KUBECONFIG+set}" ]; then kc="\"$(esc "$KUBECONFIG")\""; else kc=null; fi
printf '{"argv":[%s],"env":{"KUBECONFIG":%s},"stdin":"%s"}\n' "$argv" "$kc" "$(esc "$input")" >> "$calls"
"#;

/// Writes `<bin>/docker-credential-<name>`. On `get` it reads a server address on stdin and,
/// for a host listed with `Some((user, secret))`, prints
/// `{"ServerURL":…,"Username":…,"Secret":…}`; for any other host it prints
/// [`CREDENTIALS_NOT_FOUND`] and exits 1. Other actions exit 1.
pub fn write_credential_helper(
    bin: &Path,
    calls: &Path,
    name: &str,
    hosts: &[(&str, Option<(&str, &str)>)],
) -> io::Result<PathBuf> {
    let mut cases = String::new();
    for (host, credentials) in hosts {
        let Some((user, secret)) = credentials else {
            continue;
        };
        let answer = serde_json::json!({
            "ServerURL": host,
            "Username": user,
            "Secret": secret,
        })
        .to_string();
        cases.push_str(&format!(
            "      {}) printf '%s\\n' {}; exit 0 ;;\n",
            shell_quote(host),
            shell_quote(&answer)
        ));
    }
    let script = format!(
        "#!/bin/sh\n\
         # Fake docker credential helper written by tests/support/fakes.rs.\n\
         calls={calls}\n\
         input=$(cat)\n\
         {LOG_CALL}\
         case \"$1\" in\n\
         \x20 get)\n\
         \x20   case \"$input\" in\n\
         {cases}\
         \x20   esac\n\
         \x20   echo {not_found}\n\
         \x20   exit 1 ;;\n\
         \x20 *) echo \"unsupported action: $1\" >&2; exit 1 ;;\n\
         esac\n",
        calls = shell_quote(&calls.to_string_lossy()),
        not_found = shell_quote(CREDENTIALS_NOT_FOUND),
    );
    let path = bin.join(format!("docker-credential-{name}"));
    write_executable(&path, &script)?;
    Ok(path)
}

/// Writes a script and makes it executable, so that nothing can hold it open for writing when
/// it is run. A file this process writes can stay open for writing in a child that another test
/// thread forks at that moment (until the child execs), and running it then fails with ETXTBSY
/// (rust-lang/rust#114554; seen in CI). So this process writes only a source copy; `cp`, a
/// process no test thread forks, writes the file that is renamed into place, whole.
pub fn write_executable(path: &Path, content: &str) -> io::Result<()> {
    let source = path.with_extension("source");
    let copy = path.with_extension("partial");
    fs::write(&source, content)?;
    fs::set_permissions(&source, fs::Permissions::from_mode(0o755))?;
    let copied = Command::new("cp").arg(&source).arg(&copy).status();
    fs::remove_file(&source)?;
    if !copied?.success() {
        return Err(io::Error::other(format!("cp to {} failed", copy.display())));
    }
    fs::rename(&copy, path)
}

/// Single-quotes a string for `sh`.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The calls logged in `calls.jsonl`, oldest first; none when the file does not exist.
pub fn read_calls(calls: &Path) -> Vec<serde_json::Value> {
    let Ok(text) = fs::read_to_string(calls) else {
        return Vec::new();
    };
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("calls.jsonl line is not JSON ({e}): {line}"))
        })
        .collect()
}
