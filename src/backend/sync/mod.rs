//! Replica mode. The database file is a local file like local mode's, the *working file*:
//! every tool reads and writes it, at local speed, whatever the network does. Beside it,
//! an embedded replica of the primary (`<file>.replica`) is kept by one process on the
//! machine, the *owner*, which syncs in the background: it pushes the rows this machine
//! changed (named by the file's change feed) to the primary, and copies into the working
//! file the rows other devices changed (named by the primary's feed), through the replica.
//! Any other process on the same file reads and writes it as in local mode, and the owner
//! pushes its writes too; when the owner ends, the next process takes over.

mod engine;
pub(super) mod feed;
pub(super) mod identity;
mod issues;
pub(super) mod layout;
pub(super) mod migrate;
pub(super) mod owner;
mod pull;
mod push;
pub(super) mod queue;
pub(super) mod reconcile;
pub(super) mod replica;
pub(super) mod resync;
pub(super) mod state;
mod sync_loop;
pub(super) mod writes;

pub use engine::{Backlog, SyncLink};
pub use issues::{KEPT_DAYS, Which};
pub use reconcile::Policy;
pub use replica::Reconciled;

#[cfg(test)]
mod tests;
