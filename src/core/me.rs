//! The signed-in user's own referral page and history.

use super::access::{Operation, Principal};
use super::error::Error;
use super::text::mask_email;
use super::types::{AccountId, CampaignId, Cursor, Limit, ReferralCode, Side};
use super::views::{MyEvent, MyEventsPage, MyStats, MySummary, RewardSettings, my_reward};
use super::{Referrals, Result};
use crate::store::{AttributionRow, ListFilter, RewardRow};

#[derive(Debug, Clone)]
pub struct EventsQuery {
    pub limit: Limit,
    pub cursor: Option<Cursor>,
}

impl EventsQuery {
    pub const DEFAULT_LIMIT: Limit = Limit::new_const(20);
    pub const MAX_LIMIT: u32 = 100;
}

fn my_event(me: &str, a: &AttributionRow, rewards: &[RewardRow]) -> MyEvent {
    let role = if a.referrer_account == me {
        Side::Referrer
    } else {
        Side::Referred
    };
    let other = match role {
        Side::Referrer => &a.referred_email,
        Side::Referred => &a.referrer_email,
    };
    MyEvent {
        referral_id: a.id,
        role,
        other_email: other.as_deref().map(mask_email),
        status: a.status,
        campaign: a.campaign.clone(),
        created_at: super::clock::rfc3339(a.created_at),
        my_reward: rewards
            .iter()
            .find(|r| r.attribution_id == a.id && r.side == role)
            .map(my_reward),
    }
}

fn caller(principal: Option<&Principal>) -> Result<&AccountId> {
    principal
        .map(|p| &p.account)
        .ok_or_else(|| Error::Unauthenticated("sign in first".into()))
}

impl Referrals {
    pub async fn my_summary(&self, principal: Option<&Principal>) -> Result<MySummary> {
        self.metered(principal, Operation::MySummary, async {
            self.summary_for(caller(principal)?).await
        })
        .await
    }

    pub async fn summary_for(&self, account: &AccountId) -> Result<MySummary> {
        // Every account has a code: one is allocated on the first visit.
        let acc = self.ensure_account(account).await?;
        let campaign = self.campaign(CampaignId::DEFAULT).await?;
        let (signups, qualified, earned, pending, capped) =
            self.store.referrer_summary(account.as_str()).await?;
        let recent = self
            .events_for(
                account,
                EventsQuery {
                    limit: Limit::new_const(5),
                    cursor: None,
                },
            )
            .await?
            .events;
        let code = ReferralCode::parse("code", &acc.referral_code)?;
        let share_path = code.share_path();
        Ok(MySummary {
            account: acc.id,
            share_url: format!(
                "{}{}",
                self.settings.public_base_url.trim_end_matches('/'),
                share_path
            ),
            share_path,
            referral_code: acc.referral_code,
            reward_settings: RewardSettings {
                campaign: campaign.id,
                referrer_credits: campaign.referrer_credits,
                referred_credits: campaign.referred_credits,
                attribution_window_days: campaign.window_days,
                cap_count: campaign.cap_count,
                cap_credits: campaign.cap_credits,
                cap_period: campaign.cap_period,
                holding_days: campaign.holding_days,
            },
            stats: MyStats {
                clicks: acc.clicks_total,
                unique_clicks: acc.clicks_unique,
                signups,
                qualified,
                credits_earned: earned,
                credits_pending: pending,
                capped_rewards: capped,
            },
            recent,
        })
    }

    pub async fn my_events(
        &self,
        principal: Option<&Principal>,
        q: EventsQuery,
    ) -> Result<MyEventsPage> {
        self.metered(principal, Operation::MyEvents, async {
            self.events_for(caller(principal)?, q).await
        })
        .await
    }

    pub async fn events_for(&self, account: &AccountId, q: EventsQuery) -> Result<MyEventsPage> {
        let (rows, rewards, next_cursor) = self
            .page(ListFilter {
                user: Some(account.to_string()),
                before_id: q.cursor.map(Cursor::below),
                limit: i64::from(q.limit.get()),
                ..ListFilter::default()
            })
            .await?;
        Ok(MyEventsPage {
            events: rows
                .iter()
                .map(|a| my_event(account.as_str(), a, &rewards))
                .collect(),
            next_cursor,
        })
    }
}
