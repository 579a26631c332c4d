//! The four scopes, and a small set of them.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Read,
    Review,
    Recover,
    Ingest,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Review, Scope::Recover, Scope::Ingest];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "referrals:read",
            Scope::Review => "referrals:review",
            Scope::Recover => "referrals:recover",
            Scope::Ingest => "referrals:ingest",
        }
    }
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scope {s:?}; expected one of referrals:read, referrals:review, referrals:recover, referrals:ingest"
                )
            })
    }
}

/// A set of scopes; stored as a space-separated string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn empty() -> Self {
        Self(0)
    }
    pub fn all() -> Self {
        Scope::ALL.into_iter().collect()
    }
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
    /// Parses a space- or comma-separated list.
    pub fn parse(s: &str) -> Result<Self, String> {
        s.split([' ', ','])
            .filter(|p| !p.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&v.join(" "))
    }
}
