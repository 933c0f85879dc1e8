//! The seeder: a command-line tool, or a Lambda function when the Lambda runtime
//! environment (`AWS_LAMBDA_RUNTIME_API`) is present.

use clap::Parser;
use scanstream::cli::seeder::{self as cli, Args};
use scanstream::lambda::config::SeederConfig;
use scanstream::lambda::seeder::Seeder;

fn main() -> std::process::ExitCode {
    scanstream::logging::exit(run())
}

#[tokio::main]
async fn run() -> anyhow::Result<()> {
    scanstream::logging::init();
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return cli::run(Args::parse()).await;
    }
    let config = SeederConfig::from_env()?;
    let client = scanstream::dynamo::client::Dynamo::connect(&config.calls).await;
    let mut seeder = Seeder::new(config.clone(), client);
    if let Some(import) = &config.import {
        let s3 = scanstream::dynamo::s3::S3::connect(&config.calls).await;
        seeder = seeder
            .with_bucket(s3.bucket(&import.location.bucket, import.expected_owner.as_deref()));
    }
    scanstream::lambda::runtime::run(seeder)
        .await
        .map_err(|err| anyhow::anyhow!(err))
}
