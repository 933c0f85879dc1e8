//! Request parameters: a query string (or form body) to named, bounded values.
//!
//! The one place either function reads its parameters. Parsing is strict: an unknown or
//! repeated name, or a value that is not UTF-8 once percent-decoded, is refused with a
//! [`RequestError`] naming the parameter (the edge sends it as a `400`), never decoded
//! "lossily" into a value nobody sent. Errors carry a stable [`ErrorCode`] and a message
//! built only from fixed text and [`quoted`] input; no HTTP.

use crate::format::error::ErrorKind;
use percent_encoding::percent_decode;
use std::collections::HashMap;

/// The stable codes of error bodies, which clients match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A parameter nobody knows.
    UnknownParameter,
    /// A required parameter is missing.
    MissingParameter,
    /// A parameter's value is malformed or out of bounds.
    InvalidParameter,
    /// A cursor that cannot be resumed from.
    InvalidCursor,
    /// A body over the size limit.
    BodyTooLarge,
    /// A POST body of a media type other than a form.
    UnsupportedMediaType,
    /// A method other than the ones allowed.
    MethodNotAllowed,
    /// A destination (`to=`) outside the one the function may write.
    DestinationNotAllowed,
    /// The object a request names does not exist.
    ObjectNotFound,
    /// A file is not what the request says (size, MD5, item count) or holds lines the
    /// table cannot take: nothing of it was written.
    FileRefused,
    /// The table's stream cannot be read for changes: there is none, it is disabled, or
    /// its view type has no new images.
    StreamNotReadable,
    /// The changes asked for are no longer kept: the stream was re-created, or they are
    /// past its 24-hour retention.
    ChangesGone,
    /// An upstream failure, by its kind.
    Upstream(ErrorKind),
}

impl ErrorCode {
    /// The code as it appears in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownParameter => "UnknownParameter",
            Self::MissingParameter => "MissingParameter",
            Self::InvalidParameter => "InvalidParameter",
            Self::InvalidCursor => "InvalidCursor",
            Self::BodyTooLarge => "BodyTooLarge",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::DestinationNotAllowed => "DestinationNotAllowed",
            Self::ObjectNotFound => "ObjectNotFound",
            Self::FileRefused => "FileRefused",
            Self::StreamNotReadable => "StreamNotReadable",
            Self::ChangesGone => "ChangesGone",
            Self::Upstream(kind) => kind.code(),
        }
    }
}

/// A request refused before any work: its parameters (or cursor) are not ones the read
/// takes. The edge answers it with a `400` carrying `code` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// A stable code clients can match on.
    pub code: ErrorCode,
    /// A human-readable explanation, built only from fixed text and validated input.
    pub message: String,
}

impl RequestError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: String) -> Self {
        Self { code, message }
    }
}

/// Echoes client input back safely: quoted, escaped, and cut short.
pub fn quoted(value: &str) -> String {
    let short: String = value.chars().take(40).collect();
    let ellipsis = if short.len() < value.len() { "..." } else { "" };
    format!("{short:?}{ellipsis}")
}

/// The parameters of one request, each known and given once (or, if repeatable, as
/// often as it was given, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    values: HashMap<String, Vec<String>>,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text (a query string or a form body);
    /// every name must be one of `known`, given once.
    pub fn parse(raw: &str, known: &[&str]) -> Result<Self, RequestError> {
        Self::parse_repeatable(raw, known, &[])
    }

    /// As [`Params::parse`], but the names in `repeatable` may be given any number of
    /// times (`pk=a&pk=b`); [`Params::all`] reads them.
    pub fn parse_repeatable(
        raw: &str,
        known: &[&str],
        repeatable: &[&str],
    ) -> Result<Self, RequestError> {
        let mut values: HashMap<String, Vec<String>> = HashMap::new();
        for pair in raw.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(name).map_err(|lossy| unknown(&lossy, known))?;
            if !known.contains(&name.as_str()) {
                return Err(unknown(&name, known));
            }
            let value = decode(value).map_err(|_| {
                RequestError::new(
                    ErrorCode::InvalidParameter,
                    format!("{name} is not valid UTF-8 once percent-decoded"),
                )
            })?;
            if values.contains_key(&name) && !repeatable.contains(&name.as_str()) {
                return Err(RequestError::new(
                    ErrorCode::InvalidParameter,
                    format!("parameter {name} is given more than once"),
                ));
            }
            values.entry(name).or_default().push(value);
        }
        Ok(Self { values })
    }

    /// Every value of `name`, in the order given; empty when absent.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// The names given, in no order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Whether `name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// The value of `name`, as given.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// `name` as an integer in `min..=max` (strict decimal digits: no sign, no spaces, no
    /// exponent), or `default` when absent.
    pub fn integer<T>(&self, name: &str, default: T, min: T, max: T) -> Result<T, RequestError>
    where
        T: Into<u64> + TryFrom<u64> + Copy,
    {
        Ok(self.optional_integer(name, min, max)?.unwrap_or(default))
    }

    /// `name` as an integer in `min..=max`, or `None` when absent.
    pub fn optional_integer<T>(&self, name: &str, min: T, max: T) -> Result<Option<T>, RequestError>
    where
        T: Into<u64> + TryFrom<u64> + Copy,
    {
        let Some(value) = self.text(name) else {
            return Ok(None);
        };
        let (low, high) = (min.into(), max.into());
        let digits =
            !value.is_empty() && value.len() <= 20 && value.bytes().all(|b| b.is_ascii_digit());
        let parsed = digits
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .filter(|n| (low..=high).contains(n))
            .and_then(|n| T::try_from(n).ok());
        parsed.map(Some).ok_or_else(|| {
            RequestError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{name} must be an integer in {low}..={high}, got {}",
                    quoted(value)
                ),
            )
        })
    }

    /// `name` as one of `names`, read by `of`; `default` when absent.
    pub fn choice<T>(
        &self,
        name: &str,
        default: T,
        names: &[&str],
        of: impl Fn(&str) -> Option<T>,
    ) -> Result<T, RequestError> {
        let Some(value) = self.text(name) else {
            return Ok(default);
        };
        of(value).ok_or_else(|| {
            RequestError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{name} must be one of {}, got {}",
                    names.join(", "),
                    quoted(value)
                ),
            )
        })
    }

    /// `name` as a plain decimal number in `(0, max]` (digits, an optional fraction: no
    /// sign, exponent, `NaN` or infinity), or `None` when absent.
    pub fn positive_decimal(&self, name: &str, max: f64) -> Result<Option<f64>, RequestError> {
        let Some(value) = self.text(name) else {
            return Ok(None);
        };
        decimal(value, max).map(Some).ok_or_else(|| {
            RequestError::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{name} must be a decimal number greater than 0 and at most {max}, got {}",
                    quoted(value)
                ),
            )
        })
    }

    /// `name` as `true` or `false`; absent is `false`.
    pub fn boolean(&self, name: &str) -> Result<bool, RequestError> {
        match self.text(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(RequestError::new(
                ErrorCode::InvalidParameter,
                format!("{name} must be true or false, got {}", quoted(other)),
            )),
        }
    }
}

/// `text` as a plain decimal number in `(0, max]`: up to 12 digits, optionally a point
/// and up to 6 more; nothing else.
pub fn decimal(text: &str, max: f64) -> Option<f64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits =
        |part: &str, most: usize| part.len() <= most && part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !whole.is_empty()
        && digits(whole, 12)
        && digits(fraction, 6)
        && (!fraction.is_empty() || !text.ends_with('.'));
    let value: f64 = text.parse().ok().filter(|_| well_formed)?;
    (value > 0.0 && value <= max).then_some(value)
}

/// Form decoding: `+` is a space, then percent-escapes; the bytes must be UTF-8. On error,
/// the lossy text, to name an unknown parameter with.
fn decode(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_decode(spaced.as_bytes()).collect();
    String::from_utf8(bytes).map_err(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

fn unknown(name: &str, known: &[&str]) -> RequestError {
    RequestError::new(
        ErrorCode::UnknownParameter,
        format!(
            "unknown parameter {}; known parameters: {}",
            quoted(name),
            known.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["n", "pk", "fields", "index", "flag"];

    fn parse(raw: &str) -> Result<Params, RequestError> {
        Params::parse(raw, KNOWN)
    }

    #[test]
    fn echoed_input_is_escaped_and_short() {
        assert_eq!(quoted("a\"b"), "\"a\\\"b\"");
        assert!(quoted(&"x".repeat(100)).ends_with("\"..."));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let err = parse("n=1&bogus=2").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownParameter);
        assert!(err.message.contains("\"bogus\""), "{}", err.message);
        let err = parse("n=1&n=2").unwrap_err();
        assert!(
            err.message.contains("n is given more than once"),
            "{}",
            err.message
        );
        let err = parse("%FF=1").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownParameter);
    }

    #[test]
    fn only_repeatable_parameters_may_repeat() {
        let p = Params::parse_repeatable("pk=a&n=1&pk=b%20c&pk=a", KNOWN, &["pk"]).expect("ok");
        assert_eq!(p.all("pk"), ["a", "b c", "a"]);
        assert_eq!(p.text("pk"), Some("a"));
        assert!(p.all("fields").is_empty());
        let err = Params::parse_repeatable("pk=a&n=1&n=2", KNOWN, &["pk"]).unwrap_err();
        assert!(
            err.message.contains("n is given more than once"),
            "{}",
            err.message
        );
        assert!(parse("pk=a&pk=b").is_err(), "not repeatable unless asked");
    }

    #[test]
    fn values_that_are_not_utf8_are_refused_by_name() {
        for (raw, name) in [
            ("pk=%FF", "pk"),
            ("fields=%C3%28", "fields"),
            ("index=%FF%FEab", "index"),
        ] {
            let err = parse(raw).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidParameter);
            assert!(err.message.starts_with(name), "{raw}: {}", err.message);
            assert!(err.message.contains("UTF-8"), "{raw}: {}", err.message);
        }
        let ok = parse("pk=%E2%98%83+x&fields=a%2Cb").expect("valid UTF-8");
        assert_eq!(ok.text("pk"), Some("☃ x"));
        assert_eq!(ok.text("fields"), Some("a,b"));
    }

    #[test]
    fn integers_are_strict_and_bounded() {
        let p = |q: &str| parse(q).expect("known");
        assert_eq!(p("").integer("n", 7u32, 1, 10), Ok(7));
        assert_eq!(p("n=10").integer("n", 7u32, 1, 10), Ok(10));
        assert_eq!(p("n=10").integer("n", 7u64, 1, 10), Ok(10));
        assert_eq!(p("").optional_integer::<u64>("n", 1, 10), Ok(None));
        for bad in [
            "n=0",
            "n=11",
            "n=-1",
            "n=+1",
            "n=1.0",
            "n=1e1",
            "n=%201",
            "n=",
            "n=99999999999999999999999",
        ] {
            let err = p(bad).integer("n", 7u32, 1, 10).unwrap_err();
            assert!(
                err.message.starts_with("n must be an integer in 1..=10"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn choices_name_what_is_allowed() {
        let p = parse("flag=b").expect("ok");
        let of = |s: &str| ["a", "b"].iter().position(|n| *n == s);
        assert_eq!(p.choice("flag", 0, &["a", "b"], of), Ok(1));
        assert_eq!(p.choice("n", 0, &["a", "b"], of), Ok(0));
        let err = parse("flag=c")
            .expect("ok")
            .choice("flag", 0, &["a", "b"], of)
            .unwrap_err();
        assert_eq!(err.message, "flag must be one of a, b, got \"c\"");
    }

    #[test]
    fn positive_decimals_are_plain_and_bounded() {
        let p = |q: &str| parse(q).expect("ok").positive_decimal("n", 1000.0);
        assert_eq!(p("n=120"), Ok(Some(120.0)));
        assert_eq!(p("n=0.5"), Ok(Some(0.5)));
        assert_eq!(p("n=1000"), Ok(Some(1000.0)));
        assert_eq!(p(""), Ok(None));
        for bad in [
            "n=0",
            "n=0.0",
            "n=-1",
            "n=1e2",
            "n=NaN",
            "n=inf",
            "n=infinity",
            "n=1000.5",
            "n=.5",
            "n=5.",
            "n=",
            "n=x",
            "n=%2B5",
            "n=1e400",
            "n=0.0000001",
        ] {
            let err = p(bad).unwrap_err();
            assert!(
                err.message.starts_with("n must be a decimal number"),
                "{bad}: {}",
                err.message
            );
        }
    }

    #[test]
    fn booleans_are_true_or_false() {
        assert_eq!(parse("flag=true").expect("ok").boolean("flag"), Ok(true));
        assert_eq!(parse("").expect("ok").boolean("flag"), Ok(false));
        assert!(parse("flag=yes").expect("ok").boolean("flag").is_err());
    }
}
