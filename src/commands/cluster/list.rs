//! `ksail cluster list` (cluster.md#cluster-list): `cluster::list` finds the clusters; this
//! adapter renders the table or the JSON document.

use std::ffi::OsString;

use serde_json::{Map, Value, json};

use crate::cli::ListArgs;
use crate::cluster::list::{ClusterRow, RegistryRow, list};
use crate::cluster::provider::PATH_VAR;
use crate::commands::{Context, Outcome};

/// The spec's golden layout gives the NAME column at least this width (two spaces follow).
const NAME_MIN_WIDTH: usize = 11;
const COLUMN_GAP: &str = "  ";
/// The REGISTRY cell of a cluster without a registry container.
const NO_REGISTRY: &str = "—";

pub async fn run(ctx: &Context, args: ListArgs) -> Outcome {
    let json = args.output.is_json();
    let search_path = ctx.env.var(PATH_VAR).map(OsString::from);
    match list(search_path, ctx.reporter()).await {
        Ok(rows) => {
            if !json {
                for line in render_table(&rows) {
                    ctx.printer.result(&line);
                }
            }
            Outcome {
                command: "cluster list",
                result: Ok(()),
                json: json.then(|| members(Value::Array(rows.iter().map(row_json).collect()))),
            }
        }
        Err(failure) => Outcome {
            command: "cluster list",
            result: Err(failure),
            json: json.then(|| members(Value::Null)),
        },
    }
}

fn members(clusters: Value) -> Map<String, Value> {
    Map::from_iter([("clusters".to_string(), clusters)])
}

fn state(registry: &RegistryRow) -> &'static str {
    if registry.running {
        "running"
    } else {
        "stopped"
    }
}

fn registry_cell(registry: Option<&RegistryRow>) -> String {
    match registry {
        None => NO_REGISTRY.to_string(),
        Some(registry) => match &registry.address {
            Some(address) => format!("{} ({}, {address})", registry.name, state(registry)),
            None => format!("{} ({})", registry.name, state(registry)),
        },
    }
}

/// The text table, or `No clusters found.` (rows arrive sorted by name).
fn render_table(rows: &[ClusterRow]) -> Vec<String> {
    if rows.is_empty() {
        return vec!["No clusters found.".to_string()];
    }
    let name_width = rows
        .iter()
        .map(|row| row.name.chars().count())
        .chain([NAME_MIN_WIDTH])
        .max()
        .unwrap_or(NAME_MIN_WIDTH);
    let distribution_width = "DISTRIBUTION".len();
    let line = |name: &str, distribution: &str, registry: &str| {
        format!(
            "{name:<name_width$}{COLUMN_GAP}{distribution:<distribution_width$}{COLUMN_GAP}{registry}"
        )
    };
    std::iter::once(line("NAME", "DISTRIBUTION", "REGISTRY"))
        .chain(rows.iter().map(|row| {
            line(
                &row.name,
                row.distribution.as_str(),
                &registry_cell(row.registry.as_ref()),
            )
        }))
        .collect()
}

fn row_json(row: &ClusterRow) -> Value {
    json!({
        "name": row.name,
        "distribution": row.distribution.as_str(),
        "registry": row.registry.as_ref().map(|registry| json!({
            "name": registry.name,
            "state": state(registry),
            "hostPort": registry.host_port,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::list::{display_host, registry_row};
    use crate::cluster::provider::{ContainerInfo, Distribution};

    fn row(name: &str, distribution: Distribution, registry: Option<RegistryRow>) -> ClusterRow {
        ClusterRow {
            name: name.to_string(),
            distribution,
            registry,
        }
    }

    fn kind_registry(running: bool) -> RegistryRow {
        registry_row(
            "kind-local-registry".to_string(),
            &ContainerInfo {
                running,
                host_ip: Some("127.0.0.1".to_string()),
                host_port: Some(5050),
                ..ContainerInfo::default()
            },
        )
    }

    /// cluster.md "cluster list": the golden rows, laid out column for column.
    #[test]
    fn table_matches_the_golden_layout() {
        let rows = [
            row("kind", Distribution::Vanilla, Some(kind_registry(true))),
            row("dev", Distribution::K3s, None),
        ];
        assert_eq!(
            render_table(&rows).join("\n"),
            "NAME         DISTRIBUTION  REGISTRY\n\
             kind         Vanilla       kind-local-registry (running, localhost:5050)\n\
             dev          K3s           —"
        );
    }

    #[test]
    fn long_names_widen_the_column_and_stopped_registries_say_so() {
        let rows = [row(
            "a-rather-long-cluster",
            Distribution::Vanilla,
            Some(kind_registry(false)),
        )];
        assert_eq!(
            render_table(&rows),
            [
                "NAME                   DISTRIBUTION  REGISTRY",
                "a-rather-long-cluster  Vanilla       kind-local-registry (stopped, localhost:5050)"
            ]
        );
    }

    #[test]
    fn no_rows_is_one_line() {
        assert_eq!(render_table(&[]), ["No clusters found."]);
    }

    #[test]
    fn hosts_are_shown_as_a_push_would_address_them() {
        for (ip, shown) in [
            (None, "localhost"),
            (Some("127.0.0.1"), "localhost"),
            (Some("0.0.0.0"), "localhost"),
            (Some("::1"), "[::1]"),
            (Some("192.168.1.5"), "192.168.1.5"),
        ] {
            assert_eq!(display_host(ip), shown);
        }
        let no_port = registry_row("r".into(), &ContainerInfo::default());
        assert_eq!(registry_cell(Some(&no_port)), "r (stopped)");
    }

    #[test]
    fn json_rows_follow_the_spec_document() {
        let rows = [
            row("dev", Distribution::K3s, None),
            row("kind", Distribution::Vanilla, Some(kind_registry(true))),
        ];
        let clusters: Vec<Value> = rows.iter().map(row_json).collect();
        assert_eq!(
            Value::Array(clusters),
            json!([
                {"name": "dev", "distribution": "K3s", "registry": null},
                {"name": "kind", "distribution": "Vanilla", "registry": {
                    "name": "kind-local-registry", "state": "running", "hostPort": 5050}}
            ])
        );
    }
}
