//! Server-wide narrowing of the tool list (`--toolsets`, `--read-only`, `--tools`,
//! `--exclude-tools`). What a caller's credential allows is the core's access policy;
//! this is what the operator allows on top of it.
//!
//! Tools come in toolsets, in the style of github-mcp-server: `referrals` (the nine
//! documented tools) is on by default; `rewards` (operator corrections: `void_reward`),
//! `campaigns` and `ingest` are off, so the default `tools/list` stays within its
//! 16,000-character budget. `--tools` names exactly the tools to
//! offer, from any toolset; `--exclude-tools` and `--read-only` narrow either.

use std::collections::BTreeSet;

use crate::core::access::Operation;

/// A group of tools switched on together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Toolset {
    Referrals,
    Rewards,
    Campaigns,
    Ingest,
}

impl Toolset {
    pub const ALL: [Toolset; 4] = [
        Toolset::Referrals,
        Toolset::Rewards,
        Toolset::Campaigns,
        Toolset::Ingest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Toolset::Referrals => "referrals",
            Toolset::Rewards => "rewards",
            Toolset::Campaigns => "campaigns",
            Toolset::Ingest => "ingest",
        }
    }

    /// The toolset an operation's tool belongs to.
    pub fn of(op: Operation) -> Toolset {
        use Operation::*;
        match op {
            ListCampaigns | GetCampaign | CreateCampaign | UpdateCampaign => Toolset::Campaigns,
            IngestSignup | IngestQualification | IngestRefund => Toolset::Ingest,
            VoidReward => Toolset::Rewards,
            _ => Toolset::Referrals,
        }
    }
}

/// Server-wide narrowing of the tool list.
#[derive(Debug, Clone)]
pub struct ToolFilter {
    pub read_only: bool,
    pub toolsets: BTreeSet<Toolset>,
    pub only: Option<BTreeSet<String>>,
    pub exclude: BTreeSet<String>,
}

impl Default for ToolFilter {
    fn default() -> Self {
        Self {
            read_only: false,
            toolsets: BTreeSet::from([Toolset::Referrals]),
            only: None,
            exclude: BTreeSet::new(),
        }
    }
}

impl ToolFilter {
    /// Validates the names, so a typo stops start-up. No toolsets named: the default
    /// (`referrals`); `all` names every toolset.
    pub fn new(
        read_only: bool,
        toolsets: &[String],
        only: &[String],
        exclude: &[String],
    ) -> Result<Self, String> {
        for name in only.iter().chain(exclude) {
            if !TOOL_NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "unknown tool {name:?}; the tools are: {}",
                    TOOL_NAMES.join(", ")
                ));
            }
        }
        let mut sets = BTreeSet::new();
        for name in toolsets.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
            if name == "all" {
                sets.extend(Toolset::ALL);
                continue;
            }
            let set = Toolset::ALL
                .into_iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| {
                    let all: Vec<&str> = Toolset::ALL.iter().map(|t| t.name()).collect();
                    format!(
                        "unknown toolset {name:?}; the toolsets are: {}, or all",
                        all.join(", ")
                    )
                })?;
            sets.insert(set);
        }
        Ok(Self {
            read_only,
            toolsets: if sets.is_empty() {
                ToolFilter::default().toolsets
            } else {
                sets
            },
            only: (!only.is_empty()).then(|| only.iter().cloned().collect()),
            exclude: exclude.iter().cloned().collect(),
        })
    }

    pub fn allows(&self, op: Operation) -> bool {
        let name = op.name();
        let offered = match &self.only {
            Some(only) => only.contains(name),
            None => self.toolsets.contains(&Toolset::of(op)),
        };
        offered
            && !(self.read_only && !op.is_read_only() && op != Operation::CaptureClick)
            && !self.exclude.contains(name)
    }
}

/// Every tool, in the order `tools/list` gives them: the nine of the product docs, then
/// the rewards, campaigns and ingest toolsets.
pub const TOOL_NAMES: [&str; 17] = [
    "list_referrals",
    "get_referral",
    "approve_referral",
    "reject_referral",
    "recover_referral_grants",
    "get_referral_stats",
    "capture_referral_click",
    "get_my_referral_summary",
    "list_my_referral_events",
    "void_reward",
    "list_campaigns",
    "get_campaign",
    "create_campaign",
    "update_campaign",
    "ingest_signup",
    "ingest_qualification",
    "ingest_refund",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn names(f: &ToolFilter) -> Vec<&'static str> {
        Operation::ALL
            .into_iter()
            .filter(|op| f.allows(*op))
            .map(Operation::name)
            .collect()
    }

    #[test]
    fn every_operation_is_a_tool_in_one_toolset() {
        for op in Operation::ALL {
            assert!(TOOL_NAMES.contains(&op.name()), "{op:?}");
        }
        assert_eq!(TOOL_NAMES.len(), Operation::ALL.len());
    }

    #[test]
    fn by_default_only_the_referrals_toolset_is_offered() {
        let f = ToolFilter::new(false, &[], &[], &[]).unwrap();
        let n = names(&f);
        assert_eq!(n.len(), 9, "{n:?}");
        assert!(!n.contains(&"void_reward") && !n.contains(&"list_campaigns"));
        assert!(!n.contains(&"ingest_refund"));
    }

    #[test]
    fn toolsets_compose_with_read_only_tools_and_exclusions() {
        let sets = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let f = ToolFilter::new(true, &sets(&["campaigns"]), &[], &[]).unwrap();
        assert_eq!(names(&f), ["list_campaigns", "get_campaign"]);
        let f = ToolFilter::new(
            false,
            &sets(&["referrals", "campaigns", "ingest"]),
            &[],
            &sets(&["create_campaign"]),
        )
        .unwrap();
        assert_eq!(names(&f).len(), 15);
        // `--tools` names exactly what is offered, whatever the toolsets.
        let f = ToolFilter::new(false, &[], &sets(&["ingest_refund"]), &[]).unwrap();
        assert_eq!(names(&f), ["ingest_refund"]);
        assert_eq!(
            names(&ToolFilter::new(false, &sets(&["all"]), &[], &[]).unwrap()).len(),
            17
        );
        let e = ToolFilter::new(false, &sets(&["campaign"]), &[], &[]).unwrap_err();
        assert!(
            e.contains("unknown toolset") && e.contains("campaigns"),
            "{e}"
        );
    }
}
