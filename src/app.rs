//! The program: install the TLS provider, parse the command line, run the command and map its
//! outcome to an exit code (cli.md#exit-codes). `main.rs` exits with that code; nothing here
//! exits.

use clap::{CommandFactory, Parser};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, ClusterSubcommand, Command, ConnectionArgs, WorkloadSubcommand};
use crate::commands::{self, Outcome};
use crate::context::{Context, GlobalSettings};
use crate::env_vars;
use crate::error::{Failure, FailureClass};
use crate::output::{self, LogTimer, Printer, PrinterConfig, RedactingStderr};
use crate::process::ProcessEnv;

/// Run the command line of this process and return its exit code (cli.md#exit-codes).
pub fn run() -> i32 {
    // reqwest is built without a crypto provider (`rustls-no-provider`) and kube with ring: make
    // ring the process default before any client exists.
    let _ = rustls::crypto::ring::default_provider().install_default();
    commands::completion::serve_dynamic();

    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return report_parse_error(error),
    };
    let env = match ProcessEnv::capture() {
        Ok(env) => env,
        Err(error) => {
            eprintln!(
                "error: cannot read the current directory: {error}; cd into an existing directory"
            );
            return Failure::failed("").class.exit_code();
        }
    };
    let no_color = cli.global.no_color || env.var(env_vars::NO_COLOR).is_some();
    let printer = Printer::new(PrinterConfig {
        stderr_is_tty: env.stderr_is_tty,
        no_color,
        quiet: cli.global.quiet,
        verbose: cli.global.verbose,
    });
    init_logging(cli.global.verbose, &env, env.stderr_is_tty && !no_color);

    let Some(command) = cli.command else {
        return print_help(&[]);
    };
    let connection = connection_of(&command).cloned().unwrap_or_default();
    let ctx = Context {
        env,
        printer,
        global: GlobalSettings {
            config: cli.global.config,
            kubeconfig: connection.kubeconfig,
            context: connection.context,
        },
        cancel: tokio_util::sync::CancellationToken::new(),
    };
    match command {
        Command::Completion(args) => {
            let script = commands::completion::script(args.shell);
            ctx.printer.raw_stdout(&String::from_utf8_lossy(&script));
            0
        }
        Command::Cluster(cluster) => {
            let Some(command) = cluster.command else {
                return print_help(&["cluster"]);
            };
            let on_interrupt = commands::cluster::interrupted(&command);
            run_async(&ctx, commands::cluster::run(&ctx, command), on_interrupt)
        }
        Command::Workload(workload) => match workload.command {
            None => print_help(&["workload"]),
            Some(WorkloadSubcommand::Push(args)) => {
                let on_interrupt = commands::push::interrupted(&args);
                run_async(&ctx, commands::push::run(&ctx, args), on_interrupt)
            }
            Some(WorkloadSubcommand::Reconcile(args)) => {
                let on_interrupt = commands::reconcile::interrupted(&args);
                run_async(&ctx, commands::reconcile::run(&ctx, args), on_interrupt)
            }
            Some(WorkloadSubcommand::Watch(args)) => {
                let on_interrupt = commands::watch::interrupted(&args);
                run_async(&ctx, commands::watch::run(&ctx, args), on_interrupt)
            }
            Some(WorkloadSubcommand::Keygen(args)) => {
                finish(&ctx.printer, commands::keygen::run(&ctx, &args))
            }
        },
    }
}

/// The cluster-connection flags of the commands that have them.
fn connection_of(command: &Command) -> Option<&ConnectionArgs> {
    match command {
        Command::Cluster(cluster) => match cluster.command.as_ref()? {
            ClusterSubcommand::Init(args) => Some(&args.connection),
            ClusterSubcommand::Create(args) => Some(&args.connection),
            ClusterSubcommand::Update(args) => Some(&args.connection),
            ClusterSubcommand::Delete(args) => Some(&args.connection),
            ClusterSubcommand::List(_) => None,
        },
        Command::Workload(workload) => match workload.command.as_ref()? {
            WorkloadSubcommand::Reconcile(args) => Some(&args.connection),
            WorkloadSubcommand::Watch(args) => Some(&args.connection),
            WorkloadSubcommand::Push(_) | WorkloadSubcommand::Keygen(_) => None,
        },
        Command::Completion(_) => None,
    }
}

/// Run a command on a tokio runtime, racing it against SIGINT/SIGTERM (cli.md#signals), then
/// report its outcome.
fn run_async(
    ctx: &Context,
    command: impl std::future::Future<Output = Outcome>,
    on_interrupt: Outcome,
) -> i32 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            ctx.printer
                .error(&format!("cannot start the async runtime: {error}"));
            return 1;
        }
    };
    let outcome = runtime.block_on(commands::with_signals(
        command,
        on_interrupt,
        ctx.cancel.clone(),
    ));
    // The outcome is known and the process exits next: do not wait for idle connection tasks
    // or stray blocking tasks (a credential helper) to wind down, and keep their logs from
    // following the final lines.
    output::close_logs();
    runtime.shutdown_background();
    finish(&ctx.printer, outcome)
}

/// Print the JSON document (if any) and the `error:` line, and return the exit code.
fn finish(printer: &Printer, outcome: Outcome) -> i32 {
    let code = outcome
        .result
        .as_ref()
        .err()
        .map_or(0, |failure| failure.class.exit_code());
    if let Some(document) = outcome.json_document() {
        printer.result(&document);
        output::log_json_document(&document);
    }
    if let Err(failure) = &outcome.result {
        printer.error(&failure.message);
    }
    code
}

fn print_help(path: &[&str]) -> i32 {
    let mut command = Cli::command();
    command.build();
    let mut target = command;
    for name in path {
        let Some(sub) = target.find_subcommand(name).cloned() else {
            break;
        };
        target = sub;
    }
    print!("{}", target.render_help());
    0
}

/// clap's own errors, reshaped to the one-line `error:` form (exit 2) that points at the help of
/// the command the user typed; under `--output json` the one JSON document comes first, as for
/// every other exit. Help and version requests go to stdout with exit 0.
fn report_parse_error(error: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return 0;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = Cli::command();
    let (path, command) = typed_command(&root, &args);
    let help = match path.is_empty() {
        true => "ksail --help".to_string(),
        false => format!("ksail {} --help", path.join(" ")),
    };
    let line = format!("{}; run {help} for usage", parse_error_message(&error));
    if wants_json(command, &args) {
        let document = serde_json::json!({
            "command": path.join(" "),
            "status": FailureClass::Usage.json_status(),
            "exitCode": 2,
            "error": line,
        });
        println!("{document}");
        output::log_json_document(&document.to_string());
    }
    eprintln!("error: {line}");
    2
}

/// The subcommands named in `args` (`["workload", "push"]`) and the command they lead to.
fn typed_command<'c>(root: &'c clap::Command, args: &[String]) -> (Vec<String>, &'c clap::Command) {
    let mut path = Vec::new();
    let mut command = root;
    for arg in args.iter().filter(|arg| !arg.starts_with('-')) {
        match command.find_subcommand(arg) {
            Some(sub) => {
                path.push(arg.clone());
                command = sub;
            }
            None => break,
        }
    }
    (path, command)
}

/// `--output json` (or `--output=json`) was asked for, on a command that has `--output`.
fn wants_json(command: &clap::Command, args: &[String]) -> bool {
    let has_output = command
        .get_arguments()
        .any(|arg| arg.get_long() == Some("output"));
    has_output
        && args.iter().enumerate().any(|(index, arg)| {
            arg == "--output=json"
                || (arg == "--output" && args.get(index + 1).is_some_and(|next| next == "json"))
        })
}

/// What clap found wrong, with what it knows: the missing argument's name, the valid values.
fn parse_error_message(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let strings = |kind: ContextKind| match error.get(kind) {
        Some(ContextValue::Strings(values)) => values.clone(),
        Some(ContextValue::String(value)) => vec![value.clone()],
        _ => Vec::new(),
    };
    let rendered = error.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .trim_end_matches(':')
        .to_string();
    match error.kind() {
        ErrorKind::MissingRequiredArgument => {
            let missing = strings(ContextKind::InvalidArg);
            match missing.is_empty() {
                true => first,
                false => format!("missing required argument {}", missing.join(", ")),
            }
        }
        ErrorKind::InvalidValue => {
            let valid = strings(ContextKind::ValidValue);
            let value = strings(ContextKind::InvalidValue).concat();
            if valid.is_empty() {
                return first;
            }
            let mut message = format!("{first}: possible values are {}", valid.join(", "));
            if let Some(exact) = valid
                .iter()
                .find(|known| known.eq_ignore_ascii_case(&value))
            {
                message.push_str(&format!(" (values are case-sensitive: write {exact})"));
            }
            message
        }
        _ => first,
    }
}

fn init_logging(verbose: u8, env: &ProcessEnv, ansi: bool) {
    let directive = env.var(env_vars::KSAIL_LOG).or(match verbose {
        0 => None,
        1 => Some("ksail=debug".to_string()),
        2 => Some("ksail=trace".to_string()),
        _ => Some("trace".to_string()),
    });
    let Some(directive) = directive else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directive))
        .with_writer(RedactingStderr)
        .with_timer(LogTimer)
        .with_ansi(ansi)
        .try_init();
}
