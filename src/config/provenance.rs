//! The `-v` provenance lines (config.md#precedence): which keys did not come from their
//! default, and from where. Secrets are redacted before formatting.

use super::effective::{Effective, PATH_LIST_SEPARATOR, Source, Sourced};
use super::keys::{KEYS, Key};
use crate::duration::format_go;
use crate::resolve::redact_registry_string;

impl Effective {
    /// The `-v` lines (config.md#precedence): one per key whose value did not come from its
    /// default, in key-table order; or the "no ksail.yaml" line. The registry password is redacted.
    pub fn provenance_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if self.file_display.is_none() {
            lines.push("config: no ksail.yaml found; using defaults".to_string());
        }
        for spec in &KEYS {
            let Some((value, source)) = self.shown_value(spec.key) else {
                continue;
            };
            let from = match source {
                Source::Default => continue,
                Source::Flag(flag) => format!("flag {flag}"),
                Source::Env(name) => format!("env {name}"),
                Source::File(_) => self.file_display.clone().unwrap_or_default(),
            };
            lines.push(format!("config: {} = {value} (from {from})", spec.path));
        }
        lines
    }

    /// Where a key's effective value came from; `None` when it has none.
    pub fn source_of(&self, key: Key) -> Option<&Source> {
        self.shown_value(key).map(|(_, source)| source)
    }

    /// A key's value as `-v` shows it, with its source.
    fn shown_value(&self, key: Key) -> Option<(String, &Source)> {
        fn quoted<T>(sourced: &Sourced<T>, text: String) -> (String, &Source) {
            (format!("{text:?}"), &sourced.source)
        }
        fn text(sourced: &Option<Sourced<String>>) -> Option<(String, &Source)> {
            sourced.as_ref().map(|s| quoted(s, s.value.clone()))
        }
        fn flag(sourced: &Sourced<bool>) -> (String, &Source) {
            (sourced.value.to_string(), &sourced.source)
        }
        Some(match key {
            Key::MetadataName => return text(&self.name),
            Key::Distribution => quoted(&self.distribution, self.distribution.value.to_string()),
            Key::DistributionConfig => {
                let config = self.distribution_config.as_ref()?;
                quoted(config, config.value.written.clone())
            }
            Key::GitOpsEngine => quoted(&self.gitops_engine, self.gitops_engine.value.to_string()),
            Key::Registry => {
                let registry = self.registry.as_ref()?;
                quoted(registry, redact_registry_string(&registry.value))
            }
            Key::TokenEnvVar => return text(&self.credentials.token_env_var),
            Key::CliTokenEnvVar => return text(&self.credentials.cli_token_env_var),
            Key::ClusterTokenEnvVar => return text(&self.credentials.cluster_token_env_var),
            Key::Insecure => flag(&self.insecure),
            Key::Kubeconfig => {
                let written: Vec<&str> = self
                    .kubeconfig
                    .value
                    .iter()
                    .map(|p| p.written.as_str())
                    .collect();
                quoted(
                    &self.kubeconfig,
                    written.join(&PATH_LIST_SEPARATOR.to_string()),
                )
            }
            Key::Context => return text(&self.context),
            Key::Timeout => {
                let timeout = self.timeout.as_ref()?;
                quoted(timeout, format_go(timeout.value))
            }
            Key::PushTimeout => {
                let timeout = self.push_timeout.as_ref()?;
                quoted(timeout, format_go(timeout.value))
            }
            Key::Signing => {
                let signing = self.signing.as_ref()?;
                quoted(&signing.key, signing.key.value.written.clone())
            }
            Key::SigningPublic => {
                let signing = self.signing.as_ref()?;
                quoted(
                    &signing.public_key,
                    signing.public_key.value.written.clone(),
                )
            }
            Key::SigningPasswordEnvVar => {
                let signing = self.signing.as_ref()?;
                quoted(
                    &signing.password_env_var,
                    signing.password_env_var.value.clone(),
                )
            }
            Key::SourceDirectory => quoted(
                &self.source_directory,
                self.source_directory.value.written.clone(),
            ),
            Key::Tag => return text(&self.tag),
            Key::ValidateOnPush => flag(&self.validate_on_push),
            Key::KustomizationFile => return text(&self.kustomization_file),
            Key::FluxOperatorVersion => quoted(
                &self.flux_operator_version,
                self.flux_operator_version.value.clone(),
            ),
            Key::FluxDistributionVersion => quoted(
                &self.flux_distribution_version,
                self.flux_distribution_version.value.clone(),
            ),
            Key::MirrorRegistries => quoted(
                &self.mirror_registries,
                self.mirror_registries.value.clone(),
            ),
        })
    }
}
