//! Typed values of the domain. Each newtype can only be built from valid input, so the
//! rest of the core never re-checks them ("parse, don't validate").

use std::fmt;

use chrono::Datelike;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::error::Error;

/// The persisted vocabulary is defined where it is decoded (the store); these are the
/// same types, re-exported so the core and its callers name them from here.
pub use crate::store::status::{
    AttributionModel, AttributionStatus, AuditAction, CapPeriod, ReviewDecision, ReviewReason,
    RewardStatus, Side,
};

/// A random, unguessable identifier: `prefix` followed by 24 hex digits (96 bits).
pub fn random_id(prefix: &str) -> String {
    IdSource::default().random_id(prefix)
}

/// A unique identifier that sorts by creation time: `prefix`, the microseconds since the
/// epoch as 14 hex digits, then 16 random hex digits (64 bits).
///
/// Why: such keys go into unique indexes written on every metered call (the ledger's
/// idempotency keys). A random key lands on a random leaf page of the index, so each
/// insert dirties its own page and every commit writes one page per key to the WAL (and
/// again at the checkpoint): measured ~10 KB of disk writes per call. Keys that grow with
/// time land on the index's last page, which a whole batch shares.
pub fn ordered_id(prefix: &str) -> String {
    use rand::RngCore;
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    format!("{prefix}{micros:014x}{:016x}", rand::rng().next_u64())
}

/// Where new click ids and referral codes come from: the thread's OS-seeded RNG, or a
/// fixed seed, so that a generated document (the tool catalog) is identical on every run.
#[derive(Clone, Default)]
pub struct IdSource(Option<std::sync::Arc<std::sync::Mutex<rand::rngs::StdRng>>>);

impl fmt::Debug for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "IdSource(seeded)"
        } else {
            "IdSource(os)"
        })
    }
}

impl IdSource {
    /// Reproducible ids. Never for a real deployment: they are guessable.
    pub fn seeded(seed: u64) -> Self {
        use rand::SeedableRng;
        Self(Some(std::sync::Arc::new(std::sync::Mutex::new(
            rand::rngs::StdRng::seed_from_u64(seed),
        ))))
    }

    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        if let Some(rng) = &self.0
            && let Ok(mut rng) = rng.lock()
        {
            return rng.fill_bytes(buf);
        }
        rand::rng().fill_bytes(buf)
    }

    /// `prefix` followed by 24 hex digits (96 bits).
    pub fn random_id(&self, prefix: &str) -> String {
        let mut b = [0u8; 12];
        self.fill(&mut b);
        format!("{prefix}{}", hex::encode(b))
    }

    /// Like [`IdSource::random_id`] (24 hex digits), but sorting by creation time: the
    /// microseconds since the epoch as 13 hex digits, then 44 random bits. For ids that
    /// go into a unique index written in floods (clicks), for the reason given at
    /// [`ordered_id`]. A seeded source gives [`IdSource::random_id`]'s reproducible ids.
    pub fn time_ordered_id(&self, prefix: &str) -> String {
        if self.0.is_some() {
            return self.random_id(prefix);
        }
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let mut b = [0u8; 8];
        self.fill(&mut b);
        let random = u64::from_le_bytes(b) >> 20;
        format!("{prefix}{:013x}{random:011x}", micros & ((1 << 52) - 1))
    }

    /// A fresh code: 10 characters from an alphabet without look-alikes.
    pub fn referral_code(&self) -> ReferralCode {
        const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
        let mut b = [0u8; 10];
        self.fill(&mut b);
        // 256 % 31 leaves a bias of under 1 %, irrelevant for codes that only need to
        // be unique (the store retries on a collision) and hard to guess.
        ReferralCode(
            b.iter()
                .map(|x| ALPHABET[usize::from(*x) % ALPHABET.len()] as char)
                .collect(),
        )
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> Error {
    Error::Invalid {
        field,
        message: message.into(),
    }
}

/// An account in the API business (the `sub` of a JWT, the owner of a key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '@'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(invalid(
                field,
                "must be 1-64 characters of letters, digits and _ - . : @",
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for AccountId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::parse("account", &s)
    }
}
impl From<AccountId> for String {
    fn from(v: AccountId) -> String {
        v.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL-safe referral code. Codes are case-insensitive and stored lower-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(into = "String")]
pub struct ReferralCode(String);

impl ReferralCode {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        let s = raw.trim().to_ascii_lowercase();
        let ok = (4..=32).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            Ok(Self(s))
        } else {
            Err(invalid(
                field,
                "must be 4-32 characters of letters, digits, - and _",
            ))
        }
    }
    /// A fresh random code (see [`IdSource::referral_code`]).
    pub fn generate() -> Self {
        IdSource::default().referral_code()
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn share_path(&self) -> String {
        format!("/r/{}", self.0)
    }
}
impl From<ReferralCode> for String {
    fn from(v: ReferralCode) -> String {
        v.0
    }
}

/// A campaign slug such as `default` or `spring-2026`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(into = "String")]
pub struct CampaignId(String);

impl CampaignId {
    pub const DEFAULT: &'static str = "default";
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        let ok = (1..=40).contains(&raw.len())
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(invalid(
                field,
                "must be 1-40 characters of lower-case letters, digits, - and _",
            ))
        }
    }
    pub fn default_campaign() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl From<CampaignId> for String {
    fn from(v: CampaignId) -> String {
        v.0
    }
}

/// The id of an attribution (a referral).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[serde(into = "i64")]
pub struct AttributionId(i64);

impl AttributionId {
    pub fn parse(field: &'static str, raw: i64) -> Result<Self, Error> {
        if raw > 0 {
            Ok(Self(raw))
        } else {
            Err(invalid(field, "must be a positive integer"))
        }
    }
    pub fn get(self) -> i64 {
        self.0
    }
}
impl From<AttributionId> for i64 {
    fn from(v: AttributionId) -> i64 {
        v.0
    }
}
impl fmt::Display for AttributionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The deployment's namespace for grant idempotency keys. Two deployments that share a
/// billing service (production and staging, two programs, a restored copy) must never
/// send the same key, or the second one's grants are taken as replays of the first's and
/// never paid. Generated once per database and kept, or set by configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantNamespace(String);

impl GrantNamespace {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        let ok = (1..=64).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_alphanumeric())
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(invalid(
                field,
                "must be 1-64 characters of letters, digits, _ - and ., starting with a letter or digit",
            ))
        }
    }
    /// A fresh, unguessable namespace (`rp_` and 96 random bits).
    pub fn generate() -> Self {
        Self(random_id("rp_"))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GrantNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A page size, bounded so no request can ask for an unbounded scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u32);

impl Limit {
    pub fn parse(field: &'static str, raw: i64, max: u32) -> Result<Self, Error> {
        if (1..=i64::from(max)).contains(&raw) {
            Ok(Self(raw as u32))
        } else {
            Err(invalid(field, format!("must be between 1 and {max}")))
        }
    }
    pub const fn new_const(v: u32) -> Self {
        Self(v)
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Opaque keyset cursor: the id the next page starts below. Encoded so callers treat it
/// as a token, not a number to do arithmetic on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(i64);

impl Cursor {
    pub fn after(last_id: i64) -> Self {
        Self(last_id)
    }
    pub fn encode(self) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("v1:{}", self.0))
    }
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Error> {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("v1:").and_then(|n| n.parse::<i64>().ok()))
            .filter(|n| *n > 0)
            .map(Self)
            .ok_or_else(|| invalid(field, "is not a cursor returned by this API"))
    }
    pub fn below(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ordered_ids_keep_the_random_ids_shape_and_sort_by_creation() {
        let ids = IdSource::default();
        let a = ids.time_ordered_id("clk_");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ids.time_ordered_id("clk_");
        for id in [&a, &b] {
            let hex = id.strip_prefix("clk_").unwrap();
            assert_eq!(hex.len(), ids.random_id("").len(), "{id}");
            assert!(hex.chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        }
        assert!(a < b, "{a} then {b}");
        // Seeded sources stay reproducible.
        assert_eq!(
            IdSource::seeded(7).time_ordered_id("clk_"),
            IdSource::seeded(7).time_ordered_id("clk_")
        );
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor::after(42);
        assert_eq!(Cursor::parse("cursor", &c.encode()).unwrap(), c);
        assert!(Cursor::parse("cursor", "42").is_err());
        assert!(Cursor::parse("cursor", &Cursor::after(0).encode()).is_err());
    }

    #[test]
    fn codes_are_case_insensitive_and_bounded() {
        assert_eq!(
            ReferralCode::parse("code", "AbCd").unwrap().as_str(),
            "abcd"
        );
        assert!(ReferralCode::parse("code", "abc").is_err());
        assert!(ReferralCode::parse("code", "ab/cd").is_err());
        let g = ReferralCode::generate();
        assert_eq!(ReferralCode::parse("code", g.as_str()).unwrap(), g);
    }

    #[test]
    fn grant_namespaces_are_bounded_and_generated_ones_parse() {
        let g = GrantNamespace::generate();
        assert_eq!(GrantNamespace::parse("ns", g.as_str()).unwrap(), g);
        assert_ne!(GrantNamespace::generate(), g);
        assert!(GrantNamespace::parse("ns", "prod-eu.1").is_ok());
        for bad in ["", "-x", "a:b", "a b", &"x".repeat(65)] {
            assert!(GrantNamespace::parse("ns", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_and_ids_refuse_out_of_range() {
        assert!(Limit::parse("limit", 0, 100).is_err());
        assert!(Limit::parse("limit", 101, 100).is_err());
        assert_eq!(Limit::parse("limit", 100, 100).unwrap().get(), 100);
        assert!(AttributionId::parse("id", 0).is_err());
        assert!(AccountId::parse("account", "a b").is_err());
    }
}

/// The bucket size of a stats series: UTC calendar days, ISO weeks (from Monday) or
/// calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
}

impl Interval {
    /// The first day (days since 1970-01-01) of the bucket holding `day`.
    pub fn bucket_of(self, day: i64) -> i64 {
        match self {
            Interval::Day => day,
            // 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
            Interval::Week => day - (day + 3).rem_euclid(7),
            Interval::Month => {
                let date = date_of(day);
                days_of(date.with_day(1).unwrap_or(date))
            }
        }
    }

    /// The first day of the bucket after the one starting on `start`.
    pub fn next(self, start: i64) -> i64 {
        match self {
            Interval::Day => start + 1,
            Interval::Week => start + 7,
            // `start` is a first of the month, so a month later is the next first.
            Interval::Month => date_of(start)
                .checked_add_months(chrono::Months::new(1))
                .map_or(start + 31, days_of),
        }
    }
}

fn date_of(day: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

fn days_of(d: chrono::NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map_or(0, |t| t.and_utc().timestamp().div_euclid(86_400))
}

/// `YYYY-MM-DD` of a day number.
pub fn day_label(day: i64) -> String {
    date_of(day).format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod interval_tests {
    use super::*;

    fn day(s: &str) -> i64 {
        days_of(chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
    }

    #[test]
    fn buckets_start_on_the_day_the_monday_and_the_first_of_the_month() {
        // 2026-11-26 is a Thursday.
        let d = day("2026-11-26");
        assert_eq!(day_label(Interval::Day.bucket_of(d)), "2026-11-26");
        assert_eq!(day_label(Interval::Week.bucket_of(d)), "2026-11-23");
        assert_eq!(
            day_label(Interval::Week.bucket_of(day("2026-11-23"))),
            "2026-11-23"
        );
        assert_eq!(
            day_label(Interval::Week.bucket_of(day("2026-11-29"))),
            "2026-11-23"
        );
        assert_eq!(day_label(Interval::Month.bucket_of(d)), "2026-11-01");
        assert_eq!(
            day_label(Interval::Month.next(day("2026-12-01"))),
            "2027-01-01"
        );
        assert_eq!(
            day_label(Interval::Month.next(day("2028-02-01"))),
            "2028-03-01"
        );
        assert_eq!(
            day_label(Interval::Week.next(day("2026-12-28"))),
            "2027-01-04"
        );
    }
}
