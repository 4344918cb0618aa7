//! memorygraph: long-term memory for AI assistants. The library holds everything the
//! `memorygraph` binary runs; it exports only what the binaries and the tests use: the
//! command line, the backend (the benchmark uses it directly, to show what the MCP layers
//! cost on top of libsql), the model of a memory, the file formats and the transport.

pub mod backend;
pub mod cli;
mod config;
pub mod exchange;
#[cfg(unix)]
mod http;
pub mod mcp;
pub mod model;
mod open;
#[cfg(unix)]
mod owner;
mod serve;

/// The web view's files, for the benchmark's measure of the first page.
#[cfg(all(unix, feature = "bench"))]
pub use http::ui::assets::ASSETS as WEB_ASSETS;
