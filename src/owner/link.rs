//! A connection to the database's owner that survives the owner. Messages go in and come
//! out as JSON-RPC lines; in between, the link remembers what the session needs to go on
//! with another owner: the client's `initialize` and `initialized`, and every request not
//! answered yet. When the owner goes away, the link takes the database over itself (or
//! waits for the process that did), sends the handshake again (its answer is dropped), and
//! resends the unanswered requests. A write sent again carries the same call key, so the
//! new owner answers it from the record instead of applying it twice.
//!
//! An owner that stops answering is noticed: after [`STALL`] without any answer while a
//! request waits, the link pings it, and when the ping is not answered within [`PING_WAIT`]
//! every waiting request gets an error instead of waiting forever.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::hello::Hello;
use super::host::Hosted;
use super::{Place, running_owner, try_own};
use crate::config::Config;
use crate::mcp::CALL_KEY;
use crate::mcp::transport::{BoundedLines, Read};

/// How long a process waits for an owner that holds the lock but does not listen yet (it
/// may be upgrading a large file).
const OWNER_WAIT: Duration = Duration::from_secs(30);
/// Silence from the owner, while a request waits, after which it is pinged.
pub const STALL: Duration = Duration::from_secs(10);
/// How long a ping may go unanswered before the owner counts as stuck.
pub const PING_WAIT: Duration = Duration::from_secs(5);
/// Between two attempts to reach or take over an owner.
const RETRY: Duration = Duration::from_millis(20);
/// After an owner refused or could not be reached: calls are answered with the reason for
/// this long before the next attempt.
const RETRY_REFUSED: Duration = Duration::from_secs(1);

/// The ends of a link: lines to send to the owner, lines it answered.
pub struct Link {
    pub to_owner: mpsc::UnboundedSender<Vec<u8>>,
    pub from_owner: mpsc::UnboundedReceiver<Vec<u8>>,
    pub task: JoinHandle<Result<()>>,
}

/// Whether a link may make this process the owner when none is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Serve the database from this process when its owner is gone (servers).
    Allowed,
    /// Give up instead (a CLI command falls back to opening the file itself).
    Never,
}

/// Starts a link. It ends once `to_owner` is closed and every request was answered, or when
/// `stop` turns true; a database this process took over is closed then.
pub fn open(config: Config, place: Place, takeover: Takeover, stop: watch::Receiver<bool>) -> Link {
    let (to_owner, inbox) = mpsc::unbounded_channel();
    let (outbox, from_owner) = mpsc::unbounded_channel();
    let state = Session {
        config,
        place,
        takeover,
        outbox,
        init: None,
        initialized: None,
        waiting: BTreeMap::new(),
        order: 0,
        swallowed: HashSet::new(),
        replays: 0,
        last_heard: Instant::now(),
        ping: None,
        hosted: None,
    };
    let task = tokio::spawn(state.drive(inbox, stop));
    Link {
        to_owner,
        from_owner,
        task,
    }
}

/// A request sent and not answered yet.
struct Waiting {
    id: Value,
    line: Vec<u8>,
    sent: Instant,
}

struct Session {
    config: Config,
    place: Place,
    takeover: Takeover,
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    /// The client's `initialize` request, once answered (to replay to a new owner).
    init: Option<Value>,
    initialized: Option<Vec<u8>>,
    /// Unanswered requests by order of sending; `key_of` finds one by id.
    waiting: BTreeMap<u64, Waiting>,
    order: u64,
    /// Ids whose answers are dropped: the link's own requests (replayed handshakes,
    /// pings), and requests already answered with an error because the owner was stuck.
    swallowed: HashSet<String>,
    replays: u64,
    last_heard: Instant,
    /// The id and time of the ping in flight.
    ping: Option<(String, Instant)>,
    hosted: Option<Hosted>,
}

fn id_key(id: &Value) -> String {
    id.to_string()
}

impl Session {
    async fn drive(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Vec<u8>>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<()> {
        let mut inbox_open = true;
        let mut first = true;
        let outcome = 'connection: loop {
            if !inbox_open && self.waiting.is_empty() {
                break Ok(());
            }
            let stream = tokio::select! {
                stream = self.connect() => stream,
                _ = stop.changed() => break Ok(()),
            };
            let (mut from_owner, mut write) = match stream {
                Ok(connection) => connection,
                Err(e) if self.takeover == Takeover::Never => {
                    self.fail_waiting(&format!("{e:#}"));
                    break Err(e);
                }
                Err(e) => {
                    // Every call gets the reason until an owner serves this link again.
                    let why = format!("{e:#}");
                    tracing::warn!("{why}");
                    self.fail_waiting(&why);
                    if !self.refuse_for(RETRY_REFUSED, &mut inbox, &why).await {
                        inbox_open = false;
                    }
                    continue 'connection;
                }
            };
            self.last_heard = Instant::now();
            self.ping = None;
            if !first && !self.replay(&mut write).await {
                continue 'connection;
            }
            first = false;
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    line = inbox.recv(), if inbox_open => match line {
                        Some(line) => {
                            let line = self.note_outgoing(line);
                            if send(&mut write, &line).await.is_err() {
                                continue 'connection;
                            }
                        }
                        None => {
                            inbox_open = false;
                            if self.waiting.is_empty() {
                                break 'connection Ok(());
                            }
                        }
                    },
                    read = from_owner.next() => match read {
                        Ok(Read::Line(line)) => {
                            self.last_heard = Instant::now();
                            if self.note_incoming(&line) {
                                let _ = self.outbox.send(trim_newline(line));
                            }
                            if !inbox_open && self.waiting.is_empty() {
                                break 'connection Ok(());
                            }
                        }
                        Ok(Read::Oversized) => tracing::warn!("the owner sent a line over the size limit"),
                        Ok(Read::Eof) | Err(_) => {
                            tracing::info!("the process that owned the database went away; going on with the next");
                            continue 'connection;
                        }
                    },
                    _ = tick.tick() => {
                        if !self.check_stall(&mut write).await {
                            continue 'connection;
                        }
                    }
                    _ = stop.changed() => break 'connection Ok(()),
                }
            }
        };
        if let Some(hosted) = self.hosted.take()
            && let Err(e) = hosted.shut_down().await
        {
            tracing::warn!("closing the database failed: {e:#}");
        }
        outcome
    }

    /// Answers every request that arrives within `wait` with an error; false when the
    /// client went away.
    async fn refuse_for(
        &mut self,
        wait: Duration,
        inbox: &mut mpsc::UnboundedReceiver<Vec<u8>>,
        why: &str,
    ) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, inbox.recv()).await {
                Err(_) => return true,
                Ok(None) => return false,
                Ok(Some(line)) => {
                    self.note_outgoing(line);
                    self.fail_waiting(why);
                }
            }
        }
    }

    /// Reaches the owner (taking the database over when it has none and this link may) and
    /// says hello; gives the connection once the owner admitted it.
    async fn connect(&mut self) -> Result<(BoundedLines<OwnedReadHalf>, OwnedWriteHalf)> {
        // A dying owner may still take a connection and then close it: try again.
        for _ in 0..100 {
            if let Some(connection) = self.greet().await? {
                return Ok(connection);
            }
            tokio::time::sleep(RETRY).await;
        }
        bail!("the database's owner keeps closing every connection at once")
    }

    /// One attempt: `None` when the owner closed the connection before answering.
    async fn greet(&mut self) -> Result<Option<(BoundedLines<OwnedReadHalf>, OwnedWriteHalf)>> {
        let stream = self.reach().await?;
        let (read, mut write) = stream.into_split();
        let mut from_owner = BoundedLines::new(read);
        let hello = serde_json::to_string(&Hello::of(&self.config))?;
        if send(&mut write, hello.as_bytes()).await.is_err() {
            return Ok(None);
        }
        let reply = tokio::time::timeout(STALL + PING_WAIT, from_owner.next()).await;
        let line = match reply {
            Ok(Ok(Read::Line(line))) => line,
            Ok(_) => return Ok(None),
            Err(_) => {
                let pid = running_owner(&self.place)
                    .map(|o| format!(" (pid {})", o.pid))
                    .unwrap_or_default();
                bail!(
                    "the memorygraph process that holds {}{pid} does not answer; try again, or stop that process",
                    self.place.database.display()
                )
            }
        };
        let reply: Value = serde_json::from_slice(&line).unwrap_or_default();
        if let Some(why) = reply.get("memorygraph/refused").and_then(Value::as_str) {
            bail!("{why}");
        }
        Ok(Some((from_owner, write)))
    }

    async fn reach(&mut self) -> Result<UnixStream> {
        let deadline = Instant::now()
            + match self.takeover {
                Takeover::Allowed => OWNER_WAIT,
                Takeover::Never => Duration::from_secs(2),
            };
        loop {
            if let Some(stream) = super::connect(&self.place).await {
                return Ok(stream);
            }
            if self.takeover == Takeover::Allowed
                && self.hosted.is_none()
                && let Some(ownership) = try_own(&self.place)?
            {
                self.hosted = Some(Hosted::start(&self.config, ownership, true).await?);
                continue;
            }
            if Instant::now() > deadline {
                match running_owner(&self.place) {
                    Some(owner) => bail!(
                        "memorygraph process {} holds {} but does not answer on {}; stop it, or wait until it answers",
                        owner.pid,
                        self.place.database.display(),
                        self.place.socket.display()
                    ),
                    None => bail!(
                        "no memorygraph process serves {} any more",
                        self.place.database.display()
                    ),
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// Sends a new owner the handshake and the requests the last one left unanswered.
    async fn replay(&mut self, write: &mut OwnedWriteHalf) -> bool {
        let mut lines = Vec::new();
        if let Some(init) = &self.init {
            self.replays += 1;
            let id = format!("memorygraph-link-init-{}", self.replays);
            let mut again = init.clone();
            again["id"] = Value::String(id.clone());
            self.swallowed.insert(id_key(&Value::String(id)));
            lines.push(again.to_string().into_bytes());
            if let Some(initialized) = &self.initialized {
                lines.push(initialized.clone());
            }
        }
        let now = Instant::now();
        for waiting in self.waiting.values_mut() {
            waiting.sent = now;
            lines.push(waiting.line.clone());
        }
        if !lines.is_empty() {
            tracing::info!(
                resent = self.waiting.len(),
                "the session goes on with the database's new owner"
            );
        }
        for line in lines {
            if send(write, &line).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Records what a client's line means for a later owner, and gives the line to send
    /// (a tool call gains its call key).
    fn note_outgoing(&mut self, line: Vec<u8>) -> Vec<u8> {
        let Ok(mut message) = serde_json::from_slice::<Value>(&line) else {
            // Not JSON: the owner answers it as the stdio server would.
            return line;
        };
        let Some(object) = message.as_object() else {
            return line;
        };
        let method = object
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let id = object.get("id").cloned();
        let mut line = line;
        match (method.as_deref(), id) {
            (Some("notifications/initialized"), None) => self.initialized = Some(line.clone()),
            (Some("notifications/cancelled"), None) => {
                if let Some(cancelled) = message.pointer("/params/requestId") {
                    self.forget(&id_key(cancelled));
                }
            }
            (Some(method), Some(id)) => {
                if method == "tools/call"
                    && let Some(params) = message.get_mut("params").and_then(Value::as_object_mut)
                {
                    let meta = params.entry("_meta").or_insert_with(|| json!({}));
                    if let Some(meta) = meta.as_object_mut()
                        && !meta.contains_key(CALL_KEY)
                    {
                        meta.insert(
                            CALL_KEY.into(),
                            Value::String(uuid::Uuid::new_v4().to_string()),
                        );
                        line = message.to_string().into_bytes();
                    }
                }
                self.order += 1;
                self.waiting.insert(
                    self.order,
                    Waiting {
                        id,
                        line: line.clone(),
                        sent: Instant::now(),
                    },
                );
            }
            _ => {}
        }
        line
    }

    /// Notes an owner's line; false when it is the answer to the link's own request.
    fn note_incoming(&mut self, line: &[u8]) -> bool {
        let Ok(message) = serde_json::from_slice::<Value>(line) else {
            return true;
        };
        let is_answer = message.get("method").is_none()
            && (message.get("result").is_some() || message.get("error").is_some());
        let Some(id) = message.get("id").filter(|_| is_answer) else {
            return true;
        };
        let key = id_key(id);
        if self.swallowed.remove(&key) {
            if self.ping.as_ref().is_some_and(|(ping, _)| *ping == key) {
                self.ping = None;
            }
            return false;
        }
        if let Some(request) = self.forget(&key)
            && request.get("method").and_then(Value::as_str) == Some("initialize")
            && message.get("result").is_some()
        {
            self.init = Some(request);
        }
        true
    }

    /// Removes a waiting request by id; gives it back as JSON.
    fn forget(&mut self, key: &str) -> Option<Value> {
        let order = self
            .waiting
            .iter()
            .find(|(_, w)| id_key(&w.id) == key)
            .map(|(order, _)| *order)?;
        let waiting = self.waiting.remove(&order)?;
        serde_json::from_slice(&waiting.line).ok()
    }

    /// Pings an owner that has been silent while requests wait; answers them with an error
    /// when the ping goes unanswered. False when the connection broke.
    async fn check_stall(&mut self, write: &mut OwnedWriteHalf) -> bool {
        let oldest = self.waiting.values().map(|w| w.sent).min();
        let Some(oldest) = oldest else {
            return true;
        };
        if let Some((_, pinged)) = &self.ping {
            if pinged.elapsed() >= PING_WAIT {
                let pid = running_owner(&self.place)
                    .map(|o| format!(" (pid {})", o.pid))
                    .unwrap_or_default();
                self.fail_waiting(&format!(
                    "the memorygraph process that holds {}{pid} has not answered for {} s; this call did not complete \
                     (a write may or may not have been applied): try again, or stop that process",
                    self.place.database.display(),
                    self.last_heard.elapsed().as_secs()
                ));
                self.ping = None;
            }
            return true;
        }
        if oldest.elapsed() >= STALL && self.last_heard.elapsed() >= STALL {
            self.replays += 1;
            let id = format!("memorygraph-link-ping-{}", self.replays);
            let key = id_key(&Value::String(id.clone()));
            self.swallowed.insert(key.clone());
            self.ping = Some((key, Instant::now()));
            let ping = json!({"jsonrpc": "2.0", "id": id, "method": "ping"});
            return send(write, ping.to_string().as_bytes()).await.is_ok();
        }
        true
    }

    /// Answers every waiting request with an error.
    fn fail_waiting(&mut self, why: &str) {
        for waiting in std::mem::take(&mut self.waiting).into_values() {
            self.swallowed.insert(id_key(&waiting.id));
            let error = json!({"jsonrpc": "2.0", "id": waiting.id, "error": {"code": -32603, "message": why}});
            let _ = self.outbox.send(error.to_string().into_bytes());
        }
    }
}

fn trim_newline(mut line: Vec<u8>) -> Vec<u8> {
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    line
}

async fn send(write: &mut OwnedWriteHalf, line: &[u8]) -> std::io::Result<()> {
    let line = trim_newline(line.to_vec());
    let mut framed = Vec::with_capacity(line.len() + 1);
    framed.extend_from_slice(&line);
    framed.push(b'\n');
    write.write_all(&framed).await
}
