//! What click capture looks up on every click, kept in memory.
//!
//! A click needs the account behind its code and its campaign. Each was a read, which on
//! SQLite is a hop to a reader connection's thread and back; at thousands of clicks a
//! second those hops, not the work, were the cost (profiled: most of the server's time
//! was thread switches). A code never changes owner — it is assigned once, with the
//! account — so that mapping is kept (bounded). A campaign can be edited, so it is kept
//! for [`CAMPAIGN_TTL`]: an edit through this process is seen at once, one through
//! another instance within that time (a campaign's dates are still checked against the
//! clock on every click). Misses are never kept: a code or campaign created elsewhere is
//! found on its first click.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Referrals, Result};
use crate::store::CampaignRow;

pub(crate) const CAMPAIGN_TTL: Duration = Duration::from_secs(5);

/// Past this many codes the map starts over (a bound, not an LRU).
const MAX_CODES: usize = 50_000;

#[derive(Default)]
pub(crate) struct ClickTargets {
    codes: Mutex<HashMap<String, String>>,
    campaigns: Mutex<HashMap<String, (CampaignRow, Instant)>>,
}

impl Referrals {
    /// The account whose referral code this is.
    pub(crate) async fn code_owner(&self, code: &str) -> Result<Option<String>> {
        let cache = &self.click_targets;
        if let Some(owner) = cache.codes.lock().ok().and_then(|m| m.get(code).cloned()) {
            return Ok(Some(owner));
        }
        let Some(owner) = self.store.account_by_code(code).await? else {
            return Ok(None);
        };
        if let Ok(mut m) = cache.codes.lock() {
            if m.len() >= MAX_CODES {
                m.clear();
            }
            m.insert(code.to_owned(), owner.id.clone());
        }
        Ok(Some(owner.id))
    }

    /// A campaign as click capture sees it: at most [`CAMPAIGN_TTL`] old.
    pub(crate) async fn click_campaign(&self, id: &str) -> Result<CampaignRow> {
        let cache = &self.click_targets;
        let fresh = cache.campaigns.lock().ok().and_then(|m| {
            m.get(id)
                .filter(|(_, at)| at.elapsed() < CAMPAIGN_TTL)
                .map(|(c, _)| c.clone())
        });
        if let Some(c) = fresh {
            return Ok(c);
        }
        let c = self.campaign(id).await?;
        if let Ok(mut m) = cache.campaigns.lock() {
            m.insert(id.to_owned(), (c.clone(), Instant::now()));
        }
        Ok(c)
    }

    /// Called after a campaign changed through this process.
    pub(crate) fn forget_campaign(&self, id: &str) {
        if let Ok(mut m) = self.click_targets.campaigns.lock() {
            m.remove(id);
        }
    }
}
