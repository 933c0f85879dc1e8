//! DynamoDB's number: exact (38 significant digits do not fit a float), checked by
//! DynamoDB's rules, and ordered and compared by value (`1`, `1.0` and `1E0` are one
//! number), as DynamoDB compares keys and set members.

use std::cmp::Ordering;

/// A number as DynamoDB holds it: sign, significant digits, and the exponent of the
/// first digit. Equal values are equal here, however they were written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Number {
    /// Below zero (never for zero, however it was written).
    negative: bool,
    /// Without leading or trailing zeros; empty for zero.
    digits: String,
    /// `d.ddd x 10^exponent`.
    exponent: i64,
}

impl Number {
    /// Checks `text` as DynamoDB does: JSON number syntax, at most 38 significant digits
    /// (leading and trailing zeros do not count), and a magnitude from 1E-130 up to, not
    /// including, 1E126. Measured against DynamoDB Local: `1` and 39 zeros is accepted,
    /// `1E126` overflows, `1E-130` is accepted and `1E-131` underflows.
    pub fn parse(text: &str) -> Result<Self, String> {
        if !is_json_number(text) {
            return Err("must be a number, as a string".into());
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => (m, e),
            None => (unsigned, "0"),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all: String = [whole, fraction].concat();
        let leading = all.len() - all.trim_start_matches('0').len();
        let digits = all.trim_matches('0');
        if digits.is_empty() {
            return Ok(Self {
                negative: false,
                digits: String::new(),
                exponent: 0,
            });
        }
        if digits.len() > 38 {
            return Err(format!(
                "must have at most 38 significant digits, has {}",
                digits.len()
            ));
        }
        // An exponent of more digits than this is out of range whatever the mantissa.
        let given: i64 = match exponent.trim_start_matches('+').parse::<i64>() {
            Ok(e) if e.abs() < 1_000_000 => e,
            _ if exponent.starts_with('-') => return Err("is too small (Number underflow)".into()),
            _ => return Err("is too large (Number overflow)".into()),
        };
        // The first significant digit sits `whole.len() - leading - 1` places left of the
        // point (negative when it is in the fraction).
        let exponent = given + whole.len() as i64 - leading as i64 - 1;
        if exponent > 125 {
            return Err("is too large: at most 9.99...E+125 (Number overflow)".into());
        }
        if exponent < -130 {
            return Err("is too small: at least 1E-130 (Number underflow)".into());
        }
        Ok(Self {
            negative,
            digits: digits.to_string(),
            exponent,
        })
    }
}

/// By value, as DynamoDB orders number keys: by sign, then by the exponent of the first
/// significant digit, then digit by digit.
impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        let magnitude = match (self.digits.is_empty(), other.digits.is_empty()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => self
                .exponent
                .cmp(&other.exponent)
                .then_with(|| self.digits.as_bytes().cmp(other.digits.as_bytes())),
        };
        match (self.negative, other.negative) {
            (false, false) => magnitude,
            (true, true) => magnitude.reverse(),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The number grammar of RFC 8259, section 6.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_follow_dynamodbs_rules() {
        // Each case measured against DynamoDB Local with PutItem (FIELD-NOTES).
        let accepted = [
            format!("1{}", "0".repeat(39)),
            "9.9999999999999999999999999999999999999E+125".to_string(),
            "1E-130".to_string(),
            "-1E-130".to_string(),
            "0".to_string(),
            "-0.000".to_string(),
            "0.0000000000000000000000000000000000000000001".to_string(),
            "12345678901234567890123456789012345678".to_string(),
            "1234567890123456789012345678901234567800000".to_string(),
        ];
        for n in &accepted {
            assert!(Number::parse(n).is_ok(), "{n}: {:?}", Number::parse(n));
        }
        let rejected = [
            ("1E126", "overflow"),
            ("10E125", "overflow"),
            ("1E-131", "underflow"),
            ("0.1E-130", "underflow"),
            ("1E999999999999", "overflow"),
            ("1E-999999999999", "underflow"),
            ("123456789012345678901234567890123456789", "38 significant"),
            ("1.", "a number"),
            ("+1", "a number"),
            ("0x10", "a number"),
        ];
        for (n, why) in rejected {
            let err = Number::parse(n).expect_err(n);
            assert!(err.contains(why), "{n}: {err}");
        }
        assert_eq!(Number::parse("1"), Number::parse("1.0"));
        assert_eq!(Number::parse("100"), Number::parse("1E2"));
        assert_eq!(Number::parse("0"), Number::parse("-0.0"));
        assert_ne!(Number::parse("1"), Number::parse("-1"));
    }

    #[test]
    fn numbers_compare_exactly() {
        use std::cmp::Ordering::*;
        let number = |n: &str| Number::parse(n).expect(n);
        for (a, b, want) in [
            ("1", "2", Less),
            ("10", "9.5", Greater),
            ("-1", "-2", Greater),
            ("0", "-0.0", Equal),
            ("1e2", "100", Equal),
            ("1E-2", "-3", Greater),
            (
                "12345678901234567890123456789012345678",
                "12345678901234567890123456789012345679",
                Less,
            ),
            ("0.001", "0.01", Less),
            ("-0.5", "0", Less),
            ("1.2", "1.23", Less),
            ("-1E-130", "1E-130", Less),
        ] {
            assert_eq!(number(a).cmp(&number(b)), want, "{a} vs {b}");
            assert_eq!(number(b).cmp(&number(a)), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn json_numbers_follow_rfc_8259() {
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "NaN", "1 "] {
            assert!(!is_json_number(bad), "{bad:?}");
        }
        for good in ["0", "-0", "10", "1.25", "1e5", "1E+5", "-2.5e-3"] {
            assert!(is_json_number(good), "{good:?}");
        }
    }
}
