//! Cluster lifecycle building blocks shared by the `ksail cluster …` commands (cluster.md):
//! the kind/k3d/docker wrappers and, beside them, scaffolding and the create/update steps.

pub mod provider;
