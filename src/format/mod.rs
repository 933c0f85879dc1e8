//! Formats: values and wire formats, with no SDK call and no I/O. The lowest layer:
//! every other layer may use it, and it uses none of them.

pub mod backoff;
pub mod export;
pub mod item;
pub mod json;
pub mod key;
pub mod limits;
pub mod number;
pub mod shape;
