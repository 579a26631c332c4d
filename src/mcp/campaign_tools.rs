//! The `campaigns` toolset (off by default; `--toolsets campaigns`): list, show, create
//! and update campaigns. Changes are audited with the caller as the actor.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::errors::ToolError;
use super::server::{Caller, ReferralServer};
use super::tools::Args;
use crate::api::args::*;
use crate::core::views::{CampaignDetail, CampaignList};

#[tool_router(router = campaign_router, vis = "pub(super)")]
impl ReferralServer {
    #[tool(
        name = "list_campaigns",
        title = "List campaigns",
        description = "Every campaign with its settings: credits per side, attribution window and model, cap per period, velocity threshold, active dates, holding period, refund policy. 1 credit; referrals:read.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_campaigns(
        &self,
        Parameters(Args(a)): Parameters<Args<NoArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CampaignList>, ToolError> {
        self.run_list_campaigns(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }

    #[tool(
        name = "get_campaign",
        title = "Show a campaign",
        description = "One campaign's settings and the audit trail of its changes (who, when, each field before and after). 1 credit; referrals:read.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_campaign(
        &self,
        Parameters(Args(a)): Parameters<Args<CampaignIdArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CampaignDetail>, ToolError> {
        self.run_get_campaign(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }

    #[tool(
        name = "create_campaign",
        title = "Create a campaign",
        description = "Create a campaign; unnamed settings take their defaults. A taken id is a conflict. 1 credit; campaigns:manage.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_campaign(
        &self,
        Parameters(Args(a)): Parameters<Args<CreateCampaignArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CampaignDetail>, ToolError> {
        self.run_create_campaign(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }

    #[tool(
        name = "update_campaign",
        title = "Change a campaign",
        description = "Change the named settings of a campaign; `clear` removes a cap or date. Applies to referrals from now on: rewards already created keep theirs. Audited. 1 credit; campaigns:manage.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn update_campaign(
        &self,
        Parameters(Args(a)): Parameters<Args<UpdateCampaignArgs>>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CampaignDetail>, ToolError> {
        self.run_update_campaign(a?, &self.caller(&ctx))
            .await
            .map(Json)
    }
}

/// What each campaign tool does for a caller (see `tools.rs`).
impl ReferralServer {
    pub(super) async fn run_list_campaigns(
        &self,
        _: NoArgs,
        c: &Caller,
    ) -> Result<CampaignList, ToolError> {
        Ok(self.core()?.list_campaigns(c.principal.as_ref()).await?)
    }

    pub(super) async fn run_get_campaign(
        &self,
        a: CampaignIdArgs,
        c: &Caller,
    ) -> Result<CampaignDetail, ToolError> {
        let id = a.parse()?;
        Ok(self.core()?.get_campaign(c.principal.as_ref(), id).await?)
    }

    pub(super) async fn run_create_campaign(
        &self,
        a: CreateCampaignArgs,
        c: &Caller,
    ) -> Result<CampaignDetail, ToolError> {
        let (id, settings) = a.parse()?;
        let core = self.core()?;
        Ok(core
            .create_campaign(c.principal.as_ref(), id, settings)
            .await?)
    }

    pub(super) async fn run_update_campaign(
        &self,
        a: UpdateCampaignArgs,
        c: &Caller,
    ) -> Result<CampaignDetail, ToolError> {
        let (id, edit) = a.parse()?;
        let core = self.core()?;
        Ok(core.update_campaign(c.principal.as_ref(), id, edit).await?)
    }
}
