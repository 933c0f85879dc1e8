//! The batch writer's old path: it lives in [`crate::writer`] now, beside generation and
//! loading, which both feed it. Re-exported so `crate::seed::writer::...` keeps working.

pub use crate::writer::*;
