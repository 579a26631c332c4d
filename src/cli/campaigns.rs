//! `campaigns list|show|create|update`: campaigns from a shell. The flags become the same
//! JSON the REST routes and MCP tools take, parsed by the same argument types, so the
//! command line accepts and refuses exactly what they do. Changes are audited with the
//! operator's login as the actor.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use super::print_json;
use crate::api::args::{CampaignIdArgs, CreateCampaignArgs, UpdateCampaignArgs};
use crate::config::App;

#[derive(Subcommand, Debug)]
pub enum CampaignsCommand {
    /// Every campaign with its settings.
    List,
    /// One campaign and the audit trail of its changes.
    Show { id: String },
    /// Create a campaign; unnamed settings take their defaults.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        referrer_credits: i64,
        #[arg(long)]
        referred_credits: i64,
        #[command(flatten)]
        settings: SettingsFlags,
    },
    /// Change the named settings of a campaign (rewards already created keep theirs).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        referrer_credits: Option<i64>,
        #[arg(long)]
        referred_credits: Option<i64>,
        #[command(flatten)]
        settings: SettingsFlags,
        /// Settings to remove: cap_count, cap_credits, starts_at, ends_at (comma-separated).
        #[arg(long, value_delimiter = ',')]
        clear: Vec<String>,
    },
}

/// The settings create and update share.
#[derive(Args, Debug)]
pub struct SettingsFlags {
    /// Days after a click a signup is attributed (1-365).
    #[arg(long)]
    attribution_window_days: Option<i64>,
    /// first_click or last_click.
    #[arg(long)]
    attribution_model: Option<String>,
    /// Most referrer rewards per period.
    #[arg(long)]
    cap_count: Option<i64>,
    /// Most referrer credits per period.
    #[arg(long)]
    cap_credits: Option<i64>,
    /// day, week or month (UTC calendar periods).
    #[arg(long)]
    cap_period: Option<String>,
    /// Referrals by one referrer in 24 h that hold new ones for review.
    #[arg(long)]
    velocity_threshold: Option<i64>,
    /// YYYY-MM-DD or RFC 3339.
    #[arg(long)]
    starts_at: Option<String>,
    /// YYYY-MM-DD or RFC 3339 (exclusive).
    #[arg(long)]
    ends_at: Option<String>,
    /// Days after qualification before rewards are granted (0-365).
    #[arg(long)]
    holding_days: Option<i64>,
    /// true or false: a refund voids and takes back the rewards.
    #[arg(long)]
    reverse_on_refund: Option<bool>,
}

impl SettingsFlags {
    fn into_json(self, m: &mut Map<String, Value>) {
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.into(), v);
            }
        };
        put(
            "attribution_window_days",
            self.attribution_window_days.map(Value::from),
        );
        put("attribution_model", self.attribution_model.map(Value::from));
        put("cap_count", self.cap_count.map(Value::from));
        put("cap_credits", self.cap_credits.map(Value::from));
        put("cap_period", self.cap_period.map(Value::from));
        put(
            "velocity_threshold",
            self.velocity_threshold.map(Value::from),
        );
        put("starts_at", self.starts_at.map(Value::from));
        put("ends_at", self.ends_at.map(Value::from));
        put("holding_days", self.holding_days.map(Value::from));
        put("reverse_on_refund", self.reverse_on_refund.map(Value::from));
    }
}

/// Who the audit trail names for a change made from this shell.
fn operator() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    format!("cli ({user})")
}

fn args<T: serde::de::DeserializeOwned>(m: Map<String, Value>) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(m))
        .map_err(|e| anyhow::anyhow!("invalid argument {}: {}", e.path(), e.inner()))
}

pub(super) async fn run(app: &App, command: CampaignsCommand) -> Result<()> {
    let core = &app.core;
    match command {
        CampaignsCommand::List => print_json(&core.campaign_list().await?),
        CampaignsCommand::Show { id } => {
            let id = CampaignIdArgs { id }.parse()?;
            print_json(&core.campaign_detail(&id).await?)
        }
        CampaignsCommand::Create {
            id,
            name,
            referrer_credits,
            referred_credits,
            settings,
        } => {
            let mut m = Map::new();
            m.insert("id".into(), id.into());
            m.insert("name".into(), name.into());
            m.insert("referrer_credits".into(), referrer_credits.into());
            m.insert("referred_credits".into(), referred_credits.into());
            settings.into_json(&mut m);
            let (id, s) = args::<CreateCampaignArgs>(m)?.parse()?;
            core.create_campaign_as(&operator(), &id, s).await?;
            print_json(&core.campaign_detail(&id).await?)
        }
        CampaignsCommand::Update {
            id,
            name,
            referrer_credits,
            referred_credits,
            settings,
            clear,
        } => {
            let mut m = Map::new();
            m.insert("id".into(), id.into());
            if let Some(n) = name {
                m.insert("name".into(), n.into());
            }
            if let Some(c) = referrer_credits {
                m.insert("referrer_credits".into(), c.into());
            }
            if let Some(c) = referred_credits {
                m.insert("referred_credits".into(), c.into());
            }
            settings.into_json(&mut m);
            if !clear.is_empty() {
                m.insert("clear".into(), clear.into());
            }
            let (id, edit) = args::<UpdateCampaignArgs>(m)?.parse()?;
            core.update_campaign_as(&operator(), &id, edit).await?;
            print_json(&core.campaign_detail(&id).await?)
        }
    }
}

/// `rewards void`: an operator voids one reward that was never granted.
#[derive(Subcommand, Debug)]
pub enum RewardsCommand {
    /// Void a pending, held, failed or conflict reward, with the reason for the audit trail.
    Void {
        /// Referral id.
        #[arg(long)]
        referral: i64,
        /// referrer or referred.
        #[arg(long)]
        side: String,
        #[arg(long)]
        reason: String,
    },
}

pub(super) async fn rewards(app: &App, command: RewardsCommand) -> Result<()> {
    let RewardsCommand::Void {
        referral,
        side,
        reason,
    } = command;
    let mut m = Map::new();
    m.insert("id".into(), referral.into());
    m.insert("side".into(), side.into());
    m.insert("reason".into(), reason.into());
    let (id, side, reason) = args::<crate::api::args::VoidRewardArgs>(m)?.parse()?;
    print_json(&app.core.void_as(&operator(), id, side, reason).await?)
}
