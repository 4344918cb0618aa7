//! JSON-RPC over stdin/stdout, one message per line, answering what rmcp's own stdio
//! transport drops in silence: a line that is not JSON gets a `-32700` parse error, a JSON
//! value that is not a message gets `-32600`, and a line over the size limit is discarded
//! without buffering it whole and answered with `-32600`, and a request reusing the id of
//! one still in flight gets `-32600` (rmcp would drop it, leaving the client waiting). Every
//! outgoing line goes through one writer task, so replies never interleave.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

use rmcp::RoleServer;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The largest request line accepted: far above any legal tool call (content is capped at
/// 50,000 characters), far below what would strain memory.
pub const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

pub struct LineTransport<R> {
    lines: BoundedLines<R>,
    out: Option<mpsc::UnboundedSender<Vec<u8>>>,
    in_flight: InFlight,
    /// Requests of the 2026-07-28 era (protocol version in their own `_meta`): their results
    /// carry the server's identity in `_meta`, as that revision asks of every result.
    inline: InFlight,
}

/// Where a 2026-07-28 request names its protocol version, and a result names its server.
const PROTOCOL_VERSION_META: &str = "io.modelcontextprotocol/protocolVersion";
const SERVER_INFO_META: &str = "io.modelcontextprotocol/serverInfo";

/// The ids of requests received and not yet answered, as JSON text (`5` and `"5"` differ).
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<HashSet<String>>>);

impl InFlight {
    fn key(id: &impl serde::Serialize) -> String {
        serde_json::to_string(id).unwrap_or_default()
    }

    /// Records a new request's id; false when a request with that id is still in flight.
    fn begin(&self, id: &Value) -> bool {
        self.0.lock().unwrap().insert(Self::key(id))
    }

    /// Forgets an id; true when it was recorded.
    fn end(&self, id: &impl serde::Serialize) -> bool {
        self.0.lock().unwrap().remove(&Self::key(id))
    }
}

/// Starts the writer task and returns the transport plus the task, which ends once every
/// queued line is written and the transport is dropped.
pub fn line_transport<R, W>(read: R, write: W) -> (LineTransport<R>, JoinHandle<()>)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_lines(write, rx));
    (
        LineTransport {
            lines: BoundedLines::new(read),
            out: Some(tx),
            in_flight: InFlight::default(),
            inline: InFlight::default(),
        },
        writer,
    )
}

pub(crate) async fn write_lines<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    while let Some(mut line) = rx.recv().await {
        line.push(b'\n');
        if let Err(e) = write.write_all(&line).await {
            tracing::debug!("stdout closed: {e}");
            return;
        }
        if rx.is_empty()
            && let Err(e) = write.flush().await
        {
            tracing::debug!("stdout closed: {e}");
            return;
        }
    }
    let _ = write.flush().await;
}

/// What one read of a [`BoundedLines`] gives.
pub enum Read {
    Line(Vec<u8>),
    /// A line over [`MAX_LINE_BYTES`], discarded without being held whole.
    Oversized,
    Eof,
}

/// Lines of a byte stream, none held past [`MAX_LINE_BYTES`]: the stdio server and the
/// process that forwards a client to the database's owner read their client alike.
pub struct BoundedLines<R> {
    reader: BufReader<R>,
    line: Vec<u8>,
    discarding: bool,
}

impl<R: AsyncRead + Unpin> BoundedLines<R> {
    pub fn new(read: R) -> Self {
        BoundedLines {
            reader: BufReader::new(read),
            line: Vec::new(),
            discarding: false,
        }
    }

    /// Reads one line (with its newline) without letting it grow past the limit.
    /// Cancel-safe: bytes are only consumed from the reader after they are copied.
    pub async fn next(&mut self) -> io::Result<Read> {
        loop {
            let available = self.reader.fill_buf().await?;
            if available.is_empty() {
                return Ok(Read::Eof);
            }
            let (chunk, complete) = match available.iter().position(|b| *b == b'\n') {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let taken = chunk.len();
            if !self.discarding {
                if self.line.len() + taken > MAX_LINE_BYTES + 1 {
                    self.discarding = true;
                    self.line = Vec::new();
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.reader.consume(taken);
            if complete {
                if std::mem::take(&mut self.discarding) {
                    return Ok(Read::Oversized);
                }
                return Ok(Read::Line(std::mem::take(&mut self.line)));
            }
        }
    }
}

/// The answer to a line over the size limit, which has no id to answer to.
pub fn oversized_error() -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": format!(
        "Invalid Request: the message is larger than the {MAX_LINE_BYTES}-byte limit and was discarded"
    )}})
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    fn reply(&self, value: Value) {
        if let Some(out) = &self.out {
            let _ = out.send(value.to_string().into_bytes());
        }
    }

    fn reply_error(&self, id: Value, code: i64, message: &str) {
        self.reply(
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        );
    }

    /// Decodes one line, answering it directly when it is not a message rmcp can take.
    fn decode(&self, raw: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
        let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
        let value: Value = match serde_json::from_slice(raw) {
            Ok(v) => v,
            Err(e) => {
                let why = if std::str::from_utf8(raw).is_err() {
                    "Parse error: the line is not valid UTF-8".to_string()
                } else {
                    format!("Parse error: {e}")
                };
                self.reply_error(Value::Null, -32700, &why);
                return None;
            }
        };
        if value.is_array() {
            self.reply_error(
                Value::Null,
                -32600,
                "Invalid Request: JSON-RPC batches are not supported by MCP",
            );
            return None;
        }
        let id = value.get("id").cloned();
        let is_notification = id.is_none() && value.get("method").is_some();
        let is_request = value.get("method").is_some() && id.is_some();
        if is_request
            && value.get("method").and_then(Value::as_str) == Some("tools/call")
            && let Some(arguments) = value.pointer("/params/arguments")
            && !arguments.is_object()
            && !arguments.is_null()
        {
            let kind = match arguments {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                _ => "a boolean",
            };
            self.reply_error(
                id.unwrap_or(Value::Null),
                -32602,
                &format!("Invalid params: `arguments` must be an object (the tool's named arguments), got {kind}"),
            );
            return None;
        }
        let inline = value
            .pointer("/params/_meta")
            .and_then(|m| m.get(PROTOCOL_VERSION_META))
            .is_some();
        if value.get("method").and_then(Value::as_str) == Some("notifications/cancelled")
            && let Some(cancelled) = value.pointer("/params/requestId")
        {
            // A cancelled request may never be answered; its id is free again.
            self.in_flight.end(cancelled);
            self.inline.end(cancelled);
        }
        match serde_json::from_value::<RxJsonRpcMessage<RoleServer>>(value) {
            Ok(message) => {
                if let Some(id) = id.filter(|_| is_request) {
                    if !self.in_flight.begin(&id) {
                        self.reply_error(
                            id,
                            -32600,
                            "Invalid Request: a request with this id is still in flight; ids must be unique until answered",
                        );
                        return None;
                    }
                    if inline {
                        self.inline.begin(&id);
                    }
                }
                Some(message)
            }
            Err(e) => {
                if is_notification {
                    // Notifications get no answer, not even an error.
                    tracing::debug!("ignoring a notification rmcp does not know: {e}");
                } else {
                    let id = id
                        .filter(|v| v.is_string() || v.is_number())
                        .unwrap_or(Value::Null);
                    self.reply_error(id, -32600, &format!("Invalid Request: {e}"));
                }
                None
            }
        }
    }
}

impl<R: AsyncRead + Unpin + Send + 'static> Transport<RoleServer> for LineTransport<R> {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), io::Error>> + Send + 'static {
        let out = self.out.clone();
        let mut identify = false;
        match &item {
            TxJsonRpcMessage::<RoleServer>::Response(r) => {
                self.in_flight.end(&r.id);
                identify = self.inline.end(&r.id);
            }
            TxJsonRpcMessage::<RoleServer>::Error(e) => {
                if let Some(id) = &e.id {
                    self.in_flight.end(id);
                    self.inline.end(id);
                }
            }
            _ => {}
        }
        async move {
            let line = if identify {
                let mut value = serde_json::to_value(&item).map_err(io::Error::other)?;
                if let Some(result) = value.get_mut("result").and_then(Value::as_object_mut) {
                    let meta = result
                        .entry("_meta")
                        .or_insert_with(|| Value::Object(Default::default()));
                    if let Some(meta) = meta.as_object_mut() {
                        meta.entry(SERVER_INFO_META).or_insert_with(|| {
                            json!({"name": env!("CARGO_PKG_NAME"), "version": env!("CARGO_PKG_VERSION")})
                        });
                    }
                }
                serde_json::to_vec(&value).map_err(io::Error::other)?
            } else {
                serde_json::to_vec(&item).map_err(io::Error::other)?
            };
            out.ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "transport closed"))?
                .send(line)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "stdout closed"))
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let line = match self.lines.next().await {
                Ok(Read::Line(line)) => line,
                Ok(Read::Oversized) => {
                    self.reply(oversized_error());
                    continue;
                }
                Ok(Read::Eof) => return None,
                Err(e) => {
                    tracing::warn!("stdin failed: {e}");
                    return None;
                }
            };
            let trimmed = line.trim_ascii();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(message) = self.decode(trimmed) {
                return Some(message);
            }
        }
    }

    async fn close(&mut self) -> Result<(), io::Error> {
        self.out = None;
        Ok(())
    }
}
