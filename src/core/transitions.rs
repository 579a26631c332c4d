//! The lifecycle rules of a referral, as pure functions: given what the row holds, which
//! status comes next, what the audit trail records, and whether rewards are created; or a
//! refusal naming the status the referral is in.
//!
//! They are the only place that decides a status. The store runs them under the row
//! lock and applies what they return (see [`crate::store::status_change`]), so the rules
//! are unit-tested here without a database, and the store never second-guesses them.

use super::types::{AttributionStatus, AuditAction, ReviewDecision};
use crate::store::{Change, Current};

/// A change was refused because the referral is in `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refusal(pub AttributionStatus);

/// The first status of a new attribution: held for review when any fraud signal fired.
pub(crate) fn on_signup(held: bool) -> (AttributionStatus, AuditAction) {
    if held {
        (
            AttributionStatus::ReviewRequired,
            AuditAction::HeldForReview,
        )
    } else {
        (AttributionStatus::Attributed, AuditAction::Attributed)
    }
}

/// A qualification arrived. `attributed` becomes `qualified` and gets its rewards;
/// `review_required` records it and keeps waiting for a decision. A referral qualifies
/// once: a repeat, or any other status, is refused.
pub(crate) fn qualify(c: Current) -> Result<Change, Refusal> {
    let next = match c.status {
        _ if c.qualified => return Err(Refusal(c.status)),
        AttributionStatus::Attributed => AttributionStatus::Qualified,
        AttributionStatus::ReviewRequired => AttributionStatus::ReviewRequired,
        other => return Err(Refusal(other)),
    };
    Ok(Change {
        next,
        action: AuditAction::Qualified,
        decision: None,
        record_qualification: true,
        create_rewards: next == AttributionStatus::Qualified,
    })
}

/// Approving a held referral releases it: to `qualified` with rewards when the
/// qualification already arrived, else back to `attributed` to wait for it.
pub(crate) fn approve(c: Current) -> Result<Change, Refusal> {
    if c.status != AttributionStatus::ReviewRequired {
        return Err(Refusal(c.status));
    }
    let next = if c.qualified {
        AttributionStatus::Qualified
    } else {
        AttributionStatus::Attributed
    };
    Ok(Change {
        next,
        action: AuditAction::Approved,
        decision: Some(ReviewDecision::Approved),
        record_qualification: false,
        create_rewards: c.qualified,
    })
}

/// Rejecting a held referral is final and creates no rewards.
pub(crate) fn reject(c: Current) -> Result<Change, Refusal> {
    if c.status != AttributionStatus::ReviewRequired {
        return Err(Refusal(c.status));
    }
    Ok(Change {
        next: AttributionStatus::Rejected,
        action: AuditAction::Rejected,
        decision: Some(ReviewDecision::Rejected),
        record_qualification: false,
        create_rewards: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttributionStatus::*;

    fn at(status: AttributionStatus, qualified: bool) -> Current {
        Current { status, qualified }
    }

    #[test]
    fn signup_is_held_only_when_a_signal_fired() {
        assert_eq!(on_signup(false), (Attributed, AuditAction::Attributed));
        assert_eq!(
            on_signup(true),
            (ReviewRequired, AuditAction::HeldForReview)
        );
    }

    #[test]
    fn qualifying_rewards_an_attributed_referral_and_holds_a_held_one() {
        let c = qualify(at(Attributed, false)).unwrap();
        assert_eq!((c.next, c.create_rewards), (Qualified, true));
        assert!(c.record_qualification);
        let c = qualify(at(ReviewRequired, false)).unwrap();
        assert_eq!((c.next, c.create_rewards), (ReviewRequired, false));
        assert!(c.record_qualification);
        assert_eq!(c.action, AuditAction::Qualified);
    }

    #[test]
    fn a_referral_qualifies_once() {
        assert_eq!(
            qualify(at(ReviewRequired, true)),
            Err(Refusal(ReviewRequired))
        );
        for s in [Qualified, Rewarded, Rejected] {
            assert_eq!(qualify(at(s, true)), Err(Refusal(s)));
            assert_eq!(qualify(at(s, false)), Err(Refusal(s)));
        }
    }

    #[test]
    fn approving_resumes_where_the_referral_was_held() {
        let c = approve(at(ReviewRequired, true)).unwrap();
        assert_eq!((c.next, c.create_rewards), (Qualified, true));
        let c = approve(at(ReviewRequired, false)).unwrap();
        assert_eq!((c.next, c.create_rewards), (Attributed, false));
        assert_eq!(c.decision, Some(ReviewDecision::Approved));
        assert_eq!(c.action, AuditAction::Approved);
        assert!(!c.record_qualification);
    }

    #[test]
    fn rejecting_is_final_and_creates_nothing() {
        let c = reject(at(ReviewRequired, true)).unwrap();
        assert_eq!((c.next, c.create_rewards), (Rejected, false));
        assert_eq!(c.decision, Some(ReviewDecision::Rejected));
    }

    #[test]
    fn only_a_held_referral_can_be_decided() {
        for s in [Attributed, Qualified, Rewarded, Rejected] {
            for q in [false, true] {
                assert_eq!(approve(at(s, q)), Err(Refusal(s)));
                assert_eq!(reject(at(s, q)), Err(Refusal(s)));
            }
        }
    }
}
