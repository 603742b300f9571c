//! YAML validation benchmarks (performance.md "YAML validation"): `cargo bench --bench validate`.
//!
//! Reports figures and asserts nothing. Every push goes to a fresh repository of a local
//! `docker-registry` with a fresh layer cache, so validation really runs; each figure is the
//! median of 3 wall times and the largest peak RSS of those runs (`support::measure`).
//!
//! - `validate_single_mapping_<size>`: a ConfigMap whose `data` is one mapping of 0.5, 1, 2 and
//!   4 MB (about 30 bytes a key). Duplicate keys used to be found by comparing each key with
//!   every earlier one: 26 s for 4 MB.
//! - `validate_100mb_single_mapping`: the same at 100 MB; it stops at the document size limit
//!   (exit 2), and how fast it gets there and with how much memory is the figure.
//! - `validate_100mb_documents`: 100 MB as 100 documents of 1 MB, which pass: only one
//!   document's tree is held at a time.
//! - `validate_alias_bomb`: a 486-byte "billion laughs", stopped by the alias expansion limit.

#[path = "../tests/support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use support::measure::Measured;
use support::push::alias_bomb;
use support::{Registry, RegistryKind};

const KSAIL: &str = env!("CARGO_BIN_EXE_ksail");
const MB: usize = 1024 * 1024;

fn main() {
    let registry = Registry::start(RegistryKind::Plain).unwrap_or_else(|error| {
        eprintln!("validate bench needs docker-registry: {error}");
        std::process::exit(1)
    });
    let mut bench = Bench {
        registry,
        work: tempfile::tempdir().expect("temporary directory"),
        pushes: 0,
    };
    for (label, bytes) in [
        ("0.5mb", MB / 2),
        ("1mb", MB),
        ("2mb", 2 * MB),
        ("4mb", 4 * MB),
    ] {
        bench.report(&format!("validate_single_mapping_{label}"), |out| {
            single_mapping(out, bytes)
        });
    }
    bench.report("validate_100mb_single_mapping", |out| {
        single_mapping(out, 100 * MB)
    });
    bench.report("validate_100mb_documents", |out| {
        for document in 0..100 {
            if document > 0 {
                out.write_all(b"---\n")?;
            }
            single_mapping(out, MB)?;
        }
        Ok(())
    });
    bench.report("validate_alias_bomb", |out| {
        write!(
            out,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\ndata:\n{}",
            alias_bomb("  ", 9)
        )
    });
}

struct Bench {
    registry: Registry,
    work: tempfile::TempDir,
    pushes: usize,
}

impl Bench {
    /// Push a source directory whose only file `write` writes, 3 times, and print the line. The
    /// file is written as it is generated: a child starts with the RSS its parent had at the fork.
    fn report(&mut self, name: &str, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        let dir = self.work.path().join(name);
        std::fs::create_dir_all(dir.join("k8s")).expect("create bench directory");
        let path = dir.join("k8s/data.yaml");
        let mut out = BufWriter::new(File::create(&path).expect("create bench file"));
        write(&mut out)
            .and_then(|()| out.flush())
            .expect("write bench file");
        drop(out);
        let file_bytes = std::fs::metadata(&path).expect("bench file").len() as usize;
        let mut runs: Vec<Measured> = (0..3).map(|_| self.push(&dir)).collect();
        runs.sort_by_key(|run| run.time);
        let peak = runs.iter().map(|run| run.peak_rss).max().unwrap_or(0);
        let median = &runs[1];
        println!(
            "{name}: {:.1} MB file, {:.3}s, peak RSS {:.1} MB, exit {}",
            file_bytes as f64 / MB as f64,
            median.time.as_secs_f64(),
            peak as f64 / MB as f64,
            median
                .code
                .map_or("signal".to_string(), |code| code.to_string())
        );
        drop(std::fs::remove_dir_all(&dir));
    }

    fn push(&mut self, dir: &Path) -> Measured {
        self.pushes += 1;
        let target = format!(
            "oci://{}/validate-{}:v1",
            self.registry.host_port(),
            self.pushes
        );
        let cache = tempfile::tempdir().expect("cache directory");
        support::measure::run(
            Command::new(KSAIL)
                .args(["workload", "push", &target, "--path"])
                .arg(dir.join("k8s"))
                .env("XDG_CACHE_HOME", cache.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    }
}

/// A ConfigMap whose `data` is one mapping of about `bytes` bytes, one key a line.
fn single_mapping(out: &mut dyn Write, bytes: usize) -> io::Result<()> {
    let head = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n";
    out.write_all(head.as_bytes())?;
    let mut written = head.len();
    let mut key = 0;
    while written < bytes {
        let line = format!("  key{key:08}: value-{key:08}\n");
        out.write_all(line.as_bytes())?;
        written += line.len();
        key += 1;
    }
    Ok(())
}
