//! UTC timestamps as RFC 3339 text with milliseconds (`2026-11-24T16:34:24.123Z`), the form
//! the state store, the log headers and Task Copilot's rows all use.
//!
//! The calendar arithmetic is `jiff`'s: its `Timestamp` is an instant in UTC whose `{:.3}`
//! display is exactly this form and whose parser reads any RFC 3339 time (`Z` or an offset),
//! with no time-zone database needed.

use jiff::Timestamp;

/// Now, in UTC, with milliseconds.
pub fn now_rfc3339() -> String {
    format!("{:.3}", Timestamp::now())
}

/// Now, in seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    Timestamp::now().as_second()
}

/// Milliseconds since the Unix epoch of an RFC 3339 timestamp (as [`now_rfc3339`] writes, or
/// with fewer fraction digits, or an offset); `None` for anything else.
pub fn parse_unix_millis(text: &str) -> Option<i64> {
    text.parse::<Timestamp>()
        .ok()
        .map(Timestamp::as_millisecond)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds since the epoch in the stored form (how `now_rfc3339` writes them).
    fn format_unix_millis(millis: i64) -> String {
        format!("{:.3}", Timestamp::from_millisecond(millis).unwrap())
    }

    #[test]
    fn parses_what_it_formats() {
        for millis in [0, 951_782_400_000, 1_795_970_064_123, 4_102_444_799_999] {
            assert_eq!(parse_unix_millis(&format_unix_millis(millis)), Some(millis));
        }
        assert_eq!(
            parse_unix_millis("2026-01-09T12:34:56Z"),
            Some(1_767_962_096_000)
        );
        assert_eq!(
            parse_unix_millis("2026-01-09T12:34:56.5Z"),
            Some(1_767_962_096_500)
        );
        assert_eq!(
            parse_unix_millis("2026-01-09T13:34:56.5+01:00"),
            Some(1_767_962_096_500)
        );
        assert_eq!(parse_unix_millis("yesterday"), None);
        assert_eq!(parse_unix_millis("2026-01-09T12:34:56"), None, "no offset");
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_unix_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_unix_millis(1_795_970_064_123),
            "2026-11-29T16:34:24.123Z"
        );
        assert_eq!(
            format_unix_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(format_unix_millis(1_500), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn now_is_in_the_stored_form() {
        let now = now_rfc3339();
        assert_eq!(now.len(), "2026-11-24T16:34:24.123Z".len(), "{now}");
        assert!(now.ends_with('Z') && now.as_bytes()[19] == b'.', "{now}");
        assert!(parse_unix_millis(&now).is_some());
    }
}
