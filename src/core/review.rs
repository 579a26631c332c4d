//! The fraud signals that hold a referral for review. Pure: the caller fetches the data.

use super::text::{Email, is_disposable_domain, is_public_domain};
use super::types::ReviewReason;
use crate::store::AccountRow;

/// What is known about the new account at signup.
pub struct SignupFacts<'a> {
    pub email: Option<&'a Email>,
    pub ip_hash: Option<&'a str>,
    /// Attributions of the referrer in the last 24 hours, before this one.
    pub referrer_recent: i64,
}

/// Each signal that fires, with a short explanation for the reviewer.
pub fn signals(
    referrer: &AccountRow,
    facts: &SignupFacts<'_>,
    velocity_threshold: i64,
) -> Vec<(ReviewReason, String)> {
    let mut out = Vec::new();
    if let Some(email) = facts.email {
        if referrer.email_normalized.as_deref() == Some(email.normalized()) {
            out.push((
                ReviewReason::SameEmail,
                "the referred e-mail normalizes to the referrer's address".to_owned(),
            ));
        }
        if referrer.email_domain.as_deref() == Some(email.domain())
            && !is_public_domain(email.domain())
        {
            out.push((
                ReviewReason::SameEmailDomain,
                format!("both accounts use the non-public domain {}", email.domain()),
            ));
        }
        if is_disposable_domain(email.domain()) {
            out.push((
                ReviewReason::DisposableEmail,
                format!("{} is a disposable e-mail domain", email.domain()),
            ));
        }
    }
    if let (Some(a), Some(b)) = (facts.ip_hash, referrer.signup_ip_hash.as_deref())
        && a == b
    {
        out.push((
            ReviewReason::SameIp,
            "signed up from the referrer's IP address (compared as keyed hashes)".to_owned(),
        ));
    }
    if facts.referrer_recent >= velocity_threshold {
        out.push((
            ReviewReason::ReferrerVelocity,
            format!(
                "the referrer already has {} referrals in the last 24 hours (threshold {velocity_threshold})",
                facts.referrer_recent
            ),
        ));
    }
    out
}
