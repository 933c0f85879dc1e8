//! Times as text: the ISO 8601 (RFC 3339) UTC form DynamoDB's export manifests carry,
//! and RFC 3339 read back (`since=`, a snapshot's `changes_since`).

/// `millis` since the Unix epoch as `2020-11-04T07:28:34.028Z`: UTC, the fraction of a
/// second only when there is one, without trailing zeros (`.5`, `.028`); empty past the
/// year 9999, which RFC 3339 cannot write.
pub fn iso8601(millis: u64) -> String {
    let (days, of_day) = (millis / 86_400_000, millis % 86_400_000);
    let (year, month, day) = civil(days);
    if year > 9999 {
        return String::new();
    }
    let seconds = of_day / 1000;
    let (hour, minute, second) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let fraction = of_day % 1000;
    if fraction > 0 {
        let digits = format!("{fraction:03}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
    text.push('Z');
    text
}

/// Milliseconds since the Unix epoch of an RFC 3339 time: `2026-12-07T10:00:00Z`,
/// `2026-12-07T10:00:00.250+01:00` (`T` or a space, `Z` or an offset, at most nine digits of
/// fraction, of which milliseconds are kept). Years 1970 to 9999; a leap second is refused.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not an RFC 3339 time like 2026-12-07T10:00:00Z");
    let b = text.as_bytes();
    let digits = |from: usize, len: usize| -> Option<u64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    };
    let punct = |at: usize, what: &[u8]| b.get(at).is_some_and(|c| what.contains(c));
    let ok =
        punct(4, b"-") && punct(7, b"-") && punct(10, b"Tt ") && punct(13, b":") && punct(16, b":");
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), true) = (
        digits(0, 4),
        digits(5, 2),
        digits(8, 2),
        digits(11, 2),
        digits(14, 2),
        digits(17, 2),
        ok,
    ) else {
        return Err(bad());
    };
    let mut at = 19;
    let mut millis = 0;
    if punct(at, b".") {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let fraction = &text[start..at];
        if fraction.is_empty() || fraction.len() > 9 {
            return Err(bad());
        }
        millis = format!("{fraction:0<3}")[..3]
            .parse::<u64>()
            .map_err(|_| bad())?;
    }
    let offset_minutes: i64 = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if at + 6 == b.len() && punct(at + 3, b":") => {
            let (Some(h), Some(m)) = (digits(at + 1, 2), digits(at + 4, 2)) else {
                return Err(bad());
            };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let minutes = i64::try_from(h * 60 + m).map_err(|_| bad())?;
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return Err(bad()),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let local = (days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
        * 1000
        + millis;
    let utc = i64::try_from(local).map_err(|_| bad())? - offset_minutes * 60_000;
    u64::try_from(utc).map_err(|_| bad())
}

/// Days from 1970-01-01 to a date on or after it (Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year % 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The (year, month, day) of `days` after 1970-01-01, in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_the_export_manifests_write_them() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(1_604_474_914_028), "2020-11-04T07:28:34.028Z");
        assert_eq!(iso8601(1_604_474_914_500), "2020-11-04T07:28:34.5Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(iso8601(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(iso8601(253_402_300_800_000), "");
        assert_eq!(iso8601(u64::MAX), "");
    }

    #[test]
    fn rfc3339_reads_back_what_is_written_and_offsets() {
        for millis in [
            0,
            1_604_474_914_028,
            951_782_400_000,
            4_107_542_399_999,
            1_765_100_000_500,
        ] {
            assert_eq!(parse_rfc3339(&iso8601(millis)), Ok(millis), "{millis}");
        }
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01 00:00:00.123456789z"), Ok(123));
        assert_eq!(
            parse_rfc3339("2020-11-04T02:28:34.028-05:00"),
            Ok(1_604_474_914_028)
        );
        for bad in [
            "",
            "2026-12-07",
            "2026-12-07T10:00:00",
            "2026-12-07T10:00:00ZZ",
            "2026-02-29T10:00:00Z",
            "2026-12-07T24:00:00Z",
            "2026-12-07T10:00:60Z",
            "2026-12-07T10:00:00.Z",
            "2026-12-07T10:00:00.1234567890Z",
            "2026-12-07T10:00:00+0100",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "+026-12-07T10:00:00Z",
            "2026-12-07T10:00:00+24:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
