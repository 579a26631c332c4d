//! Server-wide narrowing of the tool list (`--read-only`, `--tools`, `--exclude-tools`).
//! What a caller's credential allows is the core's access policy; this is what the
//! operator allows on top of it.

use std::collections::BTreeSet;

use crate::core::access::Operation;

/// Server-wide narrowing of the tool list (`--read-only`, `--tools`, `--exclude-tools`).
#[derive(Debug, Clone, Default)]
pub struct ToolFilter {
    pub read_only: bool,
    pub only: Option<BTreeSet<String>>,
    pub exclude: BTreeSet<String>,
}

impl ToolFilter {
    /// Validates the names against the nine tools, so a typo stops start-up.
    pub fn new(read_only: bool, only: &[String], exclude: &[String]) -> Result<Self, String> {
        for name in only.iter().chain(exclude) {
            if !TOOL_NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "unknown tool {name:?}; the tools are: {}",
                    TOOL_NAMES.join(", ")
                ));
            }
        }
        Ok(Self {
            read_only,
            only: (!only.is_empty()).then(|| only.iter().cloned().collect()),
            exclude: exclude.iter().cloned().collect(),
        })
    }

    pub fn allows(&self, op: Operation) -> bool {
        let name = op.name();
        TOOL_NAMES.contains(&name)
            && !(self.read_only && !op.is_read_only() && op != Operation::CaptureClick)
            && self.only.as_ref().is_none_or(|o| o.contains(name))
            && !self.exclude.contains(name)
    }
}

/// The nine tools, in the order of the product docs.
pub const TOOL_NAMES: [&str; 9] = [
    "list_referrals",
    "get_referral",
    "approve_referral",
    "reject_referral",
    "recover_referral_grants",
    "get_referral_stats",
    "capture_referral_click",
    "get_my_referral_summary",
    "list_my_referral_events",
];
