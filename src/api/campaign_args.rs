//! Tool inputs of the campaigns toolset, and their parsing into the core's campaign
//! settings. Every number is checked against its range here, naming the field.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use super::args::integer;
use crate::core::clock::parse_instant;
use crate::core::error::Error;
use crate::core::text::SafeText;
use crate::core::types::{AttributionModel, CampaignId, CapPeriod};
use crate::core::{CampaignEdit, CampaignSettings, Clearable, bounded, limits};

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignIdArgs {
    /// Campaign id, e.g. `default`.
    #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
    pub id: String,
}

/// Declares a campaign argument type: its own leading fields, then the settings both
/// create and update take (on update, each named one changes), and `settings_edit`, which
/// checks those settings into a [`CampaignEdit`].
macro_rules! campaign_args {
    ($(#[$m:meta])* pub struct $name:ident { $($head:tt)* }) => {
        $(#[$m])*
        #[derive(Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(transform = super::args::no_null_defaults)]
        pub struct $name {
            $($head)*
            /// Days after a click a signup is attributed, 1-365 (default 30).
            #[schemars(range(min = 1, max = 365))]
            #[serde(default, deserialize_with = "integer::optional")]
            pub attribution_window_days: Option<i64>,
            /// Which click wins (default last_click).
            pub attribution_model: Option<AttributionModel>,
            /// Most referrer rewards per period (default none).
            #[schemars(range(min = 1, max = 1_000_000))]
            #[serde(default, deserialize_with = "integer::optional")]
            pub cap_count: Option<i64>,
            /// Most referrer credits per period (default none).
            #[schemars(range(min = 1, max = 1_000_000_000_000_i64))]
            #[serde(default, deserialize_with = "integer::optional")]
            pub cap_credits: Option<i64>,
            /// UTC calendar period caps count over (default month).
            pub cap_period: Option<CapPeriod>,
            /// Referrals by one referrer in 24 h that hold new ones for review, 1-100000 (default 10).
            #[schemars(range(min = 1, max = 100_000))]
            #[serde(default, deserialize_with = "integer::optional")]
            pub velocity_threshold: Option<i64>,
            /// Takes clicks from then, `YYYY-MM-DD` or RFC 3339 (default always).
            #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}"))]
            pub starts_at: Option<String>,
            /// Takes clicks until then (exclusive; a date means its start).
            #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}"))]
            pub ends_at: Option<String>,
            /// Days after qualification before rewards are granted, 0-365 (default 0).
            #[schemars(range(min = 0, max = 365))]
            #[serde(default, deserialize_with = "integer::optional")]
            pub holding_days: Option<i64>,
            /// A refund voids and takes back the rewards (default true).
            pub reverse_on_refund: Option<bool>,
        }

        impl $name {
            fn settings_edit(&self) -> Result<CampaignEdit, Error> {
                let opt = |field, v: Option<i64>, range| {
                    v.map(|v| bounded(field, v, range)).transpose()
                };
                Ok(CampaignEdit {
                    window_days: opt(
                        "attribution_window_days",
                        self.attribution_window_days,
                        limits::WINDOW_DAYS,
                    )?,
                    attribution_model: self.attribution_model,
                    cap_count: opt("cap_count", self.cap_count, limits::CAP_COUNT)?,
                    cap_credits: opt("cap_credits", self.cap_credits, limits::CAP_CREDITS)?,
                    cap_period: self.cap_period,
                    velocity_threshold: opt(
                        "velocity_threshold",
                        self.velocity_threshold,
                        limits::VELOCITY,
                    )?,
                    starts_at: instant("starts_at", &self.starts_at)?,
                    ends_at: instant("ends_at", &self.ends_at)?,
                    holding_days: opt("holding_days", self.holding_days, limits::HOLDING_DAYS)?,
                    reverse_on_refund: self.reverse_on_refund,
                    ..CampaignEdit::default()
                })
            }
        }
    };
}

campaign_args! {
    /// A new campaign. Unnamed settings take the defaults in their descriptions.
    pub struct CreateCampaignArgs {
        /// New campaign id: 1-40 of a-z, 0-9, - and _.
        #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
        pub id: String,
        /// Display name (1-100 characters).
        #[schemars(length(min = 1, max = 100), pattern(r"\S"))]
        pub name: String,
        /// Credits to the referrer per qualified referral, 0-10^9.
        #[schemars(range(min = 0, max = 1_000_000_000))]
        #[serde(deserialize_with = "integer::required")]
        pub referrer_credits: i64,
        /// Credits to the referred account, 0-10^9.
        #[schemars(range(min = 0, max = 1_000_000_000))]
        #[serde(deserialize_with = "integer::required")]
        pub referred_credits: i64,
    }
}

/// Fields an update may clear.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClearField {
    CapCount,
    CapCredits,
    StartsAt,
    EndsAt,
}

campaign_args! {
    /// Changes to a campaign: named fields change, others stay. Rewards already created
    /// keep the settings they were created with.
    pub struct UpdateCampaignArgs {
        /// Campaign id.
        #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
        pub id: String,
        /// Display name (1-100 characters).
        #[schemars(length(min = 1, max = 100), pattern(r"\S"))]
        pub name: Option<String>,
        /// Credits to the referrer, 0-10^9.
        #[schemars(range(min = 0, max = 1_000_000_000))]
        #[serde(default, deserialize_with = "integer::optional")]
        pub referrer_credits: Option<i64>,
        /// Credits to the referred account, 0-10^9.
        #[schemars(range(min = 0, max = 1_000_000_000))]
        #[serde(default, deserialize_with = "integer::optional")]
        pub referred_credits: Option<i64>,
        /// Settings to remove (no cap, no start or end date).
        pub clear: Option<Vec<ClearField>>,
    }
}

fn credits(field: &'static str, v: i64) -> Result<i64, Error> {
    bounded(field, v, limits::CREDITS)
}

fn instant(field: &'static str, v: &Option<String>) -> Result<Option<i64>, Error> {
    v.as_deref()
        .map(|s| parse_instant(field, s, false))
        .transpose()
}

impl CampaignIdArgs {
    pub fn parse(&self) -> Result<CampaignId, Error> {
        CampaignId::parse("id", &self.id)
    }
}

impl CreateCampaignArgs {
    pub fn parse(self) -> Result<(CampaignId, CampaignSettings), Error> {
        let id = CampaignId::parse("id", &self.id)?;
        let base = CampaignSettings::new(
            SafeText::parse("name", &self.name, 100)?,
            credits("referrer_credits", self.referrer_credits)?,
            credits("referred_credits", self.referred_credits)?,
        );
        Ok((id, self.settings_edit()?.apply(base)?))
    }
}

impl UpdateCampaignArgs {
    pub fn parse(self) -> Result<(CampaignId, CampaignEdit), Error> {
        let id = CampaignId::parse("id", &self.id)?;
        let edit = self.settings_edit()?;
        let clear = self
            .clear
            .unwrap_or_default()
            .into_iter()
            .map(|c| match c {
                ClearField::CapCount => Clearable::CapCount,
                ClearField::CapCredits => Clearable::CapCredits,
                ClearField::StartsAt => Clearable::StartsAt,
                ClearField::EndsAt => Clearable::EndsAt,
            })
            .collect();
        Ok((
            id,
            CampaignEdit {
                name: self
                    .name
                    .map(|n| SafeText::parse("name", &n, 100))
                    .transpose()?,
                referrer_credits: self
                    .referrer_credits
                    .map(|v| credits("referrer_credits", v))
                    .transpose()?,
                referred_credits: self
                    .referred_credits
                    .map(|v| credits("referred_credits", v))
                    .transpose()?,
                clear,
                ..edit
            },
        ))
    }
}
