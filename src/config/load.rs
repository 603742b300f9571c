//! Reading one `ksail.yaml`: envelope checks, YAML type checks with file:line:column, `${VAR}`
//! expansion of the listed keys, value validation, and the warnings for ignored (ksail (Go)) and
//! unknown keys (config.md#keys-that-load-but-are-not-used, #unknown-keys).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::expand::expand;
use super::go_keys::is_go_key;
use super::keys::{API_VERSION, KIND, Key, KeySpec, ValueKind, is_container};
use super::value::{Problem, Val, interpret, or_list};
use super::{ConfigError, display_path};
use crate::yaml::{CoreValue, Limit, Node, Pos, Value, parse_each_document};

/// A validated value read from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileValue {
    pub value: Val,
    /// Position of the value node.
    pub pos: Pos,
    /// Variables the value referenced (empty when not expanded).
    pub expanded_from: Vec<String>,
}

/// `spec.cluster.provider`, which ksail does not use but the cluster commands check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderSetting {
    pub pos: Pos,
    /// The scalar text; `None` for a null or a non-scalar value.
    pub value: Option<String>,
}

/// One loaded `ksail.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedFile {
    /// The path as passed to `load`.
    pub path: PathBuf,
    /// The path as the user recognises it; the prefix of every message about the file.
    pub display: String,
    /// The directory that holds the file: file values with relative paths resolve against it.
    pub dir: PathBuf,
    pub values: BTreeMap<Key, FileValue>,
    /// Warning lines without the `warning: ` prefix, in a stable order.
    pub warnings: Vec<String>,
    /// Position of a non-null `spec.workload.flux.verify` (an error for the cluster commands).
    pub flux_verify: Option<Pos>,
    pub provider: Option<ProviderSetting>,
}

impl LoadedFile {
    pub fn get(&self, key: Key) -> Option<&FileValue> {
        self.values.get(&key)
    }
}

/// Read and validate the file at `path`; messages name it as passed.
#[cfg(test)]
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<LoadedFile, ConfigError> {
    load_as(path, path.display().to_string(), env)
}

/// Like [`load`], but messages name the file relative to `cwd` (`ksail.yaml`, `../ksail.yaml`).
pub fn load_in(
    path: &Path,
    cwd: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedFile, ConfigError> {
    load_as(path, display_path(path, cwd), env)
}

fn load_as(
    path: &Path,
    display: String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedFile, ConfigError> {
    let source = std::fs::read_to_string(path).map_err(|error| ConfigError::File {
        file: display.clone(),
        problem: format!("cannot read the file ({error})"),
        fix: "check that it exists, is readable and is UTF-8 text".to_string(),
    })?;
    let mut loaded = parse_source(&source, &display, env)?;
    loaded.path = path.to_path_buf();
    loaded.dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(loaded)
}

/// Validate file contents (pure). `display` names the file in messages. `path` and `dir` of the
/// result are empty; [`load`] fills them in.
pub fn parse_source(
    source: &str,
    display: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedFile, ConfigError> {
    let file_error = |problem: String, fix: &str| ConfigError::File {
        file: display.to_string(),
        problem,
        fix: fix.to_string(),
    };
    // Only the first document is kept; the others are only counted for the message.
    let (mut first, mut count) = (None, 0);
    parse_each_document(source, |document| {
        count += 1;
        first.get_or_insert(document);
    })
    .map_err(|error| ConfigError::Syntax {
        file: display.to_string(),
        pos: error.pos,
        fix: error.limit.map_or("fix the YAML syntax", Limit::fix),
        message: syntax_message(error.message),
    })?;
    if count > 1 {
        return Err(file_error(
            format!("found {count} YAML documents, expected one"),
            "keep a single document (remove the extra '---' separators)",
        ));
    }
    let Some(root) = first.as_ref().filter(|root| !root.is_null()) else {
        return Err(file_error(
            "file is empty".to_string(),
            "it needs at least apiVersion and kind",
        ));
    };
    if root.as_mapping().is_none() {
        return Err(ConfigError::Value {
            origin: format!("{display}:{}", root.pos),
            problem: format!(
                "expected a mapping at the top level, found {}",
                root.describe()
            ),
            note: String::new(),
            fix: format!("start the file with apiVersion: {API_VERSION} and kind: {KIND}"),
        });
    }
    let mut walker = Walker {
        display,
        env,
        loaded: LoadedFile {
            path: PathBuf::new(),
            display: display.to_string(),
            dir: PathBuf::new(),
            values: BTreeMap::new(),
            warnings: Vec::new(),
            flux_verify: None,
            provider: None,
        },
        ignored: Vec::new(),
    };
    walker.check_envelope(root, "apiVersion", API_VERSION)?;
    walker.check_envelope(root, "kind", KIND)?;
    walker.walk(root, "")?;
    let mut ignored = std::mem::take(&mut walker.ignored);
    ignored.sort();
    ignored.dedup();
    let mut loaded = walker.loaded;
    if !ignored.is_empty() {
        loaded.warnings.push(format!(
            "{display}: ignoring keys that ksail does not support: {}",
            ignored.join(", ")
        ));
    }
    Ok(loaded)
}

struct Walker<'a> {
    display: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    loaded: LoadedFile,
    ignored: Vec<String>,
}

impl Walker<'_> {
    fn value_error(&self, pos: Pos, path: &str, problem: Problem, note: String) -> ConfigError {
        ConfigError::Value {
            origin: format!("{}:{pos}: {path}", self.display),
            problem: problem.problem,
            note,
            fix: problem.fix,
        }
    }

    fn check_envelope(&self, root: &Node, key: &str, expected: &str) -> Result<(), ConfigError> {
        let Some(node) = root.get(key) else {
            return Err(ConfigError::File {
                file: self.display.to_string(),
                problem: format!("missing {key}"),
                fix: format!("add \"{key}: {expected}\""),
            });
        };
        match node.as_str() {
            Some(text) if text == expected => Ok(()),
            _ => {
                let found = match node.as_str() {
                    Some(text) => format!("{text:?}"),
                    None => node.describe(),
                };
                Err(self.value_error(
                    node.pos,
                    key,
                    Problem::new(
                        format!("unsupported value {found} (expected {expected})"),
                        format!("set {key}: {expected}"),
                    ),
                    String::new(),
                ))
            }
        }
    }

    fn walk(&mut self, mapping: &Node, prefix: &str) -> Result<(), ConfigError> {
        for (key_node, value) in mapping.as_mapping().unwrap_or_default() {
            let name = key_node.as_str().unwrap_or("~");
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            };
            if prefix.is_empty() && (name == "apiVersion" || name == "kind") {
                continue; // checked by check_envelope
            }
            if let Some(key) = Key::from_path(&path) {
                self.read_value(key.spec(), value)?;
            } else if is_container(&path) {
                match &value.value {
                    Value::Null => {}
                    Value::Mapping(_) => self.walk(value, &path)?,
                    _ => {
                        let problem = Problem::new(
                            format!("expected a mapping, found {}", value.describe()),
                            "indent the keys below it, or remove it",
                        );
                        return Err(self.value_error(value.pos, &path, problem, String::new()));
                    }
                }
            } else if is_go_key(&path) {
                self.note_ignored(&path, value);
            } else {
                self.loaded.warnings.push(format!(
                    "{}:{}: unknown key {path} (ignored)",
                    self.display, key_node.pos
                ));
            }
        }
        Ok(())
    }

    fn note_ignored(&mut self, path: &str, value: &Node) {
        match path {
            "spec.workload.flux.verify" if !value.is_null() => {
                self.loaded.flux_verify = Some(value.pos);
            }
            "spec.cluster.provider" => {
                self.loaded.provider = Some(ProviderSetting {
                    pos: value.pos,
                    value: value.as_str().map(str::to_string),
                });
            }
            _ => {}
        }
        self.ignored.push(path.to_string());
    }

    fn read_value(&mut self, spec: &KeySpec, node: &Node) -> Result<(), ConfigError> {
        let text = match self.scalar_text(spec, node)? {
            Some(text) => text,
            None => return Ok(()), // null: unset
        };
        let (text, expanded_from) = if spec.expanded {
            self.expand_value(spec, node.pos, &text)?
        } else {
            (text, Vec::new())
        };
        let note = expansion_note(&expanded_from);
        match interpret(spec, &text) {
            Ok(Some(value)) => {
                self.loaded.values.insert(
                    spec.key,
                    FileValue {
                        value,
                        pos: node.pos,
                        expanded_from,
                    },
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(problem) => Err(self.value_error(node.pos, spec.path, problem, note)),
        }
    }

    /// The YAML type check: the value's text, or `None` for null.
    fn scalar_text(&self, spec: &KeySpec, node: &Node) -> Result<Option<String>, ConfigError> {
        let scalar = match &node.value {
            Value::Null => return Ok(None),
            Value::Scalar(scalar) => Some(scalar),
            _ => None,
        };
        let core = scalar.map(|scalar| scalar.core_value());
        let text = match (spec.kind, &core) {
            (ValueKind::Bool, Some(CoreValue::Bool(b))) => Some(b.to_string()),
            (ValueKind::Bool, _) => None,
            (_, Some(CoreValue::Str(text))) => Some(text.to_string()),
            // `timeout: 300` gets the duration parser's "has no unit" message.
            (ValueKind::Duration, Some(CoreValue::Int(_) | CoreValue::Float)) => {
                scalar.map(|scalar| scalar.text.clone())
            }
            _ => None,
        };
        if text.is_some() {
            return Ok(text);
        }
        // A registry value may hold a password: name only its type.
        let found = match (&core, spec.secret) {
            (Some(CoreValue::Bool(_)), true) => "a boolean".to_string(),
            (Some(CoreValue::Int(_)), true) => "an integer".to_string(),
            (Some(CoreValue::Float), true) => "a number".to_string(),
            (Some(CoreValue::Str(_)), true) => "a string".to_string(),
            _ => node.describe(),
        };
        let problem = match spec.kind {
            ValueKind::Bool => Problem::new(
                format!("expected a boolean, found {found}"),
                "use true or false",
            ),
            ValueKind::Enum(values) => Problem::new(
                format!("expected a string, found {found}"),
                format!("use one of {}", or_list(values)),
            ),
            ValueKind::String | ValueKind::Duration => Problem::new(
                format!("expected a string, found {found}"),
                "quote the value",
            ),
        };
        Err(self.value_error(node.pos, spec.path, problem, String::new()))
    }

    fn expand_value(
        &mut self,
        spec: &KeySpec,
        pos: Pos,
        text: &str,
    ) -> Result<(String, Vec<String>), ConfigError> {
        let expansion = expand(text, self.env).map_err(|error| {
            let (problem, fix) = error.parts();
            self.value_error(pos, spec.path, Problem::new(problem, fix), String::new())
        })?;
        for name in &expansion.unset {
            self.loaded.warnings.push(format!(
                "{}:{pos}: environment variable {name} is not set; using an empty value",
                self.display
            ));
        }
        Ok((expansion.text, expansion.referenced))
    }
}

/// ` (after expanding ${A}, ${B})`, or empty when nothing was expanded.
pub fn expansion_note(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let list: Vec<String> = names.iter().map(|name| format!("${{{name}}}")).collect();
    format!(" (after expanding {})", list.join(", "))
}

/// The parser's wording for the most common YAML mistake (`a: b: c`), in the familiar libyaml form
/// that config.md quotes.
fn syntax_message(message: String) -> String {
    match message.as_str() {
        "mapping values are not allowed in this context" => {
            "mapping values are not allowed here".to_string()
        }
        _ => message,
    }
}
