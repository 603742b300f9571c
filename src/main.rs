//! ksail: a GitOps loop on local Kubernetes clusters.
//!
//! `main` is the only place that exits: it installs the TLS provider, parses the command line,
//! runs the command and maps its outcome to an exit code (cli.md#exit-codes).
#![allow(dead_code)] // removed once every module is wired into a command

mod artifact;
mod config;
mod duration;
mod error;
mod registry;
mod resolve;
mod yaml;

fn main() {}
