//! The lifecycle rules of a referral, as pure functions: given what the row holds, which
//! status comes next, what the audit trail records, and whether rewards are created; or a
//! refusal naming the status the referral is in.
//!
//! They are the only place that decides a status. The store runs them under the row
//! lock and applies what they return (see [`crate::store::status_change`]), so the rules
//! are unit-tested here without a database, and the store never second-guesses them.

use super::types::{AttributionStatus, AuditAction, ReviewDecision, RewardStatus};
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
        record_qualification: true,
        create_rewards: next == AttributionStatus::Qualified,
        ..Change::to(next, AuditAction::Qualified)
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
        decision: Some(ReviewDecision::Approved),
        create_rewards: c.qualified,
        ..Change::to(next, AuditAction::Approved)
    })
}

/// Rejecting a held referral is final and creates no rewards.
pub(crate) fn reject(c: Current) -> Result<Change, Refusal> {
    if c.status != AttributionStatus::ReviewRequired {
        return Err(Refusal(c.status));
    }
    Ok(Change {
        decision: Some(ReviewDecision::Rejected),
        ..Change::to(AttributionStatus::Rejected, AuditAction::Rejected)
    })
}

/// The referred account was refunded (or charged back).
///
/// - Rewarded or qualified, and its campaign reverses on refund: `reversed`; rewards not
///   yet granted are voided, granted ones are taken back.
/// - Rewarded or qualified, and its campaign keeps rewards: recorded, nothing else.
/// - Not yet qualified or still held for review: recorded, and a qualification already
///   received is forgotten, so the referral waits for a new qualifying event (approving
///   it later creates no rewards for the refunded payment).
/// - Rejected or reversed, or an already recorded refund of a rewarded referral (a
///   replay): refused; nothing changes.
pub(crate) fn refund(c: Current) -> Result<Change, Refusal> {
    use AttributionStatus::*;
    let base = |next| Change {
        record_refund: true,
        ..Change::to(next, AuditAction::Refunded)
    };
    match c.status {
        Rejected | Reversed => Err(Refusal(c.status)),
        Qualified | Rewarded if c.refunded => Err(Refusal(c.status)),
        Qualified | Rewarded if c.reversible => Ok(Change {
            action: AuditAction::Reversed,
            reverse_rewards: true,
            ..base(Reversed)
        }),
        Qualified | Rewarded => Ok(base(c.status)),
        Attributed | ReviewRequired => Ok(Change {
            clear_qualification: c.qualified,
            ..base(c.status)
        }),
    }
}

/// Which rewards an operator may void: those never granted and not already closed.
/// Granted rewards are taken back by a refund (which records the reversal), never by
/// voiding them silently.
pub(crate) fn can_void(status: RewardStatus) -> bool {
    use RewardStatus::*;
    matches!(status, Pending | Held | Failed | Conflict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttributionStatus::*;

    fn at(status: AttributionStatus, qualified: bool) -> Current {
        Current {
            status,
            qualified,
            refunded: false,
            reversible: true,
        }
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
    fn a_refund_reverses_a_rewarded_referral_once_when_its_campaign_says_so() {
        for s in [Qualified, Rewarded] {
            let c = refund(at(s, true)).unwrap();
            assert_eq!((c.next, c.action), (Reversed, AuditAction::Reversed));
            assert!(c.reverse_rewards && c.record_refund);
            let kept = refund(Current {
                reversible: false,
                ..at(s, true)
            })
            .unwrap();
            assert_eq!((kept.next, kept.reverse_rewards), (s, false));
            assert_eq!(kept.action, AuditAction::Refunded);
            let replay = Current {
                refunded: true,
                reversible: false,
                ..at(s, true)
            };
            assert_eq!(refund(replay), Err(Refusal(s)));
        }
        assert_eq!(refund(at(Reversed, true)), Err(Refusal(Reversed)));
        assert_eq!(refund(at(Rejected, true)), Err(Refusal(Rejected)));
    }

    #[test]
    fn a_refund_before_any_reward_forgets_the_qualification() {
        let c = refund(at(ReviewRequired, true)).unwrap();
        assert_eq!(c.next, ReviewRequired);
        assert!(c.clear_qualification && !c.reverse_rewards);
        let c = refund(at(Attributed, false)).unwrap();
        assert!(!c.clear_qualification && c.record_refund);
    }

    #[test]
    fn only_rewards_never_granted_can_be_voided() {
        use RewardStatus::*;
        for s in RewardStatus::ALL {
            assert_eq!(
                can_void(*s),
                matches!(s, Pending | Held | Failed | Conflict),
                "{s}"
            );
        }
    }

    #[test]
    fn only_a_held_referral_can_be_decided() {
        for s in [Attributed, Qualified, Rewarded, Rejected, Reversed] {
            for q in [false, true] {
                assert_eq!(approve(at(s, q)), Err(Refusal(s)));
                assert_eq!(reject(at(s, q)), Err(Refusal(s)));
            }
        }
    }
}
