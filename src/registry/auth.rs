//! Which credentials a registry request uses, and where they came from (artifact.md#credentials).
//!
//! Order: registry-string credentials (only for the string's own host and port), then the docker
//! configuration ([`super::docker_config`]), then anonymous. Incomplete configuration is a
//! [`CredentialError`] (exit 2) before anything is sent.
//!
//! `${VAR}` expansion: strings from `ksail.yaml` arrive already expanded (the config loader
//! expands them at load). Strings from a flag or an environment variable arrive raw; their
//! `user:pass` part is expanded here with `config::expand` (config.md#variable-expansion).

use std::fmt;
use std::path::PathBuf;

use crate::error::UsageError;

/// The credentials a client presents. `Debug` never shows a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic {
        user: String,
        password: String,
    },
    /// A docker `identitytoken`: the refresh token for the bearer-token endpoint.
    IdentityToken(String),
    /// A docker `registrytoken`: sent as the bearer token as is.
    RegistryToken(String),
}

impl Credentials {
    /// The secret values, for redacting registry messages.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Credentials::Anonymous => Vec::new(),
            Credentials::Basic { user, password } => {
                use base64::Engine as _;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                vec![password.clone(), encoded]
            }
            Credentials::IdentityToken(token) | Credentials::RegistryToken(token) => {
                vec![token.clone()]
            }
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { user, .. } => f
                .debug_struct("Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credentials::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// Where credentials came from; named in messages instead of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Anonymous,
    /// The password embedded in the registry string.
    RegistryString,
    /// The environment variable named by `credentials.cliTokenEnvVar` or `tokenEnvVar`.
    EnvVar(String),
    /// An `auths` entry of the docker `config.json`.
    DockerConfig,
    /// `docker-credential-<helper>`.
    CredentialHelper(String),
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Anonymous => f.write_str("anonymous"),
            CredentialSource::RegistryString => f.write_str("credentials from the registry string"),
            CredentialSource::EnvVar(name) => {
                write!(f, "credentials from environment variable {name}")
            }
            CredentialSource::DockerConfig => f.write_str("credentials from docker config.json"),
            CredentialSource::CredentialHelper(helper) => {
                write!(f, "credentials from docker credential helper \"{helper}\"")
            }
        }
    }
}

/// What to look credentials up for.
#[derive(Debug, Clone)]
pub struct CredentialRequest {
    /// `H`: `host[:port]` of the registry the requests go to (lower-case host, port only when
    /// given).
    pub host: String,
    /// The registry string that may carry credentials (`push_registry` for push, else
    /// `cfg_registry`), if any.
    pub registry_string: Option<RegistryStringCredentials>,
}

/// The credential-relevant parts of a parsed registry string.
#[derive(Clone)]
pub struct RegistryStringCredentials {
    /// `host[:port]` of the string, in the same form as [`CredentialRequest::host`].
    pub host: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// `credentials.cliTokenEnvVar` / `credentials.tokenEnvVar`: set only for the string from
    /// `ksail.yaml` (or its `KSAIL_SPEC_…` override), never for `--registry`/`KSAIL_REGISTRY`.
    pub token_env_vars: TokenEnvVars,
    /// True when `user`/`password` still hold `${VAR}` references (flag or environment strings).
    pub expand: bool,
    /// Where the string came from, for messages (`--registry`, `KSAIL_REGISTRY`, `ksail.yaml`).
    pub origin: String,
}

impl fmt::Debug for RegistryStringCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryStringCredentials")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token_env_vars", &self.token_env_vars)
            .field("expand", &self.expand)
            .field("origin", &self.origin)
            .finish()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenEnvVars {
    pub cli_token_env_var: Option<String>,
    pub token_env_var: Option<String>,
}

/// The outcome of credential resolution.
#[derive(Debug, Clone)]
pub struct ResolvedCredentials {
    pub credentials: Credentials,
    pub source: CredentialSource,
    /// Lines for `warning:` (no prefix); never contain a secret.
    pub warnings: Vec<String>,
}

/// Incomplete credential configuration (exit 2). Messages name settings and variables, never
/// values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error(
        "spec.cluster.localRegistry.credentials.{setting} names {variable}, which is not set; export it or remove the setting"
    )]
    EnvVarUnset {
        setting: &'static str,
        variable: String,
    },
    #[error(
        "registry user \"{user}\" has no password; add it to the registry string or set credentials.tokenEnvVar"
    )]
    UserWithoutPassword { user: String },
    #[error(
        "credentials.{setting} is set but the registry string has no user; write it as user@host"
    )]
    TokenWithoutUser { setting: &'static str },
    #[error(
        "{origin}: the registry string has a password but no user after expanding variables; write it as user:password@host"
    )]
    PasswordWithoutUser { origin: String },
    #[error(
        "{origin}: invalid variable reference in the registry credentials: {detail}; use ${{NAME}}, ${{NAME:-default}} or ${{NAME:=default}}"
    )]
    Expansion { origin: String, detail: String },
}

impl UsageError for CredentialError {}

const CLI_TOKEN_SETTING: &str = "cliTokenEnvVar";
const TOKEN_SETTING: &str = "tokenEnvVar";

/// Resolve the credentials for `req.host`.
///
/// `env` reads environment variables (it is also where `PATH`, `DOCKER_CONFIG` and `HOME` come
/// from, so tests need not touch the process environment). `docker_config_dir` overrides the
/// directory holding `config.json`; `None` means `$DOCKER_CONFIG`, else `$HOME/.docker`.
///
/// Credential helpers are run synchronously; call this from `spawn_blocking` in async code.
pub fn resolve_credentials(
    req: &CredentialRequest,
    env: &dyn Fn(&str) -> Option<String>,
    docker_config_dir: Option<PathBuf>,
) -> Result<ResolvedCredentials, CredentialError> {
    let mut warnings = Vec::new();
    if let Some(string) = &req.registry_string
        && string.host.eq_ignore_ascii_case(&req.host)
        && let Some((credentials, source)) = from_registry_string(string, env, &mut warnings)?
    {
        return Ok(ResolvedCredentials {
            credentials,
            source,
            warnings,
        });
    }

    let config_dir = docker_config_dir.or_else(|| super::docker_config::default_dir(env));
    if let Some(dir) = config_dir {
        let search_path = env("PATH").unwrap_or_default();
        let lookup =
            super::docker_config::lookup(&dir.join("config.json"), &req.host, &search_path);
        warnings.extend(lookup.warnings);
        if let Some((credentials, source)) = lookup.found {
            return Ok(ResolvedCredentials {
                credentials,
                source,
                warnings,
            });
        }
    }

    Ok(ResolvedCredentials {
        credentials: Credentials::Anonymous,
        source: CredentialSource::Anonymous,
        warnings,
    })
}

/// Step 1: credentials carried by the registry string. `Ok(None)` when it carries none.
fn from_registry_string(
    string: &RegistryStringCredentials,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<Option<(Credentials, CredentialSource)>, CredentialError> {
    let expand = |value: &Option<String>, warnings: &mut Vec<String>| {
        let Some(value) = value else {
            return Ok(None);
        };
        if !string.expand {
            return Ok(Some(value.clone()));
        }
        let expanded =
            crate::config::expand(value, env).map_err(|error| CredentialError::Expansion {
                origin: string.origin.clone(),
                detail: error.to_string(),
            })?;
        for name in expanded.unset {
            warnings.push(format!(
                "{}: environment variable {name} is not set; using an empty value",
                string.origin
            ));
        }
        Ok(Some(expanded.text))
    };
    let user = expand(&string.user, warnings)?.filter(|user| !user.is_empty());
    let embedded = expand(&string.password, warnings)?.filter(|password| !password.is_empty());

    // A configured variable name wins over the embedded password, as in ksail (Go).
    let configured = [
        (CLI_TOKEN_SETTING, &string.token_env_vars.cli_token_env_var),
        (TOKEN_SETTING, &string.token_env_vars.token_env_var),
    ];
    let mut password = None;
    let mut first_setting = None;
    for (setting, variable) in configured {
        let Some(variable) = variable.as_ref().filter(|name| !name.is_empty()) else {
            continue;
        };
        first_setting.get_or_insert(setting);
        if password.is_some() {
            continue;
        }
        match env(variable).filter(|value| !value.is_empty()) {
            Some(value) => password = Some((value, CredentialSource::EnvVar(variable.clone()))),
            None => {
                return Err(CredentialError::EnvVarUnset {
                    setting,
                    variable: variable.clone(),
                });
            }
        }
    }
    if let Some(setting) = first_setting
        && user.is_none()
    {
        return Err(CredentialError::TokenWithoutUser { setting });
    }
    let password = password.or(embedded.map(|value| (value, CredentialSource::RegistryString)));
    match (user, password) {
        (Some(user), Some((password, source))) => {
            Ok(Some((Credentials::Basic { user, password }, source)))
        }
        (Some(user), None) => Err(CredentialError::UserWithoutPassword { user }),
        (None, Some(_)) => Err(CredentialError::PasswordWithoutUser {
            origin: string.origin.clone(),
        }),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::error::Failure;
    use std::collections::HashMap;

    pub(crate) fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name: &str| map.get(name).cloned()
    }

    fn yaml_string(
        user: Option<&str>,
        password: Option<&str>,
        cli: Option<&str>,
        token: Option<&str>,
    ) -> RegistryStringCredentials {
        RegistryStringCredentials {
            host: "ghcr.io".into(),
            user: user.map(String::from),
            password: password.map(String::from),
            token_env_vars: TokenEnvVars {
                cli_token_env_var: cli.map(String::from),
                token_env_var: token.map(String::from),
            },
            expand: false,
            origin: "ksail.yaml".into(),
        }
    }

    /// A `--registry`/`KSAIL_REGISTRY` string for ghcr.io (`origin`): no token variables, its
    /// `${VAR}` references expanded at resolution.
    pub(in crate::registry) fn flag_string(
        user: &str,
        password: &str,
        origin: &str,
    ) -> RegistryStringCredentials {
        RegistryStringCredentials {
            host: "ghcr.io".into(),
            user: Some(user.into()),
            password: Some(password.into()),
            token_env_vars: TokenEnvVars::default(),
            expand: true,
            origin: origin.into(),
        }
    }

    fn request(string: RegistryStringCredentials) -> CredentialRequest {
        CredentialRequest {
            host: "ghcr.io".into(),
            registry_string: Some(string),
        }
    }

    fn resolve(
        req: &CredentialRequest,
        pairs: &[(&str, &str)],
    ) -> Result<ResolvedCredentials, CredentialError> {
        // An empty docker config dir: no docker credentials.
        let dir = tempfile::tempdir().unwrap();
        resolve_credentials(req, &env_of(pairs), Some(dir.path().to_path_buf()))
    }

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn cli_token_env_var_wins_over_token_env_var_and_embedded_password() {
        let req = request(yaml_string(
            Some("ci"),
            Some("embedded"),
            Some("CLI_TOKEN"),
            Some("TOKEN"),
        ));
        let resolved = resolve(&req, &[("CLI_TOKEN", "cli"), ("TOKEN", "tok")]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "cli"));
        assert_eq!(
            resolved.source,
            CredentialSource::EnvVar("CLI_TOKEN".into())
        );
    }

    #[test]
    fn token_env_var_wins_over_embedded_password() {
        let req = request(yaml_string(
            Some("ci"),
            Some("embedded"),
            None,
            Some("TOKEN"),
        ));
        let resolved = resolve(&req, &[("TOKEN", "tok")]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "tok"));
        assert_eq!(resolved.source, CredentialSource::EnvVar("TOKEN".into()));
    }

    #[test]
    fn embedded_password_is_used_last() {
        let req = request(yaml_string(Some("ci"), Some("embedded"), None, None));
        let resolved = resolve(&req, &[]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "embedded"));
        assert_eq!(resolved.source, CredentialSource::RegistryString);
    }

    #[test]
    fn registry_string_applies_only_to_its_own_host_and_port() {
        let mut string = yaml_string(Some("ci"), Some("embedded"), None, None);
        string.host = "ghcr.io:5000".into();
        let resolved = resolve(&request(string), &[]).unwrap();
        assert_eq!(resolved.credentials, Credentials::Anonymous);
        assert_eq!(resolved.source, CredentialSource::Anonymous);
    }

    #[test]
    fn incomplete_configuration_errors_match_the_table() {
        let unset = request(yaml_string(Some("ci"), None, Some("GHCR_PUSH_TOKEN"), None));
        assert_eq!(
            resolve(&unset, &[("GHCR_PUSH_TOKEN", "")])
                .unwrap_err()
                .to_string(),
            "spec.cluster.localRegistry.credentials.cliTokenEnvVar names GHCR_PUSH_TOKEN, which is not set; export it or remove the setting"
        );
        let no_password = request(yaml_string(Some("ci"), None, None, None));
        assert_eq!(
            resolve(&no_password, &[]).unwrap_err().to_string(),
            "registry user \"ci\" has no password; add it to the registry string or set credentials.tokenEnvVar"
        );
        let no_user = request(yaml_string(None, None, None, Some("TOKEN")));
        assert_eq!(
            resolve(&no_user, &[("TOKEN", "t")])
                .unwrap_err()
                .to_string(),
            "credentials.tokenEnvVar is set but the registry string has no user; write it as user@host"
        );
        let failure: Failure = resolve(&no_user, &[("TOKEN", "t")]).unwrap_err().into();
        assert_eq!(failure.class, crate::error::FailureClass::Usage);
    }

    #[test]
    fn flag_strings_ignore_token_env_vars_and_expand_user_and_password() {
        let string = flag_string("${USER_NAME}", "${PUSH_TOKEN:-fallback}", "--registry");
        let req = request(string.clone());
        let resolved = resolve(&req, &[("USER_NAME", "ci"), ("PUSH_TOKEN", "s3cret")]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "s3cret"));
        assert_eq!(resolved.source, CredentialSource::RegistryString);
        let resolved = resolve(&req, &[("USER_NAME", "ci")]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "fallback"));

        let mut unset_password = string;
        unset_password.password = Some("${PUSH_TOKEN}".into());
        let error = resolve(&request(unset_password), &[("USER_NAME", "ci")]).unwrap_err();
        assert_eq!(
            error,
            CredentialError::UserWithoutPassword { user: "ci".into() }
        );
    }

    #[test]
    fn unset_variables_warn_by_name() {
        let string = flag_string("ci", "a${MISSING}b", "KSAIL_REGISTRY");
        let resolved = resolve(&request(string), &[]).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "ab"));
        assert_eq!(
            resolved.warnings,
            vec!["KSAIL_REGISTRY: environment variable MISSING is not set; using an empty value"]
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            basic("ci", "hunter2"),
            Credentials::IdentityToken("idtok".into()),
            Credentials::RegistryToken("regtok".into()),
            yaml_string(Some("ci"), Some("hunter2"), None, None)
        );
        for secret in ["hunter2", "idtok", "regtok"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn source_display_names_the_source() {
        assert_eq!(
            CredentialSource::CredentialHelper("desktop".into()).to_string(),
            "credentials from docker credential helper \"desktop\""
        );
        assert_eq!(
            CredentialSource::EnvVar("GHCR_TOKEN".into()).to_string(),
            "credentials from environment variable GHCR_TOKEN"
        );
    }
}
