//! Property tests (the fuzz targets): random bytes and random JSON through the request
//! transport, random query text through search on a real database. Nothing may panic, every
//! line gets the JSON-RPC answer it deserves, and every query is a valid full-text query.
//!
//! The suite runs a few hundred cases of each. A long run, as documented in
//! docs/reliability.md:
//!
//! ```sh
//! PROPTEST_CASES=1000000 cargo test --release --test properties
//! ```

use std::sync::OnceLock;

use memorygraph::backend::{BackendOptions, MatchMode, SearchRequest, Tolerance, TursoBackend};
use memorygraph::mcp::transport::line_transport;
use memorygraph::model::NewMemory;
use proptest::prelude::*;
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// Feeds `input` to the transport as stdin and returns what it hands to the server (how
/// many messages) and what it answers by itself (the lines written to stdout).
fn through_transport(input: Vec<u8>) -> (usize, Vec<Value>) {
    runtime().block_on(async move {
        let (mut client_in, server_in) = tokio::io::duplex(1 << 16);
        let (server_out, mut client_out) = tokio::io::duplex(1 << 16);
        let (mut transport, writer) = line_transport(server_in, server_out);
        let feed = tokio::spawn(async move {
            client_in.write_all(&input).await.unwrap();
            client_in.shutdown().await.unwrap();
        });
        let mut messages = 0;
        while transport.receive().await.is_some() {
            messages += 1;
        }
        feed.await.unwrap();
        drop(transport);
        writer.await.unwrap();
        let mut out = Vec::new();
        client_out.read_to_end(&mut out).await.unwrap();
        let replies = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("every line written is JSON"))
            .collect();
        (messages, replies)
    })
}

fn assert_error_replies(replies: &[Value]) {
    for reply in replies {
        assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
        let code = reply["error"]["code"].as_i64().unwrap();
        assert!(code == -32700 || code == -32600, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,20}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Message-shaped JSON: real method names and keys, random values.
fn message_like() -> impl Strategy<Value = Value> {
    let method = prop_oneof![
        Just(json!("initialize")),
        Just(json!("tools/call")),
        Just(json!("tools/list")),
        Just(json!("ping")),
        Just(json!("notifications/initialized")),
        Just(json!("notifications/cancelled")),
        Just(json!("server/discover")),
        any_json(),
    ];
    (
        prop::option::of(prop_oneof![Just(json!("2.0")), any_json()]),
        prop::option::of(any_json()),
        prop::option::of(method),
        prop::option::of(any_json()),
    )
        .prop_map(|(jsonrpc, id, method, params)| {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("jsonrpc", jsonrpc),
                ("id", id),
                ("method", method),
                ("params", params),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            Value::Object(m)
        })
}

proptest! {
    #[test]
    fn random_bytes_never_break_the_transport(lines in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8)) {
        let mut input = Vec::new();
        let mut expected_max = 0;
        for line in &lines {
            let line: Vec<u8> = line.iter().copied().filter(|b| *b != b'\n').collect();
            if !line.trim_ascii().is_empty() {
                expected_max += 1;
            }
            input.extend_from_slice(&line);
            input.push(b'\n');
        }
        let (messages, replies) = through_transport(input);
        assert_error_replies(&replies);
        // Each non-empty line is either handed on or answered (at most once).
        prop_assert!(messages + replies.len() <= expected_max);
    }

    #[test]
    fn random_messages_are_handed_on_or_answered(values in prop::collection::vec(message_like(), 1..6)) {
        let mut input = Vec::new();
        for v in &values {
            input.extend_from_slice(v.to_string().as_bytes());
            input.push(b'\n');
        }
        let (messages, replies) = through_transport(input);
        assert_error_replies(&replies);
        prop_assert!(messages + replies.len() <= values.len());
        // A line with an id and a method is never dropped in silence.
        let requests = values
            .iter()
            .filter(|v| v.get("id").is_some() && v.get("method").is_some())
            .count();
        prop_assert!(messages + replies.len() >= requests);
    }
}

/// A small real database, opened once for every search case.
fn backend() -> &'static TursoBackend {
    static BACKEND: OnceLock<(tempfile::TempDir, TursoBackend)> = OnceLock::new();
    &BACKEND
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let backend = runtime().block_on(async {
                let backend =
                    TursoBackend::open(BackendOptions::local(dir.path().join("memory.db")))
                        .await
                        .unwrap();
                let texts = [
                    (
                        "Redis timeout under load",
                        "Raise the pool to 50; NEAR the cache.",
                    ),
                    (
                        "café naïve résumé",
                        "Unicode words: straße, 東京, emoji 🔥 and AND/OR/NOT",
                    ),
                    ("SQL: DROP TABLE nodes", "'; -- \" * ^ : ( ) { } + -"),
                    ("caching strategies", "cache cached caches caching"),
                ];
                for (title, content) in texts {
                    let new = NewMemory::validate(
                        "general",
                        title,
                        content,
                        None,
                        Some(&["t".to_string()]),
                        None,
                        None,
                    )
                    .unwrap();
                    backend.store_memory(new, None).await.unwrap();
                }
                backend
            });
            (dir, backend)
        })
        .1
}

fn query_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-z \"*^:(){}+\\-.'ÀéßÖ東🔥]{0,40}",
        prop::collection::vec(
            prop_oneof![
                Just("AND"),
                Just("OR"),
                Just("NOT"),
                Just("NEAR"),
                Just("NEAR("),
                Just("\""),
                Just("*"),
                Just("^"),
                Just(":"),
                Just("title:"),
                Just("("),
                Just(")"),
                Just("redis"),
                Just("cach"),
                Just("café"),
                Just("🔥"),
                Just(" "),
                Just("-"),
                Just("\0"),
                Just("x")
            ],
            0..12
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #[test]
    fn any_query_text_searches_without_error(
        query in query_text(),
        tolerance in prop_oneof![Just(Tolerance::Strict), Just(Tolerance::Normal), Just(Tolerance::Fuzzy)],
        mode in prop_oneof![Just(None), Just(Some(MatchMode::All)), Just(Some(MatchMode::Any))],
        recall in any::<bool>(),
    ) {
        let backend = backend();
        let mut request = SearchRequest::new(&query, 10);
        request.tolerance = tolerance;
        request.match_mode = mode;
        let result = runtime().block_on(async {
            if recall {
                backend.recall(&request).await
            } else {
                backend.search(&request).await
            }
        });
        prop_assert!(result.is_ok(), "{query:?}: {:?}", result.err());
    }
}
