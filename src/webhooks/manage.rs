//! What operators do with webhooks (CLI `webhooks …`, REST `/admin/webhooks…`): register
//! an endpoint (its secret is shown once), list and disable endpoints, read the delivery
//! log, and replay deliveries.

use schemars::JsonSchema;
use serde::Serialize;

use super::{EVENT_TYPES, now, sign};
use crate::core::clock::rfc3339;
use crate::core::error::Error;
use crate::core::types::random_id;
use crate::store::Store;
use crate::store::webhooks::{DeliveryRow, WebhookEndpointRow};

type Result<T> = std::result::Result<T, Error>;

#[derive(Clone)]
pub struct Webhooks {
    store: Store,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    /// Event types sent to it; `["*"]` for all.
    pub events: Vec<String>,
    pub created_at: String,
    pub active: bool,
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `webhook-signature` with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema, PartialEq)]
pub struct DeliveryView {
    pub id: i64,
    /// The event id, sent as `webhook-id` (the same on every retry and replay).
    pub event_id: String,
    pub event_type: String,
    pub endpoint_id: String,
    /// `pending` (sent at `next_attempt_at`), `delivered`, or `dead` (out of attempts or
    /// its endpoint disabled; replayable).
    pub status: String,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The receiver's last HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
    pub created_at: String,
}

fn endpoint_view(r: WebhookEndpointRow) -> EndpointView {
    EndpointView {
        events: r.events.split(',').map(str::to_owned).collect(),
        id: r.id,
        url: r.url,
        created_at: rfc3339(r.created_at),
        active: r.disabled_at.is_none(),
    }
}

fn delivery_view(r: DeliveryRow) -> DeliveryView {
    DeliveryView {
        next_attempt_at: (r.status == "pending").then(|| rfc3339(r.next_attempt_at)),
        id: r.id,
        event_id: r.event_id,
        event_type: r.event_type,
        endpoint_id: r.endpoint_id,
        status: r.status,
        attempts: r.attempts,
        last_status: r.last_status,
        last_error: r.last_error,
        delivered_at: r.delivered_at.map(rfc3339),
        created_at: rfc3339(r.created_at),
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        message: message.into(),
    }
}

/// `http(s)://host…`, at most 2,000 characters, no credentials in it.
fn parse_url(raw: &str) -> Result<String> {
    let u = url::Url::parse(raw.trim()).map_err(|e| invalid("url", e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(invalid("url", "an http:// or https:// URL"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid(
            "url",
            "no credentials in the URL; the signature authenticates us",
        ));
    }
    if raw.len() > 2000 {
        return Err(invalid("url", "at most 2000 characters"));
    }
    Ok(u.to_string())
}

/// A comma-separated list of known event types, or `*`.
fn parse_events(raw: &str) -> Result<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw == "*" {
        return Ok("*".into());
    }
    let mut out: Vec<&str> = Vec::new();
    for t in raw.split(',').map(str::trim) {
        if !EVENT_TYPES.contains(&t) {
            return Err(invalid(
                "events",
                format!(
                    "unknown event type '{t}'; known: {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out.join(","))
}

impl Webhooks {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn create(&self, url: &str, events: &str) -> Result<CreatedEndpoint> {
        let url = parse_url(url)?;
        let events = parse_events(events)?;
        let id = random_id("whe_");
        let secret = sign::new_secret();
        let at = now();
        self.store
            .create_webhook_endpoint(&id, &url, &secret, &events, at)
            .await?;
        Ok(CreatedEndpoint {
            endpoint: endpoint_view(WebhookEndpointRow {
                id,
                url,
                events,
                created_at: at,
                disabled_at: None,
            }),
            secret,
        })
    }

    pub async fn list(&self) -> Result<Vec<EndpointView>> {
        Ok(self
            .store
            .webhook_endpoints()
            .await?
            .into_iter()
            .map(endpoint_view)
            .collect())
    }

    /// Stops sending to `id`; its pending deliveries are dead-lettered.
    pub async fn disable(&self, id: &str) -> Result<()> {
        if self.store.disable_webhook_endpoint(id, now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound {
                what: "active webhook endpoint",
                id: id.to_owned(),
            })
        }
    }

    /// The delivery log, newest first: `status` one of pending, delivered, dead.
    pub async fn deliveries(&self, status: Option<&str>, limit: i64) -> Result<Vec<DeliveryView>> {
        if let Some(s) = status
            && !matches!(s, "pending" | "delivered" | "dead")
        {
            return Err(invalid("status", "pending, delivered or dead"));
        }
        if !(1..=500).contains(&limit) {
            return Err(invalid("limit", "1-500"));
        }
        Ok(self
            .store
            .webhook_deliveries(status, limit)
            .await?
            .into_iter()
            .map(delivery_view)
            .collect())
    }

    /// Sends delivery `id` again (whatever its status), as soon as a dispatcher runs.
    pub async fn replay(&self, id: i64) -> Result<()> {
        if self.store.replay_webhook_delivery(id, now()).await? {
            Ok(())
        } else {
            Err(Error::NotFound {
                what: "webhook delivery to an active endpoint",
                id: id.to_string(),
            })
        }
    }

    /// Replays every dead-lettered delivery; how many.
    pub async fn replay_dead(&self) -> Result<u64> {
        Ok(self.store.replay_dead_webhook_deliveries(now()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_and_event_lists_are_parsed_naming_the_field() {
        assert!(parse_url("https://hooks.example/referrals").is_ok());
        assert!(
            parse_url("ftp://x.example")
                .unwrap_err()
                .to_string()
                .contains("url")
        );
        assert!(parse_url("https://u:p@x.example").is_err());
        assert_eq!(parse_events("").unwrap(), "*");
        assert_eq!(
            parse_events("reward.granted, referral.approved,reward.granted").unwrap(),
            "reward.granted,referral.approved"
        );
        let e = parse_events("reward.paid").unwrap_err();
        assert!(e.to_string().contains("events"), "{e}");
    }
}
