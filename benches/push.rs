//! Push benchmarks (testing.md#benchmarks): `cargo bench --bench push`.
//!
//! Reports figures and asserts nothing. Each run prints one line per figure in a stable
//! `name: value` form so that runs can be compared between commits:
//!
//! The first three are issue 11's table: each full push goes to a fresh repository of a local
//! `docker-registry` with a fresh cache (so validation and compression really run), against the
//! floor `tar --sort=name … | gzip -6 | sha256sum` of the same tree; medians of 5, interleaved.
//!
//! - `push_2000_files`: 2,000 files / 20 MB, half YAML objects, half opaque data; target ≤ 0.6×.
//! - `push_2000_yaml_files`: 2,000 files / 20 MB, all YAML; target ≤ 0.8×.
//! - `push_100mb_file`: one 100 MB YAML file of 100 ConfigMaps of 1 MB; target ≤ 1.5× and peak
//!   RSS ≤ 64 MB (the child's own, from `wait4`).
//! - `push_noop`: the same tree pushed again; registry requests counted through a recording
//!   proxy (expected 1); limit 0.3× a full push.
//! - `startup`: `ksail --version`, median of 50; target 5 ms.
//! - `push_20000_files`: 20,000 files / 200 MB, half YAML half data, against the floor; target
//!   ≤ 0.7× and peak RSS ≤ 64 MB (medians of 3: each push takes seconds).
//! - `push_one_file_changed`: one file of the 2,000-file tree changed, pushed with the cache of
//!   the previous push (as a developer pushes after an edit); target ≤ 0.5× a full push.
//! - `push_2000_files_vs_flux`: the reference peer, `flux push artifact` of the pinned Flux release
//!   (built by `tests/real/build.sh --peers`), pushing the same tree to the same registry, against
//!   a full ksail push (medians of 3, interleaved).

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::measure::Measured;
use support::{Proxy, Registry, RegistryKind};

const KSAIL: &str = env!("CARGO_BIN_EXE_ksail");

fn main() {
    let work = tempfile::tempdir().expect("temporary directory");
    let registry = Registry::start(RegistryKind::Plain).unwrap_or_else(|error| {
        eprintln!("push bench needs docker-registry: {error}");
        std::process::exit(1)
    });
    println!("machine: {}", machine());

    let mut repo = 0;
    let mut next_target = || {
        repo += 1;
        format!("{}/bench-{repo}:v1", registry.host_port())
    };
    let small = work.path().join("tree-20mb");
    generate_tree(&small, 2_000, 20 * 1024 * 1024, 0x5eed, Yaml::Half);
    let full = against_floor("push_2000_files", &small, 0.6, &mut next_target);

    let yaml = work.path().join("tree-20mb-yaml");
    generate_tree(&yaml, 2_000, 20 * 1024 * 1024, 0x5eed, Yaml::All);
    against_floor("push_2000_yaml_files", &yaml, 0.8, &mut next_target);
    drop(std::fs::remove_dir_all(&yaml));

    let one_file = work.path().join("tree-100mb-file");
    std::fs::create_dir_all(&one_file).expect("create bench directory");
    // Written a document at a time: a child's peak RSS from wait4 includes this process's own
    // peak (a spawned child starts on the parent's memory before exec), so the bench never holds
    // the file.
    let mut rng = XorShift(0xf11e);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(one_file.join("all.yaml")).expect("create bench file"),
    );
    for index in 0..100 {
        file.write_all(b"---\n").expect("write bench file");
        file.write_all(&config_map(index, 1024 * 1024, &mut rng))
            .expect("write bench file");
    }
    file.flush().expect("write bench file");
    drop(file);
    let peak = against_floor("push_100mb_file", &one_file, 1.5, &mut next_target);
    println!(
        "push_100mb_file_rss: peak resident memory {:.1} MB (limit 64 MB)",
        peak.peak_rss as f64 / 1024.0 / 1024.0
    );
    drop(std::fs::remove_dir_all(&one_file));

    let proxy = Proxy::start(&registry.host_port());
    let target = format!("{}/bench-noop:v1", proxy.host_port());
    push(&small, &target);
    let noop = median(3, || {
        proxy.clear();
        time(|| push(&small, &target))
    });
    let requests = proxy.requests().len();
    let uploads = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" || r.method == "POST")
        .count();
    println!(
        "push_noop: {:.3}s, ratio {:.2} of a full push (limit 0.30), {requests} registry requests, {uploads} uploads",
        noop.as_secs_f64(),
        noop.as_secs_f64() / full.time.as_secs_f64()
    );

    let startup = median(50, || {
        time(|| {
            let status = Command::new(KSAIL)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .expect("run ksail --version");
            assert!(status.success());
        })
    });
    println!(
        "startup: ksail --version median {:.2} ms (target 5 ms)",
        startup.as_secs_f64() * 1e3
    );

    let changed = one_file_changed(&small, &format!("{}/bench-edit:v1", registry.host_port()));
    println!(
        "push_one_file_changed: {:.3}s, ratio {:.2} of a full push (target 0.5)",
        changed.as_secs_f64(),
        changed.as_secs_f64() / full.time.as_secs_f64()
    );

    let large = work.path().join("tree-200mb");
    generate_tree(&large, 20_000, 200 * 1024 * 1024, 0xb16, Yaml::Half);
    drop(std::fs::remove_dir_all(&small));
    let large_push = against_floor_runs("push_20000_files", &large, 0.7, 3, &mut next_target);
    println!(
        "push_20000_files_rss: peak resident memory {:.1} MB (limit 64 MB)",
        large_push.peak_rss as f64 / 1024.0 / 1024.0
    );

    drop(std::fs::remove_dir_all(&large));
    generate_tree(&small, 2_000, 20 * 1024 * 1024, 0x5eed, Yaml::Half);
    let flux = support::real::components_dir_with_peers().join("bin/flux");
    let (mut flux_samples, mut ksail_samples) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let target = next_target();
        flux_samples.push(time(|| flux_push(&flux, &small, &target)));
        let target = next_target();
        ksail_samples.push(time(|| push(&small, &target)));
    }
    let (flux_median, ksail_median) = (median_of(flux_samples), median_of(ksail_samples));
    println!(
        "push_2000_files_vs_flux: flux push artifact {:.3}s, ksail workload push {:.3}s, ksail/flux {:.2}",
        flux_median.as_secs_f64(),
        ksail_median.as_secs_f64(),
        ksail_median.as_secs_f64() / flux_median.as_secs_f64()
    );
}

/// Which files of a generated tree are YAML objects; the others are opaque data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Yaml {
    Half,
    All,
}

/// Full pushes of `dir` (fresh repository, fresh cache) against the floor, 5 of each,
/// interleaved; prints the line and returns the median push (with the largest peak RSS).
fn against_floor(
    name: &str,
    dir: &Path,
    target_ratio: f64,
    next_target: &mut impl FnMut() -> String,
) -> Measured {
    against_floor_runs(name, dir, target_ratio, 5, next_target)
}

/// [`against_floor`] with `runs` (odd) of each.
fn against_floor_runs(
    name: &str,
    dir: &Path,
    target_ratio: f64,
    runs: usize,
    next_target: &mut impl FnMut() -> String,
) -> Measured {
    let (mut floors, mut pushes) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        floors.push(time(|| baseline_pipeline(dir)));
        let cache = tempfile::tempdir().expect("cache directory");
        let run = support::measure::run(&mut ksail_push(dir, &next_target(), cache.path()));
        assert_eq!(run.code, Some(0), "{name}: ksail workload push failed");
        pushes.push(run);
    }
    let floor = median_of(floors);
    let peak_rss = pushes.iter().map(|run| run.peak_rss).max().unwrap_or(0);
    pushes.sort_by_key(|run| run.time);
    let median = Measured {
        peak_rss,
        ..pushes.swap_remove(runs / 2)
    };
    let ratio = median.time.as_secs_f64() / floor.as_secs_f64();
    println!(
        "{name}: floor {:.3}s, ksail {:.3}s, ratio {ratio:.2} (target {target_ratio:.1})",
        floor.as_secs_f64(),
        median.time.as_secs_f64(),
    );
    median
}

/// A deterministic tree: `files` files totalling about `total` bytes, nested up to depth 4, half
/// or all of them valid YAML objects and the rest opaque data files. Returns the bytes written.
fn generate_tree(root: &Path, files: usize, total: usize, seed: u64, yaml: Yaml) -> usize {
    let mut rng = XorShift(seed);
    let per_file = total / files;
    let mut written = 0;
    for index in 0..files {
        let depth = (rng.next() % 4) as usize;
        let mut dir = root.to_path_buf();
        for level in 0..depth {
            dir.push(format!("d{level}-{}", rng.next() % 6));
        }
        std::fs::create_dir_all(&dir).expect("create bench directory");
        let size = per_file / 2 + (rng.next() as usize % per_file);
        let (name, content) = if yaml == Yaml::All || index % 2 == 0 {
            (
                format!("cm-{index}.yaml"),
                config_map(index, size, &mut rng),
            )
        } else {
            let mut data = vec![0u8; size];
            for chunk in data.chunks_mut(8) {
                let value = rng.next().to_le_bytes();
                chunk.copy_from_slice(&value[..chunk.len()]);
            }
            (format!("blob-{index}.dat"), data)
        };
        written += content.len();
        std::fs::write(dir.join(name), content).expect("write bench file");
    }
    written
}

fn config_map(index: usize, size: usize, rng: &mut XorShift) -> Vec<u8> {
    let mut text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{index}\n  namespace: bench\ndata:\n"
    );
    let mut key = 0;
    while text.len() < size {
        text.push_str(&format!("  key{key}: \"value-{:016x}\"\n", rng.next()));
        key += 1;
    }
    text.into_bytes()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn baseline_pipeline(dir: &Path) {
    let script = format!(
        "tar --sort=name --mtime=@0 --owner=0 --group=0 -cf - -C '{}' . | gzip -6 | sha256sum >/dev/null",
        dir.display()
    );
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .status()
        .expect("run the baseline");
    assert!(status.success(), "baseline pipeline failed");
}

fn ksail_push(dir: &Path, target: &str, cache: &Path) -> Command {
    let mut command = Command::new(KSAIL);
    command
        .args(["workload", "push", &format!("oci://{target}"), "--path"])
        .arg(dir)
        .env("XDG_CACHE_HOME", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// `flux push artifact` of `dir` to `target` (`host:port/repo:tag`), as its docs show it.
fn flux_push(flux: &Path, dir: &Path, target: &str) {
    let status = Command::new(flux)
        .args(["push", "artifact", &format!("oci://{target}")])
        .arg(format!("--path={}", dir.display()))
        .args(["--source=bench", "--revision=v1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run flux push artifact");
    assert!(status.success(), "flux push artifact {target} failed");
}

/// A push with the cache shared by every push of `dir` (the unchanged re-push reads it).
fn push(dir: &Path, target: &str) {
    let cache = dir.parent().unwrap_or(dir).join("cache");
    let status = ksail_push(dir, target, &cache).status().expect("run ksail");
    assert!(status.success(), "ksail workload push {target} failed");
}

/// Median of 5 pushes of `dir` to `target`, each after one YAML file changed, with one cache
/// across them (the first push fills it). The file is put back afterwards.
fn one_file_changed(dir: &Path, target: &str) -> Duration {
    let cache = tempfile::tempdir().expect("cache directory");
    let pushed = || {
        let status = ksail_push(dir, target, cache.path())
            .status()
            .expect("run ksail");
        assert!(status.success(), "ksail workload push {target} failed");
    };
    pushed();
    let file = find(dir, "cm-0.yaml").expect("the tree has cm-0.yaml");
    let original = std::fs::read(&file).expect("read the file to change");
    let runs = median(5, || {
        let mut edited = original.clone();
        edited.extend_from_slice(format!("  edit: \"{:?}\"\n", Instant::now()).as_bytes());
        std::fs::write(&file, edited).expect("change one file");
        time(pushed)
    });
    std::fs::write(&file, original).expect("put the file back");
    runs
}

/// The path of the file called `name` under `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if entry.file_name() == name {
            return Some(path);
        }
    }
    None
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    median_of((0..runs).map(|_| f()).collect())
}

fn median_of(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}
