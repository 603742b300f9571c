//! ksail: a GitOps loop on local Kubernetes clusters.
//!
//! The crate is a library with a thin binary (`src/main.rs`) so that the fuzz targets in `fuzz/`
//! link against the same parsers the binary runs. The public surface is [`run`] and the hidden
//! [`fuzzing`] entry points; every module stays private.

mod app;
mod artifact;
mod cli;
mod cluster;
mod commands;
mod config;
mod context;
mod duration;
mod env_vars;
mod error;
mod gitops;
mod interrupt;
mod k8s;
mod output;
mod process;
mod progress;
mod publish;
mod registry;
mod resolve;
mod retry;
mod settings;
mod signing;
mod yaml;

#[doc(hidden)]
pub mod fuzzing;

pub use app::run;
