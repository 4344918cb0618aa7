//! `memorygraph consolidate`, without an LLM: a report of what could be merged, retired or
//! mended (`report`), and acting on the parts of it the user names (`apply`, with `merge`
//! for what a merged memory holds), each action reversible from the backup written before
//! it (`undo`).

mod apply;
mod merge;
mod report;
mod undo;

pub use apply::{Applied, MergedRecord, Record, Selection};
pub use report::{Consolidation, DanglingLink, Named};
pub use undo::Undone;
