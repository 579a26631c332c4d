//! Granting: the reward plan a status change hands to the store, the cap rule it carries,
//! and sending rewards (and reversals of them) to the credit sink. Shared by
//! qualification, approval, refunds and recover.

use std::future::Future;
use std::time::Duration;

use super::clock::period_start;
use super::sink::{Grant, GrantOutcome, Reversal, ReversalOutcome, SinkError};
use super::types::RewardStatus;
use super::{Referrals, Result};
use crate::store::{CampaignRow, ClaimedReward, RewardPlan};

/// How one grant (or reversal) attempt ended.
pub(crate) enum Granted {
    New,
    Already,
    /// A reversal took this many credits back (now or, replayed, before).
    Reversed(i64),
    Failed(SinkError),
    /// Billing refused the key: the reward is now `conflict`.
    Conflict(SinkError),
}

/// What [`Referrals::send_one`] did with a reward.
pub(crate) enum Sent {
    /// The sink granted it (now or before); it is still to be marked.
    Granted(GrantOutcome),
    /// Its outcome is already recorded.
    Recorded(Granted),
}

impl From<GrantOutcome> for Granted {
    fn from(o: GrantOutcome) -> Self {
        match o {
            GrantOutcome::Granted => Granted::New,
            GrantOutcome::AlreadyGranted => Granted::Already,
        }
    }
}

impl Referrals {
    /// What the store needs to create a referral's rewards now: the campaign's credits,
    /// its cap over the current calendar period, its holding period and refund policy,
    /// and the lease that keeps the new rewards with this process for the inline grant
    /// (a recover run takes them only if that lease runs out).
    pub(crate) fn reward_plan<'a>(
        &'a self,
        c: &'a CampaignRow,
        over_cap: &'a (dyn Fn(i64, i64) -> bool + Send + Sync),
    ) -> RewardPlan<'a> {
        let now = self.clock.now();
        RewardPlan {
            campaign: &c.id,
            referrer_credits: c.referrer_credits,
            referred_credits: c.referred_credits,
            over_cap,
            cap_since: period_start(now, c.cap_period),
            grant_after: (c.holding_days > 0).then(|| now + c.holding_days * 86_400),
            reverse_on_refund: c.reverse_on_refund != 0,
            lease_until: now + self.settings.grant_lease_secs,
            key_namespace: self.settings.grant_namespace.as_str(),
            now,
        }
    }

    /// Grants the rewards this process just created for one attribution (marking the
    /// last one granted settles the referral).
    pub(crate) async fn grant_own(&self, attribution_id: i64, lease_until: i64) -> Result<()> {
        let own = self
            .store
            .own_pending_rewards(attribution_id, lease_until)
            .await?;
        let ids: Vec<i64> = own.iter().map(|r| r.id).collect();
        self.holding(&ids, async {
            for r in &own {
                self.grant_one(r).await?;
            }
            Ok::<_, super::error::Error>(())
        })
        .await
    }

    /// Sends one claimed reward to the sink (its grant, or its reversal when it is
    /// `reversing`) and records the answer. Only after the sink answers is the reward
    /// marked; a failure leaves it retryable, a refused key makes it a `conflict`.
    pub(crate) async fn grant_one(&self, r: &ClaimedReward) -> Result<Granted> {
        match self.send_one(r).await? {
            Sent::Granted(outcome) => {
                self.store
                    .mark_granted(r.id, r.attribution_id, self.clock.now())
                    .await?;
                Ok(outcome.into())
            }
            Sent::Recorded(g) => Ok(g),
        }
    }

    /// [`Self::grant_one`] without marking a grant the sink accepted: the caller marks
    /// it (recover marks a whole group in one write, see `Store::mark_granted_many`).
    /// Reversals and failures are recorded here.
    pub(crate) async fn send_one(&self, r: &ClaimedReward) -> Result<Sent> {
        if r.status == RewardStatus::Reversing {
            return Ok(Sent::Recorded(self.reverse_one(r).await?));
        }
        let answer = self.sink.grant(&grant_of(r)).await;
        self.sent(r, answer).await
    }

    /// [`Self::send_one`] for a group, answered in order: its grants go to the sink
    /// together (`CreditSink::grant_many`: one write on the local ledger), its
    /// reversals one by one, concurrently.
    pub(crate) async fn send_group(&self, group: &[ClaimedReward]) -> Vec<Result<Sent>> {
        let (reversals, grants): (Vec<&ClaimedReward>, Vec<&ClaimedReward>) = group
            .iter()
            .partition(|r| r.status == RewardStatus::Reversing);
        let asked: Vec<Grant> = grants.iter().map(|r| grant_of(r)).collect();
        let (answers, reversed) = tokio::join!(
            self.sink.grant_many(&asked),
            futures::future::join_all(reversals.iter().map(|r| self.send_one(r)))
        );
        // A sink that lost track of its answers: nothing is known, all stay retryable.
        let answers = if answers.len() == asked.len() {
            answers
        } else {
            tracing::error!(
                grants = asked.len(),
                answers = answers.len(),
                "sink answered the wrong number of grants"
            );
            let lost = || {
                Err(SinkError::Unavailable(
                    "billing answered the wrong number of grants".into(),
                ))
            };
            asked.iter().map(|_| lost()).collect()
        };
        let recorded =
            futures::future::join_all(grants.iter().zip(answers).map(|(r, a)| self.sent(r, a)))
                .await;
        // Back in the group's order: each kind's answers are in its own order.
        let (mut granted, mut reversed) = (recorded.into_iter(), reversed.into_iter());
        group
            .iter()
            .filter_map(|r| match r.status {
                RewardStatus::Reversing => reversed.next(),
                _ => granted.next(),
            })
            .collect()
    }

    /// A grant's answer: to be marked, or its failure recorded.
    async fn sent(
        &self,
        r: &ClaimedReward,
        answer: std::result::Result<GrantOutcome, SinkError>,
    ) -> Result<Sent> {
        Ok(match answer {
            Ok(outcome) => Sent::Granted(outcome),
            Err(e) => Sent::Recorded(self.record_failure(r, &r.grant_key, e).await?),
        })
    }

    /// Takes a refunded reward's credits back under its reversal key.
    async fn reverse_one(&self, r: &ClaimedReward) -> Result<Granted> {
        let key = r
            .reversal_key
            .clone()
            .unwrap_or_else(|| crate::store::rewards::reversal_key(&r.grant_key));
        let answer = self
            .sink
            .reverse(&Reversal {
                key: key.clone(),
                grant_key: r.grant_key.clone(),
                account: r.account.clone(),
                credits: r.credits,
            })
            .await;
        match answer {
            Ok(
                ReversalOutcome::Reversed { taken } | ReversalOutcome::AlreadyReversed { taken },
            ) => {
                self.store
                    .mark_reversed(r.id, taken, self.clock.now())
                    .await?;
                Ok(Granted::Reversed(taken))
            }
            Err(e) => self.record_failure(r, &key, e).await,
        }
    }

    async fn record_failure(&self, r: &ClaimedReward, key: &str, e: SinkError) -> Result<Granted> {
        tracing::warn!(reward = r.id, key = %key, error = %e, "billing refused or failed");
        match e {
            SinkError::DifferentAmount { .. } => {
                self.store.mark_conflict(r.id, &e.to_string()).await?;
                Ok(Granted::Conflict(e))
            }
            SinkError::Unavailable(_) => {
                self.store.mark_failed(r.id, &e.to_string()).await?;
                Ok(Granted::Failed(e))
            }
        }
    }
}

impl Referrals {
    /// Runs `work` while keeping this process's claims on `ids` alive: a slow billing
    /// service (an HTTP sink may take several timeouts) never lets a claim lapse under a
    /// live process, so concurrent runs never send the same grant, while a crashed
    /// process's claims lapse after one short lease.
    pub(crate) async fn holding<T>(&self, ids: &[i64], work: impl Future<Output = T>) -> T {
        let lease = self.settings.grant_lease_secs;
        let every = Duration::from_secs(u64::try_from(lease / 3).unwrap_or(1).max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                _ = tick.tick() => {
                    if let Err(e) = self.store.renew_claims(ids, self.clock.now() + lease).await {
                        tracing::warn!(error = %e, "renewing reward claims failed");
                    }
                }
            }
        }
    }
}

fn grant_of(r: &ClaimedReward) -> Grant {
    Grant {
        key: r.grant_key.clone(),
        account: r.account.clone(),
        credits: r.credits,
    }
}

/// The campaign's cap as a rule over what the referrer already used this period.
pub(crate) fn cap_rule(c: &CampaignRow) -> impl Fn(i64, i64) -> bool + Send + Sync + use<> {
    let (cap_count, cap_credits, credits) = (c.cap_count, c.cap_credits, c.referrer_credits);
    move |used_count, used_credits| {
        cap_count.is_some_and(|cap| used_count + 1 > cap)
            || cap_credits.is_some_and(|cap| used_credits + credits > cap)
    }
}
