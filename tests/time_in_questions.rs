//! Time in questions, over stdio with the real binary: a year of memories imported with
//! their dates (one a day), asked about with English time expressions. Each answer holds
//! exactly the memories of the range the expression names in the server's time zone (UTC
//! here), says how it read it, and searches the other words; explicit dates win; a question
//! without a time expression is answered as before. `as_of` answers what was current at an
//! instant.

mod common;

use chrono::{Datelike, Days, NaiveDate, Utc};
use common::{Scratch, Server};
use serde_json::{Value, json};

const DAYS: u64 = 365;

/// A MemoryGraph export of one memory a day at noon, today and the 364 days before.
fn year_of_memories(scratch: &Scratch) -> String {
    let today = Utc::now().date_naive();
    let memories: Vec<Value> = (0..DAYS)
        .map(|back| {
            let day = today - Days::new(back);
            let at = format!("{day}T12:00:00.000000+00:00");
            json!({
                "id": format!("00000000-0000-4000-8000-{back:012}"),
                "type": "general",
                "title": format!("retry policy note {day}"),
                "content": "what we decided about the retry policy that day",
                "tags": [], "importance": 0.5, "confidence": 0.8,
                "created_at": at, "updated_at": at,
            })
        })
        .collect();
    let export = json!({"format_version": "2.0", "export_version": "1.0", "backend_type": "sqlite",
        "memory_count": memories.len(), "relationship_count": 0, "memories": memories, "relationships": []});
    let path = scratch.dir.path().join("year.json");
    std::fs::write(&path, export.to_string()).unwrap();
    path.to_str().unwrap().to_string()
}

/// How many of the year's days fall in `[first, after)`.
fn days_in(first: NaiveDate, after: NaiveDate) -> u64 {
    let today = Utc::now().date_naive();
    let oldest = today - Days::new(DAYS - 1);
    let (first, after) = (first.max(oldest), after.min(today + Days::new(1)));
    (after - first).num_days().max(0) as u64
}

fn ask(server: &mut Server, tool: &str, query: &str, extra: Value) -> Value {
    let mut args = json!({"query": query, "limit": 5});
    args.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    server.ok(tool, args)
}

#[test]
fn time_expressions_restrict_the_answer_to_their_range() {
    let scratch = Scratch::new();
    let db = scratch.db();
    let input = year_of_memories(&scratch);
    common::run::run(&db, &["import", "--input", &input]).ok();
    let mut server = Server::started(&db, &[("TZ", "UTC")]);

    let today = Utc::now().date_naive();
    let monday = today - Days::new(u64::from(today.weekday().num_days_from_monday()));
    let first_of_month = today.with_day(1).unwrap();
    let march = NaiveDate::from_ymd_opt(
        if today.month() >= 3 {
            today.year()
        } else {
            today.year() - 1
        },
        3,
        1,
    )
    .unwrap();
    let on_day = format!("retry policy on {}", today - Days::new(40));
    let cases: Vec<(&str, &str, u64)> = vec![
        (
            "what did we decide yesterday about the retry policy",
            "yesterday",
            1,
        ),
        (
            "what did we decide last week about the retry policy",
            "last week",
            days_in(monday - Days::new(7), monday),
        ),
        (
            "retry policy this month",
            "this month",
            days_in(first_of_month, today + Days::new(1)),
        ),
        (
            "retry policy since Monday",
            "since Monday",
            days_in(monday, today + Days::new(1)),
        ),
        (
            "retry policy in March",
            "in March",
            days_in(
                march,
                march.checked_add_months(chrono::Months::new(1)).unwrap(),
            ),
        ),
        (&on_day, "on", 1),
        ("retry policy before June", "before June", {
            let june = NaiveDate::from_ymd_opt(
                if today.month() >= 6 {
                    today.year()
                } else {
                    today.year() - 1
                },
                6,
                1,
            )
            .unwrap();
            days_in(today - Days::new(DAYS), june)
        }),
        ("retry policy two months ago", "two months ago", {
            let then = today
                .checked_sub_months(chrono::Months::new(2))
                .unwrap()
                .with_day(1)
                .unwrap();
            days_in(
                then,
                then.checked_add_months(chrono::Months::new(1)).unwrap(),
            )
        }),
    ];
    for tool in ["search_memories", "recall_memories"] {
        for (query, phrase, expected) in &cases {
            let found = ask(&mut server, tool, query, json!({}));
            let time = &found["time"];
            assert!(
                time["phrase"].as_str().unwrap().starts_with(phrase),
                "{tool} {query}: {found}"
            );
            assert_eq!(time["applied"], true, "{found}");
            assert_eq!(found["total"], *expected, "{tool} {query}: read as {time}");
            for r in found["results"].as_array().unwrap() {
                let at = r["created_at"].as_str().unwrap();
                assert!(
                    time["created_after"].as_str().is_none_or(|a| at >= a)
                        && time["created_before"].as_str().is_none_or(|b| at < b),
                    "{tool} {query}: {at} outside {time}"
                );
            }
        }
    }
    // The answer's text says how the expression was read.
    let text = server.call(
        "search_memories",
        json!({"query": "retry policy last week"}),
    )["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("read \"last week\" as from "), "{text}");
    // Explicit dates win over the expression; its words are still not searched.
    let since = (today - Days::new(9)).to_string();
    let found = ask(
        &mut server,
        "search_memories",
        "retry policy last week",
        json!({"created_after": since}),
    );
    assert_eq!(found["time"]["applied"], false, "{found}");
    assert_eq!(found["total"], 10, "{found}");
    // Without a time expression, nothing changes.
    let found = ask(&mut server, "search_memories", "retry policy", json!({}));
    assert!(found["time"].is_null());
    assert_eq!(found["total"], DAYS);
    // Listed terms are words, never time.
    let found = server.ok("search_memories", json!({"terms": ["yesterday"]}));
    assert!(found["time"].is_null());
    assert_eq!(found["total"], 0);
}

/// `as_of` answers what was current at an instant: memories created by then, versions as
/// they stood (an old version not yet superseded is not marked), links valid then — a link
/// ended since included, one made since left out.
#[test]
fn as_of_answers_what_was_current_then() {
    let scratch = Scratch::new();
    let mut server = Server::started(&scratch.db(), &[]);
    let stored = |server: &mut Server, title: &str, extra: Value| -> String {
        let mut args = json!({"type": "general", "title": title, "content": "the retry policy"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        server.ok("store_memory", args)["memory_id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let old = stored(&mut server, "Retry three times", json!({}));
    let other = stored(&mut server, "Backoff doubles", json!({}));
    let early = server.ok(
        "create_relationship",
        json!({"from_memory_id": old, "to_memory_id": other, "relationship_type": "RELATED_TO"}),
    )["relationship_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let then = Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let new = stored(&mut server, "Retry five times", json!({"supersedes": old}));
    server.ok(
        "create_relationship",
        json!({"from_memory_id": old, "to_memory_id": other, "relationship_type": "DEPENDS_ON"}),
    );
    // The early link is ended now (what the web view's Remove does).
    let ended = server.request(
        "memorygraph/end_relationship",
        json!({"relationship_id": early}),
    );
    assert_eq!(ended["result"]["ended"], true, "{ended}");

    let ids = |found: &Value| -> Vec<String> {
        found["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    for tool in ["search_memories", "recall_memories"] {
        let now = server.ok(tool, json!({"query": "retry policy"}));
        assert_eq!(ids(&now)[..2], [new.clone(), old.clone()], "{tool}: {now}");
        let past = server.ok(tool, json!({"query": "retry policy", "as_of": then}));
        assert_eq!(ids(&past), [old.clone(), other.clone()], "{tool}: {past}");
        assert!(
            past["results"][0]["superseded_by"].is_null(),
            "{tool}: not superseded then: {past}"
        );
    }
    let types = |found: &Value| -> Vec<String> {
        found["related"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["relationship"]["type"].as_str().unwrap().to_string())
            .collect()
    };
    let now = server.ok(
        "get_related_memories",
        json!({"memory_id": old, "max_depth": 1}),
    );
    let mut now_types = types(&now);
    now_types.sort();
    assert_eq!(now_types, ["DEPENDS_ON", "REPLACES"], "{now}");
    let past = server.ok(
        "get_related_memories",
        json!({"memory_id": old, "max_depth": 1, "as_of": then}),
    );
    assert_eq!(types(&past), ["RELATED_TO"], "{past}");
    // A date means the end of that day: today's as_of sees everything made today.
    let today = Utc::now().date_naive().to_string();
    let whole_day = server.ok(
        "search_memories",
        json!({"query": "retry policy", "as_of": today}),
    );
    assert_eq!(whole_day["total"], 3, "{whole_day}");
    // A bad as_of is refused, and the next call works.
    let text = server.err(
        "search_memories",
        json!({"query": "retry", "as_of": "last Tuesday"}),
    );
    assert!(text.contains("Invalid `as_of`"), "{text}");
    server.ok("search_memories", json!({"query": "retry"}));
}
