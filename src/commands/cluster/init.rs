//! `ksail cluster init` (cluster.md#cluster-init): the flags in, `cluster::init` plans and writes;
//! this adapter renders the file lines or the JSON document.

use serde_json::{Map, Value, json};

use crate::cli::InitArgs;
use crate::cluster::init::{self, Connection, FileAction, FileOutcome};
use crate::commands::{Context, Outcome};
use crate::config::FlagOverrides;
use crate::error::Failure;

pub async fn run(ctx: &Context, args: InitArgs) -> Outcome {
    let mut written = Vec::new();
    let result = write_project(ctx, &args, &mut written);
    let json = args.output.is_json();
    if !json {
        for file in &written {
            ctx.printer.result(&file_line(file));
        }
        if result.is_ok() {
            ctx.printer
                .result(&format!("initialized project in {}", args.directory));
        }
    }
    Outcome {
        command: "cluster init",
        result,
        json: json.then(|| members(&args.directory, &written)),
    }
}

fn write_project(
    ctx: &Context,
    args: &InitArgs,
    written: &mut Vec<FileOutcome>,
) -> Result<(), Failure> {
    let flags = FlagOverrides {
        name: args.name.clone(),
        distribution: args.distribution.clone(),
        distribution_config: args.distribution_config.clone(),
        gitops_engine: args.gitops_engine.clone(),
        local_registry: args.local_registry.clone(),
        source_directory: args.source_directory.clone(),
        kustomization_file: args.kustomization_file.clone(),
        ..FlagOverrides::default()
    };
    let connection = Connection {
        kubeconfig: ctx.global.kubeconfig.clone(),
        context: ctx.global.context.clone(),
    };
    let plan = init::plan(&flags, &connection, &ctx.env.cwd)?;
    let result = init::write(&plan, &args.directory, &ctx.env.cwd, args.force, written);
    if let Some(notice) = plan.password_notice(written) {
        ctx.printer.warn(&notice);
    }
    result
}

/// The stdout line for one file (cluster.md#files-written).
fn file_line(file: &FileOutcome) -> String {
    let action = file.action.as_str();
    match file.action {
        FileAction::Created | FileAction::Overwrote => format!("{action} {}", file.path),
        FileAction::Skipped => format!("{action} {} (exists; use --force to overwrite)", file.path),
        FileAction::Kept => format!(
            "{action} {} (exists; --force does not overwrite a kustomization: it lists your manifests)",
            file.path
        ),
    }
}

/// `directory` as given and one `{path, action}` per file handled, in the order of the lines.
fn members(directory: &str, written: &[FileOutcome]) -> Map<String, Value> {
    let files = written
        .iter()
        .map(|file| json!({"path": file.path, "action": file.action.as_str()}))
        .collect();
    Map::from_iter([
        ("directory".to_string(), Value::from(directory)),
        ("files".to_string(), Value::Array(files)),
    ])
}
