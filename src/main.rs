//! ksail: a GitOps loop on local Kubernetes clusters.
//!
//! `main` is the only place that exits; the program is [`ksail::run`] in the library.

fn main() {
    std::process::exit(ksail::run());
}
