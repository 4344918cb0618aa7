//! The database layout and its upgrades. Version 0 is a file as MemoryGraph leaves it (or an
//! empty file); each migration moves it one step and records the step in `PRAGMA
//! user_version`. Every statement is idempotent, so a half-applied upgrade or a file touched
//! by MemoryGraph in between is always safe to upgrade again. MemoryGraph itself ignores
//! everything we add and keeps reading and writing the file.

use libsql::Connection;

use super::error::{BackendError, DbContext, Result};

/// MemoryGraph 0.12.4's schema, verbatim in meaning: the tables and indexes it creates.
const MEMORYGRAPH_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY,
    label TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS relationships (
    id TEXT PRIMARY KEY,
    from_id TEXT NOT NULL,
    to_id TEXT NOT NULL,
    rel_type TEXT NOT NULL,
    properties TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    valid_from TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    valid_until TIMESTAMP,
    recorded_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    invalidated_by TEXT,
    FOREIGN KEY (from_id) REFERENCES nodes(id) ON DELETE CASCADE,
    FOREIGN KEY (to_id) REFERENCES nodes(id) ON DELETE CASCADE,
    FOREIGN KEY (invalidated_by) REFERENCES relationships(id) ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS idx_nodes_label ON nodes(label);
CREATE INDEX IF NOT EXISTS idx_nodes_created ON nodes(created_at);
CREATE INDEX IF NOT EXISTS idx_rel_from ON relationships(from_id);
CREATE INDEX IF NOT EXISTS idx_rel_to ON relationships(to_id);
CREATE INDEX IF NOT EXISTS idx_rel_type ON relationships(rel_type);
CREATE INDEX IF NOT EXISTS idx_relationships_temporal ON relationships(valid_from, valid_until);
CREATE INDEX IF NOT EXISTS idx_relationships_current ON relationships(valid_until) WHERE valid_until IS NULL;
CREATE INDEX IF NOT EXISTS idx_relationships_recorded ON relationships(recorded_at);
CREATE VIRTUAL TABLE IF NOT EXISTS nodes_fts USING fts5(id, title, content, summary, content='nodes', content_rowid='rowid');
CREATE INDEX IF NOT EXISTS idx_nodes_memory ON nodes(label) WHERE label = 'Memory';
"#;

/// Our full-text index. MemoryGraph's own `nodes_fts` points at columns `nodes` does not
/// have and was never filled, so we leave it alone and index through a view of the JSON
/// fields instead. The index stores no copy of the text (external content), triggers keep
/// it exact for every writer — us, MemoryGraph, or another process — and the final
/// `rebuild` indexes rows written before the index existed.
///
/// Tags are indexed as one space-separated text. FTS5 cannot read a view that uses
/// `json_each`, and triggers cannot use `WITH`, so the view walks the array with a
/// recursive CTE and the triggers with `json_each`; both yield the same text.
fn full_text_index() -> String {
    let column = |row: &str| {
        format!(
            "json_extract({row}.properties, '$.title'), json_extract({row}.properties, '$.summary'), {}, json_extract({row}.properties, '$.content')",
            tags_in_trigger(row)
        )
    };
    format!(
        r#"
CREATE VIEW IF NOT EXISTS memory_fts_source AS
    SELECT rowid AS rid,
           json_extract(properties, '$.title') AS title,
           json_extract(properties, '$.summary') AS summary,
           CASE WHEN json_type(properties, '$.tags') = 'array' THEN
               (WITH RECURSIVE i(k) AS (
                    SELECT 0 UNION ALL SELECT k + 1 FROM i WHERE k + 1 < json_array_length(nodes.properties, '$.tags'))
                SELECT group_concat(json_extract(nodes.properties, '$.tags[' || k || ']'), ' ') FROM i)
           END AS tags,
           json_extract(properties, '$.content') AS content
    FROM nodes WHERE label = 'Memory';
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts USING fts5(
    title, summary, tags, content,
    content = 'memory_fts_source', content_rowid = 'rid',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS memory_fts_after_insert AFTER INSERT ON nodes
WHEN new.label = 'Memory' BEGIN
    INSERT INTO memory_fts(rowid, title, summary, tags, content) VALUES (new.rowid, {new});
END;
CREATE TRIGGER IF NOT EXISTS memory_fts_after_delete AFTER DELETE ON nodes
WHEN old.label = 'Memory' BEGIN
    INSERT INTO memory_fts(memory_fts, rowid, title, summary, tags, content) VALUES ('delete', old.rowid, {old});
END;
CREATE TRIGGER IF NOT EXISTS memory_fts_after_update AFTER UPDATE OF label, properties ON nodes BEGIN
    INSERT INTO memory_fts(memory_fts, rowid, title, summary, tags, content)
    SELECT 'delete', old.rowid, {old} WHERE old.label = 'Memory';
    INSERT INTO memory_fts(rowid, title, summary, tags, content)
    SELECT new.rowid, {new} WHERE new.label = 'Memory';
END;
INSERT INTO memory_fts(memory_fts) VALUES ('rebuild');
"#,
        new = column("new"),
        old = column("old"),
    )
}

fn tags_in_trigger(row: &str) -> String {
    format!(
        "CASE WHEN json_type({row}.properties, '$.tags') = 'array' THEN \
         (SELECT group_concat(value, ' ') FROM json_each({row}.properties, '$.tags')) END"
    )
}

/// Indexes for the filters and orderings the tools use on JSON fields.
const QUERY_INDEXES: &str = r#"
CREATE INDEX IF NOT EXISTS idx_memory_type ON nodes(json_extract(properties, '$.type')) WHERE label = 'Memory';
CREATE INDEX IF NOT EXISTS idx_memory_project ON nodes(json_extract(properties, '$.context_project_path')) WHERE label = 'Memory';
CREATE INDEX IF NOT EXISTS idx_rel_from_type ON relationships(from_id, rel_type) WHERE valid_until IS NULL;
CREATE INDEX IF NOT EXISTS idx_rel_to_type ON relationships(to_id, rel_type) WHERE valid_until IS NULL;
"#;

/// Typo correction reads the index's vocabulary; usage counts live beside the memories so
/// that reading a memory never rewrites (and re-indexes) its properties; duplicate checks
/// look memories up by title.
const VOCABULARY_AND_USAGE: &str = r#"
CREATE VIRTUAL TABLE IF NOT EXISTS memory_fts_vocab USING fts5vocab(memory_fts, 'row');
CREATE TABLE IF NOT EXISTS memory_usage (
    memory_id TEXT PRIMARY KEY,
    usage_count INTEGER NOT NULL DEFAULT 0,
    last_accessed TEXT
);
CREATE TRIGGER IF NOT EXISTS memory_usage_after_delete AFTER DELETE ON nodes BEGIN
    DELETE FROM memory_usage WHERE memory_id = old.id;
END;
CREATE INDEX IF NOT EXISTS idx_memory_title ON nodes(json_extract(properties, '$.title')) WHERE label = 'Memory';
"#;

/// Who this database is and how far its history goes: a random id made once, where the
/// schema is first created (on the primary, in replica mode), and a count of changes that
/// triggers raise with every write to memories or relationships, by any writer. Replicas
/// compare both before pulling: another id means a reset or replaced primary; fewer changes
/// than the replica has seen means a primary restored from an older copy. Either is noticed
/// instead of silently replacing (or corrupting) the local copy.
fn identity() -> String {
    let mut sql = String::from(
        r#"
CREATE TABLE IF NOT EXISTS memorygraph_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO memorygraph_meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
INSERT OR IGNORE INTO memorygraph_meta (key, value) VALUES ('changes', '0');
"#,
    );
    for table in ["nodes", "relationships"] {
        for event in ["INSERT", "UPDATE", "DELETE"] {
            sql.push_str(&format!(
                "CREATE TRIGGER IF NOT EXISTS memorygraph_changes_{table}_{event} AFTER {event} ON {table} BEGIN
    UPDATE memorygraph_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'changes';
END;
",
                event = event.to_lowercase()
            ));
        }
    }
    sql
}

/// Semantic recall's vectors: one per memory, keyed by its id, in a table of our own
/// (`F32_BLOB(384)`, which libsql reads as a vector locally and in embedded replicas, and
/// plain SQLite — MemoryGraph — as a blob it never looks at). The triggers drop a vector when
/// its memory goes or its text changes, so a vector always describes the current text; the
/// embedding worker then makes a new one. The model the vectors come from is recorded in
/// `memorygraph_meta` (`embedding_model`) by `memorygraph model install`.
const VECTORS: &str = r#"
CREATE TABLE IF NOT EXISTS memory_vectors (
    memory_id TEXT PRIMARY KEY,
    embedding F32_BLOB(384) NOT NULL,
    embedded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TRIGGER IF NOT EXISTS memory_vectors_after_delete AFTER DELETE ON nodes BEGIN
    DELETE FROM memory_vectors WHERE memory_id = old.id;
END;
CREATE TRIGGER IF NOT EXISTS memory_vectors_after_update AFTER UPDATE OF label, properties ON nodes
WHEN new.label IS NOT 'Memory'
  OR json_extract(old.properties, '$.title') IS NOT json_extract(new.properties, '$.title')
  OR json_extract(old.properties, '$.summary') IS NOT json_extract(new.properties, '$.summary')
  OR json_extract(old.properties, '$.content') IS NOT json_extract(new.properties, '$.content')
BEGIN
    DELETE FROM memory_vectors WHERE memory_id = old.id;
END;
"#;

/// MemoryGraph's indexes on `label` and on the `created_at` column: no query of ours reads
/// them (every memory has the label `Memory`, and times are read from the JSON), yet every
/// store wrote three more index pages for them. MemoryGraph makes them again, with
/// `CREATE INDEX IF NOT EXISTS`, whenever it opens the file, so dropping them keeps the file
/// drop-in.
const UNREAD_INDEXES: &str = r#"
DROP INDEX IF EXISTS idx_nodes_label;
DROP INDEX IF EXISTS idx_nodes_memory;
DROP INDEX IF EXISTS idx_nodes_created;
"#;

/// What changed among the vectors, for the copy of them each process keeps in memory
/// (search/index.rs): `memorygraph_meta`'s `vector_changes` counts every insert, update and
/// delete in `memory_vectors`, by any writer, and `memory_vector_log` holds, per memory, the
/// count at its vector's last change and whether it still has one. A process reads the counter
/// before a semantic search and, when it moved, only the log rows past the count it has seen;
/// replicas receive both with the rows. Vectors already there count as change 0.
const VECTOR_CHANGES: &str = r#"
INSERT OR IGNORE INTO memorygraph_meta (key, value) VALUES ('vector_changes', '0');
CREATE TABLE IF NOT EXISTS memory_vector_log (
    memory_id TEXT PRIMARY KEY,
    change INTEGER NOT NULL,
    present INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_memory_vector_log_change ON memory_vector_log(change);
INSERT OR IGNORE INTO memory_vector_log (memory_id, change, present) SELECT memory_id, 0, 1 FROM memory_vectors;
CREATE TRIGGER IF NOT EXISTS memory_vectors_log_insert AFTER INSERT ON memory_vectors BEGIN
    UPDATE memorygraph_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_changes';
    INSERT OR REPLACE INTO memory_vector_log (memory_id, change, present)
        VALUES (new.memory_id, (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'vector_changes'), 1);
END;
CREATE TRIGGER IF NOT EXISTS memory_vectors_log_update AFTER UPDATE ON memory_vectors BEGIN
    UPDATE memorygraph_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_changes';
    INSERT OR REPLACE INTO memory_vector_log (memory_id, change, present)
        VALUES (old.memory_id, (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'vector_changes'), 0);
    INSERT OR REPLACE INTO memory_vector_log (memory_id, change, present)
        VALUES (new.memory_id, (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'vector_changes'), 1);
END;
CREATE TRIGGER IF NOT EXISTS memory_vectors_log_delete AFTER DELETE ON memory_vectors BEGIN
    UPDATE memorygraph_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_changes';
    INSERT OR REPLACE INTO memory_vector_log (memory_id, change, present)
        VALUES (old.memory_id, (SELECT CAST(value AS INTEGER) FROM memorygraph_meta WHERE key = 'vector_changes'), 0);
END;
"#;

/// What changed among memories and relationships, in order, for replica mode's sync (see
/// `sync/feed.rs`): every insert, update and delete of a `nodes` or `relationships` row, by
/// any writer (memorygraph, MemoryGraph, a shell), adds the row's kind and id under a growing
/// `seq`. On the primary the feed tells each device what to copy into its working file; in
/// a working file it lists what this machine changed and has not pushed yet. Rows a pull
/// copies from the primary are not listed (`memorygraph_meta.applying_pull`, set only inside
/// that transaction). Pruned as its readers move past it.
fn change_feed() -> String {
    let mut sql = String::from(
        r#"
CREATE TABLE IF NOT EXISTS memorygraph_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    row_id TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS idx_memorygraph_feed_row ON memorygraph_feed(row_id, seq);
INSERT OR IGNORE INTO memorygraph_meta (key, value) VALUES ('applying_pull', '0');
"#,
    );
    for (table, kind) in [("nodes", "node"), ("relationships", "relationship")] {
        for (event, rows) in [
            ("INSERT", vec!["new.id"]),
            ("UPDATE", vec!["old.id", "new.id"]),
            ("DELETE", vec!["old.id"]),
        ] {
            let inserts: String = rows
                .iter()
                .enumerate()
                .map(|(i, row)| {
                    let guard = if i == 1 { " WHERE new.id IS NOT old.id" } else { "" };
                    format!(
                        "    INSERT INTO memorygraph_feed (kind, row_id) SELECT '{kind}', {row}{guard};\n"
                    )
                })
                .collect();
            sql.push_str(&format!(
                "CREATE TRIGGER IF NOT EXISTS memorygraph_feed_{table}_{event} AFTER {event} ON {table}
WHEN (SELECT value FROM memorygraph_meta WHERE key = 'applying_pull') IS NOT '1'
BEGIN
{inserts}END;
",
                event = event.to_lowercase()
            ));
        }
    }
    sql
}

/// The answers of writes forwarded to the database's owner, by call key: a call resent
/// after the owner went away is answered from here instead of applied twice. Local to this
/// file (no feed trigger): retries reach the same file.
const CALLS: &str = r#"
CREATE TABLE IF NOT EXISTS memorygraph_calls (
    key TEXT PRIMARY KEY,
    tool TEXT NOT NULL,
    answer TEXT NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"#;

/// Which device wrote which range of the primary's change feed, written by each push in
/// the transaction that makes the range. A device whose process was killed after its push
/// committed but before it recorded the push finds its own range here, so its next pull
/// does not take those rows for another device's changes (which would turn a newer local
/// change of the same row into a conflict). Read on the primary and its replica only.
const PUSH_LOG: &str = r#"
CREATE TABLE IF NOT EXISTS memorygraph_pushes (
    device TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS memorygraph_pushes_device ON memorygraph_pushes (device, last_seq);
"#;

/// Each memory's tags, lower-cased and trimmed as the tag filter compares them, one row per
/// tag: a filter on tags reads the memories holding them instead of every memory's JSON (a
/// listing by one tag took 14 s at a million memories). Triggers keep it exact for every
/// writer, as they do the full-text index; a value that is not JSON has no tags. The
/// upgrade fills it in the index's order (18 s against 28 s unsorted for a million memories
/// with 3.5 million tags).
const TAG_INDEX: &str = r#"
CREATE TABLE IF NOT EXISTS memory_tags (
    tag TEXT NOT NULL,
    rid INTEGER NOT NULL,
    PRIMARY KEY (tag, rid)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS memory_tags_after_insert AFTER INSERT ON nodes
WHEN new.label = 'Memory' BEGIN
    INSERT OR IGNORE INTO memory_tags (tag, rid)
    SELECT lower(trim(t.value)), new.rowid FROM json_each(
        CASE WHEN json_valid(new.properties) THEN new.properties ELSE '{}' END, '$.tags') t;
END;
CREATE TRIGGER IF NOT EXISTS memory_tags_after_delete AFTER DELETE ON nodes
WHEN old.label = 'Memory' BEGIN
    DELETE FROM memory_tags WHERE rid = old.rowid AND tag IN (
        SELECT lower(trim(t.value)) FROM json_each(
            CASE WHEN json_valid(old.properties) THEN old.properties ELSE '{}' END, '$.tags') t);
END;
CREATE TRIGGER IF NOT EXISTS memory_tags_after_update AFTER UPDATE OF label, properties ON nodes BEGIN
    DELETE FROM memory_tags WHERE old.label = 'Memory' AND rid = old.rowid AND tag IN (
        SELECT lower(trim(t.value)) FROM json_each(
            CASE WHEN json_valid(old.properties) THEN old.properties ELSE '{}' END, '$.tags') t);
    INSERT OR IGNORE INTO memory_tags (tag, rid)
    SELECT lower(trim(t.value)), new.rowid FROM json_each(
        CASE WHEN json_valid(new.properties) THEN new.properties ELSE '{}' END, '$.tags') t
    WHERE new.label = 'Memory';
END;
INSERT OR IGNORE INTO memory_tags (tag, rid)
SELECT lower(trim(t.value)), n.rowid FROM nodes n, json_each(
    CASE WHEN json_valid(n.properties) THEN n.properties ELSE '{}' END, '$.tags') t
WHERE n.label = 'Memory' ORDER BY 1, 2;
"#;

/// The migrations in order; migration `i` (1-based) brings the file to `user_version = i`.
/// A migration: its name and a function writing its SQL.
type Migration = (&'static str, fn() -> String);

const MIGRATIONS: &[Migration] = &[
    ("MemoryGraph tables", || MEMORYGRAPH_SCHEMA.to_string()),
    ("full-text index over memories", full_text_index),
    ("indexes for filters and graph walks", || {
        QUERY_INDEXES.to_string()
    }),
    ("vocabulary for typo correction, usage counts", || {
        VOCABULARY_AND_USAGE.to_string()
    }),
    ("an id and a change count for the database", identity),
    ("vectors for semantic recall", || VECTORS.to_string()),
    ("no indexes nothing reads", || UNREAD_INDEXES.to_string()),
    ("a log of vector changes, for in-memory copies", || {
        VECTOR_CHANGES.to_string()
    }),
    ("a feed of changed rows, for sync", change_feed),
    ("answers to forwarded writes, for retries", || {
        CALLS.to_string()
    }),
    ("a log of which device pushed what, for recovery", || {
        PUSH_LOG.to_string()
    }),
    ("an index of tags, for filters", || TAG_INDEX.to_string()),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Reads the file's schema version. Written as a query, not a pragma statement: a replica
/// sends pragma statements to the primary, which fails while the primary is away.
pub async fn version(conn: &Connection) -> Result<i64> {
    super::scalar_i64(
        conn,
        "SELECT user_version FROM pragma_user_version()",
        vec![],
        "reading the schema version",
    )
    .await
}

/// Brings the file up to [`SCHEMA_VERSION`], one transaction per step. Safe to run from two
/// processes at once: each step re-reads the version under the write lock.
pub async fn migrate(conn: &Connection) -> Result<()> {
    loop {
        let done = super::in_write(conn, "upgrading the schema", async |tx| {
            let current = version(tx).await?;
            if current > SCHEMA_VERSION {
                return Err(BackendError::NewerSchema {
                    found: current,
                    supported: SCHEMA_VERSION,
                });
            }
            if current < 0 {
                return Err(BackendError::Refused(format!(
                    "the database file says its schema version (PRAGMA user_version) is {current}; no version of \
                     memorygraph or MemoryGraph writes a negative one, so another program changed it. Every upgrade \
                     step is safe to repeat: after a backup, `sqlite3 FILE 'PRAGMA user_version = 0'` lets \
                     memorygraph upgrade it again"
                )));
            }
            if current == SCHEMA_VERSION {
                return Ok(true);
            }
            let (name, sql) = MIGRATIONS[current as usize];
            tracing::info!(from = current, to = current + 1, "upgrading schema: {name}");
            tx.execute_batch(&sql())
                .await
                .doing("upgrading the schema")?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", current + 1))
                .await
                .doing("recording the schema version")?;
            Ok(false)
        })
        .await?;
        if done {
            return Ok(());
        }
    }
}

/// Rebuilds the full-text index from the memories, e.g. after the file was edited by a tool
/// that bypassed the triggers.
pub async fn rebuild_full_text_index(conn: &Connection) -> Result<()> {
    conn.execute("INSERT INTO memory_fts(memory_fts) VALUES ('rebuild')", ())
        .await
        .doing("rebuilding the full-text index")?;
    Ok(())
}

/// A database in memory with the whole schema, for unit tests.
#[cfg(test)]
pub(crate) async fn test_database() -> (libsql::Database, Connection) {
    let db = libsql::Builder::new_local(":memory:")
        .build()
        .await
        .expect("an in-memory database");
    let conn = db.connect().expect("a connection");
    migrate(&conn).await.expect("the schema");
    (db, conn)
}
