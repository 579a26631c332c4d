//! `credits`: an operator top-up, so a new key's account can pay for its calls.

use anyhow::Result;
use clap::Args;

use crate::config::App;
use crate::core::types::{AccountId, random_id};

#[derive(Args, Debug)]
pub struct CreditsArgs {
    #[arg(long)]
    account: String,
    #[arg(long)]
    amount: i64,
}

/// Every run is a new top-up (a fresh idempotency key): running the command twice adds
/// the amount twice, as an operator typing it twice would expect.
pub(super) async fn run(app: &App, args: CreditsArgs) -> Result<()> {
    let account = AccountId::parse("account", &args.account)?;
    app.core
        .top_up(&account, args.amount, &random_id("topup:cli:"))
        .await?;
    eprintln!(
        "balance of {account}: {}",
        app.core.balance(&account).await?
    );
    Ok(())
}
