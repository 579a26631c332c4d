//! The persisted vocabulary: every closed set of words the store writes into a text
//! column (statuses, sides, review reasons, attribution models, audit actions).
//!
//! They live in the store, not the core, because the store decodes them: a row struct
//! carries the enum, so no layer above ever compares status strings, and a word the code
//! does not know (a corrupt row, a newer schema) is a decode error, never a silent
//! default. The core re-exports the public ones from `core::types`, where the API types
//! use them; their serde and JSON Schema derives are what the tool schemas show.
//!
//! Decoding is a `sqlx::Decode` for the `Any` driver rather than `#[sqlx(try_from)]` so
//! that nullable columns (`Option<ReviewDecision>`) and tuple queries decode the same way.
//! There is deliberately no `Encode`: values are bound with `.as_str()`, which keeps the
//! SQL text and the bound words visibly the same strings.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::any::{Any, AnyTypeInfo, AnyValueRef};
use sqlx::error::BoxDynError;

/// A word in a column that names none of the enum's variants.
#[derive(Debug)]
struct UnknownWord {
    kind: &'static str,
    word: String,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?} in the database", self.kind, self.word)
    }
}

impl std::error::Error for UnknownWord {}

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
            pub fn from_db(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl sqlx::Type<Any> for $name {
            fn type_info() -> AnyTypeInfo {
                <str as sqlx::Type<Any>>::type_info()
            }
        }
        impl<'r> sqlx::Decode<'r, Any> for $name {
            fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
                let word = <&str as sqlx::Decode<'r, Any>>::decode(value)?;
                Self::from_db(word).ok_or_else(|| {
                    Box::new(UnknownWord { kind: stringify!($name), word: word.to_owned() }) as BoxDynError
                })
            }
        }
    };
}

string_enum!(
    /// Where a referral is in its lifecycle.
    AttributionStatus {
        Attributed => "attributed",
        ReviewRequired => "review_required",
        Qualified => "qualified",
        Rewarded => "rewarded",
        Rejected => "rejected",
        Reversed => "reversed",
    }
);

string_enum!(
    /// Where one side's reward is. `held`: waiting for the campaign's holding period
    /// (until `grant_after`), then granted by recover or serve's timer. `failed`: billing
    /// could not be reached; recover retries it. `conflict`: billing refused the key as
    /// "same key, different amount"; never retried, an operator voids it. `reversing`: a
    /// refund is taking granted credits back. `voided`: will never be (or no longer is)
    /// granted, with a reason.
    RewardStatus {
        Pending => "pending",
        Held => "held",
        Granted => "granted",
        Capped => "capped",
        Failed => "failed",
        Conflict => "conflict",
        Reversing => "reversing",
        Voided => "voided",
    }
);

string_enum!(
    /// Which side of a referral a reward belongs to.
    Side {
        Referrer => "referrer",
        Referred => "referred",
    }
);

string_enum!(
    /// The fraud signals that hold a referral for review.
    ReviewReason {
        SameEmail => "same_email",
        SameEmailDomain => "same_email_domain",
        SameIp => "same_ip",
        DisposableEmail => "disposable_email",
        ReferrerVelocity => "referrer_velocity",
    }
);

string_enum!(
    /// How a campaign picks among a visitor's clicks.
    AttributionModel {
        LastClick => "last_click",
        FirstClick => "first_click",
    }
);

string_enum!(
    /// The reviewer's verdict on a held referral (`attributions.review_decision`).
    ReviewDecision {
        Approved => "approved",
        Rejected => "rejected",
    }
);

string_enum!(
    /// What an audit-trail entry records (`audit_events.action`).
    AuditAction {
        Attributed => "attributed",
        HeldForReview => "held_for_review",
        Qualified => "qualified",
        Approved => "approved",
        Rejected => "rejected",
        Refunded => "refunded",
        Reversed => "reversed",
        RewardVoided => "reward_voided",
    }
);

string_enum!(
    /// The period a campaign's cap counts over: the current UTC calendar day, ISO week
    /// (from Monday) or month.
    CapPeriod {
        Day => "day",
        Week => "week",
        Month => "month",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_and_unknown_words_are_refused() {
        for s in AttributionStatus::ALL {
            assert_eq!(AttributionStatus::from_db(s.as_str()), Some(*s));
        }
        for s in AuditAction::ALL {
            assert_eq!(AuditAction::from_db(s.as_str()), Some(*s));
        }
        assert_eq!(RewardStatus::from_db("Pending"), None);
        assert_eq!(Side::from_db(""), None);
    }

    #[tokio::test]
    async fn an_unknown_word_in_a_column_is_a_store_error_and_null_stays_none() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:").await.unwrap();
        let err = sqlx::query_as::<_, (AttributionStatus,)>("SELECT 'bogus'")
            .fetch_one(&pool)
            .await
            .map_err(crate::store::StoreError::from)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown AttributionStatus \"bogus\""),
            "{err}"
        );
        let (s, d, none): (RewardStatus, Option<ReviewDecision>, Option<ReviewDecision>) =
            sqlx::query_as("SELECT 'capped', 'approved', NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(s, RewardStatus::Capped);
        assert_eq!(d, Some(ReviewDecision::Approved));
        assert_eq!(none, None);
    }

    #[test]
    fn serde_names_are_the_stored_words() {
        for s in RewardStatus::ALL {
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(serde_json::Value::from(s.as_str()))
            );
        }
    }
}
