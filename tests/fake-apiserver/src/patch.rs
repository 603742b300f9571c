//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902), as the API server applies them: the
//! `json-patch` crate (what kube-rs uses), behind the two calls the fake server makes.

use serde_json::Value;

/// RFC 7386: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// RFC 6902 over a copy of `doc`; the document is unchanged on error.
pub fn json_patch(doc: &Value, ops: &Value) -> Result<Value, String> {
    let ops: json_patch::Patch =
        serde_json::from_value(ops.clone()).map_err(|e| format!("not a JSON patch: {e}"))?;
    let mut out = doc.clone();
    json_patch::patch(&mut out, &ops).map_err(|e| e.to_string())?;
    Ok(out)
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
