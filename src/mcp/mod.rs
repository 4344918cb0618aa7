//! The MCP face of the server: protocol, transport and one function per tool. Tools parse
//! and check arguments, call the backend, and render; they never write SQL.

mod args;
mod direct;
mod limit;
mod output;
mod params;
mod project;
mod render;
mod schema;
mod server;
pub(crate) mod tools;
pub mod transport;
mod web_methods;

pub use server::{CALL_KEY, FIRST_SYNC_NOTE, MemoryServer, ServerSettings, is_read, server_config};
pub(crate) use tools::status::backlog_sentence;
pub use web_methods::{
    CHANGES_METHOD, CONFLICTS_METHOD, END_RELATIONSHIP_METHOD, EXPORT_METHOD, IMPORT_METHOD,
    OVERVIEW_METHOD,
};
