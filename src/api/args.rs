//! Tool inputs. `deny_unknown_fields` makes both the schema (`additionalProperties:
//! false`) and the parser refuse unknown keys; bounds are in the schema and enforced by
//! the core's typed values, whose errors name the field.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

use crate::core::types::{AttributionStatus, Interval, RewardStatus, Side};

pub use super::campaign_args::*;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct ListReferralsArgs {
    /// Account id, as referrer or referred.
    #[schemars(pattern(r"^[A-Za-z0-9_.:@-]{1,64}$"))]
    pub user_id: Option<String>,
    /// Referral status.
    pub status: Option<AttributionStatus>,
    /// Campaign id, e.g. `default`.
    #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
    pub campaign: Option<String>,
    /// true: a reward not yet granted (pending, held, failed); false: none.
    pub pending_grant: Option<bool>,
    /// Only those with a reward in this status (held: holding period; failed: needs recover; conflict: needs an operator).
    pub reward_status: Option<RewardStatus>,
    /// Page size, 1-100, default 20.
    #[schemars(range(min = 1, max = 100))]
    #[serde(default, deserialize_with = "integer::optional")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralIdArgs {
    /// Referral id (from list_referrals).
    #[schemars(range(min = 1))]
    #[serde(deserialize_with = "integer::required")]
    pub id: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveArgs {
    /// Referral id (from list_referrals).
    #[schemars(range(min = 1))]
    #[serde(deserialize_with = "integer::required")]
    pub id: i64,
    /// Optional audit-trail note (max 500).
    #[schemars(length(min = 1, max = 500), pattern(r"\S"))]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectArgs {
    /// Referral id (from list_referrals).
    #[schemars(range(min = 1))]
    #[serde(deserialize_with = "integer::required")]
    pub id: i64,
    /// Why, for the audit trail (1-200 characters).
    #[schemars(length(min = 1, max = 200), pattern(r"\S"))]
    pub reason: String,
    /// Optional note (max 500).
    #[schemars(length(min = 1, max = 500), pattern(r"\S"))]
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct RecoverArgs {
    /// Most rewards to attempt, 1-10000, default 100.
    #[schemars(range(min = 1, max = 10000))]
    #[serde(default, deserialize_with = "integer::optional")]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatsArgs {
    /// Start, `YYYY-MM-DD` or RFC 3339; default 30 days before `to`.
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}"))]
    pub from: Option<String>,
    /// End (inclusive), `YYYY-MM-DD` or RFC 3339; default now.
    #[schemars(pattern(r"^\d{4}-\d{2}-\d{2}"))]
    pub to: Option<String>,
    /// Campaign id.
    #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
    pub campaign: Option<String>,
    /// Adds a series per day, week or month, and top referrers.
    pub interval: Option<Interval>,
    /// With interval: also a PNG chart.
    pub chart: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClickArgs {
    /// Code from the share link `/r/{code}`.
    #[schemars(pattern(r"^[A-Za-z0-9_-]{4,32}$"))]
    pub code: String,
    /// Campaign id, default `default`.
    #[schemars(pattern(r"^[a-z0-9_-]{1,40}$"))]
    pub campaign: Option<String>,
    /// Landing URL; only path and utm_* are kept.
    #[schemars(length(max = 4096))]
    pub landing_url: Option<String>,
    /// Referring page; only its host is kept.
    #[schemars(length(max = 4096))]
    pub referrer_url: Option<String>,
    /// User agent; only browser family and bot flag are kept.
    #[schemars(length(max = 1024))]
    pub user_agent: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct EventsArgs {
    /// Page size, 1-100, default 20.
    #[schemars(range(min = 1, max = 100))]
    #[serde(default, deserialize_with = "integer::optional")]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `#[serde(default)]` (needed with `deserialize_with`) makes schemars write
/// `"default": null`, which would tell a client the default limit is null; the real
/// defaults are in the descriptions.
pub(super) fn no_null_defaults(schema: &mut schemars::Schema) {
    if let Some(props) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        for p in props.values_mut() {
            if let Some(o) = p.as_object_mut()
                && o.get("default").is_some_and(serde_json::Value::is_null)
            {
                o.remove("default");
            }
        }
    }
}

/// JSON Schema's `integer` includes `20.0`, and some clients send whole numbers that way;
/// accept them, refuse fractions and everything else with serde's usual message.
pub(super) mod integer {
    use serde::Deserializer;
    use serde::de::{self, Visitor};

    struct Whole;

    impl Visitor<'_> for Whole {
        type Value = i64;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.fract() == 0.0 && v.abs() < 9.0e15 {
                Ok(v as i64)
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }

    pub fn required<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_i64(Whole)
    }

    struct MaybeWhole;

    impl<'de> Visitor<'de> for MaybeWhole {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            required(d).map(Some)
        }
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_option(MaybeWhole)
    }
}

// ---- into the core's typed requests -------------------------------------------------

use crate::core::error::Error;
use crate::core::text::SafeText;
use crate::core::types::{AccountId, AttributionId, CampaignId, Cursor, Limit, ReferralCode};
use crate::core::{EventsQuery, ListQuery, RecoverRequest, RejectRequest, StatsQuery};

fn limit(raw: Option<i64>, default: Limit, max: u32) -> Result<Limit, Error> {
    raw.map_or(Ok(default), |n| Limit::parse("limit", n, max))
}

fn campaign(raw: Option<String>) -> Result<Option<CampaignId>, Error> {
    raw.map(|c| CampaignId::parse("campaign", &c)).transpose()
}

fn cursor(raw: Option<String>) -> Result<Option<Cursor>, Error> {
    raw.map(|c| Cursor::parse("cursor", &c)).transpose()
}

fn note(raw: Option<String>) -> Result<Option<SafeText>, Error> {
    raw.map(|n| SafeText::parse("note", &n, 500)).transpose()
}

impl ListReferralsArgs {
    pub fn into_query(self) -> Result<ListQuery, Error> {
        Ok(ListQuery {
            user: self
                .user_id
                .map(|u| AccountId::parse("user_id", &u))
                .transpose()?,
            status: self.status,
            campaign: campaign(self.campaign)?,
            pending_grant: self.pending_grant,
            reward_status: self.reward_status,
            limit: limit(self.limit, ListQuery::DEFAULT_LIMIT, ListQuery::MAX_LIMIT)?,
            cursor: cursor(self.cursor)?,
        })
    }
}

impl ReferralIdArgs {
    pub fn id(&self) -> Result<AttributionId, Error> {
        AttributionId::parse("id", self.id)
    }
}

impl ApproveArgs {
    pub fn parse(self) -> Result<(AttributionId, Option<SafeText>), Error> {
        Ok((AttributionId::parse("id", self.id)?, note(self.note)?))
    }
}

impl RejectArgs {
    pub fn parse(self) -> Result<(AttributionId, RejectRequest), Error> {
        Ok((
            AttributionId::parse("id", self.id)?,
            RejectRequest {
                reason: SafeText::parse("reason", &self.reason, 200)?,
                note: note(self.note)?,
            },
        ))
    }
}

impl RecoverArgs {
    pub fn parse(self) -> Result<RecoverRequest, Error> {
        Ok(RecoverRequest {
            limit: limit(
                self.limit,
                RecoverRequest::DEFAULT_LIMIT,
                RecoverRequest::MAX_LIMIT,
            )?,
        })
    }
}

impl StatsArgs {
    pub fn parse(self, now: i64) -> Result<StatsQuery, Error> {
        if self.chart == Some(true) && self.interval.is_none() {
            return Err(Error::Invalid {
                field: "chart",
                message: "a chart draws the series: give an interval (day, week or month)".into(),
            });
        }
        StatsQuery::parse(
            self.from.as_deref(),
            self.to.as_deref(),
            campaign(self.campaign)?,
            now,
        )?
        .with_interval(self.interval)
    }

    /// Whether the caller asked for the chart (see `api::chart`).
    pub fn wants_chart(&self) -> bool {
        self.chart == Some(true)
    }
}

impl ClickArgs {
    pub fn parse(self, ip: Option<std::net::IpAddr>) -> Result<crate::core::ClickRequest, Error> {
        let too_long = |field: &'static str, v: &Option<String>, max: usize| match v {
            Some(s) if s.len() > max => Err(Error::Invalid {
                field,
                message: format!("must be at most {max} bytes"),
            }),
            _ => Ok(()),
        };
        too_long("landing_url", &self.landing_url, 4096)?;
        too_long("referrer_url", &self.referrer_url, 4096)?;
        too_long("user_agent", &self.user_agent, 1024)?;
        Ok(crate::core::ClickRequest {
            code: ReferralCode::parse("code", &self.code)?,
            campaign: campaign(self.campaign)?,
            raw: crate::core::click::RawClick {
                landing_url: self.landing_url,
                referrer_url: self.referrer_url,
                user_agent: self.user_agent,
                ip,
            },
        })
    }
}

impl EventsArgs {
    pub fn parse(self) -> Result<EventsQuery, Error> {
        Ok(EventsQuery {
            limit: limit(
                self.limit,
                EventsQuery::DEFAULT_LIMIT,
                EventsQuery::MAX_LIMIT,
            )?,
            cursor: cursor(self.cursor)?,
        })
    }
}

// ---- lifecycle events (REST ingest routes and the CLI) ---------------------------------

/// A new account signed up, maybe through a referral.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupArgs {
    /// The new account's id in the product.
    #[schemars(pattern(r"^[A-Za-z0-9_.:@-]{1,64}$"))]
    pub account: String,
    /// Its email; used only for fraud signals and shown masked.
    pub email: Option<String>,
    /// Its signup IP (v4 or v6); only a keyed hash is kept.
    #[schemars(with = "Option<String>", extend("anyOf" = [{"format": "ipv4"}, {"format": "ipv6"}]))]
    pub ip: Option<std::net::IpAddr>,
    /// The referral code it signed up with, if no click id is known.
    #[schemars(pattern(r"^[A-Za-z0-9_-]{4,32}$"))]
    pub code: Option<String>,
    /// The `click_id` that click capture returned.
    pub click_id: Option<String>,
}

/// A referred account qualified (e.g. its first payment).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct QualifyArgs {
    /// The referred account.
    #[schemars(pattern(r"^[A-Za-z0-9_.:@-]{1,64}$"))]
    pub account: String,
    /// What happened, default `first_payment` (max 64 characters).
    #[schemars(length(min = 1, max = 64), pattern(r"\S"))]
    pub event: Option<String>,
    /// Amount in the smallest currency unit, 0 to 10^12; informational.
    #[schemars(range(min = 0, max = 1_000_000_000_000_i64))]
    #[serde(default, deserialize_with = "integer::optional")]
    pub amount: Option<i64>,
}

impl SignupArgs {
    pub fn parse(self) -> Result<crate::core::SignupEvent, Error> {
        Ok(crate::core::SignupEvent {
            account: AccountId::parse("account", &self.account)?,
            email: self
                .email
                .map(|e| crate::core::text::Email::parse("email", &e))
                .transpose()?,
            ip: self.ip,
            code: self
                .code
                .map(|c| ReferralCode::parse("code", &c))
                .transpose()?,
            click_id: self
                .click_id
                .map(|c| SafeText::parse("click_id", &c, 64).map(|t| t.as_str().to_owned()))
                .transpose()?,
        })
    }
}

/// The largest qualification amount accepted: 10^12 smallest units (ten billion in a
/// two-decimal currency) is beyond any single payment, and far from overflowing sums.
pub const MAX_AMOUNT: i64 = 1_000_000_000_000;

fn qualification_amount(n: i64) -> Result<i64, Error> {
    if (0..=MAX_AMOUNT).contains(&n) {
        Ok(n)
    } else {
        Err(Error::Invalid {
            field: "amount",
            message: format!("must be between 0 and {MAX_AMOUNT} (smallest currency unit)"),
        })
    }
}

impl QualifyArgs {
    pub fn parse(self) -> Result<crate::core::QualifyEvent, Error> {
        Ok(crate::core::QualifyEvent {
            account: AccountId::parse("account", &self.account)?,
            event: SafeText::parse(
                "event",
                self.event.as_deref().unwrap_or("first_payment"),
                64,
            )?,
            amount: self.amount.map(qualification_amount).transpose()?,
        })
    }
}

/// A referred account was refunded or charged back.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = no_null_defaults)]
pub struct RefundArgs {
    /// The referred account.
    #[schemars(pattern(r"^[A-Za-z0-9_.:@-]{1,64}$"))]
    pub account: String,
    /// What happened, default `refund` (e.g. `chargeback`; max 64 characters).
    #[schemars(length(min = 1, max = 64), pattern(r"\S"))]
    pub event: Option<String>,
    /// Amount in the smallest currency unit, 0 to 10^12; informational.
    #[schemars(range(min = 0, max = 1_000_000_000_000_i64))]
    #[serde(default, deserialize_with = "integer::optional")]
    pub amount: Option<i64>,
}

impl RefundArgs {
    pub fn parse(self) -> Result<crate::core::RefundEvent, Error> {
        Ok(crate::core::RefundEvent {
            account: AccountId::parse("account", &self.account)?,
            event: SafeText::parse("event", self.event.as_deref().unwrap_or("refund"), 64)?,
            amount: self.amount.map(qualification_amount).transpose()?,
        })
    }
}

/// An operator voids one reward that was never granted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRewardArgs {
    /// Referral id (from list_referrals).
    #[schemars(range(min = 1))]
    #[serde(deserialize_with = "integer::required")]
    pub id: i64,
    /// Which side's reward.
    pub side: Side,
    /// Why, for the audit trail (1-200 characters).
    #[schemars(length(min = 1, max = 200), pattern(r"\S"))]
    pub reason: String,
}

impl VoidRewardArgs {
    pub fn parse(self) -> Result<(AttributionId, Side, SafeText), Error> {
        Ok((
            AttributionId::parse("id", self.id)?,
            self.side,
            SafeText::parse("reason", &self.reason, 200)?,
        ))
    }
}
