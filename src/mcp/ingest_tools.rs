//! The `ingest` toolset (off by default; `--toolsets ingest`): the lifecycle events the
//! product's backend sends (signup, qualification, refund), for agents and tests that
//! drive the program over MCP. Same arguments and answers as `POST /ingest/…`.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::errors::ToolError;
use super::server::{Caller, ReferralServer};
use super::tools::Args;
use crate::api::args::*;
use crate::core::views::{QualifyOutcome, RefundOutcome, SignupOutcome};

#[tool_router(router = ingest_router, vis = "pub(super)")]
impl ReferralServer {
    #[tool(
        name = "ingest_signup",
        title = "Record a signup",
        description = "A new account signed up, with the click_id click capture returned or a referral code. Creates the account's own code and, if referred, the referral (held for review when a fraud signal fires). A replay changes nothing. 1 credit; referrals:ingest.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ingest_signup(
        &self,
        Parameters(Args(a)): Parameters<Args<SignupArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SignupOutcome>, ToolError> {
        self.run_ingest_signup(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }

    #[tool(
        name = "ingest_qualification",
        title = "Record a qualifying event",
        description = "A referred account qualified (e.g. first payment): its referral gets both rewards, granted now or after the campaign's holding period. A referral qualifies once. 1 credit; referrals:ingest.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ingest_qualification(
        &self,
        Parameters(Args(a)): Parameters<Args<QualifyArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<QualifyOutcome>, ToolError> {
        self.run_ingest_qualification(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }

    #[tool(
        name = "ingest_refund",
        title = "Record a refund",
        description = "A referred account was refunded or charged back: if its campaign reverses on refund, rewards not yet granted are voided and granted ones taken back (exactly once; what was already spent is reported, balances never go negative). Safe to send twice. 1 credit; referrals:ingest.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn ingest_refund(
        &self,
        Parameters(Args(a)): Parameters<Args<RefundArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<RefundOutcome>, ToolError> {
        self.run_ingest_refund(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }
}

/// What each ingest tool does for a caller (see `tools.rs`).
impl ReferralServer {
    pub(super) async fn run_ingest_signup(
        &self,
        a: SignupArgs,
        c: &Caller,
    ) -> Result<SignupOutcome, ToolError> {
        let ev = a.parse()?;
        Ok(self.core()?.ingest_signup(c.principal.as_ref(), ev).await?)
    }

    pub(super) async fn run_ingest_qualification(
        &self,
        a: QualifyArgs,
        c: &Caller,
    ) -> Result<QualifyOutcome, ToolError> {
        let ev = a.parse()?;
        let core = self.core()?;
        Ok(core.ingest_qualification(c.principal.as_ref(), ev).await?)
    }

    pub(super) async fn run_ingest_refund(
        &self,
        a: RefundArgs,
        c: &Caller,
    ) -> Result<RefundOutcome, ToolError> {
        let ev = a.parse()?;
        Ok(self.core()?.ingest_refund(c.principal.as_ref(), ev).await?)
    }
}
