//! `ksail completion <shell>` (cli.md#completion).
//!
//! Bash, Zsh and Fish get clap_complete's static scripts, which list every subcommand, flag and
//! enum value. clap_complete's static PowerShell and Elvish scripts complete flags but never
//! values, so those two shells get a registration script instead: on each Tab it calls
//! `ksail` back with `KSAIL_COMPLETE` set, and [`serve_dynamic`] answers from the command tree
//! itself — subcommands, flags and the values of `--distribution`, `--gitops-engine` and
//! `--output` alike.

use clap::CommandFactory;
use clap_complete::Shell;
use clap_complete::env::{CompleteEnv, Elvish, EnvCompleter, Powershell, Shells};

use crate::cli::Cli;
use crate::env_vars::KSAIL_COMPLETE;

/// The shells answered by [`serve_dynamic`].
const DYNAMIC: Shells<'static> = Shells(&[&Powershell, &Elvish]);

/// The completion script for `shell`, as `ksail completion <shell>` prints it.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    let dynamic: Option<&dyn EnvCompleter> = match shell {
        Shell::PowerShell => Some(&Powershell),
        Shell::Elvish => Some(&Elvish),
        _ => None,
    };
    match dynamic {
        Some(completer) => {
            // Writing into a Vec cannot fail.
            let _ = completer.write_registration(
                KSAIL_COMPLETE,
                "ksail",
                "ksail",
                "ksail",
                &mut script,
            );
        }
        None => clap_complete::generate(shell, &mut Cli::command(), "ksail", &mut script),
    }
    script
}

/// Answers a completion request of a PowerShell or Elvish registration script and exits when
/// `KSAIL_COMPLETE` is set; returns at once otherwise. Runs before anything else reads the
/// command line or the environment.
pub fn serve_dynamic() {
    CompleteEnv::with_factory(Cli::command)
        .var(KSAIL_COMPLETE)
        .shells(DYNAMIC)
        .complete();
}
