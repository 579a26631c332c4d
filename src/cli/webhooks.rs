//! `webhooks add|list|disable|deliveries|replay`: webhook endpoints and the delivery log
//! from a shell, through the same checks as the REST routes (`/admin/webhooks…`).

use anyhow::Result;
use clap::Subcommand;

use super::print_json;
use crate::config::App;
use crate::webhooks::Webhooks;

#[derive(Subcommand, Debug)]
pub enum WebhooksCommand {
    /// Register an endpoint; prints its signing secret, shown this once.
    Add {
        #[arg(long)]
        url: String,
        /// Comma-separated event types (e.g. reward.granted,referral.approved); all if absent.
        #[arg(long, default_value = "*")]
        events: String,
    },
    /// Every endpoint (without secrets).
    List,
    /// Stop sending to an endpoint; its pending deliveries are dead-lettered.
    Disable { id: String },
    /// The delivery log, newest first.
    Deliveries {
        /// pending, delivered or dead.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Send deliveries again: one by id, or every dead-lettered one with --dead.
    Replay {
        id: Option<i64>,
        #[arg(long, conflicts_with = "id")]
        dead: bool,
    },
}

pub(super) async fn run(app: &App, c: WebhooksCommand) -> Result<()> {
    let w = Webhooks::new(app.store.clone());
    match c {
        WebhooksCommand::Add { url, events } => print_json(&w.create(&url, &events).await?),
        WebhooksCommand::List => print_json(&w.list().await?),
        WebhooksCommand::Disable { id } => {
            w.disable(&id).await?;
            print_json(&serde_json::json!({"disabled": id}))
        }
        WebhooksCommand::Deliveries { status, limit } => {
            print_json(&w.deliveries(status.as_deref(), limit).await?)
        }
        WebhooksCommand::Replay { id: Some(id), .. } => {
            w.replay(id).await?;
            print_json(&serde_json::json!({"replayed": [id]}))
        }
        WebhooksCommand::Replay {
            id: None,
            dead: true,
        } => print_json(&serde_json::json!({"replayed_dead": w.replay_dead().await?})),
        WebhooksCommand::Replay { .. } => anyhow::bail!("name a delivery id, or --dead"),
    }
}
