//! The docs agree with the code: docs/tools.md describes every tool, parameter and `health`
//! field the server publishes, and what `health` says about libsql is what Cargo.lock
//! builds.

mod common;

use common::{Scratch, Server};
use serde_json::{Value, json};

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

/// Every property name in a JSON schema, following `$ref`s into `$defs`.
fn property_names(schema: &Value, root: &Value, out: &mut std::collections::BTreeSet<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/$defs/");
        property_names(&root["$defs"][name], root, out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in schema[key].as_array().into_iter().flatten() {
            property_names(branch, root, out);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, sub) in properties {
            out.insert(name.clone());
            property_names(sub, root, out);
        }
    }
    if schema.get("items").is_some() {
        property_names(&schema["items"], root, out);
    }
}

#[test]
fn tools_doc_lists_every_health_field() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/tools.md")).unwrap();
    let heading = "### `health`";
    let section = &doc[doc.find(heading).unwrap() + heading.len()..];
    let section = &section[..section.find("\n### ").unwrap_or(section.len())];
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let listed = server.request("tools/list", json!({}));
    let health = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "health")
        .unwrap();
    let schema = &health["outputSchema"];
    let mut names = std::collections::BTreeSet::new();
    property_names(schema, schema, &mut names);
    for field in ["sync", "queue", "queued_writes", "last_success_at"] {
        assert!(names.contains(field), "health publishes {field}: {names:?}");
    }
    for name in &names {
        assert!(
            section.contains(&format!("`{name}`")),
            "docs/tools.md: health does not describe `{name}`"
        );
    }
}

#[test]
fn health_reports_the_libsql_of_cargo_lock() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let entry = lock
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"libsql\"\n"))
        .expect("libsql in Cargo.lock");
    let version = entry
        .lines()
        .find_map(|l| l.strip_prefix("version = "))
        .unwrap()
        .trim_matches('"');
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let health = server.ok("health", json!({}));
    assert_eq!(health["libsql_crate_version"], version, "{health}");
}
