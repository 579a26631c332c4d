//! The REST surface as data: one row per operation with its method, path and types.
//! The OpenAPI document is generated from this table, remote mode forwards tool calls by
//! it, and a test checks that every row answers on the real router.

use rmcp::schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value};

use super::args::*;
use super::whoami::WhoAmI;
use crate::core::access::Operation;
use crate::core::views::*;

/// Where a route takes its non-path arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Query,
    Body,
}

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub struct Endpoint {
    /// `None` for routes that are not a metered operation (`whoami`).
    pub op: Option<Operation>,
    pub method: &'static str,
    /// With `{id}` where the referral (or campaign) id goes.
    pub path: &'static str,
    pub input: Input,
    /// Body arguments a route also takes from the query string (the public docs give
    /// recover's `limit` as `?limit=`).
    pub query_too: &'static [&'static str],
    pub summary: &'static str,
    /// The arguments as one object (`id` goes to the path, the rest per `input`).
    pub params: SchemaFn,
    pub output: SchemaFn,
    pub errors: &'static [u16],
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

const READ: &[u16] = &[400, 401, 402, 403, 422, 503];
const ONE: &[u16] = &[401, 402, 403, 404, 422, 503];
const REVIEW: &[u16] = &[400, 401, 402, 403, 404, 409, 413, 422, 503];
const WRITE: &[u16] = &[400, 401, 402, 403, 413, 422, 503];

/// The nine documented operations in the docs' order, then the lifecycle events, the
/// operators' corrections and campaigns, and the credential check.
pub static ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        op: Some(Operation::ListReferrals),
        method: "GET",
        path: "/admin/referrals",
        input: Input::Query,
        query_too: &[],
        summary: "List referrals with their reward records",
        params: schema::<ListReferralsArgs>,
        output: schema::<ReferralPage>,
        errors: READ,
    },
    Endpoint {
        op: Some(Operation::GetReferral),
        method: "GET",
        path: "/admin/referrals/{id}",
        input: Input::Query,
        query_too: &[],
        summary: "One referral with rewards, review reasons and audit trail",
        params: schema::<ReferralIdArgs>,
        output: schema::<ReferralDetail>,
        errors: ONE,
    },
    Endpoint {
        op: Some(Operation::ApproveReferral),
        method: "POST",
        path: "/admin/referrals/{id}/approve",
        input: Input::Body,
        query_too: &[],
        summary: "Approve a referral held for review",
        params: schema::<ApproveArgs>,
        output: schema::<ReferralView>,
        errors: REVIEW,
    },
    Endpoint {
        op: Some(Operation::RejectReferral),
        method: "POST",
        path: "/admin/referrals/{id}/reject",
        input: Input::Body,
        query_too: &[],
        summary: "Reject a referral held for review",
        params: schema::<RejectArgs>,
        output: schema::<ReferralView>,
        errors: REVIEW,
    },
    Endpoint {
        op: Some(Operation::RecoverGrants),
        method: "POST",
        path: "/admin/referrals/recover",
        input: Input::Body,
        query_too: &["limit"],
        summary: "Retry reward grants that did not reach billing",
        params: schema::<RecoverArgs>,
        output: schema::<RecoverReport>,
        errors: WRITE,
    },
    Endpoint {
        op: Some(Operation::GetStats),
        method: "GET",
        path: "/admin/referrals/stats",
        input: Input::Query,
        query_too: &[],
        summary: "Referral funnel for a date range",
        params: schema::<StatsArgs>,
        output: schema::<StatsView>,
        errors: READ,
    },
    Endpoint {
        op: Some(Operation::CaptureClick),
        method: "POST",
        path: "/referrals/click",
        input: Input::Body,
        query_too: &[],
        summary: "Record a share-link click (public)",
        params: schema::<ClickArgs>,
        output: schema::<ClickReceipt>,
        errors: &[400, 404, 413, 422, 429, 503],
    },
    Endpoint {
        op: Some(Operation::MySummary),
        method: "GET",
        path: "/referrals/me",
        input: Input::Query,
        query_too: &[],
        summary: "The signed-in user's referral page",
        params: schema::<NoArgs>,
        output: schema::<MySummary>,
        errors: &[401, 402, 403, 503],
    },
    Endpoint {
        op: Some(Operation::MyEvents),
        method: "GET",
        path: "/referrals/me/events",
        input: Input::Query,
        query_too: &[],
        summary: "The signed-in user's referral history",
        params: schema::<EventsArgs>,
        output: schema::<MyEventsPage>,
        errors: READ,
    },
    Endpoint {
        op: Some(Operation::IngestSignup),
        method: "POST",
        path: "/ingest/signups",
        input: Input::Body,
        query_too: &[],
        summary: "Record a signup (the product's backend)",
        params: schema::<SignupArgs>,
        output: schema::<SignupOutcome>,
        errors: WRITE,
    },
    Endpoint {
        op: Some(Operation::IngestQualification),
        method: "POST",
        path: "/ingest/qualifications",
        input: Input::Body,
        query_too: &[],
        summary: "Record a qualifying event such as a first payment",
        params: schema::<QualifyArgs>,
        output: schema::<QualifyOutcome>,
        errors: WRITE,
    },
    Endpoint {
        op: Some(Operation::IngestRefund),
        method: "POST",
        path: "/ingest/refunds",
        input: Input::Body,
        query_too: &[],
        summary: "Record a refund or chargeback: void and take back the referral's rewards",
        params: schema::<RefundArgs>,
        output: schema::<RefundOutcome>,
        errors: WRITE,
    },
    Endpoint {
        op: Some(Operation::VoidReward),
        method: "POST",
        path: "/admin/referrals/{id}/void",
        input: Input::Body,
        query_too: &[],
        summary: "Void one reward that was never granted (e.g. a billing conflict)",
        params: schema::<VoidRewardArgs>,
        output: schema::<ReferralView>,
        errors: REVIEW,
    },
    Endpoint {
        op: Some(Operation::ListCampaigns),
        method: "GET",
        path: "/admin/campaigns",
        input: Input::Query,
        query_too: &[],
        summary: "List campaigns with their settings",
        params: schema::<NoArgs>,
        output: schema::<CampaignList>,
        errors: READ,
    },
    Endpoint {
        op: Some(Operation::CreateCampaign),
        method: "POST",
        path: "/admin/campaigns",
        input: Input::Body,
        query_too: &[],
        summary: "Create a campaign",
        params: schema::<CreateCampaignArgs>,
        output: schema::<CampaignDetail>,
        errors: &[400, 401, 402, 403, 409, 413, 422, 503],
    },
    Endpoint {
        op: Some(Operation::GetCampaign),
        method: "GET",
        path: "/admin/campaigns/{id}",
        input: Input::Query,
        query_too: &[],
        summary: "One campaign with the audit trail of its changes",
        params: schema::<CampaignIdArgs>,
        output: schema::<CampaignDetail>,
        errors: ONE,
    },
    Endpoint {
        op: Some(Operation::UpdateCampaign),
        method: "PATCH",
        path: "/admin/campaigns/{id}",
        input: Input::Body,
        query_too: &[],
        summary: "Change a campaign's settings (rewards already created keep theirs)",
        params: schema::<UpdateCampaignArgs>,
        output: schema::<CampaignDetail>,
        errors: &[400, 401, 402, 403, 404, 413, 422, 503],
    },
    Endpoint {
        op: None,
        method: "GET",
        path: "/auth/whoami",
        input: Input::Query,
        query_too: &[],
        summary: "Who the credential belongs to and its scopes (free)",
        params: schema::<NoArgs>,
        output: schema::<WhoAmI>,
        errors: &[401, 503],
    },
];

impl Endpoint {
    /// The REST request a tool call becomes: the path with `{id}` filled in and, for a
    /// query route, the other arguments as a query string (nulls left out); for a body
    /// route, the other arguments as the JSON body.
    pub fn request(&self, args: &Map<String, Value>) -> (String, Option<Value>) {
        let mut rest = args.clone();
        let mut path = self.path.to_owned();
        if path.contains("{id}")
            && let Some(id) = rest.remove("id")
        {
            path = path.replace("{id}", &scalar(&id));
        }
        match self.input {
            Input::Body => (path, Some(Value::Object(rest))),
            Input::Query => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(
                        rest.iter()
                            .filter(|(_, v)| !v.is_null())
                            .map(|(k, v)| (k, scalar(v))),
                    )
                    .finish();
                if query.is_empty() {
                    (path, None)
                } else {
                    (format!("{path}?{query}"), None)
                }
            }
        }
    }
}

/// A JSON value as it goes into a path or query string: strings without their quotes.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn endpoint(op: Operation) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().find(|e| e.op == Some(op))
}
