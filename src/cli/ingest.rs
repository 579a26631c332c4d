//! `ingest signup` and `ingest qualify`: the lifecycle events the product's backend
//! sends, from a shell. The flags become the same argument structs the REST ingest
//! routes deserialize, and go through the same `parse`, so the command line accepts
//! and refuses exactly what REST does (e.g. an over-long `click_id`).

use std::net::IpAddr;

use anyhow::Result;
use clap::Subcommand;

use super::print_json;
use crate::api::args::{QualifyArgs, SignupArgs};
use crate::config::App;

#[derive(Subcommand, Debug)]
pub enum IngestCommand {
    /// A new account signed up (optionally through a referral code or click).
    Signup {
        #[arg(long)]
        account: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        ip: Option<IpAddr>,
        #[arg(long)]
        code: Option<String>,
        #[arg(long)]
        click_id: Option<String>,
    },
    /// A referred account qualified (e.g. first payment).
    Qualify {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "first_payment")]
        event: String,
        #[arg(long)]
        amount: Option<i64>,
    },
}

pub(super) async fn run(app: &App, command: IngestCommand) -> Result<()> {
    match command {
        IngestCommand::Signup {
            account,
            email,
            ip,
            code,
            click_id,
        } => {
            let args = SignupArgs {
                account,
                email,
                ip,
                code,
                click_id,
            };
            signup(app, args).await
        }
        IngestCommand::Qualify {
            account,
            event,
            amount,
        } => {
            let args = QualifyArgs {
                account,
                event: Some(event),
                amount,
            };
            qualify(app, args).await
        }
    }
}

async fn signup(app: &App, args: SignupArgs) -> Result<()> {
    let out = app.core.record_signup(args.parse()?).await?;
    print_json(&out)
}

async fn qualify(app: &App, args: QualifyArgs) -> Result<()> {
    let out = app.core.record_qualification(args.parse()?).await?;
    print_json(&out)
}
