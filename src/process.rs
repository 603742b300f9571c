//! Process-level inputs (environment, current directory, terminal) read once at start-up, so that
//! everything below `main` works on plain data and tests can drive it deterministically.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use crate::env_vars;

#[derive(Debug, Clone, Default)]
pub struct ProcessEnv {
    vars: HashMap<String, String>,
    pub cwd: PathBuf,
    pub stderr_is_tty: bool,
}

impl ProcessEnv {
    /// Snapshot the real process environment.
    pub fn capture() -> std::io::Result<Self> {
        Ok(ProcessEnv {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            cwd: std::env::current_dir()?,
            stderr_is_tty: std::io::stderr().is_terminal(),
        })
    }

    /// A fixed environment for unit tests.
    #[cfg(test)]
    pub fn fixed(vars: &[(&str, &str)], cwd: PathBuf) -> Self {
        ProcessEnv {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd,
            stderr_is_tty: false,
        }
    }

    /// The variable's value; an empty value counts as unset (config.md#precedence).
    pub fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).filter(|v| !v.is_empty()).cloned()
    }

    /// The variable is set to the empty string: [`ProcessEnv::var`] treats it as unset, and the
    /// caller may want to say so rather than drop it without a word.
    pub fn is_set_but_empty(&self, name: &str) -> bool {
        self.vars.get(name).is_some_and(String::is_empty)
    }

    /// A closure view of [`ProcessEnv::var`], for modules that take `&dyn Fn(&str) -> Option<String>`.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| self.var(name)
    }

    pub fn home(&self) -> Option<PathBuf> {
        self.var(env_vars::HOME).map(PathBuf::from)
    }
}
