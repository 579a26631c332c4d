//! Time as the core sees it. Tests use a manual clock to cross windows (dedupe hour,
//! attribution window, cap period) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn manual(start: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }
    /// Unix seconds.
    pub fn now(&self) -> i64 {
        match self {
            Clock::System => chrono::Utc::now().timestamp(),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }
    pub fn advance(&self, secs: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(secs, Ordering::SeqCst);
        }
    }
}

/// RFC 3339, UTC, seconds (`2026-11-30T05:00:00Z`). Written by chrono's RFC 3339 writer,
/// not a `strftime` pattern: every timestamp of every answer goes through here, and a
/// pattern is parsed again on each call.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` date (its start, or with `end_of_day` the start of the next
/// day, so a date range includes its last day) or an RFC 3339 instant.
pub fn parse_instant(
    field: &'static str,
    s: &str,
    end_of_day: bool,
) -> Result<i64, super::error::Error> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = d
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or_default();
        return Ok(if end_of_day { day + 86_400 } else { day });
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .map_err(|_| super::error::Error::Invalid {
            field,
            message: "must be a date (YYYY-MM-DD) or an RFC 3339 time".into(),
        })
}

/// The start of the UTC calendar period (day, ISO week from Monday, month) holding `ts`.
pub fn period_start(ts: i64, period: super::types::CapPeriod) -> i64 {
    use super::types::CapPeriod;
    use chrono::{Datelike, NaiveDate};
    let Some(at) = chrono::DateTime::from_timestamp(ts, 0) else {
        return ts;
    };
    let day = at.date_naive();
    let start: Option<NaiveDate> = match period {
        CapPeriod::Day => Some(day),
        CapPeriod::Week => day.checked_sub_days(chrono::Days::new(u64::from(
            day.weekday().num_days_from_monday(),
        ))),
        CapPeriod::Month => day.with_day(1),
    };
    start
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::types::CapPeriod;

    #[test]
    fn cap_periods_start_at_utc_calendar_boundaries() {
        // Wednesday 2026-03-18 15:30:00 UTC.
        let t = parse_instant("t", "2026-03-18T15:30:00Z", false).unwrap();
        let at = |s| parse_instant("t", s, false).unwrap();
        assert_eq!(period_start(t, CapPeriod::Day), at("2026-03-18"));
        assert_eq!(period_start(t, CapPeriod::Week), at("2026-03-16"));
        assert_eq!(period_start(t, CapPeriod::Month), at("2026-03-01"));
        // A Monday is its own week's start.
        assert_eq!(
            period_start(at("2026-03-16"), CapPeriod::Week),
            at("2026-03-16")
        );
    }

    #[test]
    fn a_date_range_includes_its_last_day() {
        assert_eq!(
            parse_instant("to", "2026-03-18", true).unwrap()
                - parse_instant("from", "2026-03-18", false).unwrap(),
            86_400
        );
        assert!(parse_instant("from", "18/03/2026", false).is_err());
    }
}
