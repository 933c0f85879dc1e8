//! The streamer Lambda: builds the configuration and the DynamoDB client once, then hands
//! every Function URL request to [`Streamer::handle`] in response-streaming mode.

use scanstream::config::Config;
use scanstream::http::Streamer;
use scanstream::scan::dynamo::DynamoSource;

fn main() -> std::process::ExitCode {
    scanstream::logging::exit(run().map_err(|err| anyhow::anyhow!(err)))
}

#[tokio::main]
async fn run() -> Result<(), lambda_http::Error> {
    scanstream::logging::init();
    let config = Config::from_env()?;
    let client = scanstream::client::dynamodb(&config.calls).await;
    let source = DynamoSource::new(client, config.table_name.clone())
        .with_consumed_capacity(config.consumed_capacity);
    scanstream::http::lambda::run(Streamer::new(config, source)).await
}
