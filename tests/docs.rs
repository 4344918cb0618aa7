//! docs/tools.md describes every tool and every parameter the server publishes.

mod common;

use common::{Scratch, Server};
use serde_json::json;

#[test]
fn tools_doc_covers_every_published_tool_and_parameter() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tools.md")).unwrap();
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_TOOL_PROFILE", "extended")]);
    let listed = server.request("tools/list", json!({}));
    for tool in listed["result"]["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        let heading = format!("### `{name}`");
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/tools.md has no section for {name}"));
        let section = &doc[start + heading.len()..];
        let section = &section[..section.find("\n### ").unwrap_or(section.len())];
        for param in tool["inputSchema"]["properties"]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(
                section.contains(&format!("`{param}`")),
                "docs/tools.md: {name} does not describe `{param}`"
            );
        }
    }
}
