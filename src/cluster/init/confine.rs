//! `init` writes only inside the project directory (cluster.md#cluster-init). Two checks, both
//! before the first write:
//!
//! - The paths `ksail.yaml` records (the distribution config and the source directory) are
//!   inside it as written: no `..` that climbs out, no absolute path elsewhere, no leading `~`
//!   (which the config loader reads as the home directory). `--kustomization-file` is already
//!   relative and free of `..` (config.md).
//! - Every file `init` creates or overwrites is really inside it, with each symlink on the way
//!   followed. Files it leaves alone (skipped or kept) are not followed: a `kind.yaml` that links
//!   to a shared config elsewhere is the user's choice, and `init` does not write it.

use std::path::{Component, Path, PathBuf};

use super::{FileAction, FileKind, InitError, InitPlan};
use crate::resolve::lexical_normalise;

/// Symlinks followed on one path before it counts as a loop (Linux's own limit).
const MAX_SYMLINKS: u32 = 40;

/// Check `plan` against `project` (the absolute project directory); `actions` are the decided
/// actions, one per file of the plan.
pub(super) fn check(
    plan: &InitPlan,
    project: &Path,
    actions: &[FileAction],
) -> Result<(), InitError> {
    let root = Root::of(project);
    for file in &plan.files {
        if file.kind == FileKind::DistributionConfig {
            root.recorded(&file.path, file.flag)?;
        }
    }
    root.recorded(&plan.source_directory, plan.source_flag)?;
    for (file, action) in plan.files.iter().zip(actions) {
        if !matches!(action, FileAction::Created | FileAction::Overwrote) {
            continue;
        }
        if file.kind == FileKind::Kustomization {
            root.reached(&plan.source_directory, plan.source_flag)?;
        }
        root.reached(&file.path, file.flag)?;
    }
    Ok(())
}

/// The project directory as written (made absolute) and where it really is.
struct Root {
    lexical: PathBuf,
    real: PathBuf,
}

impl Root {
    fn of(project: &Path) -> Root {
        let lexical = lexical_normalise(project);
        // A loop here fails the first write before anything is written.
        let real = real_location(project).unwrap_or_else(|| lexical.clone());
        Root { lexical, real }
    }

    fn contains(&self, location: &Path) -> bool {
        location.starts_with(&self.lexical) || location.starts_with(&self.real)
    }

    /// A path as `ksail.yaml` will record it, without following symlinks.
    fn recorded(&self, path: &Path, flag: Option<&'static str>) -> Result<(), InitError> {
        if path.components().next() == Some(Component::Normal("~".as_ref())) {
            return Err(self.outside(
                path,
                flag,
                "starts with ~, which ksail.yaml reads as the home directory,".to_string(),
                "give a path inside it",
            ));
        }
        let location = lexical_normalise(&self.lexical.join(path));
        if self.contains(&location) {
            return Ok(());
        }
        let how = if path.is_absolute() {
            "is".to_string()
        } else {
            format!("resolves to {},", location.display())
        };
        Err(self.outside(path, flag, how, "give a path inside it"))
    }

    /// A path `init` writes at, with every symlink on it followed.
    fn reached(&self, path: &Path, flag: Option<&'static str>) -> Result<(), InitError> {
        let Some(location) = real_location(&self.lexical.join(path)) else {
            return Err(InitError::SymlinkLoop {
                origin: origin(flag),
                path: path.display().to_string(),
            });
        };
        if location.starts_with(&self.real) {
            return Ok(());
        }
        Err(self.outside(
            path,
            flag,
            format!("leads through a symlink to {},", location.display()),
            "replace the symlink, or choose another path",
        ))
    }

    fn outside(
        &self,
        path: &Path,
        flag: Option<&'static str>,
        how: String,
        fix: &'static str,
    ) -> InitError {
        InitError::Outside {
            origin: origin(flag),
            path: path.display().to_string(),
            how,
            project: self.lexical.display().to_string(),
            fix,
        }
    }
}

/// The error prefix naming the flag that chose a path; a default path speaks for itself.
fn origin(flag: Option<&'static str>) -> String {
    flag.map(|flag| format!("flag {flag}: "))
        .unwrap_or_default()
}

/// Where a write at `path` (absolute) lands: every symlink on the way followed, a dangling one
/// at the end too, and a `..` applied to where the symlink before it led, as the kernel does.
/// Components that do not exist yet are taken as written. `None` for a loop of symlinks.
fn real_location(path: &Path) -> Option<PathBuf> {
    let mut budget = MAX_SYMLINKS;
    follow(PathBuf::new(), path, &mut budget)
}

/// `path` resolved from `base` (a real location), spending one of `budget` per symlink.
fn follow(base: PathBuf, path: &Path, budget: &mut u32) -> Option<PathBuf> {
    let mut location = base;
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                location.pop();
            }
            Component::Normal(name) => {
                let next = location.join(name);
                // Not a symlink (or nothing there yet): read_link fails and the name stays.
                match std::fs::read_link(&next) {
                    Ok(target) => {
                        *budget = budget.checked_sub(1)?;
                        location = follow(location, &target, budget)?;
                    }
                    Err(_) => location = next,
                }
            }
            // The root (or a prefix) of an absolute path or symlink target starts over.
            other => location.push(other),
        }
    }
    Some(location)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn real_location_follows_symlinks_dangling_ones_and_dots_after_them() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("temp dir");
        let base = std::fs::canonicalize(dir.path()).expect("canonical temp dir");
        std::fs::create_dir_all(base.join("p/real/deep")).expect("mkdir");
        std::fs::create_dir_all(base.join("elsewhere")).expect("mkdir");
        symlink(base.join("elsewhere"), base.join("p/out")).expect("symlink");
        symlink("real/deep", base.join("p/in")).expect("symlink");
        symlink("../gone.yaml", base.join("p/dangling.yaml")).expect("symlink");
        symlink("loop", base.join("p/loop")).expect("symlink");
        let real = |rel: &str| real_location(&base.join(rel));
        assert_eq!(real("p/out/k.yaml"), Some(base.join("elsewhere/k.yaml")));
        assert_eq!(real("p/in/../x"), Some(base.join("p/real/x")));
        assert_eq!(real("p/dangling.yaml"), Some(base.join("gone.yaml")));
        assert_eq!(
            real("p/new/dir/k.yaml"),
            Some(base.join("p/new/dir/k.yaml"))
        );
        assert_eq!(real("p/loop/k.yaml"), None);
    }
}
