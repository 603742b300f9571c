//! Credentials from the docker configuration, the way `docker login` writes them
//! (artifact.md#credentials, step 2): `credHelpers[H]`, then `credsStore`, then `auths`.
//!
//! Problems here never stop a run: a missing helper, a failing helper or an unparsable
//! `config.json` become warnings and the lookup continues. No warning contains helper output or
//! any part of the file's values but a helper's name.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use super::auth::{CredentialSource, Credentials};

/// The key docker uses for Docker Hub in `auths` and for credential helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

/// The username a credential helper returns when `Secret` is an identity token.
const IDENTITY_TOKEN_USER: &str = "<token>";

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn default_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env(crate::env_vars::DOCKER_CONFIG).filter(|dir| !dir.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    env("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| Path::new(&home).join(".docker"))
}

#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
    registrytoken: Option<String>,
}

/// The result of a docker-config lookup.
#[derive(Debug, Default)]
pub struct Lookup {
    pub found: Option<(Credentials, CredentialSource)>,
    pub warnings: Vec<String>,
}

fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS
        .iter()
        .any(|hub| hub.eq_ignore_ascii_case(host))
}

/// Look up credentials for `host` in the `config.json` at `config_path`, running helpers found
/// on `search_path` (a `PATH`-style list; passed in so tests need not change the process env).
pub fn lookup(config_path: &Path, host: &str, search_path: &str) -> Lookup {
    let mut result = Lookup::default();
    let text = match std::fs::read(config_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return result,
        Err(error) => {
            result.warnings.push(format!(
                "cannot read docker config {}: {}; ignoring it",
                config_path.display(),
                error.kind()
            ));
            return result;
        }
    };
    lookup_in(&text, config_path, host, search_path)
}

/// [`lookup`] on the contents `text` of the `config.json` at `config_path` (named in warnings).
/// With an empty `search_path` no helper can be found, so nothing is run.
pub fn lookup_in(text: &[u8], config_path: &Path, host: &str, search_path: &str) -> Lookup {
    let mut result = Lookup::default();
    let config: DockerConfig = match serde_json::from_slice(text) {
        Ok(config) => config,
        Err(error) => {
            // Only the position: serde's message can quote a value from the file.
            result.warnings.push(format!(
                "cannot parse docker config {} (line {}, column {}); ignoring it",
                config_path.display(),
                error.line(),
                error.column()
            ));
            return result;
        }
    };

    let hub = is_docker_hub(host);
    // What helpers get on stdin and what `docker login` stored: Docker Hub uses its v1 URL.
    let server = if hub { DOCKER_HUB_SERVER } else { host };

    let helper = config.cred_helpers.get(host).or_else(|| {
        hub.then(|| config.cred_helpers.get(DOCKER_HUB_SERVER))
            .flatten()
    });
    // A helper that has nothing (or fails) does not end the lookup: the next source is tried.
    let helpers = [
        helper.filter(|helper| !helper.is_empty()),
        config
            .creds_store
            .as_ref()
            .filter(|store| !store.is_empty()),
    ];
    for name in helpers.into_iter().flatten() {
        if let Some(credentials) = run_helper(name, server, search_path, &mut result.warnings) {
            result.found = Some((
                credentials,
                CredentialSource::CredentialHelper(name.clone()),
            ));
            return result;
        }
    }

    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if hub {
        keys.push(DOCKER_HUB_SERVER.to_string());
    }
    for key in keys {
        if let Some(entry) = config.auths.get(&key) {
            match credentials_from_entry(entry) {
                Ok(Some(credentials)) => {
                    result.found = Some((credentials, CredentialSource::DockerConfig));
                    return result;
                }
                Ok(None) => {}
                Err(problem) => result.warnings.push(format!(
                    "docker config {}: the entry for {key} {problem}; ignoring it",
                    config_path.display()
                )),
            }
        }
    }
    result
}

/// Credentials of one `auths` entry. A `registrytoken` is preferred, then an `identitytoken`,
/// then `auth` (or `username`/`password`). An empty entry yields `None`.
fn credentials_from_entry(entry: &AuthEntry) -> Result<Option<Credentials>, &'static str> {
    let present = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
    if let Some(token) = present(&entry.registrytoken) {
        return Ok(Some(Credentials::RegistryToken(token)));
    }
    if let Some(token) = present(&entry.identitytoken) {
        return Ok(Some(Credentials::IdentityToken(token)));
    }
    if let Some(auth) = present(&entry.auth) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| "has an \"auth\" value that is not base64")?;
        let decoded =
            String::from_utf8(decoded).map_err(|_| "has an \"auth\" value that is not UTF-8")?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or("has an \"auth\" value that is not user:password")?;
        return Ok(Some(Credentials::Basic {
            user: user.to_string(),
            password: password.to_string(),
        }));
    }
    match (present(&entry.username), present(&entry.password)) {
        (Some(user), Some(password)) => Ok(Some(Credentials::Basic { user, password })),
        _ => Ok(None),
    }
}

/// Find `docker-credential-<name>` on `search_path`.
pub fn find_helper(name: &str, search_path: &str) -> Option<PathBuf> {
    let file_name = format!("docker-credential-{name}");
    std::env::split_paths(OsStr::new(search_path))
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(&file_name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[derive(Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Run `docker-credential-<name> get` with `server` on stdin. `None` when the helper has no
/// credentials (silently) or failed (with a warning).
fn run_helper(
    name: &str,
    server: &str,
    search_path: &str,
    warnings: &mut Vec<String>,
) -> Option<Credentials> {
    let Some(executable) = find_helper(name, search_path) else {
        warnings.push(format!(
            "docker credential helper \"{name}\" is not installed (docker-credential-{name} is not on PATH); continuing without it"
        ));
        return None;
    };
    let child = Command::new(&executable)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) => {
            warnings.push(format!(
                "docker credential helper \"{name}\" could not be started ({}); continuing without it",
                error.kind()
            ));
            return None;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading stdin makes this fail; its exit status decides.
        let _ = stdin.write_all(server.as_bytes());
    }
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(error) => {
            warnings.push(format!(
                "docker credential helper \"{name}\" failed ({}); continuing without it",
                error.kind()
            ));
            return None;
        }
    };
    if !output.status.success() {
        // The helper protocol reports a missing entry with this text (docker-credential-helpers'
        // `credentials.errCredentialsNotFound`); it is the protocol's only signal for it.
        let not_found = [&output.stdout, &output.stderr].iter().any(|stream| {
            String::from_utf8_lossy(stream)
                .to_ascii_lowercase()
                .contains("credentials not found")
        });
        if !not_found {
            warnings.push(format!(
                "docker credential helper \"{name}\" failed ({}); continuing without it",
                output.status
            ));
        }
        return None;
    }
    let parsed: HelperOutput = match serde_json::from_slice(&output.stdout) {
        Ok(parsed) => parsed,
        Err(_) => {
            warnings.push(format!(
                "docker credential helper \"{name}\" returned something that is not credentials JSON; continuing without it"
            ));
            return None;
        }
    };
    if parsed.secret.is_empty() {
        return None;
    }
    if parsed.username == IDENTITY_TOKEN_USER {
        return Some(Credentials::IdentityToken(parsed.secret));
    }
    Some(Credentials::Basic {
        user: parsed.username,
        password: parsed.secret,
    })
}

#[cfg(test)]
mod tests {
    use super::super::auth::{CredentialRequest, ResolvedCredentials, resolve_credentials};
    use super::*;
    use std::fs;

    /// A temp dir with `config.json` and a `bin/` dir for fake helpers.
    struct Setup {
        dir: tempfile::TempDir,
    }

    impl Setup {
        fn new(config: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("config.json"), config).unwrap();
            fs::create_dir(dir.path().join("bin")).unwrap();
            Setup { dir }
        }

        /// A fake `docker-credential-<name>`: a shell script with `body`.
        fn helper(&self, name: &str, body: &str) {
            use std::os::unix::fs::PermissionsExt as _;
            let path = self
                .dir
                .path()
                .join("bin")
                .join(format!("docker-credential-{name}"));
            fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }

        fn resolve(&self, host: &str) -> ResolvedCredentials {
            let path = self.dir.path().join("bin").display().to_string();
            let env = move |name: &str| (name == "PATH").then(|| path.clone());
            let req = CredentialRequest {
                host: host.into(),
                registry_string: None,
            };
            resolve_credentials(&req, &env, Some(self.dir.path().to_path_buf())).unwrap()
        }
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn basic(user: &str, password: &str) -> Credentials {
        Credentials::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Echoes the server URL it was asked for into the password, so tests see what was sent.
    const ECHO_HELPER: &str = r#"read server; [ "$1" = get ] || exit 3; printf '{"ServerURL":"%s","Username":"u","Secret":"for-%s"}' "$server" "$server""#;

    #[test]
    fn cred_helpers_entry_wins_and_gets_the_host_on_stdin() {
        let setup = Setup::new(&format!(
            r#"{{"credHelpers":{{"ghcr.io":"test"}},"credsStore":"store","auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("a:b")
        ));
        setup.helper("test", ECHO_HELPER);
        let resolved = setup.resolve("ghcr.io");
        assert_eq!(resolved.credentials, basic("u", "for-ghcr.io"));
        assert_eq!(
            resolved.source,
            CredentialSource::CredentialHelper("test".into())
        );
        assert!(resolved.warnings.is_empty());
    }

    #[test]
    fn creds_store_is_used_when_no_cred_helper_matches() {
        let setup = Setup::new(r#"{"credHelpers":{"other.io":"nope"},"credsStore":"test"}"#);
        setup.helper("test", ECHO_HELPER);
        let resolved = setup.resolve("registry.example.com:5000");
        assert_eq!(
            resolved.credentials,
            basic("u", "for-registry.example.com:5000")
        );
        assert_eq!(
            resolved.source,
            CredentialSource::CredentialHelper("test".into())
        );
    }

    #[test]
    fn helper_not_found_continues_silently_to_auths() {
        let setup = Setup::new(&format!(
            r#"{{"credsStore":"test","auths":{{"https://ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("ci:pw")
        ));
        setup.helper(
            "test",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        let resolved = setup.resolve("ghcr.io");
        assert_eq!(resolved.credentials, basic("ci", "pw"));
        assert_eq!(resolved.source, CredentialSource::DockerConfig);
        assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
    }

    #[test]
    fn failing_helper_warns_without_its_output() {
        let setup = Setup::new(r#"{"credsStore":"test"}"#);
        setup.helper(
            "test",
            "echo 'leaked-secret'; echo 'leaked-secret' >&2; exit 4",
        );
        let resolved = setup.resolve("ghcr.io");
        assert_eq!(resolved.credentials, Credentials::Anonymous);
        assert_eq!(resolved.warnings.len(), 1);
        assert!(resolved.warnings[0].contains("docker credential helper \"test\" failed"));
        assert!(!resolved.warnings[0].contains("leaked-secret"));
    }

    #[test]
    fn missing_helper_warns_and_continues() {
        let setup = Setup::new(&format!(
            r#"{{"credHelpers":{{"ghcr.io":"absent"}},"auths":{{"http://ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("ci:pw")
        ));
        let resolved = setup.resolve("ghcr.io");
        assert_eq!(resolved.credentials, basic("ci", "pw"));
        assert_eq!(
            resolved.warnings,
            vec![
                "docker credential helper \"absent\" is not installed (docker-credential-absent is not on PATH); continuing without it"
            ]
        );
    }

    #[test]
    fn unparsable_config_warns_without_quoting_values() {
        let setup = Setup::new(r#"{"auths": "hunter2"}"#);
        let resolved = setup.resolve("ghcr.io");
        assert_eq!(resolved.credentials, Credentials::Anonymous);
        assert_eq!(resolved.warnings.len(), 1);
        assert!(resolved.warnings[0].starts_with("cannot parse docker config"));
        assert!(!resolved.warnings[0].contains("hunter2"));
    }

    #[test]
    fn auths_tokens_and_docker_hub_alias() {
        let setup = Setup::new(
            r#"{"auths":{
                "https://index.docker.io/v1/":{"identitytoken":"idtok"},
                "quay.io":{"registrytoken":"regtok","auth":""},
                "empty.io":{}
            }}"#,
        );
        assert_eq!(
            setup.resolve("docker.io").credentials,
            Credentials::IdentityToken("idtok".into())
        );
        assert_eq!(
            setup.resolve("quay.io").credentials,
            Credentials::RegistryToken("regtok".into())
        );
        let empty = setup.resolve("empty.io");
        assert_eq!(empty.credentials, Credentials::Anonymous);
        assert_eq!(empty.source, CredentialSource::Anonymous);
    }

    #[test]
    fn helper_identity_token_user_means_identity_token() {
        let setup = Setup::new(r#"{"credHelpers":{"ghcr.io":"test"}}"#);
        setup.helper(
            "test",
            r#"cat >/dev/null; printf '{"Username":"<token>","Secret":"refresh"}'"#,
        );
        assert_eq!(
            setup.resolve("ghcr.io").credentials,
            Credentials::IdentityToken("refresh".into())
        );
    }

    #[test]
    fn registry_string_credentials_win_over_docker_config() {
        let setup = Setup::new(&format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("docker:pw")
        ));
        let req = CredentialRequest {
            host: "ghcr.io".into(),
            registry_string: Some(super::super::auth::RegistryStringCredentials {
                expand: false,
                ..super::super::auth::tests::flag_string("ci", "inline", "--registry")
            }),
        };
        let resolved =
            resolve_credentials(&req, &|_| None, Some(setup.dir.path().to_path_buf())).unwrap();
        assert_eq!(resolved.credentials, basic("ci", "inline"));
    }

    #[test]
    fn missing_config_file_is_anonymous_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let req = CredentialRequest {
            host: "ghcr.io".into(),
            registry_string: None,
        };
        let resolved =
            resolve_credentials(&req, &|_| None, Some(dir.path().to_path_buf())).unwrap();
        assert_eq!(resolved.credentials, Credentials::Anonymous);
        assert!(resolved.warnings.is_empty());
    }

    #[test]
    fn default_dir_prefers_docker_config() {
        let env = |name: &str| match name {
            "DOCKER_CONFIG" => Some("/cfg".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(default_dir(&env), Some(PathBuf::from("/cfg")));
        let env = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
        assert_eq!(default_dir(&env), Some(PathBuf::from("/home/u/.docker")));
    }
}
