//! The transport: the reqwest client (rustls, timeouts, an optional extra CA), one request sent and
//! its answer read within a size limit, and a failure to get an answer described by the host it went
//! to and the cause underneath (reqwest's own message says only "error sending request").

use std::time::Duration;

/// Default limit on one request, body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest response body read; a larger one is refused instead of buffered (a page of 999
/// applications is a few MB).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// The setting that holds an extra CA bundle, named when a TLS handshake fails.
const CA_SETTING: &str = "FHIR_OP_EXTRA_CA_FILE";

/// Builds the HTTP client (rustls; optional extra CA bundle in PEM); `timeout` bounds each request
/// from connect to the last body byte, so a server that trickles its response cannot hold a
/// reconcile forever.
pub fn client(extra_ca_pem: Option<&[u8]>, timeout: Duration) -> Result<reqwest::Client, String> {
    crate::init_crypto();
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)));
    if let Some(pem) = extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("extra CA bundle: {e}"))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| e.to_string())
}

/// A response read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    /// The body of a success as JSON (`None` for 204 or an empty body), or what was wrong with it.
    pub fn json(&self, op: &str) -> Result<Option<serde_json::Value>, String> {
        if self.status == 204 || self.body.trim().is_empty() {
            return Ok(None);
        }
        parse_json(op, &self.content_type, &self.body).map(Some)
    }
}

/// Parses a successful response body as JSON; the error names the operation and the content type.
pub fn parse_json(op: &str, content_type: &str, text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| {
        format!(
            "{op}: response is not valid JSON (content type {content_type}, {} bytes): {e}",
            text.len()
        )
    })
}

/// Why no whole answer was read.
#[derive(Debug)]
pub enum Failure {
    /// No answer, or the connection failed while the answer was read.
    Transport(TransportError),
    /// The answer is larger than [`MAX_RESPONSE_BYTES`] (not buffered).
    TooLarge(String),
}

/// Sends `req` to `url`; `setting` names the configuration that chose the endpoint, for the error.
pub async fn send(
    req: reqwest::RequestBuilder,
    url: &str,
    setting: &str,
) -> Result<reqwest::Response, TransportError> {
    req.send()
        .await
        .map_err(|e| TransportError::new(&e, url, setting))
}

/// Reads a response of at most [`MAX_RESPONSE_BYTES`]; a larger one is refused, not buffered.
pub async fn read(op: &str, mut resp: reqwest::Response, setting: &str) -> Result<Answer, Failure> {
    let url = resp.url().to_string();
    let too_big = || {
        Failure::TooLarge(format!(
            "{op}: response body larger than the {MAX_RESPONSE_BYTES}-byte limit"
        ))
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_big());
    }
    let header = |name: reqwest::header::HeaderName| {
        let v = resp.headers().get(name)?.to_str().ok()?;
        Some(v.to_string())
    };
    let retry_after = header(reqwest::header::RETRY_AFTER);
    let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_else(|| "none".into());
    let status = resp.status().as_u16();
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        let mut e = TransportError::new(&e, &url, setting);
        e.cause = format!("reading the {op} response: {}", e.cause);
        Failure::Transport(e)
    })? {
        if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_big());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        retry_after,
        content_type,
        body: String::from_utf8_lossy(&buf).into_owned(),
    })
}

/// A request that got no (whole) answer: the host it went to and why, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// `host` or `host:port` (when the port is not the scheme's).
    pub host: String,
    /// The innermost causes, e.g. "connection refused", "operation timed out".
    pub cause: String,
    /// No connection was made (DNS, refused, TLS handshake, connect timeout): the endpoint, the
    /// network or the CA is wrong, not the service.
    pub unreachable: bool,
    /// What to check when unreachable, e.g. "is FHIR_OP_ARM_URL right?".
    pub hint: String,
}

impl TransportError {
    /// Describes `e` from a request to `url` (the URL reqwest reports is preferred); `setting`
    /// names the configuration that chose the endpoint.
    pub fn new(e: &reqwest::Error, url: &str, setting: &str) -> Self {
        let url = e.url().cloned().or_else(|| reqwest::Url::parse(url).ok());
        let tls = chain(e).find_map(rustls_error);
        let mut cause = cause(e);
        if e.is_timeout() && !cause.contains("timed out") {
            cause = format!("{cause}: timed out");
        }
        let hint = match tls {
            Some(rustls::Error::InvalidCertificate(_)) => format!("is its CA in {CA_SETTING}?"),
            _ => format!("is {setting} right?"),
        };
        TransportError {
            host: url.as_ref().map(host).unwrap_or_else(|| "?".into()),
            cause,
            unreachable: e.is_connect() || tls.is_some(),
            hint,
        }
    }

    /// A service's error for this failure: `unreachable` when no connection was made, else `other`.
    pub fn into_error<E>(self, unreachable: fn(String) -> E, other: fn(String) -> E) -> E {
        let message = self.to_string();
        if self.unreachable {
            unreachable(message)
        } else {
            other(message)
        }
    }
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            host, cause, hint, ..
        } = self;
        if self.unreachable {
            write!(f, "cannot reach {host}: {cause} ({hint})")
        } else {
            write!(f, "{host}: {cause}")
        }
    }
}

/// `host` or `host:port` of `url`.
fn host(url: &reqwest::Url) -> String {
    let h = url.host_str().unwrap_or("?");
    match url.port() {
        Some(p) => format!("{h}:{p}"),
        None => h.to_string(),
    }
}

/// `e` and its sources, outermost first.
fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |e| (*e).source())
}

/// The rustls error of a failed TLS handshake (often inside an I/O error, whose `source()` skips it).
fn rustls_error<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<std::io::Error>()?.get_ref()?;
    }
}

/// Wrappers in the chain that say nothing their source does not say better.
const SAY_NOTHING: &[&str] = &["tcp connect error", "error resolving DNS"];

/// The causes below reqwest's "error sending request for url (…)", without the wrappers that say
/// nothing ("client error (Connect)", "tcp connect error") and the OS error number, e.g.
/// "connection refused", "dns error: failed to lookup address information: Name or service not
/// known", "invalid peer certificate: UnknownIssuer".
fn cause(e: &reqwest::Error) -> String {
    let said: Vec<String> = chain(e)
        .skip(1)
        .map(|e| tidy(&e.to_string()))
        .filter(|m| {
            !m.is_empty() && !m.starts_with("client error (") && !SAY_NOTHING.contains(&m.as_str())
        })
        .collect();
    // A wrapper often repeats its source's text: keep the one that says more.
    let mut kept: Vec<String> = Vec::new();
    for m in said {
        match kept.last() {
            Some(last) if last.contains(&m) => {}
            Some(last) if m.contains(last.as_str()) => *kept.last_mut().unwrap() = m,
            _ => kept.push(m),
        }
    }
    if kept.is_empty() {
        return tidy(&without_url(e));
    }
    kept.join(": ")
}

/// "Connection refused (os error 111)" → "connection refused".
fn tidy(m: &str) -> String {
    let m = m.split(" (os error ").next().unwrap_or(m).trim();
    let mut chars = m.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if first.is_uppercase() && second.is_lowercase() => {
            first.to_lowercase().chain(m.chars().skip(1)).collect()
        }
        _ => m.to_string(),
    }
}

/// reqwest's own message without the URL.
fn without_url(e: &reqwest::Error) -> String {
    let s = e.to_string();
    match e.url() {
        Some(url) => s.replace(&format!(" for url ({url})"), ""),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_port() -> u16 {
        // Bound and dropped: nothing listens there any more.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// A GET of `url` that fails; the endpoint came from `setting`.
    async fn failed_get(url: &str, setting: &str) -> TransportError {
        let http = client(None, Duration::from_secs(5)).unwrap();
        let e = send(http.get(url), url, setting).await.unwrap_err();
        assert!(e.unreachable, "{e:?}");
        e
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_host_the_cause_and_the_setting() {
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}/subscriptions/x");
        let e = failed_get(&url, "FHIR_OP_ARM_URL").await;
        assert_eq!(
            e.to_string(),
            format!(
                "cannot reach 127.0.0.1:{port}: connection refused (is FHIR_OP_ARM_URL right?)"
            )
        );
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_unreachable_and_says_so() {
        let url = "https://fhir-app-operator-test.invalid/v1.0";
        let m = failed_get(url, "FHIR_OP_GRAPH_URL").await.to_string();
        assert!(
            m.starts_with("cannot reach fhir-app-operator-test.invalid: "),
            "{m}"
        );
        assert!(m.ends_with("(is FHIR_OP_GRAPH_URL right?)"), "{m}");
    }

    #[tokio::test]
    async fn a_certificate_of_an_unknown_ca_points_at_the_ca_bundle() {
        crate::init_crypto();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut tcp, _) = listener.accept().unwrap();
            let mut tls = rustls::ServerConnection::new(std::sync::Arc::new(cfg)).unwrap();
            // The client refuses the certificate and hangs up.
            let _ = tls.complete_io(&mut tcp);
        });
        let url = format!("https://127.0.0.1:{port}/v1.0");
        let m = failed_get(&url, "FHIR_OP_GRAPH_URL").await.to_string();
        assert!(
            m.starts_with(&format!("cannot reach 127.0.0.1:{port}: ")),
            "{m}"
        );
        assert!(m.contains("certificate"), "{m}");
        assert!(m.ends_with("(is its CA in FHIR_OP_EXTRA_CA_FILE?)"), "{m}");
    }

    #[test]
    fn os_error_numbers_and_capitals_go() {
        assert_eq!(
            tidy("Connection refused (os error 111)"),
            "connection refused"
        );
        assert_eq!(tidy("DNS error"), "DNS error");
        assert_eq!(tidy("operation timed out"), "operation timed out");
    }
}
