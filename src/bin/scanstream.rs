//! `scanstream`: the client that reads a whole table through many invocations of the
//! streamer (`scanstream pull URL`).

use clap::Parser;
use scanstream::cli::{self, Args};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    scanstream::logging::init();
    scanstream::logging::exit(cli::run(Args::parse()).await)
}
