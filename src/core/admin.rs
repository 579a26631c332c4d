//! The support team's operations: list, inspect, approve, reject, stats.

use super::access::{Operation, Principal};
use super::clock::{parse_instant, rfc3339};
use super::error::Error;
use super::grants::cap_rule;
use super::text::SafeText;
use super::transitions::{self, Refusal};
use super::types::{
    AccountId, AttributionId, AttributionStatus, CampaignId, Cursor, Interval, Limit, RewardStatus,
    Side, day_label,
};
use super::views::{
    ClickCountsView, ConversionRates, CountCredits, ReferralDetail, ReferralPage, ReferralView,
    ReviewCounts, RewardStates, StatsBucket, StatsView, TopReferrer, audit_view, reason_view,
    referral_view,
};
use super::{Referrals, Result};
use crate::store::{
    Applied, AttributionRow, Change, DayFigures, ListFilter, RewardRow, StatusChange, VoidRequest,
    Voided,
};

/// Filters of `list_referrals`.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Referrer or referred account.
    pub user: Option<AccountId>,
    pub status: Option<AttributionStatus>,
    pub campaign: Option<CampaignId>,
    /// True: only referrals with a reward not yet granted (pending, held or failed);
    /// false: only those without.
    pub pending_grant: Option<bool>,
    /// Only referrals with a reward in this status (`held`: waiting for the holding
    /// period; `failed`: needs recovery; `conflict`: needs an operator).
    pub reward_status: Option<RewardStatus>,
    pub limit: Limit,
    pub cursor: Option<Cursor>,
}

impl ListQuery {
    pub const DEFAULT_LIMIT: Limit = Limit::new_const(20);
    pub const MAX_LIMIT: u32 = 100;
}

impl Default for ListQuery {
    fn default() -> Self {
        Self {
            user: None,
            status: None,
            campaign: None,
            pending_grant: None,
            reward_status: None,
            limit: Self::DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RejectRequest {
    pub reason: SafeText,
    pub note: Option<SafeText>,
}

/// A half-open range of unix seconds, and an optional campaign.
#[derive(Debug, Clone)]
pub struct StatsQuery {
    pub from: i64,
    pub to: i64,
    pub campaign: Option<CampaignId>,
    /// Also a series in buckets of this size, and the top referrers of the range.
    pub interval: Option<Interval>,
}

/// Most buckets a series may have (a day's buckets over a year and a month).
pub const MAX_BUCKETS: usize = 400;

/// Referrers listed with a series.
const TOP_REFERRERS: i64 = 10;

impl StatsQuery {
    /// Parses `YYYY-MM-DD` dates (both inclusive) or RFC 3339 instants; defaults to the
    /// 30 days up to now.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        campaign: Option<CampaignId>,
        now: i64,
    ) -> Result<Self> {
        let to = match to {
            Some(s) => parse_instant("to", s, true)?,
            None => now + 1,
        };
        let from = match from {
            Some(s) => parse_instant("from", s, false)?,
            None => to - 30 * 86_400,
        };
        if from >= to {
            return Err(Error::Invalid {
                field: "from",
                message: "must be before `to`".into(),
            });
        }
        if to - from > 3 * 366 * 86_400 {
            return Err(Error::Invalid {
                field: "from",
                message: "the range may span at most three years".into(),
            });
        }
        Ok(Self {
            from,
            to,
            campaign,
            interval: None,
        })
    }

    /// Asks for a series too; refused when it would have more than [`MAX_BUCKETS`].
    pub fn with_interval(mut self, interval: Option<Interval>) -> Result<Self> {
        if let Some(i) = interval {
            let n = self.buckets(i).len();
            if n > MAX_BUCKETS {
                return Err(Error::Invalid {
                    field: "interval",
                    message: format!(
                        "{n} buckets; at most {MAX_BUCKETS}: use a longer interval or a shorter range"
                    ),
                });
            }
        }
        self.interval = interval;
        Ok(self)
    }

    /// The first day of each bucket the range touches (the first and last may be
    /// partial), in the days the click counters use.
    fn buckets(&self, i: Interval) -> Vec<i64> {
        let last = (self.to - 1).div_euclid(86_400);
        let mut out = Vec::new();
        let mut b = i.bucket_of(self.from.div_euclid(86_400));
        while b <= last && out.len() <= MAX_BUCKETS {
            out.push(b);
            b = i.next(b);
        }
        out
    }

    /// Adds the days up into buckets, empty buckets included (a chart stays continuous).
    fn series(&self, i: Interval, days: &[DayFigures]) -> Vec<StatsBucket> {
        let starts = self.buckets(i);
        let mut out: Vec<StatsBucket> = starts
            .iter()
            .map(|&d| StatsBucket {
                start: day_label(d),
                ..Default::default()
            })
            .collect();
        for f in days {
            let Some(k) = starts.iter().rposition(|&s| s <= f.day) else {
                continue;
            };
            let b = &mut out[k];
            b.clicks += f.clicks;
            b.unique_clicks += f.unique_clicks;
            b.signups += f.signups;
            b.qualified += f.qualified;
            b.rewarded_credits += f.rewarded_credits;
        }
        out
    }
}

fn not_found(id: AttributionId) -> Error {
    Error::NotFound {
        what: "referral",
        id: id.to_string(),
    }
}

/// The outcome of a review decision, or the error the caller sees: a refusal is a
/// conflict naming the status the referral is in.
fn decided(
    id: AttributionId,
    applied: Applied<Refusal>,
    verb: &str,
) -> Result<(AttributionRow, Change)> {
    match applied {
        Applied::Done { row, change } => Ok((*row, change)),
        Applied::NotFound => Err(not_found(id)),
        Applied::Refused(Refusal(status)) => Err(Error::conflict_status(
            format!(
                "referral {id} is {status}, not {}; only referrals in {} can be {verb}. Use get_referral to see its history.",
                AttributionStatus::ReviewRequired,
                AttributionStatus::ReviewRequired,
            ),
            status.as_str(),
        )),
    }
}

impl Referrals {
    pub async fn list_referrals(
        &self,
        principal: Option<&Principal>,
        q: ListQuery,
    ) -> Result<ReferralPage> {
        self.metered(principal, Operation::ListReferrals, self.query_referrals(q))
            .await
    }

    pub async fn query_referrals(&self, q: ListQuery) -> Result<ReferralPage> {
        let (rows, rewards, next_cursor) = self
            .page(ListFilter {
                user: q.user.map(|u| u.to_string()),
                status: q.status,
                campaign: q.campaign.map(|c| c.as_str().to_owned()),
                pending_grant: q.pending_grant,
                reward_status: q.reward_status,
                before_id: q.cursor.map(Cursor::below),
                limit: i64::from(q.limit.get()),
            })
            .await?;
        Ok(ReferralPage {
            next_cursor,
            referrals: rows.iter().map(|r| referral_view(r, &rewards)).collect(),
        })
    }

    /// One keyset page of attributions (`f.limit` rows), their rewards, and the cursor of
    /// the next page if there is one. One extra row is fetched to know.
    pub(crate) async fn page(
        &self,
        f: ListFilter,
    ) -> Result<(Vec<AttributionRow>, Vec<RewardRow>, Option<String>)> {
        let limit = f.limit;
        let mut rows = self
            .store
            .list_attributions(&ListFilter {
                limit: limit + 1,
                ..f
            })
            .await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = rows
            .last()
            .filter(|_| more)
            .map(|r| Cursor::after(r.id).encode());
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let rewards = self.store.rewards_for(&ids).await?;
        Ok((rows, rewards, next))
    }

    pub async fn get_referral(
        &self,
        principal: Option<&Principal>,
        id: AttributionId,
    ) -> Result<ReferralDetail> {
        self.metered(principal, Operation::GetReferral, self.referral_detail(id))
            .await
    }

    pub async fn referral_detail(&self, id: AttributionId) -> Result<ReferralDetail> {
        let (row, rewards, reasons, audit) = self
            .store
            .attribution_detail(id.get())
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(ReferralDetail {
            referral: referral_view(&row, &rewards),
            review_reasons: reasons.iter().map(reason_view).collect(),
            audit_trail: audit.iter().map(audit_view).collect(),
        })
    }

    pub async fn approve_referral(
        &self,
        principal: Option<&Principal>,
        id: AttributionId,
        note: Option<SafeText>,
    ) -> Result<ReferralView> {
        let op = Operation::ApproveReferral;
        self.metered(principal, op, self.approve_as(&actor(principal), id, note))
            .await
    }

    /// Approves as `actor`, then resumes granting if the referral already qualified.
    /// Returns the referral with its rewards as they are after granting; the review
    /// reasons and audit trail are [`Referrals::referral_detail`]'s, not read here.
    pub async fn approve_as(
        &self,
        actor: &str,
        id: AttributionId,
        note: Option<SafeText>,
    ) -> Result<ReferralView> {
        let current = self
            .store
            .attribution(id.get())
            .await?
            .ok_or_else(|| not_found(id))?;
        let campaign = self.campaign(&current.campaign).await?;
        let over_cap = cap_rule(&campaign);
        let plan = self.reward_plan(&campaign, &over_cap);
        let applied = self
            .store
            .change_status(
                id.get(),
                &StatusChange {
                    actor,
                    reason: None,
                    note: note.as_ref().map(SafeText::as_str),
                    qualification: None,
                    refund: None,
                    plan: Some(&plan),
                    now: plan.now,
                },
                transitions::approve,
            )
            .await?;
        let (row, change) = decided(id, applied, "approved")?;
        if !change.create_rewards {
            return self.with_rewards(row).await;
        }
        self.grant_own(id.get(), plan.lease_until).await?;
        // Granting may have settled it as `rewarded`: read it again.
        self.referral_with_rewards(id.get()).await
    }

    pub async fn reject_referral(
        &self,
        principal: Option<&Principal>,
        id: AttributionId,
        req: RejectRequest,
    ) -> Result<ReferralView> {
        let op = Operation::RejectReferral;
        self.metered(principal, op, self.reject_as(&actor(principal), id, req))
            .await
    }

    /// Rejects as `actor`; returns the referral as the rejection left it.
    pub async fn reject_as(
        &self,
        actor: &str,
        id: AttributionId,
        req: RejectRequest,
    ) -> Result<ReferralView> {
        let applied = self
            .store
            .change_status(
                id.get(),
                &StatusChange {
                    actor,
                    reason: Some(req.reason.as_str()),
                    note: req.note.as_ref().map(SafeText::as_str),
                    qualification: None,
                    refund: None,
                    plan: None,
                    now: self.clock.now(),
                },
                transitions::reject,
            )
            .await?;
        let (row, _) = decided(id, applied, "rejected")?;
        self.with_rewards(row).await
    }

    /// The view of a row the status change just returned, with its rewards.
    async fn with_rewards(&self, row: AttributionRow) -> Result<ReferralView> {
        let rewards = self.store.rewards_for(&[row.id]).await?;
        Ok(referral_view(&row, &rewards))
    }

    pub async fn get_stats(
        &self,
        principal: Option<&Principal>,
        q: StatsQuery,
    ) -> Result<StatsView> {
        self.metered(principal, Operation::GetStats, self.stats(q))
            .await
    }

    pub async fn stats(&self, q: StatsQuery) -> Result<StatsView> {
        if let Some(c) = &q.campaign {
            self.campaign(c.as_str()).await?;
        }
        let s = self
            .store
            .stats(q.from, q.to, q.campaign.as_ref().map(CampaignId::as_str))
            .await?;
        let of = |status: RewardStatus| {
            s.by_status
                .iter()
                .find(|(st, _, _)| *st == status)
                .map(|&(_, count, credits)| CountCredits { count, credits })
                .unwrap_or_default()
        };
        let ratio = |a: i64, b: i64| {
            if b == 0 {
                0.0
            } else {
                ((a as f64 / b as f64) * 10_000.0).round() / 10_000.0
            }
        };
        let (series, top_referrers) = match q.interval {
            Some(i) => {
                let campaign = q.campaign.as_ref().map(CampaignId::as_str);
                let (days, top) = tokio::try_join!(
                    self.store.daily_figures(q.from, q.to, campaign),
                    self.store
                        .top_referrers(q.from, q.to, campaign, TOP_REFERRERS),
                )?;
                let top = top
                    .into_iter()
                    .map(|t| TopReferrer {
                        account: t.account,
                        signups: t.signups,
                        qualified: t.qualified,
                        rewarded_credits: t.rewarded_credits,
                    })
                    .collect();
                (Some(q.series(i, &days)), Some(top))
            }
            None => (None, None),
        };
        Ok(StatsView {
            interval: q.interval,
            series,
            top_referrers,
            from: rfc3339(q.from),
            to: rfc3339(q.to),
            campaign: q.campaign.map(String::from),
            clicks: ClickCountsView {
                total: s.clicks.total,
                unique: s.clicks.unique_count,
                bots: s.clicks.bots,
            },
            attributed_signups: s.signups,
            qualified: s.qualified,
            rewarded: CountCredits {
                count: s.rewarded_count,
                credits: s.rewarded_credits,
            },
            capped: of(RewardStatus::Capped),
            rewards: RewardStates {
                held: of(RewardStatus::Held),
                failed: of(RewardStatus::Failed),
                conflict: of(RewardStatus::Conflict),
                voided: of(RewardStatus::Voided),
            },
            review: ReviewCounts {
                pending: s.review_pending,
                approved: s.review_approved,
                rejected: s.review_rejected,
            },
            conversion: ConversionRates {
                signup_per_unique_click: ratio(s.signups, s.clicks.unique_count),
                qualified_per_signup: ratio(s.qualified, s.signups),
            },
        })
    }
}

/// Who to name in the audit trail for a decision.
pub(crate) fn actor(principal: Option<&Principal>) -> String {
    principal.map(Principal::actor).unwrap_or_default()
}

impl Referrals {
    pub async fn void_reward(
        &self,
        principal: Option<&Principal>,
        id: AttributionId,
        side: Side,
        reason: SafeText,
    ) -> Result<ReferralView> {
        let op = Operation::VoidReward;
        self.metered(
            principal,
            op,
            self.void_as(&actor(principal), id, side, reason),
        )
        .await
    }

    /// Voids one reward that was never granted (pending, held, failed, or refused by
    /// billing as a conflict), as `actor`, with the reason in the referral's audit trail.
    pub async fn void_as(
        &self,
        actor: &str,
        id: AttributionId,
        side: Side,
        reason: SafeText,
    ) -> Result<ReferralView> {
        let v = VoidRequest {
            attribution_id: id.get(),
            side,
            actor,
            reason: reason.as_str(),
            now: self.clock.now(),
        };
        match self.store.void_reward(&v, transitions::can_void).await? {
            Voided::Done => self.referral_with_rewards(id.get()).await,
            Voided::NotFound => Err(Error::NotFound {
                what: "reward",
                id: format!("{side} reward of referral {id}"),
            }),
            Voided::InFlight => Err(Error::Conflict {
                message: format!(
                    "the {side} reward of referral {id} is being granted right now; try again in a few seconds"
                ),
                current_status: None,
            }),
            Voided::Refused(status) => Err(Error::conflict_status(
                format!(
                    "the {side} reward of referral {id} is {status}; only pending, held, failed or conflict rewards can be voided (a refund takes granted credits back)"
                ),
                status.as_str(),
            )),
        }
    }
}
