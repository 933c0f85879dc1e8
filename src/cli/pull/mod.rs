//! `scanstream pull`: one table read over many invocations of the streamer, every item
//! written exactly once.

pub mod partitions;
pub mod size;
pub mod slices;
pub mod worker;
