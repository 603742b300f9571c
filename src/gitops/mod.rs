//! GitOps engines: selecting Flux or Argo CD, asking them to reconcile, and judging from their
//! objects' status whether the cluster serves what is in the registry.
//!
//! Organised by engine: [`flux`] and [`argocd`] each hold their resources, objects, pure
//! readiness rules and driver; [`verdict`] is the vocabulary the rules share; [`reconcile`] runs
//! the attempts; [`diagnostics`] explains failures.

pub mod argocd;
pub mod attempt;
pub mod diagnostics;
pub mod engine;
pub mod expected;
#[cfg(test)]
mod fixture;
pub mod flux;
pub mod reconcile;
pub mod report;
pub mod verdict;
pub mod watch;

/// The GitOps engine a reconcile run talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Flux,
    ArgoCd,
}

impl Engine {
    /// The JSON `engine` member and the `Diagnostics (<engine>)` heading use these names.
    pub fn json_name(self) -> &'static str {
        match self {
            Engine::Flux => "Flux",
            Engine::ArgoCd => "ArgoCD",
        }
    }

    pub fn display_name(self) -> &'static str {
        match self {
            Engine::Flux => "Flux",
            Engine::ArgoCd => "Argo CD",
        }
    }
}
