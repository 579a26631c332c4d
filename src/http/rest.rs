//! The REST routes: the nine documented paths, the lifecycle ingest routes and a free
//! credential check. Each handler is a few lines: authorize, parse, call the core, answer
//! JSON. Arguments are the MCP tools' argument types, so both faces accept exactly the
//! same inputs.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::HttpState;
use super::error::ApiError;
use crate::api::args::*;
use crate::api::caller::{
    BodyFailure, NO_CREDENTIALS, REST_BODY_MAX, Refusal, client_ip, credentials, read_body,
};
use crate::api::whoami::WhoAmI;
use crate::core::access::{Operation, Principal, authorize};
use crate::core::error::Error;
use crate::core::views::*;

/// `click_cors` wraps the public click route only: a landing page on another origin may
/// post clicks, while the authenticated routes stay same-origin.
pub(super) fn routes(click_cors: tower_http::cors::CorsLayer) -> axum::Router<HttpState> {
    axum::Router::new()
        .route("/admin/referrals", get(list))
        .route("/admin/referrals/stats", get(stats))
        .route("/admin/referrals/recover", post(recover))
        .route("/admin/referrals/{id}", get(get_one))
        .route("/admin/referrals/{id}/approve", post(approve))
        .route("/admin/referrals/{id}/reject", post(reject))
        .route("/referrals/click", post(click).layer(click_cors))
        .route("/referrals/me", get(me))
        .route("/referrals/me/events", get(my_events))
        .route("/ingest/signups", post(signup))
        .route("/ingest/qualifications", post(qualify))
        .route("/ingest/refunds", post(refund))
        .route("/admin/referrals/{id}/void", post(void))
        .route(
            "/admin/campaigns",
            get(list_campaigns).post(create_campaign),
        )
        .route(
            "/admin/campaigns/{id}",
            get(get_campaign).patch(update_campaign),
        )
        .route("/auth/whoami", get(whoami))
}

// ---- extractors ----------------------------------------------------------------------

/// The caller, if credentials were sent. A credential that does not verify is a 401
/// here; no credential is left to the operation (public click capture needs none).
pub struct Auth(pub Option<Principal>);

impl FromRequestParts<HttpState> for Auth {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &HttpState) -> Result<Self, ApiError> {
        match credentials(&parts.headers) {
            None => Ok(Auth(None)),
            Some(c) => match st.app.auth.authenticate(&c).await {
                Ok(p) => Ok(Auth(Some(p))),
                // Only a credential that does not verify is a 401; a database outage
                // while checking it is a 503, so a client never drops a valid key.
                Err(e @ Error::Unauthenticated(_)) => Err(ApiError::Refused(
                    Refusal::InvalidCredential(e.public_message()),
                )),
                Err(e) => Err(ApiError::from(e)),
            },
        }
    }
}

impl Auth {
    /// Checks the caller may run `op` before anything is parsed, so an unauthenticated
    /// caller learns nothing about the arguments.
    fn allow(&self, op: Operation) -> Result<Option<&Principal>, ApiError> {
        authorize(self.0.as_ref(), op).map_err(ApiError::during(op))?;
        Ok(self.0.as_ref())
    }
}

/// The caller's address (the TCP peer, or the client a trusted proxy forwarded for), when
/// the server was started with connect info.
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions, &parts.headers)))
    }
}

/// A query string parsed into a tool's argument type; unknown or malformed → 400.
pub struct Q<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Q(q.0))
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A JSON body; an empty body reads as `{}` so optional-only bodies may be left out.
pub struct J<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for J<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.starts_with("application/json") || v.contains("+json"));
        let (parts, body) = req.into_parts();
        let bytes = read_body(&parts.extensions, body, REST_BODY_MAX)
            .await
            .map_err(|f| match f {
                BodyFailure::TooLarge => ApiError::PayloadTooLarge(REST_BODY_MAX),
                BodyFailure::TooSlow => ApiError::BodyTooSlow,
                BodyFailure::Broken => {
                    ApiError::BadRequest("the request body could not be read".into())
                }
            })?;
        let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else if json == Some(false) {
            return Err(ApiError::UnsupportedMediaType);
        } else {
            &bytes
        };
        let mut de = serde_json::Deserializer::from_slice(text);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            if e.inner().is_data() {
                ApiError::shape(&e)
            } else {
                ApiError::BadRequest(format!("body is not valid JSON: {}", e.inner()))
            }
        })?;
        // One JSON value and nothing after it: `{}garbage` is not a body that says `{}`.
        de.end()
            .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
        // Every body is an object; serde would also fill a struct from an array (`[]`
        // read as "all fields left out"), which no client means.
        if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::Unprocessable {
                message: "invalid body: expected a JSON object".into(),
                field: None,
            });
        }
        Ok(J(value))
    }
}

fn path_id(raw: &str) -> Result<i64, Error> {
    raw.parse::<i64>().map_err(|_| Error::Invalid {
        field: "id",
        message: "must be a positive integer".into(),
    })
}

type Reply<T> = Result<Json<T>, ApiError>;

// ---- handlers ------------------------------------------------------------------------
//
// Each: authorize (before any argument is looked at), then parse and call the core in one
// block whose error, whichever step failed, becomes the problem document.

/// The core's answer as JSON, or its error as a problem document for `op`.
fn reply<T>(op: Operation, r: Result<T, Error>) -> Reply<T> {
    r.map(Json).map_err(ApiError::during(op))
}

async fn list(
    State(st): State<HttpState>,
    auth: Auth,
    q: Q<ListReferralsArgs>,
) -> Reply<ReferralPage> {
    let op = Operation::ListReferrals;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.list_referrals(p, q.0.into_query()?).await }.await,
    )
}

async fn get_one(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Reply<ReferralDetail> {
    let op = Operation::GetReferral;
    let p = auth.allow(op)?;
    reply(
        op,
        async {
            let id = ReferralIdArgs { id: path_id(&id)? }.id()?;
            st.app.core.get_referral(p, id).await
        }
        .await,
    )
}

/// The arguments of a tool whose `id` is the route's path: the JSON body's fields plus
/// that id (a referral's number, or a campaign's slug), parsed as the tool's own argument
/// type (one type serves both faces).
fn with_path_id<T: DeserializeOwned>(
    id: Value,
    mut body: Map<String, Value>,
) -> Result<T, ApiError> {
    if body.contains_key("id") {
        return Err(ApiError::BadRequest(
            "invalid body: unknown field `id`; the id goes in the path".into(),
        ));
    }
    body.insert("id".into(), id);
    serde_path_to_error::deserialize(Value::Object(body)).map_err(|e| ApiError::shape(&e))
}

/// A referral id from the path, as a JSON number for [`with_path_id`].
fn referral_path_id(raw: &str) -> Result<Value, ApiError> {
    Ok(Value::from(path_id(raw)?))
}

async fn approve(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
    _q: Q<NoArgs>,
    J(body): J<Map<String, Value>>,
) -> Reply<ReferralView> {
    let op = Operation::ApproveReferral;
    let p = auth.allow(op)?;
    let args: ApproveArgs = with_path_id(referral_path_id(&id)?, body)?;
    reply(
        op,
        async {
            let (id, note) = args.parse()?;
            st.app.core.approve_referral(p, id, note).await
        }
        .await,
    )
}

async fn reject(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
    _q: Q<NoArgs>,
    J(body): J<Map<String, Value>>,
) -> Reply<ReferralView> {
    let op = Operation::RejectReferral;
    let p = auth.allow(op)?;
    let args: RejectArgs = with_path_id(referral_path_id(&id)?, body)?;
    reply(
        op,
        async {
            let (id, req) = args.parse()?;
            st.app.core.reject_referral(p, id, req).await
        }
        .await,
    )
}

/// A REST recover runs to its limit; a client that disconnects drops the request, and
/// any reward it left claimed is retried by a later run (grants are keyed).
/// The public docs give `limit` as a query parameter (`?limit=5`); a JSON body with
/// `limit` works too. Both at once must agree.
async fn recover(
    State(st): State<HttpState>,
    auth: Auth,
    Q(q): Q<RecoverArgs>,
    J(a): J<RecoverArgs>,
) -> Reply<RecoverReport> {
    let op = Operation::RecoverGrants;
    let p = auth.allow(op)?;
    let never = CancellationToken::new();
    reply(
        op,
        async {
            let args = match (q.limit, a.limit) {
                (Some(x), Some(y)) if x != y => {
                    return Err(Error::Invalid {
                        field: "limit",
                        message: "given in the query and the body with different values".into(),
                    });
                }
                (limit, body) => RecoverArgs {
                    limit: body.or(limit),
                },
            };
            st.app
                .core
                .recover_grants(p, args.parse()?, &|_| {}, &never)
                .await
        }
        .await,
    )
}

/// JSON, or with `chart=true` the series drawn as `image/png` (the same picture the MCP
/// tool adds to its answer).
async fn stats(
    State(st): State<HttpState>,
    auth: Auth,
    q: Q<StatsArgs>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let op = Operation::GetStats;
    let p = auth.allow(op)?;
    let now = st.app.core.clock().now();
    let chart = q.0.wants_chart();
    let view = reply(
        op,
        async { st.app.core.get_stats(p, q.0.parse(now)?).await }.await,
    )?;
    if !chart {
        return Ok(view.into_response());
    }
    let png = crate::api::chart::funnel_png(&view.0)
        .map_err(|e| ApiError::during(op)(Error::internal(e)))?;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// The visitor's IP is the TCP peer's: behind a proxy, rate limits and unique counts are
/// per proxy address (see the README's security notes).
async fn click(
    State(st): State<HttpState>,
    auth: Auth,
    ClientIp(ip): ClientIp,
    _q: Q<NoArgs>,
    J(a): J<ClickArgs>,
) -> Reply<ClickReceipt> {
    let op = Operation::CaptureClick;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.capture_click(p, a.parse(ip)?).await }.await,
    )
}

async fn me(State(st): State<HttpState>, auth: Auth, _q: Q<NoArgs>) -> Reply<MySummary> {
    let op = Operation::MySummary;
    let p = auth.allow(op)?;
    reply(op, st.app.core.my_summary(p).await)
}

async fn my_events(
    State(st): State<HttpState>,
    auth: Auth,
    q: Q<EventsArgs>,
) -> Reply<MyEventsPage> {
    let op = Operation::MyEvents;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.my_events(p, q.0.parse()?).await }.await,
    )
}

async fn signup(
    State(st): State<HttpState>,
    auth: Auth,
    _q: Q<NoArgs>,
    J(a): J<SignupArgs>,
) -> Reply<SignupOutcome> {
    let op = Operation::IngestSignup;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.ingest_signup(p, a.parse()?).await }.await,
    )
}

async fn qualify(
    State(st): State<HttpState>,
    auth: Auth,
    _q: Q<NoArgs>,
    J(a): J<QualifyArgs>,
) -> Reply<QualifyOutcome> {
    let op = Operation::IngestQualification;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.ingest_qualification(p, a.parse()?).await }.await,
    )
}

async fn refund(
    State(st): State<HttpState>,
    auth: Auth,
    _q: Q<NoArgs>,
    J(a): J<RefundArgs>,
) -> Reply<RefundOutcome> {
    let op = Operation::IngestRefund;
    let p = auth.allow(op)?;
    reply(
        op,
        async { st.app.core.ingest_refund(p, a.parse()?).await }.await,
    )
}

async fn void(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
    _q: Q<NoArgs>,
    J(body): J<Map<String, Value>>,
) -> Reply<ReferralView> {
    let op = Operation::VoidReward;
    let p = auth.allow(op)?;
    let args: VoidRewardArgs = with_path_id(referral_path_id(&id)?, body)?;
    reply(
        op,
        async {
            let (id, side, reason) = args.parse()?;
            st.app.core.void_reward(p, id, side, reason).await
        }
        .await,
    )
}

async fn list_campaigns(
    State(st): State<HttpState>,
    auth: Auth,
    _q: Q<NoArgs>,
) -> Reply<CampaignList> {
    let op = Operation::ListCampaigns;
    let p = auth.allow(op)?;
    reply(op, st.app.core.list_campaigns(p).await)
}

async fn get_campaign(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
    _q: Q<NoArgs>,
) -> Reply<CampaignDetail> {
    let op = Operation::GetCampaign;
    let p = auth.allow(op)?;
    reply(
        op,
        async {
            let id = CampaignIdArgs { id }.parse()?;
            st.app.core.get_campaign(p, id).await
        }
        .await,
    )
}

async fn create_campaign(
    State(st): State<HttpState>,
    auth: Auth,
    _q: Q<NoArgs>,
    J(a): J<CreateCampaignArgs>,
) -> Reply<CampaignDetail> {
    let op = Operation::CreateCampaign;
    let p = auth.allow(op)?;
    reply(
        op,
        async {
            let (id, settings) = a.parse()?;
            st.app.core.create_campaign(p, id, settings).await
        }
        .await,
    )
}

async fn update_campaign(
    State(st): State<HttpState>,
    auth: Auth,
    Path(id): Path<String>,
    _q: Q<NoArgs>,
    J(body): J<Map<String, Value>>,
) -> Reply<CampaignDetail> {
    let op = Operation::UpdateCampaign;
    let p = auth.allow(op)?;
    let args: UpdateCampaignArgs = with_path_id(Value::from(id), body)?;
    reply(
        op,
        async {
            let (id, edit) = args.parse()?;
            st.app.core.update_campaign(p, id, edit).await
        }
        .await,
    )
}

/// Free: remote mode calls it at start-up to check its credential.
async fn whoami(auth: Auth) -> Reply<WhoAmI> {
    let p = auth
        .0
        .ok_or_else(|| ApiError::Refused(Refusal::Missing(NO_CREDENTIALS.into())))?;
    Ok(Json(WhoAmI::from(&p)))
}
