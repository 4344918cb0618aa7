//! One file per group of tools; each tool is one function: check, call the backend, render.

mod graph;
pub(crate) mod memories;
pub(crate) mod search;
pub(crate) mod status;
