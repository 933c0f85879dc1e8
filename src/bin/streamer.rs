//! The streamer Lambda: builds the configuration and the DynamoDB and DynamoDB Streams
//! clients (and with `EXPORT_BUCKET` the S3 one) once, then hands every Function URL request to
//! [`Streamer::handle`] in response-streaming mode.
//!
//! `streamer --check-config` only reads and checks the settings from the environment, as a
//! cold start would, and exits: `scripts/check_template.py` runs it on the template's
//! parameter bounds, so the template cannot offer values the function refuses.

use scanstream::dynamo::source::DynamoSource;
use scanstream::lambda::config::Config;
use scanstream::lambda::streamer::Streamer;
use scanstream::read::changes::ChangeReader;

fn main() -> std::process::ExitCode {
    scanstream::logging::exit(run().map_err(|err| anyhow::anyhow!(err)))
}

#[tokio::main]
async fn run() -> Result<(), lambda_http::Error> {
    scanstream::logging::init();
    if std::env::args().nth(1).as_deref() == Some("--check-config") {
        return match Config::from_env() {
            Ok(config) => {
                for warning in config.warnings() {
                    eprintln!("warning: {warning}");
                }
                Ok(())
            }
            Err(err) => {
                eprintln!("{err}");
                std::process::exit(2)
            }
        };
    }
    let config = Config::from_env()?;
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let client = scanstream::dynamo::client::Dynamo::connect(&config.calls).await;
    let source = DynamoSource::new(client.clone(), config.table_name.clone())
        .with_consumed_capacity(config.consumed_capacity);
    let mut streamer = Streamer::new(config.clone(), source);
    let streams = scanstream::dynamo::streams::Streams::connect(&config.calls).await;
    let changes = ChangeReader::new(client, streams, streamer.seal(), config.max_response_bytes);
    streamer = streamer.with_changes(changes);
    if let Some(export) = &config.export {
        let s3 = scanstream::dynamo::s3::S3::connect(&config.calls).await;
        let bucket = s3.bucket(&export.location.bucket, export.expected_owner.as_deref());
        streamer = streamer.with_bucket(bucket);
    }
    scanstream::lambda::runtime::run(streamer).await
}
