//! The seeder: a command-line tool, or a Lambda function when the Lambda runtime
//! environment (`AWS_LAMBDA_RUNTIME_API`) is present.

use clap::Parser;
use scanstream::cli::seeder::{self as cli, Args};
use scanstream::dynamo::writer::BatchWriter;
use scanstream::generate::record;
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
    let writer = BatchWriter::new(client, &config.table_name, record::KEY);
    scanstream::lambda::runtime::run(Seeder::new(config, writer))
        .await
        .map_err(|err| anyhow::anyhow!(err))
}
