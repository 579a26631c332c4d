//! The command line. Every flag can also come from the environment.
//!
//! One function per command, grouped in a file named for what it holds; [`run`] only
//! opens what a command needs and dispatches. Commands that change data call the core's
//! trusted `record_*`/`run_*` operations (no principal, no charge): whoever runs the
//! binary on the database's host is the operator.

mod args;
mod campaigns;
mod catalog;
mod credits;
mod demo;
mod http_app;
mod ingest;
mod keys;
pub mod listen;
mod recover;
mod serve;
mod token;
mod webhooks;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

pub use http_app::{HttpOptions, router};

pub use args::{EdgeArgs, GlobalArgs, ToolArgs};
pub use campaigns::{CampaignsCommand, RewardsCommand};
pub use credits::CreditsArgs;
pub use ingest::IngestCommand;
pub use keys::KeysCommand;
pub use recover::RecoverArgs;
pub use serve::{ServeArgs, StdioArgs};
pub use token::TokenCommand;

use crate::config::{App, Config};

#[derive(Parser, Debug)]
#[command(
    name = "referral-mcp",
    version,
    about = "Referral program service: MCP tools and REST API over one referral core"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Seed a realistic demo data set and print credentials to try it with.
    Demo {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Mint JWTs.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Add credits to an account (operator top-up).
    Credits(CreditsArgs),
    /// Retry reward grants that did not reach billing.
    Recover(RecoverArgs),
    /// Record lifecycle events (what the product's backend sends).
    #[command(subcommand)]
    Ingest(IngestCommand),
    /// Manage campaigns (rewards, window, caps, holding period, refund policy).
    #[command(subcommand)]
    Campaigns(CampaignsCommand),
    /// Operator corrections to rewards.
    #[command(subcommand)]
    Rewards(RewardsCommand),
    /// Webhook endpoints and the delivery log.
    #[command(subcommand)]
    Webhooks(webhooks::WebhooksCommand),
    /// Write the generated tool reference: DIR/schemas/ and DIR/tools/.
    Catalog {
        #[arg(long, default_value = ".")]
        out: std::path::PathBuf,
    },
    /// Serve MCP at /mcp (streamable HTTP), REST, /openapi.json and health probes.
    Serve(ServeArgs),
    /// Serve MCP over stdio for a desktop client; credentials from the environment.
    Stdio(StdioArgs),
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// Runs one command.
pub async fn run(global: &GlobalArgs, command: Command) -> Result<()> {
    let cfg = global.config()?;
    // The catalog builds its own demo databases.
    if let Command::Catalog { out } = &command {
        return catalog::run(out).await;
    }
    // Remote mode has no database of its own.
    if let Command::Stdio(StdioArgs {
        remote: Some(url),
        tools,
    }) = &command
    {
        return serve::remote_stdio(url, tools).await;
    }
    let app = open(&cfg).await?;
    match command {
        Command::Migrate => migrate(&cfg),
        Command::Demo { json } => demo::run(&app, &cfg, json).await,
        Command::Keys(keys) => keys::run(&app, keys).await,
        Command::Token(token) => token::run(&app, token),
        Command::Credits(args) => credits::run(&app, args).await,
        Command::Recover(args) => recover::run(&app, args).await,
        Command::Ingest(event) => ingest::run(&app, event).await,
        Command::Campaigns(c) => campaigns::run(&app, c).await,
        Command::Rewards(c) => campaigns::rewards(&app, c).await,
        Command::Webhooks(c) => webhooks::run(&app, c).await,
        Command::Serve(args) => serve::http(&app, &cfg, args).await,
        Command::Stdio(args) => serve::stdio(&app, args).await,
        // Handled above, before a database is opened.
        Command::Catalog { .. } => Ok(()),
    }?;
    app.store.close().await;
    Ok(())
}

/// Opening the database applies the embedded migrations, so every command starts on an
/// up-to-date schema.
async fn open(cfg: &Config) -> Result<App> {
    App::start(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("opening database {}", cfg.database_url))
}

/// `migrate` has nothing left to do once [`open`] succeeded; it exists so a deployment
/// can upgrade the schema as a separate step before starting servers.
fn migrate(cfg: &Config) -> Result<()> {
    eprintln!("database {} is up to date", cfg.database_url);
    Ok(())
}
