//! Commands that ask one MCP tool, in-process: the tool checks the input and builds the
//! answer; the command prints the tool's text, or with `--json` its structured answer.

use std::sync::Arc;

use anyhow::{Result, anyhow};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::config::Config;
use crate::mcp::MemoryServer;
use crate::open;

/// A tool's answer, or its error text.
type ToolResult = std::result::Result<rmcp::model::CallToolResult, String>;
use crate::model::{MemoryType, RelationshipType, limits};

fn memory_type(s: &str) -> Result<String, String> {
    s.parse::<MemoryType>()
        .map(|t| t.as_str().to_string())
        .map_err(|e| e.rule)
}

fn relationship_type(s: &str) -> Result<String, String> {
    RelationshipType::parse_field("type", s)
        .map(|t| t.as_str().to_string())
        .map_err(|e| e.rule)
}

/// An importance from 0.0 to 1.0: a value outside is a usage mistake (exit 2), found before
/// the database is opened.
fn unit_interval(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err("not a number from 0.0 to 1.0".into()),
    }
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The kind of memory: task, code_pattern, problem, solution, project, technology,
    /// error, fix, command, file_context, workflow, general, conversation.
    #[arg(long = "type", value_name = "TYPE", value_parser = memory_type)]
    memory_type: String,
    /// A short, specific title (1–200 characters).
    #[arg(long)]
    title: String,
    /// The text worth remembering; `-` reads it from stdin.
    #[arg(long)]
    content: String,
    /// One or two sentences.
    #[arg(long)]
    summary: Option<String>,
    /// A keyword; repeat or separate with commas.
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    tags: Vec<String>,
    /// 0.0–1.0; higher ranks first [default: 0.5].
    #[arg(long, value_name = "N", value_parser = unit_interval)]
    importance: Option<f64>,
    /// The project the memory belongs to (its context's project_path).
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// The id of a memory this one replaces.
    #[arg(long, value_name = "ID")]
    supersedes: Option<String>,
    /// Store it even if it looks like it holds a secret (a private key, an access token).
    #[arg(long)]
    allow_secrets: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The memory's id.
    id: String,
    /// Leave out the memory's relationships.
    #[arg(long)]
    no_relationships: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to look for (typos are forgiven).
    query: Option<String>,
    /// Only memories of this type; repeat for several.
    #[arg(long = "type", value_name = "TYPE", value_parser = memory_type)]
    types: Vec<String>,
    /// Only memories with this tag; repeat for several (any of them matches).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Only memories of this project.
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// Only memories at least this important (0.0–1.0).
    #[arg(long, value_name = "N", value_parser = unit_interval)]
    min_importance: Option<f64>,
    /// Whether any or all of the words must match [default: memories with every word
    /// first, then those with some].
    #[arg(long = "match", value_name = "MODE", value_parser = ["any", "all"])]
    match_mode: Option<String>,
    /// How forgiving to be with spelling [default: normal].
    #[arg(long, value_parser = ["strict", "normal", "fuzzy"])]
    tolerance: Option<String>,
    /// Results per page, 1–1000 [default: 50].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: Option<i64>,
    /// Results to skip, for the next page (at most 1,000,000) [default: 0].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    offset: Option<i64>,
    /// By words (lexical), by meaning (semantic) or both (hybrid) [default: hybrid once the
    /// model is installed, else lexical].
    #[arg(long, value_parser = ["lexical", "semantic", "hybrid"])]
    mode: Option<String>,
}

#[derive(Debug, Args)]
pub struct RecallArgs {
    /// A question or topic in plain words.
    query: String,
    /// Only memories of this type; repeat for several.
    #[arg(long = "type", value_name = "TYPE", value_parser = memory_type)]
    types: Vec<String>,
    /// Only memories of this project.
    #[arg(long, value_name = "PATH")]
    project: Option<String>,
    /// Results per page, 1–1000 [default: 20].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=1000))]
    limit: Option<i64>,
    /// Results to skip, for the next page (at most 1,000,000) [default: 0].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(0..=1_000_000))]
    offset: Option<i64>,
}

#[derive(Debug, Args)]
pub struct RelatedArgs {
    /// The memory to start from.
    id: String,
    /// Follow only relationships of this type; repeat for several.
    #[arg(long = "type", value_name = "TYPE", value_parser = relationship_type)]
    types: Vec<String>,
    /// How many hops to follow, 1–5 [default: 2].
    #[arg(
        long,
        value_name = "N",
        value_parser = clap::value_parser!(i64).range(1..=i64::from(limits::MAX_DEPTH))
    )]
    depth: Option<i64>,
}

/// Arguments with the unset ones left out, so the tool applies its own defaults.
struct Arguments(Map<String, Value>);

impl Arguments {
    fn new() -> Self {
        Arguments(Map::new())
    }

    fn set(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    fn maybe<T: Into<Value>>(self, key: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    fn list(self, key: &str, values: Vec<String>) -> Self {
        if values.is_empty() {
            self
        } else {
            self.set(key, values)
        }
    }
}

/// Runs one tool and prints the answer: through the database's owner when a server holds
/// it, else on the file itself. A tool error becomes a failure (exit code 1) with the
/// tool's message.
async fn ask(config: Config, tool: &str, arguments: Arguments, json: bool) -> Result<Value> {
    let (answer, unsynced) = match through_owner(&config, tool, &arguments).await? {
        Some(answered) => answered,
        None => on_the_file(&config, tool, arguments).await?,
    };
    let answer = answer.map_err(|message| anyhow!(message))?;
    let structured = answer.structured_content.clone().unwrap_or(Value::Null);
    if json {
        println!("{}", serde_json::to_string_pretty(&structured)?);
    } else {
        for block in &answer.content {
            if let Some(text) = block.as_text() {
                println!("{}", text.text.trim_end());
            }
        }
    }
    if unsynced && crate::mcp::is_read(tool) {
        return Err(anyhow!(
            "this database has not synced with its primary yet (it has been unreachable since replica mode began here), \
             so the answer above holds only this machine's memories; run `memorygraph sync` once the primary is reachable"
        ));
    }
    Ok(structured)
}

/// A tool's answer, and whether it comes from a database that never synced.
type Answered = (ToolResult, bool);

/// Asks the running owner, if there is one. Its answers to reads of a never-synced
/// database end with a note, which becomes the command's failure instead.
#[cfg(unix)]
async fn through_owner(
    config: &Config,
    tool: &str,
    arguments: &Arguments,
) -> Result<Option<Answered>> {
    let answer =
        crate::owner::client::call_tool(config, tool, Value::Object(arguments.0.clone())).await?;
    Ok(answer.map(|answer| {
        let mut unsynced = false;
        let answer = answer.map(|mut result| {
            result.content.retain(|block| {
                let note = block
                    .as_text()
                    .is_some_and(|t| t.text == crate::mcp::FIRST_SYNC_NOTE);
                unsynced |= note;
                !note
            });
            result
        });
        (answer, unsynced)
    }))
}

#[cfg(not(unix))]
async fn through_owner(_: &Config, _: &str, _: &Arguments) -> Result<Option<Answered>> {
    Ok(None)
}

/// Opens the database, runs the tool in this process, and closes the database.
async fn on_the_file(config: &Config, tool: &str, arguments: Arguments) -> Result<Answered> {
    let backend = Arc::new(open::open_backend(config).await?);
    if matches!(tool, "search_memories" | "recall_memories") {
        // Semantic recall, when the model is installed (≈0.1–0.2 s to load).
        backend.load_model().await;
    }
    let server = MemoryServer::new(backend.clone(), open::server_settings(config));
    let answer = server
        .call_tool_directly(tool, Value::Object(arguments.0))
        .await;
    drop(server);
    // A database that has never synced with its primary holds only this machine's part.
    let unsynced = backend
        .sync_status()
        .await
        .is_some_and(|s| !s.first_sync_done);
    open::close(backend).await?;
    Ok((answer, unsynced))
}

pub async fn store(config: Config, a: StoreArgs, json: bool) -> Result<()> {
    let content = if a.content == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        a.content
    };
    let args = Arguments::new()
        .set("type", a.memory_type)
        .set("title", a.title)
        .set("content", content)
        .maybe("summary", a.summary)
        .list("tags", a.tags)
        .maybe("importance", a.importance)
        .maybe("supersedes", a.supersedes)
        .maybe("context", a.project.map(|p| json!({ "project_path": p })))
        .maybe("allow_secrets", a.allow_secrets.then_some(true));
    ask(config, "store_memory", args, json).await.map(drop)
}

pub async fn get(config: Config, a: GetArgs, json: bool) -> Result<()> {
    let args = Arguments::new()
        .set("memory_id", a.id)
        .set("include_relationships", !a.no_relationships);
    ask(config, "get_memory", args, json).await.map(drop)
}

pub async fn search(config: Config, a: SearchArgs, json: bool) -> Result<()> {
    let args = Arguments::new()
        .maybe("query", a.query)
        .list("memory_types", a.types)
        .list("tags", a.tags)
        .maybe("project_path", a.project)
        .maybe("min_importance", a.min_importance)
        .maybe("match_mode", a.match_mode)
        .maybe("search_tolerance", a.tolerance)
        .maybe("limit", a.limit)
        .maybe("offset", a.offset)
        .maybe("mode", a.mode);
    ask(config, "search_memories", args, json).await.map(drop)
}

pub async fn recall(config: Config, a: RecallArgs, json: bool) -> Result<()> {
    let args = Arguments::new()
        .set("query", a.query)
        .list("memory_types", a.types)
        .maybe("project_path", a.project)
        .maybe("limit", a.limit)
        .maybe("offset", a.offset);
    ask(config, "recall_memories", args, json).await.map(drop)
}

pub async fn related(config: Config, a: RelatedArgs, json: bool) -> Result<()> {
    let args = Arguments::new()
        .set("memory_id", a.id)
        .list("relationship_types", a.types)
        .maybe("max_depth", a.depth);
    ask(config, "get_related_memories", args, json)
        .await
        .map(drop)
}

/// A tool without arguments (statistics, health).
pub async fn simple(config: Config, tool: &str, json: bool) -> Result<()> {
    ask(config, tool, Arguments::new(), json).await.map(drop)
}

/// `sync --json`, or `sync` beside a running server: the sync tool's answer; a database
/// with nothing to sync is a failure, as it is for the plain `sync`.
pub async fn sync_tool(config: Config, json: bool) -> Result<()> {
    let answer = ask(config, "sync", Arguments::new(), json).await?;
    if answer.get("synced") == Some(&Value::Bool(true)) {
        Ok(())
    } else {
        Err(anyhow!(
            "nothing to sync: TURSO_DATABASE_URL is not set, so this is a local database"
        ))
    }
}
