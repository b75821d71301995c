//! Continuum datetimes: RFC 3339 (offset optional, no offset = UTC) or Continuum's own
//! `MM/DD/YYYY hh:mm:ss AM|PM` (UTC). See continuum-protocol.md section 1, "Datetimes".

use chrono::{DateTime, NaiveDateTime, Utc};

/// Naive forms (read as UTC), tried after strict RFC 3339. `T` is normalised before these run.
const NAIVE_FORMATS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    // Some exports drop the AM/PM and use a 24-hour clock.
    "%m/%d/%Y %H:%M:%S",
];

/// Parses a delivered datetime; the error names the value that could not be read.
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, String> {
    // Collapse runs of whitespace so "12/04/2026  9:15:00  PM" still parses.
    let norm = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let err = || {
        let expected = "RFC 3339 or MM/DD/YYYY hh:mm:ss AM|PM";
        format!("cannot parse '{}' as a datetime (expected {expected})", s.trim())
    };
    if norm.is_empty() {
        return Err(err());
    }
    // ISO forms: accept ' ' or 't' as the date/time separator and a lowercase 'z'.
    let iso = match norm.as_bytes().get(10) {
        Some(b' ' | b't') if norm.as_bytes()[4] == b'-' => {
            format!("{}T{}", &norm[..10], &norm[11..]).replace('z', "Z")
        }
        _ => norm.replace('z', "Z"),
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(&iso) {
        return Ok(dt.with_timezone(&Utc));
    }
    // Offsets without a colon (+0100) or with a space before them.
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%.f %z"] {
        if let Ok(dt) = DateTime::parse_from_str(&iso, f) {
            return Ok(dt.with_timezone(&Utc));
        }
    }
    NAIVE_FORMATS
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&iso, f).ok())
        .map(|n| n.and_utc())
        .ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn rfc3339_forms() {
        let want = utc(2026, 12, 4, 9, 15, 0);
        for s in [
            "2026-12-04T09:15:00Z",
            "2026-12-04T09:15:00z",
            "2026-12-04t09:15:00Z",
            "2026-12-04 09:15:00Z",
            "2026-12-04T09:15:00+00:00",
            "2026-12-04T09:15:00",       // no offset = UTC
            "2026-12-04 09:15:00",
            "  2026-12-04T09:15:00Z  ",
            "2026-12-04T09:15",
        ] {
            assert_eq!(parse_datetime(s), Ok(want), "{s}");
        }
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(parse_datetime("2026-12-04T10:15:00+01:00"), Ok(utc(2026, 12, 4, 9, 15, 0)));
        assert_eq!(parse_datetime("2026-12-04T04:15:00-05:00"), Ok(utc(2026, 12, 4, 9, 15, 0)));
        assert_eq!(parse_datetime("2026-12-04T23:30:00-05:00"), Ok(utc(2026, 12, 5, 4, 30, 0)));
        assert_eq!(parse_datetime("2026-12-04T10:15:00+0100"), Ok(utc(2026, 12, 4, 9, 15, 0)));
    }

    #[test]
    fn fractional_seconds() {
        let d = parse_datetime("2026-12-04T09:15:00.123Z").unwrap();
        assert_eq!(d.timestamp_subsec_millis(), 123);
        let d = parse_datetime("2026-12-04T09:15:00.5").unwrap();
        assert_eq!(d.timestamp_subsec_millis(), 500);
        let d = parse_datetime("2026-12-04 09:15:00.250+02:00").unwrap();
        assert_eq!(d, utc(2026, 12, 4, 7, 15, 0) + chrono::Duration::milliseconds(250));
    }

    #[test]
    fn continuum_am_pm_form() {
        assert_eq!(parse_datetime("12/04/2026 09:15:00 AM"), Ok(utc(2026, 12, 4, 9, 15, 0)));
        assert_eq!(parse_datetime("12/04/2026 09:15:00 PM"), Ok(utc(2026, 12, 4, 21, 15, 0)));
        assert_eq!(parse_datetime("12/04/2026 9:15:00 pm"), Ok(utc(2026, 12, 4, 21, 15, 0)));
        assert_eq!(parse_datetime("1/4/2026 1:05:09 PM"), Ok(utc(2026, 1, 4, 13, 5, 9)));
        assert_eq!(parse_datetime("01/04/2026  1:05:09  AM"), Ok(utc(2026, 1, 4, 1, 5, 9)));
        assert_eq!(parse_datetime("12/04/2026 9:15 PM"), Ok(utc(2026, 12, 4, 21, 15, 0)));
        assert_eq!(parse_datetime("12/04/2026 21:15:00"), Ok(utc(2026, 12, 4, 21, 15, 0)));
    }

    #[test]
    fn twelve_o_clock_edges() {
        assert_eq!(parse_datetime("12/04/2026 12:00:00 AM"), Ok(utc(2026, 12, 4, 0, 0, 0)));
        assert_eq!(parse_datetime("12/04/2026 12:30:00 PM"), Ok(utc(2026, 12, 4, 12, 30, 0)));
        assert_eq!(parse_datetime("12/04/2026 12:59:59 AM"), Ok(utc(2026, 12, 4, 0, 59, 59)));
    }

    #[test]
    fn unparseable_values_are_errors_naming_the_value() {
        for s in ["", "  ", "yesterday", "2026-13-01T00:00:00Z", "13/01/2026 09:00:00 AM",
                  "12/04/2026 13:00:00 PM", "2026-12-04", "1733303700", "12/04/2026 09:15:00 XM"] {
            let e = parse_datetime(s).unwrap_err();
            assert!(e.contains(&format!("'{}'", s.trim())), "{s}: {e}");
        }
    }
}
