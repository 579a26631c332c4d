//! Remote mode: the tools of a `stdio --remote URL` server forward each call to a hosted
//! deployment's REST API, so a desktop assistant reaches a shared deployment without
//! database access. Routes come from the same endpoint table the server is built from;
//! a problem document comes back as the same tool error a local server gives.

use std::time::Duration;

use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::errors::ToolError;
use crate::api::args::*;

use crate::api::endpoints::endpoint;
use crate::api::problem::Problem;
use crate::api::whoami::WhoAmI;
use crate::auth::Credentials;
use crate::core::access::Operation;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The deployment answered with an error document.
    #[error("{} ({})", .0.detail, .0.code)]
    Problem(Box<Problem>),
    /// It could not be reached or answered something that is not the API.
    #[error("remote deployment unavailable: {0}")]
    Transport(String),
}

/// A client for one deployment with one credential.
#[derive(Clone)]
pub struct RemoteApi {
    http: reqwest::Client,
    base: url::Url,
    creds: Credentials,
}

impl std::fmt::Debug for RemoteApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteApi({})", self.base)
    }
}

impl RemoteApi {
    pub fn new(base: &str, creds: Credentials) -> Result<Self, RemoteError> {
        let base = url::Url::parse(base)
            .map_err(|e| RemoteError::Transport(format!("remote URL {base:?}: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(RemoteError::Transport(format!(
                "remote URL must be http or https, not {}",
                base.scheme()
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!(
                "referral-mcp/",
                env!("CARGO_PKG_VERSION"),
                " (remote)"
            ))
            .build()
            .map_err(|e| RemoteError::Transport(e.to_string()))?;
        Ok(Self { http, base, creds })
    }

    /// Checks the credential; free on the server.
    pub async fn whoami(&self) -> Result<WhoAmI, RemoteError> {
        let v = self.send("GET", "/auth/whoami", None).await?;
        serde_json::from_value(v).map_err(|e| RemoteError::Transport(e.to_string()))
    }

    /// Runs `op` with a tool's arguments, as the endpoint table maps them to a request.
    pub async fn call(
        &self,
        op: Operation,
        args: &Map<String, Value>,
    ) -> Result<Value, RemoteError> {
        let e = endpoint(op)
            .ok_or_else(|| RemoteError::Transport(format!("{} has no REST route", op.name())))?;
        let (path, body) = e.request(args);
        self.send(e.method, &path, body).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RemoteError> {
        let url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| RemoteError::Transport(e.to_string()))?;
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| RemoteError::Transport(e.to_string()))?;
        let mut req = self.http.request(method, url);
        req = match &self.creds {
            Credentials::ApiKey(k) => req.header("x-api-key", k),
            Credentials::Bearer(t) => req.bearer_auth(t),
        };
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| RemoteError::Transport(e.without_url().to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| RemoteError::Transport(e.without_url().to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|_| RemoteError::Transport(format!("answer to {path} is not JSON")));
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => Err(RemoteError::Problem(Box::new(p))),
            Err(_) => Err(RemoteError::Transport(format!(
                "{path} answered HTTP {status} without a problem document"
            ))),
        }
    }
}

impl RemoteApi {
    /// A tool call in remote mode: the arguments are checked here exactly as a local
    /// server checks them (so a bad one costs no round trip and reads the same), then
    /// forwarded. Cancelling drops the request; for recover, the deployment keeps what it
    /// granted and a later run picks up the rest.
    pub(super) async fn forward(
        &self,
        op: Operation,
        req: CallToolRequestParams,
        ct: &CancellationToken,
    ) -> CallToolResult {
        let mut args = req.arguments.unwrap_or_default();
        if let Err(e) = check_args(op, &args) {
            return e.result();
        }
        // The deployment would answer a chart with image/png: ask for the JSON and draw
        // the chart here, as a local server does.
        let chart = op == Operation::GetStats && args.remove("chart") == Some(Value::Bool(true));
        let out = tokio::select! {
            r = self.call(op, &args) => r,
            _ = ct.cancelled() => return ToolError::new(
                "cancelled", "the call was cancelled before the deployment answered",
            ).result(),
        };
        match out {
            Ok(v) if chart => with_chart(v),
            Ok(v) => CallToolResult::structured(v),
            Err(e) => ToolError::from(e).result(),
        }
    }
}

/// The deployment's stats answer, with its series drawn here as a PNG image block.
fn with_chart(v: Value) -> CallToolResult {
    let block = serde_json::from_value::<crate::core::views::StatsView>(v.clone())
        .map_err(|e| {
            tracing::error!(error = %e, "stats chart: the deployment's answer");
            ToolError::new(
                "internal",
                "the chart could not be drawn; retry without chart",
            )
        })
        .and_then(|view| super::tools::chart_block(&view));
    match block {
        Ok(block) => {
            let mut r = CallToolResult::structured(v);
            r.content.push(block);
            r
        }
        Err(e) => e.result(),
    }
}

fn shaped<T: serde::de::DeserializeOwned>(v: &Map<String, Value>) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(v).map_err(|e| ToolError::shape(&e))
}

/// The local check of a remote call's arguments: their shape, then their values, as the
/// local tools parse them.
fn check_args(op: Operation, v: &Map<String, Value>) -> Result<(), ToolError> {
    let now = chrono::Utc::now().timestamp();
    let checked: Result<(), crate::core::error::Error> = match op {
        Operation::ListReferrals => shaped::<ListReferralsArgs>(v)?.into_query().map(drop),
        Operation::GetReferral => shaped::<ReferralIdArgs>(v)?.id().map(drop),
        Operation::ApproveReferral => shaped::<ApproveArgs>(v)?.parse().map(drop),
        Operation::RejectReferral => shaped::<RejectArgs>(v)?.parse().map(drop),
        Operation::RecoverGrants => shaped::<RecoverArgs>(v)?.parse().map(drop),
        Operation::GetStats => shaped::<StatsArgs>(v)?.parse(now).map(drop),
        Operation::CaptureClick => shaped::<ClickArgs>(v)?.parse(None).map(drop),
        Operation::MySummary | Operation::ListCampaigns => {
            shaped::<NoArgs>(v)?;
            Ok(())
        }
        Operation::MyEvents => shaped::<EventsArgs>(v)?.parse().map(drop),
        Operation::IngestSignup => shaped::<SignupArgs>(v)?.parse().map(drop),
        Operation::IngestQualification => shaped::<QualifyArgs>(v)?.parse().map(drop),
        Operation::IngestRefund => shaped::<RefundArgs>(v)?.parse().map(drop),
        Operation::VoidReward => shaped::<VoidRewardArgs>(v)?.parse().map(drop),
        Operation::GetCampaign => shaped::<CampaignIdArgs>(v)?.parse().map(drop),
        Operation::CreateCampaign => shaped::<CreateCampaignArgs>(v)?.parse().map(drop),
        Operation::UpdateCampaign => shaped::<UpdateCampaignArgs>(v)?.parse().map(drop),
    };
    checked.map_err(ToolError::from)
}
