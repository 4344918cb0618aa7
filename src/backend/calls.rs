//! Answers to writes that carried a call key, kept one day. A process that forwards calls
//! to the database's owner resends a call the owner may have applied just before it went
//! away; the new owner finds the key here and answers as the first time, instead of
//! applying the write twice.
//!
//! The key is written in the write's own transaction (marked "applied", with what the
//! write did), and the full answer replaces the mark once it is built. An owner killed
//! between the two leaves the mark: the write is known to have happened even though its
//! answer was never kept, so it is never applied a second time.

use std::future::Future;
use std::sync::Mutex;

use libsql::Connection;
use serde_json::Value;

use super::error::{DbContext, Result};
use super::{TursoBackend, first_row};

/// How long an answer is kept: far longer than any hand-over between owners takes.
const KEPT: &str = "-1 day";

/// The field of a mark left by a write whose answer is not recorded yet.
const APPLIED: &str = "memorygraph/applied";

tokio::task_local! {
    /// The keyed write tool call running on this task, if any.
    static CALL: KeyedCall;
}

/// A keyed write tool call: its key, its tool, and what its write did (for the mark).
struct KeyedCall {
    key: String,
    tool: String,
    outcome: Mutex<Value>,
}

/// What the database holds for a call key.
#[derive(Debug, PartialEq)]
pub enum RecordedCall {
    /// The answer the call got, as JSON text.
    Answer(String),
    /// The write was applied, but its answer was never recorded; the value is what the
    /// write noted of itself (see [`note_outcome`]), `null` if nothing.
    Applied(Value),
}

/// Runs a tool call with its key (when it has one), so that the write it makes records
/// the key in the same transaction.
pub async fn keyed<F: Future>(call: Option<(String, String)>, body: F) -> F::Output {
    match call {
        Some((key, tool)) => {
            let call = KeyedCall {
                key,
                tool,
                outcome: Mutex::new(Value::Null),
            };
            CALL.scope(call, body).await
        }
        None => body.await,
    }
}

/// Keeps what a keyed write did, for the answer to a resend whose first answer was lost
/// (a delete cannot be run again to find out).
pub(super) fn note_outcome(outcome: Value) {
    let _ = CALL.try_with(|call| *call.outcome.lock().expect("call outcome lock") = outcome);
}

/// Marks the running keyed call as applied, inside the write's transaction.
pub(super) async fn mark_applied(tx: &Connection) -> Result<()> {
    let Ok((key, tool, mark)) = CALL.try_with(|call| {
        let outcome = call.outcome.lock().expect("call outcome lock").clone();
        let mark = serde_json::json!({ APPLIED: outcome }).to_string();
        (call.key.clone(), call.tool.clone(), mark)
    }) else {
        return Ok(());
    };
    tx.execute(
        "INSERT OR IGNORE INTO memorygraph_calls (key, tool, answer) VALUES (?1, ?2, ?3)",
        [key, tool, mark],
    )
    .await
    .doing("marking a call as applied")?;
    Ok(())
}

impl TursoBackend {
    /// What the database holds for a call key: its answer, or a mark that it was applied.
    pub async fn recorded_call(&self, key: &str) -> Result<Option<RecordedCall>> {
        let conn = self.conn.lock().await;
        let row = first_row(
            &conn,
            "SELECT answer FROM memorygraph_calls WHERE key = ?1",
            [key],
            "reading a recorded call",
        )
        .await?;
        Ok(row.map(|r| read_recorded(r.text(0))))
    }

    /// Records a write's answer under its call key (replacing its mark), and forgets
    /// answers older than a day.
    pub async fn record_call(&self, key: &str, tool: &str, answer: &str) -> Result<()> {
        let conn = self.conn.lock().await;
        conn.execute(
            "INSERT OR REPLACE INTO memorygraph_calls (key, tool, answer) VALUES (?1, ?2, ?3)",
            [key, tool, answer],
        )
        .await
        .doing("recording a call's answer")?;
        conn.execute(
            &format!(
                "DELETE FROM memorygraph_calls WHERE at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '{KEPT}')"
            ),
            (),
        )
        .await
        .doing("forgetting old call answers")?;
        Ok(())
    }
}

fn read_recorded(text: String) -> RecordedCall {
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut mark)) if mark.len() == 1 && mark.contains_key(APPLIED) => {
            RecordedCall::Applied(mark.remove(APPLIED).unwrap_or_default())
        }
        _ => RecordedCall::Answer(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::BackendOptions;
    use crate::model::NewMemory;

    fn key(name: &str, tool: &str) -> Option<(String, String)> {
        Some((name.to_string(), tool.to_string()))
    }

    /// What an owner killed right after a keyed write committed leaves behind: the mark,
    /// with what the write noted; a refused write leaves nothing.
    #[tokio::test]
    async fn a_keyed_write_marks_its_key_in_its_own_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let backend = TursoBackend::open(BackendOptions::local(dir.path().join("m.db")))
            .await
            .unwrap();
        let new = NewMemory::validate("general", "kept", "a body", None, None, None, None).unwrap();
        let stored = keyed(key("s", "store_memory"), backend.store_memory(new, None))
            .await
            .unwrap();
        assert_eq!(
            backend.recorded_call("s").await.unwrap(),
            Some(RecordedCall::Applied(Value::Null))
        );
        let id = stored.memory.id;
        keyed(key("d", "delete_memory"), backend.delete_memory(&id))
            .await
            .unwrap();
        assert_eq!(
            backend.recorded_call("d").await.unwrap(),
            Some(RecordedCall::Applied(0.into()))
        );
        let refused = keyed(key("r", "delete_memory"), backend.delete_memory(&id)).await;
        assert!(refused.is_err());
        assert_eq!(backend.recorded_call("r").await.unwrap(), None);
        // The answer, once built, replaces the mark.
        backend
            .record_call("d", "delete_memory", "{}")
            .await
            .unwrap();
        assert_eq!(
            backend.recorded_call("d").await.unwrap(),
            Some(RecordedCall::Answer("{}".into()))
        );
    }

    #[test]
    fn a_mark_and_an_answer_are_told_apart() {
        let mark = serde_json::json!({ APPLIED: 3 }).to_string();
        assert_eq!(read_recorded(mark), RecordedCall::Applied(3.into()));
        let answer = r#"{"content":[],"isError":false}"#.to_string();
        assert_eq!(read_recorded(answer.clone()), RecordedCall::Answer(answer));
    }
}
