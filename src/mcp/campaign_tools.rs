//! The `campaigns` toolset (off by default; `--toolsets campaigns`): list, show, create
//! and update campaigns. Changes are audited with the caller as the actor.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::errors::ToolError;
use super::server::ReferralServer;
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
        a?;
        let p = self.caller(&ctx).principal;
        Ok(Json(self.core()?.list_campaigns(p.as_ref()).await?))
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
        let id = a?.parse()?;
        let p = self.caller(&ctx).principal;
        Ok(Json(self.core()?.get_campaign(p.as_ref(), id).await?))
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
        let (id, settings) = a?.parse()?;
        let p = self.caller(&ctx).principal;
        Ok(Json(
            self.core()?
                .create_campaign(p.as_ref(), id, settings)
                .await?,
        ))
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
        let (id, edit) = a?.parse()?;
        let p = self.caller(&ctx).principal;
        Ok(Json(
            self.core()?.update_campaign(p.as_ref(), id, edit).await?,
        ))
    }
}
