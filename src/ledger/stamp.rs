//! The ledger's timestamps: `chrono::DateTime<Utc>` in the records, and one text form
//! everywhere they are stored, printed or serialized: RFC 3339 in UTC with milliseconds
//! (`2026-12-01T02:03:04.567Z`).
//!
//! [`now`] drops everything below the millisecond, so a record read back from any backend
//! equals the record the write returned, and the text form round-trips exactly.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serializer;

/// Now, to the millisecond.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

/// The stored and printed form: `2026-12-01T02:03:04.567Z`.
pub fn text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A stored time (RFC 3339), if `text` is one.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// Serializes a time in its stored form (for `#[serde(serialize_with = …)]`), so JSON
/// output reads exactly as it did when times were kept as text.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&text(at))
}

/// [`serialize`] for an optional time (`null` when there is none).
pub fn serialize_opt<S: Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&text(at)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_form_round_trips_and_keeps_milliseconds() {
        for stored in ["2026-12-01T02:03:04.567Z", "2026-12-01T02:03:04.000Z"] {
            let at = parse(stored).expect("a stored time");
            assert_eq!(text(&at), stored);
            let json = serde_json::to_value(Wrapped { at }).expect("json");
            assert_eq!(json, serde_json::json!({ "at": stored }));
        }
        let now = now();
        assert_eq!(parse(&text(&now)), Some(now));
        assert_eq!(parse("yesterday"), None);
    }

    #[derive(serde::Serialize)]
    struct Wrapped {
        #[serde(serialize_with = "serialize")]
        at: DateTime<Utc>,
    }
}
