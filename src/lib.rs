//! referral-mcp: the referral program of a credits-based API, as MCP tools and REST.
//!
//! `core` is the domain (no transport), `store` its SQLite/PostgreSQL storage, `auth` the
//! credentials and scopes, `billing` the credit sinks.

pub mod api;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod core;
pub mod http;
pub mod mcp;
pub mod store;
pub mod webhooks;
