//! The MCP face: nine tools on one rmcp server type, served over stdio and streamable
//! HTTP ([`streamable`]). Each tool is a few lines: parse the arguments, call the core as the caller,
//! shape the answer. Domain errors become tool results with `isError: true`.

#![allow(deprecated)] // rmcp marks the logging API deprecated (SEP-2577); we still offer it.

pub mod app;
mod campaign_tools;
mod direct;
mod errors;
mod fast_lane;
mod filter;
mod ingest_tools;
mod jsonrpc;
mod prompts;
pub mod remote;
mod schema;
mod server;
pub mod streamable;
mod tools;

pub use errors::ToolError;
pub use filter::{TOOL_NAMES, ToolFilter, Toolset};
pub use prompts::list as prompts;
pub use server::{Caller, ReferralServer};
