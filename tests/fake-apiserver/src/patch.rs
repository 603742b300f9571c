//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

use serde_json::{Map, Value};

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (k, v) in patch_map {
        if v.is_null() {
            target_map.remove(k);
        } else {
            merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// RFC 6902 over a copy of `doc`; the document is unchanged on error.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    let mut out = doc.clone();
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation without \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("{name} {path}: missing \"value\""))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or(format!("{name} {path}: missing \"from\""))
        };
        match name {
            "add" => add(&mut out, path, value()?)?,
            "remove" => {
                remove(&mut out, path)?;
            }
            "replace" => {
                remove(&mut out, path)?;
                add(&mut out, path, value()?)?;
            }
            "test" => {
                let actual = out
                    .pointer(path)
                    .ok_or(format!("test {path}: path does not exist"))?;
                if *actual != value()? {
                    return Err(format!("test {path}: value differs"));
                }
            }
            "move" => {
                let v = remove(&mut out, from()?)?;
                add(&mut out, path, v)?;
            }
            "copy" => {
                let from = from()?;
                let v = out
                    .pointer(from)
                    .cloned()
                    .ok_or(format!("copy: {from} does not exist"))?;
                add(&mut out, path, v)?;
            }
            other => return Err(format!("unknown operation {other:?}")),
        }
    }
    Ok(out)
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Splits `/a/b/c` into the parent pointer `/a/b` and the last token `c`.
fn split_parent(path: &str) -> Result<(&str, String), String> {
    if path.is_empty() {
        return Err("the root cannot be the target of this operation".into());
    }
    let idx = path.rfind('/').ok_or(format!("invalid pointer {path:?}"))?;
    Ok((&path[..idx], unescape(&path[idx + 1..])))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_parent(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(arr)) => {
            let idx = if last == "-" {
                arr.len()
            } else {
                parse_index(&last, arr.len() + 1)?
            };
            arr.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("add {path}: parent does not exist")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_parent(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map
            .remove(&last)
            .ok_or(format!("{path}: path does not exist")),
        Some(Value::Array(arr)) => {
            let idx = parse_index(&last, arr.len())?;
            Ok(arr.remove(idx))
        }
        _ => Err(format!("{path}: path does not exist")),
    }
}

fn parse_index(token: &str, bound: usize) -> Result<usize, String> {
    match token.parse::<usize>() {
        Ok(i) if i < bound => Ok(i),
        _ => Err(format!("array index {token:?} out of range")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut t, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }

    #[test]
    fn json_ops() {
        let doc = json!({"spec": {"list": [1, 2]}, "k": "v"});
        let out = json_patch(
            &doc,
            &json!([
                {"op": "add", "path": "/spec/insecure", "value": true},
                {"op": "add", "path": "/spec/list/-", "value": 3},
                {"op": "replace", "path": "/k", "value": "w"},
                {"op": "test", "path": "/k", "value": "w"},
                {"op": "remove", "path": "/spec/list/0"},
                {"op": "add", "path": "/a~1b", "value": 1}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"insecure": true, "list": [2, 3]}, "k": "w", "a/b": 1})
        );
        assert!(json_patch(&doc, &json!([{"op": "test", "path": "/k", "value": "x"}])).is_err());
        assert!(json_patch(&doc, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(
            json_patch(
                &doc,
                &json!([{"op": "replace", "path": "/nope", "value": 1}])
            )
            .is_err()
        );
    }
}
