//! The streamer Lambda: builds the configuration and the DynamoDB client once, then hands
//! every Function URL request to [`Streamer::handle`] in response-streaming mode.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Error, Request, RequestExt, service_fn, tracing};
use scanstream::config::Config;
use scanstream::http::{Invocation, Streamer};
use scanstream::scan::dynamo::DynamoSource;
use std::convert::Infallible;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let client = scanstream::client::dynamodb(&config.calls).await;
    let source = DynamoSource::new(client, config.table_name.clone())
        .with_consumed_capacity(config.consumed_capacity);
    let streamer = Arc::new(Streamer::new(config, source));
    scanstream::http::serve(|| {
        let streamer = streamer.clone();
        lambda_http::run_with_streaming_response(service_fn(move |request: Request| {
            let streamer = streamer.clone();
            async move {
                let invocation = Invocation {
                    method: request.method(),
                    uri: request.uri(),
                    content_type: request
                        .headers()
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok()),
                    body: request.body().as_ref(),
                    deadline: request
                        .lambda_context_ref()
                        .map(|context| context.deadline()),
                };
                // Boxed: the handler future is deep enough to overflow type-layout recursion.
                Ok::<_, Infallible>(Box::pin(streamer.handle(invocation)).await)
            }
        }))
    })
    .await
}
