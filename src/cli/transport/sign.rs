//! SigV4 for Function URLs (service `lambda`), with credentials from the standard AWS
//! chain (environment, profile, SSO cache, instance role; session tokens included).
//!
//! `--sign auto` signs everything but loopback URLs, so the local emulator, which does not
//! check signatures, needs no credentials. Nothing is signed over plain `http://` but to
//! a loopback host: the signer refuses.
//!
//! aws-config's default chain keeps no cache: asked for every request, it would make a
//! fresh AssumeRole, SSO or IMDS call each time, and one throttled STS call would end a
//! slice. So the signer keeps the credentials it got ([`CachedCredentials`]) and asks again
//! only a few minutes before they expire; a failure to get them is a [`SignError::Credentials`],
//! which a caller retries like a transport error.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use std::time::{Duration, SystemTime};

/// Credentials are asked for again this long before they expire: a request signed with
/// them may wait (backoff, a throttled slice) before it is sent.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// The longest one ask of the provider may take. Calls signing at once wait behind that
/// ask, so a provider that never answers (a hung `credential_process`, an SSO or IMDS
/// endpoint that accepts and stays silent) would stop every slice; past this it is a
/// failure to load, retried with the call's backoff. The chain's own providers time out
/// well within it.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(60);

/// When asking for fresh credentials fails, the kept ones are still used if they stay good
/// this much longer: time for the request to be signed and sent.
const KEPT_AT_LEAST: Duration = Duration::from_secs(30);

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The credentials could not be loaded: worth trying again (STS or IMDS throttled,
    /// a network hiccup).
    #[error("loading AWS credentials: {0}")]
    Credentials(String),
    /// The request itself cannot be signed.
    #[error("signing: {0}")]
    Signing(String),
}

/// When to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignMode {
    /// Everything but loopback URLs.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Signs requests, or not.
#[derive(Debug)]
pub struct Signer {
    /// The credentials and region, when requests are signed.
    with: Option<(CachedCredentials, String)>,
}

/// A provider's credentials, asked for once and kept until [`REFRESH_BEFORE_EXPIRY`]
/// before they expire.
#[derive(Debug)]
pub struct CachedCredentials {
    provider: SharedCredentialsProvider,
    /// Held while the provider is asked, so that calls signing at once wait for one
    /// answer instead of each asking.
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    /// A cache in front of `provider`, empty.
    pub fn new(provider: SharedCredentialsProvider) -> Self {
        Self {
            provider,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// The kept credentials if they are good for [`REFRESH_BEFORE_EXPIRY`] more, otherwise
    /// fresh ones. If asking fails while the kept ones have not yet expired, those are
    /// used: the next request asks again.
    pub async fn get(&self) -> Result<Credentials, SignError> {
        // The clock is read after each wait: for the lock (another signer's ask may hold
        // it for up to PROVIDER_TIMEOUT) and for the ask, so kept credentials are judged
        // by the time they would be used, not by the time the signer began to wait.
        let mut cached = self.cached.lock().await;
        if let Some(kept) = cached.as_ref()
            && valid_for(kept, SystemTime::now()) > Some(REFRESH_BEFORE_EXPIRY)
        {
            return Ok(kept.clone());
        }
        let asked = tokio::time::timeout(PROVIDER_TIMEOUT, self.provider.provide_credentials())
            .await
            .unwrap_or_else(|_| {
                Err(
                    aws_credential_types::provider::error::CredentialsError::provider_timed_out(
                        PROVIDER_TIMEOUT,
                    ),
                )
            });
        match asked {
            Ok(fresh) => {
                *cached = Some(fresh.clone());
                Ok(fresh)
            }
            Err(err) => match cached.as_ref() {
                Some(kept) if valid_for(kept, SystemTime::now()) > Some(KEPT_AT_LEAST) => {
                    Ok(kept.clone())
                }
                _ => Err(SignError::Credentials(with_sources(&err))),
            },
        }
    }
}

/// `err`, each of its sources after a `: `, then its debug form in parentheses: all a
/// provider said of why it failed (the form the SDK's `DisplayErrorContext` prints).
fn with_sources<E: std::error::Error>(err: &E) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    format!("{text} ({err:?})")
}

/// How long `credentials` stay good from `now`: `None` when they have expired;
/// `Duration::MAX` for credentials without an expiry.
fn valid_for(credentials: &Credentials, now: SystemTime) -> Option<Duration> {
    match credentials.expiry() {
        None => Some(Duration::MAX),
        Some(expiry) => expiry.duration_since(now).ok(),
    }
}

impl Signer {
    /// A signer for `url` in `mode`; `region` overrides the one read from the URL's host
    /// (`<id>.lambda-url.<region>.on.aws`) and `AWS_REGION`.
    pub async fn new(url: &str, mode: SignMode, region: Option<String>) -> Result<Self, String> {
        let host = host_of(url).ok_or_else(|| format!("{url} is not an http(s) URL"))?;
        let sign = match mode {
            SignMode::Never => false,
            SignMode::Always => true,
            SignMode::Auto => !is_loopback(&host),
        };
        if !sign {
            return Ok(Self { with: None });
        }
        // Over plain HTTP the signature, the key id and any session token cross the
        // network in the clear, for anyone on the path to replay within minutes.
        if url.starts_with("http://") && !is_loopback(&host) {
            return Err(format!(
                "refusing to sign requests to {url} over plain http: use its https:// URL, \
                 or --sign never for an endpoint that checks no signature"
            ));
        }
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let region = region
            .or_else(|| region_of_host(&host))
            .or_else(|| config.region().map(|r| r.to_string()))
            .ok_or("no region: use a Function URL, --region or AWS_REGION")?;
        let credentials = config
            .credentials_provider()
            .ok_or("no AWS credentials provider found")?;
        Ok(Self {
            with: Some((CachedCredentials::new(credentials), region)),
        })
    }

    /// Whether requests are signed.
    pub fn signs(&self) -> bool {
        self.with.is_some()
    }

    /// A signer that always signs, with fixed credentials.
    pub fn with_credentials(credentials: Credentials, region: &str) -> Self {
        Self::with_provider(SharedCredentialsProvider::new(credentials), region)
    }

    /// A signer that always signs, with credentials from `provider` (kept as
    /// [`CachedCredentials`] keeps them).
    pub fn with_provider(provider: SharedCredentialsProvider, region: &str) -> Self {
        Self {
            with: Some((CachedCredentials::new(provider), region.to_string())),
        }
    }

    /// Signs `request` (its method, URL, headers and `body`).
    pub async fn sign(
        &self,
        request: &mut http::Request<()>,
        body: &[u8],
    ) -> Result<(), SignError> {
        // Dated once the credentials are in hand: the wait for them (other signers' asks,
        // each up to PROVIDER_TIMEOUT) must not age the signature past SigV4's 5 minutes.
        self.sign_with(request, body, SystemTime::now).await
    }

    /// Signs `request` as at `time`: [`Signer::sign`] with a clock of its own, so that a
    /// signature can be compared with another implementation's.
    pub async fn sign_at(
        &self,
        request: &mut http::Request<()>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), SignError> {
        self.sign_with(request, body, move || time).await
    }

    async fn sign_with(
        &self,
        request: &mut http::Request<()>,
        body: &[u8],
        clock: impl FnOnce() -> SystemTime,
    ) -> Result<(), SignError> {
        let Some((credentials, region)) = &self.with else {
            return Ok(());
        };
        let identity = credentials.get().await?.into();
        let time = clock();
        let failed = |e: &dyn std::fmt::Display| SignError::Signing(e.to_string());
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("lambda")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| failed(&e))?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .map_err(|e| failed(&e))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| failed(&e))?
            .into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

fn host_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?']).next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    Some(host.trim_matches(['[', ']']).to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `abc.lambda-url.eu-west-1.on.aws` -> `eu-west-1`.
fn region_of_host(host: &str) -> Option<String> {
    let mut labels = host.split('.');
    let (_, service, region) = (labels.next()?, labels.next()?, labels.next()?);
    (service == "lambda-url").then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credentials_failure_reads_as_the_sdks_error_context_does() {
        let err = aws_credential_types::provider::error::CredentialsError::provider_error(
            std::io::Error::other("the SSO token expired"),
        );
        assert_eq!(
            with_sources(&err),
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
        );
        let err = aws_credential_types::provider::error::CredentialsError::provider_timed_out(
            PROVIDER_TIMEOUT,
        );
        assert_eq!(
            with_sources(&err),
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
        );
    }

    #[test]
    fn hosts_regions_and_loopback() {
        let host = host_of("https://abc123.lambda-url.eu-west-1.on.aws/?x=1").expect("host");
        assert_eq!(region_of_host(&host).as_deref(), Some("eu-west-1"));
        assert!(is_loopback(
            &host_of("http://127.0.0.1:9000/lambda-url/streamer/").expect("h")
        ));
        assert!(is_loopback(&host_of("http://localhost/").expect("h")));
        assert!(is_loopback(&host_of("http://[::1]:80/").expect("h")));
        assert!(!is_loopback(&host));
        assert_eq!(host_of("ftp://x"), None);
    }

    #[tokio::test]
    async fn always_adds_a_sigv4_authorization() {
        let credentials =
            aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let signer = Signer::with_credentials(credentials, "us-east-2");
        let url = "https://abc.lambda-url.us-east-2.on.aws/?limit=1";
        let mut request = http::Request::get(url).body(()).expect("request");
        signer.sign(&mut request, b"").await.expect("signed");
        let auth = request.headers()["authorization"].to_str().expect("ascii");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-2/lambda/aws4_request"), "{auth}");
        let local = Signer::new("http://127.0.0.1:1/", SignMode::Auto, None)
            .await
            .expect("signer");
        assert!(!local.signs());
    }

    #[tokio::test]
    async fn plain_http_to_another_host_is_never_signed() {
        for mode in [SignMode::Auto, SignMode::Always] {
            let url = "http://abc.lambda-url.us-east-1.on.aws/";
            let err = Signer::new(url, mode, Some("us-east-1".into()))
                .await
                .expect_err("refused");
            assert!(
                err.contains("https://") && err.contains("--sign never"),
                "{err}"
            );
        }
        let never = Signer::new("http://abc.example/", SignMode::Never, None).await;
        assert!(never.is_ok_and(|s| !s.signs()));
        for loopback in [
            "http://127.0.0.2:9/",
            "http://[::1]:9/",
            "http://localhost/",
        ] {
            let signer = Signer::new(loopback, SignMode::Always, Some("us-east-1".into()))
                .await
                .expect("loopback may be signed");
            assert!(signer.signs(), "{loopback}");
        }
    }

    /// A provider that counts the times it is asked, fails the first `fail` of them, and
    /// hands out credentials that expire `lasting` after they are made.
    #[derive(Debug)]
    struct Counting {
        asked: std::sync::Arc<std::sync::atomic::AtomicU32>,
        fail: u32,
        lasting: Duration,
    }

    impl ProvideCredentials for Counting {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let result = if n < self.fail {
                Err(
                    aws_credential_types::provider::error::CredentialsError::provider_error(
                        "throttled",
                    ),
                )
            } else {
                Ok(Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    Some("token".into()),
                    Some(SystemTime::now() + self.lasting),
                    "counting",
                ))
            };
            aws_credential_types::provider::future::ProvideCredentials::ready(result)
        }
    }

    fn counting(
        fail: u32,
        lasting: Duration,
    ) -> (Signer, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        let asked = std::sync::Arc::default();
        let provider = Counting {
            asked: std::sync::Arc::clone(&asked),
            fail,
            lasting,
        };
        (
            Signer::with_provider(SharedCredentialsProvider::new(provider), "us-east-2"),
            asked,
        )
    }

    fn request() -> http::Request<()> {
        http::Request::get("https://abc.lambda-url.us-east-2.on.aws/?limit=1")
            .body(())
            .expect("request")
    }

    #[tokio::test]
    async fn many_signatures_ask_the_provider_once() {
        let (signer, asked) = counting(0, Duration::from_secs(3600));
        let signer = std::sync::Arc::new(signer);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let signer = signer.clone();
            tasks.spawn(async move { signer.sign(&mut request(), b"").await });
        }
        while let Some(signed) = tasks.join_next().await {
            signed.expect("joined").expect("signed");
        }
        for _ in 0..50 {
            signer.sign(&mut request(), b"").await.expect("signed");
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn credentials_are_refreshed_before_they_expire() {
        // Good for 4 minutes: inside the refresh margin, so every signature asks again.
        let (signer, asked) = counting(0, REFRESH_BEFORE_EXPIRY - Duration::from_secs(60));
        for _ in 0..3 {
            signer.sign(&mut request(), b"").await.expect("signed");
        }
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_failure_to_load_credentials_is_a_credentials_error_and_passes() {
        let (signer, asked) = counting(1, Duration::from_secs(3600));
        let first = signer.sign(&mut request(), b"").await;
        assert!(matches!(first, Err(SignError::Credentials(_))), "{first:?}");
        signer
            .sign(&mut request(), b"")
            .await
            .expect("the second try signs");
        signer.sign(&mut request(), b"").await.expect("kept");
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    /// A provider whose first answer is credentials good for `lasting`, and every later
    /// one a failure that takes `slow` to come.
    #[derive(Debug)]
    struct FailsSlowly {
        asked: std::sync::atomic::AtomicU32,
        lasting: Duration,
        slow: Duration,
    }

    impl ProvideCredentials for FailsSlowly {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let first = self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
            let (lasting, slow) = (self.lasting, self.slow);
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                if first {
                    return Ok(Credentials::new(
                        "AKIDEXAMPLE",
                        "secret",
                        None,
                        Some(SystemTime::now() + lasting),
                        "fails-slowly",
                    ));
                }
                tokio::time::sleep(slow).await;
                Err(aws_credential_types::provider::error::CredentialsError::provider_error("down"))
            })
        }
    }

    #[tokio::test]
    async fn kept_credentials_are_judged_by_the_clock_after_a_slow_failed_ask() {
        // Kept with 2 s over the margin when the ask begins; the ask fails 3 s later, when
        // they are 1 s under it: they are not handed out.
        let provider = FailsSlowly {
            asked: Default::default(),
            lasting: KEPT_AT_LEAST + Duration::from_secs(2),
            slow: Duration::from_secs(3),
        };
        let signer = Signer::with_provider(SharedCredentialsProvider::new(provider), "us-east-2");
        signer
            .sign(&mut request(), b"")
            .await
            .expect("the first ask answers");
        let second = signer.sign(&mut request(), b"").await;
        assert!(
            matches!(second, Err(SignError::Credentials(_))),
            "{second:?}"
        );
    }

    /// A provider that answers after `slow`, with credentials good for an hour.
    #[derive(Debug)]
    struct Slow(Duration);

    impl ProvideCredentials for Slow {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let slow = self.0;
            aws_credential_types::provider::future::ProvideCredentials::new(async move {
                tokio::time::sleep(slow).await;
                Ok(Credentials::new(
                    "AKIDEXAMPLE",
                    "secret",
                    None,
                    Some(SystemTime::now() + Duration::from_secs(3600)),
                    "slow",
                ))
            })
        }
    }

    #[tokio::test]
    async fn a_signature_is_dated_when_the_credentials_came_not_when_it_began_to_wait() {
        let signer = Signer::with_provider(
            SharedCredentialsProvider::new(Slow(Duration::from_secs(2))),
            "us-east-2",
        );
        // X-Amz-Date is basic ISO 8601 (20261201T235959Z): as text, it orders as time.
        let stamp = |time: SystemTime| {
            let millis = time
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970");
            crate::format::time::iso8601(millis.as_millis() as u64).replace(['-', ':'], "")
        };
        let began = SystemTime::now();
        let mut signed = request();
        signer.sign(&mut signed, b"").await.expect("signed");
        let dated = signed.headers()["x-amz-date"]
            .to_str()
            .expect("ascii")
            .to_string();
        assert!(
            dated >= stamp(began + Duration::from_secs(1)),
            "dated {dated}, began waiting at {}",
            stamp(began)
        );
    }

    #[tokio::test]
    async fn kept_credentials_still_good_after_a_failed_ask_are_used() {
        let provider = FailsSlowly {
            asked: Default::default(),
            lasting: KEPT_AT_LEAST + Duration::from_secs(60),
            slow: Duration::from_millis(10),
        };
        let signer = Signer::with_provider(SharedCredentialsProvider::new(provider), "us-east-2");
        signer
            .sign(&mut request(), b"")
            .await
            .expect("the first ask answers");
        signer
            .sign(&mut request(), b"")
            .await
            .expect("the kept ones");
    }

    /// A provider that accepts the ask and never answers.
    #[derive(Debug)]
    struct Silent;

    impl ProvideCredentials for Silent {
        fn provide_credentials<'a>(
            &'a self,
        ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            aws_credential_types::provider::future::ProvideCredentials::new(std::future::pending())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_never_answers_is_a_credentials_error_after_the_timeout() {
        let signer = Signer::with_provider(SharedCredentialsProvider::new(Silent), "us-east-2");
        let started = tokio::time::Instant::now();
        let signed = signer.sign(&mut request(), b"").await;
        assert!(
            matches!(signed, Err(SignError::Credentials(_))),
            "{signed:?}"
        );
        assert_eq!(started.elapsed(), PROVIDER_TIMEOUT);
    }
}
