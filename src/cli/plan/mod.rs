//! `scanstream plan`: what a full read will take and cost, before it starts.

pub mod forecast;
