//! Replica mode on plain files, with no primary running: what waits to be pushed (the
//! file's change feed, the queue), replaying it into another file as a push does, and
//! reading while the primary is away. The sqld tests (`tests/replica*.rs`) drive the same
//! paths against a real primary; these pin them down without one.

use std::time::Duration;

use super::feed::{self, Kind};
use super::push::write_rows;
use crate::backend::{BackendOptions, Primary, SearchRequest, TursoBackend};
use crate::model::{MemoryPatch, NewMemory, NewRelationship, RelationshipType};

/// A primary no one answers for: nothing listens on the discard port of this machine.
fn away() -> Primary {
    Primary {
        url: "http://127.0.0.1:9".into(),
        token: None,
    }
}

/// Replica mode on `path`, syncing only when asked (so no test waits for the network).
async fn replica_file(path: &std::path::Path) -> TursoBackend {
    TursoBackend::open(BackendOptions {
        primary: Some(away()),
        auto_sync: false,
        ..BackendOptions::local(path)
    })
    .await
    .unwrap()
}

fn memory(title: &str) -> NewMemory {
    NewMemory::validate(
        "general",
        title,
        &format!("{title} body"),
        None,
        None,
        None,
        None,
    )
    .unwrap()
}

/// Stores a memory titled `title`; its id.
async fn stored(backend: &TursoBackend, title: &str) -> String {
    backend
        .store_memory(memory(title), None)
        .await
        .unwrap()
        .memory
        .id
}

fn link(from: &str, to: &str) -> NewRelationship {
    NewRelationship::plain(from, to, RelationshipType::RelatedTo)
}

/// The rows the feed names past `after`, once each, in the order they first changed.
async fn queued(backend: &TursoBackend) -> Vec<(Kind, String)> {
    let conn = backend.conn.lock().await;
    let (changed, _) = feed::changed_since(&conn, 0, 10_000).await.unwrap();
    changed.into_iter().map(|c| (c.kind, c.id)).collect()
}

/// Every write waits in the feed, each row once and in the order it first changed (a
/// memory before the links to it), a deleted row too; the queue survives a restart and a
/// failed sync, and a write after the failure joins it.
#[tokio::test]
async fn writes_wait_in_the_feed_in_order_through_a_restart_and_a_failed_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let backend = replica_file(&path).await;
    let a = stored(&backend, "a").await;
    let b = stored(&backend, "b").await;
    let c = stored(&backend, "c").await;
    let patch = MemoryPatch::validate(Some("a again"), None, None, None, None).unwrap();
    backend.update_memory(&a, &patch).await.unwrap();
    let r = backend.create_relationship(link(&a, &c)).await.unwrap();
    let r = r.value.0.id;
    backend.delete_memory(&b).await.unwrap();
    let expected = vec![
        (Kind::Node, a.clone()),
        (Kind::Node, b.clone()),
        (Kind::Node, c.clone()),
        (Kind::Relationship, r.clone()),
    ];
    assert_eq!(queued(&backend).await, expected);
    let waiting = backend.unpushed_count().await.unwrap();
    assert!(waiting >= 4, "{waiting}");
    backend.close().await.unwrap();

    let backend = replica_file(&path).await;
    assert_eq!(queued(&backend).await, expected);
    assert_eq!(backend.unpushed_count().await.unwrap(), waiting);
    assert!(
        backend.sync_now(Duration::from_millis(500)).await.is_err(),
        "nothing answers for the primary"
    );
    assert_eq!(backend.unpushed_count().await.unwrap(), waiting);
    let d = backend.store_memory(memory("d"), None).await.unwrap();
    let mut expected = expected;
    expected.push((Kind::Node, d.memory.id));
    assert_eq!(queued(&backend).await, expected);
    backend.close().await.unwrap();
}

/// A small deterministic generator, so a failing sequence can be run again.
struct Steps(u64);

impl Steps {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// Random writes (stores, updates, deletes, links, ended links) replayed from the feed into
/// another file, in batches as a push sends them, leave that file holding exactly the
/// rows of the working file: the working file is the model the replay is checked against.
#[tokio::test]
async fn the_feed_replayed_in_batches_reproduces_every_row() {
    for seed in [1u64, 7, 42] {
        let dir = tempfile::tempdir().unwrap();
        let backend = replica_file(&dir.path().join("m.db")).await;
        let mut steps = Steps(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut live: Vec<String> = Vec::new();
        let mut links: Vec<String> = Vec::new();
        for i in 0..240 {
            match steps.next(10) {
                0..=3 => {
                    let stored = backend.store_memory(memory(&format!("m{i}")), None).await;
                    live.push(stored.unwrap().memory.id);
                }
                4 | 5 if !live.is_empty() => {
                    let id = &live[steps.next(live.len())];
                    let patch = MemoryPatch::validate(
                        Some(&format!("changed {i}")),
                        None,
                        None,
                        None,
                        None,
                    )
                    .unwrap();
                    backend.update_memory(id, &patch).await.unwrap();
                }
                6 if !live.is_empty() => {
                    let id = live.swap_remove(steps.next(live.len()));
                    backend.delete_memory(&id).await.unwrap();
                }
                7 | 8 if live.len() > 1 => {
                    let from = live[steps.next(live.len())].clone();
                    let to = live[steps.next(live.len())].clone();
                    if from != to {
                        let made = backend.create_relationship(link(&from, &to)).await;
                        if let Ok(made) = made {
                            links.push(made.value.0.id);
                        }
                    }
                }
                9 if !links.is_empty() => {
                    let id = links.swap_remove(steps.next(links.len()));
                    backend.end_relationship(&id).await.unwrap();
                }
                _ => {}
            }
        }

        let (_copy_db, copy) = crate::backend::schema::test_database().await;
        let conn = backend.conn.lock().await;
        let mut after = 0;
        let mut everything = Vec::new();
        loop {
            let (changed, last) = feed::changed_since(&conn, after, 25).await.unwrap();
            let Some(last) = last else { break };
            let rows = feed::current_rows(&conn, &changed).await.unwrap();
            write_rows(&copy, &rows).await.unwrap();
            everything.extend(changed);
            after = last;
        }
        for kind in [Kind::Node, Kind::Relationship] {
            let ids: Vec<&str> = everything
                .iter()
                .filter(|c| c.kind == kind)
                .map(|c| c.id.as_str())
                .collect();
            let here = feed::read_rows(&conn, kind, &ids).await.unwrap();
            let there = feed::read_rows(&copy, kind, &ids).await.unwrap();
            assert_eq!(here.len(), there.len(), "seed {seed}: {kind:?} rows");
            for (id, row) in &here {
                assert!(feed::same(row, &there[id]), "seed {seed}: {kind:?} {id}");
            }
        }
        drop(conn);
        backend.close().await.unwrap();
    }
}

/// With the primary away, every read answers what was just written, at once: the memory,
/// a search, its links, the statistics; and after a failed contact a write says it waits.
#[tokio::test]
async fn reads_answer_what_was_written_while_the_primary_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let backend = replica_file(&dir.path().join("m.db")).await;
    let fix = stored(&backend, "quillfeather deploy fix").await;
    let cause = stored(&backend, "quillfeather cache cause").await;
    backend
        .create_relationship(link(&fix, &cause))
        .await
        .unwrap();
    let (read, links) = backend.get_memory(&fix, true).await.unwrap();
    assert_eq!(read.title, "quillfeather deploy fix");
    assert_eq!(links.len(), 1);
    let found = backend
        .search(&SearchRequest::new("quillfeather", 10))
        .await
        .unwrap();
    assert_eq!(found.total, 2);
    let related = backend.related_memories(&fix, &[], 1, None).await.unwrap();
    assert_eq!(related[0].memory.id, cause);
    assert_eq!(backend.statistics().await.unwrap().total_memories, 2);

    assert!(backend.sync_now(Duration::from_millis(500)).await.is_err());
    let status = backend.sync_status().await.unwrap();
    assert!(status.consecutive_failures >= 1 && !status.first_sync_done);
    let third = backend
        .store_memory(memory("written offline"), None)
        .await
        .unwrap();
    assert!(
        third.queued,
        "a write made while the primary is away says it waits"
    );
    assert_eq!(backend.statistics().await.unwrap().total_memories, 3);
    backend.close().await.unwrap();
}
