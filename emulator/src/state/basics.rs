//! What every part of the state uses: the clock, Graph's time formats, new GUIDs.
use chrono::{DateTime, SecondsFormat, Utc};

pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub fn fmt_secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `2022-05-07T06:52:40.8313021Z` (7 fractional digits, as Graph returns on create).
pub fn fmt_7(t: DateTime<Utc>) -> String {
    format!(
        "{}.{:07}Z",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.timestamp_subsec_nanos() / 100
    )
}

pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub fn now_secs() -> i64 {
    now_ms() / 1000
}

pub fn random_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}
