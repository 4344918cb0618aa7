//! Replica mode: the embedded replica of a libsql primary and everything that keeps it
//! honest — the offline queue and its replay, the background sync loop, the check that the
//! primary is still the database this replica came from, the lock that gives a replica file
//! one owner, and moving memories into a primary.

mod engine;
pub(super) mod identity;
pub(super) mod known;
pub(super) mod migrate;
pub(super) mod offline;
pub(super) mod queue;
pub(super) mod replica;
pub(super) mod resync;
pub(super) mod slot;
mod sync_loop;
