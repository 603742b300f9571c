//! Label and field selectors, as list and watch filters.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` plus `fieldSelector`; empty matches everything.
#[derive(Clone, Debug, Default)]
pub struct Selector {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

impl Selector {
    pub fn parse(label: Option<&str>, field: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            labels: parse_requirements(label.unwrap_or(""), true)?,
            fields: parse_requirements(field.unwrap_or(""), false)?,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |k: &str| {
            labels
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let field = |k: &str| field_value(obj, k);
        self.labels.iter().all(|r| eval(r, &label)) && self.fields.iter().all(|r| eval(r, &field))
    }
}

fn eval(req: &Req, get: &dyn Fn(&str) -> Option<String>) -> bool {
    match req {
        Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
        Req::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.contains(&x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.contains(&x)),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    }
}

/// A field selector key is a dotted path (`metadata.name`, `type`, `involvedObject.kind`).
/// A missing field compares as the empty string, as the real server does for the fields it knows.
fn field_value(obj: &Value, key: &str) -> Option<String> {
    let mut cur = obj;
    for part in key.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return Some(String::new()),
        }
    }
    Some(match cur {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn parse_requirements(s: &str, allow_sets: bool) -> Result<Vec<Req>, String> {
    let mut reqs = Vec::new();
    for part in split_top(s) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if let Some((k, v)) = part.split_once("!=") {
            reqs.push(Req::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = part.split_once("==") {
            reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = part.split_once('=') {
            reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if allow_sets && let Some(set) = parse_set(part, " notin ") {
            reqs.push(Req::NotIn(set.0, set.1));
        } else if allow_sets && let Some(set) = parse_set(part, " in ") {
            reqs.push(Req::In(set.0, set.1));
        } else if allow_sets && let Some(k) = part.strip_prefix('!') {
            reqs.push(Req::NotExists(k.trim().into()));
        } else if allow_sets && !part.contains([' ', '(', ')']) {
            reqs.push(Req::Exists(part.into()));
        } else {
            return Err(format!("unable to parse requirement: {part:?}"));
        }
    }
    Ok(reqs)
}

fn parse_set(part: &str, op: &str) -> Option<(String, Vec<String>)> {
    let (k, rest) = part.split_once(op)?;
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some((
        k.trim().to_string(),
        inner.split(',').map(|v| v.trim().to_string()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj() -> Value {
        json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "fe"}}, "type": "Warning"})
    }

    #[test]
    fn labels() {
        let ok = |l: &str| Selector::parse(Some(l), None).unwrap().matches(&obj());
        assert!(ok("app=web"));
        assert!(ok("app==web,tier"));
        assert!(!ok("app!=web"));
        assert!(ok("missing!=x"));
        assert!(ok("!missing"));
        assert!(!ok("!app"));
        assert!(ok("app in (web, db)"));
        assert!(!ok("app notin (web)"));
        assert!(ok(""));
    }

    #[test]
    fn fields() {
        let ok = |f: &str| Selector::parse(None, Some(f)).unwrap().matches(&obj());
        assert!(ok("metadata.name=a,metadata.namespace=ns"));
        assert!(ok("type=Warning"));
        assert!(!ok("type!=Warning"));
        assert!(!ok("metadata.name=b"));
    }
}
