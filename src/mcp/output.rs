//! The tools' structured answers (`structuredContent`), each published as an
//! `outputSchema`. Lists carry short memory briefs, never whole contents: only
//! `get_memory` returns a memory in full.

use schemars::JsonSchema;
use serde::Serialize;

use crate::backend::{
    BackendHealth, Backlog, Correction, MatchedBy, Neighbour, SemanticHealth, Statistics,
    SyncStatus,
};
use crate::model::{Memory, Relationship};

/// A memory without its content, for lists.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MemoryBrief {
    pub id: String,
    #[serde(rename = "type")]
    pub memory_type: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    pub tags: Vec<String>,
    pub importance: f64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_path: Option<String>,
}

impl From<&Memory> for MemoryBrief {
    fn from(m: &Memory) -> Self {
        MemoryBrief {
            id: m.id.clone(),
            memory_type: m.memory_type.clone(),
            title: m.title.clone(),
            summary: m.summary.clone(),
            tags: m.tags.clone(),
            importance: m.importance,
            created_at: m.created_at.clone(),
            updated_at: m.updated_at.clone(),
            project_path: m.project_path().map(str::to_string),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StoreMemoryOutput {
    pub memory_id: String,
    /// True when an identical memory (same type, title and content) already existed: its
    /// id is returned and nothing new was stored.
    pub duplicate: bool,
    /// True when the primary (replica mode) was unreachable: the store waits in the
    /// working file and reaches the primary when it is back.
    pub queued: bool,
    /// The memory this one replaces, when `supersedes` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    pub memory: MemoryBrief,
    /// Memories this one nearly repeats (most of their words in common): it was stored all
    /// the same; if it is the same lesson, update or supersede the older.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub similar: Vec<crate::backend::NearDuplicate>,
    /// The project it was stored in, and where that came from; absent: shared by every
    /// project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectReading>,
}

/// The session's project as a call used it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectReading {
    /// The project's root folder.
    pub path: String,
    pub source: crate::model::project::ProjectSource,
    /// Searches: `favoured` (every memory, this project's and the shared ones first) or
    /// `only` (this project's and the shared ones).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'static str>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GetMemoryOutput {
    /// The memory; a content longer than fits one answer is cut (see `content_next_offset`).
    pub memory: Memory,
    /// The content's length in characters.
    pub content_length: usize,
    /// Where this answer's part of the content starts, in characters.
    pub content_offset: usize,
    /// Pass as `content_offset` to read the rest of a long content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_next_offset: Option<usize>,
    /// Current relationships touching the memory, strongest first: one page of them
    /// (empty unless asked for).
    pub relationships: Vec<Relationship>,
    /// How many current relationships the memory has (0 when they are not listed: with
    /// `include_relationships: false`, or on a later part of the content without
    /// `relationships_offset`).
    pub relationships_total: usize,
    /// Where this page of relationships starts.
    pub relationships_offset: usize,
    /// Pass as `relationships_offset` for the next relationships.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relationships_next_offset: Option<usize>,
    /// When the memory replaced another or was replaced (`supersedes`): the chain of
    /// versions, newest first, this memory at `step` 0 (up to 10 on each side). Listed with
    /// the first part of the content.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<crate::backend::Version>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateMemoryOutput {
    pub memory_id: String,
    pub updated_fields: Vec<String>,
    /// True when the update waits on this machine for the primary (replica mode).
    pub queued: bool,
    pub memory: MemoryBrief,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteMemoryOutput {
    pub memory_id: String,
    pub deleted: bool,
    /// True when the delete waits on this machine for the primary (replica mode).
    pub queued: bool,
    pub relationships_removed: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchResult {
    #[serde(flatten)]
    pub memory: MemoryBrief,
    /// Text relevance (BM25; larger is better).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relevance: Option<f64>,
    /// Recall's blended score (relevance 60 %, importance 25 %, recency 15 %).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// A short excerpt around the matched words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// The memory that replaces this one; superseded memories rank below current ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Set on a neighbour recall added: the hit it is linked to, and how.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related_to: Option<Neighbour>,
    /// What found it: `lexical` (its words), `semantic` (its meaning) or `both`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchedBy>,
    /// Cosine similarity to the query, when found by meaning.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// Recall: other memories that say nearly the same as this one, folded into this hit.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub near_duplicates: Vec<crate::backend::Folded>,
}

/// How a time expression in the question was read ("last week", "in March").
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TimeReading {
    /// The words as written; they were not searched as words.
    pub phrase: String,
    /// The range in the user's time zone, in words: "from 2026-11-23 to 2026-11-29".
    pub reading: String,
    /// The range as instants (UTC): created at or after, created before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_before: Option<String>,
    /// Whether the range filtered the results: false when `created_after` or
    /// `created_before` was given, which win.
    pub applied: bool,
}

/// One page of results.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchOutput {
    pub results: Vec<SearchResult>,
    /// Set when the question held a time expression: how it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeReading>,
    /// The session's project, when there is one and the search did not ask for `scope:
    /// all`: how it weighed in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectReading>,
    /// All matches across pages; at least this many when `total_exact` is false.
    pub total: u64,
    /// Present, and false, when more memories match than are counted for a page near the
    /// start (10,000: counting them all would cost more than the search).
    #[serde(skip_serializing_if = "is_true")]
    pub total_exact: bool,
    pub offset: u32,
    pub limit: u32,
    pub has_more: bool,
    /// Pass as `offset` to get the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Query words that matched nothing and were read as the closest indexed word.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<Correction>,
    /// Query words that matched nothing and had no indexed word close enough to correct
    /// them to; they match nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
    /// recall_memories: memories linked to the results of this page (each marked with
    /// `related_to`). Not results themselves: they count neither in `total` nor in paging.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<SearchResult>,
    /// Set when the page was cut to fit the answer size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Set when the call would have used the model but it was still loading after the
    /// wait (10 s): the results were found by words alone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CreateRelationshipOutput {
    pub relationship_id: String,
    /// False when an identical current relationship already existed and was returned.
    pub created: bool,
    /// True when the relationship waits on this machine for the primary (replica mode).
    pub queued: bool,
    pub relationship: Relationship,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RelatedResult {
    pub depth: u32,
    pub relationship: Relationship,
    pub memory: MemoryBrief,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RelatedOutput {
    pub memory_id: String,
    pub max_depth: u32,
    pub related: Vec<RelatedResult>,
    /// All related memories across pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub has_more: bool,
    /// Pass as `offset` to get the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Set when the page was cut to fit the answer size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RecentActivityOutput {
    pub days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Memories created in the period: the length of `recent_memories` across pages.
    pub total_count: i64,
    pub memories_by_type: std::collections::BTreeMap<String, i64>,
    /// The newest memories, newest first: one page.
    pub recent_memories: Vec<MemoryBrief>,
    /// Problems and errors of the period nothing solves yet, newest first: one page.
    pub unresolved_problems: Vec<MemoryBrief>,
    /// All unresolved problems across pages.
    pub unresolved_total: i64,
    /// Where this page starts in both lists.
    pub offset: u32,
    pub has_more: bool,
    /// Pass as `offset` for the next page of both lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    /// Set when the page was cut to fit the answer size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StatisticsOutput {
    #[serde(flatten)]
    pub statistics: Statistics,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RelationshipsOutput {
    pub relationships: Vec<Relationship>,
    /// All matching relationships across pages.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
    pub has_more: bool,
    /// Pass as `offset` to get the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HealthOutput {
    pub status: String,
    pub server_name: String,
    pub server_version: String,
    /// The process that answered: the database's owner, through which every other window
    /// and command on this database goes.
    pub server_pid: u32,
    pub backend: String,
    pub mode: String,
    /// Why this mode was chosen.
    pub mode_reason: String,
    pub tool_profile: String,
    pub libsql_crate_version: String,
    pub database: BackendHealth,
    /// Replica mode: the primary (without credentials), last sync, failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncStatus>,
    /// Replica mode: changes waiting for the primary, conflicts and set-aside writes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<Backlog>,
    /// Semantic recall: on or off (and how to turn it on), the model, vectors made and
    /// waiting.
    pub semantic: SemanticHealth,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncOutput {
    pub mode: String,
    pub synced: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<Backlog>,
}

fn is_true(b: &bool) -> bool {
    *b
}
