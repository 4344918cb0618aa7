//! Every paged tool, followed from offset 0 through `next_offset` to the end, visits every
//! item exactly once; `get_memory` pages long contents and many relationships; misspelt
//! words are corrected only to near neighbours; a duplicate store honours `supersedes`.

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{Scratch, Server, store};
use serde_json::{Value, json};

/// Follows `next_offset` from 0 and returns each page's items, by `key`.
fn follow(
    server: &mut Server,
    tool: &str,
    mut args: Value,
    list: &str,
    key: impl Fn(&Value) -> String,
) -> (Vec<String>, u64) {
    let mut seen = Vec::new();
    let mut total = None;
    for _ in 0..500 {
        let page = server.ok(tool, args.clone());
        let this_total = page["total"].as_u64().unwrap();
        assert_eq!(
            *total.get_or_insert(this_total),
            this_total,
            "{tool}: total moved"
        );
        let items = page[list].as_array().unwrap();
        for item in items {
            seen.push(key(item));
        }
        match page["next_offset"].as_u64() {
            Some(next) => {
                assert!(
                    !items.is_empty(),
                    "{tool}: an empty page that goes on: {page}"
                );
                assert_eq!(page["has_more"], true);
                args["offset"] = json!(next);
            }
            None => {
                assert_eq!(page["has_more"], false);
                return (seen, total.unwrap());
            }
        }
    }
    panic!("{tool}: paging never ended");
}

fn assert_each_once(tool: &str, seen: &[String], total: u64) {
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "{tool}: an item came twice: {seen:?}"
    );
    assert_eq!(seen.len() as u64, total, "{tool}: items seen vs total");
}

#[test]
fn following_next_offset_visits_every_item_once() {
    let scratch = Scratch::new();
    // A small answer limit, so that pages are also cut by size, not only by `limit`.
    let mut server = Server::started(
        &scratch.db(),
        &[
            ("MEMORY_MAX_RESPONSE_CHARS", "3000"),
            ("MEMORY_TOOL_PROFILE", "full"),
        ],
    );
    let hub = store(
        &mut server,
        "project",
        "Paging hub",
        "the hub of the paging test",
        json!({}),
    );
    let mut ids = Vec::new();
    for i in 0..37 {
        let kind = if i % 3 == 0 { "problem" } else { "solution" };
        let tags: Vec<String> = (0..6).map(|t| format!("pagingtag{t}-{i}")).collect();
        ids.push(store(
            &mut server,
            kind,
            &format!("Paging memory {i}"),
            &format!(
                "paging content number {i} {}",
                "filler words ".repeat(i % 7)
            ),
            json!({"tags": tags, "importance": (i % 10) as f64 / 10.0}),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        let (from, to) = if i % 2 == 0 { (&hub, id) } else { (id, &hub) };
        server.ok(
            "create_relationship",
            json!({"from_memory_id": from, "to_memory_id": to, "relationship_type": "RELATED_TO",
                   "strength": ((i % 5) as f64) / 5.0,
                   "context": format!("holds only when the cache is cold, case {i}")}),
        );
    }
    let id_of = |v: &Value| v["id"].as_str().unwrap().to_string();

    let (seen, total) = follow(
        &mut server,
        "search_memories",
        json!({"query": "paging", "limit": 7}),
        "results",
        id_of,
    );
    assert_each_once("search_memories", &seen, total);
    assert_eq!(total, 38);

    let (seen, total) = follow(
        &mut server,
        "recall_memories",
        json!({"query": "paging content", "limit": 6}),
        "results",
        id_of,
    );
    assert_each_once("recall_memories", &seen, total);
    assert_eq!(total, 38);

    // Neighbours are their own list, of the asked types, never in the results.
    let page = server.ok(
        "recall_memories",
        json!({"query": "hub", "memory_types": ["project"], "limit": 5}),
    );
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert!(
        page.get("neighbours").is_none(),
        "no neighbour is a project: {page}"
    );
    let page = server.ok("recall_memories", json!({"query": "hub", "limit": 5}));
    assert_eq!(page["total"], 1);
    let neighbours = page["neighbours"].as_array().unwrap();
    assert_eq!(neighbours.len(), 1, "{page}");
    assert_eq!(neighbours[0]["related_to"]["memory_id"], hub.as_str());
    assert!(page["next_offset"].is_null());

    let (seen, total) = follow(
        &mut server,
        "contextual_search",
        json!({"memory_id": hub, "query": "paging", "limit": 5, "max_depth": 1}),
        "results",
        id_of,
    );
    assert_each_once("contextual_search", &seen, total);
    assert_eq!(total, 37);

    let (seen, total) = follow(
        &mut server,
        "get_related_memories",
        json!({"memory_id": hub, "limit": 6, "max_depth": 2}),
        "related",
        |v| v["memory"]["id"].as_str().unwrap().to_string(),
    );
    assert_each_once("get_related_memories", &seen, total);
    assert_eq!(
        seen.iter().cloned().collect::<BTreeSet<_>>(),
        ids.iter().cloned().collect::<BTreeSet<_>>()
    );

    let (seen, total) = follow(
        &mut server,
        "search_relationships_by_context",
        json!({"conditions": ["cache"], "limit": 4}),
        "relationships",
        |v| v["id"].as_str().unwrap().to_string(),
    );
    assert_each_once("search_relationships_by_context", &seen, total);
    assert_eq!(total, 37);

    // Recent activity: two lists on one offset, each seen once.
    let mut args = json!({"days": 1});
    let (mut recent, mut unresolved) = (Vec::new(), Vec::new());
    let first = server.ok("get_recent_activity", args.clone());
    loop {
        let page = server.ok("get_recent_activity", args.clone());
        for m in page["recent_memories"].as_array().unwrap() {
            recent.push(id_of(m));
        }
        for m in page["unresolved_problems"].as_array().unwrap() {
            unresolved.push(id_of(m));
        }
        match page["next_offset"].as_u64() {
            Some(next) => args["offset"] = json!(next),
            None => break,
        }
    }
    assert_each_once(
        "get_recent_activity (recent)",
        &recent,
        first["total_count"].as_u64().unwrap(),
    );
    assert_each_once(
        "get_recent_activity (unresolved)",
        &unresolved,
        first["unresolved_total"].as_u64().unwrap(),
    );

    // get_memory pages relationships apart from the content, and always moves on.
    let mut offset = 0;
    let mut links = Vec::new();
    loop {
        let out = server.ok(
            "get_memory",
            json!({"memory_id": hub, "relationships_offset": offset}),
        );
        assert_eq!(out["relationships_total"], 37);
        for r in out["relationships"].as_array().unwrap() {
            links.push(r["id"].as_str().unwrap().to_string());
        }
        match out["relationships_next_offset"].as_u64() {
            Some(next) => {
                assert!(next > offset, "relationships page did not move on");
                offset = next;
            }
            None => break,
        }
    }
    assert_each_once("get_memory relationships", &links, 37);
    assert!(server.stop().success());
}

/// How many calls docs/tools.md promises a 50,000-character memory reads back in at the
/// default limit, by how its content is written in JSON: prose in any script, with at most
/// one character in ten that JSON escapes (`"`, `\`, a newline, a tab), in 4; a content
/// made only of such characters in 7; one made only of other control characters (six
/// characters each in JSON) in 20. With many relationships, listed in the first answer.
const READ_BACK: [(&str, usize); 9] = [
    ("a", 4),
    ("é", 4),
    ("中", 4),
    ("😀", 4),
    ("word word\n", 4),
    ("{\"k\": 12}\n", 7),
    ("\tif x {\n", 7),
    ("\"\t\n\\", 7),
    ("\u{1}", 20),
];

#[test]
fn a_long_content_reads_back_in_the_documented_number_of_calls() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let mut counted = Vec::new();
    for (unit, most) in READ_BACK {
        let content: String = unit
            .repeat(50_000 / unit.chars().count())
            .chars()
            .take(50_000)
            .collect();
        // Content is stored trimmed: keep it from starting or ending with white space.
        let content = format!("<{}>", &content[..content.len() - unit.len() * 2]);
        let id = store(
            &mut server,
            "general",
            &format!("Long {unit:?}"),
            &content,
            json!({}),
        );
        // A memory with many relationships still gets its content.
        for i in 0..45 {
            let other = store(
                &mut server,
                "general",
                &format!("Other {unit:?} {i}"),
                "x",
                json!({}),
            );
            server.ok(
                "create_relationship",
                json!({"from_memory_id": id, "to_memory_id": other, "relationship_type": "RELATED_TO",
                       "context": "c".repeat(1_500)}),
            );
        }
        let mut read = String::new();
        let mut calls = 0;
        let mut args = json!({"memory_id": id});
        loop {
            let result = server.call("get_memory", args.clone());
            calls += 1;
            let text = result["content"][0]["text"].as_str().unwrap();
            assert!(text.chars().count() <= 16_000);
            assert!(result["structuredContent"].to_string().chars().count() <= 16_000);
            let out = &result["structuredContent"];
            read.push_str(out["memory"]["content"].as_str().unwrap());
            match out["content_next_offset"].as_u64() {
                Some(next) => args["content_offset"] = json!(next),
                None => break,
            }
            assert!(calls < 100, "no progress");
        }
        assert_eq!(read, content, "{unit:?}");
        counted.push((unit, content.chars().count(), calls, most));
    }
    for (unit, chars, calls, most) in &counted {
        assert!(
            calls <= most,
            "{unit:?}: {chars} characters in {calls} calls, more than {most}: {counted:?}"
        );
    }
    assert!(server.stop().success());
}

#[test]
fn misspelt_words_never_become_a_letter_or_two() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    store(
        &mut server,
        "general",
        "A note about apples",
        "a an at as all about apple axe ant thin this these limb lime",
        json!({}),
    );
    store(
        &mut server,
        "fix",
        "Raise the pool",
        "a bigger pool stops the timeouts",
        json!({}),
    );
    for word in ["zebra", "third", "limit"] {
        let page = server.ok("search_memories", json!({"query": word}));
        assert_eq!(page["total"], 0, "{word}: {page}");
        assert!(page.get("corrections").is_none(), "{word}: {page}");
        assert_eq!(page["unmatched"], json!([word]), "{word}: {page}");
        let text = server.call("search_memories", json!({"query": word}))["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains(&format!("no match for \"{word}\"")), "{text}");
        let recalled = server.ok("recall_memories", json!({"query": word}));
        assert_eq!(recalled["total"], 0, "{word}: {recalled}");
    }
    // A real typo is still corrected, to a word of comparable length.
    let page = server.ok("search_memories", json!({"query": "timeuots"}));
    assert_eq!(page["total"], 1, "{page}");
    let to = page["corrections"][0]["to"].as_str().unwrap();
    assert!(to.chars().count() >= 5, "{page}");
    // A single hit has a relevance above 0.
    let page = server.ok("search_memories", json!({"query": "bigger"}));
    assert_eq!(page["total"], 1);
    assert!(
        page["results"][0]["relevance"].as_f64().unwrap() > 0.0,
        "{page}"
    );
    assert!(server.stop().success());
}

#[test]
fn a_duplicate_store_honours_supersedes() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let old = store(
        &mut server,
        "fix",
        "Old fix",
        "restart the worker",
        json!({}),
    );
    let new = store(&mut server, "fix", "New fix", "raise the pool", json!({}));
    let again = server.ok(
        "store_memory",
        json!({"type": "fix", "title": "New fix", "content": "raise the pool", "supersedes": old}),
    );
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["memory_id"], new.as_str());
    assert_eq!(again["supersedes"], old.as_str());
    let got = server.ok("get_memory", json!({"memory_id": old}));
    let links: Vec<&Value> = got["relationships"].as_array().unwrap().iter().collect();
    assert_eq!(links.len(), 1, "{got}");
    assert_eq!(links[0]["type"], "REPLACES");
    assert_eq!(links[0]["from_id"], new.as_str());
    // Storing it again adds no second link.
    server.ok(
        "store_memory",
        json!({"type": "fix", "title": "New fix", "content": "raise the pool", "supersedes": old}),
    );
    let got = server.ok("get_memory", json!({"memory_id": old}));
    assert_eq!(got["relationships_total"], 1);
    let found = server.ok("search_memories", json!({"query": "fix"}));
    let old_hit = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == old.as_str())
        .unwrap();
    assert_eq!(old_hit["superseded_by"], new.as_str());
    // A bogus id is refused, duplicate or not, and nothing is written.
    for title in ["New fix", "Brand new"] {
        let text = server.err(
            "store_memory",
            json!({"type": "fix", "title": title, "content": "raise the pool", "supersedes": "no-such-id"}),
        );
        assert!(text.contains("supersedes"), "{text}");
    }
    let stats = server.ok("health", json!({}));
    assert_eq!(stats["database"]["memories"], 2);
    assert_eq!(stats["database"]["relationships"], 1);
    assert!(server.stop().success());
}
