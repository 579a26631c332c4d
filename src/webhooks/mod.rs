//! Webhooks that follow the Standard Webhooks spec: every lifecycle change is pushed to
//! the endpoints operators register, signed (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<base64 HMAC-SHA256>`), at least once.
//!
//! Why this shape: the events are written by database triggers in the same transaction
//! as the change they report (migration 0004), so no code path can change a referral or
//! a reward without its event, and a crash between the change and the delivery loses
//! nothing: the delivery row is still pending. The [`dispatcher`] claims due deliveries
//! with a lease, so when several `serve` instances share PostgreSQL each delivery is
//! sent by one of them (`FOR UPDATE SKIP LOCKED`), and a claim left by a dead process
//! expires and is sent again. Receivers deduplicate by `webhook-id` (the event id, the
//! same on every retry and replay).

pub mod dispatcher;
mod manage;
pub mod sign;

pub use dispatcher::{DispatchConfig, Dispatcher};
pub use manage::{CreatedEndpoint, DeliveryView, EndpointView, Webhooks};

/// The event types, as receivers see them in `type` and endpoints subscribe to them.
pub const EVENT_TYPES: [&str; 8] = [
    "referral.attributed",
    "referral.review_required",
    "referral.approved",
    "referral.rejected",
    "reward.granted",
    "reward.capped",
    "reward.failed",
    "reward.voided",
];

/// Unix seconds by the wall clock: delivery times are infrastructure, and the database
/// stamps the events from its own clock (see `dispatcher`).
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
