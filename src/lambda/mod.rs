//! The Lambda edge: the functions as Lambda runs them. They only translate, from an
//! invocation to a job and from the job's outcome back to a response.
//!
//! - [`streamer`]: `GET /?segments=&limit=` streams the table as NDJSON.
//! - [`seeder`]: `GET /?count=&seed=&start=` seeds the table, streaming progress.
//! - [`http`]: the invocation, its time budget, responses and error bodies.
//! - [`runtime`]: the Lambda runtime loop both functions run in.
//! - [`config`]: both functions' settings, read from the environment once, at cold start.
//!
//! Nothing runs until every parameter is valid.

pub mod config;
pub mod http;
pub mod runtime;
pub mod seeder;
pub mod streamer;
