//! Search quality on a seeded corpus of a few thousand memories with known answers.

mod common;

use std::collections::BTreeSet;

use common::{Scratch, Server, store};
use serde_json::{Value, json};

/// The benchmark's seeded corpus generator, shared so both speak the same vocabulary.
#[path = "../src/bin/memorygraph-bench/corpus.rs"]
#[allow(dead_code)]
mod corpus;

use corpus::{Rng, TYPES};

const CORPUS_SIZE: usize = 2_000;

/// Builds the corpus and returns the server and the id of the planted memory, which alone
/// holds the phrase "quantum flux capacitor".
fn corpus(scratch: &Scratch) -> (Server, String) {
    let mut server = Server::started(&scratch.db(), &[]);
    let mut rng = Rng::new(0x5eed_2026);
    let planted_at = 1_234;
    let mut planted = String::new();
    for i in 0..CORPUS_SIZE {
        let title = rng.words(4);
        let length = 30 + (rng.next() % 50) as usize;
        let mut content = rng.words(length);
        if i == planted_at {
            content = format!(
                "{content} the quantum flux capacitor overheated {}",
                rng.words(10)
            );
        }
        let kind = TYPES[i % TYPES.len()];
        let id = store(
            &mut server,
            kind,
            &format!("{title} {i}"),
            &content,
            json!({"tags": [rng.word()]}),
        );
        if i == planted_at {
            planted = id;
        }
    }
    (server, planted)
}

fn top_ids(server: &mut Server, args: Value) -> Vec<String> {
    let out = server.ok("search_memories", args);
    out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// Every variant of `word` with one typo: a letter dropped, doubled, replaced or swapped.
fn one_typo_variants(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = BTreeSet::new();
    for i in 0..chars.len() {
        let mut v = chars.clone();
        v.remove(i);
        out.insert(v.iter().collect::<String>());
        let mut v = chars.clone();
        v.insert(i, chars[i]);
        out.insert(v.iter().collect());
        let mut v = chars.clone();
        v[i] = if chars[i] == 'x' { 'q' } else { 'x' };
        out.insert(v.iter().collect());
        if i + 1 < chars.len() {
            let mut v = chars.clone();
            v.swap(i, i + 1);
            out.insert(v.iter().collect());
        }
    }
    out.remove(word);
    out.into_iter().collect()
}

#[test]
fn finds_the_right_memory_in_a_seeded_corpus() {
    let scratch = Scratch::new();
    let (mut server, planted) = corpus(&scratch);

    let top = top_ids(&mut server, json!({"query": "\"quantum flux capacitor\""}));
    assert_eq!(
        top,
        std::slice::from_ref(&planted),
        "the quoted phrase finds exactly the planted memory"
    );
    let top = top_ids(
        &mut server,
        json!({"query": "quantum flux capacitor", "limit": 5}),
    );
    assert_eq!(top[0], planted, "the phrase's words rank it first");
    for reordered in [
        "capacitor flux quantum",
        "quantum the flux capacitor",
        "flux of the capacitor quantum",
    ] {
        let top = top_ids(&mut server, json!({"query": reordered, "limit": 5}));
        assert!(top.contains(&planted), "{reordered:?}: not in the top 5");
    }

    let variants = one_typo_variants("capacitor");
    assert!(variants.len() > 30);
    for typo in &variants {
        let out = server.ok(
            "search_memories",
            json!({"query": format!("quantum {typo}"), "limit": 5}),
        );
        let ids: Vec<&str> = out["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&planted.as_str()), "{typo}: {out}");
        let alone = server.ok("search_memories", json!({"query": typo, "limit": 5}));
        let ids: Vec<&str> = alone["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&planted.as_str()), "{typo} alone: {alone}");
        assert_eq!(
            alone["corrections"][0]["from"],
            typo.as_str(),
            "the answer says what was corrected"
        );
    }
    let strict = server.ok(
        "search_memories",
        json!({"query": "capacitro", "search_tolerance": "strict"}),
    );
    assert_eq!(strict["total"], 0, "strict does not correct");

    let cached = server.ok(
        "search_memories",
        json!({"query": "caching", "match_mode": "all", "limit": 1000}),
    );
    let cache = server.ok(
        "search_memories",
        json!({"query": "cache", "match_mode": "all", "limit": 1000}),
    );
    assert_eq!(
        cached["total"], cache["total"],
        "stemming: caching, cached and cache are one word"
    );

    let hostile = [
        "\"",
        "\"\"",
        "*",
        "-",
        ":",
        "(",
        ")",
        "NEAR",
        "AND",
        "OR",
        "NOT",
        "cache AND",
        "OR OR OR",
        "NEAR(cache retry, 2)",
        "title:cache",
        "-cache",
        "cache*",
        "^cache",
        "{cache}",
        "[cache]",
        "'",
        "\\",
        "%",
        "_",
        "\u{0}",
        "🚀🔥",
        "👩‍💻",
        "مرحبا",
        "日本語",
        "e\u{301}",
        "' OR 1=1 --",
    ];
    let long = "cache retry ".repeat(1_000);
    for query in hostile.iter().map(|q| q.to_string()).chain([long]) {
        for tolerance in ["strict", "normal", "fuzzy"] {
            for mode in ["any", "all"] {
                server.ok(
                    "search_memories",
                    json!({"query": query, "search_tolerance": tolerance, "match_mode": mode}),
                );
            }
        }
        server.ok("recall_memories", json!({"query": query}));
    }

    let full = server.ok(
        "search_memories",
        json!({"query": "deadlock mutex", "limit": 1000}),
    );
    let total = full["total"].as_u64().unwrap();
    assert!(total > 200, "a broad query: {total}");
    let all: Vec<String> = full["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let mut paged = Vec::new();
    let mut offset = 0;
    loop {
        let page = server.ok(
            "search_memories",
            json!({"query": "deadlock mutex", "limit": 37, "offset": offset}),
        );
        assert_eq!(page["total"].as_u64(), Some(total));
        paged.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    let unique: BTreeSet<&String> = paged.iter().collect();
    assert_eq!(unique.len(), paged.len(), "pages never overlap");
    let shown: usize = all.len();
    assert_eq!(
        &paged[..shown],
        &all[..],
        "the pages, in order, are the full result"
    );
    assert_eq!(paged.len() as u64, total);

    let filtered = server.ok(
        "search_memories",
        json!({"query": "deadlock", "memory_types": ["fix"], "min_importance": 0.4, "limit": 1000}),
    );
    for r in filtered["results"].as_array().unwrap() {
        assert_eq!(r["type"], "fix");
    }
    let unfiltered_fix: u64 = server.ok(
        "search_memories",
        json!({"query": "deadlock", "memory_types": ["fix"], "limit": 1}),
    )["total"]
        .as_u64()
        .unwrap();
    assert!(filtered["total"].as_u64().unwrap() <= unfiltered_fix);
    assert!(
        unfiltered_fix > 20,
        "filters run in SQL over every match, not a capped list"
    );
}

#[test]
fn duplicates_supersession_usage_and_recall_neighbours() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let old = store(
        &mut server,
        "solution",
        "Use a connection pool of 10",
        "pool size 10 fixed the timeouts",
        json!({}),
    );
    let again = server.ok("store_memory", json!({"type": "solution", "title": "Use a connection pool of 10", "content": "pool size 10 fixed the timeouts"}));
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["memory_id"], old.as_str());
    assert_eq!(
        server.ok("search_memories", json!({}))["total"],
        1,
        "no second copy"
    );

    let new = server.ok("store_memory", json!({"type": "solution", "title": "Use a connection pool of 50", "content": "pool size 50 fixed the timeouts for good", "supersedes": old}));
    assert_eq!(new["duplicate"], false);
    let new = new["memory_id"].as_str().unwrap().to_string();
    let found = server.ok("search_memories", json!({"query": "pool timeouts"}));
    assert_eq!(
        found["results"][0]["id"],
        new.as_str(),
        "the current memory ranks first: {found}"
    );
    assert_eq!(found["results"][1]["id"], old.as_str());
    assert_eq!(
        found["results"][1]["superseded_by"],
        new.as_str(),
        "the old one is marked"
    );
    let text =
        server.call("search_memories", json!({"query": "pool timeouts"}))["content"][0]["text"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(text.contains("superseded by"), "{text}");
    assert_eq!(
        server.ok("get_memory", json!({"memory_id": old}))["memory"]["title"],
        "Use a connection pool of 10",
        "still readable"
    );
    let links = server.ok("get_memory", json!({"memory_id": new}))["relationships"].clone();
    assert_eq!(links[0]["type"], "REPLACES");
    assert!(
        server
            .err(
                "store_memory",
                json!({"type": "fix", "title": "t", "content": "c", "supersedes": "ghost"})
            )
            .contains("supersedes")
    );

    let before = server.ok("get_memory", json!({"memory_id": new}))["memory"]["usage_count"]
        .as_i64()
        .unwrap();
    let after = server.ok("get_memory", json!({"memory_id": new}))["memory"].clone();
    assert_eq!(
        after["usage_count"].as_i64().unwrap(),
        before + 1,
        "get_memory counts a use"
    );
    assert!(after["last_accessed"].is_string());

    let lone = store(
        &mut server,
        "technology",
        "PgBouncer",
        "multiplexes transactions in front of postgres",
        json!({}),
    );
    server.ok("create_relationship", json!({"from_memory_id": lone, "to_memory_id": new, "relationship_type": "REQUIRES", "strength": 0.9}));
    let recalled = server.ok(
        "recall_memories",
        json!({"query": "what pool size fixed the timeouts?"}),
    );
    let results = recalled["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], new.as_str());
    assert!(results[0]["score"].as_f64().unwrap() > 0.0);
    assert!(
        results.iter().all(|r| r["id"] != lone.as_str()),
        "a neighbour is not a result"
    );
    let neighbour = recalled["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == lone.as_str())
        .expect("the strongest neighbour is listed apart");
    assert_eq!(neighbour["related_to"]["memory_id"], new.as_str());
    assert_eq!(neighbour["related_to"]["relationship_type"], "REQUIRES");
    assert_eq!(
        results.iter().filter(|r| r["id"] == new.as_str()).count(),
        1,
        "no duplicates"
    );
    assert!(
        results.iter().all(|r| r.get("content").is_none()),
        "recall returns snippets, not contents"
    );
    let used = server.ok("get_memory", json!({"memory_id": lone}))["memory"]["usage_count"]
        .as_i64()
        .unwrap();
    assert_eq!(
        used, 2,
        "recall counted the neighbour's use, and get_memory this one"
    );
}

#[test]
fn long_content_is_returned_in_parts_that_fit() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[("MEMORY_MAX_RESPONSE_CHARS", "5000")]);
    let content: String = (0..4_000).map(|i| format!("w{i} ")).collect::<String>() + "é🚀";
    let id = store(&mut server, "general", "Long", &content, json!({}));
    let result = server.call("get_memory", json!({"memory_id": id}));
    // The limit holds for each form of the answer: the text and the structured content.
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap()
        .chars()
        .count();
    let structured = result["structuredContent"].to_string().chars().count();
    assert!(text <= 5000 && structured <= 5000, "{text} {structured}");
    let whole = common::full_memory(&mut server, &id);
    assert_eq!(whole["content"].as_str().unwrap(), content.trim());
    assert!(
        server
            .err(
                "get_memory",
                json!({"memory_id": id, "content_offset": 10_000_000})
            )
            .contains("content_offset")
    );
}

#[test]
fn use_counts_survive_a_restart() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let id = store(
        &mut server,
        "general",
        "Counted",
        "read three times",
        json!({}),
    );
    for _ in 0..3 {
        server.ok("get_memory", json!({"memory_id": id}));
    }
    assert!(server.stop().success());
    let mut again = Server::started(&scratch.db(), &[]);
    let read = again.ok("get_memory", json!({"memory_id": id}));
    assert_eq!(
        read["memory"]["usage_count"], 4,
        "batched counts are written at close"
    );
}

/// A word that finds memories is never reported as unmatched: with `fuzzy`, `auth` finds
/// "Authentication service" by its beginning, so neither `unmatched` nor the text (nor the
/// command line) says there was no match for it. A word that finds nothing still is.
#[test]
fn a_fuzzy_match_by_beginning_is_not_reported_unmatched() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let id = store(
        &mut server,
        "general",
        "Authentication service",
        "Handles login tokens",
        json!({}),
    );
    let args = json!({"query": "auth", "search_tolerance": "fuzzy"});
    let page = server.ok("search_memories", args.clone());
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["results"][0]["id"], json!(id));
    assert!(page.get("unmatched").is_none(), "{page}");
    let text = server.call("search_memories", args)["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!text.contains("no match"), "{text}");
    // One word found by its beginning, one that finds nothing: only the second is listed.
    let page = server.ok(
        "search_memories",
        json!({"query": "auth qwxz", "search_tolerance": "fuzzy"}),
    );
    assert_eq!(page["total"], 1, "{page}");
    assert_eq!(page["unmatched"], json!(["qwxz"]), "{page}");
    // With the default tolerance, `auth` is a whole word that matches nothing.
    let page = server.ok("search_memories", json!({"query": "auth"}));
    assert_eq!(page["total"], 0, "{page}");
    assert_eq!(page["unmatched"], json!(["auth"]), "{page}");
    assert!(server.stop().success());

    let cli = common::run::run(&scratch.db(), &["search", "auth", "--tolerance", "fuzzy"]).ok();
    assert!(
        cli.stdout.contains("Authentication service"),
        "{}",
        cli.stdout
    );
    assert!(!cli.stdout.contains("no match"), "{}", cli.stdout);
}

/// Stores many memories at once: every request written first, then every answer read.
fn store_many(server: &mut Server, memories: &[(String, String)]) {
    // In batches: a server given thousands of calls at once runs them all together, and
    // the first answer can come only once most have written (longer than the answer wait
    // on a loaded machine).
    for (b, batch) in memories.chunks(200).enumerate() {
        for (i, (title, content)) in batch.iter().enumerate() {
            server.send(&json!({"jsonrpc": "2.0", "id": format!("bulk-{b}-{i}"), "method": "tools/call",
                "params": {"name": "store_memory", "arguments": {"type": "general", "title": title, "content": content}}}));
        }
        for _ in batch {
            let answer = server.recv();
            assert_eq!(answer["result"]["isError"], false, "{answer}");
        }
    }
}

/// The ids of a search's or recall's first `limit` results, in order.
fn ranked_ids(server: &mut Server, tool: &str, query: &str, limit: usize) -> Vec<String> {
    server.ok(tool, json!({"query": query, "limit": limit}))["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// An old version is demoted, not buried: among 3,000 memories that share the query's common
/// words, it comes directly after the memory that replaced it, in search and in recall, and
/// a chain of versions reads newest first.
#[test]
fn an_old_version_comes_right_after_the_memory_that_replaced_it() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let mut rng = Rng::new(0x7e45_1045);
    let crowd: Vec<(String, String)> = (0..3_000)
        .map(|i| {
            (
                format!("deploy script {} {i}", rng.words(3)),
                format!("the deploy script {}", rng.words(20)),
            )
        })
        .collect();
    store_many(&mut server, &crowd);
    let first = store(
        &mut server,
        "workflow",
        "quillfeather deploy script",
        "run quillfeather before the deploy script, then ledgerwick",
        json!({}),
    );
    let second = server.ok("store_memory", json!({"type": "workflow", "title": "quillfeather deploy script, second version", "content": "run quillfeather after the checks, version two", "supersedes": first}))["memory_id"].as_str().unwrap().to_string();
    // The newest no longer names the rare word in its title, so it ranks lower than both.
    let third = server.ok("store_memory", json!({"type": "workflow", "title": "deploy script, third version", "content": "the checks now run the quillfeather step themselves", "supersedes": second}))["memory_id"].as_str().unwrap().to_string();
    for tool in ["search_memories", "recall_memories"] {
        let ids = ranked_ids(&mut server, tool, "quillfeather deploy script", 50);
        let at = |id: &String| ids.iter().position(|x| x == id);
        let newest = at(&third)
            .unwrap_or_else(|| panic!("{tool}: the newest version is in the first 50: {ids:?}"));
        assert_eq!(at(&second), Some(newest + 1), "{tool}: {ids:?}");
        assert_eq!(at(&first), Some(newest + 2), "{tool}: {ids:?}");
    }
    let found = server.ok(
        "search_memories",
        json!({"query": "quillfeather", "limit": 5}),
    );
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{found}");
    assert_eq!(results[1]["superseded_by"], json!(third));
    assert_eq!(results[2]["superseded_by"], json!(second));
    // Any version shows the whole chain, newest first.
    for id in [&first, &second, &third] {
        let got = server.ok("get_memory", json!({"memory_id": id}));
        let chain: Vec<(&str, i64)> = got["versions"]
            .as_array()
            .unwrap_or_else(|| panic!("no versions: {got}"))
            .iter()
            .map(|v| (v["id"].as_str().unwrap(), v["step"].as_i64().unwrap()))
            .collect();
        let this = [&third, &second, &first]
            .iter()
            .position(|x| x == &id)
            .unwrap() as i64;
        assert_eq!(
            chain,
            [
                (third.as_str(), this),
                (second.as_str(), this - 1),
                (first.as_str(), this - 2)
            ],
            "{got}"
        );
    }
    let text = server.call("get_memory", json!({"memory_id": second}))["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("Versions, newest first:") && text.contains("<- this one"),
        "{text}"
    );
    // A memory outside any chain lists none.
    let alone = ranked_ids(&mut server, "search_memories", "deploy", 10)
        .into_iter()
        .find(|id| ![&first, &second, &third].contains(&id))
        .unwrap();
    assert!(server.ok("get_memory", json!({"memory_id": alone}))["versions"].is_null());
    // An old version whose successor does not match keeps its own place.
    let only_old = ranked_ids(&mut server, "search_memories", "ledgerwick", 5);
    assert_eq!(only_old, [first], "{only_old:?}");
}
