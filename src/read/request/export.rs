//! `to=s3://BUCKET/PREFIX`: where an export's files go, held to the one location the
//! function may write (`EXPORT_BUCKET`, `EXPORT_PREFIX`), and what an export cannot be
//! combined with. An export is of whole items of the whole table, in DynamoDB's typed
//! JSON, so ImportTable and `seeder --from` read the files back as the table.

use crate::format::location::S3Location;
use crate::format::shape::ReadShape;
use crate::read::params::{ErrorCode, Params, RequestError};

/// The destination `to=` names, checked; `None` without `to=`.
pub fn destination(
    params: &Params,
    allowed: Option<&S3Location>,
) -> Result<Option<S3Location>, RequestError> {
    let Some(url) = params.text("to") else {
        return Ok(None);
    };
    let to = S3Location::parse(url)
        .map_err(|why| RequestError::new(ErrorCode::InvalidParameter, format!("to: {why}")))?;
    let Some(allowed) = allowed else {
        return Err(RequestError::new(
            ErrorCode::InvalidParameter,
            "to= needs an export bucket: this function has no EXPORT_BUCKET".into(),
        ));
    };
    if !to.is_within(allowed) {
        return Err(RequestError::new(
            ErrorCode::DestinationNotAllowed,
            format!("to: this function writes only under {allowed}, not {to}"),
        ));
    }
    Ok(Some(to))
}

/// Refuses what an export cannot be: a projection, a filter, a Query, an index, a
/// count, or items written as plain JSON.
pub fn check_whole_table(
    params: &Params,
    shape: &ReadShape,
    query: bool,
) -> Result<(), RequestError> {
    let refuse = |what: &str| {
        Err(RequestError::new(
            ErrorCode::InvalidParameter,
            format!(
                "to= cannot be combined with {what}: an export is of whole items of the whole table"
            ),
        ))
    };
    if !shape.fields.is_empty() {
        return refuse("fields");
    }
    if shape.filter.is_some() {
        return refuse("filter");
    }
    if query || shape.query.is_some() {
        return refuse("pk (a Query)");
    }
    if shape.index.is_some() {
        return refuse("index");
    }
    if shape.count {
        return refuse("select=count");
    }
    if params.text("format").is_some_and(|f| f != "dynamodb") {
        return refuse("format=json (the files are DynamoDB JSON, what ImportTable reads)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::format::compress::Compression;
    use crate::format::json::Format;
    use crate::format::location::S3Location;
    use crate::read::params::{ErrorCode, Params};
    use crate::read::request::{PARAMETERS, REPEATABLE, StreamRequest, parse_request};

    fn get(query: &str, allowed: Option<&str>) -> Result<StreamRequest, (ErrorCode, String)> {
        let mut bounds = crate::read::request::tests::bounds();
        bounds.export = allowed.map(|url| S3Location::parse(url).expect("allowed"));
        let params = Params::parse_repeatable(query, PARAMETERS, REPEATABLE)
            .map_err(|e| (e.code, e.message))?;
        parse_request(&params, &bounds).map_err(|e| (e.code, e.message))
    }

    #[test]
    fn an_export_is_dynamodb_json_gzipped_unless_told_and_names_its_folder() {
        let r = get(
            "to=s3://bucket-1/exports/run-1",
            Some("s3://bucket-1/exports"),
        )
        .expect("valid");
        assert_eq!(
            r.to.as_ref().map(|t| t.key("f")),
            Some("exports/run-1/f".into())
        );
        assert_eq!(
            (r.format, r.compression),
            (Format::Dynamodb, Compression::Gzip)
        );
        let r = get(
            "to=s3://bucket-1/exports&compress=zstd&format=dynamodb&max_items=5",
            Some("s3://bucket-1/exports"),
        )
        .expect("valid");
        assert_eq!((r.compression, r.max_items), (Compression::Zstd, Some(5)));
        // Without `to=`, nothing changes.
        let r = get("", Some("s3://bucket-1/exports")).expect("valid");
        assert_eq!(
            (r.to, r.format, r.compression),
            (None, Format::Json, Compression::None)
        );
    }

    #[test]
    fn a_destination_outside_the_functions_is_forbidden_and_a_bad_one_invalid() {
        let allowed = Some("s3://bucket-1/exports");
        for query in [
            "to=s3://bucket-2/exports",
            "to=s3://bucket-1/exports-old",
            "to=s3://bucket-1",
            "to=s3://bucket-1/other/exports",
        ] {
            let (code, message) = get(query, allowed).unwrap_err();
            assert_eq!(code, ErrorCode::DestinationNotAllowed, "{query}");
            assert!(message.contains("s3://bucket-1/exports"), "{message}");
        }
        for query in [
            "to=s3://bucket-1/exports/../x",
            "to=s3://bucket-1/exports//x",
            "to=bucket-1/exports",
            "to=s3://Bucket-1/exports",
            "to=",
        ] {
            assert_eq!(
                get(query, allowed).unwrap_err().0,
                ErrorCode::InvalidParameter,
                "{query}"
            );
        }
        let (code, message) = get("to=s3://bucket-1/exports", None).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidParameter);
        assert!(message.contains("EXPORT_BUCKET"), "{message}");
    }

    #[test]
    fn an_export_is_of_whole_items_of_the_whole_table() {
        let allowed = Some("s3://bucket-1");
        for (extra, named) in [
            ("fields=id", "fields"),
            ("filter=attribute_exists(id)", "filter"),
            ("pk=a", "pk"),
            ("index=by-x", "index"),
            ("select=count", "select=count"),
            ("format=json", "format=json"),
        ] {
            let (code, message) = get(&format!("to=s3://bucket-1/x&{extra}"), allowed).unwrap_err();
            assert_eq!(code, ErrorCode::InvalidParameter, "{extra}");
            assert!(message.contains(named), "{extra}: {message}");
        }
    }
}
