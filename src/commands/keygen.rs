//! `ksail workload keygen` (docs/signing.md "Keys"): a new cosign key pair, the private key
//! encrypted with the password in `$COSIGN_PASSWORD` (or the variable
//! `spec.workload.signing.passwordEnvVar` names). It never replaces a file.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Context, Outcome};
use crate::cli::KeygenArgs;
use crate::config::{DEFAULT_SIGNING_PASSWORD_ENV_VAR, FlagOverrides, Key};
use crate::error::Failure;
use crate::output::register_secret;
use crate::settings::load_effective;
use crate::signing::key;

pub const COMMAND: &str = "workload keygen";

pub fn run(ctx: &Context, args: &KeygenArgs) -> Outcome {
    Outcome {
        command: COMMAND,
        result: keygen(ctx, args),
        json: None,
    }
}

fn keygen(ctx: &Context, args: &KeygenArgs) -> Result<(), Failure> {
    let flags = FlagOverrides {
        signing_key: args.key.clone(),
        ..FlagOverrides::default()
    };
    let effective = load_effective(ctx, &flags)?;
    let (private, public, variable, configured) = match &effective.signing {
        Some(signing) => (
            signing.key.value.clone(),
            signing.public_key.value.clone(),
            signing.password_env_var.value.clone(),
            matches!(signing.key.source, crate::config::Source::File(..)),
        ),
        None => {
            let written = "cosign.key".to_string();
            let resolved = ctx.env.cwd.join(&written);
            (
                crate::config::ConfigPath { written, resolved },
                crate::config::ConfigPath {
                    written: "cosign.pub".to_string(),
                    resolved: ctx.env.cwd.join("cosign.pub"),
                },
                DEFAULT_SIGNING_PASSWORD_ENV_VAR.to_string(),
                false,
            )
        }
    };
    let Some(password) = ctx.env.var(&variable) else {
        return Err(Failure::usage(format!(
            "{variable} is not set: the new private key is encrypted with its value; set it to the password (empty for none), or name another variable in {}",
            Key::SigningPasswordEnvVar.path()
        )));
    };
    register_secret(&password);
    for path in [&private, &public] {
        if path.resolved.exists() {
            return Err(Failure::usage(format!(
                "{} exists; keygen never replaces a key: move it away, or pass --key with another path",
                path.written
            )));
        }
    }
    for path in [&private, &public] {
        if let Some(parent) = path.resolved.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| write_failure(&path.written, &error))?;
        }
    }
    let (private_pem, public_pem) = key::generate(password.as_bytes())
        .map_err(|error| Failure::failed(format!("cannot generate a key pair: {error}")))?;
    write_new(&private.resolved, &private_pem, 0o600)
        .map_err(|error| write_failure(&private.written, &error))?;
    if let Err(error) = write_new(&public.resolved, &public_pem, 0o644) {
        // Both files or neither: a private key without its public half is no key pair.
        let _ = std::fs::remove_file(&private.resolved);
        return Err(write_failure(&public.written, &error));
    }
    ctx.printer.result(&format!(
        "wrote {} (private, encrypted with the password in {variable}) and {} (public)",
        private.written, public.written
    ));
    if !configured {
        ctx.printer.info(&format!(
            "sign every push with it: set {}: {} in ksail.yaml (or pass --signing-key {} to workload push)",
            Key::Signing.path(),
            relative_to_config(&private.resolved, effective.config_file.as_deref())
                .unwrap_or_else(|| private.written.clone()),
            private.written
        ));
    }
    Ok(())
}

/// Create `path` (never replacing one) with `mode` on Unix.
fn write_new(path: &Path, text: &str, mode: u32) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn write_failure(path: &str, error: &std::io::Error) -> Failure {
    Failure::failed(format!(
        "cannot write {path}: {}; check the directory and its permissions",
        crate::artifact::io_reason(error)
    ))
}

/// `path` relative to the directory of ksail.yaml, when it is inside it.
fn relative_to_config(path: &Path, config: Option<&Path>) -> Option<String> {
    let dir: PathBuf = config?.parent()?.to_path_buf();
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    let relative = parent.strip_prefix(&dir).ok()?.join(path.file_name()?);
    Some(relative.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_names_the_key_relative_to_ksail_yaml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("project/keys")).unwrap();
        let config = dir.path().join("project/ksail.yaml");
        let key = dir.path().join("project/keys/ci.key");
        assert_eq!(
            relative_to_config(&key, Some(&config)).as_deref(),
            Some("keys/ci.key")
        );
        let outside = dir.path().join("ci.key");
        assert_eq!(relative_to_config(&outside, Some(&config)), None);
        assert_eq!(relative_to_config(&key, None), None);
    }
}
