//! Published schemas every client loads without a warning. schemars writes two things strict
//! validators (MCP Inspector's ajv) complain about: numeric `format`s of its own (`uint32`,
//! `uint64`, `double`, ...) and nullable fields as a list of types (`["string", "null"]`).
//! The formats go (the range says the same); a nullable input loses `null` (an absent
//! argument means the same), and a nullable output becomes an `anyOf`.

use serde_json::{Map, Value};

/// Formats that describe a Rust number type rather than a JSON value.
const NUMBER_FORMATS: [&str; 12] = [
    "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
    "float", "double",
];

/// Whether a schema describes what a client sends (`Input`) or what the server answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Input,
    Output,
}

/// Rewrites a schema in place, at every depth. Descriptions (from doc comments, which
/// break lines mid-sentence) become one line each.
pub fn make_portable(schema: &mut Map<String, Value>, side: Side) {
    if let Some(Value::String(description)) = schema.get_mut("description") {
        *description = description.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| NUMBER_FORMATS.contains(&f))
    {
        schema.remove("format");
    }
    if let Some(Value::Array(types)) = schema.get("type").cloned() {
        let concrete: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        let nullable = concrete.len() < types.len();
        match (side, nullable, concrete.len()) {
            (Side::Input, _, 1) | (Side::Output, false, 1) => {
                schema.insert("type".into(), concrete[0].clone());
            }
            (Side::Output, true, _) => {
                schema.remove("type");
                let mut options: Vec<Value> = concrete
                    .into_iter()
                    .map(|t| serde_json::json!({ "type": t }))
                    .collect();
                options.push(serde_json::json!({ "type": "null" }));
                schema.insert("anyOf".into(), Value::Array(options));
            }
            _ => {
                schema.remove("type");
                let options = concrete
                    .into_iter()
                    .map(|t| serde_json::json!({ "type": t }))
                    .collect();
                schema.insert("anyOf".into(), Value::Array(options));
            }
        }
    }
    if side == Side::Input {
        // `Option<Enum>` comes out as `anyOf: [{$ref}, {type: null}]`.
        let null_branch = |v: &Value| v.get("type").is_some_and(|t| t == "null");
        if let Some(Value::Array(options)) = schema.get("anyOf")
            && options.len() == 2
            && options.iter().any(null_branch)
        {
            let kept = options.iter().find(|v| !null_branch(v)).cloned();
            if let Some(Value::Object(kept)) = kept {
                schema.remove("anyOf");
                for (k, v) in kept {
                    schema.entry(k).or_insert(v);
                }
            }
        }
    }
    for value in schema.values_mut() {
        walk(value, side);
    }
}

fn walk(value: &mut Value, side: Side) {
    match value {
        Value::Object(map) => make_portable(map, side),
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, side)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_and_type_lists_go() {
        let mut s = json!({"type": "object", "properties": {
            "a": {"type": ["integer", "null"], "format": "uint32", "minimum": 0},
            "b": {"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}], "description": "one\ntwo"}
        }});
        make_portable(s.as_object_mut().unwrap(), Side::Input);
        assert_eq!(
            s["properties"]["a"],
            json!({"type": "integer", "minimum": 0})
        );
        assert_eq!(
            s["properties"]["b"],
            json!({"$ref": "#/$defs/X", "description": "one two"})
        );
        let mut o = json!({"type": ["string", "null"], "format": "uint64"});
        make_portable(o.as_object_mut().unwrap(), Side::Output);
        assert_eq!(o, json!({"anyOf": [{"type": "string"}, {"type": "null"}]}));
    }
}
