//! A stdio server on a database another process owns: it reads its client's lines, sends
//! them through a [`Link`](super::link) to the owner, and writes the owner's answers back.
//! It holds no database, no model and no vectors; when the owner goes away it becomes the
//! owner itself or follows the process that did, and its client does not notice.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use super::Place;
use super::link::{self, Takeover};
use crate::config::Config;
use crate::mcp::transport::{BoundedLines, Read, oversized_error, write_lines};
use crate::open::shutdown_signal;

/// Forwards stdin to the owner and its answers to stdout until the client leaves.
pub async fn run(config: Config, place: Place) -> Result<()> {
    match super::running_owner(&place) {
        Some(owner) => tracing::info!(
            "{} is owned by memorygraph process {} (version {}); this one forwards its client to it",
            place.database.display(),
            owner.pid,
            owner.version
        ),
        None => tracing::info!(
            "{} has an owner; forwarding to it",
            place.database.display()
        ),
    }
    let (stop, stopped) = watch::channel(false);
    let link = link::open(config, place, Takeover::Allowed, stopped);
    let (out, lines_out) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_lines(tokio::io::stdout(), lines_out));
    let mut from_owner = link.from_owner;
    let answers = out.clone();
    let forward = tokio::spawn(async move {
        while let Some(line) = from_owner.recv().await {
            if answers.send(line).is_err() {
                break;
            }
        }
    });
    let mut stdin = BoundedLines::new(tokio::io::stdin());
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            read = stdin.next() => match read {
                Ok(Read::Line(line)) => {
                    if !line.trim_ascii().is_empty() && link.to_owner.send(line).is_err() {
                        break;
                    }
                }
                Ok(Read::Oversized) => {
                    let _ = out.send(oversized_error().to_string().into_bytes());
                }
                Ok(Read::Eof) => break,
                Err(e) => {
                    tracing::warn!("stdin failed: {e}");
                    break;
                }
            },
            reason = &mut signal => {
                tracing::info!("{reason}: shutting down");
                let _ = stop.send(true);
                break;
            }
        }
    }
    drop(link.to_owner);
    let ended = link.task.await;
    let _ = forward.await;
    drop(out);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    ended?
}
