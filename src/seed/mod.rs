//! The seeder's command line and its progress display (the command line's, to move to
//! `cli::seeder`).
//!
//! - [`progress`]: a progress bar or progress lines for the CLI.
//! - [`cli`]: the seeder's command line.

pub mod cli;
pub mod progress;
