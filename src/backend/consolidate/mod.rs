//! `memorygraph consolidate`, without an LLM: a report of what could be merged, retired or
//! mended (`report`), and acting on the parts of it the user names (`apply`), each action
//! reversible from the backup written before it (`undo`).

mod report;

pub use report::{Consolidation, DanglingLink, Named};
