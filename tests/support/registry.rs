//! A real OCI registry (`docker-registry serve`, Distribution 2.8) on a free loopback port.
//!
//! The configurations are exactly those of testing.md "Real OCI registry". Each handle owns its
//! process and its temporary storage; dropping it kills the one and removes the other.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http;

/// The text testing.md prescribes when the registry binary is absent.
pub const NOT_FOUND_MESSAGE: &str = "docker-registry not found: install the docker-registry package, or set KSAIL_TEST_SKIP_REGISTRY=1";
pub const SKIP_VAR: &str = "KSAIL_TEST_SKIP_REGISTRY";

const BINARY: &str = "docker-registry";
const POLL_INTERVAL: Duration = Duration::from_millis(50);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Retries after the first start when another process grabbed the port in between.
const PORT_RACE_RETRIES: usize = 3;
/// bcrypt's minimum cost: the registry checks the hash on every request, and a realistic cost
/// would add tens of milliseconds to each one.
const BCRYPT_COST: u32 = 4;

#[derive(Debug, Clone, Copy)]
pub enum RegistryKind<'a> {
    Plain,
    /// htpasswd auth with these `(user, password)` pairs.
    Auth {
        users: &'a [(&'a str, &'a str)],
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{NOT_FOUND_MESSAGE}")]
    NotFound,
    #[error("cannot prepare the registry directory {path}: {source}")]
    Setup {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot hash the htpasswd password for {user}: {source}")]
    Htpasswd {
        user: String,
        #[source]
        source: bcrypt::BcryptError,
    },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker-registry exited before it was ready ({status}); its log:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "docker-registry on {host_port} did not answer GET /v2/ with {expected} within 10 s (last: {last}); its log:\n{log}"
    )]
    NotReady {
        host_port: String,
        expected: u16,
        last: String,
        log: String,
    },
    #[error("docker-registry lost the race for a free port {attempts} times; last log:\n{log}")]
    PortRace { attempts: usize, log: String },
}

/// A running registry. Dropping it kills the process and removes its storage.
pub struct Registry {
    child: Child,
    port: u16,
    users: Vec<(String, String)>,
    // Declared last so that the process is gone before its directory is removed.
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(kind: RegistryKind<'_>) -> Result<Registry, RegistryError> {
        let binary = find_binary().ok_or(RegistryError::NotFound)?;
        let dir = tempfile::Builder::new()
            .prefix("ksail-registry-")
            .tempdir()
            .map_err(|source| RegistryError::Setup {
                path: std::env::temp_dir(),
                source,
            })?;
        let users = match kind {
            RegistryKind::Plain => Vec::new(),
            RegistryKind::Auth { users } => {
                write_htpasswd(dir.path(), users)?;
                users
                    .iter()
                    .map(|(u, p)| (u.to_string(), p.to_string()))
                    .collect()
            }
        };
        let auth = matches!(kind, RegistryKind::Auth { .. });
        let expected = if auth { 401 } else { 200 };

        let mut last_log = String::new();
        for _ in 0..=PORT_RACE_RETRIES {
            let port = free_port(dir.path())?;
            let config_path = dir.path().join("config.yml");
            write_file(&config_path, config_yaml(dir.path(), port, auth).as_bytes())?;
            let log_path = dir.path().join("registry.log");
            let mut child = spawn(&binary, &config_path, &log_path)?;
            match wait_ready(&mut child, port, expected, &log_path) {
                Ok(()) => {
                    return Ok(Registry {
                        child,
                        port,
                        users,
                        dir,
                    });
                }
                Err(e) => {
                    reap(&mut child);
                    match e {
                        RegistryError::Exited { log, .. } if is_port_taken(&log) => last_log = log,
                        e => return Err(e),
                    }
                }
            }
        }
        Err(RegistryError::PortRace {
            attempts: PORT_RACE_RETRIES + 1,
            log: last_log,
        })
    }

    /// `127.0.0.1:PORT`, the form a registry string takes.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `(user, password)` pairs of an auth registry; empty for a plain one.
    pub fn users(&self) -> &[(String, String)] {
        &self.users
    }

    /// The registry's storage root (`<tmp>/data`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// What the registry logged so far (level `warn`), for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// Polls `GET /v2/` until it answers `expected`, the process exits, or 10 s pass.
fn wait_ready(
    child: &mut Child,
    port: u16,
    expected: u16,
    log_path: &Path,
) -> Result<(), RegistryError> {
    let host_port = format!("127.0.0.1:{port}");
    let url = format!("http://{host_port}/v2/");
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(RegistryError::Exited {
                status: status.to_string(),
                log: fs::read_to_string(log_path).unwrap_or_default(),
            });
        }
        let last = match http::get(&url, &[]) {
            Ok(response) if response.status == expected => return Ok(()),
            Ok(response) => format!("status {}", response.status),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(RegistryError::NotReady {
                host_port,
                expected,
                last,
                log: fs::read_to_string(log_path).unwrap_or_default(),
            });
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

fn reap(child: &mut Child) {
    // The process may already have exited; either way it must be waited for.
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts a registry, or reports the test as skipped when `KSAIL_TEST_SKIP_REGISTRY=1`.
/// Panics with the prescribed text when the binary is missing and skipping was not asked for.
pub fn start_or_skip(kind: RegistryKind<'_>, test_name: &str) -> Option<Registry> {
    if skip_requested() {
        // Written to the real stderr, not with `println!`: libtest captures the macros' output
        // of passing tests, and a skip must be visible (testing.md: never skip silently).
        let _ = writeln!(
            std::io::stderr().lock(),
            "skipped: {test_name}: {SKIP_VAR}=1"
        );
        return None;
    }
    match Registry::start(kind) {
        Ok(registry) => Some(registry),
        Err(e) => panic!("{e}"),
    }
}

pub fn skip_requested() -> bool {
    std::env::var(SKIP_VAR).is_ok_and(|v| v.trim() == "1")
}

/// Looks the binary up on `PATH` only, so that a missing package is reported, not papered over.
fn find_binary() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(BINARY))
        .find(|candidate| candidate.is_file())
}

fn config_yaml(dir: &Path, port: u16, auth: bool) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: warn\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        data = dir.join("data").display(),
    );
    if auth {
        let _ = write!(
            yaml,
            "auth:\n  htpasswd:\n    realm: ksail-test\n    path: {}\n",
            dir.join("htpasswd").display()
        );
    }
    yaml
}

fn write_htpasswd(dir: &Path, users: &[(&str, &str)]) -> Result<(), RegistryError> {
    let mut content = String::new();
    for (user, password) in users {
        let hash = bcrypt::hash_with_result(password, BCRYPT_COST).map_err(|source| {
            RegistryError::Htpasswd {
                user: user.to_string(),
                source,
            }
        })?;
        // `$2y$` is what Apache's htpasswd writes, the format the registry documents.
        let _ = writeln!(
            content,
            "{user}:{}",
            hash.format_for_version(bcrypt::Version::TwoY)
        );
    }
    write_file(&dir.join("htpasswd"), content.as_bytes())
}

fn write_file(path: &Path, content: &[u8]) -> Result<(), RegistryError> {
    fs::write(path, content).map_err(|source| RegistryError::Setup {
        path: path.to_path_buf(),
        source,
    })
}

/// A port that was free a moment ago. Another process can take it before the registry binds
/// it; `start` detects that from the registry's exit and tries again.
fn free_port(dir: &Path) -> Result<u16, RegistryError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| RegistryError::Setup {
            path: dir.to_path_buf(),
            source,
        })
}

fn spawn(binary: &Path, config: &Path, log_path: &Path) -> Result<Child, RegistryError> {
    let log = fs::File::create(log_path).map_err(|source| RegistryError::Setup {
        path: log_path.to_path_buf(),
        source,
    })?;
    let log_err = log.try_clone().map_err(|source| RegistryError::Setup {
        path: log_path.to_path_buf(),
        source,
    })?;
    Command::new(binary)
        .arg("serve")
        .arg(config)
        // The registry must not pick up proxy settings or OTEL exporters from the developer.
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|source| RegistryError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })
}

fn is_port_taken(log: &str) -> bool {
    log.contains("address already in use")
}
