//! Campaigns as data operators manage: what each side earns, the attribution window and
//! model, caps per referrer per calendar period, the velocity threshold of the review
//! signal, active dates, the holding period and the refund policy.
//!
//! A campaign's settings are read when a referral needs them (a click, a signup, a
//! qualification) and copied into what that creates: a reward keeps its credits, its end
//! of holding and its refund policy, so changing a campaign never changes rewards that
//! already exist. Every create and update is audited (who, when, each field before and
//! after) in the same transaction as the change.

use serde_json::Value;

use super::access::{Operation, Principal};
use super::clock::rfc3339;
use super::error::Error;
use super::text::SafeText;
use super::types::{AttributionModel, CampaignId, CapPeriod};
use super::views::{CampaignChangeView, CampaignDetail, CampaignList, CampaignView, FieldChange};
use super::{Referrals, Result};
use crate::store::{CampaignAudit, CampaignRow};

/// Limits of the numbers an operator may set; outside them a value is refused, naming
/// the field.
pub mod limits {
    pub const CREDITS: std::ops::RangeInclusive<i64> = 0..=1_000_000_000;
    pub const WINDOW_DAYS: std::ops::RangeInclusive<i64> = 1..=365;
    pub const HOLDING_DAYS: std::ops::RangeInclusive<i64> = 0..=365;
    pub const VELOCITY: std::ops::RangeInclusive<i64> = 1..=100_000;
    pub const CAP_COUNT: std::ops::RangeInclusive<i64> = 1..=1_000_000;
    pub const CAP_CREDITS: std::ops::RangeInclusive<i64> = 1..=1_000_000_000_000;
}

/// A number an operator sent, checked against its range.
pub fn bounded(field: &'static str, v: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(Error::Invalid {
            field,
            message: format!("must be between {} and {}", range.start(), range.end()),
        })
    }
}

/// Everything an operator configures on a campaign, each value already in range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignSettings {
    pub name: SafeText,
    pub referrer_credits: i64,
    pub referred_credits: i64,
    pub window_days: i64,
    pub attribution_model: AttributionModel,
    pub cap_count: Option<i64>,
    pub cap_credits: Option<i64>,
    pub cap_period: CapPeriod,
    pub velocity_threshold: i64,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub holding_days: i64,
    pub reverse_on_refund: bool,
}

impl CampaignSettings {
    /// The defaults of a new campaign besides its name and credits: 30-day window, last
    /// click, no cap (counted per month when set), velocity 10, always active, no holding
    /// period, rewards reversed on refund.
    pub fn new(name: SafeText, referrer_credits: i64, referred_credits: i64) -> Self {
        Self {
            name,
            referrer_credits,
            referred_credits,
            window_days: 30,
            attribution_model: AttributionModel::LastClick,
            cap_count: None,
            cap_credits: None,
            cap_period: CapPeriod::Month,
            velocity_threshold: 10,
            starts_at: None,
            ends_at: None,
            holding_days: 0,
            reverse_on_refund: true,
        }
    }

    /// Checks what no single field can: the active dates are in order.
    fn checked(self) -> Result<Self> {
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && s >= e
        {
            return Err(Error::Invalid {
                field: "ends_at",
                message: "must be after starts_at".into(),
            });
        }
        Ok(self)
    }

    fn row(&self, id: &str, created_at: i64, updated_at: i64) -> CampaignRow {
        CampaignRow {
            id: id.to_owned(),
            name: self.name.as_str().to_owned(),
            referrer_credits: self.referrer_credits,
            referred_credits: self.referred_credits,
            window_days: self.window_days,
            cap_count: self.cap_count,
            cap_credits: self.cap_credits,
            cap_period: self.cap_period,
            attribution_model: self.attribution_model,
            velocity_threshold: self.velocity_threshold,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            holding_days: self.holding_days,
            reverse_on_refund: i64::from(self.reverse_on_refund),
            created_at,
            updated_at,
        }
    }

    fn of_row(r: &CampaignRow) -> Result<Self> {
        Ok(Self {
            name: SafeText::parse("name", &r.name, 100)?,
            referrer_credits: r.referrer_credits,
            referred_credits: r.referred_credits,
            window_days: r.window_days,
            attribution_model: r.attribution_model,
            cap_count: r.cap_count,
            cap_credits: r.cap_credits,
            cap_period: r.cap_period,
            velocity_threshold: r.velocity_threshold,
            starts_at: r.starts_at,
            ends_at: r.ends_at,
            holding_days: r.holding_days,
            reverse_on_refund: r.reverse_on_refund != 0,
        })
    }
}

/// Fields an update may clear (set back to "none").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clearable {
    CapCount,
    CapCredits,
    StartsAt,
    EndsAt,
}

/// An update: the fields to set, and those to clear. Unnamed fields keep their value.
#[derive(Debug, Clone, Default)]
pub struct CampaignEdit {
    pub name: Option<SafeText>,
    pub referrer_credits: Option<i64>,
    pub referred_credits: Option<i64>,
    pub window_days: Option<i64>,
    pub attribution_model: Option<AttributionModel>,
    pub cap_count: Option<i64>,
    pub cap_credits: Option<i64>,
    pub cap_period: Option<CapPeriod>,
    pub velocity_threshold: Option<i64>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub holding_days: Option<i64>,
    pub reverse_on_refund: Option<bool>,
    pub clear: Vec<Clearable>,
}

impl CampaignEdit {
    /// The settings with this edit applied, checked as a whole.
    pub fn apply(&self, mut s: CampaignSettings) -> Result<CampaignSettings> {
        macro_rules! set {
            ($($f:ident),+) => { $( if let Some(v) = &self.$f { s.$f = v.clone(); } )+ };
        }
        set!(
            name,
            referrer_credits,
            referred_credits,
            window_days,
            attribution_model,
            cap_period,
            velocity_threshold,
            holding_days,
            reverse_on_refund
        );
        macro_rules! set_opt {
            ($($f:ident),+) => { $( if let Some(v) = self.$f { s.$f = Some(v); } )+ };
        }
        set_opt!(cap_count, cap_credits, starts_at, ends_at);
        for c in &self.clear {
            let (slot, field, set) = match c {
                Clearable::CapCount => (&mut s.cap_count, "cap_count", self.cap_count),
                Clearable::CapCredits => (&mut s.cap_credits, "cap_credits", self.cap_credits),
                Clearable::StartsAt => (&mut s.starts_at, "starts_at", self.starts_at),
                Clearable::EndsAt => (&mut s.ends_at, "ends_at", self.ends_at),
            };
            if set.is_some() {
                return Err(Error::Invalid {
                    field,
                    message: "is both set and cleared".into(),
                });
            }
            *slot = None;
        }
        s.checked()
    }

    fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.referrer_credits.is_none()
            && self.referred_credits.is_none()
            && self.window_days.is_none()
            && self.attribution_model.is_none()
            && self.cap_count.is_none()
            && self.cap_credits.is_none()
            && self.cap_period.is_none()
            && self.velocity_threshold.is_none()
            && self.starts_at.is_none()
            && self.ends_at.is_none()
            && self.holding_days.is_none()
            && self.reverse_on_refund.is_none()
            && self.clear.is_empty()
    }
}

/// Whether the campaign takes new clicks and code signups at `now`.
pub(crate) fn is_active(c: &CampaignRow, now: i64) -> bool {
    c.starts_at.is_none_or(|s| now >= s) && c.ends_at.is_none_or(|e| now < e)
}

pub(crate) fn campaign_view(c: &CampaignRow, now: i64) -> CampaignView {
    CampaignView {
        id: c.id.clone(),
        name: c.name.clone(),
        referrer_credits: c.referrer_credits,
        referred_credits: c.referred_credits,
        attribution_window_days: c.window_days,
        attribution_model: c.attribution_model,
        cap_count: c.cap_count,
        cap_credits: c.cap_credits,
        cap_period: c.cap_period,
        velocity_threshold: c.velocity_threshold,
        starts_at: c.starts_at.map(rfc3339),
        ends_at: c.ends_at.map(rfc3339),
        holding_days: c.holding_days,
        reverse_on_refund: c.reverse_on_refund != 0,
        active: is_active(c, now),
        created_at: rfc3339(c.created_at),
        updated_at: rfc3339(c.updated_at),
    }
}

/// The settings as the audit trail records them: the view's fields an operator sets.
fn audited_fields(c: &CampaignRow) -> serde_json::Map<String, Value> {
    let mut v = match serde_json::to_value(campaign_view(c, 0)) {
        Ok(Value::Object(o)) => o,
        _ => serde_json::Map::new(),
    };
    for derived in ["id", "active", "created_at", "updated_at"] {
        v.remove(derived);
    }
    v
}

/// Each field that differs, before → after (absent is `null`).
fn diff(before: Option<&CampaignRow>, after: &CampaignRow) -> Vec<FieldChange> {
    let old = before.map(audited_fields).unwrap_or_default();
    let new = audited_fields(after);
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (old.get(k), new.get(k));
            (b != a).then(|| FieldChange {
                field: k.clone(),
                before: b.cloned().unwrap_or(Value::Null),
                after: a.cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn audit_json(changes: &[FieldChange]) -> String {
    serde_json::to_string(changes).unwrap_or_else(|_| "[]".into())
}

impl Referrals {
    pub async fn list_campaigns(&self, principal: Option<&Principal>) -> Result<CampaignList> {
        self.metered(principal, Operation::ListCampaigns, self.campaign_list())
            .await
    }

    /// Every campaign, by id (trusted callers).
    pub async fn campaign_list(&self) -> Result<CampaignList> {
        let now = self.clock.now();
        let rows = self.store.campaigns().await?;
        Ok(CampaignList {
            campaigns: rows.iter().map(|c| campaign_view(c, now)).collect(),
        })
    }

    pub async fn get_campaign(
        &self,
        principal: Option<&Principal>,
        id: CampaignId,
    ) -> Result<CampaignDetail> {
        self.metered(principal, Operation::GetCampaign, self.campaign_detail(&id))
            .await
    }

    /// A campaign with its audit trail.
    pub async fn campaign_detail(&self, id: &CampaignId) -> Result<CampaignDetail> {
        let c = self.campaign(id.as_str()).await?;
        let changes = self.store.campaign_changes(id.as_str()).await?;
        Ok(CampaignDetail {
            campaign: campaign_view(&c, self.clock.now()),
            changes: changes
                .iter()
                .map(|r| CampaignChangeView {
                    at: rfc3339(r.at),
                    actor: r.actor.clone(),
                    action: r.action.clone(),
                    fields: serde_json::from_str(&r.changes).unwrap_or_default(),
                })
                .collect(),
        })
    }

    pub async fn create_campaign(
        &self,
        principal: Option<&Principal>,
        id: CampaignId,
        settings: CampaignSettings,
    ) -> Result<CampaignDetail> {
        let actor = super::admin::actor(principal);
        self.metered(principal, Operation::CreateCampaign, async {
            self.create_campaign_as(&actor, &id, settings).await?;
            self.campaign_detail(&id).await
        })
        .await
    }

    /// Creates a campaign as `actor` (CLI, demo seeding, first run); a taken id is a
    /// conflict.
    pub async fn create_campaign_as(
        &self,
        actor: &str,
        id: &CampaignId,
        settings: CampaignSettings,
    ) -> Result<()> {
        let now = self.clock.now();
        let row = settings.checked()?.row(id.as_str(), now, now);
        let audit = CampaignAudit {
            actor,
            changes: audit_json(&diff(None, &row)),
            at: now,
        };
        if self.store.create_campaign(&row, &audit).await? {
            Ok(())
        } else {
            Err(Error::Conflict {
                message: format!(
                    "campaign {} already exists; use update_campaign to change it",
                    id.as_str()
                ),
                current_status: None,
            })
        }
    }

    pub async fn update_campaign(
        &self,
        principal: Option<&Principal>,
        id: CampaignId,
        edit: CampaignEdit,
    ) -> Result<CampaignDetail> {
        let actor = super::admin::actor(principal);
        self.metered(principal, Operation::UpdateCampaign, async {
            self.update_campaign_as(&actor, &id, edit).await?;
            self.campaign_detail(&id).await
        })
        .await
    }

    /// Applies `edit` under the campaign's row lock and audits the fields it changed.
    /// An edit that changes nothing is refused (nothing to audit).
    pub async fn update_campaign_as(
        &self,
        actor: &str,
        id: &CampaignId,
        edit: CampaignEdit,
    ) -> Result<()> {
        if edit.is_empty() {
            return Err(Error::Invalid {
                field: "id",
                message: "name at least one field to change".into(),
            });
        }
        let now = self.clock.now();
        let updated = self
            .store
            .update_campaign(id.as_str(), actor, |old| {
                let new =
                    edit.apply(CampaignSettings::of_row(old)?)?
                        .row(&old.id, old.created_at, now);
                let changes = diff(Some(old), &new);
                Ok::<_, Error>((
                    new,
                    CampaignAudit {
                        actor: "",
                        changes: audit_json(&changes),
                        at: now,
                    },
                ))
            })
            .await?;
        self.forget_campaign(id.as_str());
        match updated {
            None => Err(Error::NotFound {
                what: "campaign",
                id: id.as_str().to_owned(),
            }),
            Some(r) => r.map(drop),
        }
    }

    /// Creates the `default` campaign on first run (100 credits to the referrer, 50 to
    /// the referred account, otherwise [`CampaignSettings::new`]'s defaults).
    pub async fn ensure_default_campaign(&self) -> Result<()> {
        let id = CampaignId::default_campaign();
        if self.store.campaign(id.as_str()).await?.is_some() {
            return Ok(());
        }
        let settings = CampaignSettings::new(SafeText::parse("name", "Default", 100)?, 100, 50);
        match self.create_campaign_as("system", &id, settings).await {
            // Another instance created it meanwhile.
            Err(Error::Conflict { .. }) => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> CampaignSettings {
        CampaignSettings::new(SafeText::parse("name", "Spring", 100).unwrap(), 100, 50)
    }

    #[test]
    fn an_edit_sets_named_fields_clears_listed_ones_and_keeps_the_rest() {
        let mut s = settings();
        s.cap_count = Some(3);
        s.ends_at = Some(2_000);
        let edit = CampaignEdit {
            referrer_credits: Some(200),
            clear: vec![Clearable::CapCount],
            ..Default::default()
        };
        let out = edit.apply(s.clone()).unwrap();
        assert_eq!(out.referrer_credits, 200);
        assert_eq!(out.cap_count, None);
        assert_eq!(out.ends_at, Some(2_000));
        assert_eq!(out.referred_credits, 50);
    }

    #[test]
    fn setting_and_clearing_one_field_or_inverting_the_dates_is_refused() {
        let edit = CampaignEdit {
            cap_count: Some(3),
            clear: vec![Clearable::CapCount],
            ..Default::default()
        };
        let e = edit.apply(settings()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "cap_count",
                    ..
                }
            ),
            "{e:?}"
        );
        let edit = CampaignEdit {
            starts_at: Some(10),
            ends_at: Some(5),
            ..Default::default()
        };
        let e = edit.apply(settings()).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Invalid {
                    field: "ends_at",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_audit_diff_names_only_changed_fields() {
        let a = settings().row("spring", 0, 0);
        let mut b = a.clone();
        b.holding_days = 14;
        b.updated_at = 99;
        let d = diff(Some(&a), &b);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "holding_days");
        assert_eq!(
            (d[0].before.clone(), d[0].after.clone()),
            (Value::from(0), Value::from(14))
        );
        // A creation lists every set field with `null` before.
        assert!(diff(None, &a).iter().all(|c| c.before.is_null()));
    }

    #[test]
    fn a_campaign_is_active_between_its_dates() {
        let mut c = settings().row("x", 0, 0);
        assert!(is_active(&c, 5));
        c.starts_at = Some(10);
        c.ends_at = Some(20);
        assert!(!is_active(&c, 9));
        assert!(is_active(&c, 10));
        assert!(!is_active(&c, 20));
    }
}
