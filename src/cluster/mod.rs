//! Local clusters and their GitOps set-up (cluster.md), for the `ksail cluster …` commands:
//!
//! - [`provider`]: the kind, k3d and docker command lines (argv building, output parsing);
//! - [`init`]: a new project: the flags validated, the files planned, then written;
//! - [`scaffold`]: the text of what `init` writes (ksail.yaml, kind.yaml/k3d.yaml, kustomization);
//! - [`distribution_config`]: the config `create` hands kind or k3d, and the node mirror files;
//! - [`create`]: preflight and steps 1–5 (registry, cluster, network, mirror, API server);
//! - [`setup`]: steps 6–9 (initial artifact, engine install, bootstrap objects, engine ready);
//! - [`install`]: the engine's install manifest, fetched and server-side applied, CRDs first;
//! - [`bootstrap`]: the FluxInstance, Application and Secrets ksail writes (pure);
//! - [`update`]: comparing a cluster with ksail.yaml, repairing tag drift;
//! - [`delete`]: the cluster, then the registry container ksail made;
//! - [`list`]: every kind and k3d cluster on this machine, with its registry container;
//! - [`wait`]: the bounded waits: polling for what has nothing to watch, watches for the engine.

pub mod bootstrap;
pub mod create;
pub mod delete;
pub mod distribution_config;
pub mod init;
pub mod install;
pub mod list;
pub mod mirrors;
pub mod provider;
pub mod scaffold;
pub mod setup;
pub mod update;
pub mod wait;
