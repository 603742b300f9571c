//! Turning the text of one key's value into a typed, validated value (config.md#validation-rules).
//! The same function serves the file, environment variables and flags, so "the rule is the same"
//! whatever the source. Only the YAML type check is file-specific (it lives in `load`).

use std::time::Duration;

use super::keys::{Empty, KeySpec, NAME_MAX_LEN, Rule, ValueKind};
use crate::duration;

/// A typed value of one key.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Str(String),
    Bool(bool),
    /// The canonical spelling of an enum value.
    Enum(&'static str),
    Duration(Duration),
}

/// Why a value was rejected: `problem` says what is wrong, `fix` what to do. Kept apart so that
/// callers can add `(after expanding ${NAME})` between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub problem: String,
    pub fix: String,
}

impl Problem {
    pub fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Problem {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    /// Split a `"<problem>; <fix>"` message.
    pub fn from_message(message: &str) -> Self {
        match message.split_once("; ") {
            Some((problem, fix)) => Problem::new(problem, fix),
            None => Problem::new(message, "fix the value"),
        }
    }
}

/// The value as a message may show it: quoted, or withheld when the key may hold a secret.
fn shown(spec: &KeySpec, text: &str) -> String {
    if spec.secret {
        "value".to_string()
    } else {
        format!("value {text:?}")
    }
}

/// `"None, Flux or ArgoCD"`.
pub fn or_list(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [only] => (*only).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Parse text from any source. `Ok(None)` means "unset" (for example `""` for `tag`).
pub fn interpret(spec: &KeySpec, text: &str) -> Result<Option<Val>, Problem> {
    if text.is_empty() {
        match spec.empty {
            Empty::Unset => return Ok(None),
            Empty::Means(value) => return Ok(Some(Val::Enum(value))),
            Empty::Invalid => {}
        }
    }
    match spec.kind {
        ValueKind::Bool => parse_bool(text)
            .map(|b| Some(Val::Bool(b)))
            .ok_or_else(|| Problem::new(format!("invalid boolean {text:?}"), "use true or false")),
        ValueKind::Enum(values) => values
            .iter()
            .find(|value| value.eq_ignore_ascii_case(text))
            .map(|value| Some(Val::Enum(value)))
            .ok_or_else(|| {
                Problem::new(
                    format!("unknown value {text:?} (expected {})", or_list(values)),
                    "fix the value",
                )
            }),
        ValueKind::Duration => duration::parse(text)
            .map(|d| Some(Val::Duration(d)))
            .map_err(|error| Problem::from_message(&error.to_string())),
        ValueKind::String => apply_rule(spec, text),
    }
}

/// `true`/`false`/`1`/`0`, case-insensitive (config.md#environment-overrides).
pub fn parse_bool(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") || text == "1" {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") || text == "0" {
        Some(false)
    } else {
        None
    }
}

fn apply_rule(spec: &KeySpec, text: &str) -> Result<Option<Val>, Problem> {
    let valid = |text: &str| Ok(Some(Val::Str(text.to_string())));
    match spec.rule {
        Rule::None => valid(text),
        Rule::NonEmpty if text.is_empty() => Err(Problem::new(
            "empty value",
            "set a directory such as k8s, or remove the key",
        )),
        Rule::NonEmpty => valid(text),
        Rule::MetadataName if is_metadata_name(text) => valid(text),
        Rule::MetadataName => Err(Problem::new(
            format!(
                "invalid metadata.name {text:?} (a DNS-1123 label: lowercase letters, digits and '-', starting with a letter, not ending with '-', at most {NAME_MAX_LEN} characters)"
            ),
            "choose a name such as my-cluster",
        )),
        Rule::EnvVarName if is_env_var_name(text) => valid(text),
        Rule::EnvVarName => Err(Problem::new(
            format!(
                "invalid environment variable name in {} (it must match [A-Za-z_][A-Za-z0-9_]*)",
                shown(spec, text)
            ),
            "give the name of the variable that holds the token, such as GHCR_TOKEN",
        )),
        Rule::Tag if is_tag(text) => valid(text),
        Rule::Tag => Err(Problem::new(
            format!(
                "invalid tag {text:?} (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-')"
            ),
            "use a tag such as v1 or dev",
        )),
        Rule::MirrorRegistries => match crate::cluster::mirrors::parse(text) {
            Ok(_) => valid(text),
            Err(problem) => Err(Problem::new(
                problem,
                "list registry hosts such as docker.io,ghcr.io (or host=https://upstream), or write none",
            )),
        },
        Rule::KustomizationFile => {
            normalise_kustomization_file(text).map(|normalised| normalised.map(Val::Str))
        }
        Rule::OperatorVersion => match text.strip_prefix('v').unwrap_or(text) {
            version if is_version(version) => valid(version),
            _ => Err(Problem::new(
                format!("invalid version {text:?} (expected X.Y.Z, optionally with a leading v)"),
                "use a flux-operator release version such as 0.58.1",
            )),
        },
    }
}

/// `^[a-z]([a-z0-9-]*[a-z0-9])?$`, at most 63 characters.
pub fn is_metadata_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= NAME_MAX_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.last() != Some(&b'-')
}

/// `^[A-Za-z_][A-Za-z0-9_]*$`.
pub fn is_env_var_name(text: &str) -> bool {
    super::expand::is_var_name(text)
}

/// `^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`.
pub fn is_tag(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$` (after the optional `v` is dropped).
fn is_version(text: &str) -> bool {
    let (core, pre_release) = match text.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (text, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre_release.is_none_or(|pre| {
            !pre.is_empty()
                && pre
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        })
}

/// Relative; no `..` component; no drive letter; a leading `./` and a trailing `/` are removed;
/// empty after that means unset.
pub fn normalise_kustomization_file(text: &str) -> Result<Option<String>, Problem> {
    let bytes = text.as_bytes();
    let fix = "give a directory relative to the source directory, such as overlays/dev";
    if text.starts_with(['/', '\\']) {
        return Err(Problem::new(format!("{text:?} is an absolute path"), fix));
    }
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err(Problem::new(
            format!("{text:?} starts with a drive letter"),
            fix,
        ));
    }
    if text.split(['/', '\\']).any(|component| component == "..") {
        return Err(Problem::new(format!("{text:?} has a '..' component"), fix));
    }
    let mut normalised = text;
    while let Some(rest) = normalised.strip_prefix("./") {
        normalised = rest;
    }
    let normalised = normalised.trim_end_matches('/');
    Ok((!normalised.is_empty() && normalised != ".").then(|| normalised.to_string()))
}
