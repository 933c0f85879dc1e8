//! SigV4 as sent on the wire: the real `scanstream` binary signs its calls (`--sign
//! always`) to a loopback server that recomputes each signature with its own, independent
//! SigV4 (canonical request, string to sign, key derivation, written here from the
//! algorithm's definition) and answers 403 when one does not match. GET (a first call)
//! and POST (a call with a cursor) are both checked.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const KEY_ID: &str = "AKIDSCANSTREAMTEST";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSCANSTREAM";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding of a decoded query component, as SigV4's canonical query wants.
fn encode(text: &[u8]) -> String {
    text.iter()
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Recomputes the request's SigV4 signature; `Err` says what does not match.
fn verify(request: &http::request::Parts, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(format!("no {name} header"))
    };
    let auth = header("authorization")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .ok_or(format!("no {name} in the authorization"))
    };
    let (credential, signed, signature) = (
        field("Credential")?,
        field("SignedHeaders")?,
        field("Signature")?,
    );
    let (key_id, scope) = credential.split_once('/').ok_or("bad credential")?;
    if key_id != KEY_ID {
        return Err(format!("key {key_id}"));
    }
    let parts: Vec<&str> = scope.split('/').collect();
    if parts.len() != 4 || parts[2] != "lambda" || parts[3] != "aws4_request" {
        return Err(format!("scope {scope}"));
    }
    let amz_date = header("x-amz-date")?;
    let mut query: Vec<(String, String)> = request
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = String::new();
    for name in signed.split(';') {
        headers += &format!("{name}:{}\n", header(name)?.trim());
    }
    let payload = hex(&Sha256::digest(body));
    let canonical = format!(
        "{}\n{}\n{query}\n{headers}\n{signed}\n{payload}",
        request.method,
        request.uri.path()
    );
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut key = format!("AWS4{SECRET}").into_bytes();
    for part in &parts {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, &to_sign));
    if expected == signature {
        Ok(())
    } else {
        Err(format!(
            "signature mismatch; canonical request:\n{canonical}"
        ))
    }
}

fn trailer(complete: bool) -> String {
    let cursor = if complete {
        ""
    } else {
        r#","reason":"max_items","cursor":"2.abc.def""#
    };
    format!(
        r#"{{"@scanstream":{{"complete":{complete},"items":1,"scanned":1,"pages":1,"consumed_capacity":null,"rcu_per_s":null,"retries":0,"segments":[],"elapsed_ms":1,"ttfb_ms":1{cursor}}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_signed_as_sigv4_defines_it() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let port = listener.local_addr().expect("addr").port();
    let (verified, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (ok, bad) = (verified.clone(), refused.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (ok, bad) = (ok.clone(), bad.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let (ok, bad) = (ok.clone(), bad.clone());
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let reply = match verify(&parts, &body) {
                            Ok(()) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                // A first call gets a cursor; the call with it, the rest.
                                let complete = parts.method == http::Method::POST;
                                let id = if complete { "b" } else { "a" };
                                Response::builder()
                                    .header("content-type", "application/x-ndjson")
                                    .body(Full::new(Bytes::from(format!(
                                        "{{\"id\":\"{id}\"}}\n{}\n",
                                        trailer(complete)
                                    ))))
                            }
                            Err(why) => {
                                eprintln!("{why}");
                                bad.fetch_add(1, Ordering::SeqCst);
                                Response::builder()
                                    .status(403)
                                    .body(Full::new(Bytes::from(why)))
                            }
                        };
                        Ok::<_, Infallible>(reply.unwrap_or_default())
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let out = std::env::temp_dir().join(format!("sigv4-{}.ndjson", std::process::id()));
    let target = out.clone();
    // A blocking child on its own thread: the server above keeps the runtime's workers.
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_scanstream"))
            .args(["pull", &format!("http://127.0.0.1:{port}/")])
            .args(["--invocations", "1", "--segments", "1", "--sign", "always"])
            .args([
                "--region",
                "eu-west-1",
                "--fields",
                "id,a b",
                "--max-attempts",
                "1",
            ])
            .arg("-o")
            .arg(&target)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .status()
    })
    .await
    .expect("joined")
    .expect("scanstream runs");
    assert_eq!(refused.load(Ordering::SeqCst), 0, "every signature matches");
    assert_eq!(verified.load(Ordering::SeqCst), 2, "a GET and a POST");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("output");
    assert_eq!(text, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_file(out.with_extension("wrong"));
}

/// The python that has botocore: `SCANSTREAM_PYTHON`, or the one `scripts/test.sh`
/// installs the pinned tools into.
fn botocore_python() -> String {
    let python = std::env::var("SCANSTREAM_PYTHON").unwrap_or_else(|_| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/.tools/venv/bin/python").to_string()
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} not found: scripts/test.sh installs it (tools/requirements.txt), or set \
         SCANSTREAM_PYTHON to a python with botocore"
    );
    python
}

/// Reference signatures: the client's signer and botocore's SigV4 (another
/// implementation, run in a child process) sign the same requests at the same moment with
/// the same credentials; the headers must agree byte for byte. The requests are the
/// client's kinds: a first call (GET, sorted RFC 3986 query, a path), a resumed call (POST
/// form with a cursor and encoded values), with and without a session token.
#[tokio::test]
async fn signatures_agree_with_botocore() {
    use scanstream::cli::transport::sign::Signer;
    let time = 1_795_780_800; // 2026-11-27T12:00:00Z
    let form = "compress=zstd&cursor=2.eJyrVkrOz-_p.Zm9v-_~&fields=id%2Cname%20x&limit=100";
    let cases = [
        (
            "GET",
            "https://abc123.lambda-url.eu-west-1.on.aws/?compress=zstd&limit=100&segment_offset=4&segments=2&total_segments=8",
            "",
            None,
        ),
        (
            "GET",
            "https://abc123.lambda-url.us-east-2.on.aws/lambda-url/streamer/?fields=a%2Cb&pk=%E2%98%83",
            "",
            Some("FwoGZXIvYXdzEXAMPLEsessiontoken+/="),
        ),
        (
            "POST",
            "https://abc123.lambda-url.eu-west-1.on.aws/",
            form,
            None,
        ),
        (
            "POST",
            "https://abc123.lambda-url.ap-southeast-2.on.aws/",
            form,
            Some("IQoJb3JpZ2luX2VjEXAMPLE"),
        ),
    ];
    let mut ours = Vec::new();
    let mut requests = Vec::new();
    for (method, url, body, token) in cases {
        let region = url
            .split('.')
            .nth(2)
            .expect("a Function URL host")
            .to_string();
        let credentials = aws_credential_types::Credentials::new(
            KEY_ID,
            SECRET,
            token.map(str::to_string),
            None,
            "test",
        );
        let signer = Signer::with_credentials(credentials, &region);
        let mut request = http::Request::builder().method(method).uri(url);
        let mut headers = serde_json::Map::new();
        if method == "POST" {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            headers.insert(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            );
        }
        let mut request = request.body(()).expect("request");
        signer
            .sign_at(
                &mut request,
                body.as_bytes(),
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(time),
            )
            .await
            .expect("signed");
        ours.push(request.headers().clone());
        requests.push(serde_json::json!({
            "method": method, "url": url, "headers": headers, "body": body, "time": time,
            "key_id": KEY_ID, "secret": SECRET, "token": token, "region": region,
        }));
    }
    let mut child = std::process::Command::new(botocore_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/sigv4_botocore.py"
        ))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    serde_json::to_writer(child.stdin.take().expect("stdin"), &requests).expect("cases sent");
    let output = child.wait_with_output().expect("python ends");
    assert!(output.status.success(), "botocore failed");
    let theirs: Vec<std::collections::HashMap<String, String>> =
        serde_json::from_slice(&output.stdout).expect("botocore's headers");
    assert_eq!(theirs.len(), cases.len());
    for ((ours, theirs), (method, url, _, token)) in ours.iter().zip(&theirs).zip(cases) {
        for name in ["authorization", "x-amz-date", "x-amz-security-token"] {
            assert_eq!(
                ours.get(name).and_then(|v| v.to_str().ok()),
                theirs.get(name).map(String::as_str),
                "{name} of {method} {url} (token: {})",
                token.is_some()
            );
        }
        assert!(theirs["authorization"].starts_with("AWS4-HMAC-SHA256 Credential="));
    }
}
