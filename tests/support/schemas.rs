//! The JSON schemas of the `--output json` documents (`schemas/<command>.schema.json`), and the
//! check every test environment runs on the documents its ksail runs printed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

/// `schemas/workload-push.schema.json` for `"workload push"`.
fn schema_path(command: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{}.schema.json", command.replace(' ', "-")))
}

/// Check one logged document (a line of JSON) against its command's schema; the problems in
/// words.
pub fn check_document(line: &str) -> Result<(), String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, jsonschema::Validator>>> = OnceLock::new();
    let document: Value =
        serde_json::from_str(line).map_err(|error| format!("not JSON: {error}"))?;
    let command = document["command"]
        .as_str()
        .ok_or("no command member")?
        .to_string();
    let mut validators = VALIDATORS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !validators.contains_key(&command) {
        let path = schema_path(&command);
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("no schema {} for {command:?}: {error}", path.display()))?;
        let schema: Value = serde_json::from_str(&text)
            .map_err(|error| format!("{} is not JSON: {error}", path.display()))?;
        let validator = jsonschema::validator_for(&schema)
            .map_err(|error| format!("{} is not a schema: {error}", path.display()))?;
        validators.insert(command.clone(), validator);
    }
    let problems: Vec<String> = validators[&command]
        .iter_errors(&document)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.join("; ")),
    }
}
