//! SigV4 for Function URLs (service `lambda`), with credentials from the standard AWS
//! chain (environment, profile, SSO cache, instance role; session tokens included).
//!
//! `--sign auto` signs everything but loopback URLs, so the local emulator, which does not
//! check signatures, needs no credentials.

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use std::time::SystemTime;

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
    with: Option<(
        aws_credential_types::provider::SharedCredentialsProvider,
        String,
    )>,
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
            with: Some((credentials, region)),
        })
    }

    /// Whether requests are signed.
    pub fn signs(&self) -> bool {
        self.with.is_some()
    }

    /// A signer that always signs, with fixed credentials.
    pub fn with_credentials(credentials: aws_credential_types::Credentials, region: &str) -> Self {
        Self {
            with: Some((
                aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
                region.to_string(),
            )),
        }
    }

    /// Signs `request` (its method, URL, headers and `body`).
    pub async fn sign(&self, request: &mut http::Request<()>, body: &[u8]) -> Result<(), String> {
        self.sign_at(request, body, SystemTime::now()).await
    }

    /// Signs `request` as at `time`: [`Signer::sign`] with a clock of its own, so that a
    /// signature can be compared with another implementation's.
    pub async fn sign_at(
        &self,
        request: &mut http::Request<()>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), String> {
        let Some((provider, region)) = &self.with else {
            return Ok(());
        };
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|e| format!("loading AWS credentials: {e}"))?;
        let identity: Identity = credentials.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("lambda")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| e.to_string())?
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
        .map_err(|e| e.to_string())?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| e.to_string())?
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
}
