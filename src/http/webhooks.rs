//! REST for webhook management (`/admin/webhooks…`): endpoints, the delivery log and
//! replays. Management routes, not operations: they need an admin JWT or an API key with
//! `webhooks:manage`, are not charged, and have no MCP tool (they change where data goes,
//! which is an operator's decision, not an agent's).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;

use super::HttpState;
use super::error::ApiError;
use super::rest::{Auth, J, Q};
use crate::core::access::{Scope, authorize_scope};
use crate::webhooks::{CreatedEndpoint, DeliveryView, EndpointView, Webhooks};

pub(super) fn routes() -> axum::Router<HttpState> {
    axum::Router::new()
        .route("/admin/webhooks", get(list).post(create))
        .route("/admin/webhooks/{id}/disable", post(disable))
        .route("/admin/webhooks/deliveries", get(deliveries))
        .route("/admin/webhooks/deliveries/replay-dead", post(replay_dead))
        .route("/admin/webhooks/deliveries/{id}/replay", post(replay))
}

fn allow(auth: &Auth, st: &HttpState, what: &str) -> Result<Webhooks, ApiError> {
    authorize_scope(auth.0.as_ref(), Scope::Webhooks, what)?;
    Ok(Webhooks::new(st.app.store.clone()))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookArgs {
    /// Where to POST events (http or https).
    pub url: String,
    /// Event types to send, e.g. `["reward.granted"]`; all if absent.
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesArgs {
    /// pending, delivered or dead.
    pub status: Option<String>,
    /// 1-500, default 50.
    pub limit: Option<i64>,
}

async fn list(
    State(st): State<HttpState>,
    auth: Auth,
) -> Result<Json<Vec<EndpointView>>, ApiError> {
    let w = allow(&auth, &st, "listing webhooks")?;
    Ok(Json(w.list().await?))
}

/// 201 with the endpoint and its secret, shown this once.
async fn create(
    State(st): State<HttpState>,
    auth: Auth,
    J(a): J<CreateWebhookArgs>,
) -> Result<(StatusCode, Json<CreatedEndpoint>), ApiError> {
    let w = allow(&auth, &st, "creating a webhook")?;
    let events = a.events.map(|e| e.join(",")).unwrap_or_else(|| "*".into());
    Ok((StatusCode::CREATED, Json(w.create(&a.url, &events).await?)))
}

async fn disable(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let w = allow(&auth, &st, "disabling a webhook")?;
    w.disable(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(st): State<HttpState>,
    auth: Auth,
    Q(a): Q<DeliveriesArgs>,
) -> Result<Json<Vec<DeliveryView>>, ApiError> {
    let w = allow(&auth, &st, "the webhook delivery log")?;
    Ok(Json(
        w.deliveries(a.status.as_deref(), a.limit.unwrap_or(50))
            .await?,
    ))
}

async fn replay(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let w = allow(&auth, &st, "replaying a webhook delivery")?;
    w.replay(id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn replay_dead(
    State(st): State<HttpState>,
    auth: Auth,
) -> Result<Json<serde_json::Value>, ApiError> {
    let w = allow(&auth, &st, "replaying webhook deliveries")?;
    Ok(Json(
        serde_json::json!({"replayed": w.replay_dead().await?}),
    ))
}
