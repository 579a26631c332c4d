//! Refunds and chargebacks: a `refund` event for a referred account voids its rewards not
//! yet granted and takes granted ones back through the credit sink, each under its own
//! idempotency key (`{grant key}:reversal`), exactly once.
//!
//! The status change (referral `reversed`, rewards `voided` or `reversing`) commits
//! first; the reversals are sent after it. If the process dies between the sink's answer
//! and marking the reward, the reward stays `reversing`: the event sent again, or any
//! recover run (serve runs one on a timer), sends the same key, the sink answers "already
//! reversed", and the reward is marked. Nothing is ever taken back twice.

use super::access::{Operation, Principal};
use super::grants::Granted;
use super::text::SafeText;
use super::transitions;
use super::types::AccountId;
use super::views::RefundOutcome;
use super::{Referrals, Result};
use crate::store::StatusChange;

/// The referred account was refunded or charged back.
#[derive(Debug, Clone)]
pub struct RefundEvent {
    pub account: AccountId,
    /// E.g. `refund` or `chargeback`; recorded as the reason.
    pub event: SafeText,
    /// In the smallest currency unit; informational.
    pub amount: Option<i64>,
}

impl Referrals {
    pub async fn ingest_refund(
        &self,
        principal: Option<&Principal>,
        ev: RefundEvent,
    ) -> Result<RefundOutcome> {
        self.metered(principal, Operation::IngestRefund, self.record_refund(ev))
            .await
    }

    /// Records a refund. A repeat of the event changes nothing, but finishes any
    /// reversal an earlier attempt left unconfirmed.
    pub async fn record_refund(&self, ev: RefundEvent) -> Result<RefundOutcome> {
        let Some(attr) = self
            .store
            .attribution_by_referred(ev.account.as_str())
            .await?
        else {
            return Ok(RefundOutcome {
                account: ev.account.to_string(),
                referred: false,
                reversed: 0,
                unrecovered_credits: 0,
                referral: None,
            });
        };
        let note = ev.amount.map(|a| format!("amount {a}"));
        // A refusal (already reversed, rejected, or a replay) is not an error.
        self.store
            .change_status(
                attr.id,
                &StatusChange {
                    actor: "system",
                    reason: Some(ev.event.as_str()),
                    note: note.as_deref(),
                    qualification: None,
                    refund: Some(ev.event.as_str()),
                    plan: None,
                    now: self.clock.now(),
                },
                transitions::refund,
            )
            .await?;
        let (reversed, unrecovered_credits) = self.finish_reversals(attr.id).await?;
        Ok(RefundOutcome {
            account: ev.account.to_string(),
            referred: true,
            reversed,
            unrecovered_credits,
            referral: Some(self.referral_with_rewards(attr.id).await?),
        })
    }

    /// Sends the reversals of one referral that no live process holds. Returns how many
    /// were confirmed and the credits that could not be taken back.
    async fn finish_reversals(&self, attribution_id: i64) -> Result<(u64, i64)> {
        let now = self.clock.now();
        let claimed = self
            .store
            .claim_reversals(attribution_id, now, now + self.settings.grant_lease_secs)
            .await?;
        let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
        self.holding(&ids, async {
            let (mut reversed, mut unrecovered) = (0, 0);
            for r in &claimed {
                if let Granted::Reversed(taken) = self.grant_one(r).await? {
                    reversed += 1;
                    unrecovered += r.credits - taken;
                }
            }
            Ok((reversed, unrecovered))
        })
        .await
    }
}
