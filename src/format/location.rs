//! An S3 location, `s3://BUCKET/PREFIX`: parsed and held to S3's naming rules before any
//! call, and checked against the one bucket and prefix a function may write.
//!
//! A prefix is a folder: segments separated by `/`, none empty, none `.` or `..`, no
//! control characters. Those rules are ours, stricter than S3's (which takes any key): a
//! key that a console or a shell shows differently from what it is cannot be asked for.

use crate::format::limits::{MAX_BUCKET_NAME_BYTES, MAX_S3_PREFIX_BYTES, MIN_BUCKET_NAME_BYTES};
use std::fmt;

/// A bucket and a prefix within it (without a leading or trailing `/`; empty for the
/// bucket's root).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The folder, `a/b`, or empty.
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://BUCKET` or `s3://BUCKET/PREFIX` (one trailing `/` allowed).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an S3 URL: expected s3://BUCKET/PREFIX"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
        check_prefix(prefix)?;
        Ok(Self {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The location of the folder `name` under this one.
    pub fn join(&self, name: &str) -> Self {
        Self {
            bucket: self.bucket.clone(),
            prefix: self.key(name),
        }
    }

    /// The object key of `name` in this folder.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// Whether this location is `allowed` or a folder under it: the same bucket, and a
    /// prefix that starts with the allowed one at a `/`, never in the middle of a name
    /// (`exports-old` is not under `exports`).
    pub fn is_within(&self, allowed: &S3Location) -> bool {
        self.bucket == allowed.bucket
            && (allowed.prefix.is_empty()
                || self.prefix == allowed.prefix
                || self
                    .prefix
                    .strip_prefix(&allowed.prefix)
                    .is_some_and(|rest| rest.starts_with('/')))
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            write!(f, "s3://{}", self.bucket)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// S3's rules for a general purpose bucket's name: 3 to 63 characters of lower-case
/// letters, digits, dots and hyphens, starting and ending with a letter or a digit, no
/// two dots in a row, not an IP address.
fn check_bucket(bucket: &str) -> Result<(), String> {
    let chars_ok = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let is_ip = bucket.split('.').count() == 4
        && bucket
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    if !(MIN_BUCKET_NAME_BYTES..=MAX_BUCKET_NAME_BYTES).contains(&bucket.len())
        || !chars_ok
        || !ends_ok(bucket.as_bytes().first())
        || !ends_ok(bucket.as_bytes().last())
        || bucket.contains("..")
        || is_ip
    {
        return Err(format!(
            "{bucket:?} is not a bucket name: {MIN_BUCKET_NAME_BYTES} to {MAX_BUCKET_NAME_BYTES} \
             lower-case letters, digits, dots and hyphens, starting and ending with a letter \
             or a digit"
        ));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_S3_PREFIX_BYTES {
        return Err(format!(
            "the prefix has {} bytes; at most {MAX_S3_PREFIX_BYTES}, so its objects' keys fit \
             S3's 1,024",
            prefix.len()
        ));
    }
    if prefix.is_empty() {
        return Ok(());
    }
    for segment in prefix.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!(
                "the prefix {prefix:?} has an empty, `.` or `..` segment: name a folder as \
                 a/b/c"
            ));
        }
        if segment.chars().any(char::is_control) {
            return Err(format!("the prefix {prefix:?} has a control character"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_a_bucket_and_a_folder() {
        let at = S3Location::parse("s3://my-bucket/exports/daily/").expect("valid");
        assert_eq!(
            (at.bucket.as_str(), at.prefix.as_str()),
            ("my-bucket", "exports/daily")
        );
        assert_eq!(at.key("x.json.gz"), "exports/daily/x.json.gz");
        assert_eq!(at.to_string(), "s3://my-bucket/exports/daily");
        let root = S3Location::parse("s3://my-bucket").expect("valid");
        assert_eq!(root.prefix, "");
        assert_eq!(root.key("x"), "x");
        assert_eq!(S3Location::parse("s3://my-bucket/").expect("valid"), root);
    }

    #[test]
    fn bad_urls_are_refused_with_the_rule_they_break() {
        for bad in [
            "my-bucket/x",
            "https://my-bucket/x",
            "s3://",
            "s3://ab",
            "s3://My-Bucket/x",
            "s3://-bucket/x",
            "s3://bucket-/x",
            "s3://my..bucket/x",
            "s3://192.168.1.1/x",
            "s3://my_bucket/x",
            "s3://my-bucket//x",
            "s3://my-bucket/a//b",
            "s3://my-bucket/a/../b",
            "s3://my-bucket/./b",
            "s3://my-bucket/..",
            "s3://my-bucket/a\nb",
        ] {
            assert!(S3Location::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long = format!("s3://my-bucket/{}", "a".repeat(MAX_S3_PREFIX_BYTES + 1));
        assert!(S3Location::parse(&long).unwrap_err().contains("at most"));
    }

    #[test]
    fn within_means_the_same_folder_or_one_under_it() {
        let allowed = S3Location::parse("s3://b-1/exports").expect("valid");
        let yes = [
            "s3://b-1/exports",
            "s3://b-1/exports/",
            "s3://b-1/exports/a/b",
        ];
        let no = [
            "s3://b-1/exports-old",
            "s3://b-1",
            "s3://b-2/exports",
            "s3://b-1/other",
        ];
        for url in yes {
            assert!(
                S3Location::parse(url).expect(url).is_within(&allowed),
                "{url}"
            );
        }
        for url in no {
            assert!(
                !S3Location::parse(url).expect(url).is_within(&allowed),
                "{url}"
            );
        }
        let whole = S3Location::parse("s3://b-1").expect("valid");
        assert!(
            S3Location::parse("s3://b-1/any/thing")
                .expect("v")
                .is_within(&whole)
        );
    }
}
