//! Object fixtures shared by the readiness tables of both engines (tests only).

use serde_json::Value;

/// The digest the fixtures' objects serve, as hex.
pub const HEX: &str = "1a2b3c4d5e6f00112233445566778899aabbccddeeff00112233445566778899";

/// `sha256:<HEX>`.
pub fn digest() -> String {
    format!("sha256:{HEX}")
}

/// `object` with `change` applied: one table row's variation of a complete fixture.
pub fn edit(mut object: Value, change: impl FnOnce(&mut Value)) -> Value {
    change(&mut object);
    object
}

/// Removes `field` from the object at JSON pointer `parent`, if there is one.
pub fn remove(object: &mut Value, parent: &str, field: &str) {
    if let Some(Value::Object(map)) = object.pointer_mut(parent) {
        map.remove(field);
    }
}
