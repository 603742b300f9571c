//! `ksail cluster list` (cluster.md#cluster-list): the clusters kind and k3d know about, with the
//! state of each one's local registry container. It reads no `ksail.yaml`: it lists every
//! cluster on this machine, not the configured one.

use std::ffi::OsString;

use serde_json::{Map, Value, json};

use crate::cli::ListArgs;
use crate::cluster::provider::{ContainerInfo, Distribution, PATH_VAR, Provider};
use crate::commands::{Context, Outcome};
use crate::error::Failure;
use crate::resolve;

/// The spec's golden layout gives the NAME column at least this width (two spaces follow).
const NAME_MIN_WIDTH: usize = 11;
const COLUMN_GAP: &str = "  ";
/// The REGISTRY cell of a cluster without a registry container.
const NO_REGISTRY: &str = "—";

pub async fn run(ctx: &Context, args: ListArgs) -> Outcome {
    let json = args.output.is_json();
    match list(ctx).await {
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

/// One line of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ClusterRow {
    name: String,
    distribution: Distribution,
    registry: Option<RegistryRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct RegistryRow {
    name: String,
    running: bool,
    /// `localhost:5050`, as a user would address it from this machine.
    address: Option<String>,
    host_port: Option<u16>,
}

async fn list(ctx: &Context) -> Result<Vec<ClusterRow>, Failure> {
    // The distribution only matters for single-cluster calls; listing asks both tools.
    let provider = Provider::new(Distribution::Vanilla, None)
        .with_search_path(ctx.env.var(PATH_VAR).map(OsString::from));
    let listing = provider.list_clusters().await?;
    for warning in &listing.warnings {
        ctx.printer.warn(warning);
    }
    let mut rows = Vec::with_capacity(listing.clusters.len());
    for (name, distribution) in listing.clusters {
        let container = resolve::local_registry_container(&name);
        let registry = provider
            .inspect_container(&container)
            .await?
            .map(|info| registry_row(container, &info));
        rows.push(ClusterRow {
            name,
            distribution,
            registry,
        });
    }
    Ok(rows)
}

fn registry_row(name: String, info: &ContainerInfo) -> RegistryRow {
    RegistryRow {
        name,
        running: info.running,
        address: info
            .host_port
            .map(|port| format!("{}:{port}", display_host(info.host_ip.as_deref()))),
        host_port: info.host_port,
    }
}

/// Loopback and "every address" are shown as `localhost`, the name a push would use.
fn display_host(host_ip: Option<&str>) -> String {
    match host_ip {
        None | Some("" | "0.0.0.0" | "127.0.0.1" | "::") => "localhost".to_string(),
        Some(ip) if ip.contains(':') => format!("[{ip}]"),
        Some(ip) => ip.to_string(),
    }
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
