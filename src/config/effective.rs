//! The effective settings (config.md#precedence): for every key, the first of flag, canonical env
//! var, alias env var, `ksail.yaml` and default that provides a value wins. Each value keeps its
//! [`Source`], so a later check (the registry grammar, a cluster command's rules) can say where a
//! bad value came from, and `-v` can log it.
//!
//! Environment and flag values are never `${VAR}`-expanded here: only file values are (at load).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::keys::{
    DEFAULT_KUBECONFIG, DEFAULT_SIGNING_PASSWORD_ENV_VAR, DEFAULT_SOURCE_DIRECTORY, Distribution,
    FLUX_DISTRIBUTION_VERSION, FLUX_OPERATOR_VERSION, GITOPS_DEFAULT_REGISTRY, GitOpsEngine, Key,
};
use super::load::{LoadedFile, expansion_note};
use super::value::{Problem, Val, interpret};
use crate::cluster::mirrors::DEFAULT_MIRRORS;
use crate::duration::format_go;
use crate::yaml::Pos;

/// Where an effective value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag, named with its dashes (`--gitops-engine`).
    Flag(&'static str),
    /// An environment variable, by name.
    Env(String),
    /// The loaded `ksail.yaml`, at the value's position.
    File(Pos),
    Default,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

/// A path as written (for messages and base names) and as resolved (config.md#relative-paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    pub written: String,
    pub resolved: PathBuf,
}

/// Command-line values that override keys. Enum, duration and path flags are raw strings: they
/// are parsed and validated here, by the same rules as env and file values, so that an error
/// names the flag. `timeout` is the raw `--timeout` text (Go duration syntax). An empty text
/// flag is treated like `""` in the file: unset (falling through to env and file) for registry,
/// tag-like and path keys, `None` for the engine, an error for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlagOverrides {
    pub name: Option<String>,
    pub distribution: Option<String>,
    pub distribution_config: Option<String>,
    pub gitops_engine: Option<String>,
    pub local_registry: Option<String>,
    pub insecure: Option<bool>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub timeout: Option<String>,
    /// `workload push --timeout`.
    pub push_timeout: Option<String>,
    /// `--signing-key` (push, watch, keygen).
    pub signing_key: Option<String>,
    pub source_directory: Option<String>,
    pub kustomization_file: Option<String>,
    /// `--validate` (Some(true)) or `--no-validate` (Some(false)).
    pub validate_on_push: Option<bool>,
}

/// The signing keys (docs/signing.md). The public key is the private key's path with `.key`
/// replaced by `.pub` unless `publicKey` says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    pub key: Sourced<ConfigPath>,
    pub public_key: Sourced<ConfigPath>,
    pub password_env_var: Sourced<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub token_env_var: Option<Sourced<String>>,
    pub cli_token_env_var: Option<Sourced<String>>,
    pub cluster_token_env_var: Option<Sourced<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Effective {
    pub name: Option<Sourced<String>>,
    pub distribution: Sourced<Distribution>,
    /// `None` only for distributions without a default config file (not Vanilla or K3s).
    pub distribution_config: Option<Sourced<ConfigPath>>,
    pub gitops_engine: Sourced<GitOpsEngine>,
    /// Includes the `localhost:5050` GitOps default (with `Source::Default`).
    pub registry: Option<Sourced<String>>,
    pub credentials: Credentials,
    pub insecure: Sourced<bool>,
    /// Also honours `KUBECONFIG` (after the `KSAIL_…` names, before the file).
    pub kubeconfig: Sourced<Vec<ConfigPath>>,
    pub context: Option<Sourced<String>>,
    /// Unset means "the command's own default" (reconcile 5m, create/update 10m).
    pub timeout: Option<Sourced<Duration>>,
    pub push_timeout: Option<Sourced<Duration>>,
    /// `spec.workload.signing.*`; `None` when no signing key is configured.
    pub signing: Option<Signing>,
    pub source_directory: Sourced<ConfigPath>,
    pub tag: Option<Sourced<String>>,
    pub validate_on_push: Sourced<bool>,
    /// Normalised (no leading `./`, no trailing `/`); relative to the source directory.
    pub kustomization_file: Option<Sourced<String>>,
    /// Without a leading `v`.
    pub flux_operator_version: Sourced<String>,
    pub flux_distribution_version: Sourced<String>,
    /// `spec.cluster.mirrorRegistries` as written (validated), or the default list.
    pub mirror_registries: Sourced<String>,
    /// The loaded file's path and its name in messages, when a file was found.
    pub config_file: Option<PathBuf>,
    pub file_display: Option<String>,
    expansions: BTreeMap<Pos, Vec<String>>,
}

/// The OS path-list separator, as kubectl uses it for kubeconfig lists.
pub(super) const PATH_LIST_SEPARATOR: char = if cfg!(windows) { ';' } else { ':' };

/// Combine flags, environment, file and defaults into the effective settings.
pub fn effective(
    file: Option<&LoadedFile>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &FlagOverrides,
    cwd: &Path,
) -> Result<Effective, ConfigError> {
    let resolver = Resolver {
        file,
        env,
        flags,
        cwd,
        file_dir: file.map(|file| cwd.join(&file.dir)),
        home: env("HOME")
            .filter(|home| !home.is_empty())
            .or_else(|| env("USERPROFILE").filter(|home| !home.is_empty()))
            .map(PathBuf::from),
    };
    let distribution = resolver
        .pick(Key::Distribution)?
        .map(|sourced| sourced.map(to_distribution))
        .unwrap_or_else(|| defaulted(Distribution::Vanilla));
    let distribution_config = match resolver.pick_text(Key::DistributionConfig)? {
        Some(sourced) => Some(resolver.path(sourced)),
        None => distribution
            .value
            .default_config_file()
            .map(|written| resolver.path(defaulted(written.to_string()))),
    };
    let gitops_engine = resolver
        .pick(Key::GitOpsEngine)?
        .map(|sourced| sourced.map(to_gitops_engine))
        .unwrap_or_else(|| defaulted(GitOpsEngine::None));
    // The GitOps default comes last: only when no source set a registry (config.md#precedence).
    let registry = resolver
        .pick_text(Key::Registry)?
        .filter(|sourced| !sourced.value.trim().is_empty())
        .or_else(|| {
            (gitops_engine.value != GitOpsEngine::None)
                .then(|| defaulted(GITOPS_DEFAULT_REGISTRY.to_string()))
        });
    let kubeconfig = resolver
        .pick_text(Key::Kubeconfig)?
        .unwrap_or_else(|| defaulted(DEFAULT_KUBECONFIG.to_string()));
    let source_directory = resolver
        .pick_text(Key::SourceDirectory)?
        .unwrap_or_else(|| defaulted(DEFAULT_SOURCE_DIRECTORY.to_string()));
    Ok(Effective {
        name: resolver.pick_text(Key::MetadataName)?,
        distribution,
        distribution_config,
        gitops_engine,
        registry,
        credentials: Credentials {
            token_env_var: resolver.pick_text(Key::TokenEnvVar)?,
            cli_token_env_var: resolver.pick_text(Key::CliTokenEnvVar)?,
            cluster_token_env_var: resolver.pick_text(Key::ClusterTokenEnvVar)?,
        },
        insecure: resolver.pick_bool(Key::Insecure, false)?,
        kubeconfig: resolver.path_list(kubeconfig),
        context: resolver.pick_text(Key::Context)?,
        timeout: resolver.pick_duration(Key::Timeout)?,
        push_timeout: resolver.pick_duration(Key::PushTimeout)?,
        signing: resolver.signing()?,
        source_directory: resolver.path(source_directory),
        tag: resolver.pick_text(Key::Tag)?,
        validate_on_push: resolver.pick_bool(Key::ValidateOnPush, true)?,
        kustomization_file: resolver.pick_text(Key::KustomizationFile)?,
        flux_operator_version: resolver
            .pick_text(Key::FluxOperatorVersion)?
            .unwrap_or_else(|| defaulted(FLUX_OPERATOR_VERSION.to_string())),
        flux_distribution_version: resolver
            .pick_text(Key::FluxDistributionVersion)?
            .unwrap_or_else(|| defaulted(FLUX_DISTRIBUTION_VERSION.to_string())),
        mirror_registries: resolver
            .pick_text(Key::MirrorRegistries)?
            .unwrap_or_else(|| defaulted(DEFAULT_MIRRORS.to_string())),
        config_file: file.map(|file| file.path.clone()),
        file_display: file.map(|file| file.display.clone()),
        expansions: file
            .map(|file| {
                file.values
                    .values()
                    .filter(|value| !value.expanded_from.is_empty())
                    .map(|value| (value.pos, value.expanded_from.clone()))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

impl<T> Sourced<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            source: self.source,
        }
    }
}

fn defaulted<T>(value: T) -> Sourced<T> {
    Sourced {
        value,
        source: Source::Default,
    }
}

fn to_distribution(value: Val) -> Distribution {
    match value {
        Val::Enum(name) => Distribution::parse(name),
        _ => None,
    }
    // Unreachable fallback: an enum key only yields its canonical values.
    .unwrap_or(Distribution::Vanilla)
}

fn to_gitops_engine(value: Val) -> GitOpsEngine {
    match value {
        Val::Enum(name) => GitOpsEngine::parse(name),
        _ => None,
    }
    .unwrap_or(GitOpsEngine::None)
}

struct Resolver<'a> {
    file: Option<&'a LoadedFile>,
    env: &'a dyn Fn(&str) -> Option<String>,
    flags: &'a FlagOverrides,
    cwd: &'a Path,
    file_dir: Option<PathBuf>,
    home: Option<PathBuf>,
}

enum FlagValue<'a> {
    Text(&'a str),
    Bool(bool),
}

impl Resolver<'_> {
    /// `spec.workload.signing`: only a signing key turns signing on; the public key and the
    /// password variable are read with it.
    fn signing(&self) -> Result<Option<Signing>, ConfigError> {
        let Some(key) = self
            .pick_text(Key::Signing)?
            .filter(|key| !key.value.trim().is_empty())
        else {
            return Ok(None);
        };
        let public_key = self.pick_text(Key::SigningPublic)?.unwrap_or_else(|| {
            let written = &key.value;
            let stem = written.strip_suffix(".key").unwrap_or(written);
            key.clone().map(|_| format!("{stem}.pub"))
        });
        let password_env_var = self
            .pick_text(Key::SigningPasswordEnvVar)?
            .unwrap_or_else(|| defaulted(DEFAULT_SIGNING_PASSWORD_ENV_VAR.to_string()));
        Ok(Some(Signing {
            key: self.path(key),
            public_key: self.path(public_key),
            password_env_var,
        }))
    }

    fn flag(&self, key: Key) -> Option<(&'static str, FlagValue<'_>)> {
        let flags = self.flags;
        fn text<'a>(
            flag: &'static str,
            value: &'a Option<String>,
        ) -> Option<(&'static str, FlagValue<'a>)> {
            value.as_deref().map(|value| (flag, FlagValue::Text(value)))
        }
        match key {
            Key::MetadataName => text("--name", &flags.name),
            Key::Distribution => text("--distribution", &flags.distribution),
            Key::DistributionConfig => text("--distribution-config", &flags.distribution_config),
            Key::GitOpsEngine => text("--gitops-engine", &flags.gitops_engine),
            Key::Registry => text("--local-registry", &flags.local_registry),
            Key::Kubeconfig => text("--kubeconfig", &flags.kubeconfig),
            Key::Context => text("--context", &flags.context),
            Key::Timeout => text("--timeout", &flags.timeout),
            Key::PushTimeout => text("--timeout", &flags.push_timeout),
            Key::Signing => text("--signing-key", &flags.signing_key),
            Key::SourceDirectory => text("--source-directory", &flags.source_directory),
            Key::KustomizationFile => text("--kustomization-file", &flags.kustomization_file),
            Key::Insecure => flags.insecure.map(|b| ("--insecure", FlagValue::Bool(b))),
            Key::ValidateOnPush => flags.validate_on_push.map(|b| {
                let flag = if b { "--validate" } else { "--no-validate" };
                (flag, FlagValue::Bool(b))
            }),
            _ => None,
        }
    }

    fn env_names(key: Key) -> Vec<&'static str> {
        let spec = key.spec();
        let mut names = vec![spec.env];
        names.extend(spec.env_alias);
        if key == Key::Kubeconfig {
            names.push(crate::env_vars::KUBECONFIG); // kubectl's variable ranks below ksail's own (cli.md)
        }
        names
    }

    fn pick(&self, key: Key) -> Result<Option<Sourced<Val>>, ConfigError> {
        let spec = key.spec();
        let found = |value: Val, source: Source| Ok(Some(Sourced { value, source }));
        match self.flag(key) {
            Some((flag, FlagValue::Bool(b))) => return found(Val::Bool(b), Source::Flag(flag)),
            Some((flag, FlagValue::Text(text))) => {
                let origin = format!("flag {flag}");
                if let Some(value) = interpret(spec, text).map_err(|p| plain_error(origin, p))? {
                    return found(value, Source::Flag(flag));
                }
            }
            None => {}
        }
        for name in Self::env_names(key) {
            // An empty variable counts as unset (config.md#precedence).
            let Some(text) = (self.env)(name).filter(|text| !text.is_empty()) else {
                continue;
            };
            let origin = format!("environment variable {name}");
            if let Some(value) = interpret(spec, &text).map_err(|p| plain_error(origin, p))? {
                return found(value, Source::Env(name.to_string()));
            }
        }
        match self.file.and_then(|file| file.get(key)) {
            Some(file_value) => found(file_value.value.clone(), Source::File(file_value.pos)),
            None => Ok(None),
        }
    }

    fn pick_text(&self, key: Key) -> Result<Option<Sourced<String>>, ConfigError> {
        Ok(self.pick(key)?.map(|sourced| {
            sourced.map(|value| match value {
                Val::Str(text) => text,
                Val::Enum(name) => name.to_string(),
                Val::Bool(b) => b.to_string(),
                Val::Duration(duration) => format_go(duration),
            })
        }))
    }

    fn pick_duration(&self, key: Key) -> Result<Option<Sourced<Duration>>, ConfigError> {
        Ok(self.pick(key)?.map(|sourced| {
            sourced.map(|value| match value {
                Val::Duration(duration) => duration,
                _ => Duration::ZERO, // unreachable: a Duration key only yields durations
            })
        }))
    }

    fn pick_bool(&self, key: Key, default: bool) -> Result<Sourced<bool>, ConfigError> {
        Ok(self
            .pick(key)?
            .map(|sourced| sourced.map(|value| value == Val::Bool(true)))
            .unwrap_or_else(|| defaulted(default)))
    }

    fn base_dir(&self, source: &Source) -> &Path {
        match (source, &self.file_dir) {
            (Source::File(_) | Source::Default, Some(dir)) => dir,
            _ => self.cwd,
        }
    }

    fn resolve(&self, written: &str, source: &Source) -> PathBuf {
        if let Some(home) = &self.home {
            if written == "~" {
                return home.clone();
            }
            if let Some(rest) = written.strip_prefix("~/") {
                return home.join(rest);
            }
        }
        self.base_dir(source).join(written)
    }

    fn path(&self, sourced: Sourced<String>) -> Sourced<ConfigPath> {
        let resolved = self.resolve(&sourced.value, &sourced.source);
        sourced.map(|written| ConfigPath { written, resolved })
    }

    fn path_list(&self, sourced: Sourced<String>) -> Sourced<Vec<ConfigPath>> {
        let paths = sourced
            .value
            .split(PATH_LIST_SEPARATOR)
            .filter(|part| !part.is_empty())
            .map(|part| ConfigPath {
                written: part.to_string(),
                resolved: self.resolve(part, &sourced.source),
            })
            .collect();
        Sourced {
            value: paths,
            source: sourced.source,
        }
    }
}

fn plain_error(origin: String, problem: Problem) -> ConfigError {
    ConfigError::Value {
        origin,
        problem: problem.problem,
        note: String::new(),
        fix: problem.fix,
    }
}

impl Effective {
    /// Where a value came from, as an error prefix: `ksail.yaml:7:19: spec.cluster.localRegistry.registry`,
    /// `environment variable KSAIL_…`, `flag --local-registry`, or `<key> (default)`.
    pub fn origin(&self, key: Key, source: &Source) -> String {
        match source {
            Source::Flag(flag) => format!("flag {flag}"),
            Source::Env(name) => format!("environment variable {name}"),
            Source::File(pos) => {
                let file = self.file_display.as_deref().unwrap_or(super::FILE_NAME);
                format!("{file}:{pos}: {}", key.path())
            }
            Source::Default => format!("{} (default)", key.path()),
        }
    }

    /// ` (after expanding ${NAME})` when the value came from an expanded file value.
    pub fn expansion_note(&self, source: &Source) -> String {
        match source {
            Source::File(pos) => self
                .expansions
                .get(pos)
                .map(|names| expansion_note(names))
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// An error about an effective value, in the same form as the loader's errors. `problem` and
    /// `fix` must not contain secrets.
    pub fn value_error(&self, key: Key, source: &Source, problem: &str, fix: &str) -> ConfigError {
        ConfigError::Value {
            origin: self.origin(key, source),
            problem: problem.to_string(),
            note: self.expansion_note(source),
            fix: fix.to_string(),
        }
    }
}
