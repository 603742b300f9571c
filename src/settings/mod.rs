//! Flags + `KSAIL_*` environment + `ksail.yaml` + defaults → one typed settings value per
//! command. Every input error that can be found without I/O is found here, before any command
//! sends a request (cli.md#exit-codes).

pub mod cluster;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{PushArgs, ReconcileArgs};
use crate::config::{self, ConfigPath, Effective, FlagOverrides, GitOpsEngine, Key};
use crate::context::Context;
use crate::env_vars;
use crate::error::Failure;
use crate::gitops::diagnostics;
use crate::gitops::flux::Excludes;
use crate::gitops::flux::helm_recovery::RecoveryBounds;
use crate::k8s::KubeTarget;
use crate::output::{OutputFormat, register_secret};
use crate::registry::auth::{CredentialRequest, RegistryStringCredentials, TokenEnvVars};
use crate::resolve::{
    self, PushTarget, RegistrySpec, ResolveInputs, SyncTarget, parse_oci_ref, parse_registry,
};
use crate::retry::RetryPolicy;
use crate::signing::{KeyError, Signer};

/// Find, load and combine the configuration. Load warnings are printed here, once per command.
pub fn load_effective(ctx: &Context, flags: &FlagOverrides) -> Result<Effective, Failure> {
    load_with(ctx, flags, |_| Ok(()))
}

/// [`load_effective`] plus the rules only the cluster commands have (config.md "Keys that load
/// but are not used"): `flux.verify` and a non-Docker `provider` would silently change what gets
/// created, so they stop the run.
pub fn load_effective_for_cluster(
    ctx: &Context,
    flags: &FlagOverrides,
) -> Result<Effective, Failure> {
    load_with(ctx, flags, |file| {
        if let Some(pos) = file.flux_verify {
            return Err(Failure::usage(format!(
                "{}:{pos}: spec.workload.flux.verify is not supported by ksail cluster commands: the source would be created without verification; remove the key",
                file.display
            )));
        }
        if let Some(provider) = &file.provider
            && let Some(value) = &provider.value
            && !value.eq_ignore_ascii_case("Docker")
        {
            return Err(Failure::usage(format!(
                "{}:{}: spec.cluster.provider: {value:?} is not supported by ksail cluster commands; supported: Docker",
                file.display, provider.pos
            )));
        }
        Ok(())
    })
}

fn load_with(
    ctx: &Context,
    flags: &FlagOverrides,
    check: impl Fn(&config::LoadedFile) -> Result<(), Failure>,
) -> Result<Effective, Failure> {
    if ctx.global.config.is_none() {
        warn_empty_variables(ctx, &[env_vars::KSAIL_CONFIG]);
    }
    let env = ctx.env.lookup();
    let explicit = ctx
        .global
        .config
        .clone()
        .or_else(|| ctx.env.var(env_vars::KSAIL_CONFIG).map(PathBuf::from));
    let file = match config::discover(explicit.as_deref(), &ctx.env.cwd)? {
        Some(path) => {
            let loaded = config::load_in(&path, &ctx.env.cwd, &env);
            // A signal during a long load stops the parse early; that is no config error.
            if crate::interrupt::requested() {
                return Err(Failure::interrupted());
            }
            Some(loaded?)
        }
        None => {
            tracing::debug!("config: no ksail.yaml found; using defaults");
            None
        }
    };
    if let Some(file) = &file {
        for warning in &file.warnings {
            ctx.reporter().warn(warning);
        }
        check(file)?;
    }
    let effective = config::effective(file.as_ref(), &env, flags, &ctx.env.cwd)?;
    // A flag would have overridden the variable anyway: it is not the emptiness that drops it.
    let without_flag: Vec<&str> = config::override_variables()
        .filter(|(key, _)| !matches!(effective.source_of(*key), Some(config::Source::Flag(_))))
        .map(|(_, name)| name)
        .collect();
    warn_empty_variables(ctx, &without_flag);
    for line in effective.provenance_lines() {
        tracing::debug!("{line}");
    }
    Ok(effective)
}

/// config.md#precedence: an empty variable counts as unset. It is still named, once, so that a
/// `KSAIL_REGISTRY=` left in a CI file does not quietly hand the choice to ksail.yaml.
fn warn_empty_variables(ctx: &Context, names: &[&str]) {
    for name in names.iter().filter(|name| ctx.env.is_set_but_empty(name)) {
        ctx.reporter().warn(&format!(
            "{name} is set but empty, so it is ignored (an empty variable counts as unset); unset it or give it a value"
        ));
    }
}

/// Everything `workload push` needs, decided before any I/O beyond reading config files.
#[derive(Debug)]
pub struct PushSettings {
    pub target: PushTarget,
    pub sync: Option<SyncTarget>,
    pub mismatch_warning: Option<String>,
    /// The source directory as the user wrote it (`k8s`, `./clusters/dev/`), for messages, and
    /// resolved.
    pub source: ConfigPath,
    pub validate: bool,
    pub credentials: CredentialRequest,
    pub source_date_epoch: Option<String>,
    pub retry: RetryPolicy,
    pub output: OutputFormat,
    /// `--force`: replace the tag even when another push moved it since this one began.
    pub force: bool,
    /// `--timeout` / `spec.workload.pushTimeout`: the bound on the whole push, if any.
    pub timeout: Option<Duration>,
    /// `--signing-key` / `spec.workload.signing.key`, decrypted before anything is sent.
    pub signer: Option<Arc<Signer>>,
}

/// An empty flag value is a mistake (an unset shell variable, a bad template), not a wish for
/// the ksail.yaml registry: leaving the flag out says that.
const EMPTY_REGISTRY_FLAG: &str = "--registry is empty: an empty registry string names no registry to push to; pass host[:port][/repository][:tag], or leave --registry out to push to spec.cluster.localRegistry.registry";

pub fn push_settings(ctx: &Context, args: &PushArgs) -> Result<PushSettings, Failure> {
    let retry = retry_policy(ctx)?;
    let flags = FlagOverrides {
        insecure: args.source.insecure.then_some(true),
        validate_on_push: match (args.source.validate, args.source.no_validate) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        push_timeout: args.timeout.clone(),
        signing_key: args.source.signing_key.clone(),
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
        ..FlagOverrides::default()
    };
    let effective = load_effective(ctx, &flags)?;
    // Checked here, with the other input, so that a bad value stops the run before a credential
    // helper is started (cli.md#exit-codes).
    let source_date_epoch = ctx.env.var(env_vars::SOURCE_DATE_EPOCH);
    if let Some(value) = &source_date_epoch {
        crate::artifact::git::parse_source_date_epoch(value)?;
    }

    let oci_ref = args
        .oci_ref
        .as_deref()
        .map(parse_oci_ref)
        .transpose()
        .map_err(|error| error.into_failure("OCI_REF argument"))?;
    let oci_ref_tagged = oci_ref
        .as_ref()
        .is_some_and(|reference| reference.tag.is_some());
    if args.source.registry.is_none() {
        warn_empty_variables(ctx, &[env_vars::KSAIL_REGISTRY]);
    }
    let (push_registry, push_origin) =
        match (&args.source.registry, ctx.env.var(env_vars::KSAIL_REGISTRY)) {
            (Some(flag), _) if flag.trim().is_empty() => {
                return Err(Failure::usage(EMPTY_REGISTRY_FLAG));
            }
            (Some(flag), _) => (parse_flag_registry(flag, "--registry")?, "--registry"),
            (None, Some(env)) => (
                parse_flag_registry(&env, env_vars::KSAIL_REGISTRY)?,
                env_vars::KSAIL_REGISTRY,
            ),
            (None, None) => (None, ""),
        };
    let cfg_registry = config_registry(&effective)?;

    let cluster = config_cluster_name(&effective)?;
    let source = match &args.source.path {
        Some(path) => ConfigPath {
            written: path.clone(),
            resolved: ctx.env.cwd.join(path),
        },
        None => effective.source_directory.value.clone(),
    };
    let sync_source = &effective.source_directory.value;
    let inputs = ResolveInputs {
        oci_ref,
        push_registry: push_registry.clone(),
        cfg_registry: cfg_registry.clone(),
        workload_tag: effective.tag.as_ref().map(|tag| tag.value.clone()),
        // The resolved path is `base.join(written)`, so its last component (or, for `.`-like
        // paths, its canonical form) is what the written path would give against its base.
        push_source: source.resolved.to_string_lossy().into_owned(),
        push_source_base: ctx.env.cwd.clone(),
        sync_source: sync_source.resolved.to_string_lossy().into_owned(),
        sync_source_base: ctx.env.cwd.clone(),
        cluster,
        gitops_engine_enabled: effective.gitops_engine.value != config::GitOpsEngine::None,
        insecure_flag: args.source.insecure,
        cfg_insecure: effective.insecure.value,
    };
    let resolution = resolve::resolve(&inputs);
    let target = resolution.push()?.clone();
    if !oci_ref_tagged
        && let Some(warning) =
            lost_registry_tag(&effective, push_registry.as_ref(), push_origin, &target)
    {
        ctx.reporter().warn(&warning);
    }

    // The registry string that may carry credentials: the push override, else the config one.
    let registry_string = match &push_registry {
        Some(spec) => Some(string_credentials(
            spec,
            TokenEnvVars::default(),
            true,
            push_origin,
        )),
        None => cfg_registry
            .as_ref()
            .map(|spec| config_string_credentials(&effective, spec)),
    };

    Ok(PushSettings {
        credentials: CredentialRequest {
            host: target.host.clone(),
            registry_string,
        },
        target,
        sync: resolution.sync.clone(),
        mismatch_warning: resolution.mismatch_warning.clone(),
        source,
        validate: effective.validate_on_push.value,
        source_date_epoch,
        retry,
        output: args.output.into(),
        force: args.force,
        timeout: effective.push_timeout.map(|timeout| timeout.value),
        signer: effective
            .signing
            .as_ref()
            .map(|signing| load_signer(ctx, signing))
            .transpose()?,
    })
}

/// Read and decrypt the signing key (docs/signing.md). Every way this fails is bad input (exit
/// 2), found before a byte goes to the registry; the password is registered as a secret first.
pub(crate) fn load_signer(
    ctx: &Context,
    signing: &config::Signing,
) -> Result<Arc<Signer>, Failure> {
    let key = &signing.key.value;
    let origin = match &signing.key.source {
        config::Source::Flag(flag) => (*flag).to_string(),
        _ => Key::Signing.path().to_string(),
    };
    let variable = &signing.password_env_var.value;
    let Some(password) = ctx.env.var(variable) else {
        return Err(Failure::usage(format!(
            "signing key {} ({origin}) is encrypted and {variable} is not set; set {variable} to its password (empty if it has none), or name another variable in {}",
            key.written,
            Key::SigningPasswordEnvVar.path()
        )));
    };
    register_secret(&password);
    let text = std::fs::read_to_string(&key.resolved).map_err(|error| {
        let fix = match error.kind() {
            std::io::ErrorKind::NotFound => {
                "create a key pair with ksail workload keygen, or fix the path"
            }
            _ => "check the file and its permissions",
        };
        Failure::usage(format!(
            "cannot read signing key {} ({origin}): {}; {fix}",
            key.written,
            crate::artifact::io_reason(&error)
        ))
    })?;
    crate::signing::decrypt_cached(&text, &password, &key.written).map_err(|error| {
        let fix = match error {
            KeyError::WrongPassword => {
                format!("set {variable} to the password the key was written with")
            }
            _ => "name a key written by ksail workload keygen or cosign generate-key-pair"
                .to_string(),
        };
        Failure::usage(format!(
            "cannot use signing key {} ({origin}): {error}; {fix}",
            key.written
        ))
    })
}

/// resolution.md's tag chain puts `spec.workload.tag` before the registry string's tag. That
/// stays, but a tag the user named for this push (`--registry`, `KSAIL_REGISTRY`) that loses is
/// worth one warning naming both, with the way to push it. Call it only when no `OCI_REF` tag
/// came first.
fn lost_registry_tag(
    effective: &Effective,
    registry: Option<&RegistrySpec>,
    origin: &str,
    target: &PushTarget,
) -> Option<String> {
    let named = registry?.tag.as_deref()?;
    let workload = effective.tag.as_ref()?;
    if named == target.tag {
        return None;
    }
    Some(format!(
        "{origin} names tag {named}, but spec.workload.tag is {} ({}), which takes precedence; pushing {}; to push {named}, pass oci://{}/{}:{named} as the OCI_REF argument",
        workload.value,
        source_label(effective, &workload.source)?,
        target.url,
        target.host,
        target.repository,
    ))
}

/// Where a value came from, as messages name it: the flag, the variable or `ksail.yaml:line:col`;
/// `None` for a default.
fn source_label(effective: &Effective, source: &config::Source) -> Option<String> {
    match source {
        config::Source::Flag(flag) => Some((*flag).to_string()),
        config::Source::Env(name) => Some(name.clone()),
        config::Source::File(pos) => Some(format!(
            "{}:{pos}",
            effective
                .file_display
                .as_deref()
                .unwrap_or(config::FILE_NAME)
        )),
        config::Source::Default => None,
    }
}

/// The cluster name from `metadata.name` (or its env override) and the distribution config
/// (resolution.md#cluster-name). The cluster commands pass `--name` as a flag override, so it
/// arrives in `effective.name` and wins.
pub fn config_cluster_name(effective: &Effective) -> Result<Option<String>, Failure> {
    Ok(resolve::cluster_name(
        None,
        None,
        effective.name.as_ref().map(|name| name.value.as_str()),
        effective.distribution.value.as_str(),
        effective
            .distribution_config
            .as_ref()
            .map(|path| path.value.resolved.as_path()),
    )?)
}

/// The effective `spec.cluster.localRegistry.registry`, parsed; errors name where it came from.
pub fn config_registry(effective: &Effective) -> Result<Option<RegistrySpec>, Failure> {
    let Some(registry) = &effective.registry else {
        return Ok(None);
    };
    parse_registry(&registry.value).map_err(|error| {
        let text = error.to_string();
        let (problem, fix) = text
            .split_once("; ")
            .unwrap_or((text.as_str(), "fix the registry string"));
        Failure::from(effective.value_error(Key::Registry, &registry.source, problem, fix))
    })
}

/// The credentials a `ksail.yaml` (or `KSAIL_SPEC_…`) registry string carries, with the token
/// variables that may override its password.
fn config_string_credentials(
    effective: &Effective,
    spec: &RegistrySpec,
) -> RegistryStringCredentials {
    let name = |var: &Option<config::Sourced<String>>| var.as_ref().map(|v| v.value.clone());
    string_credentials(
        spec,
        TokenEnvVars {
            cli_token_env_var: name(&effective.credentials.cli_token_env_var),
            token_env_var: name(&effective.credentials.token_env_var),
        },
        // File values were expanded at load; an env override is expanded now.
        !registry_from_file(effective),
        "spec.cluster.localRegistry.registry",
    )
}

/// The registry string came from `ksail.yaml` (not from its `KSAIL_SPEC_…` override).
fn registry_from_file(effective: &Effective) -> bool {
    matches!(
        effective.registry.as_ref().map(|r| &r.source),
        Some(config::Source::File(_))
    )
}

fn parse_flag_registry(text: &str, origin: &str) -> Result<Option<RegistrySpec>, Failure> {
    parse_registry(text).map_err(|error| error.into_failure(origin))
}

fn string_credentials(
    spec: &RegistrySpec,
    token_env_vars: TokenEnvVars,
    expand: bool,
    origin: &str,
) -> RegistryStringCredentials {
    RegistryStringCredentials {
        host: spec.host_port(),
        user: spec.user.clone(),
        password: spec.password.clone(),
        token_env_vars,
        expand,
        origin: origin.to_string(),
    }
}

/// The default per-attempt bound of `workload reconcile`.
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Everything `workload reconcile` needs, decided before any request is sent.
#[derive(Debug)]
pub struct ReconcileSettings {
    pub configured_engine: GitOpsEngine,
    /// KWOK simulates the controllers: reconciliation is skipped.
    pub kwok: bool,
    pub kube: KubeTarget,
    pub timeout: Duration,
    pub excludes: Excludes,
    pub exclude_given: bool,
    /// `--sync-manual`: Argo CD Applications with a manual sync policy are synced too.
    pub sync_manual: bool,
    pub sync: Option<SyncTarget>,
    pub credentials: Option<CredentialRequest>,
    pub retry: RetryPolicy,
    pub recovery: RecoveryBounds,
    pub diagnostics_budget: Duration,
    pub output: OutputFormat,
}

pub fn reconcile_settings(
    ctx: &Context,
    args: &ReconcileArgs,
) -> Result<ReconcileSettings, Failure> {
    let retry = retry_policy(ctx)?;
    let recovery = RecoveryBounds::from_env(&ctx.env)?;
    let diagnostics_budget = diagnostics::budget_from_env(&ctx.env)?;
    let excludes = Excludes::parse(&args.exclude)?;
    let flags = FlagOverrides {
        insecure: args.insecure.then_some(true),
        timeout: args.timeout.clone(),
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
        ..FlagOverrides::default()
    };
    let effective = load_effective(ctx, &flags)?;
    let cfg_registry = config_registry(&effective)?;
    let cluster = config_cluster_name(&effective)?;
    let (sync, credentials) = sync_target(ctx, &effective, &cfg_registry, cluster, args.insecure);
    Ok(ReconcileSettings {
        configured_engine: effective.gitops_engine.value,
        kwok: effective.distribution.value == config::Distribution::KWOK,
        kube: kube_target(&effective, None),
        timeout: effective
            .timeout
            .as_ref()
            .map_or(RECONCILE_TIMEOUT, |timeout| timeout.value),
        exclude_given: !args.exclude.is_empty(),
        excludes,
        sync_manual: args.sync_manual,
        sync,
        credentials,
        retry,
        recovery,
        diagnostics_budget,
        output: args.output.into(),
    })
}

/// The retry policy with the test-only overrides of the environment; the notes on which
/// override is in effect go to `-v`.
fn retry_policy(ctx: &Context) -> Result<RetryPolicy, Failure> {
    let (retry, notes) = RetryPolicy::from_env(&ctx.env)?;
    for note in notes {
        tracing::debug!("{note}");
    }
    Ok(retry)
}

/// What the engine follows, and the credentials for this machine's requests to it, for the
/// commands that read the sync source without pushing (cluster create/update, reconcile): the
/// configured registry and source directory, in cluster `cluster`.
fn sync_target(
    ctx: &Context,
    effective: &Effective,
    cfg_registry: &Option<RegistrySpec>,
    cluster: Option<String>,
    insecure_flag: bool,
) -> (Option<SyncTarget>, Option<CredentialRequest>) {
    let sync_source = &effective.source_directory.value;
    let resolution = resolve::resolve(&ResolveInputs {
        cfg_registry: cfg_registry.clone(),
        workload_tag: effective.tag.as_ref().map(|tag| tag.value.clone()),
        push_source: sync_source.resolved.to_string_lossy().into_owned(),
        push_source_base: ctx.env.cwd.clone(),
        sync_source: sync_source.resolved.to_string_lossy().into_owned(),
        sync_source_base: ctx.env.cwd.clone(),
        cluster,
        gitops_engine_enabled: effective.gitops_engine.value != GitOpsEngine::None,
        insecure_flag,
        cfg_insecure: effective.insecure.value,
        ..ResolveInputs::default()
    });
    let credentials = match (&resolution.sync, cfg_registry) {
        (Some(sync), Some(spec)) => Some(CredentialRequest {
            host: sync.host.clone(),
            registry_string: Some(config_string_credentials(effective, spec)),
        }),
        _ => None,
    };
    (resolution.sync, credentials)
}

/// The kubeconfig files and context, as kubectl would pick them (cli.md#global-flags).
pub fn kube_target(effective: &Effective, derived_context: Option<String>) -> KubeTarget {
    let kubeconfig = &effective.kubeconfig;
    KubeTarget {
        kubeconfig: kubeconfig
            .value
            .iter()
            .map(|path| path.resolved.clone())
            .collect(),
        kubeconfig_source: source_label(effective, &kubeconfig.source)
            .unwrap_or_else(|| config::DEFAULT_KUBECONFIG.to_string()),
        context: effective.context.as_ref().map(|c| c.value.clone()),
        derived_context,
    }
}
