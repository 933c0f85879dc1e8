//! The Lambda glue both functions share: a request becomes an [`Invocation`], the
//! handler's response is streamed back, and the runtime loop survives transport errors.

use super::http::{Invocation, ResponseBody};
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

/// Runs a Lambda runtime loop (`run` starts one), restarting it whenever it fails.
///
/// `lambda_runtime` ends its loop at the first transport error on its connection to the
/// Runtime API. Under `cargo lambda watch` that happens on a reused connection
/// (`IncompleteMessage`), and whenever a client goes away mid-stream (broken pipe). The
/// error is between invocations, so starting a new loop loses nothing.
///
/// It never gives up. It used to exit after five failures in a minute. A fault test that
/// kills its clients reached that, and the emulator does not restart a function that
/// exited, so every later call went unanswered. On Lambda, an environment whose Runtime
/// API is really gone is being shut down anyway. The pause between restarts grows to 5 s,
/// so a loop that fails at once does not spin, and it resets after a quiet minute.
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
        failures = failures.saturating_add(1);
        tracing::error!(cause = %err, failures, "Lambda runtime loop failed; restarting it");
        tokio::time::sleep(restart_pause(failures)).await;
    }
}

/// The pause before restart number `failures` of the last minute: 100 ms more each
/// time, at most 5 s.
fn restart_pause(failures: u32) -> Duration {
    Duration::from_millis(100 * u64::from(failures)).min(Duration::from_secs(5))
}

#[cfg(test)]
mod serve_tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_runtime_loop_that_keeps_failing_is_restarted_every_time_and_never_given_up() {
        let mut runs = 0u32;
        let served = serve(|| {
            runs += 1;
            let failed = runs <= 40;
            async move {
                if failed {
                    Err(Error::from("broken pipe"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(served.is_ok(), "{served:?}");
        assert_eq!(runs, 41, "40 failures, each restarted");
    }

    #[test]
    fn the_pause_between_restarts_grows_to_five_seconds() {
        assert_eq!(restart_pause(1), Duration::from_millis(100));
        assert_eq!(restart_pause(10), Duration::from_secs(1));
        assert_eq!(restart_pause(50), Duration::from_secs(5));
        assert_eq!(restart_pause(u32::MAX), Duration::from_secs(5));
    }
}
