//! Malformed or hostile Graph responses: garbage JSON, missing fields, huge bodies, wrong content type,
//! a slow drip, a 500 with an HTML page. The Graph client returns a typed error with a clear category and
//! message (never a panic, never an unbounded buffer, never a hang), and the operator reports it as a
//! retrying condition on the resource and keeps reconciling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fhir_app_operator::api::FhirResourceApp;
use fhir_app_operator::graph::ratelimit::{Limit, RateLimiter};
use fhir_app_operator::graph::types::parse_application;
use fhir_app_operator::graph::{
    Credential, Endpoints, GraphClient, GraphError, RetryPolicy, http_client_with_timeout,
};
use fhir_app_operator::metrics::Metrics;
use fhir_app_operator_tests::operator::{Harness, full_permissions, resource_app};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the hostile server answers Graph calls (the token endpoint always answers correctly).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Garbage,
    MissingFields,
    HugeDeclared,
    HugeStreamed,
    Html200,
    Drip,
    Html500,
}

impl Mode {
    fn from_segment(s: &str) -> Option<Mode> {
        Some(match s {
            "garbage" => Mode::Garbage,
            "missing" => Mode::MissingFields,
            "huge-declared" => Mode::HugeDeclared,
            "huge-streamed" => Mode::HugeStreamed,
            "html200" => Mode::Html200,
            "drip" => Mode::Drip,
            "html500" => Mode::Html500,
            _ => return None,
        })
    }
}

const HUGE: usize = 50 << 20;
const HTML_500: &str = "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1><p>upstream proxy</p></body></html>";

/// A tiny HTTPS server (own CA via rcgen) speaking just enough HTTP/1.1.
struct Hostile {
    base: String,
    ca_pem: String,
    ca_file: tempfile::NamedTempFile,
    /// Mode of the `/op/...` paths, switchable while the operator runs.
    op_mode: Arc<Mutex<Mode>>,
    /// Graph requests seen, by first path segment.
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Hostile {
    async fn start() -> Hostile {
        fhir_app_operator::init_crypto();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "hostile graph CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca.der().clone()],
                rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca.pem()).unwrap();
        let op_mode = Arc::new(Mutex::new(Mode::Garbage));
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let (m, h) = (op_mode.clone(), hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, m, h) = (acceptor.clone(), m.clone(), h.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = serve(tls, m, h).await;
                    }
                });
            }
        });
        Hostile {
            base,
            ca_pem: ca.pem(),
            ca_file,
            op_mode,
            hits,
        }
    }

    fn hits(&self, segment: &str) -> usize {
        self.hits.lock().unwrap().get(segment).copied().unwrap_or(0)
    }

    /// A Graph client for `/{segment}` with a short timeout and quick retries.
    fn client(&self, segment: &str) -> GraphClient {
        let http =
            http_client_with_timeout(Some(self.ca_pem.as_bytes()), Duration::from_secs(2)).unwrap();
        GraphClient::new(
            http,
            Endpoints::new(
                &format!("{}/{segment}", self.base),
                &format!("{}/", self.base),
            ),
            "00000000-0000-0000-0000-000000000001".into(),
            Credential::Secret {
                client_id: "operator".into(),
                secret: "operator-secret".into(),
            },
            Arc::new(RateLimiter::new(
                Limit {
                    per_sec: 1000.0,
                    burst: 1000,
                },
                Limit {
                    per_sec: 1000.0,
                    burst: 1000,
                },
            )),
            Arc::new(Metrics::default()),
        )
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        })
    }
}

async fn serve<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    op_mode: Arc<Mutex<Mode>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) -> std::io::Result<()> {
    // Request head, then the body (Content-Length), which is ignored.
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path.contains("/oauth2/") {
        let body = r#"{"token_type":"Bearer","expires_in":3600,"access_token":"hostile-token"}"#;
        return respond(&mut s, "200 OK", "application/json", body.as_bytes()).await;
    }
    let segment = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("")
        .to_string();
    *hits.lock().unwrap().entry(segment.clone()).or_insert(0) += 1;
    let mode = if segment == "op" {
        *op_mode.lock().unwrap()
    } else {
        Mode::from_segment(&segment).unwrap_or(Mode::Html500)
    };
    match mode {
        Mode::Garbage => {
            respond(
                &mut s,
                "200 OK",
                "application/json",
                b"{\"value\": [tru\x00\xff\xfe}",
            )
            .await
        }
        Mode::MissingFields => {
            respond(
                &mut s,
                "200 OK",
                "application/json",
                br#"{"displayName":"half an app","tags":["x"]}"#,
            )
            .await
        }
        Mode::Html200 => {
            respond(
                &mut s,
                "200 OK",
                "text/html",
                b"<html><body>Sign in to continue</body></html>",
            )
            .await
        }
        Mode::Html500 => {
            respond(
                &mut s,
                "500 Internal Server Error",
                "text/html",
                HTML_500.as_bytes(),
            )
            .await
        }
        Mode::HugeDeclared | Mode::HugeStreamed => {
            let head = if mode == Mode::HugeDeclared {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE}\r\nconnection: close\r\n\r\n"
                )
            } else {
                // No length: the body ends when the connection closes.
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                    .to_string()
            };
            s.write_all(head.as_bytes()).await?;
            s.write_all(b"{\"value\":\"").await?;
            let chunk = vec![b'a'; 64 << 10];
            for _ in 0..(HUGE / chunk.len()) {
                s.write_all(&chunk).await?;
            }
            s.shutdown().await
        }
        Mode::Drip => {
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n{")
                .await?;
            for _ in 0..100_000 {
                s.write_all(b" ").await?;
                s.flush().await?;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(())
        }
    }
}

async fn respond<S: tokio::io::AsyncWrite + Unpin>(
    s: &mut S,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    s.shutdown().await
}

fn expect_err<T: std::fmt::Debug>(
    case: &str,
    r: Result<T, GraphError>,
    category: &str,
    text: &str,
) -> GraphError {
    let e = match r {
        Ok(v) => panic!("{case}: expected a {category} error, got Ok({v:?})"),
        Err(e) => e,
    };
    assert_eq!(e.category(), category, "{case}: {e}");
    assert!(
        e.to_string().contains(text),
        "{case}: message {:?} should contain {text:?}",
        e.to_string()
    );
    e
}

#[tokio::test]
async fn the_graph_client_turns_hostile_responses_into_typed_errors() {
    let srv = Hostile::start().await;

    let e = expect_err(
        "garbage JSON",
        srv.client("garbage")
            .get_application_by_unique_name("a")
            .await,
        "Decode",
        "getApplication: response is not valid JSON (content type application/json",
    );
    assert!(!e.is_permanent(), "a garbled body is retried later");

    // Missing fields: Graph always returns id and appId; without them nothing may go on.
    let c = srv.client("missing");
    let (raw, _) = c.upsert_application("a", &json!({})).await.unwrap();
    expect_err(
        "application without id",
        parse_application("upsertApplication", &raw),
        "Decode",
        "application in the response has no id or appId",
    );
    expect_err(
        "service principal without id",
        c.get_service_principal_by_app_id("a").await,
        "Decode",
        "service principal in the response has no id or appId",
    );
    expect_err(
        "service principal without id (ensure)",
        c.ensure_service_principal("a").await,
        "Decode",
        "service principal in the response has no id or appId",
    );

    // Huge bodies are refused, not buffered: with a declared length at once, streamed after the limit.
    for seg in ["huge-declared", "huge-streamed"] {
        let t = Instant::now();
        expect_err(
            seg,
            srv.client(seg).get_application_by_unique_name("a").await,
            "Decode",
            "response body larger than the 16777216-byte limit",
        );
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{seg}: {:?}",
            t.elapsed()
        );
    }

    expect_err(
        "HTML page with 200",
        srv.client("html200")
            .get_application_by_unique_name("a")
            .await,
        "Decode",
        "response is not valid JSON (content type text/html",
    );

    // A server that trickles bytes is cut off by the client's timeout (2 s here), not waited for.
    let t = Instant::now();
    let e = expect_err(
        "slow drip",
        srv.client("drip").get_application_by_unique_name("a").await,
        "Transport",
        "timed out",
    );
    let host = srv.base.trim_start_matches("https://");
    assert!(e.to_string().contains(host), "names the host: {e}");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "slow drip took {:?}",
        t.elapsed()
    );

    // 500 with an HTML page: transient, retried (3 attempts here), and the message says what came back.
    let e = expect_err(
        "500 with HTML",
        srv.client("html500")
            .get_application_by_unique_name("a")
            .await,
        "Transient",
        "Graph is unavailable (HTTP 500): response is not a Graph error",
    );
    assert!(e.to_string().contains("500 Internal Server Error"), "{e}");
    assert!(!e.is_permanent());
    assert_eq!(
        srv.hits("html500"),
        3,
        "a 500 is retried up to max_attempts"
    );
}

/// Ready=False / Reconciling=True with `text` in the Ready message.
async fn wait_retrying(h: &Harness, name: &str, text: &str) {
    let api = h.api::<FhirResourceApp>();
    h.eventually(
        &format!("{name} Reconciling with {text:?}"),
        Duration::from_secs(90),
        || {
            let api = api.clone();
            async move {
                let o = api.get(name).await.map_err(|e| e.to_string())?;
                let conds = o
                    .status
                    .as_ref()
                    .map(|s| s.conditions.clone())
                    .unwrap_or_default();
                let get = |t: &str| conds.iter().find(|c| c.type_ == t).cloned();
                match (get("Ready"), get("Reconciling")) {
                    (Some(r), Some(p))
                        if r.status == "False"
                            && p.status == "True"
                            && r.message.contains(text) =>
                    {
                        Ok(Some(()))
                    }
                    _ => Err(format!("conditions: {conds:?}")),
                }
            }
        },
    )
    .await
}

#[tokio::test]
async fn the_operator_reports_hostile_graph_responses_as_retrying_and_keeps_running() {
    let srv = Hostile::start().await;
    let mut h = Harness::new("hostile", full_permissions()).await;
    let mut cfg = h.config();
    cfg.graph_url = format!("{}/op", srv.base);
    cfg.authority_host = format!("{}/", srv.base);
    cfg.extra_ca_file = Some(srv.ca_file.path().to_path_buf());
    cfg.graph_timeout = Duration::from_secs(2);
    h.start_operator(cfg).await;

    h.apply::<FhirResourceApp>(resource_app(
        "fhir",
        json!({"fhirUrl": "https://fhir.contoso.example"}),
    ))
    .await
    .unwrap();
    wait_retrying(&h, "fhir", "response is not valid JSON").await;

    // The operator is still alive and reconciling: each new kind of bad answer shows up in the status.
    *srv.op_mode.lock().unwrap() = Mode::HugeStreamed;
    wait_retrying(&h, "fhir", "larger than the 16777216-byte limit").await;
    *srv.op_mode.lock().unwrap() = Mode::Html500;
    wait_retrying(&h, "fhir", "Graph is unavailable (HTTP 500)").await;

    let o = h.api::<FhirResourceApp>().get("fhir").await.unwrap();
    let conds = o.status.unwrap().conditions;
    assert!(
        !conds
            .iter()
            .any(|c| c.type_ == "Stalled" && c.status == "True"),
        "transient Graph trouble must not stall the resource: {conds:?}"
    );
    assert!(srv.hits("op") >= 3);
    h.stop_operator().await;
}
