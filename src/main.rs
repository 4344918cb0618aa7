//! memorygraph: long-term memory for AI assistants, as an MCP server over stdio, and a
//! command line over the same memory. See `memorygraph --help`.

fn main() -> std::process::ExitCode {
    memorygraph::cli::main()
}
