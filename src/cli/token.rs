//! `token mint`: signs an HS256 JWT with the deployment's secret, for trying the
//! JWT-only operations and for desktop clients that hold a token instead of a key.

use anyhow::Result;
use clap::Subcommand;

use super::print_json;
use crate::config::App;
use crate::core::types::AccountId;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Sign a JWT for an account.
    Mint {
        #[arg(long)]
        account: String,
        /// Add `role: admin` (all scopes).
        #[arg(long)]
        admin: bool,
        /// Lifetime in seconds, at most ten years.
        #[arg(long, default_value_t = 86_400, value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
        ttl: u64,
        #[arg(long)]
        json: bool,
    },
}

pub(super) fn run(app: &App, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Mint {
            account,
            admin,
            ttl,
            json,
        } => mint(app, &account, admin, ttl, json),
    }
}

/// Plain output is the token alone on stdout, so `TOKEN=$(… token mint …)` works.
fn mint(app: &App, account: &str, admin: bool, ttl: u64, json: bool) -> Result<()> {
    let account = AccountId::parse("account", account)?;
    let token = app.auth.jwt().mint(&account, admin, ttl)?;
    if json {
        print_json(&serde_json::json!({
            "token": token, "account": account, "admin": admin, "expires_in": ttl
        }))?;
    } else {
        println!("{token}");
    }
    Ok(())
}
