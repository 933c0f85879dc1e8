//! Values and wire formats: no SDK, no I/O.

pub mod time;
