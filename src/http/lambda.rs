//! The Lambda glue both functions share: a request becomes an [`Invocation`], the
//! handler's response is streamed back, and the runtime loop survives transport errors.

use super::{Invocation, ResponseBody};
use lambda_http::http::Response;
use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Error, Request, RequestExt, service_fn};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A function: answers every invocation with a response, never with an error.
pub trait Handler: Send + Sync + 'static {
    /// Answers one invocation.
    fn handle(
        &self,
        invocation: Invocation<'_>,
    ) -> impl Future<Output = Response<ResponseBody>> + Send;
}

impl<'a> Invocation<'a> {
    /// What a Function URL request carries: method, URI, content type, body, deadline.
    pub fn from_request(request: &'a Request) -> Self {
        Self {
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
        }
    }
}

/// Serves `handler` in response-streaming mode until the runtime stops.
pub async fn run<H: Handler>(handler: H) -> Result<(), Error> {
    let handler = Arc::new(handler);
    serve(|| {
        let handler = handler.clone();
        lambda_http::run_with_streaming_response(service_fn(move |request: Request| {
            let handler = handler.clone();
            async move {
                let invocation = Invocation::from_request(&request);
                // Boxed: the handler future is deep enough to overflow type-layout recursion.
                Ok::<_, Infallible>(Box::pin(handler.handle(invocation)).await)
            }
        }))
    })
    .await
}

/// Runs a Lambda runtime loop (`run` starts one), restarting it when it fails.
///
/// `lambda_runtime` ends its loop at the first transport error on its connection to the
/// Runtime API (seen under `cargo lambda watch` as `IncompleteMessage` on a reused
/// connection). The error is between invocations, so starting a new loop loses nothing.
/// Five failures within a minute mean something is really wrong: give up then.
async fn serve<F, Fut>(mut run: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let mut failures = 0u32;
    let mut window = Instant::now();
    loop {
        let Err(err) = run().await else {
            return Ok(());
        };
        if window.elapsed() > Duration::from_secs(60) {
            failures = 0;
            window = Instant::now();
        }
        failures += 1;
        tracing::error!(cause = %err, failures, "Lambda runtime loop failed; restarting it");
        if failures >= 5 {
            return Err(err);
        }
        tokio::time::sleep(Duration::from_millis(100 * u64::from(failures))).await;
    }
}
