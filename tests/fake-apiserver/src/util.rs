//! Small helpers shared by the server and the simulators.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The current time as Kubernetes writes it: RFC 3339, whole seconds, UTC.
pub fn now_rfc3339() -> String {
    format_time(OffsetDateTime::now_utc())
}

/// `now` shifted by `seconds` (negative for the past), for fixtures with chosen timestamps.
pub fn rfc3339_offset(seconds: i64) -> String {
    format_time(OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

fn format_time(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// A string at a JSON pointer, if it is a string.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// `metadata.namespace` or empty.
pub fn namespace_of(v: &Value) -> &str {
    str_at(v, "/metadata/namespace").unwrap_or("")
}

/// `metadata.name` or empty.
pub fn name_of(v: &Value) -> &str {
    str_at(v, "/metadata/name").unwrap_or("")
}

/// Makes `v[key]` an object (replacing a non-object) and returns it.
pub fn obj_mut<'a>(v: &'a mut Value, key: &str) -> &'a mut serde_json::Map<String, Value> {
    if !v.is_object() {
        *v = json!({});
    }
    let Value::Object(map) = v else {
        unreachable!("just made an object")
    };
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    match entry {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// A `kind: Status` failure body.
pub fn status_body(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    })
}

/// The `reason` Kubernetes uses for an HTTP status.
pub fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        408 => "Timeout",
        409 => "Conflict",
        410 => "Expired",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}
