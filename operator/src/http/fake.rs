//! A scripted HTTP/1.1 server for unit tests of the HTTP layer and its clients: the token endpoint
//! answers with a token; every other request gets the next queued answer, or 200 `{"value":[]}`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One scripted answer: status, extra header lines (`name: value\r\n` each), body.
type Scripted = (u16, &'static str, String);

#[derive(Clone, Default)]
pub struct Fake {
    pub base: String,
    answers: Arc<Mutex<VecDeque<Scripted>>>,
    tokens: Arc<AtomicUsize>,
    calls: Arc<AtomicUsize>,
}

impl Fake {
    pub async fn start() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = Fake {
            base: format!("http://{}", listener.local_addr().unwrap()),
            ..Fake::default()
        };
        let server = fake.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(server.clone().answer(tcp));
            }
        });
        fake
    }

    /// Queues the answer to the next request that is not a token request.
    pub fn then(&self, status: u16, headers: &'static str, body: &str) {
        let mut answers = self.answers.lock().unwrap();
        answers.push_back((status, headers, body.to_string()));
    }

    /// Token requests so far.
    pub fn tokens(&self) -> usize {
        self.tokens.load(Ordering::SeqCst)
    }

    /// Other requests so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn answer(self, mut tcp: tokio::net::TcpStream) -> std::io::Result<()> {
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        // The whole request (head and body), so closing does not reset the connection.
        while !complete(&req) {
            let n = tcp.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            req.extend_from_slice(&buf[..n]);
        }
        let (status, headers, body) = if String::from_utf8_lossy(&req).contains("/oauth2/") {
            self.tokens.fetch_add(1, Ordering::SeqCst);
            let token = r#"{"token_type":"Bearer","expires_in":3600,"access_token":"t"}"#;
            (200, "", token.to_string())
        } else {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.answers.lock().unwrap().pop_front();
            next.unwrap_or((200, "", r#"{"value":[]}"#.into()))
        };
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).await?;
        tcp.write_all(body.as_bytes()).await?;
        tcp.shutdown().await
    }
}

/// Whether `req` holds a request head and the body its content-length announces.
fn complete(req: &[u8]) -> bool {
    let text = String::from_utf8_lossy(req);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let len = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    body.len() >= len
}
