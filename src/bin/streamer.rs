//! The streamer Lambda: builds the configuration and the DynamoDB client once, then hands
//! every Function URL request to [`Streamer::handle`] in response-streaming mode.

use lambda_http::{Error, Request, service_fn, tracing};
use scanstream::config::Config;
use scanstream::http::Streamer;
use scanstream::scan::dynamo::DynamoSource;
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let client = scanstream::client::dynamodb().await;
    let source = DynamoSource::new(client, config.table_name.clone());
    let streamer = Arc::new(Streamer::new(config, source));
    lambda_http::run_with_streaming_response(service_fn(move |request: Request| {
        let streamer = streamer.clone();
        async move { Ok::<_, Infallible>(streamer.handle(request.method(), request.uri()).await) }
    }))
    .await
}
