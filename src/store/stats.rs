//! Funnel figures. Clicks come from the daily counters; the rest from range counts that
//! covering indexes answer without visiting rows, run concurrently.

use sqlx::FromRow;

use super::status::RewardStatus;
use super::{Result, Store, dynamic};

#[derive(Debug, Clone, Default, FromRow)]
pub struct ClickCounts {
    pub total: i64,
    pub unique_count: i64,
    pub bots: i64,
}

#[derive(Debug, Clone, Default)]
pub struct StatsRow {
    pub clicks: ClickCounts,
    pub signups: i64,
    pub qualified: i64,
    pub rewarded_count: i64,
    pub rewarded_credits: i64,
    /// Rewards created in the range, by the status they are in now: (count, credits).
    pub by_status: Vec<(RewardStatus, i64, i64)>,
    pub review_pending: i64,
    pub review_approved: i64,
    pub review_rejected: i64,
}

/// One UTC day of the funnel (see [`Store::daily_figures`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// Days since 1970-01-01.
    pub day: i64,
    pub clicks: i64,
    pub unique_clicks: i64,
    pub signups: i64,
    pub qualified: i64,
    pub rewarded_credits: i64,
}

impl DayFigures {
    fn on(day: i64) -> Self {
        Self {
            day,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct TopReferrerRow {
    pub account: String,
    pub signups: i64,
    pub qualified: i64,
    pub rewarded_credits: i64,
}

/// ` AND {alias}campaign = ${n}` when a campaign is asked for, else nothing.
fn campaign_filter(campaign: Option<&str>, alias: &str, n: usize) -> String {
    match campaign {
        Some(_) => format!(" AND {alias}campaign = ${n}"),
        None => String::new(),
    }
}

impl Store {
    /// Figures for `[from, to)` (unix seconds), optionally for one campaign.
    pub async fn stats(&self, from: i64, to: i64, campaign: Option<&str>) -> Result<StatsRow> {
        let camp = |alias: &str, n: usize| campaign_filter(campaign, alias, n);
        let clicks_sql = format!(
            "SELECT CAST(COALESCE(SUM(total), 0) AS BIGINT) AS total, CAST(COALESCE(SUM(unique_count), 0) AS BIGINT) AS unique_count,
                    CAST(COALESCE(SUM(bots), 0) AS BIGINT) AS bots
             FROM click_daily WHERE day >= $1 AND day < $2{}",
            camp("", 3)
        );
        let mut q = sqlx::query_as::<_, ClickCounts>(dynamic(clicks_sql))
            .bind(from.div_euclid(86_400))
            .bind((to + 86_399).div_euclid(86_400));
        if let Some(c) = campaign {
            q = q.bind(c.to_owned());
        }
        let clicks = q.fetch_one(&self.read).await?;

        let pair = |sql: String| {
            let q = sqlx::query_as::<_, (i64, i64)>(dynamic(sql))
                .bind(from)
                .bind(to);
            let q = match campaign {
                Some(c) => q.bind(c.to_owned()),
                None => q,
            };
            q.fetch_one(&self.read)
        };
        // Rewards carry no campaign; join attributions only when one is asked for.
        let rewards = |status_and_time: &str| {
            match campaign {
            Some(_) => format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(r.credits), 0) AS BIGINT) FROM rewards r JOIN attributions a ON a.id = r.attribution_id
                 WHERE {status_and_time}{}",
                camp("a.", 3)
            ),
            None => format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(r.credits), 0) AS BIGINT) FROM rewards r WHERE {status_and_time}"
            ),
        }
        };
        // Rewards created in the range, grouped by the status they are in now.
        let by_status_sql = match campaign {
            Some(_) => format!(
                "SELECT r.status, COUNT(*), CAST(COALESCE(SUM(r.credits), 0) AS BIGINT) FROM rewards r JOIN attributions a ON a.id = r.attribution_id
                 WHERE r.created_at >= $1 AND r.created_at < $2{} GROUP BY r.status",
                camp("a.", 3)
            ),
            None => "SELECT r.status, COUNT(*), CAST(COALESCE(SUM(r.credits), 0) AS BIGINT) FROM rewards r
                     WHERE r.created_at >= $1 AND r.created_at < $2 GROUP BY r.status"
                .to_owned(),
        };
        let by_status_q = sqlx::query_as::<_, (RewardStatus, i64, i64)>(dynamic(by_status_sql))
            .bind(from)
            .bind(to);
        let by_status_q = match campaign {
            Some(c) => by_status_q.bind(c.to_owned()),
            None => by_status_q,
        };
        // Signups and the review funnel come from one pass over the same rows.
        let review_sql = format!(
            "SELECT COUNT(*),
                    CAST(COALESCE(SUM(CASE WHEN status = 'review_required' THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN review_decision = 'approved' THEN 1 ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN review_decision = 'rejected' THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM attributions WHERE created_at >= $1 AND created_at < $2{}",
            camp("", 3)
        );
        let q = sqlx::query_as::<_, (i64, i64, i64, i64)>(dynamic(review_sql))
            .bind(from)
            .bind(to);
        let q = match campaign {
            Some(c) => q.bind(c.to_owned()),
            None => q,
        };
        // The four counts are independent: run them at once on the read pool.
        let (
            (signups, review_pending, review_approved, review_rejected),
            (qualified, _),
            (rewarded_count, rewarded_credits),
            by_status,
        ) = tokio::try_join!(
            q.fetch_one(&self.read),
            pair(format!(
                "SELECT COUNT(*), CAST(0 AS BIGINT) FROM attributions WHERE qualified_at >= $1 AND qualified_at < $2{}",
                camp("", 3)
            )),
            pair(rewards(
                "r.status = 'granted' AND r.granted_at >= $1 AND r.granted_at < $2"
            )),
            by_status_q.fetch_all(&self.read),
        )?;
        Ok(StatsRow {
            clicks,
            signups,
            qualified,
            rewarded_count,
            rewarded_credits,
            by_status,
            review_pending,
            review_approved,
            review_rejected,
        })
    }

    /// The funnel per UTC day of `[from, to)`, for a series: only days with something in
    /// them, in order. Clicks come from the daily counters (never the clicks table); the
    /// rest are grouped by day from the same covering indexes as [`Store::stats`], so
    /// the days add up to its totals.
    pub async fn daily_figures(
        &self,
        from: i64,
        to: i64,
        campaign: Option<&str>,
    ) -> Result<Vec<DayFigures>> {
        let camp = |alias: &str, n: usize| campaign_filter(campaign, alias, n);
        let days = |sql: String, from: i64, to: i64| {
            let q = sqlx::query_as::<_, (i64, i64, i64)>(dynamic(sql))
                .bind(from)
                .bind(to);
            let q = match campaign {
                Some(c) => q.bind(c.to_owned()),
                None => q,
            };
            q.fetch_all(&self.read)
        };
        let rewards_sql = match campaign {
            Some(_) => format!(
                "SELECT r.granted_at / 86400, CAST(COALESCE(SUM(r.credits), 0) AS BIGINT), CAST(0 AS BIGINT) FROM rewards r JOIN attributions a ON a.id = r.attribution_id
                 WHERE r.status = 'granted' AND r.granted_at >= $1 AND r.granted_at < $2{} GROUP BY 1",
                camp("a.", 3)
            ),
            None => "SELECT granted_at / 86400, CAST(COALESCE(SUM(credits), 0) AS BIGINT), CAST(0 AS BIGINT) FROM rewards
                     WHERE status = 'granted' AND granted_at >= $1 AND granted_at < $2 GROUP BY 1"
                .to_owned(),
        };
        let (clicks, signups, qualified, rewarded) = tokio::try_join!(
            days(
                format!(
                    "SELECT day, CAST(SUM(total) AS BIGINT), CAST(SUM(unique_count) AS BIGINT) FROM click_daily
                     WHERE day >= $1 AND day < $2{} GROUP BY day",
                    camp("", 3)
                ),
                from.div_euclid(86_400),
                (to + 86_399).div_euclid(86_400),
            ),
            days(
                format!(
                    "SELECT created_at / 86400, COUNT(*), CAST(0 AS BIGINT) FROM attributions WHERE created_at >= $1 AND created_at < $2{} GROUP BY 1",
                    camp("", 3)
                ),
                from,
                to,
            ),
            days(
                format!(
                    "SELECT qualified_at / 86400, COUNT(*), CAST(0 AS BIGINT) FROM attributions WHERE qualified_at >= $1 AND qualified_at < $2{} GROUP BY 1",
                    camp("", 3)
                ),
                from,
                to,
            ),
            days(rewards_sql, from, to),
        )?;
        let mut by_day: std::collections::BTreeMap<i64, DayFigures> = Default::default();
        for (day, total, unique) in clicks {
            let f = by_day.entry(day).or_insert_with(|| DayFigures::on(day));
            f.clicks = total;
            f.unique_clicks = unique;
        }
        for (day, n, _) in signups {
            by_day
                .entry(day)
                .or_insert_with(|| DayFigures::on(day))
                .signups = n;
        }
        for (day, n, _) in qualified {
            by_day
                .entry(day)
                .or_insert_with(|| DayFigures::on(day))
                .qualified = n;
        }
        for (day, credits, _) in rewarded {
            by_day
                .entry(day)
                .or_insert_with(|| DayFigures::on(day))
                .rewarded_credits = credits;
        }
        Ok(by_day.into_values().collect())
    }

    /// The referrers with the most attributed signups in `[from, to)`: their signups,
    /// how many of those qualified, and the credits granted to them for those referrals.
    pub async fn top_referrers(
        &self,
        from: i64,
        to: i64,
        campaign: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TopReferrerRow>> {
        let camp = campaign_filter(campaign, "a.", 4);
        let sql = format!(
            "SELECT a.referrer_account AS account, COUNT(*) AS signups,
                    CAST(COALESCE(SUM(CASE WHEN a.qualified_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS qualified,
                    CAST(COALESCE(SUM(g.credits), 0) AS BIGINT) AS rewarded_credits
             FROM attributions a
             LEFT JOIN rewards g ON g.attribution_id = a.id AND g.side = 'referrer' AND g.status = 'granted'
             WHERE a.created_at >= $1 AND a.created_at < $2{camp}
             GROUP BY a.referrer_account ORDER BY signups DESC, account LIMIT $3"
        );
        let q = sqlx::query_as::<_, TopReferrerRow>(dynamic(sql))
            .bind(from)
            .bind(to)
            .bind(limit);
        let q = match campaign {
            Some(c) => q.bind(c.to_owned()),
            None => q,
        };
        Ok(q.fetch_all(&self.read).await?)
    }

    /// Per-referrer figures for the "invite friends" page.
    pub async fn referrer_summary(&self, account: &str) -> Result<(i64, i64, i64, i64, i64)> {
        let (signups, qualified): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN status IN ('qualified', 'rewarded') THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM attributions WHERE referrer_account = $1",
        )
        .bind(account)
        .fetch_one(&self.read)
        .await?;
        let (earned, pending, capped): (i64, i64, i64) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'granted' THEN credits ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN status IN ('pending', 'held', 'failed') THEN credits ELSE 0 END), 0) AS BIGINT),
                    CAST(COALESCE(SUM(CASE WHEN status = 'capped' THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM rewards WHERE account = $1",
        )
        .bind(account)
        .fetch_one(&self.read)
        .await?;
        Ok((signups, qualified, earned, pending, capped))
    }
}
