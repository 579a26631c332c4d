//! `ingest signup`, `ingest qualify` and `ingest refund`: the lifecycle events the product's backend
//! sends, from a shell. The flags become the same argument structs the REST ingest
//! routes deserialize, and go through the same `parse`, so the command line accepts
//! and refuses exactly what REST does (e.g. an over-long `click_id`).

use std::net::IpAddr;

use anyhow::Result;
use clap::Subcommand;

use super::print_json;
use crate::api::args::{QualifyArgs, RefundArgs, SignupArgs};
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
    /// A referred account was refunded or charged back: its rewards are voided and taken
    /// back (when its campaign says so).
    Refund {
        #[arg(long)]
        account: String,
        #[arg(long, default_value = "refund")]
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
        IngestCommand::Refund {
            account,
            event,
            amount,
        } => {
            let args = RefundArgs {
                account,
                event: Some(event),
                amount,
            };
            print_json(&app.core.record_refund(args.parse()?).await?)
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
