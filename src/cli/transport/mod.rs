//! How the client reaches a Function URL: signed requests, sent once, their status read.

pub mod sign;
