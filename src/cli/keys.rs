//! `keys create` and `keys revoke`: the operator's way to hand out and withdraw API keys.

use anyhow::{Result, bail};
use clap::Subcommand;

use super::print_json;
use crate::config::App;
use crate::core::access::ScopeSet;
use crate::core::types::AccountId;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key; the secret is printed once and never stored.
    Create {
        #[arg(long)]
        name: String,
        /// Account that owns the key and pays for its calls.
        #[arg(long, default_value = "ops")]
        account: String,
        /// Scopes: referrals:read, referrals:review, referrals:recover, referrals:ingest.
        #[arg(long = "scope", required = true, num_args = 1..)]
        scopes: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its prefix (or the whole key).
    Revoke { prefix: String },
}

pub(super) async fn run(app: &App, command: KeysCommand) -> Result<()> {
    match command {
        KeysCommand::Create {
            name,
            account,
            scopes,
            json,
        } => create(app, &name, &account, &scopes, json).await,
        KeysCommand::Revoke { prefix } => revoke(app, &prefix).await,
    }
}

/// The secret goes to stdout alone (or inside the JSON object), so a script can capture
/// it; the human-readable summary goes to stderr.
async fn create(app: &App, name: &str, account: &str, scopes: &[String], json: bool) -> Result<()> {
    let scopes = ScopeSet::parse(&scopes.join(" ")).map_err(anyhow::Error::msg)?;
    let account = AccountId::parse("account", account)?;
    let now = app.core.clock().now();
    let key = app.auth.keys().create(name, &account, scopes, now).await?;
    if json {
        print_json(&key)?;
    } else {
        println!("{}", key.key);
        eprintln!(
            "created key {} ({}) for account {} with scopes [{}]; the secret above is shown only once",
            key.prefix, key.name, key.account, key.scopes
        );
    }
    Ok(())
}

/// Revoking an unknown or already revoked key fails, so a typo in a script is noticed.
async fn revoke(app: &App, prefix: &str) -> Result<()> {
    let now = app.core.clock().now();
    if !app.auth.keys().revoke(prefix, now).await? {
        bail!("no live key with prefix {prefix}");
    }
    eprintln!("revoked");
    Ok(())
}
