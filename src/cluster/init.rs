//! A new project (cluster.md#cluster-init): validate every flag, then write `ksail.yaml`, the
//! distribution config and the source directory's kustomization, each created, skipped or
//! overwritten. An existing kustomization is always kept: it lists the user's manifests, which
//! `--force` must not throw away. It never reads an existing `ksail.yaml` or the environment: the
//! output depends only on the flags and the defaults.
//!
//! A literal registry password is not written: ksail.yaml is committed, so it reads the password
//! from `${KSAIL_REGISTRY_PASSWORD}` instead ([`InitPlan::password_variable`]).
//!
//! [`plan`] is pure (flags → files); only [`write`] touches the filesystem, and only after the
//! plan exists and every path is confined to the project directory ([`confine`]), so a
//! validation failure leaves the project directory, and everything outside it, exactly as it was.

use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::cluster::scaffold::{KsailYaml, distribution_config, ksail_yaml};
use crate::config::{
    self, DEFAULT_SOURCE_DIRECTORY, Distribution, Effective, FlagOverrides, GitOpsEngine, Key,
    Source,
};
use crate::env_vars::KSAIL_REGISTRY_PASSWORD;
use crate::error::Failure;
use crate::resolve::{parse_registry, registry_password, replace_registry_password};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "{origin}: distribution {distribution} is not supported by ksail cluster commands; supported: Vanilla, K3s"
    )]
    UnsupportedDistribution {
        origin: String,
        distribution: Distribution,
    },
    #[error(
        "{origin}: {path} is also the path of {other}; choose a path that no other scaffold file uses"
    )]
    PathClash {
        origin: &'static str,
        path: String,
        other: String,
    },
    #[error("flag --directory: {directory} exists and is not a directory; choose a directory")]
    NotADirectory { directory: String },
    #[error(
        "{origin}{path} {how} outside the project directory {project}; init writes only inside it: {fix}"
    )]
    Outside {
        /// `flag --source-directory: `, or empty for a default path.
        origin: String,
        path: String,
        /// What puts it outside, ending where "outside" can follow (`resolves to /x,`).
        how: String,
        project: String,
        fix: &'static str,
    },
    #[error(
        "{origin}{path} leads into a loop of symlinks; replace the symlink with a file or directory"
    )]
    SymlinkLoop { origin: String, path: String },
    #[error("cannot create directory {path}: {source}; {}", create_dir_fix(.source))]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot write {path}: {source}; check the permissions and that the path is not a directory"
    )]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl From<InitError> for Failure {
    fn from(error: InitError) -> Self {
        match error {
            InitError::UnsupportedDistribution { .. }
            | InitError::PathClash { .. }
            | InitError::NotADirectory { .. }
            | InitError::Outside { .. }
            | InitError::SymlinkLoop { .. } => Failure::usage(error.to_string()),
            InitError::CreateDir { .. } | InitError::Write { .. } => {
                Failure::failed(error.to_string())
            }
        }
    }
}

/// The global flags `init` writes into `spec.cluster.connection`.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
}

/// What `init` will write, in the order of the spec's table. Paths are relative to the project
/// directory unless the user gave absolute ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitPlan {
    pub files: Vec<PlannedFile>,
    /// The source directory as written, and the flag that chose it: when the kustomization would
    /// land outside the project directory because this directory does, the error names it.
    pub source_directory: PathBuf,
    pub source_flag: Option<&'static str>,
    /// The variable ksail.yaml reads the registry password from, when `--local-registry` held a
    /// literal one that [`plan`] replaced with a reference to it.
    pub password_variable: Option<&'static str>,
}

impl InitPlan {
    /// The line that tells the user to set [`InitPlan::password_variable`], once `outcomes` show
    /// that ksail.yaml was written (a skipped one still holds what it held).
    pub fn password_notice(&self, outcomes: &[FileOutcome]) -> Option<String> {
        let variable = self.password_variable?;
        outcomes
            .iter()
            .any(|file| {
                file.kind == FileKind::KsailYaml
                    && matches!(file.action, FileAction::Created | FileAction::Overwrote)
            })
            .then(|| {
                format!(
                    "the registry password is not written to ksail.yaml; it reads ${{{variable}}} instead: set {variable} to the password before ksail cluster create or ksail workload push"
                )
            })
    }
}

/// One file of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub kind: FileKind,
    /// Relative to the project directory (absolute when the user gave an absolute path).
    pub path: PathBuf,
    /// The flag that chose `path` (`--distribution-config`); `None` for a fixed or default path.
    pub flag: Option<&'static str>,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    KsailYaml,
    DistributionConfig,
    /// `<source>[/<kustomizationFile>]/kustomization.yaml`: never overwritten.
    Kustomization,
}

/// What happened to one file of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    pub kind: FileKind,
    /// As the output shows it: relative to the current directory (cluster.md#cluster-init).
    pub path: String,
    pub action: FileAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Created,
    /// It exists and `--force` was not given.
    Skipped,
    Overwrote,
    /// The kustomization exists: left as it is, with or without `--force`.
    Kept,
}

impl FileAction {
    /// The word the output line starts with, and the JSON `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Created => "created",
            FileAction::Skipped => "skipped",
            FileAction::Overwrote => "overwrote",
            FileAction::Kept => "kept",
        }
    }
}

/// Write `plan` into `directory` (as the user wrote it, relative to `cwd`): each file created,
/// skipped because it exists (unless `force`), overwritten, or kept (an existing kustomization).
/// `written` gets one outcome per file handled, also when a later file fails.
pub fn write(
    plan: &InitPlan,
    directory: &str,
    cwd: &Path,
    force: bool,
    written: &mut Vec<FileOutcome>,
) -> Result<(), Failure> {
    let project = cwd.join(directory);
    if project.exists() && !project.is_dir() {
        return Err(InitError::NotADirectory {
            directory: directory.to_string(),
        }
        .into());
    }
    let actions: Vec<FileAction> = plan
        .files
        .iter()
        .map(|file| decide(&project.join(&file.path), file.kind, force))
        .collect();
    confine::check(plan, &project, &actions)?;
    for (file, action) in plan.files.iter().zip(actions) {
        let shown = shown_path(directory, &file.path);
        write_file(&project.join(&file.path), &file.content, action)
            .map_err(|error| error.named(&shown))?;
        written.push(FileOutcome {
            kind: file.kind,
            path: shown,
            action,
        });
    }
    Ok(())
}

/// Validate the flags `init` takes (the project keys of [`FlagOverrides`]) and build the files (cluster.md "Validation first"). Pure: `cwd` is only
/// used to resolve paths inside the effective settings, nothing is read.
pub fn plan(
    flags: &FlagOverrides,
    connection: &Connection,
    cwd: &Path,
) -> Result<InitPlan, Failure> {
    // No file and no environment: init's output depends only on its flags (config.md).
    let effective = config::effective(None, &|_| None, flags, cwd)?;
    let distribution = effective.distribution.value;
    let Some(default_config) = distribution
        .default_config_file()
        .filter(|_| matches!(distribution, Distribution::Vanilla | Distribution::K3s))
    else {
        return Err(InitError::UnsupportedDistribution {
            origin: effective.origin(Key::Distribution, &effective.distribution.source),
            distribution,
        }
        .into());
    };
    let mirror = local_mirror(&effective)?;
    let cluster = crate::resolve::cluster_name(
        effective.name.as_ref().map(|name| name.value.as_str()),
        None,
        None,
        distribution.as_str(),
        None,
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| distribution.as_str().to_ascii_lowercase());

    let config_written = effective
        .distribution_config
        .as_ref()
        .map_or(default_config, |path| path.value.written.as_str());
    let source_written = effective.source_directory.value.written.as_str();
    let kustomization_file = effective
        .kustomization_file
        .as_ref()
        .map(|file| file.value.clone());
    let source_flag = flag_of(&effective.source_directory.source);

    let (registry, password_variable) = match &effective.registry {
        Some(registry) => match without_literal_password(&registry.value) {
            Some(replaced) => (Some(replaced), Some(KSAIL_REGISTRY_PASSWORD)),
            None => (Some(registry.value.clone()), None),
        },
        None => (None, None),
    };
    let values = KsailYaml {
        name: effective.name.as_ref().map(|name| name.value.clone()),
        distribution: (distribution != Distribution::Vanilla).then_some(distribution),
        distribution_config: (normalised(config_written) != normalised(default_config))
            .then(|| config_written.to_string()),
        kubeconfig: non_empty(&connection.kubeconfig),
        context: non_empty(&connection.context),
        gitops_engine: Some(effective.gitops_engine.value)
            .filter(|engine| *engine != GitOpsEngine::None),
        registry,
        source_directory: (normalised(source_written) != normalised(DEFAULT_SOURCE_DIRECTORY))
            .then(|| source_written.to_string()),
        kustomization_file: kustomization_file.clone(),
    };
    let mut kustomization = PathBuf::from(source_written);
    if let Some(file) = &kustomization_file {
        kustomization.push(file);
    }
    kustomization.push("kustomization.yaml");

    let files = vec![
        PlannedFile {
            kind: FileKind::KsailYaml,
            path: PathBuf::from(config::FILE_NAME),
            flag: None,
            content: ksail_yaml(&values),
        },
        PlannedFile {
            kind: FileKind::DistributionConfig,
            path: PathBuf::from(config_written),
            flag: effective
                .distribution_config
                .as_ref()
                .and_then(|path| flag_of(&path.source)),
            content: distribution_config(distribution, &cluster, mirror.as_deref())
                .unwrap_or_default(),
        },
        PlannedFile {
            kind: FileKind::Kustomization,
            path: kustomization,
            flag: effective
                .kustomization_file
                .as_ref()
                .and_then(|file| flag_of(&file.source))
                .or(source_flag),
            content: crate::cluster::scaffold::KUSTOMIZATION_YAML.to_string(),
        },
    ];
    check_distinct_paths(&files)?;
    Ok(InitPlan {
        files,
        source_directory: PathBuf::from(source_written),
        source_flag,
        password_variable,
    })
}

/// The registry string with a literal password replaced by `${KSAIL_REGISTRY_PASSWORD}`; `None`
/// when it has no password or one written only as `${…}` references (defaults included: how the
/// user chose to write it). Any literal character makes the whole password go, so that no part
/// of a secret lands in the file.
fn without_literal_password(registry: &str) -> Option<String> {
    // Every reference expands to a character no command-line argument can hold; literal text
    // is whatever is left. The string was checked against the expansion syntax already.
    const MARKER: &str = "\0";
    let password = registry_password(registry)?;
    let only_references = config::expand(password, &|_| Some(MARKER.to_string()))
        .is_ok_and(|expansion| expansion.text.replace(MARKER, "").is_empty());
    if only_references {
        return None;
    }
    replace_registry_password(registry, &format!("${{{KSAIL_REGISTRY_PASSWORD}}}"))
}

/// The flag a value came from; init reads no file or environment, so anything else is a default.
fn flag_of(source: &Source) -> Option<&'static str> {
    match source {
        Source::Flag(flag) => Some(flag),
        _ => None,
    }
}

/// The `host:port` that gets a containerd mirror: the registry when it is local (loopback), not
/// for an external one. The string is checked against the registry grammar, and its `${VAR}`
/// references against the expansion syntax, because the written file is expanded when loaded.
fn local_mirror(effective: &Effective) -> Result<Option<String>, Failure> {
    let Some(registry) = &effective.registry else {
        return Ok(None);
    };
    let reference_error = |problem: &str, fix: &str| {
        Failure::from(effective.value_error(Key::Registry, &registry.source, problem, fix))
    };
    config::expand(&registry.value, &|_| None).map_err(|error| {
        let (problem, fix) = error.parts();
        reference_error(&problem, &fix)
    })?;
    let spec = match crate::settings::config_registry(effective) {
        Ok(spec) => spec,
        // A placeholder outside the credentials (`${REGISTRY_HOST}:5000`) can only be checked once
        // it is expanded, when a command loads the file; decide the mirror from its defaults.
        Err(_) if registry.value.contains("${") => config::expand(&registry.value, &|_| None)
            .ok()
            .and_then(|expanded| parse_registry(&expanded.text).ok().flatten()),
        Err(failure) => return Err(failure),
    };
    Ok(spec.filter(|spec| spec.local).map(|spec| spec.host_port()))
}

/// Two scaffold files at one path would overwrite each other (`--distribution-config ksail.yaml`).
fn check_distinct_paths(files: &[PlannedFile]) -> Result<(), InitError> {
    // The flag that chose each file's path; ksail.yaml's is fixed, so it is never the later one.
    const ORIGINS: [&str; 3] = [
        "ksail.yaml",
        "flag --distribution-config",
        "flag --source-directory",
    ];
    for (later, file) in files.iter().enumerate() {
        if let Some(earlier) = files[..later]
            .iter()
            .find(|earlier| lexical(&earlier.path) == lexical(&file.path))
        {
            return Err(InitError::PathClash {
                origin: ORIGINS[later.min(ORIGINS.len() - 1)],
                path: file.path.display().to_string(),
                other: earlier.path.display().to_string(),
            });
        }
    }
    Ok(())
}

/// A path without `.` components, for comparing what the user wrote.
fn lexical(path: &Path) -> Vec<Component<'_>> {
    path.components()
        .filter(|component| *component != Component::CurDir)
        .collect()
}

/// `./k8s/` and `k8s` name the same default.
fn normalised(path: &str) -> Vec<Component<'_>> {
    lexical(Path::new(path))
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|value| !value.is_empty())
}

/// A file path as the output lines show it: relative to the current directory, so with the
/// `--directory` prefix unless that is `.`.
fn shown_path(directory: &str, path: &Path) -> String {
    if path.is_absolute() || lexical(Path::new(directory)).is_empty() {
        path.display().to_string()
    } else {
        Path::new(directory).join(path).display().to_string()
    }
}

/// An IO failure before the path is named for the user.
enum WriteError {
    CreateDir(PathBuf, std::io::Error),
    Write(std::io::Error),
}

impl WriteError {
    fn named(self, shown: &str) -> InitError {
        match self {
            WriteError::CreateDir(path, source) => InitError::CreateDir {
                path: path.display().to_string(),
                source,
            },
            WriteError::Write(source) => InitError::Write {
                path: shown.to_string(),
                source,
            },
        }
    }
}

/// What `init` does with the file at `path`. Anything there counts as existing, even a dangling
/// symlink. An existing file is overwritten only with `force`, an existing kustomization never:
/// it lists the user's manifests, and the empty one `init` writes would drop them.
fn decide(path: &Path, kind: FileKind, force: bool) -> FileAction {
    let exists = std::fs::symlink_metadata(path).is_ok();
    match (exists, kind) {
        (false, _) => FileAction::Created,
        (true, FileKind::Kustomization) => FileAction::Kept,
        (true, _) if force => FileAction::Overwrote,
        (true, _) => FileAction::Skipped,
    }
}

/// Carry out `action` for one file. New files get mode 0644 and new directories 0755 (before
/// the umask).
fn write_file(path: &Path, content: &str, action: FileAction) -> Result<(), WriteError> {
    let mut options = std::fs::OpenOptions::new();
    match action {
        FileAction::Skipped | FileAction::Kept => return Ok(()),
        FileAction::Created => options.create_new(true),
        FileAction::Overwrote => options.create(true).truncate(true),
    };
    if let Some(parent) = path.parent() {
        create_dirs(parent).map_err(|error| WriteError::CreateDir(parent.to_path_buf(), error))?;
    }
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options.open(path).map_err(WriteError::Write)?;
    file.write_all(content.as_bytes())
        .map_err(WriteError::Write)
}

fn create_dirs(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir)
}

mod confine;
#[cfg(test)]
mod tests;

/// What to do when a directory cannot be created, for the reason it could not.
fn create_dir_fix(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => "check the permissions of its parent",
        std::io::ErrorKind::NotFound => {
            "its parent does not exist or cannot hold directories; create the parent first or choose another --directory"
        }
        std::io::ErrorKind::NotADirectory => {
            "a component of the path is a file, not a directory; choose another --directory"
        }
        _ => "choose another --directory",
    }
}
