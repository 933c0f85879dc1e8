//! The Lambda edge: the functions as Lambda runs them. They only translate, from an
//! invocation to a job and from the job's outcome back to a response.
//!
//! - [`streamer`]: `GET /?segments=&limit=` streams the table as NDJSON.

pub mod streamer;
