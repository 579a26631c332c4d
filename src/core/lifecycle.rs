//! The events that drive a referral: click, signup (attribution), qualification. Which
//! status each leads to is decided in [`super::transitions`]; granting the rewards that
//! follow is in [`super::grants`].

use std::net::IpAddr;

use super::access::{Operation, Principal};
use super::campaigns::is_active;
use super::click::{RawClick, hash_ip, sanitize};
use super::error::Error;
use super::grants::cap_rule;
use super::review::{SignupFacts, signals};
use super::text::{Email, SafeText};
use super::transitions;
use super::types::{AccountId, AttributionModel, CampaignId, ReferralCode};
use super::views::{ClickReceipt, QualifyOutcome, SignupOutcome, referral_view};
use super::{Referrals, Result};
use crate::store::{
    AccountRow, Applied, AttributionRow, CampaignRow, ClickStored, NewAccount, NewAttribution,
    NewClick, StatusChange,
};

/// A click on a share link.
#[derive(Debug, Clone)]
pub struct ClickRequest {
    pub code: ReferralCode,
    pub campaign: Option<CampaignId>,
    pub raw: RawClick,
}

/// A new account signed up, possibly through a referral.
#[derive(Debug, Clone)]
pub struct SignupEvent {
    pub account: AccountId,
    pub email: Option<Email>,
    pub ip: Option<IpAddr>,
    pub code: Option<ReferralCode>,
    /// The `click_id` a click capture returned.
    pub click_id: Option<String>,
}

/// A referred account did what qualifies the referral (e.g. its first payment).
#[derive(Debug, Clone)]
pub struct QualifyEvent {
    pub account: AccountId,
    pub event: SafeText,
    /// In the smallest currency unit; informational.
    pub amount: Option<i64>,
}

impl Referrals {
    /// Public click capture: rate-limited per IP hash, not charged.
    pub async fn capture_click(
        &self,
        principal: Option<&Principal>,
        req: ClickRequest,
    ) -> Result<ClickReceipt> {
        self.metered(
            principal,
            Operation::CaptureClick,
            self.store_click(req, true),
        )
        .await
    }

    /// Stores a sanitized click (trusted callers; see [`Referrals::capture_click`]).
    pub async fn record_click(&self, req: ClickRequest) -> Result<ClickReceipt> {
        self.store_click(req, false).await
    }

    /// Stores a click, counting it against its visitor's public limit if `limited`: in
    /// the click's own transaction when it is stored, on its own when it is refused (an
    /// unknown code or an inactive campaign), so that guessing codes is throttled like
    /// clicking them.
    async fn store_click(&self, req: ClickRequest, limited: bool) -> Result<ClickReceipt> {
        // Sanitized first: the limit is keyed by the IP hash it computes.
        let s = sanitize(&req.raw, &self.settings.ip_hash_key);
        let limit = match limited {
            true => Some(self.public_limit(&s.ip_hash).await),
            false => None,
        };
        let refuse = |e: Error| async {
            if let Some(l) = &limit {
                self.hit_public_limit(l).await?;
            }
            Err(e)
        };
        let Some(owner) = self.code_owner(req.code.as_str()).await? else {
            return refuse(Error::NotFound {
                what: "referral code",
                id: req.code.as_str().to_owned(),
            })
            .await;
        };
        let now = self.clock.now();
        let campaign = match self
            .click_campaign(
                req.campaign
                    .as_ref()
                    .map_or(CampaignId::DEFAULT, CampaignId::as_str),
            )
            .await
        {
            Ok(c) if is_active(&c, now) => c.id,
            Ok(c) => {
                return refuse(Error::Invalid {
                    field: "campaign",
                    message: format!("campaign {} is not active now", c.id),
                })
                .await;
            }
            Err(e) => return refuse(e).await,
        };
        let public_id = self.settings.ids.time_ordered_id("clk_");
        let stored = self
            .store
            .insert_click(
                NewClick {
                    public_id: public_id.clone(),
                    code: req.code.as_str().to_owned(),
                    referrer_account: owner,
                    campaign: campaign.clone(),
                    landing_path: s.landing_path,
                    utm: [
                        s.utm_source,
                        s.utm_medium,
                        s.utm_campaign,
                        s.utm_term,
                        s.utm_content,
                    ],
                    referrer_host: s.referrer_host,
                    ua_family: s.ua_family,
                    is_bot: s.is_bot,
                    ip_hash: s.ip_hash,
                    at: now,
                },
                limit.clone(),
            )
            .await?;
        let unique = match (stored, &limit) {
            (ClickStored::Stored { unique }, _) => unique,
            (ClickStored::RateLimited, Some(l)) => return Err(self.rate_limited(l)),
            (ClickStored::RateLimited, None) => {
                return Err(Error::internal("an unlimited click was refused"));
            }
        };
        Ok(ClickReceipt {
            click_id: public_id,
            code: req.code.as_str().to_owned(),
            campaign,
            counted_as_unique: unique,
            bot: s.is_bot,
        })
    }

    pub async fn ingest_signup(
        &self,
        principal: Option<&Principal>,
        ev: SignupEvent,
    ) -> Result<SignupOutcome> {
        self.metered(principal, Operation::IngestSignup, self.record_signup(ev))
            .await
    }

    pub async fn ingest_qualification(
        &self,
        principal: Option<&Principal>,
        ev: QualifyEvent,
    ) -> Result<QualifyOutcome> {
        self.metered(
            principal,
            Operation::IngestQualification,
            self.record_qualification(ev),
        )
        .await
    }

    /// Finds who referred this signup: the click (picked by the campaign's attribution
    /// model among the visitor's clicks in the window), else the code.
    async fn resolve_referrer(
        &self,
        ev: &SignupEvent,
        now: i64,
    ) -> Result<Option<(AccountRow, CampaignRow, Option<i64>)>> {
        if let Some(click_id) = &ev.click_id {
            let click = self
                .store
                .click_by_public_id(click_id)
                .await?
                .ok_or_else(|| Error::Invalid {
                    field: "click_id",
                    message: "no click with this id was captured".into(),
                })?;
            let campaign = self.campaign(&click.campaign).await?;
            let since = now - campaign.window_days * 86_400;
            let last = campaign.attribution_model != AttributionModel::FirstClick;
            let chosen = self
                .store
                .visitor_click(&click.ip_hash, since, now, last)
                .await?
                .unwrap_or(click);
            if chosen.created_at < since {
                // Outside the attribution window: the signup is not referred.
                return Ok(None);
            }
            let campaign = if chosen.campaign == campaign.id {
                campaign
            } else {
                self.campaign(&chosen.campaign).await?
            };
            let referrer = self
                .store
                .account(&chosen.referrer_account)
                .await?
                .ok_or_else(|| Error::internal("click without referrer account"))?;
            return Ok(Some((referrer, campaign, Some(chosen.id))));
        }
        if let Some(code) = &ev.code {
            let referrer = self
                .store
                .account_by_code(code.as_str())
                .await?
                .ok_or_else(|| Error::Invalid {
                    field: "code",
                    message: "no account has this referral code".into(),
                })?;
            // A code alone refers through the default campaign while it is active; a
            // signup after it ended is recorded as not referred.
            let campaign = self.campaign(CampaignId::DEFAULT).await?;
            if !is_active(&campaign, now) {
                return Ok(None);
            }
            return Ok(Some((referrer, campaign, None)));
        }
        Ok(None)
    }

    /// Records a signup: creates the account (with its own code) and, when it came
    /// through a referral, the attribution, held for review if any fraud signal fires.
    pub async fn record_signup(&self, ev: SignupEvent) -> Result<SignupOutcome> {
        let now = self.clock.now();
        let target = self.resolve_referrer(&ev, now).await?;
        if let Some((referrer, _, _)) = &target
            && referrer.id == ev.account.as_str()
        {
            return Err(Error::Invalid {
                field: "code",
                message: "self-referral is refused: an account cannot use its own code".into(),
            });
        }
        if let Some(existing) = self
            .store
            .attribution_by_referred(ev.account.as_str())
            .await?
            && let Some((referrer, _, _)) = &target
            && existing.referrer_account != referrer.id
        {
            return Err(Error::conflict_status(
                format!(
                    "account {} was already referred by another account (referral {}); an account is referred at most once",
                    ev.account, existing.id
                ),
                existing.status.as_str(),
            ));
        }
        let ip_hash = ev
            .ip
            .map(|ip| hash_ip(&self.settings.ip_hash_key, Some(ip)));
        let new_code = || self.settings.ids.referral_code().as_str().to_owned();
        let account = NewAccount {
            id: ev.account.as_str(),
            email: ev
                .email
                .as_ref()
                .map(|e| (e.as_str(), e.normalized(), e.domain())),
            ip_hash: ip_hash.as_deref(),
            now,
            new_code: &new_code,
        };
        let Some((referrer, campaign, click_id)) = target else {
            let acc = self.store.ensure_account(&account).await?;
            return Ok(SignupOutcome {
                account: acc.id,
                referral_code: acc.referral_code,
                created: true,
                referral: None,
            });
        };
        let recent = self
            .store
            .count_recent_attributions(&referrer.id, now - 86_400)
            .await?;
        let reasons = signals(
            &referrer,
            &SignupFacts {
                email: ev.email.as_ref(),
                ip_hash: ip_hash.as_deref(),
                referrer_recent: recent,
            },
            campaign.velocity_threshold,
        );
        let (status, action) = transitions::on_signup(!reasons.is_empty());
        // The account and its attribution land together or not at all.
        let (acc, attributed) = self
            .store
            .record_signup(
                &account,
                Some(&NewAttribution {
                    referrer_account: &referrer.id,
                    referred_account: ev.account.as_str(),
                    code: &referrer.referral_code,
                    campaign: &campaign.id,
                    click_id,
                    reasons: &reasons,
                    status,
                    action,
                    at: now,
                }),
            )
            .await?;
        let (row, created) =
            attributed.ok_or_else(|| Error::internal("signup without its attribution"))?;
        Ok(SignupOutcome {
            account: acc.id,
            referral_code: acc.referral_code,
            created,
            referral: Some(referral_view(&row, &[])),
        })
    }

    /// The account, created with a fresh referral code if new (a first visit to the
    /// "invite friends" page).
    pub(crate) async fn ensure_account(&self, account: &AccountId) -> Result<AccountRow> {
        let new_code = || self.settings.ids.referral_code().as_str().to_owned();
        Ok(self
            .store
            .ensure_account(&NewAccount {
                id: account.as_str(),
                email: None,
                ip_hash: None,
                now: self.clock.now(),
                new_code: &new_code,
            })
            .await?)
    }

    /// Records a qualification; an `attributed` referral becomes `qualified`, gets its two
    /// rewards and they are granted at once.
    pub async fn record_qualification(&self, ev: QualifyEvent) -> Result<QualifyOutcome> {
        let Some(attr) = self
            .store
            .attribution_by_referred(ev.account.as_str())
            .await?
        else {
            return Ok(QualifyOutcome {
                account: ev.account.to_string(),
                referred: false,
                referral: None,
            });
        };
        let campaign = self.campaign(&attr.campaign).await?;
        let over_cap = cap_rule(&campaign);
        let plan = self.reward_plan(&campaign, &over_cap);
        let applied = self
            .store
            .change_status(
                attr.id,
                &StatusChange {
                    actor: "system",
                    reason: Some(ev.event.as_str()),
                    note: None,
                    qualification: Some((ev.event.as_str(), ev.amount)),
                    refund: None,
                    plan: Some(&plan),
                    now: plan.now,
                },
                transitions::qualify,
            )
            .await?;
        // A refusal (already qualified, decided or rewarded) is not an error: the event is
        // a replay or too late, and the caller gets the referral as it is.
        if let Applied::Done { change, .. } = &applied
            && change.create_rewards
        {
            self.grant_own(attr.id, plan.lease_until).await?;
        }
        let view = self.referral_with_rewards(attr.id).await?;
        Ok(QualifyOutcome {
            account: ev.account.to_string(),
            referred: true,
            referral: Some(view),
        })
    }

    pub(crate) async fn referral_with_rewards(
        &self,
        id: i64,
    ) -> Result<super::views::ReferralView> {
        let row: AttributionRow =
            self.store
                .attribution(id)
                .await?
                .ok_or_else(|| Error::NotFound {
                    what: "referral",
                    id: id.to_string(),
                })?;
        let rewards = self.store.rewards_for(&[id]).await?;
        Ok(referral_view(&row, &rewards))
    }
}
