//! Answers to writes that carried a call key, kept one day. A process that forwards calls
//! to the database's owner resends a call the owner may have applied just before it went
//! away; the new owner finds the key here and answers as the first time, instead of
//! applying the write twice.

use super::error::{DbContext, Result};
use super::{TursoBackend, first_row};

/// How long an answer is kept: far longer than any hand-over between owners takes.
const KEPT: &str = "-1 day";

impl TursoBackend {
    /// The answer recorded for a call key, as JSON text.
    pub async fn recorded_call(&self, key: &str) -> Result<Option<String>> {
        let conn = self.conn.lock().await;
        let row = first_row(
            &conn,
            "SELECT answer FROM memorygraph_calls WHERE key = ?1",
            [key],
            "reading a recorded call",
        )
        .await?;
        Ok(row.map(|r| r.text(0)))
    }

    /// Records a write's answer under its call key, and forgets answers older than a day.
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
