//! memorygraph: long-term memory for AI assistants. The library holds everything the
//! `memorygraph` binary runs; the benchmark uses the backend directly, to show what the
//! MCP layers cost on top of libsql.

pub mod backend;
pub mod cli;
pub mod config;
pub mod exchange;
#[cfg(unix)]
pub mod http;
pub mod mcp;
pub mod model;
#[cfg(unix)]
pub mod open;
pub mod owner;
pub mod serve;
