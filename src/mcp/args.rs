//! Tool arguments: parsed strictly, with errors that name the offending field.
//!
//! rmcp's own `Parameters` reports serde's message alone ("invalid type: string, expected
//! f64"), which does not say which argument was wrong. This wrapper has the same name (the
//! `#[tool]` macro finds the input schema by that name) and reports the path as well.

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::model::clip_quoted;

pub struct Parameters<T>(pub T);

impl<T: JsonSchema> JsonSchema for Parameters<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// What rmcp looks for at the start of an argument error to answer it as a tool error
/// (`isError: true`) instead of a protocol error; the handler takes it off again.
pub const RMCP_ARGUMENT_ERROR: &str = "failed to deserialize parameters: ";

impl<S, T: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<T> {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        parse(serde_json::Value::Object(arguments))
            .map(Parameters)
            .map_err(|m| ErrorData::invalid_params(format!("{RMCP_ARGUMENT_ERROR}{m}"), None))
    }
}

/// Deserialises arguments, naming the field at fault. Whatever the caller sent, the
/// message stays short: a long field name or value is quoted by its first characters.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("Invalid arguments: {}", e.inner())
        } else {
            format!("Invalid `{path}`: {}", e.inner())
        };
        clip_quoted(&message)
    })
}
