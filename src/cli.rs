//! The command line: clap derive types only (cli.md). Nothing here reads the environment or the
//! config file; `settings` turns these values into typed settings per command.

use std::path::PathBuf;

use clap::builder::NonEmptyStringValueParser;
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

use crate::output::OutputFormat;

#[derive(Debug, Parser)]
#[command(
    name = "ksail",
    version,
    about = "A GitOps loop on local Kubernetes clusters: package manifests as OCI artifacts, push, reconcile",
    disable_help_subcommand = true,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags accepted anywhere on the command line.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Use exactly this ksail.yaml [env: KSAIL_CONFIG] (default: nearest ksail.yaml upwards)
    #[arg(long, global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,

    /// More logs: -v debug, -vv trace, -vvv trace from every library
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = GLOBAL)]
    pub verbose: u8,

    /// Show no progress and no informational lines (warnings, errors and results still appear)
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// No ANSI colour on any stream [env: NO_COLOR]
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub no_color: bool,
}

/// How to reach the cluster: only on the commands that talk to one (or, for `cluster init`,
/// write how to), under their own heading.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectionArgs {
    /// Kubeconfig file(s), separated by the OS path-list separator [env: KUBECONFIG]
    #[arg(short = 'k', long, value_name = "PATHS", help_heading = CONNECTION)]
    pub kubeconfig: Option<String>,

    /// Kubeconfig context
    #[arg(short = 'c', long, value_name = "NAME", help_heading = CONNECTION)]
    pub context: Option<String>,
}

const CONNECTION: &str = "Cluster connection";
/// The heading of the flags every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, update, delete and list local clusters with a GitOps engine
    Cluster(ClusterCommand),
    /// Package and push workloads, and reconcile them
    Workload(WorkloadCommand),
    /// Print a shell completion script
    #[command(after_help = COMPLETION_SETUP)]
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct ClusterCommand {
    #[command(subcommand)]
    pub command: Option<ClusterSubcommand>,
}

#[derive(Debug, Subcommand)]
pub enum ClusterSubcommand {
    /// Scaffold ksail.yaml, the distribution config and the source directory
    Init(InitArgs),
    /// Create the cluster, local registry and GitOps engine; push the first artifact
    Create(CreateArgs),
    /// Install a newly configured engine; repair what drifted in the GitOps sync
    Update(UpdateArgs),
    /// Delete the cluster and its local registry container
    Delete(DeleteArgs),
    /// List clusters that kind or k3d know about
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// metadata.name and the name in the distribution config (DNS-1123 label)
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,

    /// Vanilla (kind) or K3s (k3d), any case [default: Vanilla]
    #[arg(short = 'd', long, value_name = "DIST", value_parser = KnownValues(CLUSTER_DISTRIBUTIONS))]
    pub distribution: Option<String>,

    /// Path of the distribution config to write [default: kind.yaml / k3d.yaml]
    #[arg(long, value_name = "PATH")]
    pub distribution_config: Option<String>,

    /// None, Flux or ArgoCD, any case [default: None]
    #[arg(short = 'g', long, value_name = "ENGINE", value_parser = KnownValues(GITOPS_ENGINES))]
    pub gitops_engine: Option<String>,

    /// Local registry: [user[:pass]@]host[:port][/path][:tag] (localhost:5050 when an engine is set)
    #[arg(long, value_name = "REG", value_parser = NonEmptyStringValueParser::new())]
    pub local_registry: Option<String>,

    /// Manifest directory, relative to the project directory [default: k8s]
    #[arg(short = 's', long, value_name = "DIR")]
    pub source_directory: Option<String>,

    /// Entry-point directory inside the source directory
    #[arg(long, value_name = "DIR")]
    pub kustomization_file: Option<String>,

    /// Project directory to write into (created if missing); nothing is written outside it
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub directory: String,

    /// Overwrite an existing ksail.yaml and distribution config (an existing kustomization is kept)
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Result format
    #[arg(long, default_value = "text", value_name = "FMT", value_parser = InitOutputParser)]
    pub output: OutputArg,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `cluster init --output`: the format, as everywhere, with a pointer to `--directory` for a
/// value that is neither (ksail (Go) took the project directory here).
#[derive(Debug, Clone, Copy)]
struct InitOutputParser;

impl clap::builder::TypedValueParser for InitOutputParser {
    type Value = OutputArg;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<OutputArg, clap::Error> {
        clap::builder::EnumValueParser::<OutputArg>::new()
            .parse_ref(cmd, arg, value)
            .map_err(|_| {
                let value = value.to_string_lossy();
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "invalid value '{value}' for '--output <FMT>': the result format is text or json; if {value} is the project directory, pass --directory {value}\n"
                    ),
                )
                .with_cmd(cmd)
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            OutputArg::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Cluster name
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,

    /// Overrides spec.cluster.distribution (Vanilla or K3s, any case)
    #[arg(short = 'd', long, value_name = "DIST", value_parser = KnownValues(CLUSTER_DISTRIBUTIONS))]
    pub distribution: Option<String>,

    /// Overrides spec.cluster.distributionConfig
    #[arg(long, value_name = "PATH")]
    pub distribution_config: Option<String>,

    /// Overrides spec.cluster.gitOpsEngine (None, Flux or ArgoCD, any case)
    #[arg(short = 'g', long, value_name = "ENGINE", value_parser = KnownValues(GITOPS_ENGINES))]
    pub gitops_engine: Option<String>,

    /// Overrides spec.cluster.localRegistry.registry
    #[arg(long, value_name = "REG", value_parser = NonEmptyStringValueParser::new())]
    pub local_registry: Option<String>,

    /// Use plain HTTP for a non-loopback registry
    #[arg(long)]
    pub insecure: bool,

    /// Upper bound on each wait step, as a Go duration [default: spec.cluster.connection.timeout, else 10m]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Cluster name
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,

    /// Report what would change; change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Use plain HTTP for a non-loopback registry
    #[arg(long)]
    pub insecure: bool,

    /// Upper bound on each wait step, as a Go duration [default: spec.cluster.connection.timeout, else 10m]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Cluster name
    #[arg(short = 'n', long, value_name = "NAME")]
    pub name: Option<String>,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Result format
    #[arg(long, value_enum, default_value_t = OutputArg::Text, value_name = "FMT")]
    pub output: OutputArg,
}

#[derive(Debug, Args)]
pub struct WorkloadCommand {
    #[command(subcommand)]
    pub command: Option<WorkloadSubcommand>,
}

#[derive(Debug, Subcommand)]
pub enum WorkloadSubcommand {
    /// Package the source directory as an OCI artifact and push it
    Push(PushArgs),
    /// Trigger GitOps reconciliation and wait until it completes
    Reconcile(ReconcileArgs),
    /// Push and reconcile on every saved change of the source directory, until Ctrl-C
    Watch(WatchArgs),
    /// Write a cosign key pair for signing pushed artifacts (password from $COSIGN_PASSWORD)
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Private key file to write; the public key goes next to it as .pub (default: spec.workload.signing.key, else cosign.key)
    #[arg(long, value_name = "FILE", value_parser = NonEmptyStringValueParser::new())]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Where to push: oci://<host>[:<port>]/<repository>[:<tag>] (default: from ksail.yaml)
    #[arg(value_name = "OCI_REF")]
    pub oci_ref: Option<String>,

    #[command(flatten)]
    pub source: PushSourceArgs,

    /// Replace the tag even if another push moved it while this one ran
    #[arg(long)]
    pub force: bool,

    /// Bound on the whole push, as a Go duration (default: spec.workload.pushTimeout, else none)
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// Result format
    #[arg(long, value_enum, default_value_t = OutputArg::Text, value_name = "FMT")]
    pub output: OutputArg,
}

/// What to push and how, shared by `workload push` and `workload watch`.
#[derive(Debug, Clone, Args)]
pub struct PushSourceArgs {
    /// Source directory, relative to the current directory (default: spec.workload.sourceDirectory, else k8s)
    // `--path ''` (an unset shell variable) would push the current directory.
    #[arg(long, value_name = "DIR", value_parser = NonEmptyStringValueParser::new())]
    pub path: Option<String>,

    /// Registry string for the push: [user[:pass]@]host[:port][/path][:tag] [env: KSAIL_REGISTRY]
    #[arg(long, value_name = "REG")]
    pub registry: Option<String>,

    /// Force validation on, even if validateOnPush is false
    #[arg(long, conflicts_with = "no_validate")]
    pub validate: bool,

    /// Skip manifest validation
    #[arg(long)]
    pub no_validate: bool,

    /// Use plain HTTP for a non-loopback registry
    #[arg(long)]
    pub insecure: bool,

    /// cosign private key to sign the artifact with (default: spec.workload.signing.key; its password from $COSIGN_PASSWORD)
    #[arg(long, value_name = "FILE")]
    pub signing_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub source: PushSourceArgs,

    /// Bound on each round's reconcile, as a Go duration (default: spec.cluster.connection.timeout, else 5m)
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// Flux Kustomizations not to trigger or wait for: name or namespace/name (repeatable, comma-separated)
    #[arg(long, value_name = "NAMES")]
    pub exclude: Vec<String>,

    /// Round lines as text, or one JSON document per round
    #[arg(long, value_enum, default_value_t = OutputArg::Text, value_name = "FMT")]
    pub output: OutputArg,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Bound on each attempt, as a Go duration (default: spec.cluster.connection.timeout, else 5m)
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub timeout: Option<String>,

    /// Flux Kustomizations not to trigger or wait for: name or namespace/name (repeatable, comma-separated)
    #[arg(long, value_name = "NAMES")]
    pub exclude: Vec<String>,

    /// Use plain HTTP for the registry lookup of a non-loopback registry
    #[arg(long)]
    pub insecure: bool,

    /// Argo CD: sync Applications whose sync policy is manual too (left alone by default)
    #[arg(long)]
    pub sync_manual: bool,

    /// Result format
    #[arg(long, value_enum, default_value_t = OutputArg::Text, value_name = "FMT")]
    pub output: OutputArg,

    #[command(flatten)]
    pub connection: ConnectionArgs,
}

/// `--output`: clap's side of [`OutputFormat`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputArg {
    #[default]
    Text,
    Json,
}

impl From<OutputArg> for OutputFormat {
    fn from(arg: OutputArg) -> OutputFormat {
        match arg {
            OutputArg::Text => OutputFormat::Text,
            OutputArg::Json => OutputFormat::Json,
        }
    }
}

impl OutputArg {
    pub fn is_json(self) -> bool {
        self == OutputArg::Json
    }
}

/// How to load each script; PowerShell's and Elvish's call `ksail` back on each Tab.
const COMPLETION_SETUP: &str = "\
Load it in your shell's start-up file:
  bash:        source <(ksail completion bash)
  zsh:         source <(ksail completion zsh)
  fish:        ksail completion fish | source
  powershell:  ksail completion powershell | Out-String | Invoke-Expression
  elvish:      eval (ksail completion elvish | slurp)";

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// bash, zsh, fish, powershell or elvish
    #[arg(value_enum)]
    pub shell: Shell,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from(["ksail", "workload", "push", "-v", "--no-color"]).unwrap();
        assert_eq!(cli.global.verbose, 1);
        assert!(cli.global.no_color);
    }

    #[test]
    fn quiet_and_verbose_conflict() {
        assert!(Cli::try_parse_from(["ksail", "-q", "-v", "workload", "push"]).is_err());
    }

    #[test]
    fn init_output_is_the_format_and_directory_is_the_project() {
        let init = |args: &[&str]| match Cli::try_parse_from(
            ["ksail", "cluster", "init"].iter().chain(args),
        ) {
            Ok(Cli {
                command:
                    Some(Command::Cluster(ClusterCommand {
                        command: Some(ClusterSubcommand::Init(args)),
                    })),
                ..
            }) => Ok(args),
            Ok(other) => panic!("not cluster init: {other:?}"),
            Err(error) => Err(error.to_string()),
        };
        let args = init(&["--output", "json", "--directory", "proj"]).expect("valid");
        assert_eq!(
            (args.output, args.directory.as_str()),
            (OutputArg::Json, "proj")
        );
        let args = init(&[]).expect("valid");
        assert_eq!(
            (args.output, args.directory.as_str()),
            (OutputArg::Text, ".")
        );
        let error = init(&["--output", "proj"]).expect_err("not a format");
        assert!(
            error.starts_with("error: invalid value 'proj' for '--output <FMT>': the result format is text or json; if proj is the project directory, pass --directory proj\n"),
            "{error}"
        );
        assert!(init(&["-o", "proj"]).is_err(), "no short -o");
    }

    #[test]
    fn validate_and_no_validate_conflict() {
        assert!(
            Cli::try_parse_from(["ksail", "workload", "push", "--validate", "--no-validate"])
                .is_err()
        );
    }
}

/// The values the cluster commands provision with (`spec.cluster.distribution` loads more, which
/// the commands then refuse with their own message).
const CLUSTER_DISTRIBUTIONS: &[&str] = &crate::cluster::provider::Distribution::NAMES;
const GITOPS_ENGINES: &[&str] = crate::config::GITOPS_ENGINES;

/// A free-text flag whose known values shells complete and help lists. Any text is accepted here:
/// the configuration layer validates it, case-insensitively, with the same message as for the
/// environment and ksail.yaml.
#[derive(Debug, Clone, Copy)]
struct KnownValues(&'static [&'static str]);

impl clap::builder::TypedValueParser for KnownValues {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            self.0
                .iter()
                .map(|value| clap::builder::PossibleValue::new(*value)),
        ))
    }
}
